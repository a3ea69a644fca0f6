import Foundation
import Testing
@testable import Compress

/// Import of QDQ ONNX models (QuantizeLinear/DequantizeLinear) into int8
/// models. The models are written here in protobuf wire format (`QDQModel`),
/// since the exporter's encoder only writes float32 and int64 tensors; the
/// expected grids and values are computed by hand (dyadic scales, so every
/// product is exact).
@Suite struct ONNXQDQImportTests {
    // MARK: Weights and biases

    @Test func perChannelWeightAndInt32BiasBecomeTheirValuesWithAnInt8Record() throws {
        var m = QDQModel(input: [2, 3, 3])
        m.int8("wq", [3, 2, 1, 1], [1, -2, 127, -127, 0, 5])
        m.float("ws", [3], [0.5, 0.25, 0.125])
        m.int8("wz", [3], [0, 0, 0])
        m.int32("bq", [3], [4, -8, 0])
        m.float("bs", [3], [0.25, 0.5, 2])
        m.node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], name: "w_dq", ints: ["axis": 0])
        m.node("DequantizeLinear", ["bq", "bs"], ["b"], name: "b_dq", ints: ["axis": 0])
        m.node("Conv", ["x", "w", "b"], ["y"], name: "conv")
        let model = try m.imported()
        let conv = try #require(model.graph.nodes.first { $0.name == "conv" })
        #expect(model.graph.nodes.count == 1)
        #expect(model.graph.initializers[conv.inputs[1]]?.floats == [0.5, -1, 31.75, -31.75, 0, 0.625])
        #expect(model.graph.initializers[conv.inputs[2]]?.floats == [1, -4, 0])
        #expect(model.metadata.storage.precisions == [
            conv.inputs[1]: .int8(QuantizationGrid(axis: 0, scales: [0.5, 0.25, 0.125], zeroPoints: [0, 0, 0], qmin: -127, qmax: 127)),
        ])
        // The file stores the integers and reads back the same model.
        let back = try ModelFile.decode(try ModelFile.encode(model))
        #expect(back.metadata.storage.precisions == model.metadata.storage.precisions)
        #expect(back.graph.initializers == model.graph.initializers)
    }

    @Test func perTensorAsymmetricAndUint8WeightsGetTheRangeThatHoldsTheirIntegers() throws {
        var m = QDQModel(input: [4])
        // Symmetric-looking but holding -128: the full int8 range.
        m.int8("aq", [2, 4], [-128, 0, 1, 2, 3, 4, 5, 6])
        m.float("as", [], [0.5])
        m.int8("az", [], [0])
        // Asymmetric per tensor.
        m.int8("bq", [2, 2], [-3, 0, 7, 127])
        m.float("bs", [], [0.25])
        m.int8("bz", [], [-2])
        // uint8 with a zero point: the same values on int8 with the zero point moved by -128.
        m.uint8("cq", [2, 2], [0, 130, 255, 128])
        m.float("cs", [], [0.5])
        m.uint8("cz", [], [128])
        // Reduced range (onnxruntime's reduce_range): magnitudes up to 64.
        m.int8("dq", [2, 2], [64, -3, 0, -64])
        m.float("ds", [], [1])
        for (q, s, z) in [("aq", "as", "az"), ("bq", "bs", "bz"), ("cq", "cs", "cz")] {
            m.node("DequantizeLinear", [q, s, z], ["\(q)_w"], name: "\(q)_dq")
        }
        m.node("DequantizeLinear", ["dq", "ds"], ["dq_w"], name: "dq_dq")
        m.node("Gemm", ["x", "aq_w"], ["h1"], name: "fc_a", ints: ["transB": 1])
        m.node("Gemm", ["h1", "bq_w"], ["h2"], name: "fc_b", ints: ["transB": 1])
        m.node("Gemm", ["h2", "cq_w"], ["h3"], name: "fc_c", ints: ["transB": 1])
        m.node("Gemm", ["h3", "dq_w"], ["y"], name: "fc_d", ints: ["transB": 1])
        let model = try m.imported()
        let p = model.metadata.storage.precisions
        #expect(model.graph.initializers["aq_w"]?.floats == [-64, 0, 0.5, 1, 1.5, 2, 2.5, 3])
        #expect(p["aq_w"] == .int8(QuantizationGrid(scales: [0.5], zeroPoints: [0], qmin: -128, qmax: 127)))
        #expect(model.graph.initializers["bq_w"]?.floats == [-0.25, 0.5, 2.25, 32.25])
        #expect(p["bq_w"] == .int8(QuantizationGrid(scales: [0.25], zeroPoints: [-2], qmin: -128, qmax: 127)))
        #expect(model.graph.initializers["cq_w"]?.floats == [-64, 1, 63.5, 0])
        #expect(p["cq_w"] == .int8(QuantizationGrid(scales: [0.5], zeroPoints: [0], qmin: -128, qmax: 127)))
        #expect(model.graph.initializers["dq_w"]?.floats == [64, -3, 0, -64])
        #expect(p["dq_w"] == .int8(QuantizationGrid(scales: [1], zeroPoints: [0], qmin: -64, qmax: 64)))
        let back = try ModelFile.decode(try ModelFile.encode(model))
        #expect(back.metadata.storage.precisions == p && back.graph.initializers == model.graph.initializers)
    }

    @Test func transposedWeightsMoveTheirChannelAxis() throws {
        var m = QDQModel(input: [2])
        // Gemm with transB=0 and MatMul read B as [in, out]: per-channel along axis 1.
        m.int8("gq", [2, 3], [1, 2, 3, 4, 5, 6])
        m.float("gs", [3], [0.5, 0.25, 1])
        m.int8("mq", [3, 2], [-1, 2, -3, 4, -5, 6])
        m.float("ms", [2], [2, 0.125])
        m.node("DequantizeLinear", ["gq", "gs"], ["g"], name: "g_dq", ints: ["axis": 1])
        m.node("DequantizeLinear", ["mq", "ms"], ["mw"], name: "m_dq", ints: ["axis": -1])
        m.node("Gemm", ["x", "g"], ["h"], name: "gemm")
        m.node("MatMul", ["h", "mw"], ["y"], name: "matmul")
        let model = try m.imported()
        let gemm = try #require(model.graph.nodes.first { $0.name == "gemm" })
        let matmul = try #require(model.graph.nodes.first { $0.name == "matmul" })
        // [out, in] after the transpose; the scales now run along axis 0.
        #expect(model.graph.initializers[gemm.inputs[1]]?.floats == [0.5, 2, 0.5, 1.25, 3, 6])
        #expect(model.graph.initializers[matmul.inputs[1]]?.floats == [-2, -6, -10, 0.25, 0.5, 0.75])
        let p = model.metadata.storage.precisions
        #expect(p[gemm.inputs[1]] == .int8(QuantizationGrid(axis: 0, scales: [0.5, 0.25, 1], zeroPoints: [0, 0, 0], qmin: -127, qmax: 127)))
        #expect(p[matmul.inputs[1]] == .int8(QuantizationGrid(axis: 0, scales: [2, 0.125], zeroPoints: [0, 0], qmin: -127, qmax: 127)))
        _ = try ModelFile.decode(try ModelFile.encode(model))
    }

    @Test func constantsDequantizedForOtherOpsFoldToFloatWithoutARecord() throws {
        var m = QDQModel(input: [3])
        m.uint8("q", [3], [0, 10, 255])
        m.float("s", [], [0.5])
        m.uint8("z", [], [10])
        m.node("DequantizeLinear", ["q", "s", "z"], ["c"], name: "c_dq")
        m.node("Add", ["x", "c"], ["y"], name: "add")
        let model = try m.imported()
        let add = try #require(model.graph.nodes.first)
        #expect(model.graph.initializers[add.inputs[1]]?.floats == [-5, 0, 122.5])
        #expect(model.metadata.storage.precisions.isEmpty)
    }

    @Test func aQuantizedConstantWeightFoldsOntoItsGrid() throws {
        // Weights kept in float and quantized in the graph (QuantizeLinear of an initializer).
        var m = QDQModel(input: [2])
        m.float("w", [2, 2], [0.3, -1.1, 0.74, 100])
        m.float("s", [], [0.5])
        m.int8("z", [], [0])
        m.node("QuantizeLinear", ["w", "s", "z"], ["wq"], name: "w_q")
        m.node("DequantizeLinear", ["wq", "s", "z"], ["wd"], name: "w_dq")
        m.node("Gemm", ["x", "wd"], ["y"], name: "fc", ints: ["transB": 1])
        let model = try m.imported()
        // 0.6 -> 1, -2.2 -> -2, 1.48 -> 1, 200 -> 127 (saturated).
        #expect(model.graph.initializers["wd"]?.floats == [0.5, -1, 0.5, 63.5])
        #expect(model.metadata.storage.precisions["wd"] == .int8(QuantizationGrid(scales: [0.5], zeroPoints: [0], qmin: -127, qmax: 127)))
    }

    // MARK: Activations

    @Test func aQuantizeDequantizePairBecomesOneQuantizer() throws {
        for (type, zeroPoint) in [(QDQModel.uint8Type, Int32(10)), (QDQModel.int8Type, Int32(-3))] {
            var m = QDQModel(input: [6])
            m.float("s", [], [0.5])
            m.integer("z", type, [], [Int64(zeroPoint)])
            m.node("QuantizeLinear", ["x", "s", "z"], ["xq"], name: "x_q")
            m.node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name: "x_dq")
            m.node("Relu", ["xd"], ["y"], name: "relu")
            let model = try m.imported()
            let quantizer = ActivationQuantization(scale: 0.5, zeroPoint: zeroPoint, signed: type == QDQModel.int8Type)
            #expect(model.graph.nodes.map(\.op) == [.quantizeDequantize(quantizer), .relu])
            #expect(model.graph.nodes[1].inputs == [model.graph.nodes[0].output])
            // By hand: x / 0.5 rounded half to even, saturated to the type around the zero point.
            let x = Tensor(shape: [1, 6], floats: [1.3, 0.25, 0.75, -1.2, 1000, -1000])
            let y = try Session(model: model).run(inputs: ["x": x])["y"]!
            // 1.3 -> 2.6 -> 3, 0.25 -> 0.5 -> 0 (tie to even), 0.75 -> 1.5 -> 2, -1.2 -> -2.4 -> -2 (ReLU: 0),
            // 1000 saturates at the type's top, -1000 at its bottom (ReLU: 0).
            let high: Float = type == QDQModel.int8Type ? (127 + 3) * 0.5 : (255 - 10) * 0.5
            #expect(y.floats == [1.5, 0, 1, 0, high, 0])
        }
    }

    @Test func pairsOnTheirInputsGridAreDroppedAndSharedPairsEmitOnce() throws {
        var m = QDQModel(input: [1, 4, 4])
        m.float("s", [], [0.25])
        m.uint8("z", [], [7])
        m.float("s2", [], [0.5])
        // One Q read by two DQs, one DQ read by two nodes.
        m.node("QuantizeLinear", ["x", "s", "z"], ["xq"], name: "x_q")
        m.node("DequantizeLinear", ["xq", "s", "z"], ["xd1"], name: "x_dq1")
        m.node("DequantizeLinear", ["xq", "s", "z"], ["xd2"], name: "x_dq2")
        m.node("MaxPool", ["xd1"], ["p"], name: "pool", ints: ["kernel_shape": [2, 2], "strides": [2, 2]])
        // The same grid after a max pool and a flatten: identities.
        m.node("QuantizeLinear", ["p", "s", "z"], ["pq"], name: "p_q")
        m.node("DequantizeLinear", ["pq", "s", "z"], ["pd"], name: "p_dq")
        m.node("Flatten", ["pd"], ["f"], name: "flatten")
        m.node("QuantizeLinear", ["f", "s", "z"], ["fq"], name: "f_q")
        m.node("DequantizeLinear", ["fq", "s", "z"], ["fd"], name: "f_dq")
        // Another grid after the flatten: a quantizer.
        m.node("QuantizeLinear", ["f", "s2", "z"], ["gq"], name: "g_q")
        m.node("DequantizeLinear", ["gq", "s2", "z"], ["gd"], name: "g_dq")
        // A second QuantizeLinear of x on the same grid (onnxruntime's dedicated pairs): the same quantizer.
        m.node("QuantizeLinear", ["x", "s", "z"], ["xq3"], name: "x_q3")
        m.node("DequantizeLinear", ["xq3", "s", "z"], ["xd3"], name: "x_dq3")
        m.node("Relu", ["xd3"], ["r1"], name: "relu1")
        m.node("Sigmoid", ["xd1"], ["r2"], name: "sigmoid")
        m.node("Tanh", ["xd2"], ["r3"], name: "tanh")
        m.outputs = ["fd", "gd", "r1", "r2", "r3"]
        let model = try m.imported()
        let g = model.graph
        let u8 = { (s: Float) in Op.quantizeDequantize(ActivationQuantization(scale: s, zeroPoint: 7, signed: false)) }
        #expect(g.nodes.map(\.op.kind) == ["QuantizeDequantize", "MaxPool", "Flatten", "QuantizeDequantize", "ReLU", "Sigmoid", "Tanh"])
        #expect(g.nodes[0].op == u8(0.25) && g.nodes[3].op == u8(0.5))
        let quantized = g.nodes[0].output
        #expect(g.consumers(of: quantized).map(\.name).sorted() == ["pool", "relu1", "sigmoid", "tanh"])
        #expect(g.outputs[0] == g.nodes[2].output && g.nodes[3].inputs == [g.nodes[2].output])
    }

    @Test func normalizationIsLiftedWithAQuantizerAfterTheDiv() throws {
        var m = QDQModel(input: [1, 2, 2])
        m.float("mean", [1, 1, 1], [0.5])
        m.float("std", [1, 1, 1], [0.25])
        m.float("s", [], [0.0625])
        m.uint8("z", [], [128])
        m.node("Sub", ["x", "mean"], ["c"], name: "sub")
        m.node("Div", ["c", "std"], ["n"], name: "div")
        m.node("QuantizeLinear", ["n", "s", "z"], ["nq"], name: "n_q")
        m.node("DequantizeLinear", ["nq", "s", "z"], ["nd"], name: "n_dq")
        m.node("Flatten", ["nd"], ["y"], name: "flatten")
        let model = try m.imported()
        #expect(model.metadata.normalization == Normalization(mean: [0.5], std: [0.25]))
        #expect(model.graph.nodes.map(\.op.kind) == ["QuantizeDequantize", "Flatten"])
        #expect(model.graph.nodes[0].inputs == ["x"])
        // (0.6 - 0.5) / 0.25 = 0.4 -> 6.4 steps -> 6 -> 0.375.
        let y = try Session(model: model).run(inputs: ["x": Tensor(shape: [1, 1, 2, 2], floats: [0.6, 0.5, 1, 0])], normalizing: true)
        #expect(y["y"]!.floats == [0.375, 0, 2, -2])
    }

    // MARK: Refusals

    /// The import of `m` fails naming `node` (and `opType`) with a reason containing `reason`.
    func expectRefusal(_ m: QDQModel, node: String, opType: String, reason: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try m.imported()
            Issue.record("imported, expected a refusal of '\(node)'", sourceLocation: sourceLocation)
        } catch let ONNXImportError.unsupported(nodes) {
            #expect(nodes.count == 1, "\(nodes)", sourceLocation: sourceLocation)
            #expect(nodes.first?.node == node && nodes.first?.opType == opType, "\(nodes)", sourceLocation: sourceLocation)
            #expect(nodes.first?.reason.contains(reason) == true, "\(nodes)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("threw \(error), expected a refusal of '\(node)'", sourceLocation: sourceLocation)
        }
    }

    /// x -> QuantizeLinear -> DequantizeLinear -> Relu with these parameters.
    static func pair(_ qAttributes: [String: QDQModel.Ints] = [:], dequantizeScale: Float = 0.5,
                     zeroPoint: (Int32, [Int64]) = (QDQModel.uint8Type, [3])) -> QDQModel {
        var m = QDQModel(input: [4])
        m.float("s", [], [0.5])
        m.float("s_dq", [], [dequantizeScale])
        m.integer("z", zeroPoint.0, [], zeroPoint.1)
        m.node("QuantizeLinear", ["x", "s", "z"], ["q"], name: "the_q", ints: qAttributes)
        m.node("DequantizeLinear", ["q", "s_dq", "z"], ["d"], name: "the_dq")
        m.node("Relu", ["d"], ["y"], name: "relu")
        return m
    }

    @Test func quantizeLinearWithoutDequantizeIsRefused() {
        var unused = QDQModel(input: [4])
        unused.float("s", [], [0.5])
        unused.node("QuantizeLinear", ["x", "s"], ["q"], name: "the_q")
        unused.node("Relu", ["x"], ["y"], name: "relu")
        expectRefusal(unused, node: "the_q", opType: "QuantizeLinear", reason: "needs a DequantizeLinear")
        var read = QDQModel(input: [4])
        read.float("s", [], [0.5])
        read.node("QuantizeLinear", ["x", "s"], ["q"], name: "the_q")
        read.node("Relu", ["q"], ["y"], name: "relu")
        expectRefusal(read, node: "relu", opType: "Relu", reason: "the integer output of QuantizeLinear 'the_q'")
        var output = QDQModel(input: [4])
        output.float("s", [], [0.5])
        output.node("QuantizeLinear", ["x", "s"], ["y"], name: "the_q")
        expectRefusal(output, node: "the_q", opType: "QuantizeLinear", reason: "graph output")
    }

    @Test func dequantizeLinearOfAComputedValueIsRefused() {
        var m = QDQModel(input: [4])
        m.float("s", [], [0.5])
        m.node("Relu", ["x"], ["r"], name: "relu")
        m.node("DequantizeLinear", ["r", "s"], ["y"], name: "the_dq")
        expectRefusal(m, node: "the_dq", opType: "DequantizeLinear", reason: "no QuantizeLinear produces")
    }

    @Test func mismatchedPairsAndUnsupportedTypesAreRefused() {
        expectRefusal(Self.pair(dequantizeScale: 0.25), node: "the_dq", opType: "DequantizeLinear",
                      reason: "differ from those of QuantizeLinear 'the_q'")
        expectRefusal(Self.pair(zeroPoint: (QDQModel.int32Type, [3])), node: "the_q", opType: "QuantizeLinear",
                      reason: "quantizes to int32")
        expectRefusal(Self.pair(zeroPoint: (QDQModel.int16Type, [3])), node: "the_q", opType: "QuantizeLinear",
                      reason: "zero point of element type int16")
        expectRefusal(Self.pair(["block_size": 2]), node: "the_q", opType: "QuantizeLinear", reason: "block_size")
        expectRefusal(Self.pair(["output_dtype": 4]), node: "the_q", opType: "QuantizeLinear", reason: "output_dtype 4")
        // Per-axis quantization of an activation.
        var perAxis = QDQModel(input: [2])
        perAxis.float("s", [2], [0.5, 0.25])
        perAxis.node("QuantizeLinear", ["x", "s"], ["q"], name: "the_q", ints: ["axis": 1])
        perAxis.node("DequantizeLinear", ["q", "s"], ["y"], name: "the_dq", ints: ["axis": 1])
        expectRefusal(perAxis, node: "the_q", opType: "QuantizeLinear", reason: "per-axis")
        // A weight of int16, and an int32 bias with a non-zero zero point.
        var int16 = QDQModel(input: [2])
        int16.integer("wq", QDQModel.int16Type, [2, 2], [1, 2, 3, 4])
        int16.float("ws", [], [0.5])
        int16.node("DequantizeLinear", ["wq", "ws"], ["w"], name: "the_dq")
        int16.node("Gemm", ["x", "w"], ["y"], name: "fc", ints: ["transB": 1])
        expectRefusal(int16, node: "the_dq", opType: "DequantizeLinear", reason: "element type int16")
        var bias = QDQModel(input: [2])
        bias.int32("bq", [2], [1, 2])
        bias.float("bs", [], [0.5])
        bias.int32("bz", [], [1])
        bias.node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], name: "the_dq")
        bias.node("Add", ["x", "b"], ["y"], name: "add")
        expectRefusal(bias, node: "the_dq", opType: "DequantizeLinear", reason: "non-zero zero point")
        // Per-axis scales along an axis of another length.
        var axis = QDQModel(input: [2])
        axis.int8("wq", [2, 3], [1, 2, 3, 4, 5, 6])
        axis.float("ws", [2], [0.5, 1])
        axis.node("DequantizeLinear", ["wq", "ws"], ["w"], name: "the_dq", ints: ["axis": 1])
        axis.node("MatMul", ["x", "w"], ["y"], name: "mm")
        expectRefusal(axis, node: "the_dq", opType: "DequantizeLinear", reason: "2 scales along axis 1")
    }

    @Test func opset10ReadsPerTensorParametersAndRefusesPerAxisScales() throws {
        var m = Self.pair()
        m.opset = 10
        let model = try m.imported()
        #expect(model.graph.nodes.first?.op == .quantizeDequantize(ActivationQuantization(scale: 0.5, zeroPoint: 3, signed: false)))
        var perAxis = QDQModel(input: [2])
        perAxis.opset = 10
        perAxis.int8("wq", [2, 2], [1, 2, 3, 4])
        perAxis.float("ws", [2], [0.5, 1])
        perAxis.node("DequantizeLinear", ["wq", "ws"], ["w"], name: "the_dq")
        perAxis.node("MatMul", ["x", "w"], ["y"], name: "mm")
        expectRefusal(perAxis, node: "the_dq", opType: "DequantizeLinear", reason: "opset 13")
    }
}

