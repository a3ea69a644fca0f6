/// QuantizeLinear and DequantizeLinear: QDQ ONNX models imported as int8 models.
///
/// - DequantizeLinear of a constant int8 or uint8 tensor folds to the float32
///   values `float(q - zero_point) * scale` (`QuantizationGrid.dequantize`);
///   when that constant is the weight of a Conv, Gemm or MatMul, the IR weight
///   gets an `.int8` precision record (``int8WeightGrid(_:)``), so the model
///   file stores the integers again.
/// - DequantizeLinear of a constant int32 tensor (a bias on its
///   `input scale x weight scale` grid) folds to float32; no record.
/// - QuantizeLinear of a constant folds to its integers, which only a
///   DequantizeLinear may read (weights stored as float and quantized in the graph).
/// - QuantizeLinear of a computed value waits for its DequantizeLinear(s):
///   with the same scale and zero point they become one `quantizeDequantize`
///   node, or nothing when the value already lies on that grid
///   (`Graph.activationGrid(of:)`: after a max pool, flatten or reshape of a
///   quantized value), so importing our own export gives back our graph.
///
/// Everything else is refused by node: a QuantizeLinear read by anything but
/// a DequantizeLinear, a DequantizeLinear of a computed value no
/// QuantizeLinear produced, a pair whose scales or zero points differ,
/// per-axis activation quantization, element types other than int8 and uint8
/// (and int32 for a constant DequantizeLinear), blocked quantization.
extension ImportContext {
    /// `QuantizeLinear`: a constant folds to integers; a computed value is
    /// held until a DequantizeLinear reads it.
    mutating func convertQuantizeLinear(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let input = try value(n.inputs[0])
        let dataShape: [Int]
        switch input {
        case .constant(let c): dataShape = c.shape
        default: dataShape = try dynamic(n.inputs[0]).shape
        }
        let declared = try n.int("output_dtype", default: 0)
        let p = try quantizationParameters(n, dataShape: dataShape, impliedType: declared == 0 ? nil : declared)
        guard p.type == .int8 || p.type == .uint8 else {
            throw UnsupportedFeature("quantizes to \(p.type) (only int8 and uint8 are supported)")
        }
        if declared != 0, declared != Int(p.type.rawValue) {
            throw UnsupportedFeature("output_dtype \(declared) differs from its zero point's element type \(p.type)")
        }
        if case .constant(let c) = input {
            guard case .float32(let values) = c.tensor.storage, c.tags == nil else {
                throw UnsupportedFeature("quantizes a constant of element type \(c.tensor.dtype) (only float32)")
            }
            let q = p.grid.quantize(values, shape: c.shape)
            let storage: TensorStorage = p.type == .int8
                ? .int8(q.map { Int8(truncatingIfNeeded: $0) }) : .uint8(q.map { UInt8(truncatingIfNeeded: $0) })
            quantized[n.outputs[0]] = .integers(try! Tensor(shape: c.shape, storage: storage), p.type, node: current)
            return
        }
        let source = try dynamic(n.inputs[0])
        guard p.grid.axis == nil else {
            throw UnsupportedFeature("per-axis quantization of a computed value (activations are quantized per tensor)")
        }
        guard readers[n.outputs[0], default: 0] > 0 else {
            throw UnsupportedFeature("its output is not read: a QuantizeLinear needs a DequantizeLinear")
        }
        let q = ActivationQuantization(scale: p.grid.scales[0], zeroPoint: p.grid.zeroPoints[0], signed: p.type == .int8)
        if let problem = q.problem { throw UnsupportedFeature("invalid quantizer: \(problem)") }
        quantized[n.outputs[0]] = .activation(PendingQuantize(source: source, quantization: q, node: current))
    }

    /// `DequantizeLinear`: of a constant, the dequantized float32 constant
    /// (remembering an int8 grid for a weight); of a QuantizeLinear's output,
    /// one `quantizeDequantize` node.
    mutating func convertDequantizeLinear(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let outputType = try n.int("output_dtype", default: 0)
        guard outputType == 0 || outputType == 1 else {
            throw UnsupportedFeature("output_dtype \(outputType) (only float32 outputs are supported)")
        }
        let integers: Tensor, type: ONNXTensorDecoder.ElementType
        switch quantized[n.inputs[0]] {
        case .activation(let pending)?:
            try dequantizeActivation(n, pending)
            return
        case .integers(let t, let ty, _)?:
            (integers, type) = (t, ty)
        case nil:
            guard case .constant(let c) = try value(n.inputs[0]) else {
                throw UnsupportedFeature("dequantizes the computed value '\(n.inputs[0])', which no QuantizeLinear produces")
            }
            let ty = elementType(of: n.inputs[0], c.tensor)
            guard c.tags == nil, [.int8, .uint8, .int32].contains(ty) else {
                throw UnsupportedFeature("dequantizes '\(n.inputs[0])' of element type \(ty) "
                                         + "(only int8, uint8 and int32 constants)")
            }
            (integers, type) = (c.tensor, ty)
        }
        let p = try quantizationParameters(n, dataShape: integers.shape, impliedType: Int(type.rawValue))
        guard p.type == type else {
            throw UnsupportedFeature("its zero point is \(p.type) but '\(n.inputs[0])' is \(type)")
        }
        guard type != .int32 || p.grid.zeroPoints.allSatisfy({ $0 == 0 }) else {
            throw UnsupportedFeature("an int32 DequantizeLinear with a non-zero zero point (ONNX requires 0)")
        }
        let q = integers.int32s
        define(n.outputs[0], .constant(FoldedConstant(Tensor(shape: integers.shape, floats: p.grid.dequantize(q, shape: integers.shape)))))
        if type != .int32 { weightGrids[n.outputs[0]] = Self.int8WeightGrid(p.grid, integers: q, unsigned: type == .uint8) }
    }

