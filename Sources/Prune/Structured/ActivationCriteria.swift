import Compress

// The data-driven criteria run the model on validation images through the
// training engine (`TrainingGraph` in eval mode: running BatchNorm statistics,
// no dropout), which keeps every activation and backpropagates.

/// Images per forward when only activations are needed.
private let activationBatch = 64

/// 1 − APoZ per channel: over every element of the channel in every ReLU or
/// ReLU6 output carrying the group, the fraction that is not exactly zero.
func nonZeroFractions(_ groups: [ChannelGroup], model: Model, images: Tensor, threads: Int) throws -> [Int: [Float]] {
    let count = try validatedImageCount(images, model: model)
    let members = try rectifiedMembers(groups, in: model.graph)
    let trainer = try TrainingGraph(model: model, threads: threads)
    var zeros = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, [Double](repeating: 0, count: $0.channels)) })
    var elements: [Int: Double] = [:]
    for start in stride(from: 0, to: count, by: activationBatch) {
        _ = try trainer.forward(images.samples(start..<min(start + activationBatch, count)), training: false)
        for group in groups {
            for member in members[group.id]! {
                let value = trainer.value(named: member.value)!
                let isZero = channelSums(value.floats.map { $0 == 0 ? 1 : 0 }, shape: value.shape, axis: 1,
                                         mapping: member.mapping, channels: group.channels)
                zeros[group.id] = zip(zeros[group.id]!, isZero).map(+)
                elements[group.id, default: 0] += Double(value.count / value.shape[1] * member.mapping.block)
            }
        }
    }
    return Dictionary(uniqueKeysWithValues: groups.map { group in
        (group.id, zeros[group.id]!.map { Float(1 - $0 / elements[group.id]!) })
    })
}

/// The members of each group that are outputs of a ReLU or ReLU6.
private func rectifiedMembers(_ groups: [ChannelGroup], in graph: Graph) throws -> [Int: [ChannelMember]] {
    let rectified = Set(graph.nodes.filter { $0.op == .relu || $0.op == .relu6 }.map(\.output))
    var members: [Int: [ChannelMember]] = [:]
    for group in groups {
        let found = group.members.filter { rectified.contains($0.value) }
        guard !found.isEmpty else {
            throw StructuredPruningError.criterionNotApplicable(
                criterion: "apoz", group: group.id, sourceLayers: group.sourceLayers,
                reason: "no ReLU or ReLU6 output carries the group's channels")
        }
        members[group.id] = found
    }
    return members
}

/// Molchanov et al.'s first-order Taylor score per channel.
///
/// Removing a channel zeroes it in the feature maps the group's readers (the
/// convolution and linear layers whose input channels it slices) consume, so
/// those are the feature maps measured. For each image alone, per feature map
/// and channel: `|Σ a·g| / M` over the channel's `M` positions, with `a` the
/// activation and `g = ∂loss/∂a` (softmax cross-entropy against the label);
/// summed over images, then normalized per feature map (`meanOfNormalized`).
///
/// The gradient with respect to a feature map comes from a probe: an identity
/// BatchNorm (scale 1, shift 0, mean 0, variance 1, epsilon 0) inserted after
/// it, whose scale gradient is exactly `Σ a·g` per channel.
func taylorScores(_ groups: [ChannelGroup], model: Model, images: Tensor, labels: [Int32],
                  threads: Int) throws -> [Int: [Float]] {
    let count = try validatedImageCount(images, model: model)
    guard labels.count == count else {
        throw StructuredPruningError.invalidData("taylor needs one label per image: \(count) images, \(labels.count) labels")
    }
    let probes = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, readFeatureMaps(of: $0, in: model.graph)) })
    let probedValues = Set(probes.values.joined().map(\.value)).sorted()
    let (probedModel, probeScales) = try insertingProbes(model, at: probedValues)
    let shapes = try model.graph.inferShapes(batch: 1)
    let trainer = try TrainingGraph(model: probedModel, threads: threads)
    var sums = Dictionary(uniqueKeysWithValues: groups.map { group in
        (group.id, probes[group.id]!.map { _ in [Double](repeating: 0, count: group.channels) })
    })
    for i in 0..<count {
        let logits = try trainer.forward(images.samples(i..<(i + 1)), training: false)
        trainer.zeroGradients()
        try trainer.backward(Loss.softmaxCrossEntropy(logits: logits, labels: [labels[i]]).gradient)
        let gradients = probeScales.mapValues { Array(trainer.parameters[$0]!.gradient).map(Double.init) }
        for group in groups {
            for (k, point) in probes[group.id]!.enumerated() {
                let gradient = gradients[point.value]!
                let positions = Double(shapes[point.value]![2...].reduce(1, *) * point.mapping.block)
                for c in 0..<group.channels {
                    sums[group.id]![k][c] += abs(point.mapping.indices(ofChannel: c).reduce(0) { $0 + gradient[$1] }) / positions
                }
            }
        }
    }
    return Dictionary(uniqueKeysWithValues: groups.map { group in
        (group.id, probes[group.id]!.isEmpty ? [Float](repeating: 0, count: group.channels) : meanOfNormalized(sums[group.id]!))
    })
}

