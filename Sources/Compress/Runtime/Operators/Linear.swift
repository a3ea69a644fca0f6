import CBLAS

/// `y = x Wᵀ + b` with activation fused: `cblas_sgemv` for one row (several
/// times faster than a one-row GEMM here), `cblas_sgemm` for a batch.
struct LinearKernel: Kernel {
    /// `[out, in]`, row-major.
    let weight: [Float]
    let bias: [Float]?
    let outFeatures: Int, inFeatures: Int
    let activation: FusedActivation

    init(weight: Tensor, bias: Tensor?, activation: FusedActivation) {
        self.weight = weight.floats
        self.bias = bias?.floats
        (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        self.activation = activation
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { inputShapes[0][0] == 1 ? "dense-gemv" : "dense-gemm" }

    /// Multiply-adds from which the product is cut into parts that workers
    /// take: 1 MB of weights, tens of microseconds for a one-row product.
    static let splitWork = 262_144
    /// Output features per part, or rows per part of a batch of at least two
    /// parts when there are fewer than two parts of features. Fixed sizes, not
    /// a share per worker: the same BLAS calls (and so the same sums) run on
    /// any number of threads. Features first: each worker then reads (and
    /// OpenBLAS packs) only its parts of the weights, not all of them
    /// (LeNet-5's 800 x 500 layer at batch 64: 1.6 MB, more than a core's L2).
    static let rowsPerPart = 32, featuresPerPart = 64

    /// Workers take parts of rows (a batch) or of output features (a few rows).
    func run(_ b: StepBinding, _ context: KernelContext) {
        let rows = b.inputShapes[0][0]
        weight.withUnsafeBufferPointer { w in
            guard context.splits(rows * outFeatures * inFeatures, threshold: Self.splitWork) else {
                return multiply(b.inputs[0], rows: 0..<rows, w.baseAddress!, features: 0..<outFeatures, b.output)
            }
            let byRows = outFeatures < 2 * Self.featuresPerPart && rows >= 2 * Self.rowsPerPart
            let parts = byRows ? (rows + Self.rowsPerPart - 1) / Self.rowsPerPart
                : (outFeatures + Self.featuresPerPart - 1) / Self.featuresPerPart
            context.forEachPart(parts, workers: context.threads) { part, _ in
                if byRows {
                    let start = part * Self.rowsPerPart
                    multiply(b.inputs[0], rows: start..<min(start + Self.rowsPerPart, rows), w.baseAddress!,
                             features: 0..<outFeatures, b.output)
                } else {
                    let start = part * Self.featuresPerPart
                    multiply(b.inputs[0], rows: 0..<rows, w.baseAddress!,
                             features: start..<min(start + Self.featuresPerPart, outFeatures), b.output)
                }
            }
        }
    }

    /// Output block `rows x features`, bias and activation included.
    private func multiply(_ x: UnsafePointer<Float>, rows: Range<Int>, _ w: UnsafePointer<Float>, features: Range<Int>,
                          _ y: UnsafeMutablePointer<Float>) {
        let (k, ldy) = (Int32(inFeatures), Int32(outFeatures))
        let (xs, ws) = (x + rows.lowerBound &* inFeatures, w + features.lowerBound &* inFeatures)
        let ys = y + (rows.lowerBound &* outFeatures &+ features.lowerBound)
        if rows.count == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(features.count), k, 1, ws, k, xs, 1, 0, ys, 1)
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows.count), Int32(features.count), k, 1,
                        xs, k, ws, k, 0, ys, ldy)
        }
        for r in 0..<rows.count {
            let row = ys + r &* outFeatures
            withBias(bias) {
                applyColumnBiasAndActivation(row, rows: 1, columns: features.count,
                                             bias: $0.map { $0 + features.lowerBound }, activation)
            }
        }
    }
}
