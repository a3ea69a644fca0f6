/// Per-tensor quantization of an activation, as the `quantizeDequantize` op
/// applies it: ONNX QuantizeLinear to uint8 (or int8) followed by
/// DequantizeLinear, so the value flowing on holds exactly what an integer
/// runtime would hold (`QuantizationGrid.fakeQuantize`).
public struct ActivationQuantization: Sendable, Hashable {
    public var scale: Float
    public var zeroPoint: Int32
    /// int8 storage (-128...127) instead of uint8 (0...255).
    public var signed: Bool

    public init(scale: Float, zeroPoint: Int32, signed: Bool) {
        self.scale = scale; self.zeroPoint = zeroPoint; self.signed = signed
    }

    /// The range the integers saturate to.
    public var range: ClosedRange<Int32> { signed ? QuantizationGrid.int8Range : QuantizationGrid.uint8Range }

    /// Why these attributes are not a valid quantizer (nil when they are).
    public var problem: String? {
        guard scale.isFinite, scale > 0 else { return "scale \(scale) is not positive and finite" }
        guard range.contains(zeroPoint) else { return "zero point \(zeroPoint) is outside \(range)" }
        return nil
    }

    /// `x` quantized and dequantized.
    @inlinable
    public func apply(_ x: Float) -> Float {
        QuantizationGrid.fakeQuantize(x, scale: scale, zeroPoint: zeroPoint, range: range)
    }

    /// `count` values of `x` quantized and dequantized into `y` (which may be `x`).
    public func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let (s, z, lo, hi) = (scale, Float(zeroPoint), Float(range.lowerBound), Float(range.upperBound))
        for i in 0..<count {
            let q = (x[i] / s).rounded(.toNearestOrEven) + z
            // NaN compares false both ways and becomes the zero point, as in `QuantizationGrid.quantize`.
            let clamped = q >= lo ? (q <= hi ? q : hi) : (q < lo ? lo : z)
            y[i] = (clamped - z) * s
        }
    }

    /// Whether a value `x` lies where the quantizer passes gradients
    /// (straight-through estimator): inside the representable range.
    @inlinable
    public func passesGradient(_ x: Float) -> Bool {
        let q = (x / scale).rounded(.toNearestOrEven) + Float(zeroPoint)
        return q >= Float(range.lowerBound) && q <= Float(range.upperBound)
    }
}
