// Winograd F(2x2, 3x3) convolution over channel-blocked feature maps (NCHW8c),
// after Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
// (CVPR 2016): a 2x2 output tile of a 3x3 stride-1 conv is
// `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for its 4x4 input window `d`, so each
// (input, output) channel pair costs 16 multiply-adds per tile instead of 36.
// Summed over input channels, the 16 element-wise products of one tile are 16
// independent matrix products `M[ξ][o][t] = Σ_c U[ξ][o][c] V[ξ][c][t]`, run here
// with the register tiles of the direct conv (`BlockedConv.swift`): 2 output
// blocks x 6 tiles in 12 accumulators, the 8 output channels of one filter
// position a vector, the transformed input of one (tile, channel) a broadcast.
//
// The same code serves the `avx2` and `avx512` kernel sets (so the two give the
// same bytes); the portable set never calls it. Compiled with AVX2 and FMA:
// callers check `cpuSupportsBlockedKernels` first.

import CCPUFeatures

/// Output tiles (2x2 pixels each) transformed, multiplied and transformed back
/// together: their transformed inputs of one filter position (`tiles x C`
/// floats) and the filter position's packed weights for two output blocks stay
/// in L1 while the matrix products run; a multiple of the 6 tiles of a register tile.
let winogradChunkTiles = 24

/// Whether `winogradConvolve` computes the conv of shape `s`: a 3x3 stride-1
/// conv of a padded image with 8 channels per block and at least 8 real input
/// channels, whose output is the padded image's valid conv (`outputHeight ==
/// paddedHeight - 2`, the same for widths).
public func winogradApplies(_ s: BlockedConvShape) -> Bool {
    s.kernelHeight == 3 && s.kernelWidth == 3 && s.strideHeight == 1 && s.strideWidth == 1
        && s.channelsPerBlock == 8 && (s.inputBlocks - 1) * 8 + s.lastBlockChannels >= 8
        && s.outputHeight == s.paddedHeight - 2 && s.outputWidth == s.paddedWidth - 2
        && s.outputHeight >= 1 && s.outputWidth >= 1
}

/// Floats of a packed Winograd filter with `outputs` output and `inputs` input
/// channels (both rounded up to whole blocks of 8): `[16][outputs/8][inputs][8]`.
public func winogradFilterCount(outputs: Int, inputs: Int) -> Int {
    16 * ((outputs + 7) / 8 * 8) * ((inputs + 7) / 8 * 8)
}

/// Floats from one filter position's plane of transformed tiles (`tiles x
/// channels8`) to the next: one cache line more than the plane, so that the 16
/// planes a tile's transform writes do not fall into the same L1 sets (planes a
/// multiple of 4 KB apart, as 24 tiles x 128 channels, thrashed one set).
func winogradPlaneStride(tiles: Int, channels8: Int) -> Int { tiles &* channels8 &+ 16 }

/// The tile grid of one image and the scratch regions of a Winograd call that
/// runs it `chunk` tiles at a time: transformed inputs `V[16][chunk][inputBlocks·8]`,
/// then the 16 planes of the output side (`[16][chunk][outputBlocks·8]`), then
/// one 4x4 window of 8 channels for edge tiles.
struct WinogradTiling {
    /// Tiles per row of the grid, and in all (2x2 output pixels each; the last row and column may hang over).
    let tilesWide: Int, tiles: Int
    let chunk: Int
    /// Input and output channels rounded up to whole blocks, and the real input channels.
    let c8: Int, o8: Int, channels: Int
    /// Floats between two filter positions' planes, input side and output side.
    let inputStride: Int, outputStride: Int

    init(_ s: BlockedConvShape, chunk: Int) {
        tilesWide = (s.outputWidth &+ 1) / 2
        tiles = ((s.outputHeight &+ 1) / 2) &* tilesWide
        self.chunk = chunk
        (c8, o8) = (s.inputBlocks &* 8, s.outputBlocks &* 8)
        channels = (s.inputBlocks &- 1) &* 8 &+ s.lastBlockChannels
        inputStride = winogradPlaneStride(tiles: chunk, channels8: c8)
        outputStride = winogradPlaneStride(tiles: chunk, channels8: o8)
    }

    /// Floats of scratch: both sides' planes and the edge window.
    var scratchCount: Int { 16 &* (inputStride &+ outputStride) &+ 16 &* 8 }

    /// The output side's planes and the edge window in `scratch`.
    func regions(_ scratch: UnsafeMutablePointer<Float>) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        (scratch + 16 &* inputStride, scratch + 16 &* (inputStride &+ outputStride))
    }
}

