import CBLAS
import SIMDKernels

/// A trainable 2-D convolution over NCHW maps (weight `[O, C/groups, kh, kw]`,
/// optional bias `[O]`), by im2col + `cblas_sgemm`, as Caffe does
/// (Jia et al., "Caffe", 2014; Chellapilla et al., "High Performance
/// Convolutional Neural Networks for Document Processing", 2006):
///
/// - forward, per group: `Y_g = W_g · col(X_g)`;
/// - backward: `dW_g += dY_g · col(X_g)ᵀ` and `dX_g += col2im(W_gᵀ · dY_g)`,
///   recomputing `col` instead of keeping it from the forward.
///
/// Images go through the GEMMs in chunks whose columns sit side by side
/// (`[patch, chunk · OH·OW]`), so small late-layer feature maps still make
/// wide GEMMs. A 1x1 stride-1 unpadded conv of one image per chunk uses the
/// image itself as the operand; depthwise convs (one input channel per group,
/// any depth multiplier) run direct loops: padded-plane SIMD loops
/// (`DepthwisePlanes.swift`) on kernel sets other than portable. Chunks are split over workers, each with its own weight- and
/// bias-gradient accumulators, summed at the end.
final class ConvTrainingKernel: TrainingKernel {
    let attributes: Conv2d
    let weight: ParameterBuffer
    let bias: ParameterBuffer?
    let outChannels: Int, groupChannels: Int, kernelH: Int, kernelW: Int
    let isDepthwise: Bool
    /// Output channels per input channel of a depthwise conv (1 otherwise).
    let depthwiseMultiplier: Int
    let isPointwise: Bool
    /// Whether depthwise passes run on `SIMDKernels`' padded-plane loops
    /// (`DepthwisePlanes.swift`): a kernel set other than portable (all have AVX2),
    /// dilation 1, padding before the image smaller than the kernel.
    let usesDepthwisePlanes: Bool
    /// GEMM width (images times output pixels) a chunk aims for.
    static let chunkColumns = 1024

    init(attributes: Conv2d, weight: ParameterBuffer, bias: ParameterBuffer?, kernels: KernelSet) {
        self.attributes = attributes
        self.weight = weight
        self.bias = bias
        (outChannels, groupChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let multiplier = attributes.depthwiseMultiplier(weightShape: weight.shape)
        depthwiseMultiplier = multiplier ?? 1
        isDepthwise = multiplier != nil
        isPointwise = kernelH == 1 && kernelW == 1 && attributes.stride == .square(1) && attributes.padding.isZero
        let p = attributes.padding
        usesDepthwisePlanes = isDepthwise && attributes.dilation == .square(1) && kernels != .portable
            && p.top < kernelH && p.left < kernelW
    }

    private var groupOut: Int { outChannels / attributes.groups }

    private func geometry(inputShape: [Int], outputShape: [Int]) -> ConvGeometry {
        ConvGeometry(attributes: attributes, groupChannels: groupChannels, height: inputShape[2], width: inputShape[3],
                     kernelH: kernelH, kernelW: kernelW, outH: outputShape[2], outW: outputShape[3])
    }

    private func geometry(_ b: TrainingBinding) -> ConvGeometry {
        geometry(inputShape: b.inputShapes[0], outputShape: b.outputShape)
    }

    /// Images per chunk for a batch of `batch`.
    private func chunkSize(_ g: ConvGeometry, batch: Int) -> Int {
        isDepthwise ? 1 : max(1, min(batch, Self.chunkColumns / max(g.outSpatial, 1)))
    }

    /// Whether an image is its own GEMM operand (no im2col copy).
    private func readsImageDirectly(chunk: Int) -> Bool { isPointwise && chunk == 1 }

    /// Offsets (in floats) of one worker's scratch regions: `col` and `dCol`
    /// (`patch x chunk·OH·OW` each), the staging block for chunked outputs and
    /// output gradients (`O/groups x chunk·OH·OW`), then weight and bias gradient accumulators.
    private struct ScratchLayout {
        var dCol: Int, staging: Int, weightGradient: Int, biasGradient: Int, total: Int
    }

    private func scratchLayout(_ g: ConvGeometry, chunk: Int) -> ScratchLayout {
        let columns = chunk &* g.outSpatial
        let colCount = isDepthwise ? (usesDepthwisePlanes ? depthwisePlaneScratchCount(g) : 0)
            : readsImageDirectly(chunk: chunk) ? 0 : g.patchLength &* columns
        let stagingCount = chunk > 1 ? groupOut &* columns : 0
        let weightGradient = 2 &* colCount &+ stagingCount
        return ScratchLayout(dCol: colCount, staging: 2 &* colCount, weightGradient: weightGradient,
                             biasGradient: weightGradient &+ weight.count,
                             total: weightGradient &+ weight.count &+ outChannels)
    }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        let g = geometry(inputShape: inputShapes[0], outputShape: outputShape)
        return scratchLayout(g, chunk: chunkSize(g, batch: inputShapes[0][0])).total
    }

