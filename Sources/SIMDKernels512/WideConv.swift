// Direct convolution over NCHW8c maps with 16-lane vectors ("2x NCHW8c"): one
// vector holds 16 output channels, the adjacent 8-channel blocks 2p and 2p + 1
// (output pair p), so the runtime's layout is kept; lanes 0-7 and 8-15 of an
// accumulator are stored to their two block planes. Filters are packed per pair
// (`packBlockedFilter` with 16 output lanes) so the 16 output channels of one (input channel, tap) are one
// vector. Output tiles of 7 or 8 pixels x 2 pairs (14 or 16 accumulators; x 1
// pair for a single pair left) start from the bias and accumulate every input
// channel and tap before the epilogue (residual, clamp, store). A block whose
// pair has no other block in range (the last of an odd count, or the first of a
// range starting at an odd block) runs alone with 8-lane tiles. 1x1 stride-1
// convs take the pointwise tiles at the end of this file (no window offsets);
// images of fewer than 8 channels (first layers) take flat tiles, one loop over
// a table of window offsets instead of loops over tap rows, columns and channels.
//
// This file is compiled twice (Package.swift): in SIMDKernels512 with AVX-512
// (zmm registers, callers check `cpuSupportsAVX512` first) and, through a
// symlink, in SIMDKernelsWide16 with AVX2 only (each 16-lane operation as two ymm
// operations), so the width-16 algorithm is tested on every AVX2 machine. Its
// SIMD operations are the always-inline C helpers of simd_wide.h, never generic
// `SIMD16` code of the standard library, whose specializations the linker could
// share between the twins.

import CCPUFeatures
import SIMDKernels

/// Floats of the bias `wideConvolve` reads: `outChannels` rounded up to whole pairs of blocks.
public func wideBiasCount(outChannels: Int) -> Int { (outChannels + 15) / 16 * 16 }

/// Pixels per tile `wideConvolve` uses for a range of `pixelCount` pixels: 8 when
/// tiles of 8 repeat fewer pixels than tiles of 7 (8x8, 16x16 and 32x32 maps), else
/// 7 (7x7, 14x14, 28x28, 56x56, 112x112). A range split at multiples of the whole
/// map's tile keeps every part's tiles whole.
public func wideTilePixels(pixelCount: Int) -> Int {
    (8 &- pixelCount % 8) % 8 < (7 &- pixelCount % 7) % 7 ? 8 : 7
}

/// Computes output blocks `blocks` (8-channel blocks, as in `blockedConvolve`) and
/// output pixels `pixels` (row-major indices into `outputHeight * outputWidth`) of
/// one image: `y = clamp(conv(x) + bias + residual)`, as `blockedConvolve` computes
/// it (the same FMAs in the same order: bias, then input blocks, taps, channels;
/// resnet18 and mobilenet_v2 gave equal bytes). Work goes
/// by pairs of blocks; a range that starts at an odd block, or ends at an even
/// one, computes that block alone with 8-lane tiles. The output must not alias the
/// input or the residual (a pixel may be computed and written twice).
///
/// - Parameters:
///   - s: as for `blockedConvolve`; `lastOutputChannels` is not read (padded
///     channels are computed with zero weights and bias).
///   - input: the padded image (see `BlockedConvShape`).
///   - filter: from `packBlockedFilter(..., outputLanes: 16)`:
///     `[O/16][C/cs][kh][kw][cs][16]`.
///   - bias: `wideBiasCount` floats, zero in padded channels.
///   - residual: an NCHW8c image shaped like the output, or nil.
public func wideConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                         output: UnsafeMutablePointer<Float>, clamp: BlockedClamp,
                         blocks: Range<Int>, pixels: Range<Int>) {
    guard !pixels.isEmpty && !blocks.isEmpty else { return }
    precondition(blocks.lowerBound >= 0 && blocks.upperBound <= s.outputBlocks)
    let e = WideEpilogue(s, output: output, residual: residual, clamp: clamp, blocks: blocks)
    if widePointwiseApplies(s, pixels) {
        widePointwiseConvolve(s, input: input, filter: filter, bias: bias, e, blocks: blocks, pixels: pixels)
        return
    }
    let eight = wideTilePixels(pixelCount: pixels.count) == 8
    if wideFlatApplies(s) {
        flatConvolve(s, input, filter, bias, e, blocks, pixels, eight: eight)
        return
    }
    var p = blocks.lowerBound / 2
    let pairsEnd = (blocks.upperBound + 1) / 2
    while p < pairsEnd {
        if let block = loneBlock(p, blocks) {
            halfTiles(s, input, filter, bias, e, block, pixels, eight: eight)
            p &+= 1
            continue
        }
        let two = p &+ 1 < pairsEnd && loneBlock(p &+ 1, blocks) == nil
        switch (two, eight, s.channelsPerBlock == 8) {
        case (true, true, true): tiles8x2Full(s, input, filter, bias, e, p, pixels)
        case (true, true, false): tiles8x2Any(s, input, filter, bias, e, p, pixels)
        case (true, false, true): tiles7x2Full(s, input, filter, bias, e, p, pixels)
        case (true, false, false): tiles7x2Any(s, input, filter, bias, e, p, pixels)
        case (false, true, true): tiles8x1Full(s, input, filter, bias, e, p, pixels)
        case (false, true, false): tiles8x1Any(s, input, filter, bias, e, p, pixels)
        case (false, false, true): tiles7x1Full(s, input, filter, bias, e, p, pixels)
        case (false, false, false): tiles7x1Any(s, input, filter, bias, e, p, pixels)
        }
        p &+= two ? 2 : 1
    }
}

/// Whether the pairs of an image of one input block (fewer than 8 channels: first layers)
/// run as flat tiles: `flatTiles7x2` for two pairs, `flatTiles14x1` for a pair alone (on
/// maps of 8-pixel tiles too: a first layer has few entries per tile, so its loop nest
/// costs more than the repeated pixels of the last tile).
@inline(__always)
func wideFlatApplies(_ s: BlockedConvShape) -> Bool {
    s.inputBlocks == 1 && s.channelsPerBlock < 8 && s.lastBlockChannels == s.channelsPerBlock
}

