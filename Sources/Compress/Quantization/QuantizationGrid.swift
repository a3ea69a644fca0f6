/// A uniform integer grid a tensor is quantized on, with ONNX's
/// QuantizeLinear / DequantizeLinear semantics (and onnxruntime's, which
/// computes them in float32):
///
///     q = saturate(round_half_to_even(x / scale) + zero_point)
///     x' = float(q - zero_point) * scale
///
/// `saturate` clamps to the storage type's range (``storageRange``); the
/// quantizer chose the scale so that the calibrated values land in
/// `qmin...qmax`, which may be narrower (symmetric or reduced-range grids).
/// Per-channel grids have one scale and zero point per index of `axis`.
///
/// This is the one place the rounding and saturation are spelled: the
/// quantize pass, the file reader and writer, the runtime's fake
/// quantization and the ONNX export all call it.
public struct QuantizationGrid: Sendable, Equatable {
    /// The dimension the scales run along; nil for one scale.
    public var axis: Int?
    public var scales: [Float]
    public var zeroPoints: [Int32]
    /// The integers the quantizer chose the scales for.
    public var qmin: Int32
    public var qmax: Int32
    /// The range a stored integer saturates to: the storage type's.
    public var storageRange: ClosedRange<Int32>

    public init(axis: Int? = nil, scales: [Float], zeroPoints: [Int32], qmin: Int32, qmax: Int32,
                storageRange: ClosedRange<Int32> = QuantizationGrid.int8Range) {
        self.axis = axis; self.scales = scales; self.zeroPoints = zeroPoints
        self.qmin = qmin; self.qmax = qmax; self.storageRange = storageRange
    }

    public static let int8Range: ClosedRange<Int32> = -128...127
    public static let uint8Range: ClosedRange<Int32> = 0...255

    // MARK: One value

    /// `x` quantized: `x / scale` rounded half to even, plus the zero point,
    /// saturated to `range`. NaN quantizes to the zero point.
    @inlinable
    public static func quantize(_ x: Float, scale: Float, zeroPoint: Int32, range: ClosedRange<Int32>) -> Int32 {
        let scaled = (x / scale).rounded(.toNearestOrEven) + Float(zeroPoint)
        guard !scaled.isNaN else { return zeroPoint }
        return Int32(min(max(scaled, Float(range.lowerBound)), Float(range.upperBound)))
    }

    /// The value `q` stands for: `float(q - zero_point) * scale`.
    @inlinable
    public static func dequantize(_ q: Int32, scale: Float, zeroPoint: Int32) -> Float {
        Float(q - zeroPoint) * scale
    }

    /// `x` quantized and dequantized: what a QuantizeLinear followed by a
    /// DequantizeLinear outputs.
    @inlinable
    public static func fakeQuantize(_ x: Float, scale: Float, zeroPoint: Int32, range: ClosedRange<Int32>) -> Float {
        dequantize(quantize(x, scale: scale, zeroPoint: zeroPoint, range: range), scale: scale, zeroPoint: zeroPoint)
    }

    // MARK: Choosing a grid

    /// Scale and zero point mapping `[lower, upper]` onto `qmin...qmax`,
    /// widened first to contain 0 (so zero is exact, as padding needs), and
    /// for a `symmetric` grid to `[-m, m]` with `m` the larger magnitude and
    /// the zero point the middle of the range. A range of zero width gets
    /// scale 1 and zero point 0 (or the middle, symmetric), so every value
    /// still quantizes to itself's nearest integer.
    public static func scaleAndZeroPoint(lower: Float, upper: Float, qmin: Int32, qmax: Int32,
                                         symmetric: Bool) -> (scale: Float, zeroPoint: Int32) {
        var (lo, hi) = (min(lower, 0), max(upper, 0))
        if symmetric {
            let m = max(abs(lo), abs(hi))
            (lo, hi) = (-m, m)
        }
        let middle = Int32((Float(qmin + qmax) / 2).rounded(.toNearestOrEven))
        let scale = (hi - lo) / Float(qmax - qmin)
        guard scale.isFinite, scale >= Float.leastNormalMagnitude else { return (1, symmetric ? middle : 0) }
        if symmetric { return (scale, middle) }
        let zeroPoint = (Float(qmin) - lo / scale).rounded(.toNearestOrEven)
        return (scale, Int32(min(max(zeroPoint, Float(qmin)), Float(qmax))))
    }