    private func workers(_ b: TrainingBinding, _ context: KernelContext, chunks: Int) -> Int {
        let g = geometry(b)
        return min(chunks, context.workers(forWork: b.inputShapes[0][0] &* outChannels &* g.outSpatial &* g.patchLength))
    }

    /// The sizes one forward or backward call works with.
    private struct Pass {
        let g: ConvGeometry
        let batch: Int, chunk: Int, chunks: Int
        let inImage: Int, outImage: Int
        let layout: ScratchLayout

        func images(_ k: Int) -> Range<Int> { (k &* chunk)..<min(batch, (k &+ 1) &* chunk) }
    }

    private func pass(_ b: TrainingBinding) -> Pass {
        let g = geometry(b)
        let n = b.inputShapes[0][0]
        let chunk = chunkSize(g, batch: n)
        return Pass(g: g, batch: n, chunk: chunk, chunks: (n + chunk - 1) / chunk,
                     inImage: b.inputShapes[0][1] &* g.height &* g.width, outImage: outChannels &* g.outSpatial,
                     layout: scratchLayout(g, chunk: chunk))
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let p = pass(b)
        context.forEachIndex(p.chunks, workers: workers(b, context, chunks: p.chunks)) { k, worker in
            let images = p.images(k)
            if isDepthwise {
                let scratch = context.scratch(forWorker: worker)
                for i in images {
                    depthwiseForward(b.inputs[0] + i &* p.inImage, b.output + i &* p.outImage, p.g, scratch: scratch)
                }
            } else {
                convolve(images, b, p, scratch: context.scratch(forWorker: worker))
            }
            for i in images { addBias(b.output + i &* p.outImage, spatial: p.g.outSpatial) }
        }
    }

    /// Forward of a chunk of images: per group, im2col of every image side by
    /// side, one GEMM, and the result moved into each image's output planes.
    private func convolve(_ images: Range<Int>, _ b: TrainingBinding, _ p: Pass, scratch: UnsafeMutablePointer<Float>) {
        let (g, spatial) = (p.g, p.g.outSpatial)
        let columns = images.count &* spatial
        for group in 0..<attributes.groups {
            let operand = groupOperand(images, b.inputs[0], p, group: group, col: scratch)
            let w = weight.values.baseAddress! + group &* groupOut &* g.patchLength
            let firstOutput = b.output + images.lowerBound &* p.outImage + group &* groupOut &* spatial
            let target = images.count == 1 ? firstOutput : scratch + p.layout.staging
            gemm(m: groupOut, n: columns, k: g.patchLength, w, operand, target)
            guard images.count > 1 else { continue }
            for (j, i) in images.enumerated() {
                let y = b.output + i &* p.outImage + group &* groupOut &* spatial
                for o in 0..<groupOut { (y + o &* spatial).update(from: target + (o &* columns &+ j &* spatial), count: spatial) }
            }
        }
    }

    /// The `[patch, images · OH·OW]` GEMM operand of one group: the image itself
    /// for a direct 1x1 conv, else the images unfolded side by side into `col`.
    private func groupOperand(_ images: Range<Int>, _ x: UnsafeMutablePointer<Float>, _ p: Pass, group: Int,
                              col: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let planes = p.g.height &* p.g.width
        let groupOffset = group &* groupChannels &* planes
        if readsImageDirectly(chunk: images.count) { return x + images.lowerBound &* p.inImage + groupOffset }
        let rowStride = images.count &* p.g.outSpatial
        for (j, i) in images.enumerated() {
            im2col(x + i &* p.inImage + groupOffset, p.g, col: col + j &* p.g.outSpatial, rowStride: rowStride)
        }
        return col
    }