/// `wideConvolve` for `wideFlatApplies` shapes: the window offsets of one pixel (taps, then
/// channels) in a table, then flat tiles by pairs (8-lane tiles for a lone block).
func flatConvolve(_ s: BlockedConvShape, _ input: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                  _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ blocks: Range<Int>, _ pixels: Range<Int>,
                  eight: Bool) {
    let entries = s.kernelHeight &* s.kernelWidth &* s.channelsPerBlock
    withUnsafeTemporaryAllocation(of: Int.self, capacity: entries) { offsets in
        var j = 0
        for ky in 0..<s.kernelHeight {
            for kx in 0..<s.kernelWidth {
                for ci in 0..<s.channelsPerBlock {
                    offsets[j] = (ky &* s.paddedWidth &+ kx) &* s.channelsPerBlock &+ ci
                    j &+= 1
                }
            }
        }
        let table = UnsafePointer(offsets.baseAddress!)
        var p = blocks.lowerBound / 2
        let pairsEnd = (blocks.upperBound + 1) / 2
        while p < pairsEnd {
            if let block = loneBlock(p, blocks) {
                halfTiles(s, input, filter, bias, e, block, pixels, eight: eight)
                p &+= 1
            } else if p &+ 1 < pairsEnd && loneBlock(p &+ 1, blocks) == nil {
                tiles7x2Flat(s, input, filter, bias, e, p, pixels, windowOffsets: table, entries: entries)
                p &+= 2
            } else {
                tiles14x1Flat(s, input, filter, bias, e, p, pixels, windowOffsets: table, entries: entries)
                p &+= 1
            }
        }
    }
}

/// Whether the general tiles of `pairs` pairs skip the tap rows that read the zero rows
/// of `s` (`zeroRowsTop`, `zeroRowsBottom`). Not when the filters of the two pairs
/// exceed 320 KB: a tile that skips rows breaks their stream from L2 (512 -> 512 3x3:
/// 10% slower, 256 -> 256 3x3 on 14x14: 3.7% faster).
@inline(__always)
func wideSkipsZeroRows(_ s: BlockedConvShape, pairs: Int) -> Bool {
    (s.zeroRowsTop > 0 || s.zeroRowsBottom > 0) && s.filterBlockCount &* 2 &* pairs &* 4 <= 320 << 10
}

/// Tap rows `lo..<hi` of output rows `row...lastRow` that read no zero row of the padded image
/// (all of them when the tile spans two rows).
@inline(__always)
func liveTapRows(_ s: BlockedConvShape, row: Int, lastRow: Int) -> (Int, Int) {
    guard row == lastRow else { return (0, s.kernelHeight) }
    let top = row &* s.strideHeight
    let lo = min(max(0, s.zeroRowsTop &- top), s.kernelHeight)
    let hi = max(lo, min(s.kernelHeight, s.paddedHeight &- s.zeroRowsBottom &- top))
    return (lo, hi)
}

/// The one block of pair `p` in `blocks` when the other is not (a range that starts
/// at an odd block, or ends at an even one: the last block of an odd count), else nil.
@inline(__always)
func loneBlock(_ p: Int, _ blocks: Range<Int>) -> Int? {
    let low = p &* 2
    if low < blocks.lowerBound { return low &+ 1 }
    if low &+ 1 >= blocks.upperBound { return low }
    return nil
}

/// Block `block` alone with 8-lane tiles of 8 or 7 pixels.
func halfTiles(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
               _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>, eight: Bool) {
    switch (eight, s.channelsPerBlock == 8) {
    case (true, true): halfTiles8Full(s, x, filter, bias, e, block, pixels)
    case (true, false): halfTiles8Any(s, x, filter, bias, e, block, pixels)
    case (false, true): halfTiles7Full(s, x, filter, bias, e, block, pixels)
    case (false, false): halfTiles7Any(s, x, filter, bias, e, block, pixels)
    }
}

/// Where and how a tile's accumulators are finished: residual, clamp, store to
/// the blocks in range.
struct WideEpilogue {
    let output: UnsafeMutablePointer<Float>
    let residual: UnsafePointer<Float>?
    /// Floats per output block plane.
    let blockStride: Int
    let blocks: Range<Int>
    let clamp: BlockedClamp
    /// A clamp with a finite bound, applied to each vector before its store.
    let clampsVectors: Bool
    /// Another form (GELU, hard swish...): applied by `blockedClamp` to the stored tile.
    let activatesStored: Bool

    @inline(__always)
    init(_ s: BlockedConvShape, output: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?,
         clamp: BlockedClamp, blocks: Range<Int>) {
        self.output = output; self.residual = residual; self.clamp = clamp; self.blocks = blocks
        blockStride = s.outputHeight &* s.outputWidth &* 8
        clampsVectors = clamp.form == .clamp && (clamp.lower > -.infinity || clamp.upper < .infinity)
        activatesStored = clamp.form != .clamp
    }

    /// Adds the residual to pixel `q` of pair `p`, clamps, and stores the blocks in range.
    @inline(__always)
    func finish(_ acc: SIMD16<Float>, pair p: Int, pixel q: Int) {
        let low = p &* 2
        let lowAt = low &* blockStride &+ q &* 8, highAt = lowAt &+ blockStride
        let storesLow = low >= blocks.lowerBound, storesHigh = low &+ 1 < blocks.upperBound
        var v = acc
        if let residual {
            // A block out of range may not exist (the last pair of an odd block count):
            // its lanes read the other block's residual and are not stored.
            v = compressor_add16(v, compressor_load8_pair(residual + (storesLow ? lowAt : highAt),
                                                          residual + (storesHigh ? highAt : lowAt)))
        }
        if clampsVectors { v = compressor_clamp16(v, clamp.lower, clamp.upper) }
        if storesLow { compressor_store16_low(v, output + lowAt) }
        if storesHigh { compressor_store16_high(v, output + highAt) }
    }

    /// Adds the residual to pixel `q` of block `block` alone, clamps, and stores.
    @inline(__always)
    func finish(_ acc: SIMD8<Float>, block: Int, pixel q: Int) {
        let at = block &* blockStride &+ q &* 8
        var v = acc
        if let residual { v = compressor_add8(v, compressor_load8(residual + at)) }
        if clampsVectors { v = compressor_clamp8(v, clamp.lower, clamp.upper) }
        compressor_store8(v, output + at)
    }

    /// The activation of a form other than a clamp over pixels `q...last` of the
    /// stored blocks of `pairs` (after `finish` of every accumulator of the tile).
    @inline(__always)
    func activate(pairs: Range<Int>, from q: Int, through last: Int) {
        if activatesStored { activateStored(pairs: pairs, from: q, through: last) }
    }

    @inline(never)
    func activateStored(pairs: Range<Int>, from q: Int, through last: Int) {
        let first = max(pairs.lowerBound &* 2, blocks.lowerBound), end = min(pairs.upperBound &* 2, blocks.upperBound)
        for b in first..<end {
            let at = output + (b &* blockStride &+ q &* 8)
            blockedClamp(at, at, count: (last &- q &+ 1) &* 8, clamp: clamp)
        }
    }
}

