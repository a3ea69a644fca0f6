// The weight gradient of a 3x3 stride-1 conv by Winograd F(2x2, 3x3) (Lavin &
// Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016). The
// forward tile is `Y = Aᵀ [U ⊙ V] A` with `U = G g Gᵀ`, `V = Bᵀ d B`; its
// transpose gives `∂L/∂U = (A dY Aᵀ) ⊙ V` per tile and `∂L/∂g = Gᵀ (∂L/∂U) G`.
// Summed over tiles, `dU[ξ][o][c] = Σ_t (A dY_t Aᵀ)[ξ][o] · V[ξ][c][t]`: 16
// matrix products reducing over tiles, 16 multiply-adds per (tile, channel
// pair) instead of the direct gradient's 36. `dU` accumulates per worker in the
// Winograd domain; `addWinogradWeightGradient` maps it back once per step.

/// Tiles per chunk of the weight gradient: their transformed inputs and output
/// gradients (`16 · tiles · (C + O)` floats) stay within about 256 KB (L2), at
/// least 6 tiles.
func winogradGradientChunkTiles(_ s: BlockedConvShape) -> Int {
    max(6, 4096 / ((s.inputBlocks &+ s.outputBlocks) &* 8))
}

/// Floats of scratch one `winogradWeightGradient` call of shape `s` needs.
public func winogradWeightGradientScratchCount(_ s: BlockedConvShape) -> Int {
    WinogradTiling(s, chunk: winogradGradientChunkTiles(s)).scratchCount
}

/// Adds the Winograd-domain weight gradient of one image,
/// `dU[ξ][o][c] += Σ_t (A dY_t Aᵀ)[ξ][o] · (Bᵀ d_t B)[ξ][c]` over its 2x2 output
/// tiles `t` in row-major order (`A = [[1, 0], [1, 1], [1, -1], [0, -1]]`; output
/// pixels past an odd-sized map count as zero gradients), into `gradient`, laid
/// out as `packWinogradFilter` packs a forward filter: `[16][outputBlocks][inputBlocks·8][8]`
/// (`winogradFilterCount(outputs:inputs:)` floats). Entries of padded input
/// channels are left as they were. Each entry's sum runs over tiles in order.
///
/// - Parameters:
///   - s: a shape `winogradApplies` to.
///   - input: the padded image the forward conv read.
///   - outputGradient: `dY` in NCHW8c, `[outputBlocks][outputHeight·outputWidth][8]`.
///   - scratch: `winogradWeightGradientScratchCount(s)` floats.
public func winogradWeightGradient(_ s: BlockedConvShape, input: UnsafePointer<Float>,
                                   outputGradient: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>,
                                   scratch: UnsafeMutablePointer<Float>) {
    precondition(winogradApplies(s))
    let grid = WinogradTiling(s, chunk: winogradGradientChunkTiles(s))
    let (c8, o8, channels) = (grid.c8, grid.o8, grid.channels)
    let (vStride, yStride) = (grid.inputStride, grid.outputStride)
    let v = scratch, (y, edge) = grid.regions(scratch)
    var first = 0
    while first < grid.tiles {
        let count = min(grid.chunk, grid.tiles &- first)
        winogradInputTransform(s, input, first: first, count: count, tilesWide: grid.tilesWide, xiStride: vStride, v, edge)
        outputGradientTransform(s, outputGradient, first: first, count: count, tilesWide: grid.tilesWide,
                                xiStride: yStride, y)
        for xi in 0..<16 {
            let vx = UnsafePointer(v + xi &* vStride), yx = UnsafePointer(y + xi &* yStride)
            let gx = gradient + xi &* s.outputBlocks &* c8 &* 8
            var ob = 0
            while ob &+ 1 < s.outputBlocks {
                winogradGradientPairs(yx + ob &* 8, yx + (ob &+ 1) &* 8, tileStride: o8, vx, rowStride: c8,
                                      tiles: count, channels: channels, gx + ob &* c8 &* 8, gx + (ob &+ 1) &* c8 &* 8)
                ob &+= 2
            }
            if ob < s.outputBlocks {
                winogradGradientSingles(yx + ob &* 8, tileStride: o8, vx, rowStride: c8, tiles: count,
                                        channels: channels, gx + ob &* c8 &* 8)
            }
        }
        first &+= count
    }
}