    private func addBias(_ y: UnsafeMutablePointer<Float>, spatial: Int) {
        guard let bias else { return }
        for c in 0..<outChannels {
            let row = y + c &* spatial, v = bias.values[c]
            for s in 0..<spatial { row[s] += v }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let p = pass(b)
        let workers = workers(b, context, chunks: p.chunks)
        guard b.computesParameterGradients else { return inputGradientOnly(b, p, workers: workers, context) }
        for worker in 1..<max(workers, 1) {
            (context.scratch(forWorker: worker) + p.layout.weightGradient).update(repeating: 0, count: weight.count + outChannels)
        }
        context.forEachIndex(p.chunks, workers: workers) { k, worker in
            let scratch = context.scratch(forWorker: worker)
            let dW = worker == 0 ? weight.gradient.baseAddress! : scratch + p.layout.weightGradient
            let dB = worker == 0 ? bias?.gradient.baseAddress : scratch + p.layout.biasGradient
            let images = p.images(k)
            if isDepthwise {
                for i in images {
                    depthwiseBackward(b.inputs[0] + i &* p.inImage, b.outputGradient + i &* p.outImage,
                                      b.inputGradients[0].map { $0 + i &* p.inImage }, dW: dW, p.g, scratch: scratch)
                }
            } else {
                convolveBackward(images, b, p, dW: dW, scratch: scratch)
            }
            if let dB {
                for i in images {
                    addPlaneSums(b.outputGradient + i &* p.outImage, channels: outChannels, plane: p.g.outSpatial, into: dB)
                }
            }
        }
        for worker in 1..<max(workers, 1) {
            let partial = context.scratch(forWorker: worker) + p.layout.weightGradient
            accumulate(partial, into: weight.gradient.baseAddress!, count: weight.count)
            if let bias { accumulate(partial + weight.count, into: bias.gradient.baseAddress!, count: outChannels) }
        }
    }

    /// The backward through a layer whose parameters are not being updated:
    /// `dX` only, so no `col` is unfolded and no `dW` GEMM runs.
    private func inputGradientOnly(_ b: TrainingBinding, _ p: Pass, workers: Int, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        context.forEachIndex(p.chunks, workers: workers) { k, worker in
            let scratch = context.scratch(forWorker: worker)
            let images = p.images(k)
            if isDepthwise {
                for i in images {
                    depthwiseInputGradient(b.outputGradient + i &* p.outImage, dX + i &* p.inImage, p.g, scratch: scratch)
                }
                return
            }
            for group in 0..<attributes.groups {
                let dYg = gatheredOutputGradient(images, b.outputGradient, p, group: group, staging: scratch + p.layout.staging)
                addInputGradient(images, dYg, p, group: group, dX: dX, scratch: scratch)
            }
        }
    }

    /// A chunk of images, per group: `dW_g += dY_g colᵀ`, and when the input
    /// needs it `dX_g += col2im(W_gᵀ dY_g)`, with the chunk's output gradients
    /// gathered side by side like its columns.
    private func convolveBackward(_ images: Range<Int>, _ b: TrainingBinding, _ p: Pass, dW: UnsafeMutablePointer<Float>,
                                  scratch: UnsafeMutablePointer<Float>) {
        let (g, spatial) = (p.g, p.g.outSpatial)
        let columns = images.count &* spatial
        let (ld, patch, m) = (Int32(columns), Int32(g.patchLength), Int32(groupOut))
        for group in 0..<attributes.groups {
            let dYg = gatheredOutputGradient(images, b.outputGradient, p, group: group, staging: scratch + p.layout.staging)
            let operand = groupOperand(images, b.inputs[0], p, group: group, col: scratch)
            let wOffset = group &* groupOut &* g.patchLength
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, patch, ld, 1, dYg, ld, operand, ld, 1, dW + wOffset, patch)
            guard let dX = b.inputGradients[0] else { continue }
            addInputGradient(images, dYg, p, group: group, dX: dX, scratch: scratch)
        }
    }

