import Testing
@testable import Compress

/// Central finite differences against `TrainingGraph.backward`.
///
/// The loss is `L = Σ r ⊙ y` for a fixed random `r` over the graph output, so
/// `dL/dy = r`. Each check perturbs up to `samples` elements of the input and
/// of every parameter by `±eps` (float32 forward, difference taken in Double)
/// and compares the numeric and analytic gradients as vectors:
/// `‖numeric − analytic‖ / max(‖numeric‖, ‖analytic‖, 1e-3) < tolerance`
/// (default eps 1e-2; the tests ask for 2e-3, observed worst about 3e-4). Inputs stay away from kinks (ReLU at 0,
/// ReLU6 at 6, ties in max pooling) by construction.
enum GradientCheck {
    struct Result: CustomStringConvertible {
        var errors: [String: Double]
        var worst: Double { errors.values.max() ?? 0 }
        var description: String { errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") }
    }

    static func run(_ graph: Graph, input: Tensor, training: Bool = true, eps: Float = 1e-2, samples: Int = 40,
                    seed: UInt64 = 11, kernels: KernelSet = .processDefault) throws -> Result {
        let trainer = try TrainingGraph(model: Model(graph: graph), seed: 5, computesInputGradient: true, kernels: kernels)
        trainer.freezesDropoutMasks = true
        let y = try trainer.forward(input, training: training)
        var rng = SeededGenerator(seed: seed)
        let r = rng.gaussianTensor(y.shape)
        try trainer.backward(r)
        let weights = r.floats.map(Double.init)
        func loss(_ x: Tensor) throws -> Double {
            zip(try trainer.forward(x, training: training).floats, weights).reduce(0) { $0 + Double($1.0) * $1.1 }
        }
        var errors: [String: Double] = [:]
        let inputAnalytic = trainer.inputGradient!.floats
        var values = input.floats
        errors["input"] = try compare(analytic: inputAnalytic, indices: sampled(values.count, samples, &rng)) { i in
            let saved = values[i]
            values[i] = saved + eps
            let plus = try loss(Tensor(shape: input.shape, floats: values))
            values[i] = saved - eps
            let minus = try loss(Tensor(shape: input.shape, floats: values))
            values[i] = saved
            return (plus - minus) / (2 * Double(eps))
        }
        for (name, p) in trainer.parameters {
            let analytic = Array(p.gradient)
            errors[name] = try compare(analytic: analytic, indices: sampled(p.count, samples, &rng)) { i in
                let saved = p.values[i]
                p.values[i] = saved + eps
                let plus = try loss(input)
                p.values[i] = saved - eps
                let minus = try loss(input)
                p.values[i] = saved
                return (plus - minus) / (2 * Double(eps))
            }
        }
        return Result(errors: errors)
    }

    private static func sampled(_ count: Int, _ samples: Int, _ rng: inout SeededGenerator) -> [Int] {
        count <= samples ? Array(0..<count) : Array((0..<count).shuffled(using: &rng).prefix(samples))
    }

    private static func compare(analytic: [Float], indices: [Int], numeric: (Int) throws -> Double) throws -> Double {
        var difference = 0.0, numericNorm = 0.0, analyticNorm = 0.0
        for i in indices {
            let n = try numeric(i), a = Double(analytic[i])
            difference += (n - a) * (n - a)
            numericNorm += n * n
            analyticNorm += a * a
        }
        return difference.squareRoot() / max(numericNorm.squareRoot(), analyticNorm.squareRoot(), 1e-3)
    }

    /// Gaussian values pushed at least `margin` away from each of `kinks`.
    static func awayFromKinks(_ shape: [Int], seed: UInt64, std: Float = 1, kinks: [Float] = [0],
                              margin: Float = 0.1) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let values = rng.gaussianTensor(shape, std: std).floats.map { v -> Float in
            var x = v
            for k in kinks where abs(x - k) < margin { x = x >= k ? k + margin + (x - k) : k - margin + (x - k) }
            return x
        }
        return Tensor(shape: shape, floats: values)
    }

    /// Distinct values `0.05 · permutation` (no ties anywhere, for max pooling).
    static func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let count = shape.elementCount
        let values = (0..<count).shuffled(using: &rng).map { Float($0 - count / 2) * 0.05 }
        return Tensor(shape: shape, floats: values)
    }

    static func gaussian(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return rng.gaussianTensor(shape, std: std)
    }
}

@Suite struct TrainingGradientTests {
    typealias F = RuntimeFixtures
    typealias G = GradientCheck
    static let tolerance = 2e-3

    static let convCases: [ConvCase] = RuntimeTests.convCases

