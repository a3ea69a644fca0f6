// Direct convolution over channel-blocked feature maps (NCHW8c), after the
// NCHWc design of onnxruntime's MLAS: 8 channels of one pixel are one
// `SIMD8<Float>`; filters are packed once so the 8 output channels of one
// (input channel, tap) are one vector; an output tile of 6 pixels x 16 output
// channels lives in 12 registers while every input channel and tap is
// accumulated into it (an odd block count starts with a tile of 3 pixels x 24
// channels; a last block of at most 4 real channels packs two pixels into one
// vector, `BlockedHalfTiles.swift`). 1x1 stride-1 convs take the pointwise
// tiles of `BlockedPointwise.swift` instead.
//
// This target is compiled with AVX2 and FMA (see Package.swift): callers must
// check `cpuSupportsBlockedKernels` first.

import CCPUFeatures

/// Whether this CPU can run the kernels of this module (AVX2 and FMA).
public let cpuSupportsBlockedKernels: Bool = compressor_cpu_supports_avx2_fma() != 0

/// Whether this CPU (and its OS) can run AVX-512F and AVX-512VL code, the
/// width-16 kernels' instructions, besides AVX2 and FMA.
public let cpuSupportsAVX512: Bool = compressor_cpu_supports_avx512() != 0

/// Channels per block of the NCHW8c layout.
public let channelBlock = 8

/// The shape of one image's blocked direct convolution.
///
/// The input is already padded: `[inputBlocks][paddedHeight][paddedWidth][channelsPerBlock]`
/// (zeros in the halo and in padded channels). The output is NCHW8c,
/// `[outputBlocks][outputHeight * outputWidth][8]`. Dilation is 1.
public struct BlockedConvShape: Sendable {
    public var inputBlocks: Int
    /// 8, or the channel count when an image has fewer than 8 channels.
    public var channelsPerBlock: Int
    public var paddedHeight: Int, paddedWidth: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideHeight: Int, strideWidth: Int
    public var outputBlocks: Int
    public var outputHeight: Int, outputWidth: Int
    /// Real channels in the last input block (the rest are zero padding the
    /// kernel skips): `channelsPerBlock` when the channel count fills whole blocks.
    public var lastBlockChannels: Int
    /// Real channels in the last output block (1-8; its other lanes are
    /// padding, computed as zero weights and bias).
    public var lastOutputChannels: Int
    /// Rows at the top and at the bottom of the padded image that are zero padding,
    /// whose taps a kernel may skip (the width-16 tiles skip them for tiles inside one
    /// output row). Skipping changes no bit only when every weight is finite and no
    /// accumulator is -0 (`fma(a, 0, w) == a` then; an accumulator that starts from a
    /// bias without -0 is never -0), so a caller sets them only for such filters and
    /// biases; 0 reads every tap.
    public var zeroRowsTop = 0, zeroRowsBottom = 0

    /// - Parameters:
    ///   - lastBlockChannels: nil for `channelsPerBlock`.
    ///   - lastOutputChannels: nil for 8.
    public init(inputBlocks: Int, channelsPerBlock: Int, paddedHeight: Int, paddedWidth: Int,
                kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                outputBlocks: Int, outputHeight: Int, outputWidth: Int, lastBlockChannels: Int? = nil,
                lastOutputChannels: Int? = nil) {
        self.inputBlocks = inputBlocks; self.channelsPerBlock = channelsPerBlock
        self.lastBlockChannels = lastBlockChannels ?? channelsPerBlock
        precondition(self.lastBlockChannels >= 1 && self.lastBlockChannels <= channelsPerBlock)
        self.lastOutputChannels = lastOutputChannels ?? 8
        precondition(self.lastOutputChannels >= 1 && self.lastOutputChannels <= 8)
        self.paddedHeight = paddedHeight; self.paddedWidth = paddedWidth
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight; self.strideWidth = strideWidth
        self.outputBlocks = outputBlocks; self.outputHeight = outputHeight; self.outputWidth = outputWidth
    }

