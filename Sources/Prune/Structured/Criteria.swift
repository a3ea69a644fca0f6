import Compress

/// Scores every channel of every prunable group in `groups` with `criterion`
/// (a lower score is pruned first; see `PruningCriterion` for each
/// criterion and how scores are normalized). Unprunable groups get no entry.
/// Criteria only score; choosing how many channels go is `selectChannelsToRemove`.
///
/// - Parameters:
///   - groups: groups of `channelDependencyGroups(in: model.graph)`, all or some.
///   - model: the model the groups come from; data-driven criteria run it,
///     applying its input normalization to the images (pixels in [0, 1]).
///   - criterion: any criterion but `magnitude`, which ranks single weights.
///   - calibration: the images `taylor` and `apoz` run the model on (with
///     labels for `taylor`); the other criteria ignore it.
///   - threads: workers for the data-driven criteria.
/// - Returns: one score per channel, by group id.
/// - Throws: `StructuredPruningError.criterionNotApplicable` when a group has
///   nothing the criterion measures (no BatchNorm for `bnScale`, no ReLU for
///   `apoz`, no filters for `magnitude`, which ranks single weights);
///   `.invalidData` for missing calibration images or labels, or ones that do
///   not fit the model.
public func channelImportance(of groups: [ChannelGroup], in model: Model, criterion: PruningCriterion,
                              calibration: CalibrationImages? = nil, threads: Int = 1) throws -> [Int: [Float]] {
    let prunable = groups.filter(\.isPrunable)
    switch criterion {
    case .magnitude:
        if let group = prunable.first {
            throw StructuredPruningError.criterionNotApplicable(
                criterion: criterion.rawValue, group: group.id, sourceLayers: group.sourceLayers,
                reason: "magnitude ranks single weights, not channels")
        }
        return [:]
    case .l1:
        return try weightScores(prunable, model.graph, criterion, role: .filter, element: { Double(abs($0)) })
    case .l2:
        return try weightScores(prunable, model.graph, criterion, role: .filter, element: { Double($0 * $0) },
                                channel: { $0.squareRoot() })
    case .bnScale:
        return try weightScores(prunable, model.graph, criterion, role: .normScale, element: { Double(abs($0)) })
    case .apoz:
        guard let calibration else { throw StructuredPruningError.invalidData("apoz needs calibration images") }
        return try nonZeroFractions(prunable, model: model, images: calibration.images, threads: threads)
    case .taylor:
        guard let calibration, let labels = calibration.labels else {
            throw StructuredPruningError.invalidData("taylor needs labelled calibration images")
        }
        return try taylorScores(prunable, model: model, images: calibration.images, labels: labels, threads: threads)
    }
}

/// Scores from the slices of `role`: per slice, `element` of each weight is
/// summed per channel and `channel` applied to the sum (√ for an L2 norm);
/// then slices are normalized and averaged (`meanOfNormalized`).
private func weightScores(_ groups: [ChannelGroup], _ graph: Graph, _ criterion: PruningCriterion, role: SliceRole,
                          element: (Float) -> Double, channel: (Double) -> Double = { $0 })
                          throws(StructuredPruningError) -> [Int: [Float]] {
    var scores: [Int: [Float]] = [:]
    for group in groups {
        let slices = group.slices(role)
        guard !slices.isEmpty else {
            let missing = role == .normScale ? "BatchNorm" : "source filter"
            throw .criterionNotApplicable(criterion: criterion.rawValue, group: group.id,
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