/// Floats of scratch one `winogradConvolve` call of shape `s` needs.
public func winogradScratchCount(_ s: BlockedConvShape) -> Int {
    WinogradTiling(s, chunk: winogradChunkTiles).scratchCount
}

/// Transforms plain `[O][C][3][3]` weights into the Winograd domain,
/// `U[ξ] = G g Gᵀ` for each (output, input) channel pair (Lavin & Gray 2016,
/// F(2x2, 3x3): `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]`; ξ = 4·row + column
/// of the 4x4 result), packed as `[16][outputs/8][inputs rounded up to 8][8]`,
/// zero past the channel counts. 8 output channels per vector, in a fixed order.
///
/// - Parameters:
///   - transposed: false for the forward conv (`outputs = O`, `inputs = C`);
///     true for its data gradient, the conv with the filter flipped 180 degrees
///     and its channels swapped (`outputs = C`, `inputs = O`,
///     `g'[c][o][ky][kx] = g[o][c][2-ky][2-kx]`).
///   - packed: `winogradFilterCount(outputs:inputs:)` floats.
public func packWinogradFilter(_ weight: UnsafePointer<Float>, outChannels: Int, inChannels: Int, transposed: Bool,
                               into packed: UnsafeMutablePointer<Float>) {
    let (outputs, inputs) = transposed ? (inChannels, outChannels) : (outChannels, inChannels)
    let outBlocks = (outputs + 7) / 8, rows = (inputs + 7) / 8 * 8
    let xiStride = outBlocks &* rows &* 8
    // Per filter tap, the step between two outputs and between two inputs in `weight`.
    let (outputStep, inputStep) = transposed ? (9, inChannels &* 9) : (inChannels &* 9, 9)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * 8) { buffer in
        let g = buffer.baseAddress!
        for ob in 0..<outBlocks {
            let live = min(8, outputs &- ob &* 8)
            g.update(repeating: 0, count: 72)
            for input in 0..<rows {
                let target = packed + (ob &* rows &+ input) &* 8
                guard input < inputs else {
                    for xi in 0..<16 { store8(SIMD8<Float>(), target + xi &* xiStride) }
                    continue
                }
                // g[tap][lane], the forward filter's taps in reverse when transposed.
                for lane in 0..<live {
                    let base = weight + ((ob &* 8 &+ lane) &* outputStep &+ input &* inputStep)
                    for k in 0..<9 { g[(transposed ? 8 &- k : k) &* 8 &+ lane] = base[k] }
                }
                let half = SIMD8<Float>(repeating: 0.5)
                // G g: rows of taps combined, one column (kx) at a time.
                let c0 = columnTransform(load8(g), load8(g + 24), load8(g + 48), half)
                let c1 = columnTransform(load8(g + 8), load8(g + 32), load8(g + 56), half)
                let c2 = columnTransform(load8(g + 16), load8(g + 40), load8(g + 64), half)
                // (G g) Gᵀ: row i of the result from row i of G g.
                storeFilterRow(c0.0, c1.0, c2.0, half, target, xiStride)
                storeFilterRow(c0.1, c1.1, c2.1, half, target + 4 &* xiStride, xiStride)
                storeFilterRow(c0.2, c1.2, c2.2, half, target + 8 &* xiStride, xiStride)
                storeFilterRow(c0.3, c1.3, c2.3, half, target + 12 &* xiStride, xiStride)
            }
        }
    }
}

/// `G (g0, g1, g2)ᵀ`: the 4 rows of one column of `G g`.
@inline(__always)
private func columnTransform(_ g0: SIMD8<Float>, _ g1: SIMD8<Float>, _ g2: SIMD8<Float>, _ half: SIMD8<Float>)
    -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    let outer = g0 + g2
    return (g0, (outer + g1) * half, (outer - g1) * half, g2)
}

/// One row of `(G g) Gᵀ` from one row `(a0, a1, a2)` of `G g`, its 4 vectors `xiStride` floats apart.
@inline(__always)
private func storeFilterRow(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ half: SIMD8<Float>,
                            _ out: UnsafeMutablePointer<Float>, _ xiStride: Int) {
    let outer = a0 + a2
    store8(a0, out)
    store8((outer + a1) * half, out + xiStride)
    store8((outer - a1) * half, out + 2 &* xiStride)
    store8(a2, out + 3 &* xiStride)
}