    /// Every conv case on every kernel set this CPU runs.
    @Test(arguments: convCases) func conv(_ c: ConvCase) throws {
        var parameters = [("w", F.weights(c.weight, seed: 3))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[0]], seed: 4))) }
        let graph = F.singleOp(.conv2d(c.attributes), sample: c.sample, parameters: parameters)
        for kernels in KernelSet.supported {
            let result = try G.run(graph, input: G.gaussian([2] + c.sample, seed: 1), kernels: kernels)
            #expect(result.worst < Self.tolerance, "\(kernels): \(result)")
        }
    }

    /// Depthwise convs over rows long enough for the eight-lane loops (stride 1 and 2,
    /// depth multiplier 1 and 2) and their tails, on every kernel set (portable: plain loops).
    @Test(arguments: [([3, 6, 21], [3, 1, 3, 3], Conv2d(padding: .same(1), groups: 3)),
                      ([3, 7, 37], [3, 1, 3, 3], Conv2d(stride: .square(2), padding: .same(1), groups: 3)),
                      ([2, 5, 34], [4, 1, 5, 5], Conv2d(stride: Size2(1, 2), padding: .same(2), groups: 2))])
    func depthwiseLongRows(sample: [Int], weight: [Int], attributes: Conv2d) throws {
        let graph = F.singleOp(.conv2d(attributes), sample: sample,
                               parameters: [("w", F.weights(weight, seed: 3)), ("b", F.weights([weight[0]], seed: 4))])
        for kernels in KernelSet.supported {
            let result = try G.run(graph, input: G.gaussian([2] + sample, seed: 1), samples: 40, kernels: kernels)
            #expect(result.worst < Self.tolerance, "\(kernels): \(result)")
        }
    }

    /// The padded-plane depthwise loops (kernel sets other than portable) against the
    /// portable loops: output, filter, bias and input gradients of one training step,
    /// over strides 1-3, 3x3 and 5x5 filters, symmetric and one-sided padding, depth
    /// multipliers 1 and 2, and rows shorter and longer than a vector.
    @Test(arguments: [([3, 9, 21], [3, 1, 3, 3], Conv2d(padding: .same(1), groups: 3)),
                      ([2, 13, 37], [2, 1, 3, 3], Conv2d(stride: .square(2), padding: .same(1), groups: 2)),
                      ([2, 6, 5], [4, 1, 3, 3], Conv2d(padding: Padding2(top: 0, left: 2, bottom: 1, right: 0), groups: 2)),
                      ([3, 11, 19], [3, 1, 5, 5], Conv2d(stride: Size2(2, 1), padding: .same(2), groups: 3)),
                      ([2, 16, 17], [2, 1, 3, 3], Conv2d(stride: .square(3), padding: .same(1), groups: 2)),
                      ([2, 7, 7], [2, 1, 3, 3], Conv2d(groups: 2))])
    func depthwisePlanesMatchPortable(sample: [Int], weight: [Int], attributes: Conv2d) throws {
        let graph = F.singleOp(.conv2d(attributes), sample: sample,
                               parameters: [("w", F.weights(weight, seed: 3)), ("b", F.weights([weight[0]], seed: 4))])
        let x = G.gaussian([3] + sample, seed: 1)
        func step(_ kernels: KernelSet) throws -> (Tensor, [String: Tensor], Tensor) {
            let trainer = try TrainingGraph(model: Model(graph: graph), computesInputGradient: true, kernels: kernels)
            let y = try trainer.forward(x, training: true)
            try trainer.backward(G.gaussian(y.shape, seed: 2))
            return (y, trainer.gradients, trainer.inputGradient!)
        }
        let reference = try step(.portable)
        for kernels in KernelSet.supported where kernels != .portable {
            let (y, gradients, dX) = try step(kernels)
            #expect(F.isClose(y, reference.0, relative: 1e-5), "\(kernels) output")
            #expect(F.isClose(dX, reference.2, relative: 1e-5), "\(kernels) input gradient")
            for (name, g) in reference.1 { #expect(F.isClose(gradients[name]!, g, relative: 1e-5), "\(kernels) \(name)") }
        }
    }

    /// Batch 3 over maps big enough that the GEMM chunks hold 2, 1 or 1 image(s) (`chunkColumns` 1024):
    /// a mixed chunking, one image per chunk, and a 1x1 conv reading the image directly.
    @Test(arguments: [([2, 20, 20], [3, 2, 3, 3], Conv2d(padding: .same(1))),
                      ([1, 35, 35], [2, 1, 3, 3], Conv2d()),
                      ([2, 33, 33], [3, 2, 1, 1], Conv2d())])
    func convChunking(sample: [Int], weight: [Int], attributes: Conv2d) throws {
        let graph = F.singleOp(.conv2d(attributes), sample: sample,
                               parameters: [("w", F.weights(weight, seed: 3)), ("b", F.weights([weight[0]], seed: 4))])
        let result = try G.run(graph, input: G.gaussian([3] + sample, seed: 1), samples: 30)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    @Test func linear() throws {
        let graph = F.singleOp(.linear, sample: [7], parameters: [("w", F.weights([5, 7], seed: 3)), ("b", F.weights([5], seed: 4))])
        let result = try G.run(graph, input: G.gaussian([4, 7], seed: 1))
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    @Test(arguments: [true, false]) func batchNorm(training: Bool) throws {
        let graph = F.singleOp(.batchNorm(epsilon: 1e-5), sample: [3, 4, 4],
                               parameters: F.batchNormParameters("bn", channels: 3, seed: 3))
        let result = try G.run(graph, input: G.gaussian([3, 3, 4, 4], seed: 1, std: 2), training: training)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    @Test func batchNormOverFeatures() throws {
        let graph = F.singleOp(.batchNorm(epsilon: 1e-5), sample: [6],
                               parameters: F.batchNormParameters("bn", channels: 6, seed: 3))
        let result = try G.run(graph, input: G.gaussian([5, 6], seed: 1), training: true)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    static let activations: [(String, Op)] = [
        ("relu", .relu), ("relu6", .relu6), ("leakyRelu", .leakyRelu(alpha: 0.1)), ("sigmoid", .sigmoid), ("tanh", .tanh),
    ]

    @Test(arguments: activations.map(\.0)) func activation(_ name: String) throws {
        let op = Self.activations.first { $0.0 == name }!.1
        let input = G.awayFromKinks([2, 3, 4, 4], seed: 1, std: 4, kinks: [0, 6])
        let result = try G.run(F.singleOp(op, sample: [3, 4, 4]), input: input)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    /// The hard sigmoid, hard swish and GELU (both forms), inputs kept away from the hard activations' kinks.
    @Test(arguments: SmoothActivationTests.ops) func smoothActivation(_ op: Op) throws {
        let kinks: [Float]
        switch op {
        case .hardSigmoid(let alpha, let beta): kinks = [-beta / alpha, (1 - beta) / alpha]
        case .hardSwish: kinks = [-3, 3]
        default: kinks = []
        }
        let input = G.awayFromKinks([2, 3, 4, 4], seed: 1, std: 3, kinks: kinks)
        let result = try G.run(F.singleOp(op, sample: [3, 4, 4]), input: input)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    static let pools: [(String, Op)] = [
        ("max 2x2", .maxPool(Pool2d(kernel: .square(2)))),
        ("max 3x3 stride 2 pad 1 ceil", .maxPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1), ceilMode: true))),
        ("max dilation 2 asymmetric", .maxPool(Pool2d(kernel: .square(2), stride: .square(1),
                                                      padding: Padding2(top: 1, left: 0, bottom: 0, right: 1), dilation: .square(2)))),
        ("avg 3x3 pad 1 exclude pad", .avgPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1)), countIncludePad: false)),
        ("avg 3x3 pad 1 include pad", .avgPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1)), countIncludePad: true)),
        ("avg ceil include pad", .avgPool(Pool2d(kernel: .square(2), stride: .square(2), padding: .same(1), ceilMode: true),
                                          countIncludePad: true)),
        ("global avg", .globalAvgPool),
    ]

    @Test(arguments: pools.map(\.0)) func pool(_ name: String) throws {
        let op = Self.pools.first { $0.0 == name }!.1
        let result = try G.run(F.singleOp(op, sample: [3, 7, 7]), input: G.distinct([2, 3, 7, 7], seed: 1), eps: 5e-3)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    /// `x -> conv -> shape op -> linear` so the reshaped value has a producer and a consumer with parameters.
    @Test(arguments: [Op.flatten(axis: 1), .reshape(shape: [0, -1])]) func flattenAndReshape(_ op: Op) throws {
        let nodes = [
            Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
            Node(name: "shape", op: op, inputs: ["c"], output: "f"),
            Node(name: "fc", op: .linear, inputs: ["f", "fw", "fb"], output: "y"),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 3, 3])], outputs: ["y"], nodes: nodes,
                          initializers: ["w": F.weights([2, 2, 3, 3], seed: 2), "fw": F.weights([4, 18], seed: 3),
                                         "fb": F.weights([4], seed: 4)])
        let result = try G.run(graph, input: G.gaussian([2, 2, 3, 3], seed: 1))
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    /// `y = x ∘ s(x)` and `y = s(x) ∘ x` with `s(x) = sigmoid(globalAvgPool(x))` `[N, C, 1, 1]`,
    /// so the gradient of the broadcast operand is summed over H and W; plus a constant `[C, 1, 1]` operand.
    @Test(arguments: ["Add", "Sub", "Mul", "Div"]) func binaryWithBroadcasting(_ kind: String) throws {
        let op: Op = switch kind { case "Add": .add; case "Sub": .sub; case "Mul": .mul; default: .div }
        let nodes = [
            Node(name: "gap", op: .globalAvgPool, inputs: ["x"], output: "g"),
            Node(name: "sig", op: .sigmoid, inputs: ["g"], output: "s"),
            Node(name: "left", op: op, inputs: ["x", "s"], output: "a"),
            Node(name: "right", op: op, inputs: ["s", "x2"], output: "b"),
            Node(name: "square", op: .mul, inputs: ["x", "x"], output: "x2"),
            Node(name: "constant", op: op, inputs: ["a", "k"], output: "c"),
            Node(name: "sum", op: .add, inputs: ["c", "b"], output: "y"),
        ]
        var graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 4, 5])], outputs: ["y"], nodes: nodes,
                          initializers: ["k": F.uniform([3, 1, 1], seed: 9, in: 0.5...1.5)])
        graph = try graph.topologicallySorted()
        // Keep x² away from 0 for Div's denominators.
        let input = G.awayFromKinks([2, 3, 4, 5], seed: 1, kinks: [0], margin: 0.5)
        let result = try G.run(graph, input: input, eps: 1e-3)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    @Test func concat() throws {
        let nodes = [
            Node(name: "tanh", op: .tanh, inputs: ["x"], output: "t"),
            Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
            Node(name: "cat", op: .concat(axis: 1), inputs: ["x", "t", "c"], output: "y"),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 4, 4])], outputs: ["y"], nodes: nodes,
                          initializers: ["w": F.weights([3, 2, 3, 3], seed: 2)])
        let result = try G.run(graph, input: G.gaussian([2, 2, 4, 4], seed: 1))
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    @Test(arguments: [1, -1]) func softmax(axis: Int) throws {
        let sample = axis == 1 ? [3, 2, 2] : [6]
        let result = try G.run(F.singleOp(.softmax(axis: axis), sample: sample), input: G.gaussian([2] + sample, seed: 1),
                               eps: 1e-3)
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    @Test func dropoutWithFixedMask() throws {
        let result = try G.run(F.singleOp(.dropout(ratio: 0.3), sample: [3, 4, 4]), input: G.gaussian([2, 3, 4, 4], seed: 1))
        #expect(result.worst < Self.tolerance, "\(result)")
    }

    /// A small CNN with every layer type in sequence, BN in training mode, residual add.
    @Test func smallNetwork() throws {
        let nodes = [
            Node(name: "conv1", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w1"], output: "c1"),
            Node(name: "bn1", op: .batchNorm(epsilon: 1e-5), inputs: ["c1", "s", "b", "m", "v"], output: "n1"),
            Node(name: "act", op: .tanh, inputs: ["n1"], output: "a1"),
            Node(name: "conv2", op: .conv2d(Conv2d(padding: .same(1), groups: 2)), inputs: ["a1", "w2", "b2"], output: "c2"),
            Node(name: "res", op: .add, inputs: ["c2", "a1"], output: "r"),
            Node(name: "pool", op: .avgPool(Pool2d(kernel: .square(2)), countIncludePad: false), inputs: ["r"], output: "p"),
            Node(name: "flat", op: .flatten(axis: 1), inputs: ["p"], output: "f"),
            Node(name: "fc", op: .linear, inputs: ["f", "fw", "fb"], output: "y"),
        ]
        var initializers: [String: Tensor] = ["w1": F.weights([4, 2, 3, 3], seed: 2), "w2": F.weights([4, 2, 3, 3], seed: 3),
                                              "b2": F.weights([4], seed: 4), "fw": F.weights([3, 16], seed: 5),
                                              "fb": F.weights([3], seed: 6)]
        for (name, t) in F.batchNormParameters("bn", channels: 4, seed: 7) {
            initializers[String(name.split(separator: ".").last!.prefix(1))] = t
        }
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 4, 4])], outputs: ["y"], nodes: nodes,
                          initializers: initializers)
        let result = try G.run(graph, input: G.gaussian([3, 2, 4, 4], seed: 1))
        #expect(result.worst < Self.tolerance, "\(result)")
    }
}
