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

    func run(_ b: StepBinding, _ context: KernelContext) {
        let rows = b.inputShapes[0][0]
        let (m, n, k) = (Int32(rows), Int32(outFeatures), Int32(inFeatures))
        weight.withUnsafeBufferPointer { w in
            if rows == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1, w.baseAddress, k, b.inputs[0], 1, 0, b.output, 1)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, b.inputs[0], k,
                            w.baseAddress, k, 0, b.output, n)
            }
        }
        guard let bias else {
            applyColumnBiasAndActivation(b.output, rows: rows, columns: outFeatures, bias: nil, activation)
            return
        }
        bias.withUnsafeBufferPointer {
            applyColumnBiasAndActivation(b.output, rows: rows, columns: outFeatures, bias: $0.baseAddress, activation)
        }
    }
}
