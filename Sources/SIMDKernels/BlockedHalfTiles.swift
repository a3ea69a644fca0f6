// Tiles for a last output block with at most 4 real channels (12, 20, 28, 36,
// 44 ... output channels). The general tiles compute all 8 lanes of it, so 12
// outputs cost what 16 do; here its 4 live lanes of two pixels share one vector:
// the accumulator holds pixel p's channels in lanes 0-3 and pixel p'`s in
// lanes 4-7, the filter's 4 live lanes are loaded into both halves, and the
// input is the two pixels' broadcasts joined by one blend (the broadcasts the
// full blocks of the tile already load). Every FMA lane is then a real MAC.
//
// Compiled with AVX2 and FMA like the rest of this target: callers check
// `cpuSupportsBlockedKernels` first.

import CCPUFeatures

/// The output block `ob + count - 1` is the last one and has at most 4 real
/// channels, and the tile shapes below cover `count` blocks.
@inline(__always)
func halfTilesApply(_ s: BlockedConvShape, _ blocks: Range<Int>) -> Bool {
    s.lastOutputChannels <= 4 && blocks.upperBound == s.outputBlocks && blocks.count >= 2
}

/// Output blocks `blocks` (see `halfTilesApply`): full blocks by `full`, then a
/// tail of one full block and the half block (6 pixels) or two full blocks and
/// the half block (4 pixels).
func blockedHalfTileConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                             output: UnsafeMutablePointer<Float>, clamp: BlockedClamp,
                             blocks: Range<Int>, pixels: Range<Int>,
                             full: (Range<Int>) -> Void) {
    let tail = blocks.count % 2 == 0 ? 2 : 3
    let tailStart = blocks.upperBound &- tail
    if tailStart > blocks.lowerBound { full(blocks.lowerBound..<tailStart) }
    let cs = s.channelsPerBlock
    switch (tail, cs) {
    case (2, 8): fullAndHalf8(s, input, filter, bias, residual, output, clamp, tailStart, pixels)
    case (2, _): fullAndHalfAny(s, input, filter, bias, residual, output, clamp, tailStart, pixels)
    case (_, 8): twoFullAndHalf8(s, input, filter, bias, residual, output, clamp, tailStart, pixels)
    default: twoFullAndHalfAny(s, input, filter, bias, residual, output, clamp, tailStart, pixels)
    }
}

@inline(never)
private func fullAndHalf8(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                          _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    fullAndHalf(s, cs: 8, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func fullAndHalfAny(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                            _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    fullAndHalf(s, cs: s.channelsPerBlock, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func twoFullAndHalf8(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                             _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                             _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    twoFullAndHalf(s, cs: 8, x, filter, bias, residual, y, clamp, ob, pixels)
}

@inline(never)
private func twoFullAndHalfAny(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                               _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int,
                               _ pixels: Range<Int>) {
    twoFullAndHalf(s, cs: s.channelsPerBlock, x, filter, bias, residual, y, clamp, ob, pixels)
}

/// Residual and clamp for the two pixels of a packed half-block accumulator,
/// then their stores: lanes 0-3 to pixel `at0`, lanes 4-7 to `at1`; the padded
/// lanes 4-7 of each output vector start from zero (the padded bias, and zero
/// padded weights), as in the full tiles.
@inline(__always)
private func finishHalf(_ acc: SIMD8<Float>, _ residual: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ at0: Int, _ at1: Int, _ clamp: BlockedClamp) {
    let zero = SIMD8<Float>(repeating: 0)
    finish(compressor_join_halves(acc, zero), residual, y, at0, clamp)
    finish(compressor_upper_half_down(acc, zero), residual, y, at1, clamp)
}

/// Full block `ob` and half block `ob + 1`, 6 pixels at a time: 6 + 3
/// accumulators, 9 FMAs per input channel and tap, all lanes real.
@inline(__always)
private func fullAndHalf(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,
                         _ bias: UnsafePointer<Float>, _ residual: UnsafePointer<Float>?,
                         _ y: UnsafeMutablePointer<Float>, _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    let filterBlock = s.filterBlockCount
    let f0Start = filter + ob &* filterBlock, f1Start = f0Start + filterBlock
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let plane = s.outputHeight &* s.outputWidth
    let (y0, y1) = (ob &* plane &* 8, (ob &+ 1) &* plane &* 8)
    let last = pixels.upperBound &- 1
    let lastBlock = s.inputBlocks &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    while q <= last {
        let q1 = min(q &+ 1, last), q2 = min(q &+ 2, last), q3 = min(q &+ 3, last)
        let q4 = min(q &+ 4, last), q5 = min(q &+ 5, last)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let o4 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 5, last: last)
        let o5 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 6, last: last)
        let b0 = load8(bias + ob &* 8), h = compressor_load4_twice(bias + (ob &+ 1) &* 8)
        var a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0
        var h01 = h, h23 = h, h45 = h
        var f0 = f0Start, f1 = f1Start
        var block = x
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 8
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    let p0 = t + o0, p1 = t + o1, p2 = t + o2, p3 = t + o3, p4 = t + o4, p5 = t + o5
                    for ci in 0..<live {
                        let w0 = load8(f0), w1 = compressor_load4_twice(f1)
                        f0 += 8; f1 += 8
                        var u = SIMD8<Float>(repeating: p0[ci]), v = SIMD8<Float>(repeating: p1[ci])
                        a0 = a0.addingProduct(u, w0); a1 = a1.addingProduct(v, w0)
                        h01 = h01.addingProduct(compressor_join_halves(u, v), w1)
                        u = SIMD8<Float>(repeating: p2[ci]); v = SIMD8<Float>(repeating: p3[ci])
                        a2 = a2.addingProduct(u, w0); a3 = a3.addingProduct(v, w0)
                        h23 = h23.addingProduct(compressor_join_halves(u, v), w1)
                        u = SIMD8<Float>(repeating: p4[ci]); v = SIMD8<Float>(repeating: p5[ci])
                        a4 = a4.addingProduct(u, w0); a5 = a5.addingProduct(v, w0)
                        h45 = h45.addingProduct(compressor_join_halves(u, v), w1)
                    }
                    f0 += skipped; f1 += skipped
                }
            }
            block += blockStride
        }
        finish(a0, residual, y, y0 &+ q &* 8, clamp); finish(a1, residual, y, y0 &+ q1 &* 8, clamp)
        finish(a2, residual, y, y0 &+ q2 &* 8, clamp); finish(a3, residual, y, y0 &+ q3 &* 8, clamp)
        finish(a4, residual, y, y0 &+ q4 &* 8, clamp); finish(a5, residual, y, y0 &+ q5 &* 8, clamp)
        finishHalf(h01, residual, y, y1 &+ q &* 8, y1 &+ q1 &* 8, clamp)
        finishHalf(h23, residual, y, y1 &+ q2 &* 8, y1 &+ q3 &* 8, clamp)
        finishHalf(h45, residual, y, y1 &+ q4 &* 8, y1 &+ q5 &* 8, clamp)
        q &+= 6
    }
}

