// 1x1 stride-1 convolution over NCHW8c maps: a GEMM whose rows are pixels
// (pixel q of every input block at offset 8q) and whose columns are output
// channels. An output tile of 3 blocks x 3 pixels or 2 blocks x 6 pixels stays
// in 9 or 12 registers, starts from the bias, and accumulates every input channel
// (8 lanes of a block unrolled, the padded lanes of a partial last block
// skipped) before one store per vector. The general tile loop of
// `blockedConvolve` does the same work with a tile set-up (pixel offsets,
// channel loop) per 8 input channels; on 1x1 convs of 12-128 channels it took
// 1.2-1.8x the time of these tiles (docs/lowrank.md, "Kernels for factor shapes").
//
// Compiled with AVX2 and FMA like the rest of this target: callers check
// `cpuSupportsBlockedKernels` first.

/// Whether `blockedConvolve` runs `s` with the pointwise tiles: a 1x1 kernel,
/// stride 1 (so output pixel `q` reads pixel `q` of the input) and 8 channels
/// per input block.
@inline(__always)
func pointwiseApplies(_ s: BlockedConvShape) -> Bool {
    s.kernelHeight == 1 && s.kernelWidth == 1 && s.strideHeight == 1 && s.strideWidth == 1
        && s.channelsPerBlock == 8
}

/// Output blocks `blocks` and pixels `pixels` of a pointwise conv (see
/// `pointwiseApplies`): pairs of blocks, and one triple for an odd count (three
/// pairs ran 1x1 48 -> 48 at 28x28 in 2.04 ms per 64 images, two triples in 2.63). A group of blocks whose
/// pixels do not fill one tile, and a single block, go to the general tiles.
func blockedPointwiseConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                              output: UnsafeMutablePointer<Float>, clamp: BlockedClamp,
                              blocks: Range<Int>, pixels: Range<Int>) {
    let clamped = clamp.form != .clamp || clamp.lower > -.infinity || clamp.upper < .infinity
    var ob = blocks.lowerBound
    if halfTilesApply(s, blocks) && blocks.count % 2 == 1 {
        // A last block of at most 4 channels after an even number of full blocks: the
        // pairs here, then 2 full blocks and the half block by the packed half tiles
        // (BlockedHalfTiles.swift: 20 -> 20 at 28x28 took 0.9x the time of a 3 x 3 tile
        // here). Pointwise tiles of their own with a half block, 8 lanes unrolled like
        // the others, spilled accumulators and were slower than the padded tiles.
        blockedHalfTileConvolve(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                                clamp: clamp, blocks: blocks, pixels: pixels) { full in
            blockedPointwiseConvolve(s, input: input, filter: filter, bias: bias, residual: residual,
                                     output: output, clamp: clamp, blocks: full, pixels: pixels)
        }
        return
    }
    while ob < blocks.upperBound {
        let remaining = blocks.upperBound &- ob
        let group = remaining == 3 ? 3 : min(remaining, 2)
        let tilePixels = group == 3 ? 3 : 6
        if group == 1 || pixels.count < tilePixels {
            generalTiles(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                         clamp: clamp, blocks: ob..<ob &+ group, pixels: pixels)
        } else {
            switch (group, clamped) {
            case (3, true): tiles3x3Clamped(s, input, filter, bias, residual, output, clamp, ob, pixels)
            case (3, false): tiles3x3(s, input, filter, bias, residual, output, clamp, ob, pixels)
            case (_, true): tiles2x6Clamped(s, input, filter, bias, residual, output, clamp, ob, pixels)
            default: tiles2x6(s, input, filter, bias, residual, output, clamp, ob, pixels)
            }
        }
        ob &+= group
    }
}

// One function per tile shape and epilogue, so that each inner loop is compiled
// alone with its constants (see `pairTiles8`).

@inline(never)
private func tiles3x3(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                      _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                      _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    pointwiseTiles(Tile3x3.self, s, x, filter, bias, residual, y, clamp, false, ob, pixels)
}

@inline(never)
private func tiles3x3Clamped(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                             _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    pointwiseTiles(Tile3x3.self, s, x, filter, bias, residual, y, clamp, true, ob, pixels)
}

@inline(never)
private func tiles2x6(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                      _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                      _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    pointwiseTiles(Tile2x6.self, s, x, filter, bias, residual, y, clamp, false, ob, pixels)
}

