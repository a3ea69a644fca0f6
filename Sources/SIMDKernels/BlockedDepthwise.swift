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
/// - Parameters:
///   - s: the geometry; `inputBlocks` equals `outputBlocks`, `channelsPerBlock` is 8.
///   - input: from `padDepthwiseImage`.
///   - filter: from `packBlockedDepthwiseFilter`.
///   - bias: `outputBlocks * 8` floats.
public func blockedDepthwiseConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                     clamp: BlockedClamp, blocks: Range<Int>) {
    let (kh, kw, sw) = (s.kernelHeight, s.kernelWidth, s.strideWidth)
    let (oh, ow, rowStride) = (s.outputHeight, s.outputWidth, s.paddedWidth &* 8)
    let pixelStep = sw &* 8
    for ob in blocks {
        let x = input + ob &* s.paddedHeight &* rowStride
        let f = filter + ob &* kh &* kw &* 8
        let b = load8(bias + ob &* 8)
        var y = output + ob &* oh &* ow &* 8
        for oy in 0..<oh {
            let row = x + oy &* s.strideHeight &* rowStride
            var ox = 0
            while ox &+ 4 <= ow {
                var a0 = b, a1 = b, a2 = b, a3 = b
                let p = row + ox &* pixelStep
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let t = p + (ky &* rowStride &+ kx &* 8)
                        let wv = load8(f + (ky &* kw &+ kx) &* 8)
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
            while ox < ow {
                var a = b
                let p = row + ox &* pixelStep
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        a = a.addingProduct(load8(p + (ky &* rowStride &+ kx &* 8)), load8(f + (ky &* kw &+ kx) &* 8))
                    }
                }
                store8(clamp.apply(a), y)
                y += 8
                ox &+= 1
            }
        }
    }
}
