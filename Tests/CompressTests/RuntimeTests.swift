import Testing
@testable import Compress

/// One convolution case: input sample shape, weight shape, attributes, bias.
struct ConvCase: Sendable, CustomTestStringConvertible {
    var label: String
    var sample: [Int]
    var weight: [Int]
    var attributes: Conv2d
    var hasBias = true
    var testDescription: String { label }
}

@Suite struct RuntimeTests {
    typealias F = RuntimeFixtures

    static let convCases: [ConvCase] = [
        ConvCase(label: "3x3 stride 1 pad 1", sample: [3, 8, 8], weight: [4, 3, 3, 3], attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "3x3 stride 2 pad 1", sample: [3, 9, 9], weight: [5, 3, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1))),
        ConvCase(label: "asymmetric padding, 3x2 kernel, 7x9 input", sample: [2, 7, 9], weight: [3, 2, 3, 2],
                 attributes: Conv2d(stride: Size2(1, 2), padding: Padding2(top: 1, left: 0, bottom: 2, right: 1))),
        ConvCase(label: "dilation 2", sample: [2, 10, 10], weight: [3, 2, 3, 3],
                 attributes: Conv2d(padding: .same(2), dilation: .square(2))),
        ConvCase(label: "groups 2", sample: [4, 6, 6], weight: [6, 2, 3, 3], attributes: Conv2d(padding: .same(1), groups: 2)),
        ConvCase(label: "depthwise 3x3", sample: [5, 7, 7], weight: [5, 1, 3, 3], attributes: Conv2d(padding: .same(1), groups: 5)),
        ConvCase(label: "depthwise stride 2 dilation 2 asymmetric", sample: [4, 9, 8], weight: [4, 1, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: Padding2(top: 0, left: 2, bottom: 1, right: 0),
                                    dilation: .square(2), groups: 4)),
        ConvCase(label: "depthwise multiplier 2", sample: [3, 6, 6], weight: [6, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 3)),
        ConvCase(label: "depthwise multiplier 3, 3x1 kernel, stride 2, asymmetric padding", sample: [4, 9, 8],
                 weight: [12, 1, 3, 1],
                 attributes: Conv2d(stride: .square(2), padding: Padding2(top: 2, left: 0, bottom: 0, right: 1), groups: 4)),
        ConvCase(label: "1x1", sample: [6, 5, 5], weight: [4, 6, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1 without bias", sample: [6, 5, 5], weight: [4, 6, 1, 1], attributes: Conv2d(), hasBias: false),
        ConvCase(label: "1x1 groups 2", sample: [6, 5, 5], weight: [4, 3, 1, 1], attributes: Conv2d(groups: 2)),
        ConvCase(label: "1x1 stride 2", sample: [3, 6, 6], weight: [4, 3, 1, 1], attributes: Conv2d(stride: .square(2))),
        ConvCase(label: "5x5 stride 3 without bias", sample: [2, 12, 11], weight: [3, 2, 5, 5],
                 attributes: Conv2d(stride: .square(3), padding: .same(1)), hasBias: false),
    ]

    @Test(arguments: convCases) func convMatchesReference(_ c: ConvCase) throws {
        var parameters = [("w", F.weights(c.weight, seed: 7))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[0]], seed: 8))) }
        let graph = F.singleOp(.conv2d(c.attributes), sample: c.sample, parameters: parameters)
        #expect(try F.sessionMatchesReference(graph, batch: 1))
        #expect(try F.sessionMatchesReference(graph, batch: 3))
    }

    /// Depthwise convs with any depth multiplier take the direct depthwise loop, not a GEMM per group.
    @Test(arguments: [1, 2, 5]) func depthwiseMultiplierTakesTheDepthwisePath(_ multiplier: Int) throws {
        let weight = F.weights([3 * multiplier, 1, 3, 3], seed: 2)
        let kernel = ConvKernel(attributes: Conv2d(padding: .same(1), groups: 3), weight: weight, bias: nil, activation: .none)
        #expect(kernel.strategy == .depthwise)
        #expect(kernel.depthwiseMultiplier == multiplier)
        let grouped = ConvKernel(attributes: Conv2d(padding: .same(1), groups: 3), weight: F.weights([6, 2, 3, 3], seed: 2),
                                 bias: nil, activation: .none)
        #expect(grouped.strategy == .im2col)
    }

    /// conv -> BN -> ReLU: the BN is folded, the ReLU fused, the result unchanged.
    @Test func convBatchNormReLUIsFoldedAndFused() throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [3, 8, 8])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
                    Node(name: "bn", op: .batchNorm(epsilon: 1e-5),
                         inputs: ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], output: "b"),
                    Node(name: "relu", op: .relu, inputs: ["b"], output: "y")],
            initializers: Dictionary(uniqueKeysWithValues: [("w", F.weights([4, 3, 3, 3], seed: 3))]
                                     + F.batchNormParameters("bn", channels: 4, seed: 10)))
        let session = try Session(model: Model(graph: graph))
        #expect(session.foldedBatchNorms == ["bn"])
        #expect(session.fusedActivations == ["relu"])
        #expect(try F.sessionMatchesReference(graph, batch: 2))
    }

    @Test(arguments: [Op.relu, .relu6]) func linearActivationIsFused(_ activation: Op) throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [12])], outputs: ["y"],
            nodes: [Node(name: "fc", op: .linear, inputs: ["x", "w", "b"], output: "h"),
                    Node(name: "act", op: activation, inputs: ["h"], output: "y")],
            initializers: ["w": F.weights([7, 12], seed: 4, std: 3), "b": F.weights([7], seed: 5)])
        #expect(try Session(model: Model(graph: graph)).fusedActivations == ["act"])
        #expect(try F.sessionMatchesReference(graph, batch: 1))
        #expect(try F.sessionMatchesReference(graph, batch: 5))
    }

    @Test func linearWithoutBiasBatch1And5() throws {
        let graph = F.singleOp(.linear, sample: [20], parameters: [("w", F.weights([9, 20], seed: 2))])
        #expect(try F.sessionMatchesReference(graph, batch: 1))
        #expect(try F.sessionMatchesReference(graph, batch: 5))
    }

    static let poolCases: [Op] = [
        .maxPool(Pool2d(kernel: .square(2))),
        .maxPool(Pool2d(kernel: .square(2), ceilMode: true)),
        .maxPool(Pool2d(kernel: .square(2), padding: Padding2(top: 1, left: 0, bottom: 0, right: 1))),
        .maxPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1))),
        .maxPool(Pool2d(kernel: .square(3), stride: .square(2), ceilMode: true)),
        .maxPool(Pool2d(kernel: Size2(2, 3), stride: Size2(1, 2), padding: Padding2(top: 1, left: 0, bottom: 0, right: 1),
                        dilation: .square(2), ceilMode: true)),
        .avgPool(Pool2d(kernel: .square(2)), countIncludePad: false),
        .avgPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1)), countIncludePad: true),
        .avgPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1)), countIncludePad: false),
        .avgPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1), ceilMode: true), countIncludePad: true),
        .avgPool(Pool2d(kernel: .square(2), stride: .square(2), ceilMode: true), countIncludePad: false),
        .avgPool(Pool2d(kernel: .square(2), stride: .square(2), ceilMode: true), countIncludePad: true),
        .globalAvgPool,
    ]

    @Test(arguments: poolCases) func poolMatchesReference(_ op: Op) throws {
        let graph = F.singleOp(op, sample: [3, 7, 8])
        #expect(try F.sessionMatchesReference(graph, batch: 2))
    }

    @Test(arguments: [Op.relu, .relu6, .leakyRelu(alpha: 0.1), .sigmoid, .tanh, .dropout(ratio: 0.5),
                      .softmax(axis: 1), .softmax(axis: -1), .flatten(axis: 1), .flatten(axis: 2),
                      .reshape(shape: [0, -1, 4]), .reshape(shape: [-1])])
    func unaryOpMatchesReference(_ op: Op) throws {
        var rng = SeededGenerator(seed: 9)
        let graph = F.singleOp(op, sample: [3, 4, 4])
        let x = rng.gaussianTensor([2, 3, 4, 4], std: 4)
        let fast = try Session(model: Model(graph: graph)).run(inputs: ["x": x])["y"]!
        let reference = try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!
        #expect(F.isClose(fast, reference))
    }

    /// x op constant, for constants of several broadcastable shapes, on both sides.
    @Test(arguments: [[3, 1, 1], [5], [1], [3, 4, 5], [1, 3, 1, 5], [4, 1]])
    func broadcastingWithConstant(_ constantShape: [Int]) throws {
        for op in [Op.add, .sub, .mul, .div] {
            let constant = F.uniform(constantShape, seed: 11, in: 0.5...2)
            let right = F.singleOp(op, sample: [3, 4, 5], parameters: [("k", constant)])
            #expect(try F.sessionMatchesReference(right), "x \(op.kind) \(constantShape)")
            var left = right
            left.nodes[0].inputs = ["k", "x"]
            #expect(try F.sessionMatchesReference(left), "\(constantShape) \(op.kind) x")
        }
    }

    /// A squeeze-and-excitation-like gate: features times their own pooled, sigmoid'ed summary.
    @Test func broadcastingBetweenComputedValues() throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [4, 5, 5])], outputs: ["y"],
            nodes: [Node(name: "pool", op: .globalAvgPool, inputs: ["x"], output: "p"),
                    Node(name: "gate", op: .sigmoid, inputs: ["p"], output: "g"),
                    Node(name: "scale", op: .mul, inputs: ["x", "g"], output: "y")],
            initializers: [:])
        #expect(try F.sessionMatchesReference(graph, batch: 3))
    }

    @Test(arguments: [1, 2, 3, -1]) func concatMatchesReference(_ axis: Int) throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [2, 4, 4])], outputs: ["y"],
            nodes: [Node(name: "a", op: .relu, inputs: ["x"], output: "a"),
                    Node(name: "b", op: .tanh, inputs: ["x"], output: "b"),
                    Node(name: "c", op: .sigmoid, inputs: ["x"], output: "c"),
                    Node(name: "cat", op: .concat(axis: axis), inputs: ["a", "x", "b", "c"], output: "y")],
            initializers: [:])
        #expect(try F.sessionMatchesReference(graph, batch: 2))
    }

    /// BatchNorm after an Add cannot be folded and runs as its own kernel.
    @Test func unfoldableBatchNormRunsStandalone() throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [3, 4, 4])], outputs: ["y"],
            nodes: [Node(name: "add", op: .add, inputs: ["x", "x"], output: "s"),
                    Node(name: "bn", op: .batchNorm(epsilon: 1e-3),
                         inputs: ["s", "bn.scale", "bn.bias", "bn.mean", "bn.var"], output: "y")],
            initializers: Dictionary(uniqueKeysWithValues: F.batchNormParameters("bn", channels: 3, seed: 2)))
        #expect(try Session(model: Model(graph: graph)).foldedBatchNorms.isEmpty)
        #expect(try F.sessionMatchesReference(graph))
    }

    /// A residual block: buffers are reused while the skip value stays live.
    @Test func residualBlockWithBufferReuse() throws {
        let graph = Self.residualGraph()
        #expect(try F.sessionMatchesReference(graph, batch: 1))
        #expect(try F.sessionMatchesReference(graph, batch: 4))
    }

    /// Running batch sizes in turn reuses cached plans and changes nothing.
    @Test func batchPlansAreCachedPerBatchSize() throws {
        let graph = Self.residualGraph()
        let session = try Session(model: Model(graph: graph))
        var rng = SeededGenerator(seed: 5)
        let small = rng.gaussianTensor([1, 3, 8, 8]), large = rng.gaussianTensor([4, 3, 8, 8])
        let first = try session.run(inputs: ["x": small])["y"]!
        _ = try session.run(inputs: ["x": large])
        let again = try session.run(inputs: ["x": small])["y"]!
        #expect(first == again)
        let reference = try ReferenceEvaluator.run(graph, inputs: ["x": large])["y"]!
        #expect(F.isClose(try session.run(inputs: ["x": large])["y"]!, reference))
    }

    /// Two outputs, one of them an intermediate value also read later.
    @Test func multipleOutputs() throws {
        var graph = Self.residualGraph()
        graph.outputs = ["y", "h1", "flat"]
        graph.nodes.append(Node(name: "flatten", op: .flatten(axis: 1), inputs: ["y"], output: "flat"))
        let pairs = try F.bothOutputs(graph, batch: 2)
        #expect(pairs.count == 3)
        for (fast, reference) in pairs { #expect(F.isClose(fast, reference)) }
    }

    /// A LeNet-5-like classifier through `run(_:)` with normalization.
    @Test func lenetWithNormalizationMatchesReference() throws {
        let model = Model(graph: Self.lenetGraph(), metadata: ModelMetadata(normalization: Normalization(mean: [0.1307], std: [0.3081])))
        var rng = SeededGenerator(seed: 3)
        for batch in [1, 5] {
            let pixels = rng.uniformTensor([batch, 1, 28, 28])
            let fast = try Session(model: model).run(pixels)
            let reference = try ReferenceEvaluator.run(model: model, input: pixels)
            #expect(fast.shape == [batch, 10])
            #expect(F.isClose(fast, reference))
        }
    }

    /// Two workers: images, output channels (batch 1), linear rows and features, and pool planes are split.
    @Test func twoWorkersGiveTheSameResults() throws {
        var graph = Self.lenetGraph()
        graph.nodes.insert(Node(name: "dw", op: .conv2d(Conv2d(padding: .same(2), groups: 20)),
                                inputs: ["c1", "dw.w"], output: "c1dw"), at: 1)
        graph.nodes[2].inputs = ["c1dw"]
        graph.initializers["dw.w"] = F.weights([20, 1, 5, 5], seed: 9, std: 0.2)
        let parallel = try Session(model: Model(graph: graph), threads: 2)
        var rng = SeededGenerator(seed: 6)
        for batch in [1, 3, 8] {
            let x = rng.gaussianTensor([batch, 1, 28, 28])
            let reference = try ReferenceEvaluator.run(graph, inputs: ["x": x])["logits"]!
            #expect(F.isClose(try parallel.run(x), reference), "batch \(batch)")
        }
    }

    @Test func wrongInputShapeNamesExpectedAndGot() throws {
        let session = try Session(model: Model(graph: Self.lenetGraph()))
        #expect(throws: RuntimeError.wrongInputShape(name: "x", expectedSample: [1, 28, 28], got: [1, 28, 27])) {
            try session.run(Tensor.zeros([1, 28, 27]))
        }
        #expect(throws: RuntimeError.wrongInputShape(name: "x", expectedSample: [1, 28, 28], got: [28, 28])) {
            try ReferenceEvaluator.run(Self.lenetGraph(), inputs: ["x": Tensor.zeros([28, 28])])
        }
        let message = RuntimeError.wrongInputShape(name: "x", expectedSample: [1, 28, 28], got: [1, 28, 27]).description
        #expect(message == "input 'x' must have shape [N, 1, 28, 28] (a batch of [1, 28, 28]), got [1, 28, 27]")
    }

    @Test func nonFloatAndMissingInputsAreRejected() throws {
        let session = try Session(model: Model(graph: Self.lenetGraph()))
        #expect(throws: RuntimeError.notFloat(name: "x", dtype: .int64)) {
            try session.run(Tensor(shape: [1, 1, 28, 28], int64s: [Int64](repeating: 0, count: 784)))
        }
        #expect(throws: RuntimeError.missingInput(name: "x", supplied: ["image"])) {
            try session.run(inputs: ["image": Tensor.zeros([1, 1, 28, 28])])
        }
    }

    @Test func convWeightMustBeInitializer() {
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [1, 4, 4]), GraphInput(name: "w", sampleShape: [1, 3, 3])],
                          outputs: ["y"], nodes: [Node(name: "conv", op: .conv2d(Conv2d()), inputs: ["x", "w"], output: "y")],
                          initializers: [:])
        #expect(throws: RuntimeError.self) { try Session(model: Model(graph: graph)) }
    }

    /// conv -> relu -> conv -> (+ skip) -> relu, with a 1x1 projection on the skip.
    static func residualGraph() -> Graph {
        Graph(
            inputs: [GraphInput(name: "x", sampleShape: [3, 8, 8])], outputs: ["y"],
            nodes: [Node(name: "c1", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w1", "b1"], output: "h0"),
                    Node(name: "r1", op: .relu, inputs: ["h0"], output: "h1"),
                    Node(name: "c2", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["h1", "w2"], output: "h2"),
                    Node(name: "proj", op: .conv2d(Conv2d()), inputs: ["x", "wp"], output: "skip"),
                    Node(name: "add", op: .add, inputs: ["h2", "skip"], output: "s"),
                    Node(name: "r2", op: .relu, inputs: ["s"], output: "y")],
            initializers: ["w1": F.weights([6, 3, 3, 3], seed: 1), "b1": F.weights([6], seed: 2),
                           "w2": F.weights([6, 6, 3, 3], seed: 3), "wp": F.weights([6, 3, 1, 1], seed: 4)])
    }

    /// LeNet-5 (Caffe variant): conv 20@5x5, maxpool 2, conv 50@5x5, maxpool 2, fc 500, relu, fc 10.
    static func lenetGraph() -> Graph {
        let pool = Op.maxPool(Pool2d(kernel: .square(2)))
        return Graph(
            inputs: [GraphInput(name: "x", sampleShape: [1, 28, 28])], outputs: ["logits"],
            nodes: [Node(name: "conv1", op: .conv2d(Conv2d()), inputs: ["x", "conv1.w", "conv1.b"], output: "c1"),
                    Node(name: "pool1", op: pool, inputs: ["c1"], output: "p1"),
                    Node(name: "conv2", op: .conv2d(Conv2d()), inputs: ["p1", "conv2.w", "conv2.b"], output: "c2"),
                    Node(name: "pool2", op: pool, inputs: ["c2"], output: "p2"),
                    Node(name: "flatten", op: .flatten(axis: 1), inputs: ["p2"], output: "f"),
                    Node(name: "fc1", op: .linear, inputs: ["f", "fc1.w", "fc1.b"], output: "h"),
                    Node(name: "relu", op: .relu, inputs: ["h"], output: "r"),
                    Node(name: "fc2", op: .linear, inputs: ["r", "fc2.w", "fc2.b"], output: "logits")],
            initializers: ["conv1.w": F.weights([20, 1, 5, 5], seed: 1, std: 0.2), "conv1.b": F.weights([20], seed: 2, std: 0.1),
                           "conv2.w": F.weights([50, 20, 5, 5], seed: 3, std: 0.05), "conv2.b": F.weights([50], seed: 4, std: 0.1),
                           "fc1.w": F.weights([500, 800], seed: 5, std: 0.03), "fc1.b": F.weights([500], seed: 6, std: 0.1),
                           "fc2.w": F.weights([10, 500], seed: 7, std: 0.05), "fc2.b": F.weights([10], seed: 8, std: 0.1)])
    }
}