// Each tile loop is its own function, 8 channels per block a constant in two of
// them, so that each inner loop is compiled alone (see `blockedConvolve`).

@inline(never)
private func tiles7x2Full(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles7x2(s, cs: 8, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles7x2Any(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles7x2(s, cs: s.channelsPerBlock, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles8x2Full(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles8x2(s, cs: 8, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles8x2Any(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles8x2(s, cs: s.channelsPerBlock, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles8x1Full(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles8x1(s, cs: 8, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles8x1Any(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles8x1(s, cs: s.channelsPerBlock, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles7x1Full(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles7x1(s, cs: 8, x, filter, bias, e, p, pixels)
}

@inline(never)
private func tiles7x1Any(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    generalTiles7x1(s, cs: s.channelsPerBlock, x, filter, bias, e, p, pixels)
}

@inline(never)
private func halfTiles8Full(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                            _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {
    halfTiles8(s, cs: 8, x, filter, bias, e, block, pixels)
}

@inline(never)
private func halfTiles8Any(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                           _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {
    halfTiles8(s, cs: s.channelsPerBlock, x, filter, bias, e, block, pixels)
}

@inline(never)
private func halfTiles7Full(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                            _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {
    halfTiles7(s, cs: 8, x, filter, bias, e, block, pixels)
}

@inline(never)
private func halfTiles7Any(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                           _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {
    halfTiles7(s, cs: s.channelsPerBlock, x, filter, bias, e, block, pixels)
}

@inline(never)
private func tiles7x2Flat(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>,
                          windowOffsets: UnsafePointer<Int>, entries: Int) {
    flatTiles7x2(s, x, filter, bias, e, p, pixels, windowOffsets: windowOffsets, entries: entries)
}

@inline(never)
private func tiles14x1Flat(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                           _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>,
                           windowOffsets: UnsafePointer<Int>, entries: Int) {
    flatTiles14x1(s, x, filter, bias, e, p, pixels, windowOffsets: windowOffsets, entries: entries)
}

/// Pairs `p..<p + 2` (4 output blocks) of an image of one input block (fewer than 8 input
/// channels), 7 pixels per tile (the last tile repeats its final pixel): 14 accumulators. The
/// taps and channels run as one loop over `windowOffsets` (rows, columns, channels: the order
/// of `generalTiles`), without a loop per tap row and column.
@inline(__always)
private func flatTiles7x2(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>,
                          windowOffsets: UnsafePointer<Int>, entries: Int) {
    let cs = s.channelsPerBlock
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter, f1Start = f0Start + pairFilter
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    while q <= last {
        let t0 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let t1 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let t2 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let t3 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let t4 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let t5 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let t6 = x + cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)
        var a0_0 = b0, a0_1 = b1, a1_0 = b0, a1_1 = b1, a2_0 = b0, a2_1 = b1, a3_0 = b0, a3_1 = b1
        var a4_0 = b0, a4_1 = b1, a5_0 = b0, a5_1 = b1, a6_0 = b0, a6_1 = b1
        var f0 = f0Start, f1 = f1Start
        for j in 0..<entries {
            let d = windowOffsets[j]
            let w0 = compressor_load16(f0), w1 = compressor_load16(f1)
            f0 += 16; f1 += 16
            var v = t0[d]
            a0_0 = compressor_fma16(a0_0, v, w0); a0_1 = compressor_fma16(a0_1, v, w1)
            v = t1[d]
            a1_0 = compressor_fma16(a1_0, v, w0); a1_1 = compressor_fma16(a1_1, v, w1)
            v = t2[d]
            a2_0 = compressor_fma16(a2_0, v, w0); a2_1 = compressor_fma16(a2_1, v, w1)
            v = t3[d]
            a3_0 = compressor_fma16(a3_0, v, w0); a3_1 = compressor_fma16(a3_1, v, w1)
            v = t4[d]
            a4_0 = compressor_fma16(a4_0, v, w0); a4_1 = compressor_fma16(a4_1, v, w1)
            v = t5[d]
            a5_0 = compressor_fma16(a5_0, v, w0); a5_1 = compressor_fma16(a5_1, v, w1)
            v = t6[d]
            a6_0 = compressor_fma16(a6_0, v, w0); a6_1 = compressor_fma16(a6_1, v, w1)
        }
        e.finish(a0_0, pair: p, pixel: q); e.finish(a0_1, pair: p &+ 1, pixel: q)
        e.finish(a1_0, pair: p, pixel: min(q &+ 1, last)); e.finish(a1_1, pair: p &+ 1, pixel: min(q &+ 1, last))
        e.finish(a2_0, pair: p, pixel: min(q &+ 2, last)); e.finish(a2_1, pair: p &+ 1, pixel: min(q &+ 2, last))
        e.finish(a3_0, pair: p, pixel: min(q &+ 3, last)); e.finish(a3_1, pair: p &+ 1, pixel: min(q &+ 3, last))
        e.finish(a4_0, pair: p, pixel: min(q &+ 4, last)); e.finish(a4_1, pair: p &+ 1, pixel: min(q &+ 4, last))
        e.finish(a5_0, pair: p, pixel: min(q &+ 5, last)); e.finish(a5_1, pair: p &+ 1, pixel: min(q &+ 5, last))
        e.finish(a6_0, pair: p, pixel: min(q &+ 6, last)); e.finish(a6_1, pair: p &+ 1, pixel: min(q &+ 6, last))
        e.activate(pairs: p..<p &+ 2, from: q, through: min(q &+ 6, last))
        q &+= 7
    }
}

/// Pairs `p..<p + 1` (2 output blocks) of an image of one input block (fewer than 8 input
/// channels), 14 pixels per tile (the last tile repeats its final pixel): 14 accumulators. The
/// taps and channels run as one loop over `windowOffsets` (rows, columns, channels: the order
/// of `generalTiles`), without a loop per tap row and column.
@inline(__always)
private func flatTiles14x1(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                           _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>,
                           windowOffsets: UnsafePointer<Int>, entries: Int) {
    let cs = s.channelsPerBlock
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    while q <= last {
        let t0 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let t1 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let t2 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let t3 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let t4 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let t5 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let t6 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 7, last: last)
        let t7 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 8, last: last)
        let t8 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 9, last: last)
        let t9 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 10, last: last)
        let t10 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 11, last: last)
        let t11 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 12, last: last)
        let t12 = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ 13, last: last)
        let t13 = x + cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load16(bias + p &* 16)
        var a0_0 = b0, a1_0 = b0, a2_0 = b0, a3_0 = b0, a4_0 = b0, a5_0 = b0, a6_0 = b0
        var a7_0 = b0, a8_0 = b0, a9_0 = b0, a10_0 = b0, a11_0 = b0, a12_0 = b0, a13_0 = b0
        var f0 = f0Start
        for j in 0..<entries {
            let d = windowOffsets[j]
            let w0 = compressor_load16(f0)
            f0 += 16
            a0_0 = compressor_fma16(a0_0, t0[d], w0)
            a1_0 = compressor_fma16(a1_0, t1[d], w0)
            a2_0 = compressor_fma16(a2_0, t2[d], w0)
            a3_0 = compressor_fma16(a3_0, t3[d], w0)
            a4_0 = compressor_fma16(a4_0, t4[d], w0)
            a5_0 = compressor_fma16(a5_0, t5[d], w0)
            a6_0 = compressor_fma16(a6_0, t6[d], w0)
            a7_0 = compressor_fma16(a7_0, t7[d], w0)
            a8_0 = compressor_fma16(a8_0, t8[d], w0)
            a9_0 = compressor_fma16(a9_0, t9[d], w0)
            a10_0 = compressor_fma16(a10_0, t10[d], w0)
            a11_0 = compressor_fma16(a11_0, t11[d], w0)
            a12_0 = compressor_fma16(a12_0, t12[d], w0)
            a13_0 = compressor_fma16(a13_0, t13[d], w0)
        }
        e.finish(a0_0, pair: p, pixel: q)
        e.finish(a1_0, pair: p, pixel: min(q &+ 1, last))
        e.finish(a2_0, pair: p, pixel: min(q &+ 2, last))
        e.finish(a3_0, pair: p, pixel: min(q &+ 3, last))
        e.finish(a4_0, pair: p, pixel: min(q &+ 4, last))
        e.finish(a5_0, pair: p, pixel: min(q &+ 5, last))
        e.finish(a6_0, pair: p, pixel: min(q &+ 6, last))
        e.finish(a7_0, pair: p, pixel: min(q &+ 7, last))
        e.finish(a8_0, pair: p, pixel: min(q &+ 8, last))
        e.finish(a9_0, pair: p, pixel: min(q &+ 9, last))
        e.finish(a10_0, pair: p, pixel: min(q &+ 10, last))
        e.finish(a11_0, pair: p, pixel: min(q &+ 11, last))
        e.finish(a12_0, pair: p, pixel: min(q &+ 12, last))
        e.finish(a13_0, pair: p, pixel: min(q &+ 13, last))
        e.activate(pairs: p..<p &+ 1, from: q, through: min(q &+ 13, last))
        q &+= 14
    }
}

/// Pairs `p..<p + 2` (4 output blocks), 7 pixels per tile (the last tile repeats its
/// final pixel, writing the same values twice): 14 accumulators.
@inline(__always)
private func generalTiles7x2(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter, f1Start = f0Start + pairFilter
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    let skipsZeroRows = wideSkipsZeroRows(s, pairs: 2)
    let tapRow = s.kernelWidth &* cs &* 16
    while q <= last {
        // A tile inside one output row skips the tap rows that read zero padding rows.
        let (kyLo, kyHi) = skipsZeroRows ? liveTapRows(s, row: cursor.oy, lastRow: min(q &+ 6, last) / s.outputWidth)
                                         : (0, s.kernelHeight)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let o6 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)
        var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
        var a40 = b0, a41 = b1, a50 = b0, a51 = b1, a60 = b0, a61 = b1
        var f0 = f0Start, f1 = f1Start
        var block = x
        for cb in 0..<s.inputBlocks {
            // The padded channels of the last block are zero: skip them and their filter rows.
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 16
            f0 += kyLo &* tapRow; f1 += kyLo &* tapRow
            for ky in kyLo..<kyHi {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    for ci in 0..<live {
                        let w0 = compressor_load16(f0), w1 = compressor_load16(f1)
                        f0 += 16; f1 += 16
                        var v = t[o0 &+ ci]
                        a00 = compressor_fma16(a00, v, w0); a01 = compressor_fma16(a01, v, w1)
                        v = t[o1 &+ ci]
                        a10 = compressor_fma16(a10, v, w0); a11 = compressor_fma16(a11, v, w1)
                        v = t[o2 &+ ci]
                        a20 = compressor_fma16(a20, v, w0); a21 = compressor_fma16(a21, v, w1)
                        v = t[o3 &+ ci]
                        a30 = compressor_fma16(a30, v, w0); a31 = compressor_fma16(a31, v, w1)
                        v = t[o4 &+ ci]
                        a40 = compressor_fma16(a40, v, w0); a41 = compressor_fma16(a41, v, w1)
                        v = t[o5 &+ ci]
                        a50 = compressor_fma16(a50, v, w0); a51 = compressor_fma16(a51, v, w1)
                        v = t[o6 &+ ci]
                        a60 = compressor_fma16(a60, v, w0); a61 = compressor_fma16(a61, v, w1)
                    }
                    f0 += skipped; f1 += skipped
                }
            }
            f0 += (s.kernelHeight &- kyHi) &* tapRow; f1 += (s.kernelHeight &- kyHi) &* tapRow
            block += blockStride
        }
        e.finish(a00, pair: p, pixel: q); e.finish(a01, pair: p &+ 1, pixel: q)
        e.finish(a10, pair: p, pixel: min(q &+ 1, last)); e.finish(a11, pair: p &+ 1, pixel: min(q &+ 1, last))
        e.finish(a20, pair: p, pixel: min(q &+ 2, last)); e.finish(a21, pair: p &+ 1, pixel: min(q &+ 2, last))
        e.finish(a30, pair: p, pixel: min(q &+ 3, last)); e.finish(a31, pair: p &+ 1, pixel: min(q &+ 3, last))
        e.finish(a40, pair: p, pixel: min(q &+ 4, last)); e.finish(a41, pair: p &+ 1, pixel: min(q &+ 4, last))
        e.finish(a50, pair: p, pixel: min(q &+ 5, last)); e.finish(a51, pair: p &+ 1, pixel: min(q &+ 5, last))
        e.finish(a60, pair: p, pixel: min(q &+ 6, last)); e.finish(a61, pair: p &+ 1, pixel: min(q &+ 6, last))
        e.activate(pairs: p..<p &+ 2, from: q, through: min(q &+ 6, last))
        q &+= 7
    }
}

/// Pairs `p..<p + 2` (4 output blocks), 8 pixels per tile (the last tile repeats its
/// final pixel, writing the same values twice): 16 accumulators.
@inline(__always)
private func generalTiles8x2(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter, f1Start = f0Start + pairFilter
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    let skipsZeroRows = wideSkipsZeroRows(s, pairs: 2)
    let tapRow = s.kernelWidth &* cs &* 16
    while q <= last {
        // A tile inside one output row skips the tap rows that read zero padding rows.
        let (kyLo, kyHi) = skipsZeroRows ? liveTapRows(s, row: cursor.oy, lastRow: min(q &+ 7, last) / s.outputWidth)
                                         : (0, s.kernelHeight)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let o6 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 7, last: last)
        let o7 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)
        var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
        var a40 = b0, a41 = b1, a50 = b0, a51 = b1, a60 = b0, a61 = b1, a70 = b0, a71 = b1
        var f0 = f0Start, f1 = f1Start
        var block = x
        for cb in 0..<s.inputBlocks {
            // The padded channels of the last block are zero: skip them and their filter rows.
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 16
            f0 += kyLo &* tapRow; f1 += kyLo &* tapRow
            for ky in kyLo..<kyHi {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    for ci in 0..<live {
                        let w0 = compressor_load16(f0), w1 = compressor_load16(f1)
                        f0 += 16; f1 += 16
                        var v = t[o0 &+ ci]
                        a00 = compressor_fma16(a00, v, w0); a01 = compressor_fma16(a01, v, w1)
                        v = t[o1 &+ ci]
                        a10 = compressor_fma16(a10, v, w0); a11 = compressor_fma16(a11, v, w1)
                        v = t[o2 &+ ci]
                        a20 = compressor_fma16(a20, v, w0); a21 = compressor_fma16(a21, v, w1)
                        v = t[o3 &+ ci]
                        a30 = compressor_fma16(a30, v, w0); a31 = compressor_fma16(a31, v, w1)
                        v = t[o4 &+ ci]
                        a40 = compressor_fma16(a40, v, w0); a41 = compressor_fma16(a41, v, w1)
                        v = t[o5 &+ ci]
                        a50 = compressor_fma16(a50, v, w0); a51 = compressor_fma16(a51, v, w1)
                        v = t[o6 &+ ci]
                        a60 = compressor_fma16(a60, v, w0); a61 = compressor_fma16(a61, v, w1)
                        v = t[o7 &+ ci]
                        a70 = compressor_fma16(a70, v, w0); a71 = compressor_fma16(a71, v, w1)
                    }
                    f0 += skipped; f1 += skipped
                }
            }
            f0 += (s.kernelHeight &- kyHi) &* tapRow; f1 += (s.kernelHeight &- kyHi) &* tapRow
            block += blockStride
        }
        e.finish(a00, pair: p, pixel: q); e.finish(a01, pair: p &+ 1, pixel: q)
        e.finish(a10, pair: p, pixel: min(q &+ 1, last)); e.finish(a11, pair: p &+ 1, pixel: min(q &+ 1, last))
        e.finish(a20, pair: p, pixel: min(q &+ 2, last)); e.finish(a21, pair: p &+ 1, pixel: min(q &+ 2, last))
        e.finish(a30, pair: p, pixel: min(q &+ 3, last)); e.finish(a31, pair: p &+ 1, pixel: min(q &+ 3, last))
        e.finish(a40, pair: p, pixel: min(q &+ 4, last)); e.finish(a41, pair: p &+ 1, pixel: min(q &+ 4, last))
        e.finish(a50, pair: p, pixel: min(q &+ 5, last)); e.finish(a51, pair: p &+ 1, pixel: min(q &+ 5, last))
        e.finish(a60, pair: p, pixel: min(q &+ 6, last)); e.finish(a61, pair: p &+ 1, pixel: min(q &+ 6, last))
        e.finish(a70, pair: p, pixel: min(q &+ 7, last)); e.finish(a71, pair: p &+ 1, pixel: min(q &+ 7, last))
        e.activate(pairs: p..<p &+ 2, from: q, through: min(q &+ 7, last))
        q &+= 8
    }
}

/// Pairs `p..<p + 1` (2 output blocks), 8 pixels per tile (the last tile repeats its
/// final pixel, writing the same values twice): 8 accumulators.
@inline(__always)
private func generalTiles8x1(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    let skipsZeroRows = wideSkipsZeroRows(s, pairs: 1)
    let tapRow = s.kernelWidth &* cs &* 16
    while q <= last {
        // A tile inside one output row skips the tap rows that read zero padding rows.
        let (kyLo, kyHi) = skipsZeroRows ? liveTapRows(s, row: cursor.oy, lastRow: min(q &+ 7, last) / s.outputWidth)
                                         : (0, s.kernelHeight)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let o6 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 7, last: last)
        let o7 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load16(bias + p &* 16)
        var a00 = b0, a10 = b0, a20 = b0, a30 = b0, a40 = b0, a50 = b0, a60 = b0
        var a70 = b0
        var f0 = f0Start
        var block = x
        for cb in 0..<s.inputBlocks {
            // The padded channels of the last block are zero: skip them and their filter rows.
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 16
            f0 += kyLo &* tapRow
            for ky in kyLo..<kyHi {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    for ci in 0..<live {
                        let w0 = compressor_load16(f0)
                        f0 += 16
                        a00 = compressor_fma16(a00, t[o0 &+ ci], w0)
                        a10 = compressor_fma16(a10, t[o1 &+ ci], w0)
                        a20 = compressor_fma16(a20, t[o2 &+ ci], w0)
                        a30 = compressor_fma16(a30, t[o3 &+ ci], w0)
                        a40 = compressor_fma16(a40, t[o4 &+ ci], w0)
                        a50 = compressor_fma16(a50, t[o5 &+ ci], w0)
                        a60 = compressor_fma16(a60, t[o6 &+ ci], w0)
                        a70 = compressor_fma16(a70, t[o7 &+ ci], w0)
                    }
                    f0 += skipped
                }
            }
            f0 += (s.kernelHeight &- kyHi) &* tapRow
            block += blockStride
        }
        e.finish(a00, pair: p, pixel: q)
        e.finish(a10, pair: p, pixel: min(q &+ 1, last))
        e.finish(a20, pair: p, pixel: min(q &+ 2, last))
        e.finish(a30, pair: p, pixel: min(q &+ 3, last))
        e.finish(a40, pair: p, pixel: min(q &+ 4, last))
        e.finish(a50, pair: p, pixel: min(q &+ 5, last))
        e.finish(a60, pair: p, pixel: min(q &+ 6, last))
        e.finish(a70, pair: p, pixel: min(q &+ 7, last))
        e.activate(pairs: p..<p &+ 1, from: q, through: min(q &+ 7, last))
        q &+= 8
    }
}

/// Pairs `p..<p + 1` (2 output blocks), 7 pixels per tile (the last tile repeats its
/// final pixel, writing the same values twice): 7 accumulators.
@inline(__always)
private func generalTiles7x1(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    let skipsZeroRows = wideSkipsZeroRows(s, pairs: 1)
    let tapRow = s.kernelWidth &* cs &* 16
    while q <= last {
        // A tile inside one output row skips the tap rows that read zero padding rows.
        let (kyLo, kyHi) = skipsZeroRows ? liveTapRows(s, row: cursor.oy, lastRow: min(q &+ 6, last) / s.outputWidth)
                                         : (0, s.kernelHeight)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let o6 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load16(bias + p &* 16)
        var a00 = b0, a10 = b0, a20 = b0, a30 = b0, a40 = b0, a50 = b0, a60 = b0
        var f0 = f0Start
        var block = x
        for cb in 0..<s.inputBlocks {
            // The padded channels of the last block are zero: skip them and their filter rows.
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 16
            f0 += kyLo &* tapRow
            for ky in kyLo..<kyHi {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    for ci in 0..<live {
                        let w0 = compressor_load16(f0)
                        f0 += 16
                        a00 = compressor_fma16(a00, t[o0 &+ ci], w0)
                        a10 = compressor_fma16(a10, t[o1 &+ ci], w0)
                        a20 = compressor_fma16(a20, t[o2 &+ ci], w0)
                        a30 = compressor_fma16(a30, t[o3 &+ ci], w0)
                        a40 = compressor_fma16(a40, t[o4 &+ ci], w0)
                        a50 = compressor_fma16(a50, t[o5 &+ ci], w0)
                        a60 = compressor_fma16(a60, t[o6 &+ ci], w0)
                    }
                    f0 += skipped
                }
            }
            f0 += (s.kernelHeight &- kyHi) &* tapRow
            block += blockStride
        }
        e.finish(a00, pair: p, pixel: q)
        e.finish(a10, pair: p, pixel: min(q &+ 1, last))
        e.finish(a20, pair: p, pixel: min(q &+ 2, last))
        e.finish(a30, pair: p, pixel: min(q &+ 3, last))
        e.finish(a40, pair: p, pixel: min(q &+ 4, last))
        e.finish(a50, pair: p, pixel: min(q &+ 5, last))
        e.finish(a60, pair: p, pixel: min(q &+ 6, last))
        e.activate(pairs: p..<p &+ 1, from: q, through: min(q &+ 6, last))
        q &+= 7
    }
}

