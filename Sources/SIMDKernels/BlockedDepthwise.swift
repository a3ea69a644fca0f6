// Depthwise convolution over NCHW8c maps, any depth multiplier: 8 output
// channels are one vector, each multiplied by the matching lanes of its input
// channels. The input is first copied into a zero-padded image with the output
// channels' layout (lane i of block b holds input channel (8b + i) / multiplier),
// so the inner loop is loads and FMAs only, 4 pixels of a row at a time (for
// multiplier 2 from a blocked input the copy is one lane shuffle per pixel).
//
// Compiled with AVX2 and FMA like the rest of this target: callers check
// `cpuSupportsBlockedKernels` first.

/// Packs depthwise weights `[O, 1, kh, kw]` as `[O/8][kh][kw][8]`, zero in padded channels.
public func packBlockedDepthwiseFilter(_ weight: UnsafePointer<Float>, outChannels: Int,
                                       kernelHeight kh: Int, kernelWidth kw: Int) -> [Float] {
    let blocks = (outChannels + 7) / 8
    var packed = [Float](repeating: 0, count: blocks * kh * kw * 8)
    for o in 0..<outChannels {
        for tap in 0..<kh * kw {
            packed[((o / 8) * kh * kw + tap) * 8 + o % 8] = weight[o * kh * kw + tap]
        }
    }
    return packed
}

/// Copies one image into the padded input of `blockedDepthwiseConvolve`:
/// `[outputBlocks][h + top + bottom][w + left + right][8]`, lane `i` of block `b`
/// holding input channel `(8b + i) / multiplier`, zeros in the halo and in padded channels.
/// `blocked` says whether `x` is NCHW8c or plain NCHW.
public func padDepthwiseImage(_ x: UnsafePointer<Float>, blocked: Bool, inChannels: Int, multiplier: Int,
                              h: Int, w: Int, top: Int, left: Int, bottom: Int, right: Int,
                              _ y: UnsafeMutablePointer<Float>) {
    if multiplier == 1 {
        padImage(x, blocked: blocked, channels: inChannels, h: h, w: w, top: top, left: left, bottom: bottom,
                 right: right, channelsPerBlock: 8, y)
        return
    }
    let (hp, wp) = (h &+ top &+ bottom, w &+ left &+ right)
    let outChannels = inChannels &* multiplier
    let blocks = (outChannels &+ 7) / 8
    y.update(repeating: 0, count: blocks &* hp &* wp &* 8)
    var first = 0
    if multiplier == 2 && blocked {
        // Output block b holds input channels 4b..<4b + 4, lanes 0-3 or 4-7 of input
        // block b / 2, each twice: one shuffle per pixel instead of 8 scalar copies.
        let wholeBlocks = outChannels / 8
        for ob in 0..<wholeBlocks {
            let src = x + (ob / 2) &* h &* w &* 8
            let plane = y + ob &* hp &* wp &* 8
            let upper = ob % 2 == 1
            for row in 0..<h {
                let s = src + row &* w &* 8
                let d = plane + ((row &+ top) &* wp &+ left) &* 8
                if upper {
                    for i in 0..<w { store8(duplicatingLanes4to7(load8(s + i &* 8)), d + i &* 8) }
                } else {
                    for i in 0..<w { store8(duplicatingLanes0to3(load8(s + i &* 8)), d + i &* 8) }
                }
            }
        }
        first = wholeBlocks &* 8
    }
    for o in first..<outChannels {
        let c = o / multiplier
        // Element (row, column) of input channel c is src[(row * w + column) * step].
        let step = blocked ? 8 : 1
        let srcOffset: Int = blocked ? (c / 8) &* h &* w &* 8 &+ c % 8 : c &* h &* w
        let planeOffset: Int = (o / 8) &* hp &* wp &* 8 &+ o % 8
        let src = x + srcOffset, plane = y + planeOffset
        for row in 0..<h {
            let s = src + row &* w &* step
            let d = plane + ((row &+ top) &* wp &+ left) &* 8
            for i in 0..<w { d[i &* 8] = s[i &* step] }
        }
    }
}

/// `(v0, v0, v1, v1, v2, v2, v3, v3)`.
@inline(__always)
private func duplicatingLanes0to3(_ v: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8<Float>(v[0], v[0], v[1], v[1], v[2], v[2], v[3], v[3])
}

/// `(v4, v4, v5, v5, v6, v6, v7, v7)`.
@inline(__always)
private func duplicatingLanes4to7(_ v: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8<Float>(v[4], v[4], v[5], v[5], v[6], v[6], v[7], v[7])
}