/// The 3x3 stride-1 conv of one padded blocked image by Winograd F(2x2, 3x3)
/// (Lavin & Gray 2016): `y = conv(x) + bias`, every output block and pixel.
/// Reads the padded image the direct conv reads (`BlockedConvShape`, zeros in the
/// halo); writes the NCHW8c output `[outputBlocks][outputHeight·outputWidth][8]`.
/// Tiles on the bottom or right edge of an odd-sized output read zeros past the
/// padded image and write only their real pixels.
///
/// Every output value is `bias + Aᵀ (Σ_c U ⊙ V) A` with the channel sum in
/// channel order and the transforms in a fixed order: the bytes depend only on
/// the inputs (not on threads, which split images, nor on the kernel set).
///
/// - Parameters:
///   - s: a shape `winogradApplies` to.
///   - filter: from `packWinogradFilter` (`outputs = outputBlocks·8` or fewer
///     channels, `inputs` the real input channels).
///   - bias: `outputBlocks * 8` floats.
///   - scratch: `winogradScratchCount(s)` floats.
public func winogradConvolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                             scratch: UnsafeMutablePointer<Float>) {
    precondition(winogradApplies(s))
    let grid = WinogradTiling(s, chunk: winogradChunkTiles)
    let (c8, o8, channels) = (grid.c8, grid.o8, grid.channels)
    let (vStride, mStride) = (grid.inputStride, grid.outputStride)
    let v = scratch, (m, edge) = grid.regions(scratch)
    var first = 0
    while first < grid.tiles {
        let count = min(grid.chunk, grid.tiles &- first)
        winogradInputTransform(s, input, first: first, count: count, tilesWide: grid.tilesWide, xiStride: vStride, v, edge)
        for xi in 0..<16 {
            let vx = UnsafePointer(v + xi &* vStride), mx = m + xi &* mStride
            let ux = filter + xi &* s.outputBlocks &* c8 &* 8
            var ob = 0
            while ob &+ 1 < s.outputBlocks {
                winogradPairTiles(ux + ob &* c8 &* 8, ux + (ob &+ 1) &* c8 &* 8, vx, rowStride: c8,
                                  channels: channels, tiles: count, mx + ob &* 8, tileStride: o8)
                ob &+= 2
            }
            if ob < s.outputBlocks {
                winogradSingleTiles(ux + ob &* c8 &* 8, vx, rowStride: c8, channels: channels, tiles: count,
                                    mx + ob &* 8, tileStride: o8)
            }
        }
        winogradOutputTransform(s, m, bias, first: first, count: count, tilesWide: grid.tilesWide, xiStride: mStride,
                                output)
        first &+= count
    }
}

/// `V[ξ][t][c] = (Bᵀ d B)[ξ]` for tiles `first ..< first + count` (row-major over
/// the tile grid; `t` counts from `first`, planes ξ `xiStride` floats apart) and every input block, `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0],
/// [0, -1, 1, 0], [0, 1, 0, -1]]`, 8 channels per vector. Windows reaching past
/// the padded image are copied into `edge` with zeros first.
@inline(never)
func winogradInputTransform(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, first: Int, count: Int, tilesWide: Int,
                            xiStride: Int, _ v: UnsafeMutablePointer<Float>, _ edge: UnsafeMutablePointer<Float>) {
    let (hp, wp) = (s.paddedHeight, s.paddedWidth)
    let rowStride = wp &* 8, blockStride = hp &* rowStride
    let c8 = s.inputBlocks &* 8
    for t in 0..<count {
        let (ty, tx) = (first &+ t).quotientAndRemainder(dividingBy: tilesWide)
        let (y0, x0) = (ty &* 2, tx &* 2)
        let inside = y0 &+ 4 <= hp && x0 &+ 4 <= wp
        for cb in 0..<s.inputBlocks {
            let window = x + (cb &* blockStride &+ y0 &* rowStride &+ x0 &* 8)
            let target = v + (t &* c8 &+ cb &* 8)
            if inside {
                inputTile(window, rowStride: rowStride, target, xiStride: xiStride)
            } else {
                for r in 0..<4 {
                    for col in 0..<4 {
                        let e = edge + (r &* 4 &+ col) &* 8
                        if y0 &+ r < hp && x0 &+ col < wp {
                            e.update(from: window + (r &* rowStride &+ col &* 8), count: 8)
                        } else {
                            e.update(repeating: 0, count: 8)
                        }
                    }
                }
                inputTile(UnsafePointer(edge), rowStride: 32, target, xiStride: xiStride)
            }
        }
    }
}

