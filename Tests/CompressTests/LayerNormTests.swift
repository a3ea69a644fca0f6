import Testing
@testable import Compress
import SIMDKernels

/// `Op.layerNorm`: hand-computed reference values, runtime kernels (plain and
/// NCHW8c) against the reference, finite-difference gradients, shape checks
/// and the model file round trip.
@Suite struct LayerNormTests {
    typealias F = RuntimeFixtures
    typealias G = GradientCheck

    static func parameters(channels: Int, bias: Bool = true, seed: UInt64 = 3) -> [(String, Tensor)] {
        var p = [("ln.scale", F.uniform([channels], seed: seed, in: 0.5...1.5))]
        if bias { p.append(("ln.bias", F.weights([channels], seed: seed + 1))) }
        return p
    }

    /// Two pixels of three channels, epsilon 0. Pixel 0 holds (1, 2, 3): mean 2,
    /// variance 2/3, normalized (-√1.5, 0, √1.5). Pixel 1 holds (4, 4, 10):
    /// mean 6, variance 8, normalized (-1/√2, -1/√2, √2).
    @Test func referenceNormalizesOverChannelsAtEachPixel() throws {
        let x = Tensor(shape: [1, 3, 1, 2], floats: [1, 4, 2, 4, 3, 10])
        let graph = F.singleOp(.layerNorm(epsilon: 0), sample: [3, 1, 2], parameters: [
            ("s", Tensor(shape: [3], floats: [1, 2, 0.5])), ("b", Tensor(shape: [3], floats: [0, 1, -1])),
        ])
        let y = try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!
        let r15 = Float(1.5).squareRoot(), r2 = Float(2).squareRoot()
        let expected: [Float] = [-r15, -1 / r2,             // channel 0: scale 1, bias 0
                                 1, 1 - 2 / r2,             // channel 1: scale 2, bias 1
                                 -1 + 0.5 * r15, -1 + 0.5 * r2]  // channel 2: scale 0.5, bias -1
        #expect(F.isClose(y, Tensor(shape: [1, 3, 1, 2], floats: expected), relative: 1e-6), "\(y.floats)")
    }

    /// On `[N, F]` it is LayerNorm over the features: (1, 2, 3, 4) has mean 2.5 and
    /// variance 1.25; epsilon 0.75 makes the deviation √2.
    @Test func referenceOverFeaturesWithoutBias() throws {
        let x = Tensor(shape: [2, 4], floats: [1, 2, 3, 4, 5, 5, 5, 5])
        let graph = F.singleOp(.layerNorm(epsilon: 0.75), sample: [4], parameters: [("s", .filled([4], with: 2))])
        let y = try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!
        let r2 = Float(2).squareRoot()
        let expected: [Float] = [-3 / r2, -1 / r2, 1 / r2, 3 / r2, 0, 0, 0, 0]
        #expect(F.isClose(y, Tensor(shape: [2, 4], floats: expected), relative: 1e-6), "\(y.floats)")
    }

    @Test(arguments: [[5, 3, 7], [10], [3, 4], [19, 1, 1], [8, 6, 6]])
    func plainKernelMatchesReference(_ sample: [Int]) throws {
        for bias in [true, false] {
            let graph = F.singleOp(.layerNorm(epsilon: 1e-5), sample: sample,
                                   parameters: Self.parameters(channels: sample[0], bias: bias))
            #expect(try F.sessionMatchesReference(graph, batch: 1))
            #expect(try F.sessionMatchesReference(graph, batch: 3))
        }
    }

