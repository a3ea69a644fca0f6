import CBLAS

/// A trainable fully connected layer, `Y = X Wᵀ + b` (x `[N, in]`, W `[out, in]`),
/// all three products through `cblas_sgemm`:
/// `dW += dYᵀ X`, `dX += dY W`, `db += Σₙ dY[n]`.
/// Workers split the batch rows (forward, `dX`) or the output features (`dW`),
/// so no two write the same memory.
final class LinearTrainingKernel: TrainingKernel {
    let weight: ParameterBuffer
    let bias: ParameterBuffer?
    let outFeatures: Int, inFeatures: Int

    init(weight: ParameterBuffer, bias: ParameterBuffer?) {
        self.weight = weight
        self.bias = bias
        (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    }

    private func workers(rows: Int, _ context: KernelContext) -> Int {
        context.workers(forWork: rows &* outFeatures &* inFeatures)
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let rows = b.inputShapes[0][0]
        let workers = workers(rows: rows, context)
        let (k, n) = (Int32(inFeatures), Int32(outFeatures))
        context.forEachIndex(workers, workers: workers) { part, _ in
            let r = chunk(rows, parts: workers, part)
            guard !r.isEmpty else { return }
            let y = b.output + r.lowerBound &* outFeatures
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), n, k, 1,
                        b.inputs[0] + r.lowerBound &* inFeatures, k, weight.values.baseAddress!, k, 0, y, n)
            guard let bias else { return }
            for row in 0..<r.count {
                let line = y + row &* outFeatures
                for j in 0..<outFeatures { line[j] += bias.values[j] }
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let rows = b.inputShapes[0][0]
        let workers = workers(rows: rows, context)
        let (dY, x) = (b.outputGradient, b.inputs[0])
        let (k, n) = (Int32(inFeatures), Int32(outFeatures))
        context.forEachIndex(workers, workers: workers) { part, _ in
            let features = chunk(outFeatures, parts: workers, part)
            if b.computesParameterGradients && !features.isEmpty {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(features.count), k, Int32(rows), 1,
                            dY + features.lowerBound, n, x, k, 1,
                            weight.gradient.baseAddress! + features.lowerBound &* inFeatures, k)
                if let bias { sumColumns(dY, rows: rows, features: features, into: bias.gradient.baseAddress!) }
            }
            let r = chunk(rows, parts: workers, part)
            guard let dX = b.inputGradients[0], !r.isEmpty else { return }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), k, n, 1,
                        dY + r.lowerBound &* outFeatures, n, weight.values.baseAddress!, k, 1,
                        dX + r.lowerBound &* inFeatures, k)
        }
    }

    /// `db[j] += Σₙ dY[n, j]` for `j` in `features`.
    private func sumColumns(_ dY: UnsafePointer<Float>, rows: Int, features: Range<Int>,
                            into db: UnsafeMutablePointer<Float>) {
        for row in 0..<rows {
            let line = dY + row &* outFeatures
            for j in features { db[j] += line[j] }
        }
    }
}