/// Output block `block` alone (one half of its pair's packed filter and bias), 8 pixels per
/// tile with 8-lane accumulators (the last tile repeats its final pixel).
@inline(__always)
private func halfTiles8(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                        _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {
    // Lanes 0-7 of pair block / 2 for an even block, lanes 8-15 for an odd one.
    let lane = block % 2 &* 8
    let f0Start = filter + (block / 2 &* s.filterBlockCount &* 2 &+ lane)
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    while q <= last {
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let o6 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 7, last: last)
        let o7 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load8(bias + (block / 2 &* 16 &+ lane))
        var a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0, a6 = b0, a7 = b0
        var f0 = f0Start
        var input = x
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 16
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = input + (ky &* rowStride &+ kx &* cs)
                    for ci in 0..<live {
                        let w0 = compressor_load8(f0)
                        f0 += 16
                        a0 = compressor_fma8(a0, t[o0 &+ ci], w0)
                        a1 = compressor_fma8(a1, t[o1 &+ ci], w0)
                        a2 = compressor_fma8(a2, t[o2 &+ ci], w0)
                        a3 = compressor_fma8(a3, t[o3 &+ ci], w0)
                        a4 = compressor_fma8(a4, t[o4 &+ ci], w0)
                        a5 = compressor_fma8(a5, t[o5 &+ ci], w0)
                        a6 = compressor_fma8(a6, t[o6 &+ ci], w0)
                        a7 = compressor_fma8(a7, t[o7 &+ ci], w0)
                    }
                    f0 += skipped
                }
            }
            input += blockStride
        }
        e.finish(a0, block: block, pixel: q)
        e.finish(a1, block: block, pixel: min(q &+ 1, last))
        e.finish(a2, block: block, pixel: min(q &+ 2, last))
        e.finish(a3, block: block, pixel: min(q &+ 3, last))
        e.finish(a4, block: block, pixel: min(q &+ 4, last))
        e.finish(a5, block: block, pixel: min(q &+ 5, last))
        e.finish(a6, block: block, pixel: min(q &+ 6, last))
        e.finish(a7, block: block, pixel: min(q &+ 7, last))
        e.activate(pairs: block / 2..<block / 2 &+ 1, from: q, through: min(q &+ 7, last))
        q &+= 8
    }
}

