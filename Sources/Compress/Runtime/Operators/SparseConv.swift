/// A pruned 2-D convolution over plain NCHW feature maps. Per image and group,
/// the group's channels are unfolded by `im2col` (a 1x1, stride-1, unpadded
/// conv reads the image itself), then `Y_g = W_g col` with `W_g`'s rows kept
/// sparse: each output channel's row of `Y` accumulates `w * col[k, :]` over
/// that row's non-zeros, vectorized along the output pixels
/// (`sparseRowsTimesDense`). Bias, a residual (an Add fused into the conv) and
/// the activation are applied in the same pass.
struct SparseConvKernel: Kernel {
    let attributes: Conv2d
    /// `[O, C/groups * kh * kw]`: group `g` owns rows `g * O/groups ..< (g + 1) * O/groups`.
    let matrix: CompressedSparseRows
    let bias: [Float]?
    let outChannels: Int, groupChannels: Int, kernelH: Int, kernelW: Int
    let activation: FusedActivation
    /// A second input, shaped like the output, is added before the activation.
    let hasResidual: Bool
    /// Use the AVX2 kernel (the caller checked `cpuSupportsBlockedKernels`).
    let vectorized: Bool

    init(attributes a: Conv2d, weight: Tensor, bias: Tensor?, activation: FusedActivation, hasResidual: Bool,
         vectorized: Bool) {
        attributes = a
        (outChannels, groupChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        matrix = CompressedSparseRows(dense: weight.floats, rows: outChannels, columns: groupChannels * kernelH * kernelW)
        self.bias = bias?.floats
        self.activation = activation
        self.hasResidual = hasResidual
        self.vectorized = vectorized
    }

    /// The image is the operand itself: no unfolding.
    var isPointwise: Bool { kernelH == 1 && kernelW == 1 && attributes.stride == .square(1) && attributes.padding.isZero }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        isPointwise ? 0 : matrix.columns * outputShape[2] * outputShape[3]
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { "sparse-csr-gemm" }

    /// Images go to workers when there are enough of them; a single image of an
    /// ungrouped conv splits its output channels over the workers instead.
    func run(_ b: StepBinding, _ context: KernelContext) {
        let (n, c, h, w) = (b.inputShapes[0][0], b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let spatial = b.outputShape[2] * b.outputShape[3]
        let (inImage, outImage) = (c * h * w, outChannels * spatial)
        let workers = context.workers(forWork: n * matrix.nonZeroCount * spatial,
                                      threshold: n >= context.threads ? 1_000_000 : 8_000_000)
        let residual = hasResidual ? UnsafePointer(b.inputs[1]) : nil
        withBias(bias) { bias in
            if n >= workers || attributes.groups > 1 {
                context.forEachPart(n, workers: workers) { i, worker in
                    let output = StridedRows(start: b.output + i &* outImage, residual: residual.map { $0 + i &* outImage },
                                             rowStride: spatial, columnStride: 1)
                    convolve(b.inputs[0] + i &* inImage, h: h, w: w, b.outputShape, bias, output,
                             col: context.scratch(forWorker: worker))
                }
                return
            }
            for i in 0..<n {
                let x = b.inputs[0] + i &* inImage
                let output = StridedRows(start: b.output + i &* outImage, residual: residual.map { $0 + i &* outImage },
                                         rowStride: spatial, columnStride: 1)
                let operand = unfolded(x, h: h, w: w, b.outputShape, col: context.scratch)
                context.forEachPart(workers, workers: workers) { part, _ in
                    matrix.multiplyDense(rows: chunk(outChannels, parts: workers, part), operand, rowStride: spatial,
                                         width: spatial, bias: bias, output, activation, vectorized: vectorized)
                }
            }
        }
    }

    /// One image, every group.
    private func convolve(_ x: UnsafePointer<Float>, h: Int, w: Int, _ outputShape: [Int], _ bias: UnsafePointer<Float>?,
                          _ output: StridedRows, col: UnsafeMutablePointer<Float>) {
        let groups = attributes.groups
        let groupOut = outChannels / groups
        let spatial = outputShape[2] * outputShape[3]
        for g in 0..<groups {
            let operand = unfolded(x + g &* groupChannels &* h &* w, h: h, w: w, outputShape, col: col)
            matrix.multiplyDense(rows: g * groupOut..<(g + 1) * groupOut, operand, rowStride: spatial, width: spatial,
                                 bias: bias, output, activation, vectorized: vectorized)
        }
    }

    /// The `[C/groups * kh * kw, OH * OW]` operand of one group's channels starting at `x`.
    private func unfolded(_ x: UnsafePointer<Float>, h: Int, w: Int, _ outputShape: [Int],
                          col: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        if isPointwise { return x }
        let geometry = ConvGeometry(attributes: attributes, groupChannels: groupChannels, height: h, width: w,
                                    kernelH: kernelH, kernelW: kernelW, outH: outputShape[2], outW: outputShape[3])
        im2col(x, geometry, col: col, rowStride: geometry.outSpatial)
        return UnsafePointer(col)
    }
}
