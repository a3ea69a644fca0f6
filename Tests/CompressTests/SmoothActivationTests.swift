import Foundation
import Testing
@testable import Compress
import SIMDKernels

/// The hard sigmoid, hard swish (MobileNetV3) and GELU through every layer:
/// reference, kernels and their fusion into conv/linear epilogues, the
/// vectorized erfc of the blocked epilogue, backward, the model file, and
/// ONNX export and import (with the decomposed forms exporters write).
@Suite struct SmoothActivationTests {
    typealias F = RuntimeFixtures

    static let ops: [Op] = [
        .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSigmoid(alpha: 1.0 / 6, beta: 0.5), .hardSwish,
        .gelu(tanhApproximation: false), .gelu(tanhApproximation: true),
    ]

    static func evaluate(_ op: Op, _ x: [Float]) throws -> [Float] {
        let graph = F.singleOp(op, sample: [x.count])
        return try ReferenceEvaluator.run(graph, inputs: ["x": Tensor(shape: [1, x.count], floats: x)])["y"]!.floats
    }

    static func expectClose(_ got: [Float], _ want: [Float], relative: Float, absolute: Float = 0,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == want.count, sourceLocation: sourceLocation)
        for (g, w) in zip(got, want) {
            #expect(abs(g - w) <= relative * abs(w) + absolute, "\(g) vs \(w)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Reference

    static let x: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 2, 3]

    /// Golden values from onnx 1.23.2's reference evaluator (`onnx.reference`), float32.
    /// Its GELU computes 1 + erf (1 + tanh) in float32, which cancels for negative
    /// x: within 1e-6 relative plus 1e-7 absolute.
    @Test func referenceMatchesONNXReferenceValues() throws {
        Self.expectClose(try Self.evaluate(.gelu(tanhApproximation: false), Self.x),
                         [-0.0040496885776519775, -0.15865525603294373, -0.1542687714099884, 0, 0.3457312285900116,
                          0.8413447141647339, 1.9544997215270996, 2.995950222015381], relative: 1e-6, absolute: 1e-7)
        Self.expectClose(try Self.evaluate(.gelu(tanhApproximation: true), Self.x),
                         [-0.003637343645095825, -0.15880799293518066, -0.1542859971523285, 0, 0.3457140028476715,
                          0.8411920070648193, 1.9545977115631104, 2.9963626861572266], relative: 1e-6, absolute: 1e-7)
        Self.expectClose(try Self.evaluate(.hardSigmoid(alpha: 0.2, beta: 0.5), Self.x),
                         [0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 1], relative: 1e-6)
        Self.expectClose(try Self.evaluate(.hardSwish, Self.x),
                         [0, -1.0 / 3, -0.5 * (5.0 / 12), 0, 0.5 * (7.0 / 12), 2.0 / 3, 2 * (5.0 / 6), 3], relative: 1e-6)
    }

    /// By hand: the hard sigmoid saturates at 0 and 1, PyTorch's hardsigmoid (alpha 1/6) at ±3;
    /// the hard swish is 0 below -3 and the identity above 3.
    @Test func hardActivationsSaturate() throws {
        #expect(try Self.evaluate(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5), [-4, -3, 3, 4]) == [0, 0, 1, 1])
        #expect(try Self.evaluate(.hardSwish, [-10, -3, 3, 10]) == [0, 0, 3, 10])
    }

