/// Why structured pruning refused a request; names the group, layer or value at fault.
public enum StructuredPruningError: Error, Equatable, CustomStringConvertible {
    case unknownGroup(Int)
    case groupNotPrunable(group: Int, sourceLayers: [String], reasons: [String])
    case channelOutOfRange(group: Int, channel: Int, channels: Int)
    case duplicateChannel(group: Int, channel: Int)
    /// Removing the requested channels would leave the group with none.
    case groupWouldBeEmpty(group: Int, sourceLayers: [String], channels: Int)
    /// Removing the requested channels would leave a value with none (a Slice of removed channels only).
    case valueWouldBeEmpty(String)
    case unknownLayer(String)
    case conflictingRatios(group: Int, layers: [String])
    case invalidRatio(layer: String?, ratio: Double)
    case invalidMACTarget(Double)
    case macTargetUnreachable(target: Double, reachable: Double)
    case invalidChannelMultiple(Int)
    case missingImportance(group: Int)
    case importanceCount(group: Int, expected: Int, got: Int)
    case criterionNotApplicable(criterion: String, group: Int, sourceLayers: [String], reason: String)
    case invalidData(String)

    public var description: String {
        switch self {
        case .unknownGroup(let g): "there is no channel group \(g)"
        case .groupNotPrunable(let g, let layers, let reasons):
            "channel group \(g) (\(layers.joined(separator: ", "))) cannot be pruned: \(reasons.joined(separator: "; "))"
        case .channelOutOfRange(let g, let c, let n): "channel \(c) is outside group \(g)'s 0..<\(n)"
        case .duplicateChannel(let g, let c): "channel \(c) of group \(g) is listed twice"
        case .groupWouldBeEmpty(let g, let layers, let n):
            "pruning would remove all \(n) channels of group \(g) (\(layers.joined(separator: ", "))); at least one must stay"
        case .valueWouldBeEmpty(let value):
            "pruning would remove every channel of '\(value)'; keep at least one of its channels"
        case .unknownLayer(let name): "'\(name)' is not a convolution or linear layer of the graph"
        case .conflictingRatios(let g, let layers):
            "layers \(layers.joined(separator: ", ")) share channel group \(g) but were given different ratios"
        case .invalidRatio(let layer, let r):
            "pruning ratio \(r)\(layer.map { " for '\($0)'" } ?? "") must be in [0, 1)"
        case .invalidMACTarget(let f): "the MAC target \(f) must be a fraction in (0, 1]"
        case .macTargetUnreachable(let target, let reachable):
            "MACs cannot go down to \(target) of the original; the prunable groups reach \(reachable) at most"
        case .invalidChannelMultiple(let m): "the channel multiple must be at least 1, got \(m)"
        case .missingImportance(let g): "no importance scores were given for channel group \(g)"
        case .importanceCount(let g, let e, let got): "channel group \(g) has \(e) channels but \(got) importance scores"
        case .criterionNotApplicable(let criterion, let g, let layers, let reason):
            "criterion \(criterion) cannot score group \(g) (\(layers.joined(separator: ", "))): \(reason)"
        case .invalidData(let detail): detail
        }
    }
}
