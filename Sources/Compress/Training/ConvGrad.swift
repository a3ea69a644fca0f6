import CBLAS

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

/// A trainable 2-D convolution over NCHW maps (weight `[O, C/groups, kh, kw]`,
/// optional bias `[O]`), by im2col + `cblas_sgemm` per image, as Caffe does
/// (Jia et al., "Caffe", 2014; Chellapilla et al., "High Performance
/// Convolutional Neural Networks for Document Processing", 2006):
///
/// - forward, per group: `Y_g = W_g · col(X_g)`;
/// - backward: `dW_g += dY_g · col(X_g)ᵀ` and `dX_g += col2im(W_gᵀ · dY_g)`,
///   recomputing `col` instead of keeping it from the forward.
///
/// 1x1 stride-1 unpadded convs use the image itself as the GEMM operand;
/// depthwise convs (one channel per group) run direct loops. Images are split
/// over workers, each with its own weight-gradient accumulator, reduced at the end.
final class ConvTrainingKernel: TrainingKernel {
    let attributes: Conv2d
    let weight: ParameterBuffer
    let bias: ParameterBuffer?
    let outChannels: Int, groupChannels: Int, kernelH: Int, kernelW: Int
    let isDepthwise: Bool
    let isPointwise: Bool

    init(attributes: Conv2d, weight: ParameterBuffer, bias: ParameterBuffer?) {
        self.attributes = attributes
        self.weight = weight
        self.bias = bias
        (outChannels, groupChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        isDepthwise = groupChannels == 1 && attributes.groups == outChannels && attributes.groups > 1
        isPointwise = kernelH == 1 && kernelW == 1 && attributes.stride == .square(1) && attributes.padding.isZero
    }

    private var groupOut: Int { outChannels / attributes.groups }

    private func geometry(_ b: TrainingBinding) -> ConvGeometry {
        ConvGeometry(attributes: attributes, groupChannels: groupChannels, height: b.inputShapes[0][2],
                     width: b.inputShapes[0][3], kernelH: kernelH, kernelW: kernelW,
                     outH: b.outputShape[2], outW: b.outputShape[3])
    }

    /// Per worker: `col` and `dCol` (`patchLength x OH*OW` each), then weight and bias gradient accumulators.
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        let columns = isDepthwise || isPointwise ? 0 : 2 * groupChannels * kernelH * kernelW * outputShape[2] * outputShape[3]
        return columns + weight.count + outChannels
    }

    private func workers(_ b: TrainingBinding, _ context: KernelContext) -> Int {
        let g = geometry(b)
        return context.workers(forWork: b.inputShapes[0][0] &* outChannels &* g.outSpatial &* g.patchLength)
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let g = geometry(b)
        let n = b.inputShapes[0][0]
        let (inImage, outImage) = (b.inputShapes[0][1] &* g.height &* g.width, outChannels &* g.outSpatial)
        forEachIndex(n, workers: workers(b, context)) { i, worker in
            let x = b.inputs[0] + i &* inImage, y = b.output + i &* outImage
            if isDepthwise {
                depthwiseForward(x, y, g)
            } else {
                convolve(x, y, g, col: context.scratch(forWorker: worker))
            }
            addBias(y, spatial: g.outSpatial)
        }
    }

    private func convolve(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                          col: UnsafeMutablePointer<Float>) {
        let (spatial, patch, planes) = (g.outSpatial, g.patchLength, g.height &* g.width)
        for group in 0..<attributes.groups {
            let xg = x + group &* groupChannels &* planes
            let operand = isPointwise ? xg : col
            if !isPointwise { im2col(xg, g, col: col) }
            gemm(m: groupOut, n: spatial, k: patch, weight.values.baseAddress! + group &* groupOut &* patch,
                 operand, y + group &* groupOut &* spatial)
        }
    }