/// Output block `block` alone (one half of its pair's packed filter and bias), 7 pixels per
/// tile with 8-lane accumulators (the last tile repeats its final pixel).
@inline(__always)
private func halfTiles7(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                        _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {
    // Lanes 0-7 of pair block / 2 for an even block, lanes 8-15 for an odd one.
    let lane = block % 2 &* 8
    let f0Start = filter + (block / 2 &* s.filterBlockCount &* 2 &+ lane)
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let last = pixels.upperBound &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    let lastBlock = s.inputBlocks &- 1
    while q <= last {
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let o6 = cursor.offset(s, cs: cs)
        cursor.advance()
        let b0 = compressor_load8(bias + (block / 2 &* 16 &+ lane))
        var a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0, a6 = b0
        var f0 = f0Start
        var input = x
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 16
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = input + (ky &* rowStride &+ kx &* cs)
                    for ci in 0..<live {
                        let w0 = compressor_load8(f0)
                        f0 += 16
                        a0 = compressor_fma8(a0, t[o0 &+ ci], w0)
                        a1 = compressor_fma8(a1, t[o1 &+ ci], w0)
                        a2 = compressor_fma8(a2, t[o2 &+ ci], w0)
                        a3 = compressor_fma8(a3, t[o3 &+ ci], w0)
                        a4 = compressor_fma8(a4, t[o4 &+ ci], w0)
                        a5 = compressor_fma8(a5, t[o5 &+ ci], w0)
                        a6 = compressor_fma8(a6, t[o6 &+ ci], w0)
                    }
                    f0 += skipped
                }
            }
            input += blockStride
        }
        e.finish(a0, block: block, pixel: q)
        e.finish(a1, block: block, pixel: min(q &+ 1, last))
        e.finish(a2, block: block, pixel: min(q &+ 2, last))
        e.finish(a3, block: block, pixel: min(q &+ 3, last))
        e.finish(a4, block: block, pixel: min(q &+ 4, last))
        e.finish(a5, block: block, pixel: min(q &+ 5, last))
        e.finish(a6, block: block, pixel: min(q &+ 6, last))
        e.activate(pairs: block / 2..<block / 2 &+ 1, from: q, through: min(q &+ 6, last))
        q &+= 7
    }
}

