import CBLAS

/// A trainable transposed convolution (weight `[C, O/groups, kh, kw]`, optional
/// bias `[O]`), the adjoint of `ConvTrainingKernel`'s convolution, over the same
/// `im2col`/`col2im` unfolding:
///
/// - forward, per group: `Y_g = col2im(W_gᵀ X_g)` (`convTransposeImage`);
/// - backward: with `col = im2col(dY_g)` (the conv forward's unfolding),
///   `dX_g += W_g · col` and `dW_g += X_g · colᵀ`; `dB[o]` sums plane `o` of `dY`.
///
/// Images are split over workers, each with its own weight- and bias-gradient
/// accumulators, summed at the end.
final class ConvTransposeTrainingKernel: TrainingKernel {
    let attributes: ConvTranspose2d
    let weight: ParameterBuffer
    let bias: ParameterBuffer?

    init(attributes: ConvTranspose2d, weight: ParameterBuffer, bias: ParameterBuffer?) {
        self.attributes = attributes
        self.weight = weight
        self.bias = bias
    }

    private func geometry(_ inputShape: [Int], _ outputShape: [Int]) -> ConvTransposeGeometry {
        ConvTransposeGeometry(attributes, weightShape: weight.shape, inputShape: inputShape, outputShape: outputShape)
    }

    /// Per worker: `col` (`patch x H·W`), then the weight and bias gradient accumulators.
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        let g = geometry(inputShapes[0], outputShape)
        return g.patchLength &* g.spatial &+ weight.count &+ g.outChannels
    }

    private func workers(_ b: TrainingBinding, _ g: ConvTransposeGeometry, _ context: KernelContext) -> Int {
        min(b.inputShapes[0][0], context.workers(forWork: b.inputShapes[0][0] &* g.inChannels &* g.spatial &* g.patchLength))
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let g = geometry(b.inputShapes[0], b.outputShape)
        let (inImage, outImage) = (g.inChannels &* g.spatial, g.outChannels &* g.outSpatial)
        context.forEachIndex(b.inputShapes[0][0], workers: workers(b, g, context)) { i, worker in
            let y = b.output + i &* outImage
            convTransposeImage(b.inputs[0] + i &* inImage, weight: weight.values.baseAddress!, y, g,
                               col: context.scratch(forWorker: worker))
            guard let bias else { return }
            for o in 0..<g.outChannels {
                let row = y + o &* g.outSpatial, v = bias.values[o]
                for s in 0..<g.outSpatial { row[s] += v }
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let g = geometry(b.inputShapes[0], b.outputShape)
        let n = b.inputShapes[0][0]
        let workers = max(1, workers(b, g, context))
        let parameters = b.computesParameterGradients
        let accumulators = g.patchLength &* g.spatial
        if parameters {
            for worker in 0..<workers {
                (context.scratch(forWorker: worker) + accumulators).update(repeating: 0, count: weight.count &+ g.outChannels)
            }
        }
        let (inImage, outImage) = (g.inChannels &* g.spatial, g.outChannels &* g.outSpatial)
        let unfolding = g.unfolding
        let (patch, spatial, groupIn) = (Int32(g.patchLength), Int32(g.spatial), Int32(g.groupIn))
        context.forEachIndex(n, workers: workers) { i, worker in
            let scratch = context.scratch(forWorker: worker)
            let (col, dW, dB) = (scratch, scratch + accumulators, scratch + (accumulators &+ weight.count))
            let dY = b.outputGradient + i &* outImage
            for group in 0..<attributes.groups {
                im2col(dY + group &* g.groupOut &* g.outSpatial, unfolding, col: col, rowStride: g.spatial)
                let rows = group &* g.groupIn
                if let dX = b.inputGradients[0] {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, groupIn, spatial, patch, 1,
                                weight.values.baseAddress! + rows &* g.patchLength, patch, col, spatial,
                                1, dX + i &* inImage + rows &* g.spatial, spatial)
                }
                if parameters {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, groupIn, patch, spatial, 1,
                                b.inputs[0] + i &* inImage + rows &* g.spatial, spatial, col, spatial,
                                1, dW + rows &* g.patchLength, patch)
                }
            }
            guard parameters, bias != nil else { return }
            for o in 0..<g.outChannels {
                let row = dY + o &* g.outSpatial
                var sum: Float = 0
                for s in 0..<g.outSpatial { sum += row[s] }
                dB[o] += sum
            }
        }
        guard parameters else { return }
        for worker in 0..<workers {
            let partial = context.scratch(forWorker: worker) + accumulators
            accumulate(partial, into: weight.gradient.baseAddress!, count: weight.count)
            if let bias { accumulate(partial + weight.count, into: bias.gradient.baseAddress!, count: g.outChannels) }
        }
    }
}

/// Nearest or bilinear resize; the backward adds each output gradient into
/// the input pixels the forward read, with the same weights.
final class ResizeTrainingKernel: TrainingKernel {
    let attributes: Resize2d

    init(attributes: Resize2d) { self.attributes = attributes }

    private func tables(_ b: TrainingBinding) -> ResizeTables {
        let s = b.inputShapes[0]
        return ResizeTables(attributes, h: s[2], w: s[3], oh: b.outputShape[2], ow: b.outputShape[3])
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let s = b.inputShapes[0]
        tables(b).forward(b.inputs[0], b.output, planes: 0..<(s[0] &* s[1]), h: s[2], w: s[3])
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        let s = b.inputShapes[0]
        tables(b).backward(b.outputGradient, dX, planes: 0..<(s[0] &* s[1]), h: s[2], w: s[3])
    }
}