/// The feature maps the group's readers consume, each with the group's place in it.
private func readFeatureMaps(of group: ChannelGroup, in graph: Graph) -> [ChannelMember] {
    var seen = Set<ChannelMember>()
    return group.slices(.consumerInput).compactMap { slice in
        guard let reader = graph.nodes.first(where: { $0.name == slice.node }) else { return nil }
        let member = ChannelMember(value: reader.inputs[0], mapping: slice.mapping)
        return seen.insert(member).inserted ? member : nil
    }
}

/// `model` with an identity BatchNorm probe after each of `values`, every
/// reader rewired to it; returns the probes' scale initializers by value.
private func insertingProbes(_ model: Model, at values: [String]) throws -> (Model, [String: String]) {
    var graph = model.graph
    let shapes = try graph.inferShapes(batch: 1)
    var scales: [String: String] = [:]
    for value in values {
        let probe = "\(value).taylor-probe"
        let parameterNames = ["scale", "bias", "mean", "var"].map { "\(probe).\($0)" }
        guard graph.nodeIndex(named: probe) == nil, graph.producer(of: probe) == nil,
              parameterNames.allSatisfy({ graph.initializers[$0] == nil }) else {
            throw StructuredPruningError.invalidData("cannot insert the Taylor probe '\(probe)': the name is taken")
        }
        let channels = shapes[value]![1]
        let parameters: [Tensor] = [.filled([channels], with: 1), .zeros([channels]), .zeros([channels]),
                                    .filled([channels], with: 1)]
        for (name, tensor) in zip(parameterNames, parameters) { graph.initializers[name] = tensor }
        graph.nodes = graph.nodes.map { node in
            var rewired = node
            rewired.inputs = node.inputs.map { $0 == value ? probe : $0 }
            return rewired
        }
        graph.nodes.append(Node(name: probe, op: .batchNorm(epsilon: 0), inputs: [value] + parameterNames, output: probe))
        scales[value] = parameterNames[0]
    }
    var probed = model
    probed.graph = try graph.topologicallySorted()
    return (probed, scales)
}

/// The number of images, after checking they are `[N] + model.inputShape` with N ≥ 1.
private func validatedImageCount(_ images: Tensor, model: Model) throws(StructuredPruningError) -> Int {
    guard images.rank == model.inputShape.count + 1, Array(images.shape.dropFirst()) == model.inputShape,
          images.shape[0] >= 1 else {
        throw .invalidData("images must be [N] + \(model.inputShape) with N >= 1, got \(images.shape)")
    }
    return images.shape[0]
}

extension Tensor {
    /// Samples `range` along axis 0.
    func samples(_ range: Range<Int>) -> Tensor {
        let perSample = shape.dropFirst().reduce(1, *)
        return Tensor(shape: [range.count] + shape.dropFirst(),
                      floats: Array(floats[(range.lowerBound * perSample)..<(range.upperBound * perSample)]))
    }
}