    /// The grid of `values` (a tensor of `shape`): per channel along `axis`,
    /// or one for the whole tensor, each from its channel's minimum and maximum.
    public static func fitted(to values: [Float], shape: [Int], axis: Int?, qmin: Int32, qmax: Int32,
                              symmetric: Bool, storageRange: ClosedRange<Int32> = int8Range) -> QuantizationGrid {
        let (channels, inner) = Self.layout(shape: shape, axis: axis)
        var scales: [Float] = [], zeroPoints: [Int32] = []
        let outer = values.count / max(channels * inner, 1)
        for c in 0..<channels {
            var (lo, hi) = (Float.infinity, -Float.infinity)
            for o in 0..<outer {
                let start = (o * channels + c) * inner
                for v in values[start..<start + inner] where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
            }
            if lo > hi { (lo, hi) = (0, 0) }
            let (s, z) = scaleAndZeroPoint(lower: lo, upper: hi, qmin: qmin, qmax: qmax, symmetric: symmetric)
            scales.append(s)
            zeroPoints.append(z)
        }
        return QuantizationGrid(axis: axis, scales: scales, zeroPoints: zeroPoints, qmin: qmin, qmax: qmax,
                                storageRange: storageRange)
    }

    /// Channels along `axis` and elements per channel run (the product of the
    /// later dimensions); one channel without an axis.
    static func layout(shape: [Int], axis: Int?) -> (channels: Int, inner: Int) {
        guard let axis else { return (1, shape.elementCount) }
        return (shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    // MARK: Whole tensors

    /// Why this grid cannot describe a tensor of `shape` (nil when it can).
    public func problem(shape: [Int]) -> String? {
        let channels: Int
        if let axis {
            guard axis >= 0, axis < shape.count else { return "has axis \(axis), but the tensor has \(shape.count) dimension(s)" }
            channels = shape[axis]
        } else {
            channels = 1
        }
        guard scales.count == channels, zeroPoints.count == channels else {
            return "has \(scales.count) scale(s) and \(zeroPoints.count) zero point(s) for \(channels) channel(s)"
        }
        guard storageRange.contains(qmin), storageRange.contains(qmax), qmin < qmax else {
            return "has the integer range \(qmin)...\(qmax), not an increasing range within \(storageRange)"
        }
        if let bad = scales.first(where: { !($0.isFinite && $0 > 0) }) { return "has the scale \(bad), not positive and finite" }
        if let bad = zeroPoints.first(where: { !(qmin...qmax).contains($0) }) {
            return "has the zero point \(bad), outside \(qmin)...\(qmax)"
        }
        return nil
    }

    /// Calls `body(start, end, scale, zeroPoint)` for every run of elements
    /// of a tensor of `shape` that share one scale and zero point.
    func forEachRun(shape: [Int], _ body: (Int, Int, Float, Int32) -> Void) {
        let (channels, inner) = Self.layout(shape: shape, axis: axis)
        let total = shape.elementCount
        var (start, run) = (0, 0)
        while start < total {
            let c = run % channels
            body(start, min(start &+ inner, total), scales[c], zeroPoints[c])
            start &+= inner
            run &+= 1
        }
    }

    /// Calls `body(index, scale, zeroPoint)` for every element of a tensor of `shape`.
    func forEachElement(shape: [Int], _ body: (Int, Float, Int32) -> Void) {
        forEachRun(shape: shape) { start, end, s, z in
            for j in start..<end { body(j, s, z) }
        }
    }

    /// The integers of `values`, a tensor of `shape` this grid describes.
    public func quantize(_ values: [Float], shape: [Int]) -> [Int32] {
        var q = [Int32](repeating: 0, count: values.count)
        forEachElement(shape: shape) { i, s, z in q[i] = Self.quantize(values[i], scale: s, zeroPoint: z, range: storageRange) }
        return q
    }

    /// The values of the integers `q`, a tensor of `shape` this grid describes.
    public func dequantize(_ q: [Int32], shape: [Int]) -> [Float] {
        var values = [Float](repeating: 0, count: q.count)
        forEachElement(shape: shape) { i, s, z in values[i] = Self.dequantize(q[i], scale: s, zeroPoint: z) }
        return values
    }

    /// `values` quantized and dequantized.
    public func fakeQuantize(_ values: [Float], shape: [Int]) -> [Float] {
        dequantize(quantize(values, shape: shape), shape: shape)
    }

    /// The first of `values` that its integer does not dequantize to bit for
    /// bit (nil when every value is on the grid).
    public func firstValueOffGrid(_ values: [Float], shape: [Int]) -> Float? {
        let back = fakeQuantize(values, shape: shape)
        return zip(values, back).first { $0.bitPattern != $1.bitPattern }?.0
    }
}

extension QuantizationGrid {
    /// The integers an int32 bias saturates to: int32's range, trimmed to
    /// the integers float32 holds exactly at its ends (2^31 - 128), so a
    /// saturated value converts back without overflow.
    public static let int32BiasRange: ClosedRange<Int32> = -2_147_483_520...2_147_483_520
}