/// `Y'[ξ][t][o] = (A dY_t Aᵀ)[ξ]` for tiles `first ..< first + count` and every
/// output block (planes ξ `xiStride` floats apart), 8 channels per vector; pixels
/// past the map are zero.
@inline(never)
func outputGradientTransform(_ s: BlockedConvShape, _ dY: UnsafePointer<Float>, first: Int, count: Int,
                             tilesWide: Int, xiStride: Int, _ y: UnsafeMutablePointer<Float>) {
    let (oh, ow) = (s.outputHeight, s.outputWidth)
    let o8 = s.outputBlocks &* 8
    let plane = oh &* ow &* 8
    let zero = SIMD8<Float>()
    for t in 0..<count {
        let (ty, tx) = (first &+ t).quotientAndRemainder(dividingBy: tilesWide)
        let (oy, ox) = (ty &* 2, tx &* 2)
        let (down, right) = (oy &+ 1 < oh, ox &+ 1 < ow)
        for ob in 0..<s.outputBlocks {
            let p = dY + (ob &* plane &+ (oy &* ow &+ ox) &* 8)
            let y00 = load8(p), y01 = right ? load8(p + 8) : zero
            let y10 = down ? load8(p + ow &* 8) : zero, y11 = down && right ? load8(p + (ow &+ 1) &* 8) : zero
            // A dY: rows (4 x 2).
            let r00 = y00, r01 = y01, r10 = y00 + y10, r11 = y01 + y11
            let r20 = y00 - y10, r21 = y01 - y11, r30 = zero - y10, r31 = zero - y11
            // (A dY) Aᵀ: row i gives ξ = 4i ..< 4i + 4.
            let out = y + (t &* o8 &+ ob &* 8)
            storeGradientRow(r00, r01, out, xiStride)
            storeGradientRow(r10, r11, out + 4 &* xiStride, xiStride)
            storeGradientRow(r20, r21, out + 8 &* xiStride, xiStride)
            storeGradientRow(r30, r31, out + 12 &* xiStride, xiStride)
        }
    }
}

/// One row `(a0, a0 + a1, a0 - a1, -a1)` of `(A dY) Aᵀ`, its vectors `xiStride` floats apart.
@inline(__always)
private func storeGradientRow(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ out: UnsafeMutablePointer<Float>,
                              _ xiStride: Int) {
    store8(a0, out)
    store8(a0 + a1, out + xiStride)
    store8(a0 - a1, out + 2 &* xiStride)
    store8(SIMD8<Float>() - a1, out + 3 &* xiStride)
}

/// `dU[ob, ob+1][c] += Σ_t Y'[t][ob, ob+1] · V[t][c]` for one filter position,
/// 6 input channels at a time (12 accumulators loaded from and stored back to
/// `dU`; a last group of fewer repeats its final channel, storing the same value twice).
@inline(never)
func winogradGradientPairs(_ y0: UnsafePointer<Float>, _ y1: UnsafePointer<Float>, tileStride: Int,
                           _ v: UnsafePointer<Float>, rowStride: Int, tiles: Int, channels: Int,
                           _ g0: UnsafeMutablePointer<Float>, _ g1: UnsafeMutablePointer<Float>) {
    let last = channels &- 1
    var c = 0
    while c <= last {
        let c0 = c, c1 = min(c &+ 1, last), c2 = min(c &+ 2, last)
        let c3 = min(c &+ 3, last), c4 = min(c &+ 4, last), c5 = min(c &+ 5, last)
        var a00 = load8(g0 + c0 &* 8), a01 = load8(g1 + c0 &* 8), a10 = load8(g0 + c1 &* 8), a11 = load8(g1 + c1 &* 8)
        var a20 = load8(g0 + c2 &* 8), a21 = load8(g1 + c2 &* 8), a30 = load8(g0 + c3 &* 8), a31 = load8(g1 + c3 &* 8)
        var a40 = load8(g0 + c4 &* 8), a41 = load8(g1 + c4 &* 8), a50 = load8(g0 + c5 &* 8), a51 = load8(g1 + c5 &* 8)
        var p0 = y0, p1 = y1, q = v
        for _ in 0..<tiles {
            let w0 = load8(p0), w1 = load8(p1)
            p0 += tileStride; p1 += tileStride
            var b = SIMD8<Float>(repeating: q[c0])
            a00 = a00.addingProduct(b, w0); a01 = a01.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: q[c1])
            a10 = a10.addingProduct(b, w0); a11 = a11.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: q[c2])
            a20 = a20.addingProduct(b, w0); a21 = a21.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: q[c3])
            a30 = a30.addingProduct(b, w0); a31 = a31.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: q[c4])
            a40 = a40.addingProduct(b, w0); a41 = a41.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: q[c5])
            a50 = a50.addingProduct(b, w0); a51 = a51.addingProduct(b, w1)
            q += rowStride
        }
        store8(a00, g0 + c0 &* 8); store8(a01, g1 + c0 &* 8); store8(a10, g0 + c1 &* 8); store8(a11, g1 + c1 &* 8)
        store8(a20, g0 + c2 &* 8); store8(a21, g1 + c2 &* 8); store8(a30, g0 + c3 &* 8); store8(a31, g1 + c3 &* 8)
        store8(a40, g0 + c4 &* 8); store8(a41, g1 + c4 &* 8); store8(a50, g0 + c5 &* 8); store8(a51, g1 + c5 &* 8)
        c &+= 6
    }
}