/// A small ONNX model written in protobuf wire format: one float input `x`
/// of shape [N] + `input`, initializers, nodes, float outputs.
struct QDQModel {
    enum Ints: ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
        case one(Int64), many([Int64])
        init(integerLiteral value: Int64) { self = .one(value) }
        init(arrayLiteral elements: Int64...) { self = .many(elements) }
    }

    static let floatType: Int32 = 1, uint8Type: Int32 = 2, int8Type: Int32 = 3, int16Type: Int32 = 5, int32Type: Int32 = 6

    var input: [Int]
    var opset = 13
    var outputs = ["y"]
    private var initializers: [[UInt8]] = []
    private var nodes: [[UInt8]] = []

    init(input: [Int]) { self.input = input }

    mutating func float(_ name: String, _ shape: [Int], _ values: [Float]) {
        tensor(name, Self.floatType, shape, values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
    }
    mutating func int8(_ name: String, _ shape: [Int], _ values: [Int8]) {
        tensor(name, Self.int8Type, shape, values.map { UInt8(bitPattern: $0) })
    }
    mutating func uint8(_ name: String, _ shape: [Int], _ values: [UInt8]) { tensor(name, Self.uint8Type, shape, values) }
    mutating func int32(_ name: String, _ shape: [Int], _ values: [Int32]) {
        integer(name, Self.int32Type, shape, values.map(Int64.init))
    }
    /// An integer tensor of ONNX element `type` (int8, uint8, int16 or int32) in raw_data.
    mutating func integer(_ name: String, _ type: Int32, _ shape: [Int], _ values: [Int64]) {
        let bytes: [UInt8] = switch type {
        case Self.int8Type, Self.uint8Type: values.map { UInt8(truncatingIfNeeded: $0) }
        case Self.int16Type: values.flatMap { withUnsafeBytes(of: Int16($0).littleEndian, Array.init) }
        default: values.flatMap { withUnsafeBytes(of: Int32($0).littleEndian, Array.init) }
        }
        tensor(name, type, shape, bytes)
    }

    private mutating func tensor(_ name: String, _ type: Int32, _ shape: [Int], _ raw: [UInt8]) {
        var t = Wire()
        for d in shape { t.varint(1, UInt64(d)) }
        t.varint(2, UInt64(type))
        t.string(8, name)
        t.bytes(9, raw)
        initializers.append(t.out)
    }

    mutating func node(_ opType: String, _ inputs: [String], _ outputs: [String], name: String, ints: [String: Ints] = [:]) {
        var n = Wire()
        for i in inputs { n.string(1, i) }
        for o in outputs { n.string(2, o) }
        n.string(3, name)
        n.string(4, opType)
        for (key, value) in ints.sorted(by: { $0.key < $1.key }) {
            var a = Wire()
            a.string(1, key)
            switch value {
            case .one(let v): a.varint(3, UInt64(bitPattern: v)); a.varint(20, 2)
            case .many(let vs): for v in vs { a.varint(8, UInt64(bitPattern: v)) }; a.varint(20, 7)
            }
            n.bytes(5, a.out)
        }
        nodes.append(n.out)
    }

    func valueInfo(_ name: String, _ dims: [Int]?) -> [UInt8] {
        var shape = Wire()
        var batch = Wire()
        batch.string(2, "N")
        shape.bytes(1, batch.out)
        for d in dims ?? [] {
            var dim = Wire()
            dim.varint(1, UInt64(d))
            shape.bytes(1, dim.out)
        }
        var tensorType = Wire()
        tensorType.varint(1, UInt64(Self.floatType))
        if dims != nil { tensorType.bytes(2, shape.out) }
        var type = Wire()
        type.bytes(1, tensorType.out)
        var info = Wire()
        info.string(1, name)
        info.bytes(2, type.out)
        return info.out
    }

    var bytes: [UInt8] {
        var g = Wire()
        for n in nodes { g.bytes(1, n) }
        g.string(2, "qdq")
        for t in initializers { g.bytes(5, t) }
        g.bytes(11, valueInfo("x", input))
        for o in outputs { g.bytes(12, valueInfo(o, nil)) }
        var opsetId = Wire()
        opsetId.string(1, "")
        opsetId.varint(2, UInt64(opset))
        var m = Wire()
        m.varint(1, 8)
        m.bytes(8, opsetId.out)
        m.bytes(7, g.out)
        return m.out
    }

    func imported() throws -> Model { try ONNXImporter.decode(bytes) }

    /// Protobuf wire format: varint and length-delimited fields.
    struct Wire {
        var out: [UInt8] = []
        mutating func raw(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        mutating func varint(_ field: Int, _ v: UInt64) { raw(UInt64(field << 3)); raw(v) }
        mutating func bytes(_ field: Int, _ b: [UInt8]) { raw(UInt64(field << 3 | 2)); raw(UInt64(b.count)); out += b }
        mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
    }
}
