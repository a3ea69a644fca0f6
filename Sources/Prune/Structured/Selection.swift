import Compress

/// Chooses the channels to remove: the least important of each group, as
/// many as `target` asks (a fraction per layer, one fraction over every
/// group, or a MAC fraction; see `PruningTarget`).
///
/// - Parameters:
///   - graph: the graph the groups come from (for MAC counts).
///   - groups: candidate groups; unprunable ones are never chosen.
///   - importance: one score per channel of every prunable group in
///     `groups` (`channelImportance(of:in:criterion:calibration:threads:)`); lower goes first,
///     ties by group then channel index.
///   - channelMultiple: if set, each pruned group keeps a multiple of it
///     (fast kernels work in blocks of 8 channels): the kept count is rounded
///     up, keeping the most important of the channels chosen, capped at the
///     group's size, so a group of at least `channelMultiple` channels never
///     keeps fewer, and a smaller group is not pruned. A MAC target counts the
///     rounded widths.
/// - Returns: sorted channel indices by group id, for `applyChannelPruning`.
/// - Throws: `StructuredPruningError` for unknown or unprunable layers,
///   conflicting or invalid ratios, a group that would be emptied, missing
///   scores, or a MAC target the prunable groups cannot reach;
///   `PruningTargetNotApplicable` for weight thresholds.
public func selectChannelsToRemove(in graph: Graph, groups: [ChannelGroup], importance: [Int: [Float]],
                                   target: PruningTarget, channelMultiple: Int? = nil) throws -> [Int: [Int]] {
    if let m = channelMultiple, m < 1 { throw StructuredPruningError.invalidChannelMultiple(m) }
    let candidates = groups.filter(\.isPrunable)
    let counts: [Int: Int]
    switch target {
    case .perLayer(let ratios):
        counts = try perLayerCounts(ratios, groups: groups)
        for id in counts.keys { try checkImportance(importance, for: groups.first { $0.id == id }!) }
    case .global(let ratio):
        for group in candidates { try checkImportance(importance, for: group) }
        counts = try globalCounts(ratio: ratio, groups: candidates, importance: importance)
    case .macFraction(let fraction):
        for group in candidates { try checkImportance(importance, for: group) }
        counts = try macTargetCounts(fraction, graph: graph, groups: candidates, importance: importance,
                                     channelMultiple: channelMultiple)
    case .thresholds:
        throw PruningTargetNotApplicable(target: target, granularity: .channel)
    }
    let channels = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0.channels) })
    var removal: [Int: [Int]] = [:]
    for (id, count) in counts {
        let rounded = roundedRemoval(count, channels: channels[id]!, multiple: channelMultiple)
        if rounded > 0 { removal[id] = leastImportant(rounded, of: importance[id]!) }
    }
    return removal
}

/// Channels to remove per group from per-layer fractions.
private func perLayerCounts(_ ratios: [String: Double], groups: [ChannelGroup]) throws(StructuredPruningError) -> [Int: Int] {
    var chosen: [Int: (ratio: Double, layers: [String])] = [:]
    for (layer, ratio) in ratios.sorted(by: { $0.key < $1.key }) {
        guard ratio >= 0 && ratio <= 1 else { throw .invalidRatio(layer: layer, ratio: ratio) }
        guard let group = groups.first(where: { $0.sourceLayers.contains(layer) }) else { throw .unknownLayer(layer) }
        guard group.isPrunable else {
            throw .groupNotPrunable(group: group.id, sourceLayers: group.sourceLayers, reasons: group.notPrunableReasons)
        }
        if let earlier = chosen[group.id], earlier.ratio != ratio {
            throw .conflictingRatios(group: group.id, layers: earlier.layers + [layer])
        }
        chosen[group.id] = (ratio, (chosen[group.id]?.layers ?? []) + [layer])
    }
    var counts: [Int: Int] = [:]
    for (id, entry) in chosen {
        let group = groups.first { $0.id == id }!
        // A tiny slack so 0.3 · 10 counts 3 whatever the binary rounding of 0.3.
        let count = Int((entry.ratio * Double(group.channels) + 1e-9).rounded(.down))
        guard count < group.channels else {
            throw .groupWouldBeEmpty(group: id, sourceLayers: group.sourceLayers, channels: group.channels)
        }
        counts[id] = count
    }
    return counts
}

