import Testing
@testable import Compress
@testable import Prune

/// Channel pruning through LayerNorms over channels (ConvNeXt, Liu et al. 2022).
///
/// A LayerNorm keeps channel identity (its scale and shift are sliced), but its
/// mean and variance are taken over every channel, so after pruning it
/// normalizes over the kept channels only. The oracle is therefore the
/// original model with the removed channels silenced (zero filters and
/// biases) and each LayerNorm the removed channels pass through replaced by a
/// reference LayerNorm over the kept channels (zero on the removed ones).
///
/// Which ConvNeXt channels are prunable: the 4C hidden channels of a block
/// (first 1x1 conv -> activation -> second 1x1 conv) are removed exactly, like
/// any conv's; the residual stream's channels (stem conv or downsampling conv,
/// every block's second 1x1 conv, through the Adds, depthwise convs and every
/// LayerNorm) form one group per stage and are prunable too, with the
/// renormalization above.
@Suite struct LayerNormPruningTests {
    typealias F = StructuredFixtures

    /// A two-stage ConvNeXt-style network on 3x16x16 images:
    ///
    ///     stem (conv 4x4 s4, 8) ─ stem.ln ─ block1 ─ down.ln ─ down (conv 2x2 s2, 16) ─ block2 ─ gap ─ flatten ─ fc (5)
    ///     block: x ─ dw (7x7 depthwise) ─ ln ─ pw1 (1x1, 4C) ─ relu ─ pw2 (1x1, C) ─ add(x)
    static func convNeXtModel(seed: UInt64 = 21) -> Model {
        var rng = SeededGenerator(seed: seed)
        var initializers: [String: Tensor] = [:]
        var nodes: [Node] = []
        func conv(_ name: String, _ input: String, out: Int, in channels: Int, kernel: Int, stride: Int = 1,
                  padding: Int = 0, groups: Int = 1) -> String {
            initializers["\(name).weight"] = rng.gaussianTensor([out, channels / groups, kernel, kernel], std: 0.4)
            initializers["\(name).bias"] = rng.gaussianTensor([out], std: 0.3)
            nodes.append(Node(name: name, op: .conv2d(Conv2d(stride: .square(stride), padding: .same(padding), groups: groups)),
                              inputs: [input, "\(name).weight", "\(name).bias"], output: name))
            return name
        }
        func layerNorm(_ name: String, _ input: String, channels: Int) -> String {
            initializers["\(name).scale"] = rng.uniformTensor([channels], in: 0.5...1.5)
            initializers["\(name).bias"] = rng.gaussianTensor([channels], std: 0.3)
            nodes.append(Node(name: name, op: .layerNorm(epsilon: 1e-6), inputs: [input, "\(name).scale", "\(name).bias"],
                              output: name))
            return name
        }
        func block(_ name: String, _ input: String, channels c: Int) -> String {
            let dw = conv("\(name).dw", input, out: c, in: c, kernel: 7, padding: 3, groups: c)
            let ln = layerNorm("\(name).ln", dw, channels: c)
            let pw1 = conv("\(name).pw1", ln, out: 4 * c, in: c, kernel: 1)
            nodes.append(Node(name: "\(name).relu", op: .relu, inputs: [pw1], output: "\(name).relu"))
            let pw2 = conv("\(name).pw2", "\(name).relu", out: c, in: 4 * c, kernel: 1)
            nodes.append(Node(name: "\(name).add", op: .add, inputs: [pw2, input], output: "\(name).add"))
            return "\(name).add"
        }
        var x = conv("stem", "x", out: 8, in: 3, kernel: 4, stride: 4)
        x = layerNorm("stem.ln", x, channels: 8)
        x = block("block1", x, channels: 8)
        x = layerNorm("down.ln", x, channels: 8)
        x = conv("down", x, out: 16, in: 8, kernel: 2, stride: 2)
        x = block("block2", x, channels: 16)
        nodes.append(Node(name: "gap", op: .globalAvgPool, inputs: [x], output: "gap"))
        nodes.append(Node(name: "flatten", op: .flatten(axis: 1), inputs: ["gap"], output: "flatten"))
        initializers["fc.weight"] = rng.gaussianTensor([5, 16], std: 0.5)
        initializers["fc.bias"] = rng.gaussianTensor([5], std: 0.1)
        nodes.append(Node(name: "fc", op: .linear, inputs: ["flatten", "fc.weight", "fc.bias"], output: "fc"))
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 16, 16])], outputs: ["fc"],
                                  nodes: nodes, initializers: initializers))
    }

    /// LayerNorm over the channels not in `removed`, in Double; removed channels are 0.
    static func layerNormOverKept(_ x: Tensor, scale: Tensor, bias: Tensor?, epsilon: Float, removed: Set<Int>) -> Tensor {
        let (batch, channels, inner) = (x.shape[0], x.shape[1], x.shape[2...].reduce(1, *))
        let kept = (0..<channels).filter { !removed.contains($0) }
        let (xs, g, b) = (x.floats, scale.floats, bias?.floats)
        var out = [Float](repeating: 0, count: xs.count)
        for n in 0..<batch {
            for p in 0..<inner {
                let values = kept.map { Double(xs[(n * channels + $0) * inner + p]) }
                let mean = values.reduce(0, +) / Double(kept.count)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(kept.count)
                for (k, c) in kept.enumerated() {
                    let normalized = (values[k] - mean) / (variance + Double(epsilon)).squareRoot()
                    out[(n * channels + c) * inner + p] = Float(normalized * Double(g[c]) + Double(b?[c] ?? 0))
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }

    /// The reference evaluator on `model`, with the LayerNorms in `removedAt` normalizing over their kept channels.
    static func oracleOutputs(_ model: Model, removedAt: [String: Set<Int>], inputs: [String: Tensor]) throws -> [String: Tensor] {
        let graph = model.graph
        var values: [String: Tensor] = graph.initializers.mapValues { $0.asFloat32() }
        for (name, t) in inputs { values[name] = t }
        for node in try graph.topologicallySorted().nodes {
            let args = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            if case .layerNorm(let epsilon) = node.op, let removed = removedAt[node.name] {
                values[node.output] = layerNormOverKept(args[0]!, scale: args[1]!, bias: args.count > 2 ? args[2] : nil,
                                                        epsilon: epsilon, removed: removed)
            } else {
                values[node.output] = ReferenceEvaluator.evaluate(node, args)
            }
        }
        return Dictionary(uniqueKeysWithValues: graph.outputs.map { ($0, values[$0]!) })
    }

    @Test func dependencyGroupsOfAConvNeXtNetwork() throws {
        let groups = try channelDependencyGroups(in: Self.convNeXtModel().graph)
        let stream1 = F.group(of: "stem", in: groups)
        #expect(stream1.isPrunable)
        #expect(Set(stream1.sourceLayers) == ["stem", "block1.pw2"])
        #expect(Set(stream1.slices(.layerNormScale).map(\.node)) == ["stem.ln", "block1.ln", "down.ln"])
        #expect(Set(stream1.slices(.layerNormShift).map(\.node)) == ["stem.ln", "block1.ln", "down.ln"])
        #expect(stream1.slices(.depthwiseFilter).map(\.node) == ["block1.dw"])
        #expect(Set(F.group(of: "down", in: groups).sourceLayers) == ["down", "block2.pw2"])
        let hidden = F.group(of: "block1.pw1", in: groups)
        #expect(hidden.isPrunable && hidden.sourceLayers == ["block1.pw1"] && hidden.channels == 32)
    }

    /// Hidden channels and both residual streams pruned at once: the pruned
    /// model equals the silenced original with LayerNorms over the kept channels.
    @Test func prunedConvNeXtMatchesLayerNormOverKeptChannels() throws {
        let model = Self.convNeXtModel()
        let groups = try channelDependencyGroups(in: model.graph)
        let stream1: [Int] = [1, 6], stream2: [Int] = [3, 12], hidden1: [Int] = [0, 5, 31], hidden2: [Int] = [10, 20, 63]
        let result = try applyChannelPruning(model, removing: [
            F.group(of: "stem", in: groups).id: stream1, F.group(of: "down", in: groups).id: stream2,
            F.group(of: "block1.pw1", in: groups).id: hidden1, F.group(of: "block2.pw1", in: groups).id: hidden2,
        ])
        let silence = F.filters("stem", stream1, in: model) + F.filters("block1.pw2", stream1, in: model)
            + F.filters("block1.dw", stream1, in: model)
            + F.filters("down", stream2, in: model) + F.filters("block2.pw2", stream2, in: model)
            + F.filters("block2.dw", stream2, in: model)
            + F.filters("block1.pw1", hidden1, in: model) + F.filters("block2.pw1", hidden2, in: model)
        let silenced = F.silencing(model, silence)
        let removedAt: [String: Set<Int>] = ["stem.ln": Set(stream1), "block1.ln": Set(stream1), "down.ln": Set(stream1),
                                             "block2.ln": Set(stream2)]
        var rng = SeededGenerator(seed: 7)
        let inputs = ["x": rng.uniformTensor([2, 3, 16, 16])]
        let expected = try Self.oracleOutputs(silenced, removedAt: removedAt, inputs: inputs)["fc"]!
        let pruned = try Session(model: result.model).run(inputs: inputs)["fc"]!
        let scale = expected.floats.reduce(0) { max($0, abs($1)) }
        #expect(F.maxAbsDifference(pruned, expected) <= max(1e-4, 1e-5 * scale), "\(pruned.floats) vs \(expected.floats)")
        // Zeroing alone is not the oracle: the removed channels' zeros would still count in the statistics.
        let zeroedOnly = try ReferenceEvaluator.run(silenced.graph, inputs: inputs)["fc"]!
        #expect(F.maxAbsDifference(zeroedOnly, expected) > 1e-3)
        let original = try ReferenceEvaluator.run(model.graph, inputs: inputs)["fc"]!
        #expect(F.maxAbsDifference(original, expected) > 1e-3)

        let initializers = result.model.graph.initializers
        #expect(initializers["stem.weight"]!.shape == [6, 3, 4, 4])
        #expect(initializers["stem.ln.scale"]!.shape == [6] && initializers["down.ln.bias"]!.shape == [6])
        #expect(initializers["block1.dw.weight"]!.shape == [6, 1, 7, 7])
        #expect(initializers["block1.pw1.weight"]!.shape == [29, 6, 1, 1])
        #expect(initializers["block1.pw2.weight"]!.shape == [6, 29, 1, 1])
        #expect(initializers["down.weight"]!.shape == [14, 6, 2, 2])
        #expect(initializers["block2.ln.scale"]!.shape == [14])
        #expect(initializers["block2.pw1.weight"]!.shape == [61, 14, 1, 1])
        #expect(initializers["fc.weight"]!.shape == [5, 14])
    }

    /// Hidden channels only: no LayerNorm sees a removed channel, so plain silencing is the oracle.
    @Test func hiddenChannelsArePrunedExactly() throws {
        let model = Self.convNeXtModel()
        let groups = try channelDependencyGroups(in: model.graph)
        let result = try applyChannelPruning(model, removing: [F.group(of: "block1.pw1", in: groups).id: [2, 3, 17]])
        try F.expectSameOutputs(result.model, F.silencing(model, F.filters("block1.pw1", [2, 3, 17], in: model)),
                                original: model)
    }
}