    /// `dX_g += col2im(W_gᵀ dY_g)` for a chunk of images and one group
    /// (`dY_g` gathered as `gatheredOutputGradient` returns it).
    private func addInputGradient(_ images: Range<Int>, _ dYg: UnsafeMutablePointer<Float>, _ p: Pass, group: Int,
                                  dX: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let (g, spatial) = (p.g, p.g.outSpatial)
        let columns = images.count &* spatial
        let (ld, patch, m) = (Int32(columns), Int32(g.patchLength), Int32(groupOut))
        let w = weight.values.baseAddress! + group &* groupOut &* g.patchLength
        let groupOffset = group &* groupChannels &* g.height &* g.width
        if readsImageDirectly(chunk: images.count) {
            let dXg = dX + images.lowerBound &* p.inImage + groupOffset
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, patch, ld, m, 1, w, patch, dYg, ld, 1, dXg, ld)
            return
        }
        let dCol = scratch + p.layout.dCol
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, patch, ld, m, 1, w, patch, dYg, ld, 0, dCol, ld)
        for (j, i) in images.enumerated() {
            col2im(dCol + j &* spatial, g, rowStride: columns, into: dX + i &* p.inImage + groupOffset)
        }
    }

    /// Group `group`'s output gradient of a chunk as one `[O/groups, images · OH·OW]` matrix
    /// (in place for a single image, else copied into `staging`).
    private func gatheredOutputGradient(_ images: Range<Int>, _ dY: UnsafeMutablePointer<Float>, _ p: Pass, group: Int,
                                        staging: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let spatial = p.g.outSpatial
        let groupOffset = group &* groupOut &* spatial
        if images.count == 1 { return dY + images.lowerBound &* p.outImage + groupOffset }
        let columns = images.count &* spatial
        for (j, i) in images.enumerated() {
            let source = dY + i &* p.outImage + groupOffset
            for o in 0..<groupOut { (staging + (o &* columns &+ j &* spatial)).update(from: source + o &* spatial, count: spatial) }
        }
        return staging
    }

    private func depthwiseForward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                                  scratch: UnsafeMutablePointer<Float>) {
        if usesDepthwisePlanes { return planeForward(x, y, g, scratch: scratch) }
        y.update(repeating: 0, count: outChannels &* g.outSpatial)
        forEachDepthwiseTap(g) { c, inOffset, outOffset, tap, count, step in
            let (src, dst, w) = (x + inOffset, y + outOffset, weight.values[c &* kernelH &* kernelW &+ tap])
            for k in 0..<count { dst[k] += w * src[k &* step] }
        }
    }

    private func depthwiseBackward(_ x: UnsafeMutablePointer<Float>, _ dY: UnsafeMutablePointer<Float>,
                                   _ dX: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                                   scratch: UnsafeMutablePointer<Float>) {
        if usesDepthwisePlanes { return planeBackward(x, dY, dX, dW: dW, g, scratch: scratch) }
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

    private func depthwiseInputGradient(_ dY: UnsafeMutablePointer<Float>, _ dX: UnsafeMutablePointer<Float>,
                                        _ g: ConvGeometry, scratch: UnsafeMutablePointer<Float>) {
        if usesDepthwisePlanes { return planeBackward(nil, dY, dX, dW: nil, g, scratch: scratch) }
        forEachDepthwiseTap(g) { c, inOffset, outOffset, tap, count, step in
            let (grad, dst, w) = (dY + outOffset, dX + inOffset, weight.values[c &* kernelH &* kernelW &+ tap])
            for k in 0..<count { dst[k &* step] += w * grad[k] }
        }
    }

    /// Calls `body(channel, inputOffset, outputOffset, tap, count, inputStep)` for every
    /// (output channel, output row, tap) of a depthwise conv (output channel `c` reads input
    /// channel `c / depthwiseMultiplier`): `count` output pixels starting at
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
                    let row = (c / depthwiseMultiplier) &* planeIn &+ (yStart &+ ky &* a.dilation.h) &* g.width
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