    /// Floats of packed filter per output block.
    public var filterBlockCount: Int { inputBlocks &* kernelHeight &* kernelWidth &* channelsPerBlock &* 8 }
    /// Floats of one padded input image.
    public var paddedInputCount: Int { inputBlocks &* paddedHeight &* paddedWidth &* channelsPerBlock }
}

/// Packs `[O, C, kh, kw]` weights as `[O/L][C/cs][kh][kw][cs][L]` for `L =
/// outputLanes` output channels per vector (8 for `blockedConvolve`, 16 for the
/// width-16 `wideConvolve`), zero where `O` or `C` is padded up to whole blocks.
public func packBlockedFilter(_ weight: UnsafePointer<Float>, outChannels: Int, inChannels: Int,
                              kernelHeight kh: Int, kernelWidth kw: Int, channelsPerBlock cs: Int,
                              outputLanes lanes: Int = 8) -> [Float] {
    let outBlocks = (outChannels + lanes - 1) / lanes, inBlocks = (inChannels + cs - 1) / cs
    var packed = [Float](repeating: 0, count: outBlocks * inBlocks * kh * kw * cs * lanes)
    var i = 0
    for ob in 0..<outBlocks {
        for cb in 0..<inBlocks {
            for ky in 0..<kh {
                for kx in 0..<kw {
                    for ci in 0..<cs {
                        for oi in 0..<lanes {
                            let (o, c) = (ob * lanes + oi, cb * cs + ci)
                            if o < outChannels && c < inChannels {
                                packed[i] = weight[((o * inChannels + c) * kh + ky) * kw + kx]
                            }
                            i += 1
                        }
                    }
                }
            }
        }
    }
    return packed
}

/// The activation applied last in the epilogue: a clamp to `[lower, upper]`
/// (none, ReLU, ReLU6), or, by `form`, a clamp of `scale·x + offset` (hard
/// sigmoid), that times x (hard swish), or GELU.
public struct BlockedClamp: Sendable {
    /// What the epilogue computes from x.
    public enum Form: Sendable {
        /// clamp(x, lower, upper)
        case clamp
        /// clamp(scale·x + offset, lower, upper)
        case affineClamp
        /// x · clamp(scale·x + offset, lower, upper)
        case gatedClamp
        /// x·Φ(x), erfc-based (`gaussianErrorLinearUnit`)
        case gelu
        /// GELU's tanh approximation
        case geluTanh
    }
    public var lower: Float, upper: Float
    public var scale: Float = 1, offset: Float = 0
    public var form: Form = .clamp
    public init(lower: Float, upper: Float) { self.lower = lower; self.upper = upper }
    public init(form: Form, lower: Float = -.infinity, upper: Float = .infinity, scale: Float = 1, offset: Float = 0) {
        self.form = form; self.lower = lower; self.upper = upper; self.scale = scale; self.offset = offset
    }
    public static let none = BlockedClamp(lower: -.infinity, upper: .infinity)
    public static let relu = BlockedClamp(lower: 0, upper: .infinity)
    public static let relu6 = BlockedClamp(lower: 0, upper: 6)
    /// max(0, min(1, alpha·x + beta)) (MobileNetV3, Howard et al. 2019).
    public static func hardSigmoid(alpha: Float, beta: Float) -> BlockedClamp {
        BlockedClamp(form: .affineClamp, lower: 0, upper: 1, scale: alpha, offset: beta)
    }
    /// x · max(0, min(1, x/6 + 1/2)).
    public static let hardSwish = BlockedClamp(form: .gatedClamp, lower: 0, upper: 1, scale: 1.0 / 6, offset: 0.5)
    public static let gelu = BlockedClamp(form: .gelu)
    public static let geluTanh = BlockedClamp(form: .geluTanh)

    /// `v` with every lane clamped to `[lower, upper]`.
    @inline(__always)
    func clamped(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let low = v.replacing(with: lower, where: v .< lower)
        return low.replacing(with: upper, where: low .> upper)
    }

