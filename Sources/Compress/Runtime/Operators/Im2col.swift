import SIMDKernels

// Unfolding a convolution's input into a GEMM operand: `im2col`, the one
// definition the inference kernels (`ConvKernel`, `SparseConvKernel`) and the
// training kernel (`ConvTrainingKernel`) share, and its adjoint `col2im` for
// the training backward. Both walk the rows of the unfolded matrix the same way.

/// The sizes of one convolution call, fixed per batch size.
struct ConvGeometry {
    let attributes: Conv2d
    /// Input channels of one group.
    let groupChannels: Int
    let height: Int, width: Int
    let kernelH: Int, kernelW: Int
    let outH: Int, outW: Int

    var patchLength: Int { groupChannels &* kernelH &* kernelW }
    var outSpatial: Int { outH &* outW }
}

/// Unfolds one group of an image into `col` `[C/groups * kh * kw, OH * OW]`
/// (rows `rowStride` floats apart): row `(c, ky, kx)` holds, per output
/// position, the pixel that tap reads (0 in padding).
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, col: UnsafeMutablePointer<Float>, rowStride: Int) {
    forEachColumnRow(g, rowStride: rowStride) { plane, row, xOffset, lo, hi, iy, oy in
        let dst = col + (row &+ oy &* g.outW)
        guard let iy else {
            for ox in 0..<g.outW { dst[ox] = 0 }
            return
        }
        let src = x + (plane &+ iy &* g.width &+ xOffset)
        let sw = g.attributes.stride.w
        for ox in 0..<lo { dst[ox] = 0 }
        if sw == 1 {
            copyShortRow(src + lo, dst + lo, count: hi &- lo)
        } else {
            for ox in lo..<hi { dst[ox] = src[ox &* sw] }
        }
        for ox in hi..<g.outW { dst[ox] = 0 }
    }
}

/// `dst[i] = src[i]` for a short row (tens of floats), inline: a `memmove` or `memset` call per row costs more
/// than the work (the zero fills beside it are plain loops for the same reason).
@inline(__always)
private func copyShortRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i &+ 8 <= count {
        store8(load8(src + i), dst + i)
        i &+= 8
    }
    while i < count {
        dst[i] = src[i]
        i &+= 1
    }
}

/// The adjoint of `im2col`: adds every entry of `col` into the input pixel it was read from.
func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, rowStride: Int, into dX: UnsafeMutablePointer<Float>) {
    forEachColumnRow(g, rowStride: rowStride) { plane, row, xOffset, lo, hi, iy, oy in
        guard let iy else { return }
        let src = col + (row &+ oy &* g.outW)
        let dst = dX + (plane &+ iy &* g.width &+ xOffset)
        let sw = g.attributes.stride.w
        if sw == 1 {
            for ox in lo..<hi { dst[ox] += src[ox] }
        } else {
            for ox in lo..<hi { dst[ox &* sw] += src[ox] }
        }
    }
}

/// Walks the rows of an im2col matrix: for channel plane offset, row offset in
/// `col`, the tap's column offset, the valid output columns `lo..<hi`, the input
/// row (nil in padding) and the output row.
@inline(__always)
private func forEachColumnRow(_ g: ConvGeometry, rowStride: Int, _ body: (Int, Int, Int, Int, Int, Int?, Int) -> Void) {
    let a = g.attributes
    var row = 0
    for c in 0..<g.groupChannels {
        let plane = c &* g.height &* g.width
        for ky in 0..<g.kernelH {
            for kx in 0..<g.kernelW {
                let xOffset = kx &* a.dilation.w &- a.padding.left
                let (lo, hi) = validTapRange(start: xOffset, step: a.stride.w, taps: g.outW, limit: g.width)
                for oy in 0..<g.outH {
                    let iy = oy &* a.stride.h &- a.padding.top &+ ky &* a.dilation.h
                    body(plane, row, xOffset, lo, hi, iy >= 0 && iy < g.height ? iy : nil, oy)
                }
                row &+= rowStride
            }
        }
    }
}
