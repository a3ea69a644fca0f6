// Depthwise convolution over plain NCHW planes, one channel at a time, for
// training (forward, data gradient, weight gradient): the plane is copied into
// a zero-padded scratch whose rows are wide enough for whole vectors, so every
// output row is a loop over 8-pixel vectors with all taps summed in a
// register, with no per-tap edge arithmetic. Stride 1 and 2 read the scratch
// with whole loads (stride 2 as the even lanes of two loads); other strides
// gather. Dilation is 1.
//
// This target is compiled with AVX2 and FMA: callers check `cpuSupportsBlockedKernels`.

/// The geometry of one depthwise plane and of its padded scratch copy.
public struct DepthwisePlaneShape: Sendable {
    public let height: Int, width: Int
    public let kernelHeight: Int, kernelWidth: Int
    public let strideHeight: Int, strideWidth: Int
    /// Padding above and left of the input (the scratch copy's offsets).
    public let top: Int, left: Int
    public let outputHeight: Int, outputWidth: Int
    /// Rows of the padded scratch plane.
    public let paddedHeight: Int
    /// Floats per row of the padded scratch plane: every vector an output row
    /// reads (rounded up to whole vectors of output) lies inside it.
    public let paddedWidth: Int

    public init(height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                top: Int, left: Int, outputHeight: Int, outputWidth: Int) {
        (self.height, self.width, self.kernelHeight, self.kernelWidth) = (height, width, kernelHeight, kernelWidth)
        (self.strideHeight, self.strideWidth, self.top, self.left) = (strideHeight, strideWidth, top, left)
        (self.outputHeight, self.outputWidth) = (outputHeight, outputWidth)
        paddedHeight = max(top &+ height, (outputHeight &- 1) &* strideHeight &+ kernelHeight)
        // The last vector of a row starts at output column roundedWidth - 8; a stride-2
        // vector reads 16 floats from its first tap.
        let lastRead = (Self.roundedUp(outputWidth) &- 8) &* strideWidth &+ kernelWidth &- 1 &+ 8 &* strideWidth
        paddedWidth = Self.roundedUp(max(left &+ width, lastRead &+ 1))
    }

    /// Floats of the padded scratch plane.
    public var paddedCount: Int { paddedHeight &* paddedWidth }
    /// Output columns rounded up to whole vectors.
    public var roundedOutputWidth: Int { Self.roundedUp(outputWidth) }

    static func roundedUp(_ n: Int) -> Int { (n &+ 7) / 8 &* 8 }
}

/// Copies one plane into the zeroed scratch `padded` (`paddedHeight x
/// paddedWidth`) at row `top`, column `left`. With spreads of 1, `x` is
/// `height x width`; a spread of `k` puts `k - 1` zero rows (columns) between
/// the rows (columns) of a smaller `x`, `((height - 1) / k + 1) x ((width - 1) / k + 1)`:
/// a strided conv's output gradient spread out so its data gradient is a stride-1 correlation.
public func padDepthwisePlane(_ x: UnsafePointer<Float>, _ s: DepthwisePlaneShape, spreadHeight: Int = 1,
                              spreadWidth: Int = 1, _ padded: UnsafeMutablePointer<Float>) {
    padded.update(repeating: 0, count: s.paddedCount)
    let (rows, columns) = ((s.height &- 1) / spreadHeight &+ 1, (s.width &- 1) / spreadWidth &+ 1)
    for row in 0..<rows {
        let dst = padded + ((row &* spreadHeight &+ s.top) &* s.paddedWidth &+ s.left)
        let src = x + row &* columns
        if spreadWidth == 1 {
            dst.update(from: src, count: columns)
        } else {
            for i in 0..<columns { dst[i &* spreadWidth] = src[i] }
        }
    }
}

/// Writes (or adds) the first `live` lanes of `v` at `out`.
@inline(__always)
private func storeOutputs(_ v: SIMD8<Float>, _ out: UnsafeMutablePointer<Float>, live: Int, accumulates: Bool) {
    if live == 8 {
        store8(accumulates ? load8(out) + v : v, out)
    } else {
        for i in 0..<live { out[i] = accumulates ? out[i] + v[i] : v[i] }
    }
}

/// Eight floats `p[0], p[step], ..., p[7 step]`.
@inline(__always)
private func loadStrided(_ p: UnsafePointer<Float>, _ step: Int) -> SIMD8<Float> {
    switch step {
    case 1: return load8(p)
    case 2: return SIMD8(lowHalf: load8(p).evenHalf, highHalf: load8(p + 8).evenHalf)
    default:
        return SIMD8(p[0], p[step], p[2 &* step], p[3 &* step], p[4 &* step], p[5 &* step], p[6 &* step], p[7 &* step])
    }
}