    /// A DequantizeLinear of a QuantizeLinear's output: checks the two agree,
    /// then emits the quantizer once (every DequantizeLinear of the same
    /// QuantizeLinear, or of another QuantizeLinear of the same value and
    /// grid, reads it), or nothing when the value is already on its grid.
    private mutating func dequantizeActivation(_ n: ONNXNodeProto, _ pending: PendingQuantize) throws(UnsupportedFeature) {
        let p = try quantizationParameters(n, dataShape: pending.source.shape,
                                           impliedType: pending.quantization.signed ? 3 : 2)
        let q = ActivationQuantization(scale: p.grid.scales.first ?? 0, zeroPoint: p.grid.zeroPoints.first ?? 0,
                                       signed: p.type == .int8)
        guard p.grid.axis == nil, [.int8, .uint8].contains(p.type),
              q.scale.bitPattern == pending.quantization.scale.bitPattern,
              q.zeroPoint == pending.quantization.zeroPoint, q.signed == pending.quantization.signed else {
            throw UnsupportedFeature("its scale and zero point (\(p.summary)) differ from those of QuantizeLinear "
                                     + "'\(pending.node)' (\(pending.quantization.scale), \(pending.quantization.zeroPoint) "
                                     + "\(pending.quantization.signed ? "int8" : "uint8"))")
        }
        if let done = pending.dequantized {
            define(n.outputs[0], .dynamic(done))
            return
        }
        let out: DynamicValue
        if Graph(inputs: [], outputs: [], nodes: nodes, initializers: [:]).activationGrid(of: pending.source.name) == q {
            out = pending.source
        } else if let twin = nodes.first(where: { $0.op == .quantizeDequantize(q) && $0.inputs == [pending.source.name] }) {
            // Another QuantizeLinear of the same value with the same parameters (onnxruntime's dedicated pairs).
            out = DynamicValue(name: twin.output, shape: pending.source.shape, altShape: pending.source.altShape)
        } else {
            out = try emit(.quantizeDequantize(q), [pending.source], output: n.outputs[0])
        }
        var done = pending
        done.dequantized = out
        quantized[n.inputs[0]] = .activation(done)
        define(n.outputs[0], .dynamic(out))
    }

    /// The ONNX element type of the constant `name`: as its initializer
    /// declared it (the decoder widens int16, int32 and uint16 to int64),
    /// else from its storage.
    private func elementType(of name: String, _ t: Tensor) -> ONNXTensorDecoder.ElementType {
        if let declared = initializerTypes[name] { return declared }
        return switch t.storage {
        case .float32: .float
        case .float16: .float16
        case .int8: .int8
        case .uint8: .uint8
        case .int64: .int64
        }
    }

    /// Scale, zero point and axis of a QuantizeLinear or DequantizeLinear as a
    /// grid over `dataShape`, and the zero point's element type (`impliedType`,
    /// else uint8, when there is none).
    private func quantizationParameters(_ n: ONNXNodeProto, dataShape: [Int],
                                        impliedType: Int?) throws(UnsupportedFeature) -> QuantizationParameters {
        try n.onlyAttributes(["axis", "block_size", "output_dtype", "saturate"])
        guard try n.int("block_size", default: 0) == 0 else { throw UnsupportedFeature("blocked quantization (block_size) is not supported") }
        let scale = try constant(n.inputs[1], "the scale")
        guard case .float32(let scales) = scale.tensor.storage, !scales.isEmpty else {
            throw UnsupportedFeature("scale of element type \(scale.tensor.dtype) (only float32 scales are supported)")
        }
        var axis: Int? = nil
        if scales.count > 1 {
            guard opset >= 13 else { throw UnsupportedFeature("per-axis scales need opset 13 (this model is opset \(opset))") }
            guard scale.shape.count == 1 else { throw UnsupportedFeature("scale of shape \(scale.shape) (a scalar or a 1-D per-axis tensor)") }
            let raw = try n.int("axis", default: 1), rank = dataShape.count
            let a = raw < 0 ? raw + rank : raw
            guard a >= 0, a < rank, dataShape[a] == scales.count else {
                throw UnsupportedFeature("\(scales.count) scales along axis \(raw) of a value of shape \(dataShape)")
            }
            axis = a
        }
        var zeroPoints = [Int32](repeating: 0, count: scales.count)
        var type: ONNXTensorDecoder.ElementType = .uint8
        if let implied = impliedType {
            guard let t = ONNXTensorDecoder.ElementType(rawValue: Int32(implied)) else {
                throw UnsupportedFeature("element type \(implied) is not supported (only int8 and uint8, and int32 for a constant)")
            }
            type = t
        }
        if let name = n.input(2) {
            let zp = try constant(name, "the zero point")
            guard zp.tensor.count == scales.count, scales.count == 1 || zp.shape == scale.shape else {
                throw UnsupportedFeature("zero point of shape \(zp.shape) for scale of shape \(scale.shape)")
            }
            type = elementType(of: name, zp.tensor)
            guard [.int8, .uint8, .int32].contains(type) else {
                throw UnsupportedFeature("zero point of element type \(type) (only int8 and uint8, and int32 for a constant)")
            }
            zeroPoints = zp.tensor.int32s
        }
        let range: ClosedRange<Int32> = switch type {
        case .int8: QuantizationGrid.int8Range
        case .uint8: QuantizationGrid.uint8Range
        default: QuantizationGrid.int32BiasRange
        }
        return QuantizationParameters(grid: QuantizationGrid(axis: axis, scales: scales, zeroPoints: zeroPoints,
                                                             qmin: range.lowerBound, qmax: range.upperBound, storageRange: range),
                                      type: type)
    }

