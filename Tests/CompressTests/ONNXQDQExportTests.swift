import Foundation
import Testing
@testable import Compress

/// The QDQ ONNX export of int8 models (`ONNXQDQLowering`) and the graph facts
/// it reads (`Graph.activationGrid`, `Graph.biasGrid`). onnxruntime's side is
/// checked by Tests/onnx/check_qdq.py.
@Suite struct ONNXQDQExportTests {
    // MARK: Fixture

    static let inputQuantizer = ActivationQuantization(scale: 0.02, zeroPoint: 100, signed: false)
    static let reluQuantizer = ActivationQuantization(scale: 0.05, zeroPoint: 0, signed: false)
    /// conv1's weight: int8 per output channel, symmetric.
    static let convGrid = QuantizationGrid(axis: 0, scales: [0.01, 0.02], zeroPoints: [0, 0], qmin: -127, qmax: 127)
    /// fc's weight: int8, one scale.
    static let fcGrid = QuantizationGrid(scales: [0.03], zeroPoints: [0], qmin: -127, qmax: 127)

    /// x [1, 6, 6] -> quantize -> conv1 (int8 per channel, int32 bias) -> relu1 -> quantize -> pool -> flatten
    /// -> fc (int8 per tensor, int32 bias) -> logits. Weights and biases lie on their grids, as `quantize` leaves them.
    static func quantizedModel(activationsSigned: Bool = false) -> Model {
        var inputQ = inputQuantizer, reluQ = reluQuantizer
        if activationsSigned {
            inputQ = ActivationQuantization(scale: 0.02, zeroPoint: -28, signed: true)
            reluQ = ActivationQuantization(scale: 0.05, zeroPoint: -128, signed: true)
        }
        let nodes = [
            Node(name: "x.quantize", op: .quantizeDequantize(inputQ), inputs: ["x"], output: "x.quantized"),
            Node(name: "conv1", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x.quantized", "conv1.w", "conv1.b"],
                 output: "c1"),
            Node(name: "relu1", op: .relu, inputs: ["c1"], output: "r1"),
            Node(name: "relu1.quantize", op: .quantizeDequantize(reluQ), inputs: ["r1"], output: "r1.quantized"),
            Node(name: "pool", op: .maxPool(Pool2d(kernel: .square(2))), inputs: ["r1.quantized"], output: "p"),
            Node(name: "flatten", op: .flatten(axis: 1), inputs: ["p"], output: "f"),
            Node(name: "fc", op: .linear, inputs: ["f", "fc.w", "fc.b"], output: "logits"),
        ]
        let convInts = (0..<18).map { Int32(($0 * 37) % 255 - 127) }
        let fcInts = (0..<54).map { Int32(($0 * 53) % 255 - 127) }
        var graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [1, 6, 6])], outputs: ["logits"], nodes: nodes,
                          initializers: [
                              "conv1.w": Tensor(shape: [2, 1, 3, 3], floats: convGrid.dequantize(convInts, shape: [2, 1, 3, 3])),
                              "fc.w": Tensor(shape: [3, 18], floats: fcGrid.dequantize(fcInts, shape: [3, 18])),
                          ])
        let precisions: [String: TensorPrecision] = ["conv1.w": .int8(convGrid), "fc.w": .int8(fcGrid)]
        // Biases on their int32 grids: input scale x weight scale.
        let convBias = QuantizationGrid(axis: 0, scales: convGrid.scales.map { inputQ.scale * $0 }, zeroPoints: [0, 0],
                                        qmin: QuantizationGrid.int32BiasRange.lowerBound,
                                        qmax: QuantizationGrid.int32BiasRange.upperBound,
                                        storageRange: QuantizationGrid.int32BiasRange)
        graph.initializers["conv1.b"] = Tensor(shape: [2], floats: convBias.dequantize([5, -300], shape: [2]))
        let fcBias = QuantizationGrid(axis: 0, scales: [Float](repeating: reluQ.scale * 0.03, count: 3), zeroPoints: [0, 0, 0],
                                      qmin: QuantizationGrid.int32BiasRange.lowerBound,
                                      qmax: QuantizationGrid.int32BiasRange.upperBound,
                                      storageRange: QuantizationGrid.int32BiasRange)
        graph.initializers["fc.b"] = Tensor(shape: [3], floats: fcBias.dequantize([1000, -1, 0], shape: [3]))
        var metadata = ModelMetadata(architecture: "tiny-int8", normalization: Normalization(mean: [0.5], std: [0.25]),
                                     classNames: ["a", "b", "c"])
        metadata.storage.precisions = precisions
        return Model(graph: graph, metadata: metadata)
    }

    static func export(_ model: Model, opset: Int = 13) throws -> DecodedONNX {
        try DecodedONNX(try ONNXExporter.encode(model, opset: opset))
    }

    static func int8s(_ i: DecodedONNX.Initializer) -> [Int32] { i.raw.map { Int32(Int8(bitPattern: $0)) } }
    static func int32s(_ i: DecodedONNX.Initializer) -> [Int32] {
        stride(from: 0, to: i.raw.count, by: 4).map { k in
            Int32(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(i.raw[k + $1]) << (8 * $1) })
        }
    }

    // MARK: Structure

    @Test func everyQuantizerAndIntegerTensorBecomesQDQNodes() throws {
        let onnx = try Self.export(Self.quantizedModel())
        #expect(onnx.nodes.map(\.opType) == [
            "Sub", "Div", "QuantizeLinear", "DequantizeLinear",
            "DequantizeLinear", "DequantizeLinear", "Conv", "Relu", "QuantizeLinear", "DequantizeLinear",
            "MaxPool", "QuantizeLinear", "DequantizeLinear",
            "Flatten", "QuantizeLinear", "DequantizeLinear",
            "DequantizeLinear", "DequantizeLinear", "Gemm",
        ])
        func node(_ name: String) throws -> DecodedONNX.Node { try #require(onnx.nodes.first { $0.name == name }) }
        // The input quantizer reads the normalized input; conv1 reads its DequantizeLinear and the dequantized tensors.
        // The DequantizeLinear keeps the IR quantizer's name; the import gives it back.
        let q = try node("x.quantize.QuantizeLinear"), dq = try node("x.quantize")
        #expect(q.inputs == ["x.normalized", "x.quantize.scale", "x.quantize.zero_point"])
        #expect(dq.inputs == [q.outputs[0], "x.quantize.scale", "x.quantize.zero_point"] && dq.outputs == ["x.quantized"])
        let conv = try node("conv1")
        // Integer tensors are `<name>.quantized`; their DequantizeLinear outputs the tensor's own name.
        #expect(conv.inputs == ["x.quantized", "conv1.w", "conv1.b"])
        let wdq = try node("conv1.w.DequantizeLinear")
        #expect(wdq.inputs == ["conv1.w.quantized", "conv1.w.scale", "conv1.w.zero_point"] && wdq.ints["axis"] == [0])
        #expect(wdq.outputs == ["conv1.w"] && onnx.initializers["conv1.w"] == nil)
        #expect(try node("conv1.b.DequantizeLinear").ints["axis"] == [0])
        // Per tensor: scalars and no axis.
        let fcdq = try node("fc.w.DequantizeLinear")
        #expect(fcdq.ints["axis"] == nil && onnx.initializers["fc.w.scale"]?.dims == [])
        #expect(try node("fc").inputs == ["f.requantized", "fc.w", "fc.b"])
        #expect(onnx.outputs.map(\.name) == ["logits"] && onnx.outputs[0].elemType == 1)
    }

    @Test func quantizerParametersAreFloatScalarsAndUInt8OrInt8ZeroPoints() throws {
        let onnx = try Self.export(Self.quantizedModel())
        let scale = try #require(onnx.initializers["relu1.quantize.scale"])
        #expect(scale.dims == [] && scale.dataType == 1 && scale.float32Bits == [Self.reluQuantizer.scale.bitPattern])
        let zero = try #require(onnx.initializers["x.quantize.zero_point"])
        #expect(zero.dims == [] && zero.dataType == 2 && zero.raw == [100])
        let signed = try Self.export(Self.quantizedModel(activationsSigned: true))
        let szero = try #require(signed.initializers["x.quantize.zero_point"])
        #expect(szero.dataType == 3 && Self.int8s(szero) == [-28])
        #expect(Self.int8s(try #require(signed.initializers["relu1.quantize.zero_point"])) == [-128])
    }

    @Test func passThroughOpsAreRequantizedOnTheGridTheyInherit() throws {
        let onnx = try Self.export(Self.quantizedModel())
        for op in ["pool", "flatten"] {
            let q = try #require(onnx.nodes.first { $0.name == "\(op).requantize.QuantizeLinear" })
            let value = op == "pool" ? "p" : "f"
            #expect(q.inputs[0] == value)
            #expect(onnx.initializers[q.inputs[1]]?.float32Bits == [Self.reluQuantizer.scale.bitPattern])
            #expect(onnx.initializers[q.inputs[2]]?.raw == [0] && onnx.initializers[q.inputs[2]]?.dataType == 2)
        }
        #expect(onnx.nodes.first { $0.opType == "Flatten" }?.inputs == ["p.requantized"])
    }

    // MARK: Integer tensors

    @Test func weightsAreInt8AndBiasesInt32OfTheirGrids() throws {
        let model = Self.quantizedModel()
        let onnx = try Self.export(model)
        let w = try #require(onnx.initializers["conv1.w.quantized"])
        let values = model.graph.initializers["conv1.w"]!.floats
        #expect(w.dataType == 3 && w.dims == [2, 1, 3, 3])
        #expect(Self.int8s(w) == Self.convGrid.quantize(values, shape: [2, 1, 3, 3]))
        let convInts: [Int32] = (0..<18).map { (i: Int) -> Int32 in Int32((i * 37) % 255 - 127) }
        #expect(Self.int8s(w) == convInts)
        #expect(try #require(onnx.initializers["conv1.w.scale"]).float32Bits == [Float(0.01).bitPattern, Float(0.02).bitPattern])
        let wzero = try #require(onnx.initializers["conv1.w.zero_point"])
        #expect(wzero.dataType == 3 && wzero.dims == [2] && Self.int8s(wzero) == [0, 0])
        let fc = try #require(onnx.initializers["fc.w.quantized"])
        let fcInts: [Int32] = (0..<54).map { (i: Int) -> Int32 in Int32((i * 53) % 255 - 127) }
        #expect(fc.dataType == 3 && Self.int8s(fc) == fcInts)
        // Biases: int32, scale = input scale x weight scale (float32), zero point 0.
        let b = try #require(onnx.initializers["conv1.b.quantized"])
        #expect(b.dataType == 6 && b.dims == [2] && Self.int32s(b) == [5, -300])
        let bscale = try #require(onnx.initializers["conv1.b.scale"])
        #expect(bscale.float32Bits == [(Float(0.02) * Float(0.01)).bitPattern, (Float(0.02) * Float(0.02)).bitPattern])
        let bzero = try #require(onnx.initializers["conv1.b.zero_point"])
        #expect(bzero.dataType == 6 && Self.int32s(bzero) == [0, 0])
        let fcb = try #require(onnx.initializers["fc.b.quantized"])
        #expect(fcb.dataType == 6 && Self.int32s(fcb) == [1000, -1, 0])
        #expect(try #require(onnx.initializers["fc.b.scale"]).float32Bits
            == [Float](repeating: Float(0.05) * Float(0.03), count: 3).map(\.bitPattern))
    }

    @Test func asymmetricWeightsKeepTheirZeroPoints() throws {
        var model = Self.quantizedModel()
        let grid = QuantizationGrid(axis: 0, scales: [0.01, 0.02], zeroPoints: [-3, 7], qmin: -128, qmax: 127)
        let ints: [Int32] = (0..<18).map { Int32($0 * 13 % 256 - 128) }
        model.graph.initializers["conv1.w"] = Tensor(shape: [2, 1, 3, 3], floats: grid.dequantize(ints, shape: [2, 1, 3, 3]))
        model.metadata.storage.precisions["conv1.w"] = .int8(grid)
        let onnx = try Self.export(model)
        #expect(Self.int8s(try #require(onnx.initializers["conv1.w.quantized"])) == ints)
        #expect(Self.int8s(try #require(onnx.initializers["conv1.w.zero_point"])) == [-3, 7])
    }

    @Test func weightsOnlyModelsKeepFloatBiasesAndActivations() throws {
        var model = Self.quantizedModel()
        model.graph.nodes.removeAll { if case .quantizeDequantize = $0.op { true } else { false } }
        model.graph.nodes = model.graph.nodes.map { n in
            var n = n
            n.inputs = n.inputs.map { $0.hasSuffix(".quantized") ? String($0.dropLast(".quantized".count)) : $0 }
            return n
        }
        model.graph.initializers["conv1.b"] = Tensor(shape: [2], floats: [0.123, -4.5])
        let onnx = try Self.export(model)
        #expect(!onnx.nodes.contains { $0.opType == "QuantizeLinear" })
        #expect(onnx.nodes.filter { $0.opType == "DequantizeLinear" }.map { $0.inputs[0] } == ["conv1.w.quantized", "fc.w.quantized"])
        let bias = try #require(onnx.initializers["conv1.b"])
        #expect(bias.dataType == 1 && bias.float32Bits == [Float(0.123).bitPattern, Float(-4.5).bitPattern])
        #expect(onnx.initializers["conv1.w.quantized"]?.dataType == 3)
    }

    @Test func bytesAreDeterministic() throws {
        let a = try ONNXExporter.encode(Self.quantizedModel())
        let b = try ONNXExporter.encode(Self.quantizedModel())
        #expect(a == b)
        // Dictionaries built in another order give the same bytes.
        var shuffled = Self.quantizedModel()
        shuffled.graph.initializers = Dictionary(uniqueKeysWithValues: shuffled.graph.initializers.sorted { $0.key > $1.key })
        shuffled.metadata.storage.precisions = Dictionary(uniqueKeysWithValues:
            shuffled.metadata.storage.precisions.sorted { $0.key > $1.key })
        #expect(try ONNXExporter.encode(shuffled) == a)
    }

    @Test func opsetsFrom13AreKept() throws {
        #expect(try Self.export(Self.quantizedModel()).opsets[0].version == 13)
        let newer = try Self.export(Self.quantizedModel(), opset: 21)
        #expect(newer.opsets[0].version == 21 && newer.nodes.contains { $0.opType == "QuantizeLinear" })
    }

    // MARK: Refusals

    @Test func opsetsBelow13AreRefused() throws {
        let model = Self.quantizedModel()
        #expect(throws: ONNXExportError.unsupportedOpset(12)) { try ONNXExporter.encode(model, opset: 12) }
        let graph = try model.graph.topologicallySorted()
        #expect(throws: ONNXExportError.quantizedModelNeedsOpset(opset: 12, minimum: 13)) {
            try ONNXQDQLowering(model, graph: graph, opset: 12)
        }
        #expect(ONNXExportError.quantizedModelNeedsOpset(opset: 12, minimum: 13).description
            == "a quantized model is written as QDQ ONNX, which needs opset 13 or newer (per-channel DequantizeLinear); got --opset 12")
    }

    @Test func aBiasOffItsGridIsRefusedByName() throws {
        var model = Self.quantizedModel()
        let bias = model.graph.initializers["conv1.b"]!.floats
        let moved = bias[1].nextUp
        model.graph.initializers["conv1.b"] = Tensor(shape: [2], floats: [bias[0], moved])
        let error = ONNXExportError.biasOffGrid(tensor: "conv1.b", node: "conv1", value: moved)
        #expect(throws: error) { try ONNXExporter.encode(model) }
        #expect(error.description.hasPrefix("bias 'conv1.b' of node 'conv1' holds "))
        #expect(error.description.hasSuffix("re-run quantize"))
    }

    /// The model with `node` inserted after relu1's quantizer (reading its output).
    static func withNodeAfterTheReluQuantizer(_ op: Op, extraInputs: [String] = [],
                                              initializers: [String: Tensor] = [:]) -> Model {
        var model = quantizedModel()
        let at = model.graph.nodeIndex(named: "pool")!
        model.graph.nodes.insert(Node(name: "odd", op: op, inputs: ["r1.quantized"] + extraInputs, output: "odd.out"), at: at)
        model.graph.nodes[at + 1].inputs = ["odd.out"]
        model.graph.initializers.merge(initializers) { $1 }
        return model
    }

    @Test func opsOnnxruntimeCannotRunOnIntegersAreRefused() throws {
        func reason(_ model: Model) -> String? {
            do { _ = try ONNXExporter.encode(model); return nil } catch { return "\(error)" }
        }
        let tanh = try #require(reason(Self.withNodeAfterTheReluQuantizer(.tanh)))
        #expect(tanh.hasPrefix("node 'odd' (Tanh) cannot be exported as int8 QDQ ONNX that onnxruntime runs on integers: "
                               + "onnxruntime has no integer Tanh"))
        let ones = Tensor(shape: [2], floats: [1, 1]), zeros = Tensor(shape: [2], floats: [0, 0])
        let bn = try #require(reason(Self.withNodeAfterTheReluQuantizer(
            .batchNorm(epsilon: 1e-5), extraInputs: ["s", "b", "m", "v"], initializers: ["s": ones, "b": zeros, "m": zeros, "v": ones])))
        #expect(bn.contains("node 'odd' (BatchNormalization)") && bn.contains("--fold-bn true"))
        let sub = try #require(reason(Self.withNodeAfterTheReluQuantizer(.sub, extraInputs: ["r1.quantized"])))
        #expect(sub.contains("(Sub)") && sub.contains("--activations none"))
        // A Mul of a quantized value by a float32 constant: onnxruntime's QLinearMul needs both inputs quantized.
        #expect(throws: ONNXExportError.notQuantizable(
            node: "odd", op: "Mul", reason: "its input 'k' is not quantized, and onnxruntime's integer Mul needs every input quantized")) {
            try ONNXExporter.encode(Self.withNodeAfterTheReluQuantizer(.mul, extraInputs: ["k"],
                                                                      initializers: ["k": Tensor(shape: [1], floats: [2])]))
        }
        // A ReLU that reads a quantized value (not one the quantizer after a layer makes redundant).
        let relu = try #require(reason(Self.withNodeAfterTheReluQuantizer(.relu)))
        #expect(relu.hasPrefix("node 'odd' (Relu) cannot be exported"))
        // An average pool reading int8 activations whose output is not quantized (a float op reads it).
        #expect(throws: ONNXExportError.notQuantizable(node: "odd", op: "AveragePool",
                                                       reason: "its output is not quantized before 'pool' (MaxPool)")) {
            try ONNXExporter.encode(Self.withNodeAfterTheReluQuantizer(.avgPool(Pool2d(kernel: .square(1)),
                                                                                  countIncludePad: false)))
        }
        // Refusals write nothing.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qdq-refused-\(UUID()).onnx").path
        #expect(throws: ONNXExportError.self) { try ONNXExporter.write(Self.withNodeAfterTheReluQuantizer(.tanh), to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aConvWhoseOutputIsNotRequantizedIsRefusedButTheLogitsGemmIsNot() throws {
        var model = Self.quantizedModel()
        // conv1's output becomes a graph output: onnxruntime's QLinearConv needs a QuantizeLinear after it.
        model.graph.outputs.append("c1")
        #expect(throws: ONNXExportError.notQuantizable(node: "conv1", op: "Conv", reason: "its output is not quantized: it is a graph output")) {
            try ONNXExporter.encode(model)
        }
        // fc's logits stay float32 (QGemm with a float output): exported.
        #expect(try Self.export(Self.quantizedModel()).nodes.last?.opType == "Gemm")
        // A ReLU between a layer and a quantizer whose zero point is not the lowest integer is not removable.
        var shifted = Self.quantizedModel()
        let i = shifted.graph.nodeIndex(named: "relu1.quantize")!
        shifted.graph.nodes[i].op = .quantizeDequantize(ActivationQuantization(scale: 0.05, zeroPoint: 3, signed: false))
        #expect(throws: ONNXExportError.notQuantizable(
            node: "conv1", op: "Conv", reason: "the quantizer 'relu1.quantize' after 'relu1' does not clip at the activation's "
                + "bounds (zero point 3, scale 0.05), so onnxruntime keeps it in float32")) {
            try ONNXExporter.encode(shifted)
        }
    }

    @Test func relu6IsRedundantOnlyWhenTheQuantizerClipsAtSix() {
        let below = ActivationQuantization(scale: 6 / 255, zeroPoint: 0, signed: false)
        let above = ActivationQuantization(scale: 0.03, zeroPoint: 0, signed: false)
        #expect(ONNXQDQLowering.quantizerMakesRedundant(below, .relu6))
        #expect(!ONNXQDQLowering.quantizerMakesRedundant(above, .relu6))
        #expect(ONNXQDQLowering.quantizerMakesRedundant(above, .relu))
        #expect(!ONNXQDQLowering.quantizerMakesRedundant(ActivationQuantization(scale: 0.03, zeroPoint: 1, signed: false), .relu))
        #expect(ONNXQDQLowering.quantizerMakesRedundant(ActivationQuantization(scale: 0.03, zeroPoint: -128, signed: true), .relu))
    }

    // MARK: Graph.activationGrid and Graph.biasGrid

    @Test func activationGridFollowsOpsThatPassGridValuesOn() {
        var graph = Self.quantizedModel().graph
        #expect(graph.activationGrid(of: "x") == nil)
        #expect(graph.activationGrid(of: "x.quantized") == Self.inputQuantizer)
        #expect(graph.activationGrid(of: "c1") == nil && graph.activationGrid(of: "r1") == nil)
        #expect(graph.activationGrid(of: "r1.quantized") == Self.reluQuantizer)
        // max pooling, then flatten: still the ReLU quantizer's grid.
        #expect(graph.activationGrid(of: "p") == Self.reluQuantizer && graph.activationGrid(of: "f") == Self.reluQuantizer)
        #expect(graph.activationGrid(of: "logits") == nil)
        // reshape and dropout pass it on; an average pool does not.
        graph.nodes.insert(Node(name: "drop", op: .dropout(ratio: 0.5), inputs: ["f"], output: "d"), at: 6)
        graph.nodes.insert(Node(name: "shape", op: .reshape(shape: [0, -1]), inputs: ["d"], output: "s"), at: 7)
        graph.nodes.append(Node(name: "avg", op: .avgPool(Pool2d(kernel: .square(2)), countIncludePad: false),
                                inputs: ["r1.quantized"], output: "a"))
        #expect(graph.activationGrid(of: "s") == Self.reluQuantizer)
        #expect(graph.activationGrid(of: "a") == nil)
        #expect(graph.activationGrid(of: "no such value") == nil)
    }

    @Test func biasGridIsInputScaleTimesWeightScaleWithZeroPointZero() throws {
        let model = Self.quantizedModel()
        let precisions = model.metadata.storage.precisions
        let conv = model.graph.nodes.first { $0.name == "conv1" }!
        let grid = try #require(model.graph.biasGrid(of: conv, precisions: precisions))
        #expect(grid.axis == 0 && grid.zeroPoints == [0, 0])
        #expect(grid.scales.map(\.bitPattern) == [Float(0.02) * Float(0.01), Float(0.02) * Float(0.02)].map(\.bitPattern))
        #expect(grid.storageRange == -2_147_483_520...2_147_483_520 && grid.qmin == -2_147_483_520 && grid.qmax == 2_147_483_520)
        // One weight scale is repeated per output channel; the input grid comes through pool and flatten.
        let fc = model.graph.nodes.first { $0.name == "fc" }!
        let fcGrid = try #require(model.graph.biasGrid(of: fc, precisions: precisions))
        #expect(fcGrid.scales.map(\.bitPattern) == [Float](repeating: Float(0.05) * Float(0.03), count: 3).map(\.bitPattern))
        // None without an int8 weight, without a bias, on a float input, or for other ops.
        #expect(model.graph.biasGrid(of: conv, precisions: [:]) == nil)
        #expect(model.graph.biasGrid(of: conv, precisions: ["conv1.w": .float16]) == nil)
        var noBias = conv
        noBias.inputs = Array(conv.inputs.prefix(2))
        #expect(model.graph.biasGrid(of: noBias, precisions: precisions) == nil)
        var floatInput = conv
        floatInput.inputs[0] = "x"
        #expect(model.graph.biasGrid(of: floatInput, precisions: precisions) == nil)
        #expect(model.graph.biasGrid(of: model.graph.nodes.first { $0.name == "relu1" }!, precisions: precisions) == nil)
    }
}