    /// The activation of every lane of `v`. Inline only the clamp (ReLU,
    /// ReLU6), so the tile loops' epilogues stay as small as before the other forms.
    @inline(__always)
    func apply(_ v: SIMD8<Float>) -> SIMD8<Float> {
        form == .clamp ? clamped(v) : applyOtherForm(v)
    }

    @inline(never)
    func applyOtherForm(_ v: SIMD8<Float>) -> SIMD8<Float> {
        switch form {
        case .clamp: clamped(v)
        case .affineClamp: clamped(SIMD8(repeating: offset).addingProduct(v, SIMD8(repeating: scale)))
        case .gatedClamp: v * clamped(SIMD8(repeating: offset).addingProduct(v, SIMD8(repeating: scale)))
        case .gelu: gaussianErrorLinearUnit(v)
        case .geluTanh: gaussianErrorLinearUnitTanh(v)
        }
    }

    /// The activation of one value.
    @inline(__always)
    func apply(_ v: Float) -> Float {
        if form == .clamp { return v < lower ? lower : (v > upper ? upper : v) }
        return apply(SIMD8(repeating: v))[0]
    }
}

/// Computes output blocks `blocks` and output pixels `pixels` (row-major
/// indices into `outputHeight * outputWidth`) of one image:
/// `y = clamp(conv(x) + bias + residual)`. The output must not alias the input
/// or the residual (a pixel may be computed and written twice).
///
/// - Parameters:
///   - input: the padded image (see `BlockedConvShape`).
///   - filter: from `packBlockedFilter`.
///   - bias: `outputBlocks * 8` floats.
///   - residual: an NCHW8c image shaped like the output, or nil.
public func blockedConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                            output: UnsafeMutablePointer<Float>, clamp: BlockedClamp,
                            blocks: Range<Int>, pixels: Range<Int>) {
    guard !pixels.isEmpty else { return }
    if pointwiseApplies(s) {
        blockedPointwiseConvolve(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                                 clamp: clamp, blocks: blocks, pixels: pixels)
    } else if halfTilesApply(s, blocks) {
        blockedHalfTileConvolve(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                                clamp: clamp, blocks: blocks, pixels: pixels) { full in
            generalTiles(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                         clamp: clamp, blocks: full, pixels: pixels)
        }
    } else {
        generalTiles(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                     clamp: clamp, blocks: blocks, pixels: pixels)
    }
}

/// `blockedConvolve` by tiles of 6 pixels x 16 (or 8) output channels, any kernel and stride.
func generalTiles(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                  bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                  output: UnsafeMutablePointer<Float>, clamp: BlockedClamp,
                  blocks: Range<Int>, pixels: Range<Int>) {
    var ob = blocks.lowerBound
    // An odd count of 3 or more blocks starts with one triple (3 pixels x 3
    // blocks: 3 filter loads and 3 broadcasts per 9 FMAs), then pairs; a
    // single block (6 pixels: 1 filter load and 6 broadcasts per 6 FMAs, half
    // the FMA rate) only when there is one.
    if blocks.count >= 3 && blocks.count % 2 == 1 {
        if s.channelsPerBlock == 8 {
            tripleTiles8(s, input, filter, bias, residual, output, clamp, ob, pixels)
        } else {
            tripleTilesAny(s, input, filter, bias, residual, output, clamp, ob, pixels)
        }
        ob &+= 3
    }
    while ob < blocks.upperBound {
        let pair = ob &+ 1 < blocks.upperBound
        switch (s.channelsPerBlock, pair) {
        case (8, true): pairTiles8(s, input, filter, bias, residual, output, clamp, ob, pixels)
        case (_, true): pairTilesAny(s, input, filter, bias, residual, output, clamp, ob, pixels)
        case (8, false): singleTiles8(s, input, filter, bias, residual, output, clamp, ob, pixels)
        default: singleTilesAny(s, input, filter, bias, residual, output, clamp, ob, pixels)
        }
        ob &+= pair ? 2 : 1
    }
}