// MARK: - 1x1 stride-1 convolution

// A GEMM whose rows are pixels (pixel q of every input block at offset 8q) and
// whose columns are output pairs. Tiles of 7 or 8 pixels x 2 pairs (as in the
// general tiles, the size that recomputes fewer pixels) or 14 pixels x 1 pair
// start from the bias and accumulate every input channel before one epilogue per
// vector. Tiles of 12 pixels x 2 pairs (24 accumulators) ran 1x1 convs at 7x7
// and 14x14 slower than the AVX2 kernel (more overlapped pixels). In this file with
// the general tiles because they share the epilogue: a debug build compiles file
// by file and would call `WideEpilogue.finish` out of line from another file.

/// Whether `wideConvolve` runs `s` over `pixels` with the pointwise tiles: a 1x1
/// kernel, stride 1 (output pixel `q` reads input pixel `q`), 8 channels per
/// input block and at least one tile of pixels.
@inline(__always)
func widePointwiseApplies(_ s: BlockedConvShape, _ pixels: Range<Int>) -> Bool {
    s.kernelHeight == 1 && s.kernelWidth == 1 && s.strideHeight == 1 && s.strideWidth == 1
        && s.channelsPerBlock == 8 && pixels.count >= 14
}

/// `wideConvolve` for `widePointwiseApplies` shapes.
func widePointwiseConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                           bias: UnsafePointer<Float>, _ e: WideEpilogue, blocks: Range<Int>, pixels: Range<Int>) {
    let eight = wideTilePixels(pixelCount: pixels.count) == 8
    var p = blocks.lowerBound / 2
    let pairsEnd = (blocks.upperBound + 1) / 2
    while p < pairsEnd {
        if let block = loneBlock(p, blocks) {
            halfTiles(s, input, filter, bias, e, block, pixels, eight: eight)
            p &+= 1
        } else if p &+ 1 < pairsEnd && loneBlock(p &+ 1, blocks) == nil {
            if eight { pointwise8x2(s, input, filter, bias, e, p, pixels) } else { pointwise7x2(s, input, filter, bias, e, p, pixels) }
            p &+= 2
        } else {
            pointwise14x1(s, input, filter, bias, e, p, pixels)
            p &+= 1
        }
    }
}