/// `Bᵀ d B` of one 4x4 window of 8-channel vectors (rows `rowStride` floats
/// apart), its 16 vectors stored `xiStride` floats apart.
@inline(__always)
private func inputTile(_ d: UnsafePointer<Float>, rowStride: Int, _ out: UnsafeMutablePointer<Float>, xiStride: Int) {
    let r0 = d, r1 = d + rowStride, r2 = r1 + rowStride, r3 = r2 + rowStride
    // Bᵀ d: rows combined, one column at a time.
    var t00 = load8(r0), t10 = load8(r1), t20 = load8(r2), t30 = load8(r3)
    (t00, t10, t20, t30) = (t00 - t20, t10 + t20, t20 - t10, t10 - t30)
    var t01 = load8(r0 + 8), t11 = load8(r1 + 8), t21 = load8(r2 + 8), t31 = load8(r3 + 8)
    (t01, t11, t21, t31) = (t01 - t21, t11 + t21, t21 - t11, t11 - t31)
    var t02 = load8(r0 + 16), t12 = load8(r1 + 16), t22 = load8(r2 + 16), t32 = load8(r3 + 16)
    (t02, t12, t22, t32) = (t02 - t22, t12 + t22, t22 - t12, t12 - t32)
    var t03 = load8(r0 + 24), t13 = load8(r1 + 24), t23 = load8(r2 + 24), t33 = load8(r3 + 24)
    (t03, t13, t23, t33) = (t03 - t23, t13 + t23, t23 - t13, t13 - t33)
    // (Bᵀ d) B: columns combined, one row at a time.
    storeRow(t00, t01, t02, t03, out, xiStride)
    storeRow(t10, t11, t12, t13, out + 4 &* xiStride, xiStride)
    storeRow(t20, t21, t22, t23, out + 8 &* xiStride, xiStride)
    storeRow(t30, t31, t32, t33, out + 12 &* xiStride, xiStride)
}

/// One row of `(Bᵀ d) B` from one row of `Bᵀ d`.
@inline(__always)
private func storeRow(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ a3: SIMD8<Float>,
                      _ out: UnsafeMutablePointer<Float>, _ xiStride: Int) {
    store8(a0 - a2, out)
    store8(a1 + a2, out + xiStride)
    store8(a2 - a1, out + 2 &* xiStride)
    store8(a1 - a3, out + 3 &* xiStride)
}

/// `y = Aᵀ M A + bias` for tiles `first ..< first + count` and every output
/// block (planes ξ of `M` `xiStride` floats apart), `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`;
/// writes only pixels inside the output.
@inline(never)
func winogradOutputTransform(_ s: BlockedConvShape, _ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                             first: Int, count: Int, tilesWide: Int, xiStride: Int, _ y: UnsafeMutablePointer<Float>) {
    let (oh, ow) = (s.outputHeight, s.outputWidth)
    let o8 = s.outputBlocks &* 8
    let plane = oh &* ow &* 8
    for t in 0..<count {
        let (ty, tx) = (first &+ t).quotientAndRemainder(dividingBy: tilesWide)
        let (oy, ox) = (ty &* 2, tx &* 2)
        let (down, right) = (oy &+ 1 < oh, ox &+ 1 < ow)
        for ob in 0..<s.outputBlocks {
            let p = m + (t &* o8 &+ ob &* 8)
            let b = load8(bias + ob &* 8)
            // Aᵀ M: rows combined, one column at a time.
            let (s0, u0) = columnPair(p, xiStride)
            let (s1, u1) = columnPair(p + xiStride, xiStride)
            let (s2, u2) = columnPair(p + 2 &* xiStride, xiStride)
            let (s3, u3) = columnPair(p + 3 &* xiStride, xiStride)
            // (Aᵀ M) A + bias.
            let out = y + (ob &* plane &+ (oy &* ow &+ ox) &* 8)
            store8(s0 + s1 + s2 + b, out)
            if right { store8(s1 - s2 - s3 + b, out + 8) }
            if down {
                store8(u0 + u1 + u2 + b, out + ow &* 8)
                if right { store8(u1 - u2 - u3 + b, out + (ow &+ 1) &* 8) }
            }
        }
    }
}

/// Column `j` of `Aᵀ M` (rows `m[j]`, `m[4 + j]`, `m[8 + j]`, `m[12 + j]` of the tile).
@inline(__always)
private func columnPair(_ p: UnsafePointer<Float>, _ xiStride: Int) -> (SIMD8<Float>, SIMD8<Float>) {
    let m0 = load8(p), m1 = load8(p + 4 &* xiStride), m2 = load8(p + 8 &* xiStride), m3 = load8(p + 12 &* xiStride)
    return (m0 + m1 + m2, m1 - m2 - m3)
}