/// Full blocks `ob`, `ob + 1` and half block `ob + 2`, 4 pixels at a time: 8 + 2
/// accumulators, 10 FMAs per input channel and tap.
@inline(__always)
private func twoFullAndHalf(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>,
                            _ filter: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                            _ residual: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                            _ clamp: BlockedClamp, _ ob: Int, _ pixels: Range<Int>) {
    let filterBlock = s.filterBlockCount
    let f0Start = filter + ob &* filterBlock, f1Start = f0Start + filterBlock, f2Start = f1Start + filterBlock
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let plane = s.outputHeight &* s.outputWidth
    let (y0, y1, y2) = (ob &* plane &* 8, (ob &+ 1) &* plane &* 8, (ob &+ 2) &* plane &* 8)
    let last = pixels.upperBound &- 1
    let lastBlock = s.inputBlocks &- 1
    var q = pixels.lowerBound
    var cursor = PixelCursor(q, width: s.outputWidth)
    while q <= last {
        let q1 = min(q &+ 1, last), q2 = min(q &+ 2, last), q3 = min(q &+ 3, last)
        let o0 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 1, last: last)
        let o1 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 2, last: last)
        let o2 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 3, last: last)
        let o3 = cursor.offsetThenAdvance(s, cs: cs, next: q &+ 4, last: last)
        let b0 = load8(bias + ob &* 8), b1 = load8(bias + (ob &+ 1) &* 8)
        let h = compressor_load4_twice(bias + (ob &+ 2) &* 8)
        var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
        var h01 = h, h23 = h
        var f0 = f0Start, f1 = f1Start, f2 = f2Start
        var block = x
        for cb in 0..<s.inputBlocks {
            let live = cb == lastBlock ? s.lastBlockChannels : cs
            let skipped = (cs &- live) &* 8
            for ky in 0..<s.kernelHeight {
                for kx in 0..<s.kernelWidth {
                    let t = block + (ky &* rowStride &+ kx &* cs)
                    let p0 = t + o0, p1 = t + o1, p2 = t + o2, p3 = t + o3
                    for ci in 0..<live {
                        let w0 = load8(f0), w1 = load8(f1), w2 = compressor_load4_twice(f2)
                        f0 += 8; f1 += 8; f2 += 8
                        var u = SIMD8<Float>(repeating: p0[ci]), v = SIMD8<Float>(repeating: p1[ci])
                        a00 = a00.addingProduct(u, w0); a01 = a01.addingProduct(u, w1)
                        a10 = a10.addingProduct(v, w0); a11 = a11.addingProduct(v, w1)
                        h01 = h01.addingProduct(compressor_join_halves(u, v), w2)
                        u = SIMD8<Float>(repeating: p2[ci]); v = SIMD8<Float>(repeating: p3[ci])
                        a20 = a20.addingProduct(u, w0); a21 = a21.addingProduct(u, w1)
                        a30 = a30.addingProduct(v, w0); a31 = a31.addingProduct(v, w1)
                        h23 = h23.addingProduct(compressor_join_halves(u, v), w2)
                    }
                    f0 += skipped; f1 += skipped; f2 += skipped
                }
            }
            block += blockStride
        }
        finish(a00, residual, y, y0 &+ q &* 8, clamp); finish(a01, residual, y, y1 &+ q &* 8, clamp)
        finish(a10, residual, y, y0 &+ q1 &* 8, clamp); finish(a11, residual, y, y1 &+ q1 &* 8, clamp)
        finish(a20, residual, y, y0 &+ q2 &* 8, clamp); finish(a21, residual, y, y1 &+ q2 &* 8, clamp)
        finish(a30, residual, y, y0 &+ q3 &* 8, clamp); finish(a31, residual, y, y1 &+ q3 &* 8, clamp)
        finishHalf(h01, residual, y, y2 &+ q &* 8, y2 &+ q1 &* 8, clamp)
        finishHalf(h23, residual, y, y2 &+ q2 &* 8, y2 &+ q3 &* 8, clamp)
        q &+= 4
    }
}