/// `winogradGradientPairs` for one output block (the last of an odd count).
@inline(never)
func winogradGradientSingles(_ y0: UnsafePointer<Float>, tileStride: Int, _ v: UnsafePointer<Float>, rowStride: Int,
                             tiles: Int, channels: Int, _ g0: UnsafeMutablePointer<Float>) {
    let last = channels &- 1
    var c = 0
    while c <= last {
        let c0 = c, c1 = min(c &+ 1, last), c2 = min(c &+ 2, last)
        let c3 = min(c &+ 3, last), c4 = min(c &+ 4, last), c5 = min(c &+ 5, last)
        var a0 = load8(g0 + c0 &* 8), a1 = load8(g0 + c1 &* 8), a2 = load8(g0 + c2 &* 8)
        var a3 = load8(g0 + c3 &* 8), a4 = load8(g0 + c4 &* 8), a5 = load8(g0 + c5 &* 8)
        var p0 = y0, q = v
        for _ in 0..<tiles {
            let w0 = load8(p0)
            p0 += tileStride
            a0 = a0.addingProduct(SIMD8<Float>(repeating: q[c0]), w0)
            a1 = a1.addingProduct(SIMD8<Float>(repeating: q[c1]), w0)
            a2 = a2.addingProduct(SIMD8<Float>(repeating: q[c2]), w0)
            a3 = a3.addingProduct(SIMD8<Float>(repeating: q[c3]), w0)
            a4 = a4.addingProduct(SIMD8<Float>(repeating: q[c4]), w0)
            a5 = a5.addingProduct(SIMD8<Float>(repeating: q[c5]), w0)
            q += rowStride
        }
        store8(a0, g0 + c0 &* 8); store8(a1, g0 + c1 &* 8); store8(a2, g0 + c2 &* 8)
        store8(a3, g0 + c3 &* 8); store8(a4, g0 + c4 &* 8); store8(a5, g0 + c5 &* 8)
        c &+= 6
    }
}

/// Adds `Gᵀ dU G` (Lavin & Gray 2016; `Gᵀ = [[1, ½, ½, 0], [0, ½, -½, 0], [0, ½, ½, 1]]`)
/// of a Winograd-domain gradient `winogradWeightGradient` accumulated into the plain
/// `[outChannels][inChannels][3][3]` weight gradient, 8 output channels per vector
/// in a fixed order.
public func addWinogradWeightGradient(_ packed: UnsafePointer<Float>, outChannels: Int, inChannels: Int,
                                      into gradient: UnsafeMutablePointer<Float>) {
    let outBlocks = (outChannels + 7) / 8, rows = (inChannels + 7) / 8 * 8
    let xiStride = outBlocks &* rows &* 8
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * 8) { buffer in
        let g = buffer.baseAddress!
        let half = SIMD8<Float>(repeating: 0.5)
        for ob in 0..<outBlocks {
            let live = min(8, outChannels &- ob &* 8)
            for c in 0..<inChannels {
                let p = packed + (ob &* rows &+ c) &* 8
                // Gᵀ dU: rows combined, one column (j) at a time.
                let (t00, t10, t20) = gradientColumn(p, xiStride, half)
                let (t01, t11, t21) = gradientColumn(p + xiStride, xiStride, half)
                let (t02, t12, t22) = gradientColumn(p + 2 &* xiStride, xiStride, half)
                let (t03, t13, t23) = gradientColumn(p + 3 &* xiStride, xiStride, half)
                // (Gᵀ dU) G: row i gives taps 3i ..< 3i + 3.
                storeTapRow(t00, t01, t02, t03, half, g)
                storeTapRow(t10, t11, t12, t13, half, g + 24)
                storeTapRow(t20, t21, t22, t23, half, g + 48)
                for lane in 0..<live {
                    let target = gradient + ((ob &* 8 &+ lane) &* inChannels &+ c) &* 9
                    for k in 0..<9 { target[k] += g[k &* 8 &+ lane] }
                }
            }
        }
    }
}

/// Column `j` of `Gᵀ dU` from rows `dU[j]`, `dU[4 + j]`, `dU[8 + j]`, `dU[12 + j]`.
@inline(__always)
private func gradientColumn(_ p: UnsafePointer<Float>, _ xiStride: Int, _ half: SIMD8<Float>)
    -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    let m0 = load8(p), m1 = load8(p + 4 &* xiStride), m2 = load8(p + 8 &* xiStride), m3 = load8(p + 12 &* xiStride)
    let inner = (m1 + m2) * half
    return (m0 + inner, (m1 - m2) * half, inner + m3)
}

/// Taps `(a0 + ½(a1 + a2), ½(a1 - a2), ½(a1 + a2) + a3)` of one row of `(Gᵀ dU) G`, stored 8 floats apart.
@inline(__always)
private func storeTapRow(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ a3: SIMD8<Float>,
                         _ half: SIMD8<Float>, _ out: UnsafeMutablePointer<Float>) {
    let inner = (a1 + a2) * half
    store8(a0 + inner, out)
    store8((a1 - a2) * half, out + 8)
    store8(inner + a3, out + 16)
}