// Each tile loop is its own function, 8 channels per block a constant in two of
// them: inlined together into one caller, their 12 accumulators were spilled to
// the stack in the inner loop (a 3x3 conv ran 2.4x slower).

@inline(never)
private func pairTiles8(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                        _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    pairTiles(s, cs: 8, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func pairTilesAny(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    pairTiles(s, cs: s.channelsPerBlock, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func tripleTiles8(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    tripleTiles(s, cs: 8, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func tripleTilesAny(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                            _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    tripleTiles(s, cs: s.channelsPerBlock, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func singleTiles8(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    singleTiles(s, cs: 8, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func singleTilesAny(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                            _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    singleTiles(s, cs: s.channelsPerBlock, x, filter, bias, residual, y, clamp, ob, pixels)
}

/// The output pixels of a tile walked in row-major order: one division where
/// a run of pixels starts, then a step per pixel (a division per pixel cost
/// more than the arithmetic of a 1x1 conv with few channels). Public and
/// inlinable for the width-16 tiles of SIMDKernels512 (scalar code, inlined
/// into each caller with its own flags).
public struct PixelCursor {
    public var oy: Int, ox: Int
    public let width: Int

    @inlinable @inline(__always)
    public init(_ q: Int, width: Int) {
        (oy, ox) = q.quotientAndRemainder(dividingBy: width)
        self.width = width
    }

    @inlinable @inline(__always)
    public mutating func advance() {
        ox &+= 1
        if ox == width { ox = 0; oy &+= 1 }
    }

    /// Offset in the padded input of this pixel's window.
    @inlinable @inline(__always)
    public func offset(_ s: BlockedConvShape, cs: Int) -> Int {
        (oy &* s.strideHeight &* s.paddedWidth &+ ox &* s.strideWidth) &* cs
    }

    /// This pixel's window offset, then a step to pixel `next` when that is
    /// not past `last` (a tile's pixels past `last` repeat it).
    @inlinable @inline(__always)
    public mutating func offsetThenAdvance(_ s: BlockedConvShape, cs: Int, next: Int, last: Int) -> Int {
        let o = offset(s, cs: cs)
        if next <= last { advance() }
        return o
    }
}

/// Window offsets of the 6 pixels of the tile starting at `q` (pixels past
/// `last` repeat `last`), leaving `cursor` on the tile's last pixel.
@inline(__always)
private func tileOffsets(_ cursor: inout PixelCursor, _ q: Int, _ last: Int, _ s: BlockedConvShape, cs: Int)
    -> (Int, Int, Int, Int, Int, Int) {
    let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
    let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
    let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
    let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
    let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
    return (o0, o1, o2, o3, o4, cursor.offset(s, cs: cs))
}

/// Residual and clamp for one output vector (which started from the bias), then the store.
@inline(__always)
func finish(_ acc: SIMD8<Float>, _ residual: UnsafePointer<Float>?,
                    _ y: UnsafeMutablePointer<Float>, _ at: Int, _ clamp: BlockedClamp) {
    var v = acc
    if let residual { v += load8(residual + at) }
    store8(clamp.apply(v), y + at)
}

/// Output blocks `ob` and `ob + 1`, 6 pixels at a time (the last tile repeats
/// its final pixel, writing the same values twice).
@inline(__always)
private func pairTiles(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                       _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                       _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    let filterBlock = s.filterBlockCount
    let f0Start = filter + ob &* filterBlock, f1Start = f0Start + filterBlock
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let plane = s.outputHeight &* s.outputWidth
    let (y0, y1) = (ob &* plane &* 8, (ob &+ 1) &* plane &* 8)
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    while q <= last {
        let q1 = min(q &+ 1, last), q2 = min(q &+ 2, last), q3 = min(q &+ 3, last)
        let q4 = min(q &+ 4, last), q5 = min(q &+ 5, last)
        let (o0, o1, o2, o3, o4, o5) = tileOffsets(&cursor, q, last, s, cs: cs)
        cursor.advance()
        // Accumulators start from the bias: no bias vectors stay live through the channel loop
        // (with them, 17 vectors competed for 16 registers and accumulators were spilled in it).
        let b0 = load8(bias + ob &* 8), b1 = load8(bias + (ob &+ 1) &* 8)
        var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1
        var a30 = b0, a31 = b1, a40 = b0, a41 = b1, a50 = b0, a51 = b1
        var f0 = f0Start, f1 = f1Start
        var block = x
        for cb in 0..<s.inputBlocks {
            // The padded channels of the last block are zero: skip them and their filter rows.
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 8
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    let p0 = t + o0, p1 = t + o1, p2 = t + o2, p3 = t + o3, p4 = t + o4, p5 = t + o5
                    for ci in 0..<live {
                        let w0 = load8(f0), w1 = load8(f1)
                        f0 += 8; f1 += 8
                        var v = SIMD8<Float>(repeating: p0[ci])
                        a00 = a00.addingProduct(v, w0); a01 = a01.addingProduct(v, w1)
                        v = SIMD8<Float>(repeating: p1[ci])
                        a10 = a10.addingProduct(v, w0); a11 = a11.addingProduct(v, w1)
                        v = SIMD8<Float>(repeating: p2[ci])
                        a20 = a20.addingProduct(v, w0); a21 = a21.addingProduct(v, w1)
                        v = SIMD8<Float>(repeating: p3[ci])
                        a30 = a30.addingProduct(v, w0); a31 = a31.addingProduct(v, w1)
                        v = SIMD8<Float>(repeating: p4[ci])
                        a40 = a40.addingProduct(v, w0); a41 = a41.addingProduct(v, w1)
                        v = SIMD8<Float>(repeating: p5[ci])
                        a50 = a50.addingProduct(v, w0); a51 = a51.addingProduct(v, w1)
                    }
                    f0 += skipped; f1 += skipped
                }
            }
            block += blockStride
        }
        finish(a00, residual, y, y0 &+ q &* 8, clamp); finish(a01, residual, y, y1 &+ q &* 8, clamp)
        finish(a10, residual, y, y0 &+ q1 &* 8, clamp); finish(a11, residual, y, y1 &+ q1 &* 8, clamp)
        finish(a20, residual, y, y0 &+ q2 &* 8, clamp); finish(a21, residual, y, y1 &+ q2 &* 8, clamp)
        finish(a30, residual, y, y0 &+ q3 &* 8, clamp); finish(a31, residual, y, y1 &+ q3 &* 8, clamp)
        finish(a40, residual, y, y0 &+ q4 &* 8, clamp); finish(a41, residual, y, y1 &+ q4 &* 8, clamp)
        finish(a50, residual, y, y0 &+ q5 &* 8, clamp); finish(a51, residual, y, y1 &+ q5 &* 8, clamp)
        q &+= 6
    }
}

/// Output blocks `ob`, `ob + 1` and `ob + 2`, 3 pixels at a time (the last
/// tile repeats its final pixel).
@inline(__always)
private func tripleTiles(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                         _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    let filterBlock = s.filterBlockCount
    let f0Start = filter + ob &* filterBlock, f1Start = f0Start + filterBlock, f2Start = f1Start + filterBlock
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let plane = s.outputHeight &* s.outputWidth
    let (y0, y1, y2) = (ob &* plane &* 8, (ob &+ 1) &* plane &* 8, (ob &+ 2) &* plane &* 8)
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    while q <= last {
        let q1 = min(q &+ 1, last), q2 = min(q &+ 2, last)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = load8(bias + ob &* 8), b1 = load8(bias + (ob &+ 1) &* 8), b2 = load8(bias + (ob &+ 2) &* 8)
        var a00 = b0, a01 = b1, a02 = b2, a10 = b0, a11 = b1, a12 = b2
        var a20 = b0, a21 = b1, a22 = b2
        var f0 = f0Start, f1 = f1Start, f2 = f2Start
        var block = x
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 8
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    let p0 = t + o0, p1 = t + o1, p2 = t + o2
                    for ci in 0..<live {
                        let w0 = load8(f0), w1 = load8(f1), w2 = load8(f2)
                        f0 += 8; f1 += 8; f2 += 8
                        var v = SIMD8<Float>(repeating: p0[ci])
                        a00 = a00.addingProduct(v, w0); a01 = a01.addingProduct(v, w1); a02 = a02.addingProduct(v, w2)
                        v = SIMD8<Float>(repeating: p1[ci])
                        a10 = a10.addingProduct(v, w0); a11 = a11.addingProduct(v, w1); a12 = a12.addingProduct(v, w2)
                        v = SIMD8<Float>(repeating: p2[ci])
                        a20 = a20.addingProduct(v, w0); a21 = a21.addingProduct(v, w1); a22 = a22.addingProduct(v, w2)
                    }
                    f0 += skipped; f1 += skipped; f2 += skipped
                }
            }
            block += blockStride
        }
        finish(a00, residual, y, y0 &+ q &* 8, clamp); finish(a01, residual, y, y1 &+ q &* 8, clamp)
        finish(a02, residual, y, y2 &+ q &* 8, clamp)
        finish(a10, residual, y, y0 &+ q1 &* 8, clamp); finish(a11, residual, y, y1 &+ q1 &* 8, clamp)
        finish(a12, residual, y, y2 &+ q1 &* 8, clamp)
        finish(a20, residual, y, y0 &+ q2 &* 8, clamp); finish(a21, residual, y, y1 &+ q2 &* 8, clamp)
        finish(a22, residual, y, y2 &+ q2 &* 8, clamp)
        q &+= 3
    }
}

/// One output block `ob`, 6 pixels at a time (when only one block is left).
@inline(__always)
private func singleTiles(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                         _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    let f0Start = filter + ob &* s.filterBlockCount
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let y0 = ob &* s.outputHeight &* s.outputWidth &* 8
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    while q <= last {
        let q1 = min(q &+ 1, last), q2 = min(q &+ 2, last), q3 = min(q &+ 3, last)
        let q4 = min(q &+ 4, last), q5 = min(q &+ 5, last)
        let (o0, o1, o2, o3, o4, o5) = tileOffsets(&cursor, q, last, s, cs: cs)
        cursor.advance()
        let b0 = load8(bias + ob &* 8)
        var a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0
        var f0 = f0Start
        var block = x
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 8
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    let p0 = t + o0, p1 = t + o1, p2 = t + o2, p3 = t + o3, p4 = t + o4, p5 = t + o5
                    for ci in 0..<live {
                        let w0 = load8(f0)
                        f0 += 8
                        a0 = a0.addingProduct(SIMD8<Float>(repeating: p0[ci]), w0)
                        a1 = a1.addingProduct(SIMD8<Float>(repeating: p1[ci]), w0)
                        a2 = a2.addingProduct(SIMD8<Float>(repeating: p2[ci]), w0)
                        a3 = a3.addingProduct(SIMD8<Float>(repeating: p3[ci]), w0)
                        a4 = a4.addingProduct(SIMD8<Float>(repeating: p4[ci]), w0)
                        a5 = a5.addingProduct(SIMD8<Float>(repeating: p5[ci]), w0)
                    }
                    f0 += skipped
                }
            }
            block += blockStride
        }
        finish(a0, residual, y, y0 &+ q &* 8, clamp)
        finish(a1, residual, y, y0 &+ q1 &* 8, clamp)
        finish(a2, residual, y, y0 &+ q2 &* 8, clamp)
        finish(a3, residual, y, y0 &+ q3 &* 8, clamp)
        finish(a4, residual, y, y0 &+ q4 &* 8, clamp)
        finish(a5, residual, y, y0 &+ q5 &* 8, clamp)
        q &+= 6
    }
}
