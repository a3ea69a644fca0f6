import Testing
@testable import Compress

@Suite struct BatchNormFoldingTests {
    typealias F = RuntimeFixtures

    /// conv -> BN -> relu -> linear (via flatten) -> BN, biases absent and present.
    func graph(convBias: Bool) -> Graph {
        var initializers: [String: Tensor] = ["w": F.weights([4, 2, 3, 3], seed: 1), "fc.w": F.weights([3, 64], seed: 2)]
        for (name, t) in F.batchNormParameters("bn1", channels: 4, seed: 10) + F.batchNormParameters("bn2", channels: 3, seed: 20) {
            initializers[name] = t
        }
        if convBias { initializers["b"] = F.weights([4], seed: 3) }
        return Graph(
            inputs: [GraphInput(name: "x", sampleShape: [2, 4, 4])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: convBias ? ["x", "w", "b"] : ["x", "w"], output: "c"),
                    Node(name: "bn1", op: .batchNorm(epsilon: 1e-5), inputs: ["c", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], output: "n"),
                    Node(name: "relu", op: .relu, inputs: ["n"], output: "r"),
                    Node(name: "flat", op: .flatten(axis: 1), inputs: ["r"], output: "f"),
                    Node(name: "fc", op: .linear, inputs: ["f", "fc.w"], output: "l"),
                    Node(name: "bn2", op: .batchNorm(epsilon: 1e-3), inputs: ["l", "bn2.scale", "bn2.bias", "bn2.mean", "bn2.var"], output: "y")],
            initializers: initializers)
    }

    @Test(arguments: [false, true]) func foldingKeepsOutputsAndRemovesBatchNorms(_ convBias: Bool) throws {
        let original = graph(convBias: convBias)
        let (folded, names) = foldingBatchNorm(original)
        #expect(names == ["bn1", "bn2"])
        #expect(!folded.nodes.contains { if case .batchNorm = $0.op { true } else { false } })
        #expect(!folded.initializers.keys.contains { $0.hasPrefix("bn") })
        #expect(folded.nodes.first { $0.name == "conv" }?.inputs.count == 3)
        #expect(folded.nodes.first { $0.name == "fc" }?.output == "y")
        var rng = SeededGenerator(seed: 4)
        let x = rng.gaussianTensor([3, 2, 4, 4])
        let before = try ReferenceEvaluator.run(original, inputs: ["x": x])["y"]!
        let after = try ReferenceEvaluator.run(folded, inputs: ["x": x])["y"]!
        #expect(F.isClose(after, before))
    }

    /// A conv output read by the BN and by another node must stay as it is.
    @Test func sharedLayerOutputIsNotFolded() {
        var g = graph(convBias: true)
        g.outputs.append("c")
        let (folded, names) = foldingBatchNorm(g)
        #expect(names == ["bn2"])
        #expect(folded.nodes.contains { $0.name == "bn1" })
    }

    @Test func createdBiasNameDoesNotCollide() {
        var g = graph(convBias: false)
        g.initializers["conv.bias"] = .zeros([1])
        g.nodes.append(Node(name: "extra", op: .add, inputs: ["y", "conv.bias"], output: "z"))
        let (folded, _) = foldingBatchNorm(g)
        #expect(folded.nodes.first { $0.name == "conv" }?.inputs[2] == "conv.bias.1")
        #expect(folded.initializers["conv.bias"] == .zeros([1]))
    }
}