/// One plane's depthwise correlation: `y[oy][ox] (+)= Σ w[ky][kx] ·
/// padded[oy·sh + ky][ox·sw + kx]` over the taps in order, from the padded
/// scratch of `padDepthwisePlane`. `flipped` reads the filter rotated by 180
/// degrees (the data gradient's filter); `accumulates` adds into `y` instead of writing it.
public func depthwisePlaneCorrelate(_ padded: UnsafePointer<Float>, _ s: DepthwisePlaneShape,
                                    filter w: UnsafePointer<Float>, flipped: Bool, accumulates: Bool,
                                    _ y: UnsafeMutablePointer<Float>) {
    if s.kernelHeight == 3 && s.kernelWidth == 3 {
        switch s.strideWidth {
        case 1: return correlate3x3(padded, s, filter: w, flipped: flipped, accumulates: accumulates, y, strideWidth: 1)
        case 2: return correlate3x3(padded, s, filter: w, flipped: flipped, accumulates: accumulates, y, strideWidth: 2)
        default: break
        }
    }
    let (kh, kw, taps) = (s.kernelHeight, s.kernelWidth, s.kernelHeight &* s.kernelWidth)
    let (sh, sw, stride) = (s.strideHeight, s.strideWidth, s.paddedWidth)
    for oy in 0..<s.outputHeight {
        let rowStart = padded + oy &* sh &* stride
        let out = y + oy &* s.outputWidth
        var ox = 0
        while ox < s.outputWidth {
            let start = rowStart + ox &* sw
            var acc = SIMD8<Float>()
            for ky in 0..<kh {
                let row = start + ky &* stride
                for kx in 0..<kw {
                    let tap = ky &* kw &+ kx
                    let weight = w[flipped ? taps &- 1 &- tap : tap]
                    acc = acc.addingProduct(SIMD8(repeating: weight), loadStrided(row + kx, sw))
                }
            }
            storeOutputs(acc, out + ox, live: min(8, s.outputWidth &- ox), accumulates: accumulates)
            ox &+= 8
        }
    }
}

/// `depthwisePlaneCorrelate` for 3x3 filters: the nine weights stay in
/// registers for the whole plane, the taps are unrolled (same order, same sums).
@inline(__always)
private func correlate3x3(_ padded: UnsafePointer<Float>, _ s: DepthwisePlaneShape, filter w: UnsafePointer<Float>,
                          flipped: Bool, accumulates: Bool, _ y: UnsafeMutablePointer<Float>, strideWidth sw: Int) {
    @inline(__always) func weight(_ tap: Int) -> SIMD8<Float> { SIMD8(repeating: w[flipped ? 8 &- tap : tap]) }
    let (w0, w1, w2, w3, w4, w5, w6, w7, w8) = (weight(0), weight(1), weight(2), weight(3), weight(4), weight(5),
                                                weight(6), weight(7), weight(8))
    let (sh, stride) = (s.strideHeight, s.paddedWidth)
    for oy in 0..<s.outputHeight {
        let r0 = padded + oy &* sh &* stride
        let (r1, r2) = (r0 + stride, r0 + 2 &* stride)
        let out = y + oy &* s.outputWidth
        var ox = 0
        while ox < s.outputWidth {
            let c = ox &* sw
            var acc = w0 * loadStrided(r0 + c, sw)
            acc = acc.addingProduct(w1, loadStrided(r0 + (c &+ 1), sw))
            acc = acc.addingProduct(w2, loadStrided(r0 + (c &+ 2), sw))
            acc = acc.addingProduct(w3, loadStrided(r1 + c, sw))
            acc = acc.addingProduct(w4, loadStrided(r1 + (c &+ 1), sw))
            acc = acc.addingProduct(w5, loadStrided(r1 + (c &+ 2), sw))
            acc = acc.addingProduct(w6, loadStrided(r2 + c, sw))
            acc = acc.addingProduct(w7, loadStrided(r2 + (c &+ 1), sw))
            acc = acc.addingProduct(w8, loadStrided(r2 + (c &+ 2), sw))
            storeOutputs(acc, out + ox, live: min(8, s.outputWidth &- ox), accumulates: accumulates)
            ox &+= 8
        }
    }
}

/// Copies one output-gradient plane `dY` (`outputHeight x outputWidth`) into
/// `rows` with rows of `roundedOutputWidth` floats, zeros in the extra columns.
public func padDepthwiseGradientRows(_ dY: UnsafePointer<Float>, _ s: DepthwisePlaneShape,
                                     _ rows: UnsafeMutablePointer<Float>) {
    let rounded = s.roundedOutputWidth
    for oy in 0..<s.outputHeight {
        let dst = rows + oy &* rounded
        dst.update(from: dY + oy &* s.outputWidth, count: s.outputWidth)
        (dst + s.outputWidth).update(repeating: 0, count: rounded &- s.outputWidth)
    }
}

/// One plane's filter gradient: `dW[ky][kx] += Σ dY[oy][ox] · padded[oy·sh + ky][ox·sw + kx]`,
/// from the padded input scratch and the output gradient as `padDepthwiseGradientRows` lays it out
/// (the zero columns cancel the reads past the output's last column). Each tap sums its
/// eight lanes over the plane, then the lanes.
public func depthwisePlaneFilterGradient(_ padded: UnsafePointer<Float>, _ s: DepthwisePlaneShape,
                                         outputGradientRows dY: UnsafePointer<Float>, _ dW: UnsafeMutablePointer<Float>) {
    let (kw, sh, sw, stride) = (s.kernelWidth, s.strideHeight, s.strideWidth, s.paddedWidth)
    let rounded = s.roundedOutputWidth
    for ky in 0..<s.kernelHeight {
        for kx in 0..<kw {
            var acc = SIMD8<Float>()
            for oy in 0..<s.outputHeight {
                let g = dY + oy &* rounded
                let row = padded + ((oy &* sh &+ ky) &* stride &+ kx)
                var ox = 0
                while ox < rounded {
                    acc = acc.addingProduct(load8(g + ox), loadStrided(row + ox &* sw, sw))
                    ox &+= 8
                }
            }
            dW[ky &* kw &+ kx] += acc.sum()
        }
    }
}