/// Output blocks `blocks` of one image's depthwise convolution:
/// `y = clamp(conv(x) + bias)`, NCHW8c `[outputBlocks][outputHeight * outputWidth][8]`.
///
/// The input is read where it is: either the image from `padDepthwiseImage`
/// (`height`, `width` its padded size, `top` and `left` 0), or, for a depth
/// multiplier of 1, the blocked input itself with its padding (`top`, `left`)
/// handled by skipping the taps that fall outside it, so no padded copy is made.
/// Per output pixel the products are summed onto the bias in tap order (ky,
/// then kx) either way; a skipped tap would have added a zero.
///
/// - Parameters:
///   - s: the geometry; `inputBlocks` equals `outputBlocks`, `channelsPerBlock` is 8.
///   - input: `[outputBlocks][height][width][8]`, lane `i` of block `b` the input
///     channel of output channel `8b + i`.
///   - filter: from `packBlockedDepthwiseFilter`.
///   - bias: `outputBlocks * 8` floats.
public func blockedDepthwiseConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, height h: Int, width w: Int,
                                     top: Int, left: Int, filter: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                     clamp: BlockedClamp, blocks: Range<Int>) {
    let (kh, kw, sh, sw) = (s.kernelHeight, s.kernelWidth, s.strideHeight, s.strideWidth)
    let (oh, ow, rowStride) = (s.outputHeight, s.outputWidth, w &* 8)
    // Output columns whose taps all lie inside the row.
    let first = min(ow, (left &+ sw &- 1) / sw)
    let last = max(first, min(ow, w &+ left &- kw >= 0 ? (w &+ left &- kw) / sw &+ 1 : 0))
    // Rows of 7 pixels (7x7 maps) whose edge pixels miss at most their outer tap
    // go as one tile of 7 accumulators.
    let rowsOf7 = kw == 3 && ow == 7 && (sw == 1 || sw == 2) && (first == 0 || (first == 1 && left == 1))
        && (last == 7 || (last == 6 && 6 &* sw &- left &+ 2 == w))
    for ob in blocks {
        let x = input + ob &* h &* rowStride
        let f = filter + ob &* kh &* kw &* 8
        let b = load8(bias + ob &* 8)
        var y = output + ob &* oh &* ow &* 8
        for oy in 0..<oh {
            let iy = oy &* sh &- top
            let kyLow = max(0, -iy), kyHigh = min(kh, h &- iy)
            let rows = max(0, kyHigh &- kyLow)
            let rowTaps = f + kyLow &* kw &* 8
            let firstRow = x + max(0, iy &+ kyLow) &* rowStride
            if rowsOf7 {
                depthwise3Row7(firstRow - left &* 8, rowStride: rowStride, rowTaps, rows: rows, stride: sw,
                               skipsFirst: first == 1, skipsLast: last == 6, b, clamp, &y)
                continue
            }
            for ox in 0..<first {
                edgePixel(firstRow, rowStride: rowStride, rowTaps, rows: rows, kw: kw, column: ox &* sw &- left, width: w,
                          b, clamp, &y)
            }
            var ox = first
            if kw == 3 && (sw == 1 || sw == 2) {
                ox &+= depthwise3TapTiles(firstRow + (ox &* sw &- left) &* 8, rowStride: rowStride, rowTaps, rows: rows,
                                          stride: sw, b, clamp, pixels: last &- ox, &y)
            }
            while ox &+ 4 <= last {
                let p = firstRow + (ox &* sw &- left) &* 8
                let pixelStep = sw &* 8
                var a0 = b, a1 = b, a2 = b, a3 = b
                for r in 0..<rows {
                    for kx in 0..<kw {
                        let t = p + (r &* rowStride &+ kx &* 8)
                        let wv = load8(rowTaps + (r &* kw &+ kx) &* 8)
                        a0 = a0.addingProduct(load8(t), wv)
                        a1 = a1.addingProduct(load8(t + pixelStep), wv)
                        a2 = a2.addingProduct(load8(t + 2 &* pixelStep), wv)
                        a3 = a3.addingProduct(load8(t + 3 &* pixelStep), wv)
                    }
                }
                store8(clamp.apply(a0), y); store8(clamp.apply(a1), y + 8)
                store8(clamp.apply(a2), y + 16); store8(clamp.apply(a3), y + 24)
                y += 32
                ox &+= 4
            }
            while ox < last {
                let p = firstRow + (ox &* sw &- left) &* 8
                var a = b
                for r in 0..<rows {
                    for kx in 0..<kw {
                        a = a.addingProduct(load8(p + (r &* rowStride &+ kx &* 8)), load8(rowTaps + (r &* kw &+ kx) &* 8))
                    }
                }
                store8(clamp.apply(a), y)
                y += 8
                ox &+= 1
            }
            for ox in max(first, last)..<ow {
                edgePixel(firstRow, rowStride: rowStride, rowTaps, rows: rows, kw: kw, column: ox &* sw &- left, width: w,
                          b, clamp, &y)
            }
        }
    }
}

