// The weight gradient of a direct convolution over channel-blocked feature
// maps (NCHW8c), and the reorder a training conv needs besides `padImage`
// and `plainToBlocked`. For one image, every filter tap (input channel, ky,
// kx) x 8 output channels is a sum over all output pixels of an input pixel
// times an output-gradient vector: tiles of 4 input channels x 2 output
// blocks hold 8 accumulators while a pixel costs 2 vector loads of the
// output gradient, 4 broadcasts of the input and 8 FMAs. Pixels go in chunks
// of whole output rows whose output gradients stay in L1 while every input
// channel and tap is accumulated over them.
//
// This target is compiled with AVX2 and FMA (see Package.swift): callers must
// check `cpuSupportsBlockedKernels` first.

/// Adds one image's weight gradient to `gradient`:
/// `gradient[o][c][ky][kx] += Σ_{oy,ox} x[c][oy·sh + ky][ox·sw + kx] · dY[o][oy][ox]`,
/// in the layout `packBlockedFilter` packs with 8 output lanes,
/// `[outputBlocks][inputBlocks][kernelHeight][kernelWidth][channelsPerBlock][8]`.
/// Padded input channels (past `lastBlockChannels`) are skipped; padded output
/// lanes receive zero when their output gradient is zero.
///
/// The sum over pixels runs in a fixed order for a shape (chunks of whole
/// output rows, each added into `gradient` in turn), so the same inputs give
/// the same bytes.
///
/// - Parameters:
///   - input: the padded image as `blockedConvolve` reads it (see `BlockedConvShape`).
///   - outputGradient: NCHW8c `[outputBlocks][outputHeight * outputWidth][8]`.
///   - gradient: `outputBlocks * s.filterBlockCount` floats, added into.
public func blockedConvWeightGradient(_ s: BlockedConvShape, input: UnsafePointer<Float>,
                                      outputGradient: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
    let ow = s.outputWidth
    guard ow > 0 && s.outputHeight > 0 else { return }
    let rowsPerChunk = max(1, weightGradientChunkPixels / ow)
    var ob = 0
    while ob < s.outputBlocks {
        let pair = ob &+ 1 < s.outputBlocks
        var row = 0
        while row < s.outputHeight {
            let rows = row..<min(row &+ rowsPerChunk, s.outputHeight)
            if pair {
                weightGradientPairs(s, input, outputGradient, gradient, ob, rows)
            } else {
                weightGradientSingles(s, input, outputGradient, gradient, ob, rows)
            }
            row = rows.upperBound
        }
        ob &+= pair ? 2 : 1
    }
}

/// Output pixels per chunk of `blockedConvWeightGradient` (a pair of blocks: 8 KB of
/// output gradient, which stays in L1 while every input channel and tap reads it).
let weightGradientChunkPixels = 128

// One function per output-block count, so each keeps its accumulators in
// registers: 4 input channels x 2 blocks are 8 accumulators, 2 gradient
// vectors and a broadcast (4 input channels x 3 blocks, 16 registers, was
// compiled with an accumulator spilled in the pixel loop and ran at half the rate).

@inline(never)
private func weightGradientPairs(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>,
                                 _ g: UnsafeMutablePointer<Float>, _ ob: Int, _ rows: Range<Int>) {
    weightGradientBlocks(s, x, dY, g, ob, rows, blocks: 2)
}

@inline(never)
private func weightGradientSingles(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>,
                                   _ g: UnsafeMutablePointer<Float>, _ ob: Int, _ rows: Range<Int>) {
    weightGradientBlocks(s, x, dY, g, ob, rows, blocks: 1)
}