@inline(never)
private func tiles2x6Clamped(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                             _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    pointwiseTiles(Tile2x6.self, s, x, filter, bias, residual, y, clamp, true, ob, pixels)
}

/// A register tile: `blocks` output blocks x `pixels` pixels of accumulators.
private protocol PointwiseTile {
    static var blocks: Int { get }
    static var pixels: Int { get }
    /// Accumulators holding the bias of blocks `ob...`.
    init(bias: UnsafePointer<Float>)
    /// Adds input lane `ci` of the tile's pixels (`p[8k + ci]` for pixel `k`)
    /// times the filter rows `w + j * filterBlock` of its blocks.
    mutating func multiplyAdd(_ p: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ filterBlock: Int)
    /// Clamps if `clamped`, adds the residual, stores pixel `k` of block `j` at `y + j * blockStride + 8k`.
    func store(_ y: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>?, _ blockStride: Int,
               _ clamp: BlockedClamp, _ clamped: Bool)
}

/// `y = clamp(acc + residual)` at `y + at` (the bias is in `acc` already).
@inline(__always)
private func finishVector(_ acc: SIMD8<Float>, _ y: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>?,
                          _ at: Int, _ clamp: BlockedClamp, _ clamped: Bool) {
    var v = acc
    if let residual { v += load8(residual + at) }
    store8(clamped ? clamp.apply(v) : v, y + at)
}

/// Tiles of `T` over output blocks `ob..<ob + T.blocks` and `pixels` (at least
/// `T.pixels` of them). The last tile ends at the range's end, overlapping the
/// one before: its overlapped pixels are computed twice from the same inputs and
/// written twice with the same values (the output aliases neither the input nor
/// the residual).
@inline(__always)
private func pointwiseTiles<T: PointwiseTile>(_: T.Type, _ s: BlockedConvShape, _ x: UnsafePointer<Float>,
                                              _ filter: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                                              _ residual: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                                              _ clamp: BlockedClamp, _ clamped: Bool, _ ob: Int,
                                              _ pixels: Range<Int>) {
    let filterBlock = s.filterBlockCount
    let plane = s.outputHeight &* s.outputWidth
    let blockStride = plane &* 8
    let f = filter + ob &* filterBlock
    let yb = y + ob &* blockStride
    let rb = residual.map { $0 + ob &* blockStride }
    let fullBlocks = s.inputBlocks &- 1, live = s.lastBlockChannels
    let lastTile = pixels.upperBound &- T.pixels
    var q = pixels.lowerBound
    while true {
        var tile = T(bias: bias + ob &* 8)
        var p = x + q &* 8
        var w = f
        for _ in 0..<fullBlocks {
            for ci in 0..<8 {
                tile.multiplyAdd(p + ci, w + ci &* 8, filterBlock)
            }
            p += blockStride
            w += 64
        }
        if live == 8 {
            for ci in 0..<8 {
                tile.multiplyAdd(p + ci, w + ci &* 8, filterBlock)
            }
        } else {
            for ci in 0..<live {
                tile.multiplyAdd(p + ci, w + ci &* 8, filterBlock)
            }
        }
        tile.store(yb + q &* 8, rb.map { $0 + q &* 8 }, blockStride, clamp, clamped)
        if q == lastTile { break }
        q = min(q &+ T.pixels, lastTile)
    }
}

/// 3 blocks x 3 pixels: 9 accumulators, 3 filter vectors and a broadcast (3 x 4
/// accumulators left no spare register, and LLVM spilled accumulators in the loop).
private struct Tile3x3: PointwiseTile {
    static var blocks: Int { 3 }
    static var pixels: Int { 3 }
    var a00: SIMD8<Float>, a01: SIMD8<Float>, a02: SIMD8<Float>
    var a10: SIMD8<Float>, a11: SIMD8<Float>, a12: SIMD8<Float>
    var a20: SIMD8<Float>, a21: SIMD8<Float>, a22: SIMD8<Float>

    @inline(__always)
    init(bias: UnsafePointer<Float>) {
        let b0 = load8(bias), b1 = load8(bias + 8), b2 = load8(bias + 16)
        (a00, a01, a02) = (b0, b1, b2)
        (a10, a11, a12) = (b0, b1, b2)
        (a20, a21, a22) = (b0, b1, b2)
    }