/// One output pixel whose taps start at input column `column` (possibly
/// negative) and may pass either edge of the row: only the taps inside are summed.
@inline(__always)
private func edgePixel(_ firstRow: UnsafePointer<Float>, rowStride: Int, _ rowTaps: UnsafePointer<Float>, rows: Int,
                       kw: Int, column: Int, width: Int, _ b: SIMD8<Float>, _ clamp: BlockedClamp,
                       _ y: inout UnsafeMutablePointer<Float>) {
    let kxLow = max(0, -column), kxHigh = min(kw, width &- column)
    var a = b
    for r in 0..<rows {
        for kx in kxLow..<max(kxLow, kxHigh) {
            a = a.addingProduct(load8(firstRow + (r &* rowStride &+ (column &+ kx) &* 8)), load8(rowTaps + (r &* kw &+ kx) &* 8))
        }
    }
    store8(clamp.apply(a), y)
    y += 8
}

// Rows of 3 taps (MobileNet's 3x3 depthwise layers): each input vector of a
// filter row is loaded once and multiplied into every output pixel of the tile
// that reads it (8 pixels at stride 1: 10 loads for 24 FMAs per filter row,
// against 24 + 24 one pixel at a time); the sums keep the tap order.

/// Whole tiles of `count` interior output pixels of one row (stride 1: tiles
/// of 8, then one of 4; stride 2: tiles of 4), `p` at the first pixel's first
/// tap in the first valid filter row; returns the pixels done.
@inline(__always)
private func depthwise3TapTiles(_ p: UnsafePointer<Float>, rowStride: Int, _ rowTaps: UnsafePointer<Float>, rows: Int,
                                stride: Int, _ b: SIMD8<Float>, _ clamp: BlockedClamp, pixels count: Int,
                                _ y: inout UnsafeMutablePointer<Float>) -> Int {
    var done = 0
    if stride == 1 {
        while done &+ 8 <= count {
            var a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b
            for r in 0..<rows {
                let q = p + (r &* rowStride &+ done &* 8)
                let w = rowTaps + r &* 24
                let (w0, w1, w2) = (load8(w), load8(w + 8), load8(w + 16))
                let x0 = load8(q), x1 = load8(q + 8), x2 = load8(q + 16), x3 = load8(q + 24), x4 = load8(q + 32)
                let x5 = load8(q + 40), x6 = load8(q + 48), x7 = load8(q + 56), x8 = load8(q + 64), x9 = load8(q + 72)
                a0 = a0.addingProduct(x0, w0).addingProduct(x1, w1).addingProduct(x2, w2)
                a1 = a1.addingProduct(x1, w0).addingProduct(x2, w1).addingProduct(x3, w2)
                a2 = a2.addingProduct(x2, w0).addingProduct(x3, w1).addingProduct(x4, w2)
                a3 = a3.addingProduct(x3, w0).addingProduct(x4, w1).addingProduct(x5, w2)
                a4 = a4.addingProduct(x4, w0).addingProduct(x5, w1).addingProduct(x6, w2)
                a5 = a5.addingProduct(x5, w0).addingProduct(x6, w1).addingProduct(x7, w2)
                a6 = a6.addingProduct(x6, w0).addingProduct(x7, w1).addingProduct(x8, w2)
                a7 = a7.addingProduct(x7, w0).addingProduct(x8, w1).addingProduct(x9, w2)
            }
            store8(clamp.apply(a0), y); store8(clamp.apply(a1), y + 8)
            store8(clamp.apply(a2), y + 16); store8(clamp.apply(a3), y + 24)
            store8(clamp.apply(a4), y + 32); store8(clamp.apply(a5), y + 40)
            store8(clamp.apply(a6), y + 48); store8(clamp.apply(a7), y + 56)
            y += 64
            done &+= 8
        }
        if done &+ 4 <= count {
            var a0 = b, a1 = b, a2 = b, a3 = b
            for r in 0..<rows {
                let q = p + (r &* rowStride &+ done &* 8)
                let w = rowTaps + r &* 24
                let (w0, w1, w2) = (load8(w), load8(w + 8), load8(w + 16))
                let x0 = load8(q), x1 = load8(q + 8), x2 = load8(q + 16), x3 = load8(q + 24), x4 = load8(q + 32)
                let x5 = load8(q + 40)
                a0 = a0.addingProduct(x0, w0).addingProduct(x1, w1).addingProduct(x2, w2)
                a1 = a1.addingProduct(x1, w0).addingProduct(x2, w1).addingProduct(x3, w2)
                a2 = a2.addingProduct(x2, w0).addingProduct(x3, w1).addingProduct(x4, w2)
                a3 = a3.addingProduct(x3, w0).addingProduct(x4, w1).addingProduct(x5, w2)
            }
            store8(clamp.apply(a0), y); store8(clamp.apply(a1), y + 8)
            store8(clamp.apply(a2), y + 16); store8(clamp.apply(a3), y + 24)
            y += 32
            done &+= 4
        }
        return done
    }
    while done &+ 4 <= count {
        var a0 = b, a1 = b, a2 = b, a3 = b
        for r in 0..<rows {
            let q = p + (r &* rowStride &+ done &* 16)
            let w = rowTaps + r &* 24
            let (w0, w1, w2) = (load8(w), load8(w + 8), load8(w + 16))
            let x0 = load8(q), x1 = load8(q + 8), x2 = load8(q + 16), x3 = load8(q + 24), x4 = load8(q + 32)
            let x5 = load8(q + 40), x6 = load8(q + 48), x7 = load8(q + 56), x8 = load8(q + 64)
            a0 = a0.addingProduct(x0, w0).addingProduct(x1, w1).addingProduct(x2, w2)
            a1 = a1.addingProduct(x2, w0).addingProduct(x3, w1).addingProduct(x4, w2)
            a2 = a2.addingProduct(x4, w0).addingProduct(x5, w1).addingProduct(x6, w2)
            a3 = a3.addingProduct(x6, w0).addingProduct(x7, w1).addingProduct(x8, w2)
        }
        store8(clamp.apply(a0), y); store8(clamp.apply(a1), y + 8)
        store8(clamp.apply(a2), y + 16); store8(clamp.apply(a3), y + 24)
        y += 32
        done &+= 4
    }
    return done
}

