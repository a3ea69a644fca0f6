import Compress

/// Structured (filter and channel) pruning in one call: finds the channel
/// groups, scores them with `criterion`, selects `amount` of the least
/// important channels and removes them, returning a physically smaller model.
///
/// The steps are public on their own (`channelDependencyGroups(in:)`,
/// `channelImportance(of:in:criterion:threads:)`,
/// `selectChannelsToRemove(in:groups:importance:amount:channelMultiple:)`,
/// `applyChannelPruning(_:removing:)`). A latency target can search over
/// `.targetMACs(fraction)`: score once, then select and apply per fraction.
///
/// With `.perLayer`, only the named layers' groups are scored, so a
/// criterion need not apply to the others.
public func pruneChannels(_ model: Model, criterion: ImportanceCriterion, amount: ChannelPruningAmount,
                          channelMultiple: Int? = nil, threads: Int = 1) throws -> ChannelPruningResult {
    let groups = try channelDependencyGroups(in: model.graph)
    var scored = groups
    if case .perLayer(let ratios) = amount {
        scored = groups.filter { !$0.sourceLayers.allSatisfy { ratios[$0] == nil } }
    }
    let importance = try channelImportance(of: scored, in: model, criterion: criterion, threads: threads)
    let removal = try selectChannelsToRemove(in: model.graph, groups: groups, importance: importance,
                                             amount: amount, channelMultiple: channelMultiple)
    return try applyChannelPruning(model, removing: removal)
}
