import Compress

/// What channel pruning did to one convolution or linear layer.
public struct LayerPruningChange: Sendable, Equatable {
    public let layer: String
    public let outputChannelsBefore: Int
    public let outputChannelsAfter: Int
    /// Input channels of a convolution, input features of a linear layer.
    public let inputChannelsBefore: Int
    public let inputChannelsAfter: Int
    /// Multiply-accumulates for one sample.
    public let macsBefore: Int
    public let macsAfter: Int
    /// Elements of the initializers the layer reads.
    public let parametersBefore: Int
    public let parametersAfter: Int

    /// True when any count changed.
    public var isChanged: Bool {
        outputChannelsBefore != outputChannelsAfter || inputChannelsBefore != inputChannelsAfter
    }
}

/// The record of one `applyChannelPruning` call: which channels went, and the
/// cost of every layer and of the whole graph before and after.
public struct ChannelPruningRecord: Sendable, Equatable {
    /// Removed channel indices by group id, sorted.
    public let removedChannels: [Int: [Int]]
    /// Every convolution and linear layer, in graph order.
    public let layers: [LayerPruningChange]
    public let macsBefore: Int
    public let macsAfter: Int
    public let parametersBefore: Int
    public let parametersAfter: Int

    /// One line per changed layer, for a pass record.
    public var changes: [String] {
        layers.filter(\.isChanged).map {
            "\($0.layer): \($0.outputChannelsBefore) -> \($0.outputChannelsAfter) outputs, "
                + "\($0.inputChannelsBefore) -> \($0.inputChannelsAfter) inputs, MACs \($0.macsBefore) -> \($0.macsAfter)"
        }
    }

    /// Deterministic numbers for a pass record.
    public var metrics: [String: Double] {
        ["channels-removed": Double(removedChannels.values.reduce(0) { $0 + $1.count }),
         "groups-pruned": Double(removedChannels.values.filter { !$0.isEmpty }.count)]
    }
}

/// A physically smaller model and the record of how it was made.
public struct ChannelPruningResult: Sendable {
    public let model: Model
    public let record: ChannelPruningRecord
}

/// Removes channels from `model`, returning a dense model whose layers are
/// physically narrower: every parameter slice of each group (source filters
/// and biases, BatchNorm vectors, depthwise filters, readers' input channels)
/// loses the removed indices, depthwise convolutions' `groups` shrink with
/// their channels, and the nodes whose attributes index channels (Slice
/// bounds, ChannelPermute orders) are rewritten for their input's kept
/// channels. Node and value names are unchanged; metadata is kept as is.
///
/// - Parameter channels: channel indices to remove by group id, the groups
///   being `channelDependencyGroups(in: model.graph)` (ids are deterministic).
/// - Throws: `StructuredPruningError` for an unknown or unprunable group, an
///   index out of range or listed twice, or a removal that would empty a
///   group or a value (a slice of removed channels only); `GraphError` if the
///   result is not a valid graph.
public func applyChannelPruning(_ model: Model, removing channels: [Int: [Int]]) throws -> ChannelPruningResult {
    let groups = try channelDependencyGroups(in: model.graph)
    let removal = try validatedRemoval(channels, groups: groups)
    var graph = model.graph
    for (key, indices) in indicesToRemove(removal, groups: groups) {
        graph.initializers[key.initializer] = try graph.initializers[key.initializer]!.removing(indices, alongAxis: key.axis)
    }
    let depthwise = Set(removal.keys.flatMap { groups[$0].slices(.depthwiseFilter).map(\.node) })
    let removedInputChannels = inputChannelsToRemove(removal, groups: groups)
    graph.nodes = try graph.nodes.map { node throws(StructuredPruningError) in
        var rewritten = depthwise.contains(node.name) ? resizingGroups(node, in: graph) : node
        if let removed = removedInputChannels[node.name] {
            guard let op = node.op.removingInputChannels(removed) else { throw .valueWouldBeEmpty(node.output) }
            rewritten.op = op
        }
        return rewritten
    }
    for (value, shape) in try graph.inferShapes(batch: 1) where shape.contains(0) { throw StructuredPruningError.valueWouldBeEmpty(value) }
    var pruned = model
    pruned.graph = graph
    return ChannelPruningResult(model: pruned, record: try pruningRecord(before: model.graph, after: graph, removal))
}

/// The request checked against the groups, with empty lists dropped and indices sorted.
private func validatedRemoval(_ channels: [Int: [Int]], groups: [ChannelGroup]) throws(StructuredPruningError) -> [Int: [Int]] {
    var removal: [Int: [Int]] = [:]
    for (id, indices) in channels where !indices.isEmpty {
        guard groups.indices.contains(id) else { throw .unknownGroup(id) }
        let group = groups[id]
        guard group.isPrunable else {
            throw .groupNotPrunable(group: id, sourceLayers: group.sourceLayers, reasons: group.notPrunableReasons)
        }
        var seen = Set<Int>()
        for c in indices {
            guard (0..<group.channels).contains(c) else { throw .channelOutOfRange(group: id, channel: c, channels: group.channels) }
            guard seen.insert(c).inserted else { throw .duplicateChannel(group: id, channel: c) }
        }
        guard seen.count < group.channels else {
            throw .groupWouldBeEmpty(group: id, sourceLayers: group.sourceLayers, channels: group.channels)
        }
        removal[id] = seen.sorted()
    }
    return removal
}