    private func addBias(_ y: UnsafeMutablePointer<Float>, spatial: Int) {
        guard let bias else { return }
        for c in 0..<outChannels {
            let row = y + c &* spatial, v = bias.values[c]
            for s in 0..<spatial { row[s] += v }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let g = geometry(b)
        let n = b.inputShapes[0][0]
        let workers = min(workers(b, context), n)
        let accumulatorOffset = isDepthwise || isPointwise ? 0 : 2 * g.patchLength * g.outSpatial
        for worker in 1..<max(workers, 1) {
            (context.scratch(forWorker: worker) + accumulatorOffset).update(repeating: 0, count: weight.count + outChannels)
        }
        let (inImage, outImage) = (b.inputShapes[0][1] &* g.height &* g.width, outChannels &* g.outSpatial)
        forEachIndex(n, workers: workers) { i, worker in
            let scratch = context.scratch(forWorker: worker)
            let dW = worker == 0 ? weight.gradient.baseAddress! : scratch + accumulatorOffset
            let dB = worker == 0 ? bias?.gradient.baseAddress : scratch + accumulatorOffset + weight.count
            let x = b.inputs[0] + i &* inImage, dY = b.outputGradient + i &* outImage
            let dX = b.inputGradients[0].map { $0 + i &* inImage }
            if isDepthwise {
                depthwiseBackward(x, dY, dX, dW: dW, g)
            } else {
                convolveBackward(x, dY, dX, dW: dW, g, scratch: scratch)
            }
            if let dB { sumPlanes(dY, into: dB, spatial: g.outSpatial) }
        }
        for worker in 1..<max(workers, 1) {
            let partial = context.scratch(forWorker: worker) + accumulatorOffset
            accumulate(partial, into: weight.gradient.baseAddress!, count: weight.count)
            if let bias { accumulate(partial + weight.count, into: bias.gradient.baseAddress!, count: outChannels) }
        }
    }

    /// One image: `dW_g += dY_g colᵀ`, and when the input needs it `dX_g += col2im(W_gᵀ dY_g)`.
    private func convolveBackward(_ x: UnsafeMutablePointer<Float>, _ dY: UnsafeMutablePointer<Float>,
                                  _ dX: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>,
                                  _ g: ConvGeometry, scratch: UnsafeMutablePointer<Float>) {
        let (spatial, patch, planes) = (Int32(g.outSpatial), Int32(g.patchLength), g.height &* g.width)
        let (m, col, dCol) = (Int32(groupOut), scratch, scratch + g.patchLength &* g.outSpatial)
        for group in 0..<attributes.groups {
            let xg = x + group &* groupChannels &* planes
            let dYg = dY + group &* groupOut &* g.outSpatial
            let wOffset = group &* groupOut &* g.patchLength
            let operand = isPointwise ? xg : col
            if !isPointwise { im2col(xg, g, col: col) }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, patch, spatial, 1, dYg, spatial,
                        operand, spatial, 1, dW + wOffset, patch)
            guard let dX else { continue }
            let dXg = dX + group &* groupChannels &* planes
            let w = weight.values.baseAddress! + wOffset
            if isPointwise {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, patch, spatial, m, 1, w, patch, dYg, spatial,
                            1, dXg, spatial)
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, patch, spatial, m, 1, w, patch, dYg, spatial,
                            0, dCol, spatial)
                col2im(dCol, g, into: dXg)
            }
        }
    }

    /// `dB[c] += sum of plane c of dY`.
    private func sumPlanes(_ dY: UnsafePointer<Float>, into dB: UnsafeMutablePointer<Float>, spatial: Int) {
        for c in 0..<outChannels {
            let row = dY + c &* spatial
            var sum: Float = 0
            for s in 0..<spatial { sum += row[s] }
            dB[c] += sum
        }
    }

    private func depthwiseForward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        y.update(repeating: 0, count: outChannels &* g.outSpatial)
        forEachDepthwiseTap(g) { c, inOffset, outOffset, tap, count, step in
            let (src, dst, w) = (x + inOffset, y + outOffset, weight.values[c &* kernelH &* kernelW &+ tap])
            for k in 0..<count { dst[k] += w * src[k &* step] }
        }
    }

    private func depthwiseBackward(_ x: UnsafeMutablePointer<Float>, _ dY: UnsafeMutablePointer<Float>,
                                   _ dX: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        forEachDepthwiseTap(g) { c, inOffset, outOffset, tap, count, step in
            let (src, grad) = (x + inOffset, dY + outOffset)
            let wIndex = c &* kernelH &* kernelW &+ tap
            var sum: Float = 0
            for k in 0..<count { sum += grad[k] * src[k &* step] }
            dW[wIndex] += sum
            guard let dX else { return }
            let (dst, w) = (dX + inOffset, weight.values[wIndex])
            for k in 0..<count { dst[k &* step] += w * grad[k] }
        }
    }

    /// Calls `body(channel, inputOffset, outputOffset, tap, count, inputStep)` for every
    /// (channel, output row, tap) of a depthwise conv: `count` output pixels starting at
    /// `outputOffset` read input pixels `inputOffset + k * inputStep` through tap `ky * kw + kx`.
    @inline(__always)
    private func forEachDepthwiseTap(_ g: ConvGeometry, _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let a = attributes
        let (sh, sw, planeIn) = (a.stride.h, a.stride.w, g.height &* g.width)
        for c in 0..<outChannels {
            for oy in 0..<g.outH {
                let yStart = oy &* sh &- a.padding.top
                let (kyLo, kyHi) = validTapRange(start: yStart, step: a.dilation.h, taps: kernelH, limit: g.height)
                for ky in kyLo..<kyHi {
                    let row = c &* planeIn &+ (yStart &+ ky &* a.dilation.h) &* g.width
                    for kx in 0..<kernelW {
                        let xOffset = kx &* a.dilation.w &- a.padding.left
                        let (lo, hi) = validTapRange(start: xOffset, step: sw, taps: g.outW, limit: g.width)
                        guard hi > lo else { continue }
                        body(c, row &+ xOffset &+ lo &* sw, (c &* g.outH &+ oy) &* g.outW &+ lo, ky &* kernelW &+ kx,
                             hi &- lo, sw)
                    }
                }
            }
        }
    }
}

/// Unfolds one group of an image into `col` `[C/groups * kh * kw, OH * OW]`:
/// row `(c, ky, kx)` holds, per output position, the pixel that tap reads (0 in padding).
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, col: UnsafeMutablePointer<Float>) {
    forEachColumnRow(g) { plane, row, xOffset, lo, hi, iy, oy in
        let dst = col + (row &+ oy &* g.outW)
        guard let iy else {
            dst.update(repeating: 0, count: g.outW)
            return
        }
        let src = x + (plane &+ iy &* g.width &+ xOffset)
        let sw = g.attributes.stride.w
        dst.update(repeating: 0, count: lo)
        if sw == 1 {
            (dst + lo).update(from: src + lo, count: hi &- lo)
        } else {
            for ox in lo..<hi { dst[ox] = src[ox &* sw] }
        }
        (dst + hi).update(repeating: 0, count: g.outW &- hi)
    }
}

/// The adjoint of `im2col`: adds every entry of `col` into the input pixel it was read from.
func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, into dX: UnsafeMutablePointer<Float>) {
    forEachColumnRow(g) { plane, row, xOffset, lo, hi, iy, oy in
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
private func forEachColumnRow(_ g: ConvGeometry, _ body: (Int, Int, Int, Int, Int, Int?, Int) -> Void) {
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
                row &+= g.outSpatial
            }
        }
    }
}
