import SIMDKernels

/// `y = activation(x Wᵀ + b)` with a pruned `W` `[out, in]` kept as sparse rows,
/// bias and activation fused in the epilogue.
///
/// - One row (batch 1): a sparse matrix-vector product, over the sliced rows
///   (`SIMDKernels.slicedSparseMatrixVector`) when vectorized, else row by row.
/// - A batch of `N` rows: `x` is transposed to `[in, N]` in scratch so each
///   row of `W` scales contiguous rows of it (`sparseRowsTimesDense`,
///   vectorized along the batch); results are written straight into `y`'s columns.
struct SparseLinearKernel: Kernel {
    let matrix: CompressedSparseRows
    /// The batch-1 form, when vectorized and the indices are 16-bit.
    let sliced: SlicedSparseRows?
    let bias: [Float]?
    let activation: FusedActivation
    /// Use the AVX2 kernels (the caller checked `cpuSupportsBlockedKernels`).
    let vectorized: Bool

    init(weight: Tensor, bias: Tensor?, activation: FusedActivation, vectorized: Bool) {
        matrix = CompressedSparseRows(dense: weight.floats, rows: weight.shape[0], columns: weight.shape[1])
        self.bias = bias?.floats
        self.activation = activation
        self.vectorized = vectorized
        sliced = vectorized ? SlicedSparseRows(matrix, bias: self.bias) : nil
    }

    var outFeatures: Int { matrix.rows }
    var inFeatures: Int { matrix.columns }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        inputShapes[0][0] > 1 ? inputShapes[0][0] * inFeatures : 0
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String {
        if inputShapes[0][0] > 1 { return "sparse-csr-gemm" }
        return sliced == nil ? "sparse-csr-gemv" : "sparse-sliced-gemv"
    }

    /// Workers take contiguous blocks of output features (of slices, for the sliced form).
    func run(_ b: StepBinding, _ context: KernelContext) {
        let n = b.inputShapes[0][0]
        let workers = context.workers(forWork: n * matrix.nonZeroCount)
        let (x, y) = (UnsafePointer(b.inputs[0]), b.output)
        if n == 1, let sliced {
            guard workers > 1 else { return sliced.multiplyVector(slices: 0..<sliced.sliceCount, x, y, activation.clamp) }
            context.forEachPart(workers, workers: workers) { part, _ in
                sliced.multiplyVector(slices: sliced.slices(part: part, of: workers), x, y, activation.clamp)
            }
            return
        }
        withBias(bias) { bias in
            if n == 1 {
                context.forEachPart(workers, workers: workers) { part, _ in
                    matrix.multiplyVector(rows: chunk(outFeatures, parts: workers, part), x, y, bias: bias, activation)
                }
                return
            }
            let xt = context.scratch
            transpose(x, rows: n, columns: inFeatures, xt, vectorized: vectorized)
            let output = StridedRows(start: y, residual: nil, rowStride: 1, columnStride: outFeatures)
            context.forEachPart(workers, workers: workers) { part, _ in
                matrix.multiplyDense(rows: chunk(outFeatures, parts: workers, part), xt, rowStride: n, width: n,
                                     bias: bias, output, activation, vectorized: vectorized)
            }
        }
    }
}

/// `y[c * rows + r] = x[r * columns + c]`: `SIMDKernels.transposeMatrix` when
/// `vectorized`, else element by element in blocks of 8 x 8.
func transpose(_ x: UnsafePointer<Float>, rows: Int, columns: Int, _ y: UnsafeMutablePointer<Float>, vectorized: Bool) {
    if vectorized { return transposeMatrix(x, rows: rows, columns: columns, y) }
    var r0 = 0
    while r0 < rows {
        let r1 = min(r0 &+ 8, rows)
        var c0 = 0
        while c0 < columns {
            let c1 = min(c0 &+ 8, columns)
            for r in r0..<r1 {
                let src = x + r &* columns
                for c in c0..<c1 { y[c &* rows &+ r] = src[c] }
            }
            c0 = c1
        }
        r0 = r1
    }
}