    /// The `.int8` record of a weight dequantized from `integers` on `grid`.
    /// uint8 weights move to int8 with their zero points (`q - 128` and
    /// `zero_point - 128` dequantize to the same values). The integer range is
    /// the one that reproduces the stored integers: -127...127 when every
    /// zero point is 0 and no integer is -128 (onnxruntime's symmetric
    /// weights), -64...64 when moreover the largest magnitude is 64 (its
    /// `reduce_range`), else -128...127.
    static func int8WeightGrid(_ grid: QuantizationGrid, integers: [Int32], unsigned: Bool) -> QuantizationGrid {
        var g = grid
        g.storageRange = QuantizationGrid.int8Range
        if unsigned {
            g.zeroPoints = grid.zeroPoints.map { $0 - 128 }
            (g.qmin, g.qmax) = (-128, 127)
            return g
        }
        let magnitude = integers.lazy.map { abs(Int($0)) }.max() ?? 0
        if grid.zeroPoints.allSatisfy({ $0 == 0 }) && !integers.contains(-128) {
            (g.qmin, g.qmax) = magnitude == 64 ? (-64, 64) : (-127, 127)
        } else {
            (g.qmin, g.qmax) = (-128, 127)
        }
        return g
    }

    /// Records the int8 grid of `onnxName` (a DequantizeLinear's output) as
    /// the precision of the IR weight `irName`; `transposed` when the importer
    /// transposed the 2-D weight (Gemm with transB=0, MatMul).
    mutating func recordWeightPrecision(of onnxName: String, as irName: String, transposed: Bool = false) {
        guard var grid = weightGrids[onnxName] else { return }
        if transposed, let axis = grid.axis { grid.axis = 1 - axis }
        precisions[irName] = .int8(grid)
    }
}

/// A QuantizeLinear's output, which only a DequantizeLinear may read.
enum QuantizedValue {
    /// A computed value quantized per tensor, waiting for its DequantizeLinear(s).
    case activation(PendingQuantize)
    /// A constant quantized at import time: its integers and their element type.
    case integers(Tensor, ONNXTensorDecoder.ElementType, node: String)

    /// The QuantizeLinear node that wrote it.
    var node: String {
        switch self {
        case .activation(let p): p.node
        case .integers(_, _, let node): node
        }
    }
}

/// A QuantizeLinear of a computed value: what it quantizes and how, and the
/// IR value its DequantizeLinear(s) read once the first one is converted.
struct PendingQuantize {
    var source: DynamicValue
    var quantization: ActivationQuantization
    var node: String
    var dequantized: DynamicValue? = nil
}

/// A QuantizeLinear's or DequantizeLinear's scales and zero points as a grid
/// over its data, and the zero point's element type.
struct QuantizationParameters {
    var grid: QuantizationGrid
    var type: ONNXTensorDecoder.ElementType

    /// "0.5, 3 uint8" or "4 scales, 4 zero points int8", for messages.
    var summary: String {
        let scales = grid.scales.count == 1 ? "\(grid.scales[0])" : "\(grid.scales.count) scales"
        let zeroPoints = grid.zeroPoints.count == 1 ? "\(grid.zeroPoints[0])" : "\(grid.zeroPoints.count) zero points"
        return "\(scales), \(zeroPoints) \(type)"
    }
}

extension Tensor {
    /// The elements of an integer tensor as Int32 (int64 truncated: the
    /// importer stores ONNX int32 as int64).
    var int32s: [Int32] {
        switch storage {
        case .int8(let v): v.map(Int32.init)
        case .uint8(let v): v.map(Int32.init)
        case .int64(let v): v.map { Int32(truncatingIfNeeded: $0) }
        case .float32, .float16: floats.map { Int32(exactly: $0.rounded()) ?? 0 }
        }
    }
}