/// `M[t][ob·8 ..< ob·8 + 16] = Σ_c U[ob, ob+1][c] · V[t][c]` for one filter
/// position and `tiles` tiles, 6 at a time (12 accumulators; a last group of fewer
/// repeats its final tile, writing the same values twice).
@inline(never)
func winogradPairTiles(_ u0: UnsafePointer<Float>, _ u1: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                       rowStride: Int, channels: Int, tiles: Int, _ m: UnsafeMutablePointer<Float>, tileStride: Int) {
    let last = tiles &- 1
    var g = 0
    while g <= last {
        let t0 = g, t1 = min(g &+ 1, last), t2 = min(g &+ 2, last)
        let t3 = min(g &+ 3, last), t4 = min(g &+ 4, last), t5 = min(g &+ 5, last)
        let p0 = v + t0 &* rowStride, p1 = v + t1 &* rowStride, p2 = v + t2 &* rowStride
        let p3 = v + t3 &* rowStride, p4 = v + t4 &* rowStride, p5 = v + t5 &* rowStride
        let zero = SIMD8<Float>()
        var a00 = zero, a01 = zero, a10 = zero, a11 = zero, a20 = zero, a21 = zero
        var a30 = zero, a31 = zero, a40 = zero, a41 = zero, a50 = zero, a51 = zero
        var f0 = u0, f1 = u1
        for c in 0..<channels {
            let w0 = load8(f0), w1 = load8(f1)
            f0 += 8; f1 += 8
            var b = SIMD8<Float>(repeating: p0[c])
            a00 = a00.addingProduct(b, w0); a01 = a01.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: p1[c])
            a10 = a10.addingProduct(b, w0); a11 = a11.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: p2[c])
            a20 = a20.addingProduct(b, w0); a21 = a21.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: p3[c])
            a30 = a30.addingProduct(b, w0); a31 = a31.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: p4[c])
            a40 = a40.addingProduct(b, w0); a41 = a41.addingProduct(b, w1)
            b = SIMD8<Float>(repeating: p5[c])
            a50 = a50.addingProduct(b, w0); a51 = a51.addingProduct(b, w1)
        }
        store8(a00, m + t0 &* tileStride); store8(a01, m + (t0 &* tileStride &+ 8))
        store8(a10, m + t1 &* tileStride); store8(a11, m + (t1 &* tileStride &+ 8))
        store8(a20, m + t2 &* tileStride); store8(a21, m + (t2 &* tileStride &+ 8))
        store8(a30, m + t3 &* tileStride); store8(a31, m + (t3 &* tileStride &+ 8))
        store8(a40, m + t4 &* tileStride); store8(a41, m + (t4 &* tileStride &+ 8))
        store8(a50, m + t5 &* tileStride); store8(a51, m + (t5 &* tileStride &+ 8))
        g &+= 6
    }
}

/// `winogradPairTiles` for one output block (the last of an odd count).
@inline(never)
func winogradSingleTiles(_ u0: UnsafePointer<Float>, _ v: UnsafePointer<Float>, rowStride: Int, channels: Int,
                         tiles: Int, _ m: UnsafeMutablePointer<Float>, tileStride: Int) {
    let last = tiles &- 1
    var g = 0
    while g <= last {
        let t0 = g, t1 = min(g &+ 1, last), t2 = min(g &+ 2, last)
        let t3 = min(g &+ 3, last), t4 = min(g &+ 4, last), t5 = min(g &+ 5, last)
        let p0 = v + t0 &* rowStride, p1 = v + t1 &* rowStride, p2 = v + t2 &* rowStride
        let p3 = v + t3 &* rowStride, p4 = v + t4 &* rowStride, p5 = v + t5 &* rowStride
        let zero = SIMD8<Float>()
        var a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero
        var f0 = u0
        for c in 0..<channels {
            let w0 = load8(f0)
            f0 += 8
            a0 = a0.addingProduct(SIMD8<Float>(repeating: p0[c]), w0)
            a1 = a1.addingProduct(SIMD8<Float>(repeating: p1[c]), w0)
            a2 = a2.addingProduct(SIMD8<Float>(repeating: p2[c]), w0)
            a3 = a3.addingProduct(SIMD8<Float>(repeating: p3[c]), w0)
            a4 = a4.addingProduct(SIMD8<Float>(repeating: p4[c]), w0)
            a5 = a5.addingProduct(SIMD8<Float>(repeating: p5[c]), w0)
        }
        store8(a0, m + t0 &* tileStride); store8(a1, m + t1 &* tileStride)
        store8(a2, m + t2 &* tileStride); store8(a3, m + t3 &* tileStride)
        store8(a4, m + t4 &* tileStride); store8(a5, m + t5 &* tileStride)
        g &+= 6
    }
}