/// Output blocks `ob..<ob + blocks` over output rows `rows`: every input block,
/// tap and group of 4 input channels (then single channels), accumulated over
/// the rows' pixels and added into `g`.
@inline(__always)
private func weightGradientBlocks(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>,
                                  _ g: UnsafeMutablePointer<Float>, _ ob: Int, _ rows: Range<Int>, blocks: Int) {
    let cs = s.channelsPerBlock
    let plane = s.outputHeight &* s.outputWidth &* 8
    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride
    let taps = s.kernelHeight &* s.kernelWidth
    let gBlock = s.filterBlockCount
    let d = dY + ob &* plane
    for cb in 0..<s.inputBlocks {
        let live = cb == s.inputBlocks &- 1 ? s.lastBlockChannels : cs
        let block = x + cb &* blockStride
        for ky in 0..<s.kernelHeight {
            for kx in 0..<s.kernelWidth {
                let t = block + (ky &* rowStride &+ kx &* cs)
                let tap: Int = cb &* taps &+ ky &* s.kernelWidth &+ kx
                let gt = g + (ob &* gBlock &+ tap &* cs &* 8)
                var ci = 0
                while ci &+ 4 <= live {
                    weightGradientTile(s, t + ci, d, plane, gt + ci &* 8, gBlock, rows, blocks: blocks, channels: 4)
                    ci &+= 4
                }
                while ci < live {
                    weightGradientTile(s, t + ci, d, plane, gt + ci &* 8, gBlock, rows, blocks: blocks, channels: 1)
                    ci &+= 1
                }
            }
        }
    }
}

/// `channels` (4 or 1) input channels at `x` (one tap's window origin) times
/// `blocks` (2 or 1) output-gradient blocks (`plane` floats apart) over output
/// rows `rows`, added into `g` (channel `k`, block `j` at `g + k * 8 + j * gBlock`).
@inline(__always)
private func weightGradientTile(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>,
                                _ plane: Int, _ g: UnsafeMutablePointer<Float>, _ gBlock: Int, _ rows: Range<Int>,
                                blocks: Int, channels: Int) {
    let cs = s.channelsPerBlock, ow = s.outputWidth
    let xStep = s.strideWidth &* cs, xRow = s.strideHeight &* s.paddedWidth &* cs
    var a00 = SIMD8<Float>(), a01 = SIMD8<Float>()
    var a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
    var a20 = SIMD8<Float>(), a21 = SIMD8<Float>()
    var a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
    for oy in rows {
        var p = x + oy &* xRow
        var q = dY + oy &* ow &* 8
        for _ in 0..<ow {
            let d0 = load8(q)
            let d1 = blocks == 2 ? load8(q + plane) : SIMD8<Float>()
            var v = SIMD8<Float>(repeating: p[0])
            a00 = a00.addingProduct(v, d0)
            if blocks == 2 { a01 = a01.addingProduct(v, d1) }
            if channels == 4 {
                v = SIMD8<Float>(repeating: p[1])
                a10 = a10.addingProduct(v, d0)
                if blocks == 2 { a11 = a11.addingProduct(v, d1) }
                v = SIMD8<Float>(repeating: p[2])
                a20 = a20.addingProduct(v, d0)
                if blocks == 2 { a21 = a21.addingProduct(v, d1) }
                v = SIMD8<Float>(repeating: p[3])
                a30 = a30.addingProduct(v, d0)
                if blocks == 2 { a31 = a31.addingProduct(v, d1) }
            }
            p += xStep
            q += 8
        }
    }
    addInto(g, a00)
    if blocks == 2 { addInto(g + gBlock, a01) }
    guard channels == 4 else { return }
    addInto(g + 8, a10); addInto(g + 16, a20); addInto(g + 24, a30)
    if blocks == 2 {
        let g1 = g + gBlock
        addInto(g1 + 8, a11); addInto(g1 + 16, a21); addInto(g1 + 24, a31)
    }
}

@inline(__always)
private func addInto(_ p: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>) {
    store8(load8(p) + v, p)
}

/// Blocked `[ceil(C/8)][plane][8]` added into plain `[C][plane]` (`y += x`):
/// how a blocked data gradient joins a plain one, which other steps add into as well.
public func addBlockedToPlain(_ x: UnsafePointer<Float>, channels: Int, plane: Int, _ y: UnsafeMutablePointer<Float>) {
    for c in 0..<channels {
        let offset: Int = (c / 8) &* plane &* 8 &+ c % 8
        let src = x + offset
        let dst = y + c &* plane
        for i in 0..<plane { dst[i] += src[i &* 8] }
    }
}