@inline(never)
private func pointwise7x2(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    pointwiseTiles7x2(s, x, filter, bias, e, p, pixels)
}

@inline(never)
private func pointwise8x2(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    pointwiseTiles8x2(s, x, filter, bias, e, p, pixels)
}

@inline(never)
private func pointwise14x1(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                           _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    pointwiseTiles14x1(s, x, filter, bias, e, p, pixels)
}

/// Pairs `p..<p + 2`, 7 pixels per tile over `pixels` (at least 7): 14 accumulators. The last
/// tile ends at the range's end, overlapping the one before: its overlapped pixels are computed
/// again from the same inputs and written again with the same values.
@inline(__always)
private func pointwiseTiles7x2(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                               _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter, f1Start = f0Start + pairFilter
    let blockStride = s.outputHeight &* s.outputWidth &* 8
    let lastBlock = s.inputBlocks &- 1
    let lastTile = pixels.upperBound &- 7
    var q = pixels.lowerBound
    while true {
        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)
        var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
        var a40 = b0, a41 = b1, a50 = b0, a51 = b1, a60 = b0, a61 = b1
        var f0 = f0Start, f1 = f1Start
        var t = x + q &* 8
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : 8
            for ci in 0..<live {
                let w0 = compressor_load16(f0), w1 = compressor_load16(f1)
                f0 += 16; f1 += 16
                var v = t[ci]
                a00 = compressor_fma16(a00, v, w0); a01 = compressor_fma16(a01, v, w1)
                v = t[8 &+ ci]
                a10 = compressor_fma16(a10, v, w0); a11 = compressor_fma16(a11, v, w1)
                v = t[16 &+ ci]
                a20 = compressor_fma16(a20, v, w0); a21 = compressor_fma16(a21, v, w1)
                v = t[24 &+ ci]
                a30 = compressor_fma16(a30, v, w0); a31 = compressor_fma16(a31, v, w1)
                v = t[32 &+ ci]
                a40 = compressor_fma16(a40, v, w0); a41 = compressor_fma16(a41, v, w1)
                v = t[40 &+ ci]
                a50 = compressor_fma16(a50, v, w0); a51 = compressor_fma16(a51, v, w1)
                v = t[48 &+ ci]
                a60 = compressor_fma16(a60, v, w0); a61 = compressor_fma16(a61, v, w1)
            }
            let skipped = (8 &- live) &* 16
            f0 += skipped; f1 += skipped
            t += blockStride
        }
        e.finish(a00, pair: p, pixel: q); e.finish(a01, pair: p &+ 1, pixel: q)
        e.finish(a10, pair: p, pixel: q &+ 1); e.finish(a11, pair: p &+ 1, pixel: q &+ 1)
        e.finish(a20, pair: p, pixel: q &+ 2); e.finish(a21, pair: p &+ 1, pixel: q &+ 2)
        e.finish(a30, pair: p, pixel: q &+ 3); e.finish(a31, pair: p &+ 1, pixel: q &+ 3)
        e.finish(a40, pair: p, pixel: q &+ 4); e.finish(a41, pair: p &+ 1, pixel: q &+ 4)
        e.finish(a50, pair: p, pixel: q &+ 5); e.finish(a51, pair: p &+ 1, pixel: q &+ 5)
        e.finish(a60, pair: p, pixel: q &+ 6); e.finish(a61, pair: p &+ 1, pixel: q &+ 6)
        e.activate(pairs: p..<p &+ 2, from: q, through: q &+ 6)
        if q == lastTile { break }
        q = min(q &+ 7, lastTile)
    }
}