    @Test func shapesPassThroughAndNonFiniteHardSigmoidIsRefused() throws {
        for op in Self.ops {
            #expect(try F.singleOp(op, sample: [3, 5, 7]).inferShapes(batch: 2)["y"] == [2, 3, 5, 7])
        }
        #expect(throws: GraphError.self) {
            try F.singleOp(.hardSigmoid(alpha: .infinity, beta: 0.5), sample: [3]).inferShapes(batch: 1)
        }
    }

    // MARK: Runtime kernels

    @Test(arguments: ops) func unaryKernelMatchesReference(_ op: Op) throws {
        var rng = SeededGenerator(seed: 9)
        let graph = F.singleOp(op, sample: [3, 4, 4])
        let x = rng.gaussianTensor([2, 3, 4, 4], std: 4)
        for blocked in [false, true] {
            let fast = try Session(model: Model(graph: graph), threads: 1, kernels: blocked ? .avx2 : .portable).run(inputs: ["x": x])["y"]!
            let reference = try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!
            #expect(F.isClose(fast, reference, relative: 1e-6))
        }
    }

    /// The blocked epilogue's GELU (vectorized erfc and exp) against Foundation's
    /// erfc in Double: |error| <= 1e-6 |GELU(x)| + 1e-9 on [-9, 9] (below about
    /// -5 float32's rounding of x²/2 alone is a relative error of x²·6e-8), and
    /// the tanh form, hard sigmoid and hard swish against the scalar kernels.
    @Test(.enabled(if: cpuSupportsBlockedKernels, "needs AVX2 and FMA"))
    func blockedEpilogueMatchesScalarDefinitions() {
        let count = 8 * 2251
        let x = (0..<count).map { -9 + 18 * Float($0) / Float(count - 1) }
        var y = [Float](repeating: .nan, count: count)
        func run(_ clamp: BlockedClamp) -> [Float] {
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in blockedClamp(xp.baseAddress!, yp.baseAddress!, count: count, clamp: clamp) }
            }
            return y
        }
        var worst: Double = 0
        for (v, got) in zip(x, run(.gelu)) {
            let exact = Double(v) * erfc(-Double(v) / 2.squareRoot()) / 2
            let error = abs(Double(got) - exact)
            worst = max(worst, error / max(abs(exact), 1e-30))
            #expect(error <= 1e-6 * abs(exact) + 1e-9, "GELU(\(v)) = \(got), exact \(exact)")
        }
        #expect(worst < 2e-5)
        for (v, got) in zip(x, run(.geluTanh)) {
            let t = Double(v)
            let exact = t * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (t + 0.044715 * t * t * t))) / 2
            #expect(abs(Double(got) - exact) <= 1e-6 * abs(exact) + 1e-9, "GELU tanh(\(v)) = \(got), exact \(exact)")
        }
        for (v, got) in zip(x, run(.hardSwish)) {
            #expect(abs(got - ScalarActivation.hardSwish(v)) <= 1e-6 * abs(v), "hard swish(\(v))")
        }
        for (v, got) in zip(x, run(.hardSigmoid(alpha: 0.2, beta: 0.5))) {
            #expect(abs(got - ScalarActivation.hardSigmoid(v, alpha: 0.2, beta: 0.5)) <= 1e-6, "hard sigmoid(\(v))")
        }
        #expect(run(.gelu)[0] < 0 && run(.gelu).allSatisfy(\.isFinite))
        let zeros = [Float](repeating: 0, count: 8)
        var out = [Float](repeating: .nan, count: 8)
        for clamp in [BlockedClamp.gelu, .geluTanh, .hardSwish] {
            blockedClamp(zeros, &out, count: 8, clamp: clamp)
            #expect(out == zeros, "blocked padding must stay zero")
        }
    }

    // MARK: Fusion

    @Test(arguments: ops) func linearActivationIsFused(_ activation: Op) throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [12])], outputs: ["y"],
            nodes: [Node(name: "fc", op: .linear, inputs: ["x", "w", "b"], output: "h"),
                    Node(name: "act", op: activation, inputs: ["h"], output: "y")],
            initializers: ["w": F.weights([7, 12], seed: 4, std: 3), "b": F.weights([7], seed: 5)])
        #expect(try Session(model: Model(graph: graph)).fusedActivations == ["act"])
        #expect(try F.sessionMatchesReference(graph, batch: 1))
        #expect(try F.sessionMatchesReference(graph, batch: 5))
    }

    /// conv -> BN -> activation (-> depthwise conv -> activation): BatchNorm folds,
    /// both activations fuse into the convs' epilogues, blocked or plain, for 8
    /// output channels (whole blocks) and 5 (a padded block: the hard sigmoid,
    /// which maps 0 to beta, then runs the plain conv).
    @Test(arguments: ops, [5, 8]) func convBatchNormActivationIsFoldedAndFused(_ activation: Op, _ channels: Int) throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [3, 9, 9])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
                    Node(name: "bn", op: .batchNorm(epsilon: 1e-5),
                         inputs: ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], output: "b"),
                    Node(name: "act", op: activation, inputs: ["b"], output: "a"),
                    Node(name: "dw", op: .conv2d(Conv2d(padding: .same(1), groups: channels)), inputs: ["a", "dw.w", "dw.b"],
                         output: "d"),
                    Node(name: "act2", op: activation, inputs: ["d"], output: "y")],
            initializers: Dictionary(uniqueKeysWithValues: [("w", F.weights([channels, 3, 3, 3], seed: 3)),
                                                            ("dw.w", F.weights([channels, 1, 3, 3], seed: 6)),
                                                            ("dw.b", F.weights([channels], seed: 7))]
                                     + F.batchNormParameters("bn", channels: channels, seed: 10)))
        for blocked in [false, true] {
            let session = try Session(model: Model(graph: graph), threads: 1, kernels: blocked ? .avx2 : .portable)
            #expect(session.foldedBatchNorms == ["bn"])
            #expect(Set(session.fusedActivations) == ["act", "act2"])
        }
        let keepsBlocked = FusedActivation(activation)!.keepsZero || channels % 8 == 0
        let plan = try ExecutionPlan(graph: graph)
        #expect(plan.steps.contains { $0.kernel is BlockedConvKernel } == (cpuSupportsBlockedKernels && keepsBlocked))
        for (batch, threads) in [(1, 1), (3, 2)] {
            #expect(try BlockedConvTests.matchesReference(graph, batch: batch, threads: threads))
        }
        #expect(try F.sessionMatchesReference(graph, batch: 2))
    }

    /// An activation of a blocked conv output that another node reads too runs on
    /// the blocked value (the hard sigmoid only when the channels fill whole blocks).
    @Test(arguments: ops, [5, 8]) func activationOfSharedBlockedValue(_ activation: Op, _ channels: Int) throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [3, 6, 6])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w", "b"], output: "c"),
                    Node(name: "act", op: activation, inputs: ["c"], output: "a"),
                    Node(name: "add", op: .add, inputs: ["a", "c"], output: "y")],
            initializers: ["w": F.weights([channels, 3, 3, 3], seed: 3), "b": F.weights([channels], seed: 4)])
        let plan = try ExecutionPlan(graph: graph)
        let blockedActivation = plan.steps.contains { $0.kernel is BlockedActivationKernel }
        #expect(blockedActivation == (cpuSupportsBlockedKernels && (FusedActivation(activation)!.keepsZero || channels % 8 == 0)))
        #expect(try BlockedConvTests.matchesReference(graph, batch: 2))
    }

    /// A conv whose residual Add fuses takes a following hard swish or GELU too, not a hard sigmoid.
    @Test(arguments: ops) func residualAddTakesActivationsThatKeepZero(_ activation: Op) throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [8, 6, 6])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w", "b"], output: "c"),
                    Node(name: "add", op: .add, inputs: ["c", "x"], output: "s"),
                    Node(name: "act", op: activation, inputs: ["s"], output: "y")],
            initializers: ["w": F.weights([8, 8, 3, 3], seed: 3, std: 0.3), "b": F.weights([8], seed: 4)])
        if cpuSupportsBlockedKernels {
            let session = try Session(model: Model(graph: graph), threads: 1, kernels: .avx2)
            #expect(session.fusedActivations.contains("act") == FusedActivation(activation)!.keepsZero)
        }
        #expect(try BlockedConvTests.matchesReference(graph, batch: 2))
    }

    /// Sparse linear and conv kernels (plain and AVX2) apply the fused activation in their epilogues.
    @Test(arguments: ops) func sparseKernelsApplyTheActivation(_ activation: Op) throws {
        let linear = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [37])], outputs: ["y"],
            nodes: [Node(name: "fc", op: .linear, inputs: ["x", "w", "b"], output: "h"),
                    Node(name: "act", op: activation, inputs: ["h"], output: "y")],
            initializers: ["w": SparseKernelTests.pruned(F.weights([29, 37], seed: 4), sparsity: 0.9, emptyRows: [0]),
                           "b": F.weights([29], seed: 5)])
        let conv = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [6, 7, 7])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w", "b"], output: "h"),
                    Node(name: "act", op: activation, inputs: ["h"], output: "y")],
            initializers: ["w": SparseKernelTests.pruned(F.weights([13, 6, 3, 3], seed: 6), sparsity: 0.9, emptyRows: [1]),
                           "b": F.weights([13], seed: 7)])
        for graph in [linear, conv] {
            #expect(try Session(model: Model(graph: graph), sparseKernels: .sparse).fusedActivations == ["act"])
            for vectorized in [true, false] {
                for batch in [1, 3] {
                    #expect(try SparseKernelTests.matchesReference(graph, batch: batch, policy: .sparse, vectorized: vectorized),
                            "vectorized \(vectorized) batch \(batch)")
                }
            }
        }
    }

    // MARK: Model file

    static func chainModel(_ ops: [Op]) -> Model {
        let nodes = ops.enumerated().map { i, op in
            Node(name: "act\(i)", op: op, inputs: [i == 0 ? "x" : "v\(i - 1)"], output: "v\(i)")
        }
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 4, 4])], outputs: ["v\(ops.count - 1)"],
                                  nodes: nodes, initializers: [:]))
    }

    @Test func modelFileRoundTripKeepsAttributes() throws {
        let model = Self.chainModel(Self.ops)
        #expect(try ModelFile.decode(try ModelFile.encode(model)) == model)
    }

    // MARK: ONNX export and import

    /// Below opset 14 the hard swish is `x * HardSigmoid(x)`, below 20 GELU its Erf
    /// (or tanh) form; importing either gives the same ops back.
    @Test(arguments: [13, 14, 20]) func exportsAndImportsBack(_ opset: Int) throws {
        let model = Self.chainModel(Self.ops)
        let bytes = try ONNXExporter.encode(model, opset: opset)
        let onnx = try DecodedONNX(bytes)
        let types = onnx.nodes.map(\.opType)
        #expect(types.filter { $0 == "HardSwish" }.count == (opset >= 14 ? 1 : 0))
        #expect(types.filter { $0 == "Gelu" }.count == (opset >= 20 ? 2 : 0))
        #expect(types.filter { $0 == "Erf" }.count == (opset >= 20 ? 0 : 1))
        #expect(types.filter { $0 == "HardSigmoid" }.count == (opset >= 14 ? 2 : 3))
        let imported = try ONNXImporter.decode(bytes)
        #expect(imported.graph.nodes.map(\.op.kind) == Self.ops.map(\.kind))
        for (got, want) in zip(imported.graph.nodes.map(\.op), Self.ops) {
            switch (got, want) {
            case (.hardSigmoid(let a, let b), .hardSigmoid(let c, let d)): #expect(a == c && b == d)
            default: #expect(got == want)
            }
        }
        var rng = SeededGenerator(seed: 2)
        let x = rng.gaussianTensor([2, 3, 4, 4], std: 3)
        let original = try ReferenceEvaluator.run(model.graph, inputs: ["x": x])
        let roundTrip = try ReferenceEvaluator.run(imported.graph, inputs: ["x": x])
        #expect(F.isClose(roundTrip[imported.graph.outputs[0]]!, original[model.graph.outputs[0]]!, relative: 1e-6))
    }

    @Test func geluTanhExportsTheApproximateAttribute() throws {
        let bytes = try ONNXExporter.encode(Self.chainModel([.gelu(tanhApproximation: true)]), opset: 20)
        let imported = try ONNXImporter.decode(bytes)
        #expect(imported.graph.nodes.map(\.op) == [.gelu(tanhApproximation: true)])
    }

    // MARK: Folding decomposed forms on import

    static func node(_ opType: String, _ inputs: [String], _ output: String,
                     _ attributes: [String: ONNXAttribute] = [:]) -> ONNXNodeProto {
        ONNXNodeProto(name: output, opType: opType, domain: "", inputs: inputs, outputs: [output], attributes: attributes)
    }

    static func scalar(_ name: String, _ v: Float) -> ONNXNodeProto {
        node("Constant", [], name, ["value": .tensor(Tensor(shape: [], floats: [v]))])
    }

    /// Imports `nodes` reading `x` [N, 4, 3, 3] and writing `y`.
    static func importGraph(_ nodes: [ONNXNodeProto], opset: Int = 17) throws -> Graph {
        let info = { (name: String) in
            ONNXValueInfo(name: name, elementType: 1, dimensions: [.symbol("N"), .value(4), .value(3), .value(3)])
        }
        let proto = ONNXGraphProto(nodes: nodes, initializers: [], inputs: [info("x")], outputs: [info("y")])
        var converter = try ONNXGraphConverter(graph: foldingDecomposedActivations(proto, opset: opset), opset: opset)
        return try converter.convert().0
    }

    /// The three groupings of x · 0.5 · (1 + erf(x/√2)) PyTorch writes, with ÷√2 or ·1/√2.
    @Test(arguments: 0..<4) func erfFormOfGELUFolds(_ variant: Int) throws {
        let S = Self.self
        var nodes = [S.scalar("half", 0.5), S.scalar("one", 1), S.scalar("two", 2),
                     S.scalar("sqrt2", 1.4142135), S.scalar("invsqrt2", 0.70710677)]
        nodes.append(variant == 3 ? S.node("Mul", ["invsqrt2", "x"], "t") : S.node("Div", ["x", "sqrt2"], "t"))
        nodes += [S.node("Erf", ["t"], "e"), S.node("Add", ["one", "e"], "s")]
        switch variant {
        case 0: nodes += [S.node("Mul", ["x", "s"], "m"), S.node("Mul", ["m", "half"], "y")]
        case 1: nodes += [S.node("Mul", ["x", "half"], "h"), S.node("Mul", ["h", "s"], "y")]
        case 2: nodes += [S.node("Mul", ["s", "half"], "m"), S.node("Mul", ["x", "m"], "y")]
        default: nodes += [S.node("Mul", ["s", "x"], "m"), S.node("Div", ["m", "two"], "y")]
        }
        let graph = try Self.importGraph(nodes)
        #expect(graph.nodes.map(\.op) == [.gelu(tanhApproximation: false)])
        #expect(graph.nodes.first?.inputs == ["x"] && graph.outputs == ["y"])
    }

    /// x · 0.5 · (1 + tanh(√(2/π)(x + 0.044715 x³))), x³ as Pow (PyTorch) or x·x·x (our export below opset 20).
    @Test(arguments: [false, true]) func tanhFormOfGELUFolds(_ pow: Bool) throws {
        let S = Self.self
        var nodes = [S.scalar("half", 0.5), S.scalar("one", 1), S.scalar("three", 3), S.scalar("c0", 0.044715),
                     S.scalar("c1", Float((2 / Double.pi).squareRoot()))]
        if pow {
            nodes.append(S.node("Pow", ["x", "three"], "cube"))
        } else {
            nodes += [S.node("Mul", ["x", "x"], "square"), S.node("Mul", ["square", "x"], "cube")]
        }
        nodes += [S.node("Mul", ["c0", "cube"], "k"), S.node("Add", ["x", "k"], "i"), S.node("Mul", ["c1", "i"], "u"),
                  S.node("Tanh", ["u"], "t"), S.node("Add", ["t", "one"], "s"), S.node("Mul", ["half", "x"], "h"),
                  S.node("Mul", ["h", "s"], "y")]
        #expect(try Self.importGraph(nodes).nodes.map(\.op) == [.gelu(tanhApproximation: true)])
    }

    @Test func erfReadTwiceIsNotFoldedAndReportedOnce() throws {
        let S = Self.self
        let nodes = [S.scalar("half", 0.5), S.scalar("one", 1), S.scalar("sqrt2", 1.4142135),
                     S.node("Div", ["x", "sqrt2"], "t"), S.node("Erf", ["t"], "e"), S.node("Add", ["one", "e"], "s"),
                     S.node("Mul", ["x", "s"], "m"), S.node("Mul", ["m", "half"], "g"), S.node("Add", ["g", "e"], "y")]
        do {
            _ = try Self.importGraph(nodes)
            Issue.record("a lone Erf imported")
        } catch let error as ONNXImportError {
            #expect(error.description.contains("Erf is supported only inside GELU"))
        }
    }

    /// x·relu6(x+3)/6 in both groupings (÷6 or ·1/6), and relu6(x+3)/6 alone as GhostNet's gate.
    @Test(arguments: 0..<4) func clipFormsOfHardSwishAndHardSigmoidFold(_ variant: Int) throws {
        let S = Self.self
        var nodes = [S.scalar("three", 3), S.scalar("zero", 0), S.scalar("six", 6), S.scalar("sixth", 1.0 / 6),
                     S.node("Add", variant == 1 ? ["three", "x"] : ["x", "three"], "a"),
                     S.node("Clip", ["a", "zero", "six"], "c")]
        switch variant {
        case 0: nodes += [S.node("Div", ["c", "six"], "g"), S.node("Mul", ["x", "g"], "y")]
        case 1: nodes += [S.node("Mul", ["c", "x"], "m"), S.node("Mul", ["sixth", "m"], "y")]
        case 2: nodes += [S.node("Mul", ["x", "c"], "m"), S.node("Div", ["m", "six"], "y")]
        default: nodes += [S.node("Div", ["c", "six"], "y")]
        }
        let graph = try Self.importGraph(nodes)
        let expected: Op = variant == 3 ? .hardSigmoid(alpha: 1.0 / 6, beta: 0.5) : .hardSwish
        #expect(graph.nodes.map(\.op) == [expected])
    }

    /// Clip(alpha·x + beta, 0, 1) is a hard sigmoid (x·alpha or x / d, operands in either order);
    /// x times Clip(x/6 + 1/2, 0, 1) a hard swish.
    @Test(arguments: 0..<3) func clipToUnitIntervalFolds(_ variant: Int) throws {
        let S = Self.self
        var nodes = [S.scalar("zero", 0), S.scalar("one", 1), S.scalar("alpha", 0.25), S.scalar("sixth", 1.0 / 6),
                     S.scalar("six", 6), S.scalar("half", 0.5)]
        switch variant {
        case 0: nodes += [S.node("Mul", ["alpha", "x"], "m"), S.node("Add", ["half", "m"], "a"),
                          S.node("Clip", ["a", "zero", "one"], "y")]
        case 1: nodes += [S.node("Div", ["x", "six"], "m"), S.node("Add", ["m", "half"], "a"),
                          S.node("Clip", ["a", "zero", "one"], "c"), S.node("Mul", ["c", "x"], "y")]
        default: nodes += [S.node("Mul", ["x", "sixth"], "m"), S.node("Add", ["m", "half"], "a"),
                           S.node("Clip", ["a", "zero", "one"], "c"), S.node("Mul", ["x", "c"], "y")]
        }
        let expected: Op = variant == 0 ? .hardSigmoid(alpha: 0.25, beta: 0.5) : .hardSwish
        #expect(try Self.importGraph(nodes).nodes.map(\.op) == [expected])
        // Other bounds stay a Clip, refused with the bounds named.
        let other = [S.scalar("lo", -1), S.scalar("one", 1), S.node("Clip", ["x", "lo", "one"], "y")]
        do {
            _ = try Self.importGraph(other)
            Issue.record("Clip(-1, 1) imported")
        } catch let error as ONNXImportError {
            #expect(error.description.contains("Clip(min=-1.0, max=1.0)"))
        }
    }

    @Test func opset10ClipAttributesAndHardSigmoidTimesXFold() throws {
        let S = Self.self
        let clip = S.node("Clip", ["a"], "c", ["min": .float(0), "max": .float(6)])
        let graph = try Self.importGraph([S.scalar("three", 3), S.scalar("six", 6), S.node("Add", ["x", "three"], "a"), clip,
                                          S.node("Div", ["c", "six"], "g"), S.node("Mul", ["g", "x"], "y")], opset: 10)
        #expect(graph.nodes.map(\.op) == [.hardSwish])
        let hs = S.node("HardSigmoid", ["x"], "h", ["alpha": .float(1.0 / 6), "beta": .float(0.5)])
        #expect(try Self.importGraph([hs, S.node("Mul", ["x", "h"], "y")], opset: 13).nodes.map(\.op) == [.hardSwish])
        // Another alpha stays a hard sigmoid times x.
        let other = S.node("HardSigmoid", ["x"], "h", ["alpha": .float(0.2)])
        #expect(try Self.importGraph([other, S.node("Mul", ["x", "h"], "y")], opset: 13).nodes.map(\.op)
                == [.hardSigmoid(alpha: 0.2, beta: 0.5), .mul])
    }

    @Test func badAttributesGiveOneMessage() throws {
        let S = Self.self
        do {
            _ = try Self.importGraph([S.node("Gelu", ["x"], "y", ["approximate": .string("erf")])], opset: 20)
            Issue.record("approximate=erf imported")
        } catch let error as ONNXImportError {
            #expect(error.description.contains("Gelu approximate=\"erf\""))
        }
    }
}