private struct SliceKey: Hashable {
    var initializer: String
    var axis: Int
}

/// Indices to drop per initializer and axis, over every slice of every pruned group.
private func indicesToRemove(_ removal: [Int: [Int]], groups: [ChannelGroup]) -> [SliceKey: Set<Int>] {
    var result: [SliceKey: Set<Int>] = [:]
    for (id, channels) in removal {
        for slice in groups[id].slices {
            let key = SliceKey(initializer: slice.initializer, axis: slice.axis)
            for c in channels { result[key, default: []].formUnion(slice.mapping.indices(ofChannel: c)) }
        }
    }
    return result
}

/// Input channel indices each channel-indexing node loses, over every pruned group.
private func inputChannelsToRemove(_ removal: [Int: [Int]], groups: [ChannelGroup]) -> [String: Set<Int>] {
    var result: [String: Set<Int>] = [:]
    for (id, channels) in removal {
        for entry in groups[id].indexedAttributes {
            for c in channels { result[entry.node, default: []].formUnion(entry.mapping.indices(ofChannel: c)) }
        }
    }
    return result
}

/// A depthwise convolution whose `groups` follows its (sliced) output channels.
private func resizingGroups(_ node: Node, in graph: Graph) -> Node {
    var resized = node
    switch node.op {
    case .conv2d(var attributes):
        attributes.groups = graph.initializers[node.inputs[1]]!.shape[0]
        resized.op = .conv2d(attributes)
    case .convTranspose(var attributes):
        attributes.groups = graph.initializers[node.inputs[1]]!.shape[0]
        resized.op = .convTranspose(attributes)
    default: break
    }
    return resized
}

private func pruningRecord(before: Graph, after: Graph, _ removal: [Int: [Int]]) throws -> ChannelPruningRecord {
    let (costBefore, costAfter) = (try before.costReport(), try after.costReport())
    let (shapesBefore, shapesAfter) = (try before.inferShapes(batch: 1), try after.inferShapes(batch: 1))
    let (nodeCostBefore, nodeCostAfter) = (costsByName(costBefore), costsByName(costAfter))
    let layers = before.nodes.filter(\.op.isConvolutionOrLinear).map { node in
        LayerPruningChange(
            layer: node.name,
            outputChannelsBefore: shapesBefore[node.output]![1], outputChannelsAfter: shapesAfter[node.output]![1],
            inputChannelsBefore: shapesBefore[node.inputs[0]]![1], inputChannelsAfter: shapesAfter[node.inputs[0]]![1],
            macsBefore: nodeCostBefore[node.name]!.macs, macsAfter: nodeCostAfter[node.name]!.macs,
            parametersBefore: nodeCostBefore[node.name]!.parameters, parametersAfter: nodeCostAfter[node.name]!.parameters)
    }
    return ChannelPruningRecord(removedChannels: removal, layers: layers,
                                macsBefore: costBefore.totalMACs, macsAfter: costAfter.totalMACs,
                                parametersBefore: costBefore.totalParameters, parametersAfter: costAfter.totalParameters)
}

private func costsByName(_ report: CostReport) -> [String: NodeCost] {
    Dictionary(uniqueKeysWithValues: report.nodes.map { ($0.name, $0) })
}

extension Op {
    /// True for Conv2d, ConvTranspose and Linear, the layers with channels of their own.
    var isConvolutionOrLinear: Bool {
        switch self {
        case .conv2d, .convTranspose, .linear: true
        default: false
        }
    }

    /// This op once its input has lost the channels `removed` (indices along
    /// axis 1): a channel Slice's bounds move down by the removed channels
    /// before them; a ChannelPermute keeps its kept channels' order,
    /// renumbered. Nil when a Slice would keep no channel. Other ops are unchanged.
    func removingInputChannels(_ removed: Set<Int>) -> Op? {
        switch self {
        case .slice(let axis, let start, let end):
            let (newStart, newEnd) = (start - removed.count(where: { $0 < start }), end - removed.count(where: { $0 < end }))
            return newStart < newEnd ? .slice(axis: axis, start: newStart, end: newEnd) : nil
        case .channelPermute(let order):
            let kept = (0..<order.count).filter { !removed.contains($0) }
            let renumbered = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($0.element, $0.offset) })
            return .channelPermute(order: order.compactMap { renumbered[$0] })
        default:
            return self
        }
    }
}

extension Tensor {
    /// This tensor without the indices `removed` along `axis`, in any storage type.
    func removing(_ removed: Set<Int>, alongAxis axis: Int) throws -> Tensor {
        let kept = (0..<shape[axis]).filter { !removed.contains($0) }
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        func gather<T>(_ values: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(outer * kept.count * inner)
            for o in 0..<outer {
                for k in kept {
                    let start = (o * shape[axis] + k) * inner
                    out.append(contentsOf: values[start..<(start + inner)])
                }
            }
            return out
        }
        var newShape = shape
        newShape[axis] = kept.count
        switch storage {
        case .float32(let v): return try Tensor(shape: newShape, storage: .float32(gather(v)))
        case .float16(let v): return try Tensor(shape: newShape, storage: .float16(gather(v)))
        case .int8(let v): return try Tensor(shape: newShape, storage: .int8(gather(v)))
        case .uint8(let v): return try Tensor(shape: newShape, storage: .uint8(gather(v)))
        case .int64(let v): return try Tensor(shape: newShape, storage: .int64(gather(v)))
        }
    }
}
