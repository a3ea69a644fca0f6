/// What one pruning step removes from the selected layers, in the terms weight
/// and channel pruning share: `magnitudePruned` zeroes weights to it and
/// `selectChannelsToRemove` chooses channels to it. The prune pass derives
/// one per step from what was asked (`PruningAmount`) and the schedule.
public enum PruningTarget: Sendable, Equatable {
    /// This fraction of each named layer, by node name; layers not named are
    /// left alone.
    ///
    /// Weights: the `round(fraction · weights)` smallest-magnitude weights of
    /// the layer go. Channels: `⌊fraction · channels⌋` of the layer's channel
    /// group go, the fraction in [0, 1]; layers sharing a group must agree,
    /// and removing every channel of a group is refused.
    case perLayer([String: Double])
    /// This fraction in [0, 1) of everything selected, ranked in one list:
    /// of all the layers' weights together (weights), or of all prunable
    /// channels over every group, no group losing its last channel (channels).
    case global(Double)
    /// Weights with `|w|` below the layer's threshold, by node name (layers
    /// not named are left alone). Weights only.
    case thresholds([String: Float])
    /// Keep at most this fraction in (0, 1] of the multiply-accumulates: the
    /// least important channels over all groups go, one at a time, until the
    /// MACs (recomputed from the kept channel counts) are within the budget.
    /// Channels only (zeroed weights do not reduce dense MACs).
    case macFraction(Double)

    /// The target's name in messages.
    var name: String {
        switch self {
        case .perLayer: "per-layer"
        case .global: "global"
        case .thresholds: "threshold"
        case .macFraction: "MAC-fraction"
        }
    }
}

/// A per-step target given to the granularity it does not apply to (a MAC
/// fraction to weight pruning, thresholds to channel pruning).
public struct PruningTargetNotApplicable: Error, Equatable, CustomStringConvertible {
    public var target: PruningTarget
    public var granularity: PruningGranularity

    public var description: String {
        "a \(target.name) target does not apply to \(granularity.rawValue) pruning"
    }
}