    @inline(__always)
    mutating func multiplyAdd(_ p: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ filterBlock: Int) {
        let w0 = load8(w), w1 = load8(w + filterBlock), w2 = load8(w + filterBlock &* 2)
        var v = SIMD8<Float>(repeating: p[0])
        a00 = a00.addingProduct(v, w0); a01 = a01.addingProduct(v, w1); a02 = a02.addingProduct(v, w2)
        v = SIMD8<Float>(repeating: p[8])
        a10 = a10.addingProduct(v, w0); a11 = a11.addingProduct(v, w1); a12 = a12.addingProduct(v, w2)
        v = SIMD8<Float>(repeating: p[16])
        a20 = a20.addingProduct(v, w0); a21 = a21.addingProduct(v, w1); a22 = a22.addingProduct(v, w2)
    }

    @inline(__always)
    func store(_ y: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>?, _ bs: Int,
               _ clamp: BlockedClamp, _ clamped: Bool) {
        let (o1, o2) = (bs, bs &* 2)
        finishVector(a00, y, r, 0, clamp, clamped); finishVector(a01, y, r, o1, clamp, clamped)
        finishVector(a02, y, r, o2, clamp, clamped)
        finishVector(a10, y, r, 8, clamp, clamped); finishVector(a11, y, r, o1 &+ 8, clamp, clamped)
        finishVector(a12, y, r, o2 &+ 8, clamp, clamped)
        finishVector(a20, y, r, 16, clamp, clamped); finishVector(a21, y, r, o1 &+ 16, clamp, clamped)
        finishVector(a22, y, r, o2 &+ 16, clamp, clamped)
    }
}

private struct Tile2x6: PointwiseTile {
    static var blocks: Int { 2 }
    static var pixels: Int { 6 }
    var a00: SIMD8<Float>, a01: SIMD8<Float>, a10: SIMD8<Float>, a11: SIMD8<Float>
    var a20: SIMD8<Float>, a21: SIMD8<Float>, a30: SIMD8<Float>, a31: SIMD8<Float>
    var a40: SIMD8<Float>, a41: SIMD8<Float>, a50: SIMD8<Float>, a51: SIMD8<Float>

    @inline(__always)
    init(bias: UnsafePointer<Float>) {
        let b0 = load8(bias), b1 = load8(bias + 8)
        (a00, a01, a10, a11, a20, a21) = (b0, b1, b0, b1, b0, b1)
        (a30, a31, a40, a41, a50, a51) = (b0, b1, b0, b1, b0, b1)
    }

    @inline(__always)
    mutating func multiplyAdd(_ p: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ filterBlock: Int) {
        let w0 = load8(w), w1 = load8(w + filterBlock)
        var v = SIMD8<Float>(repeating: p[0])
        a00 = a00.addingProduct(v, w0); a01 = a01.addingProduct(v, w1)
        v = SIMD8<Float>(repeating: p[8])
        a10 = a10.addingProduct(v, w0); a11 = a11.addingProduct(v, w1)
        v = SIMD8<Float>(repeating: p[16])
        a20 = a20.addingProduct(v, w0); a21 = a21.addingProduct(v, w1)
        v = SIMD8<Float>(repeating: p[24])
        a30 = a30.addingProduct(v, w0); a31 = a31.addingProduct(v, w1)
        v = SIMD8<Float>(repeating: p[32])
        a40 = a40.addingProduct(v, w0); a41 = a41.addingProduct(v, w1)
        v = SIMD8<Float>(repeating: p[40])
        a50 = a50.addingProduct(v, w0); a51 = a51.addingProduct(v, w1)
    }

    @inline(__always)
    func store(_ y: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>?, _ bs: Int,
               _ clamp: BlockedClamp, _ clamped: Bool) {
        finishVector(a00, y, r, 0, clamp, clamped); finishVector(a01, y, r, bs, clamp, clamped)
        finishVector(a10, y, r, 8, clamp, clamped); finishVector(a11, y, r, bs &+ 8, clamp, clamped)
        finishVector(a20, y, r, 16, clamp, clamped); finishVector(a21, y, r, bs &+ 16, clamp, clamped)
        finishVector(a30, y, r, 24, clamp, clamped); finishVector(a31, y, r, bs &+ 24, clamp, clamped)
        finishVector(a40, y, r, 32, clamp, clamped); finishVector(a41, y, r, bs &+ 32, clamp, clamped)
        finishVector(a50, y, r, 40, clamp, clamped); finishVector(a51, y, r, bs &+ 40, clamp, clamped)
    }
}

