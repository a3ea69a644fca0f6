import CBLAS

/// The sizes of one transposed convolution: the geometry of its adjoint conv
/// (`ConvTranspose2d.adjointConv`), whose input is this op's output `[O, OH, OW]`
/// and whose output is this op's input `[C, H, W]`, so `im2col`/`col2im` over
/// that geometry unfold and fold this op's output.
struct ConvTransposeGeometry {
    let attributes: ConvTranspose2d
    /// Input channels `C`, output channels per group, kernel size.
    let inChannels: Int, groupOut: Int, kernelH: Int, kernelW: Int
    let height: Int, width: Int, outH: Int, outW: Int

    init(_ a: ConvTranspose2d, weightShape w: [Int], inputShape x: [Int], outputShape y: [Int]) {
        attributes = a
        (inChannels, groupOut, kernelH, kernelW) = (w[0], w[1], w[2], w[3])
        (height, width, outH, outW) = (x[2], x[3], y[2], y[3])
    }

    var groupIn: Int { inChannels / attributes.groups }
    var outChannels: Int { groupOut &* attributes.groups }
    /// Rows of the unfolded output: output channels per group times kernel taps.
    var patchLength: Int { groupOut &* kernelH &* kernelW }
    var spatial: Int { height &* width }
    var outSpatial: Int { outH &* outW }

    /// The adjoint conv's unfolding of this op's output.
    var unfolding: ConvGeometry {
        ConvGeometry(attributes: attributes.adjointConv, groupChannels: groupOut, height: outH, width: outW,
                     kernelH: kernelH, kernelW: kernelW, outH: height, outW: width)
    }
}

/// One image of a transposed convolution, without bias: per group,
/// `col = W_gᵀ x_g` (`[patch, H·W]`, `W_g` the group's `[C/groups, patch]`
/// rows of the weight) and `y_g = col2im(col)`, the data-gradient path of
/// `ConvTrainingKernel` run forward. `col` holds `patchLength · H·W` floats.
func convTransposeImage(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        _ g: ConvTransposeGeometry, col: UnsafeMutablePointer<Float>) {
    y.update(repeating: 0, count: g.outChannels &* g.outSpatial)
    let unfolding = g.unfolding
    let (patch, spatial, groupIn) = (Int32(g.patchLength), Int32(g.spatial), Int32(g.groupIn))
    for group in 0..<g.attributes.groups {
        let wg = weight + group &* g.groupIn &* g.patchLength
        let xg = x + group &* g.groupIn &* g.spatial
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, patch, spatial, groupIn, 1, wg, patch, xg, spatial, 0, col, spatial)
        col2im(col, unfolding, rowStride: g.spatial, into: y + group &* g.groupOut &* g.outSpatial)
    }
}

/// A transposed convolution over NCHW maps (GEMM then `col2im`), bias and
/// activation in the epilogue; images split over workers.
struct ConvTransposeKernel: Kernel {
    let attributes: ConvTranspose2d
    /// `[C, O/groups, kh, kw]`: per group, a row-major `[C/groups, O/groups·kh·kw]` matrix.
    let weight: [Float]
    let weightShape: [Int]
    let bias: [Float]?
    let activation: FusedActivation

    init(attributes: ConvTranspose2d, weight: Tensor, bias: Tensor?, activation: FusedActivation) {
        self.attributes = attributes
        self.weight = weight.floats
        weightShape = weight.shape
        self.bias = bias?.floats
        self.activation = activation
    }

    private func geometry(_ inputShape: [Int], _ outputShape: [Int]) -> ConvTransposeGeometry {
        ConvTransposeGeometry(attributes, weightShape: weightShape, inputShape: inputShape, outputShape: outputShape)
    }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        geometry(inputShapes[0], outputShape).patchLength * inputShapes[0][2] * inputShapes[0][3]
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { "dense-gemm-col2im" }

    func run(_ b: StepBinding, _ context: KernelContext) {
        let g = geometry(b.inputShapes[0], b.outputShape)
        let n = b.inputShapes[0][0]
        let (inImage, outImage) = (g.inChannels &* g.spatial, g.outChannels &* g.outSpatial)
        let workers = context.workers(forWork: n &* g.inChannels &* g.spatial &* g.patchLength)
        weight.withUnsafeBufferPointer { wp in
            context.forEachPart(n, workers: workers) { i, worker in
                let y = b.output + i &* outImage
                convTransposeImage(b.inputs[0] + i &* inImage, weight: wp.baseAddress!, y, g,
                                   col: context.scratch(forWorker: worker))
                withBias(bias) {
                    applyChannelBiasAndActivation(y, channels: g.outChannels, length: g.outSpatial, bias: $0, activation)
                }
            }
        }
    }
}