/// Channels to remove per group when the `ratio · total` least important channels of all groups go.
private func globalCounts(ratio: Double, groups: [ChannelGroup],
                          importance: [Int: [Float]]) throws(StructuredPruningError) -> [Int: Int] {
    guard ratio >= 0 && ratio < 1 else { throw .invalidRatio(layer: nil, ratio: ratio) }
    let total = groups.reduce(0) { $0 + $1.channels }
    let target = Int((ratio * Double(total) + 1e-9).rounded(.down))
    var counts: [Int: Int] = [:]
    var removed = 0
    for (group, _) in globalRanking(groups, importance) where removed < target {
        if counts[group.id, default: 0] < group.channels - 1 {
            counts[group.id, default: 0] += 1
            removed += 1
        }
    }
    return counts
}

/// Channels to remove per group so the MACs, with rounded widths, fit `fraction` of the original.
private func macTargetCounts(_ fraction: Double, graph: Graph, groups: [ChannelGroup], importance: [Int: [Float]],
                             channelMultiple: Int?) throws -> [Int: Int] {
    guard fraction > 0 && fraction <= 1 else { throw StructuredPruningError.invalidMACTarget(fraction) }
    let cost = try ChannelCostModel(graph: graph, groups: groups)
    let original = Double(cost.macs(removing: [:]))
    let channels = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0.channels) })
    func macs(_ counts: [Int: Int]) -> Int {
        cost.macs(removing: counts.reduce(into: [:]) { rounded, entry in
            rounded[entry.key] = roundedRemoval(entry.value, channels: channels[entry.key]!, multiple: channelMultiple)
        })
    }
    var counts: [Int: Int] = [:]
    if Double(macs(counts)) <= fraction * original { return counts }
    for (group, _) in globalRanking(groups, importance) where counts[group.id, default: 0] < group.channels - 1 {
        counts[group.id, default: 0] += 1
        if Double(macs(counts)) <= fraction * original { return counts }
    }
    throw StructuredPruningError.macTargetUnreachable(target: fraction, reachable: Double(macs(counts)) / original)
}

/// Every channel of every group, least important first (ties: group id, then channel).
private func globalRanking(_ groups: [ChannelGroup], _ importance: [Int: [Float]]) -> [(ChannelGroup, Int)] {
    groups.flatMap { group in importance[group.id]!.indices.map { (group, $0) } }
        .sorted { a, b in
            let (sa, sb) = (importance[a.0.id]![a.1], importance[b.0.id]![b.1])
            return sa != sb ? sa < sb : (a.0.id, a.1) < (b.0.id, b.1)
        }
}

/// The `count` lowest-scoring channel indices, sorted.
private func leastImportant(_ count: Int, of scores: [Float]) -> [Int] {
    scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 < $1 }.prefix(count).sorted()
}

/// `count` reduced so the kept channels are a multiple of `multiple` (capped at `channels`).
func roundedRemoval(_ count: Int, channels: Int, multiple: Int?) -> Int {
    guard let multiple, count > 0 else { return count }
    let kept = channels - count
    let roundedKept = min(channels, (kept + multiple - 1) / multiple * multiple)
    return channels - roundedKept
}

private func checkImportance(_ importance: [Int: [Float]], for group: ChannelGroup) throws(StructuredPruningError) {
    guard let scores = importance[group.id] else { throw .missingImportance(group: group.id) }
    guard scores.count == group.channels else {
        throw .importanceCount(group: group.id, expected: group.channels, got: scores.count)
    }
}