/// One output row of 7 pixels, 3 taps per filter row, at stride 1 or 2, `p` at
/// the first pixel's first tap (a column left of the row when `skipsFirst`):
/// 7 accumulators, so the FMA chains of a row run side by side. With `skipsFirst`
/// the first pixel skips its first tap (the padding), with `skipsLast` the last
/// pixel its third; the sums keep the tap order of `edgePixel` and the tiles.
@inline(__always)
private func depthwise3Row7(_ p: UnsafePointer<Float>, rowStride: Int, _ rowTaps: UnsafePointer<Float>, rows: Int,
                            stride: Int, skipsFirst: Bool, skipsLast: Bool, _ b: SIMD8<Float>, _ clamp: BlockedClamp,
                            _ y: inout UnsafeMutablePointer<Float>) {
    var a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b
    let step = stride &* 8
    for r in 0..<rows {
        let q = p + r &* rowStride
        let w = rowTaps + r &* 24
        let (w0, w1, w2) = (load8(w), load8(w + 8), load8(w + 16))
        if skipsFirst {
            a0 = a0.addingProduct(load8(q + 8), w1).addingProduct(load8(q + 16), w2)
        } else {
            a0 = a0.addingProduct(load8(q), w0).addingProduct(load8(q + 8), w1).addingProduct(load8(q + 16), w2)
        }
        var t = q + step
        a1 = a1.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1).addingProduct(load8(t + 16), w2)
        t += step
        a2 = a2.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1).addingProduct(load8(t + 16), w2)
        t += step
        a3 = a3.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1).addingProduct(load8(t + 16), w2)
        t += step
        a4 = a4.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1).addingProduct(load8(t + 16), w2)
        t += step
        a5 = a5.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1).addingProduct(load8(t + 16), w2)
        t += step
        if skipsLast {
            a6 = a6.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1)
        } else {
            a6 = a6.addingProduct(load8(t), w0).addingProduct(load8(t + 8), w1).addingProduct(load8(t + 16), w2)
        }
    }
    store8(clamp.apply(a0), y); store8(clamp.apply(a1), y + 8); store8(clamp.apply(a2), y + 16)
    store8(clamp.apply(a3), y + 24); store8(clamp.apply(a4), y + 32); store8(clamp.apply(a5), y + 40)
    store8(clamp.apply(a6), y + 48)
    y += 56
}