    /// conv (blocked output) -> LayerNorm -> conv: the LayerNorm reads and writes
    /// NCHW8c, with full and partial channel blocks and planes longer than a tile.
    @Test(arguments: [3, 8, 12, 20]) func blockedKernelMatchesReference(_ channels: Int) throws {
        var initializers = Dictionary(uniqueKeysWithValues: Self.parameters(channels: channels))
        initializers["w1"] = F.weights([channels, 3, 3, 3], seed: 5, std: 0.3)
        initializers["w2"] = F.weights([4, channels, 1, 1], seed: 6, std: 0.3)
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [3, 9, 7])], outputs: ["y"],
            nodes: [Node(name: "conv1", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w1"], output: "c"),
                    Node(name: "ln", op: .layerNorm(epsilon: 1e-6), inputs: ["c", "ln.scale", "ln.bias"], output: "n"),
                    Node(name: "conv2", op: .conv2d(Conv2d()), inputs: ["n", "w2"], output: "y")],
            initializers: initializers)
        let plan = try ExecutionPlan(graph: graph)
        #expect(plan.steps.contains { $0.kernel is BlockedLayerNormKernel } == cpuSupportsBlockedKernels)
        for (batch, threads) in [(1, 1), (3, 1), (3, 2)] {
            #expect(try BlockedConvTests.matchesReference(graph, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
        }
    }

    /// A LayerNorm that is a graph output after a blocked conv: its output is converted back to NCHW.
    @Test func blockedLayerNormAsGraphOutput() throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [4, 5, 5])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
                    Node(name: "ln", op: .layerNorm(epsilon: 1e-5), inputs: ["c", "ln.scale"], output: "y")],
            initializers: Dictionary(uniqueKeysWithValues: Self.parameters(channels: 11, bias: false)
                                     + [("w", F.weights([11, 4, 3, 3], seed: 2, std: 0.3))]))
        #expect(try BlockedConvTests.matchesReference(graph, batch: 2))
    }

    static let tolerance = 2e-3

    /// Gradients through the mean and variance (input) and for scale and bias.
    @Test(arguments: [[4, 3, 3], [7], [9, 2, 1]]) func gradientMatchesFiniteDifferences(_ sample: [Int]) throws {
        for bias in [true, false] {
            let graph = F.singleOp(.layerNorm(epsilon: 1e-5), sample: sample,
                                   parameters: Self.parameters(channels: sample[0], bias: bias))
            let result = try G.run(graph, input: G.gaussian([3] + sample, seed: 1, std: 2))
            #expect(result.worst < Self.tolerance, "\(result)")
            #expect(result.errors.keys.contains("ln.scale") && result.errors.keys.contains("ln.bias") == bias)
        }
    }

    /// Training forward equals the reference (LayerNorm has no batch statistics).
    @Test func trainingForwardMatchesReference() throws {
        let graph = F.singleOp(.layerNorm(epsilon: 1e-5), sample: [6, 2, 3], parameters: Self.parameters(channels: 6))
        let x = G.gaussian([2, 6, 2, 3], seed: 4)
        let trainer = try TrainingGraph(model: Model(graph: graph), seed: 1)
        for training in [true, false] {
            let y = try trainer.forward(x, training: training)
            #expect(F.isClose(y, try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!))
        }
    }

    @Test func shapeInferenceChecksParameters() throws {
        let good = F.singleOp(.layerNorm(epsilon: 1e-5), sample: [4, 3, 3], parameters: Self.parameters(channels: 4))
        #expect(try good.inferShapes(batch: 2)["y"] == [2, 4, 3, 3])
        let wrong = F.singleOp(.layerNorm(epsilon: 1e-5), sample: [4, 3, 3], parameters: Self.parameters(channels: 3))
        #expect(throws: GraphError.shapeMismatch(node: "op", value: "ln.scale", detail: "must be [4], got [3]")) {
            try wrong.inferShapes()
        }
        let negative = F.singleOp(.layerNorm(epsilon: -1), sample: [4], parameters: Self.parameters(channels: 4))
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "epsilon -1.0 must be finite and >= 0")) {
            try negative.inferShapes()
        }
    }

    @Test func modelFileRoundTrip() throws {
        for bias in [true, false] {
            let graph = F.singleOp(.layerNorm(epsilon: 1e-6), sample: [5, 2, 2], parameters: Self.parameters(channels: 5, bias: bias))
            let model = Model(graph: graph)
            let decoded = try ModelFile.decode(try ModelFile.encode(model))
            #expect(decoded == model)
            #expect(decoded.graph.nodes[0].op == .layerNorm(epsilon: 1e-6))
        }
    }
}
