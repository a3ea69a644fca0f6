import Compress

/// Structured (filter and channel) pruning in one call: finds the channel
/// groups, scores them with `criterion` (on `calibration` for the
/// data-driven criteria), selects the least important channels as `target`
/// asks and removes them, returning a physically smaller model.
///
/// The steps are public on their own (`channelDependencyGroups(in:)`,
/// `channelImportance(of:in:criterion:calibration:threads:)`,
/// `selectChannelsToRemove(in:groups:importance:target:channelMultiple:)`,
/// `applyChannelPruning(_:removing:)`). A latency target can search over
/// `.macFraction(fraction)`: score once, then select and apply per fraction.
///
/// With `.perLayer`, only the named layers' groups are scored, so a
/// criterion need not apply to the others.
public func pruneChannels(_ model: Model, criterion: PruningCriterion, calibration: CalibrationImages? = nil,
                          target: PruningTarget, channelMultiple: Int? = nil, threads: Int = 1) throws -> ChannelPruningResult {
    let groups = try channelDependencyGroups(in: model.graph)
    var scored = groups
    if case .perLayer(let ratios) = target {
        scored = groups.filter { !$0.sourceLayers.allSatisfy { ratios[$0] == nil } }
    }
    let importance = try channelImportance(of: scored, in: model, criterion: criterion, calibration: calibration,
                                           threads: threads)
    let removal = try selectChannelsToRemove(in: model.graph, groups: groups, importance: importance,
                                             target: target, channelMultiple: channelMultiple)
    return try applyChannelPruning(model, removing: removal)
}
