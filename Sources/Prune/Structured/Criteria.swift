import Compress

/// How the channels of a group are ranked: a lower score is pruned first.
/// Criteria only score; choosing how many channels go is `selectChannelsToRemove`.
///
/// Every criterion but `apoz` is normalized per contributor, so groups are
/// comparable in a global ranking: each source layer's (or BatchNorm's, or
/// feature map's) per-channel scores are divided by their mean over the
/// group's channels, and a group's score is the mean of its contributors'
/// normalized scores. A channel scoring 1 is as important as the average
/// channel of its group; a global ranking thus removes the channels that fall
/// furthest below their own group's average, whatever the layer's fan-in or
/// weight scale. A contributor whose scores are all zero stays zero.
public enum ImportanceCriterion: Sendable {
    /// L1 norm of each source filter, Σ|w| (Li et al., "Pruning Filters for
    /// Efficient ConvNets", ICLR 2017).
    case l1
    /// L2 norm of each source filter, √Σw² (the L2 variant Li et al. compare).
    case l2
    /// |γ| of the group's BatchNorm scales (Liu et al., "Learning Efficient
    /// Convolutional Networks through Network Slimming", ICCV 2017).
    case bnScale
    /// 1 − APoZ, the average percentage of zeros of each channel after the
    /// group's ReLUs on `images` (Hu et al., "Network Trimming: A Data-Driven
    /// Neuron Pruning Approach towards Efficient Deep Architectures", 2016).
    /// Already a fraction comparable across layers, so not normalized.
    case apoz(images: Tensor)
    /// First-order Taylor expansion of the loss change when a feature map is
    /// zeroed, |mean over positions of activation × gradient|, averaged over
    /// `images` one by one (Molchanov et al., "Pruning Convolutional Neural
    /// Networks for Resource Efficient Inference", ICLR 2017).
    case taylor(images: Tensor, labels: [Int32])

    /// The criteria by name, for command lines and pipelines.
    public enum Kind: String, CaseIterable, Sendable {
        case l1, l2
        case bnScale = "bn-scale"
        case apoz, taylor

        /// True for the data-driven criteria, which need validation images.
        public var needsImages: Bool { self == .apoz || self == .taylor }
        /// True when the criterion also needs the images' labels.
        public var needsLabels: Bool { self == .taylor }
    }

    public var kind: Kind {
        switch self {
        case .l1: .l1
        case .l2: .l2
        case .bnScale: .bnScale
        case .apoz: .apoz
        case .taylor: .taylor
        }
    }
}

/// Scores every channel of every prunable group in `groups` (a lower score
/// is pruned first). Unprunable groups get no entry.
///
/// - Parameters:
///   - groups: groups of `channelDependencyGroups(in: model.graph)`, all or some.
///   - model: the model the groups come from; data-driven criteria run it,
///     applying its input normalization to the images (pixels in [0, 1]).
///   - threads: workers for the data-driven criteria.
/// - Returns: one score per channel, by group id.
/// - Throws: `StructuredPruningError.criterionNotApplicable` when a group has
///   nothing the criterion measures (no BatchNorm for `bnScale`, no ReLU for
///   `apoz`); `.invalidData` for images or labels that do not fit the model.
public func channelImportance(of groups: [ChannelGroup], in model: Model, criterion: ImportanceCriterion,
                              threads: Int = 1) throws -> [Int: [Float]] {
    let prunable = groups.filter(\.isPrunable)
    switch criterion {
    case .l1:
        return try weightScores(prunable, model.graph, criterion, role: .filter, element: { Double(abs($0)) })
    case .l2:
        return try weightScores(prunable, model.graph, criterion, role: .filter, element: { Double($0 * $0) },
                                channel: { $0.squareRoot() })
    case .bnScale:
        return try weightScores(prunable, model.graph, criterion, role: .normScale, element: { Double(abs($0)) })
    case .apoz(let images):
        return try nonZeroFractions(prunable, model: model, images: images, threads: threads)
    case .taylor(let images, let labels):
        return try taylorScores(prunable, model: model, images: images, labels: labels, threads: threads)
    }
}

/// Scores from the slices of `role`: per slice, `element` of each weight is
/// summed per channel and `channel` applied to the sum (√ for an L2 norm);
/// then slices are normalized and averaged (`meanOfNormalized`).
private func weightScores(_ groups: [ChannelGroup], _ graph: Graph, _ criterion: ImportanceCriterion, role: SliceRole,
                          element: (Float) -> Double, channel: (Double) -> Double = { $0 })
                          throws(StructuredPruningError) -> [Int: [Float]] {
    var scores: [Int: [Float]] = [:]
    for group in groups {
        let slices = group.slices(role)
        guard !slices.isEmpty else {
            let missing = role == .normScale ? "BatchNorm" : "source filter"
            throw .criterionNotApplicable(criterion: criterion.kind.rawValue, group: group.id,
                                          sourceLayers: group.sourceLayers, reason: "the group has no \(missing)")
        }
        let perSlice = slices.map { slice in
            let tensor = graph.initializers[slice.initializer]!
            return channelSums(tensor.floats.map(element), shape: tensor.shape, axis: slice.axis,
                               mapping: slice.mapping, channels: group.channels).map(channel)
        }
        scores[group.id] = meanOfNormalized(perSlice)
    }
    return scores
}

/// Sums `values` (row-major in `shape`) per channel, channel `c` being the
/// indices `mapping.indices(ofChannel: c)` along `axis`.
func channelSums(_ values: [Double], shape: [Int], axis: Int, mapping: ChannelMapping, channels: Int) -> [Double] {
    let (dim, inner) = (shape[axis], shape[(axis + 1)...].reduce(1, *))
    let outer = shape[..<axis].reduce(1, *)
    var sums = [Double](repeating: 0, count: channels)
    for c in 0..<channels {
        for o in 0..<outer {
            for k in mapping.indices(ofChannel: c) {
                let start = (o * dim + k) * inner
                sums[c] += values[start..<(start + inner)].reduce(0, +)
            }
        }
    }
    return sums
}

/// Each contributor divided by its mean over the channels (left as is when
/// that mean is zero), then averaged over contributors, channel by channel.
func meanOfNormalized(_ contributors: [[Double]]) -> [Float] {
    guard let channels = contributors.first?.count else { return [] }
    var total = [Double](repeating: 0, count: channels)
    for scores in contributors {
        let mean = scores.reduce(0, +) / Double(max(channels, 1))
        for c in 0..<channels { total[c] += mean > 0 ? scores[c] / mean : scores[c] }
    }
    return total.map { Float($0 / Double(contributors.count)) }
}
