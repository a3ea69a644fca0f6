import Testing
@testable import Compress

/// LayerNorm over channels through ONNX: the export's node layout per opset,
/// export -> import round trips, ConvNeXt's channels-last block folded on
/// import (checked against a direct channels-last evaluation of the ONNX
/// nodes), and the messages for LayerNormalizations the importer refuses.
@Suite struct ONNXLayerNormTests {
    typealias F = RuntimeFixtures

    /// x[4,5,5] -> conv 3x3 (6) -> layerNorm -> relu.
    static func model() -> Model {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [4, 5, 5])], outputs: ["y"],
            nodes: [Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
                    Node(name: "ln", op: .layerNorm(epsilon: 1e-6), inputs: ["c", "ln.scale", "ln.bias"], output: "n"),
                    Node(name: "relu", op: .relu, inputs: ["n"], output: "y")],
            initializers: ["w": F.weights([6, 4, 3, 3], seed: 1), "ln.scale": F.uniform([6], seed: 2, in: 0.5...1.5),
                           "ln.bias": F.weights([6], seed: 3)])
        return Model(graph: graph)
    }

    @Test func exportWritesTransposedLayerNormalizationFromOpset17() throws {
        let spec = try ONNXModelSpec(Self.model(), opset: 17)
        #expect(spec.nodes.map(\.opType) == ["Conv", "Transpose", "LayerNormalization", "Transpose", "Relu"])
        #expect(spec.nodes[1].attributes.first { $0.name == "perm" }?.value == .ints([0, 2, 3, 1]))
        #expect(spec.nodes[3].attributes.first { $0.name == "perm" }?.value == .ints([0, 3, 1, 2]))
        #expect(spec.nodes[2].attributes.first { $0.name == "axis" }?.value == .int(-1))
        let decomposed = try ONNXModelSpec(Self.model(), opset: 13)
        #expect(decomposed.nodes.map(\.opType) == ["Conv", "Transpose", "ReduceMean", "Sub", "Mul", "ReduceMean", "Add",
                                                   "Sqrt", "Div", "Mul", "Add", "Transpose", "Relu"])
    }

    /// Export and import: the Transposes fold away (below opset 17 the decomposed
    /// LayerNorm is lifted first) and the graph computes the same.
    @Test(arguments: [13, 17]) func exportImportsAsTheSameGraph(_ opset: Int) throws {
        let model = Self.model()
        let imported = try ONNXImporter.decode(try ONNXExporter.encode(model, opset: opset))
        #expect(imported.graph.nodes.map(\.op) == model.graph.nodes.map(\.op))
        var rng = SeededGenerator(seed: 4)
        let x = rng.gaussianTensor([2, 4, 5, 5])
        let expected = try ReferenceEvaluator.run(model.graph, inputs: ["x": x])["y"]!
        let got = try Session(model: imported).run(inputs: [imported.graph.inputs[0].name: x])[imported.graph.outputs[0]]!
        #expect(F.isClose(got, expected))
    }

    /// A LayerNorm over the features of `[N, F]` needs no Transpose either way.
    @Test func featuresLayerNormRoundTrips() throws {
        let graph = F.singleOp(.layerNorm(epsilon: 1e-5), sample: [7], parameters: [("s", F.weights([7], seed: 1))])
        for opset in [13, 17] {
            let spec = try ONNXModelSpec(Model(graph: graph), opset: opset)
            #expect(!spec.nodes.contains { $0.opType == "Transpose" })
        }
        for opset in [13, 17] {
            let imported = try ONNXImporter.decode(try ONNXExporter.encode(Model(graph: graph), opset: opset))
            #expect(imported.graph.nodes.map(\.op) == [.layerNorm(epsilon: 1e-5)])
        }
    }

    // MARK: ConvNeXt's channels-last block

    static let (channels, hidden, size) = (4, 8, 3)

    /// ONNX bytes of `x[C,3,3] -> Conv dw 3x3 -> Transpose -> LayerNormalization -> MatMul + Add -> Relu
    /// -> MatMul + Add -> Mul γ[C] -> Transpose -> Add x`, with the weights in `w`.
    static func blockBytes(_ w: [String: Tensor], layerScaleAfterTranspose: Bool = false) throws -> [UInt8] {
        var spec = try ONNXModelSpec(Model(graph: F.singleOp(.relu, sample: [channels, size, size])), opset: 17)
        func node(_ op: String, _ inputs: [String], _ output: String,
                  _ attributes: [(name: String, value: ONNXAttributeValue)] = []) -> ONNXNodeSpec {
            ONNXNodeSpec(name: output, opType: op, inputs: inputs, outputs: [output], attributes: attributes)
        }
        spec.nodes = [
            node("Conv", ["x", "dw.w", "dw.b"], "dw", [("group", .int(channels)), ("kernel_shape", .ints([3, 3])),
                                                      ("pads", .ints([1, 1, 1, 1]))]),
            node("Transpose", ["dw"], "t1", [("perm", .ints([0, 2, 3, 1]))]),
            node("LayerNormalization", ["t1", "ln.s", "ln.b"], "ln", [("axis", .int(-1)), ("epsilon", .float(1e-6))]),
            node("MatMul", ["ln", "w1"], "mm1"), node("Add", ["b1", "mm1"], "h"),
            node("Relu", ["h"], "a"),
            node("MatMul", ["a", "w2"], "mm2"), node("Add", ["mm2", "b2"], "o"),
        ]
        if layerScaleAfterTranspose {
            spec.nodes += [node("Transpose", ["o"], "t2", [("perm", .ints([0, 3, 1, 2]))]),
                           node("Mul", ["gamma", "t2"], "scaled")]
        } else {
            spec.nodes += [node("Mul", ["o", "gamma"], "scaled_last"),
                           node("Transpose", ["scaled_last"], "scaled", [("perm", .ints([0, 3, 1, 2]))])]
        }
        spec.nodes.append(node("Add", ["scaled", "x"], "y"))
        spec.initializers = w.sorted { $0.key < $1.key }.map { name, t in
            var shape = t.shape
            if name == "gamma" && layerScaleAfterTranspose { shape = [channels, 1, 1] }
            return (name, ONNXTensorData(shape: shape, values: .float(t.floats)))
        }
        return try ONNXProtoEncoder.bytes(of: spec)
    }

    static func blockWeights() -> [String: Tensor] {
        let (c, h) = (channels, hidden)
        return ["dw.w": F.weights([c, 1, 3, 3], seed: 1), "dw.b": F.weights([c], seed: 2),
                "ln.s": F.uniform([c], seed: 3, in: 0.5...1.5), "ln.b": F.weights([c], seed: 4),
                "w1": F.weights([c, h], seed: 5), "b1": F.weights([h], seed: 6),
                "w2": F.weights([h, c], seed: 7), "b2": F.weights([c], seed: 8),
                "gamma": F.uniform([c], seed: 9, in: 0.1...2)]
    }

    /// The block's ONNX semantics evaluated directly at each pixel, channels last:
    /// LayerNorm of the depthwise conv's C values, two matrix products, γ, residual.
    static func channelsLastBlock(_ x: Tensor, _ w: [String: Tensor]) throws -> Tensor {
        let (c, h, plane) = (channels, hidden, size * size)
        let dwGraph = F.singleOp(.conv2d(Conv2d(padding: .same(1), groups: c)), sample: [c, size, size],
                                 parameters: [("w", w["dw.w"]!), ("b", w["dw.b"]!)])
        let d = try ReferenceEvaluator.run(dwGraph, inputs: ["x": x])["y"]!.floats
        let (s, b, w1, b1, w2, b2, g) = (w["ln.s"]!.floats, w["ln.b"]!.floats, w["w1"]!.floats, w["b1"]!.floats,
                                         w["w2"]!.floats, w["b2"]!.floats, w["gamma"]!.floats)
        let xs = x.floats
        var out = [Float](repeating: 0, count: xs.count)
        for n in 0..<x.shape[0] {
            for p in 0..<plane {
                let v = (0..<c).map { Double(d[(n * c + $0) * plane + p]) }
                let mean = v.reduce(0, +) / Double(c)
                let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(c)
                let normalized = (0..<c).map { (v[$0] - mean) / (variance + 1e-6).squareRoot() * Double(s[$0]) + Double(b[$0]) }
                let a = (0..<h).map { j in max(0, (0..<c).reduce(Double(b1[j])) { $0 + normalized[$1] * Double(w1[$1 * h + j]) }) }
                for o in 0..<c {
                    let y = (0..<h).reduce(Double(b2[o])) { $0 + a[$1] * Double(w2[$1 * c + o]) }
                    let i = (n * c + o) * plane + p
                    out[i] = Float(y * Double(g[o]) + Double(xs[i]))
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }

    @Test(arguments: [false, true]) func convNeXtBlockFoldsIntoChannelsFirstOps(_ layerScaleAfterTranspose: Bool) throws {
        let w = Self.blockWeights()
        let model = try ONNXImporter.decode(try Self.blockBytes(w, layerScaleAfterTranspose: layerScaleAfterTranspose))
        #expect(model.graph.nodes.map(\.op.kind) == ["Conv2d", "LayerNorm", "Conv2d", "ReLU", "Conv2d", "Add"])
        let convs = model.graph.nodes.filter { $0.op == .conv2d(Conv2d()) }
        #expect(convs.map { model.graph.initializers[$0.inputs[1]]!.shape }
                == [[Self.hidden, Self.channels, 1, 1], [Self.channels, Self.hidden, 1, 1]])
        var rng = SeededGenerator(seed: 12)
        let x = rng.gaussianTensor([2, Self.channels, Self.size, Self.size])
        let expected = try Self.channelsLastBlock(x, w)
        let got = try Session(model: model).run(inputs: ["x": x])["y"]!
        #expect(F.isClose(got, expected), "max difference \(F.maxAbsDifference(got, expected))")
        #expect(F.isClose(try ReferenceEvaluator.run(model.graph, inputs: ["x": x])["y"]!, expected))
    }

    // MARK: Refusals

    /// Imports a spec whose nodes are `nodes` over input x[C,3,3]; returns the unsupported nodes' reasons.
    static func refusals(_ nodes: [ONNXNodeSpec], outputs extra: [String] = [],
                         initializers: [(name: String, tensor: ONNXTensorData)]? = nil) throws -> [String] {
        var spec = try ONNXModelSpec(Model(graph: F.singleOp(.relu, sample: [channels, size, size])), opset: 17)
        spec.nodes = nodes
        spec.outputs += extra.map { ONNXValueInfoSpec(name: $0, dataType: .float, dims: [.unknown]) }
        spec.initializers = initializers ?? [("s", ONNXTensorData(shape: [size], values: .float([1, 1, 1])))]
        do {
            _ = try ONNXImporter.decode(try ONNXProtoEncoder.bytes(of: spec))
            return []
        } catch ONNXImportError.unsupported(let nodes) {
            return nodes.map(\.description)
        }
    }

    @Test func layerNormalizationOverTheLastAxisOfNCHWIsRefused() throws {
        let ln = ONNXNodeSpec(name: "ln", opType: "LayerNormalization", inputs: ["x", "s"], outputs: ["y"])
        let reasons = try Self.refusals([ln])
        #expect(reasons.count == 1)
        #expect(reasons.first?.hasPrefix("'ln' (LayerNormalization): axis -1 of a 4-D value") == true, "\(reasons)")
    }

    /// A channels-last LayerNorm followed by something else than the chains the import folds:
    /// one message, on the Transpose, saying what was found.
    @Test func unfoldableChannelsLastChainIsRefusedOnItsTranspose() throws {
        let nodes = [
            ONNXNodeSpec(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["t"], attributes: [("perm", .ints([0, 2, 3, 1]))]),
            ONNXNodeSpec(name: "ln", opType: "LayerNormalization", inputs: ["t", "s4"], outputs: ["n"]),
            ONNXNodeSpec(name: "relu", opType: "Relu", inputs: ["n"], outputs: ["r"]),
            ONNXNodeSpec(name: "t2", opType: "Transpose", inputs: ["r"], outputs: ["y"], attributes: [("perm", .ints([0, 3, 1, 2]))]),
        ]
        let reasons = try Self.refusals(nodes, initializers: [("s4", ONNXTensorData(shape: [Self.channels], values: .float([1, 1, 1, 1])))])
        #expect(reasons.first == "'t1' (Transpose): a Transpose perm [0,2,3,1] is supported only before ConvNeXt's channels-last "
                + "LayerNorm or block, and here the LayerNormalization 'ln' after it is followed neither by Transpose perm [0,3,1,2] "
                + "nor by a MatMul by a constant [4, H] matrix (ConvNeXt's block)", "\(reasons)")
        #expect(!reasons.contains { $0.hasPrefix("'ln'") || $0.hasPrefix("'relu'") })
    }

    @Test func usedStatisticsOutputsAreRefused() throws {
        let ln = ONNXNodeSpec(name: "ln", opType: "LayerNormalization", inputs: ["x", "s"], outputs: ["y", "mean"])
        let reasons = try Self.refusals([ln], outputs: ["mean"])
        #expect(reasons.contains("'ln' (LayerNormalization): the Mean and InvStdDev outputs (training statistics) are used"),
                "\(reasons)")
    }
}