/// Pairs `p..<p + 2`, 8 pixels per tile over `pixels` (at least 8): 16 accumulators. The last
/// tile ends at the range's end, overlapping the one before: its overlapped pixels are computed
/// again from the same inputs and written again with the same values.
@inline(__always)
private func pointwiseTiles8x2(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                               _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter, f1Start = f0Start + pairFilter
    let blockStride = s.outputHeight &* s.outputWidth &* 8
    let lastBlock = s.inputBlocks &- 1
    let lastTile = pixels.upperBound &- 8
    var q = pixels.lowerBound
    while true {
        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)
        var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
        var a40 = b0, a41 = b1, a50 = b0, a51 = b1, a60 = b0, a61 = b1, a70 = b0, a71 = b1
        var f0 = f0Start, f1 = f1Start
        var t = x + q &* 8
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : 8
            for ci in 0..<live {
                let w0 = compressor_load16(f0), w1 = compressor_load16(f1)
                f0 += 16; f1 += 16
                var v = t[ci]
                a00 = compressor_fma16(a00, v, w0); a01 = compressor_fma16(a01, v, w1)
                v = t[8 &+ ci]
                a10 = compressor_fma16(a10, v, w0); a11 = compressor_fma16(a11, v, w1)
                v = t[16 &+ ci]
                a20 = compressor_fma16(a20, v, w0); a21 = compressor_fma16(a21, v, w1)
                v = t[24 &+ ci]
                a30 = compressor_fma16(a30, v, w0); a31 = compressor_fma16(a31, v, w1)
                v = t[32 &+ ci]
                a40 = compressor_fma16(a40, v, w0); a41 = compressor_fma16(a41, v, w1)
                v = t[40 &+ ci]
                a50 = compressor_fma16(a50, v, w0); a51 = compressor_fma16(a51, v, w1)
                v = t[48 &+ ci]
                a60 = compressor_fma16(a60, v, w0); a61 = compressor_fma16(a61, v, w1)
                v = t[56 &+ ci]
                a70 = compressor_fma16(a70, v, w0); a71 = compressor_fma16(a71, v, w1)
            }
            let skipped = (8 &- live) &* 16
            f0 += skipped; f1 += skipped
            t += blockStride
        }
        e.finish(a00, pair: p, pixel: q); e.finish(a01, pair: p &+ 1, pixel: q)
        e.finish(a10, pair: p, pixel: q &+ 1); e.finish(a11, pair: p &+ 1, pixel: q &+ 1)
        e.finish(a20, pair: p, pixel: q &+ 2); e.finish(a21, pair: p &+ 1, pixel: q &+ 2)
        e.finish(a30, pair: p, pixel: q &+ 3); e.finish(a31, pair: p &+ 1, pixel: q &+ 3)
        e.finish(a40, pair: p, pixel: q &+ 4); e.finish(a41, pair: p &+ 1, pixel: q &+ 4)
        e.finish(a50, pair: p, pixel: q &+ 5); e.finish(a51, pair: p &+ 1, pixel: q &+ 5)
        e.finish(a60, pair: p, pixel: q &+ 6); e.finish(a61, pair: p &+ 1, pixel: q &+ 6)
        e.finish(a70, pair: p, pixel: q &+ 7); e.finish(a71, pair: p &+ 1, pixel: q &+ 7)
        e.activate(pairs: p..<p &+ 2, from: q, through: q &+ 7)
        if q == lastTile { break }
        q = min(q &+ 8, lastTile)
    }
}

/// Pairs `p..<p + 1`, 14 pixels per tile over `pixels` (at least 14): 14 accumulators. The last
/// tile ends at the range's end, overlapping the one before: its overlapped pixels are computed
/// again from the same inputs and written again with the same values.
@inline(__always)
private func pointwiseTiles14x1(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                                _ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {
    let pairFilter = s.filterBlockCount &* 2
    let f0Start = filter + p &* pairFilter
    let blockStride = s.outputHeight &* s.outputWidth &* 8
    let lastBlock = s.inputBlocks &- 1
    let lastTile = pixels.upperBound &- 14
    var q = pixels.lowerBound
    while true {
        let b0 = compressor_load16(bias + p &* 16)
        var a00 = b0, a10 = b0, a20 = b0, a30 = b0, a40 = b0, a50 = b0, a60 = b0
        var a70 = b0, a80 = b0, a90 = b0, a100 = b0, a110 = b0, a120 = b0, a130 = b0
        var f0 = f0Start
        var t = x + q &* 8
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : 8
            for ci in 0..<live {
                let w0 = compressor_load16(f0)
                f0 += 16
                a00 = compressor_fma16(a00, t[ci], w0)
                a10 = compressor_fma16(a10, t[8 &+ ci], w0)
                a20 = compressor_fma16(a20, t[16 &+ ci], w0)
                a30 = compressor_fma16(a30, t[24 &+ ci], w0)
                a40 = compressor_fma16(a40, t[32 &+ ci], w0)
                a50 = compressor_fma16(a50, t[40 &+ ci], w0)
                a60 = compressor_fma16(a60, t[48 &+ ci], w0)
                a70 = compressor_fma16(a70, t[56 &+ ci], w0)
                a80 = compressor_fma16(a80, t[64 &+ ci], w0)
                a90 = compressor_fma16(a90, t[72 &+ ci], w0)
                a100 = compressor_fma16(a100, t[80 &+ ci], w0)
                a110 = compressor_fma16(a110, t[88 &+ ci], w0)
                a120 = compressor_fma16(a120, t[96 &+ ci], w0)
                a130 = compressor_fma16(a130, t[104 &+ ci], w0)
            }
            let skipped = (8 &- live) &* 16
            f0 += skipped
            t += blockStride
        }
        e.finish(a00, pair: p, pixel: q)
        e.finish(a10, pair: p, pixel: q &+ 1)
        e.finish(a20, pair: p, pixel: q &+ 2)
        e.finish(a30, pair: p, pixel: q &+ 3)
        e.finish(a40, pair: p, pixel: q &+ 4)
        e.finish(a50, pair: p, pixel: q &+ 5)
        e.finish(a60, pair: p, pixel: q &+ 6)
        e.finish(a70, pair: p, pixel: q &+ 7)
        e.finish(a80, pair: p, pixel: q &+ 8)
        e.finish(a90, pair: p, pixel: q &+ 9)
        e.finish(a100, pair: p, pixel: q &+ 10)
        e.finish(a110, pair: p, pixel: q &+ 11)
        e.finish(a120, pair: p, pixel: q &+ 12)
        e.finish(a130, pair: p, pixel: q &+ 13)
        e.activate(pairs: p..<p &+ 1, from: q, through: q &+ 13)
        if q == lastTile { break }
        q = min(q &+ 14, lastTile)
    }
}
