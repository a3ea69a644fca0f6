import SIMDKernels

/// A pruned layer's weight matrix in compressed sparse row (CSR) form, built
/// once at plan time from the dense weight: per row, the non-zero values and
/// their column indices, 16-bit when the matrix has at most 65,536 columns.
///
/// Also the plain-Swift sparse products: the path on CPUs without AVX2 and
/// FMA (and for 32-bit indices), and the reference the vectorized kernels in
/// `Kernels` are tested against.
struct CompressedSparseRows {
    enum ColumnIndices {
        case narrow([UInt16])
        case wide([UInt32])
    }

    let rows: Int, columns: Int
    /// `rows + 1` offsets: row `r`'s non-zeros are `rowOffsets[r]..<rowOffsets[r + 1]`.
    let rowOffsets: [Int32]
    let values: [Float]
    let columnIndices: ColumnIndices

    /// Keeps the non-zeros of a row-major `rows x columns` matrix.
    init(dense: [Float], rows: Int, columns: Int) {
        precondition(dense.count == rows * columns && dense.count < Int(Int32.max), "CSR of a \(rows)x\(columns) matrix")
        self.rows = rows
        self.columns = columns
        var offsets = [Int32](repeating: 0, count: rows + 1)
        var values: [Float] = []
        var indices: [Int] = []
        for r in 0..<rows {
            for c in 0..<columns where dense[r * columns + c] != 0 {
                values.append(dense[r * columns + c])
                indices.append(c)
            }
            offsets[r + 1] = Int32(values.count)
        }
        rowOffsets = offsets
        self.values = values
        columnIndices = columns <= 65_536 ? .narrow(indices.map { UInt16(truncatingIfNeeded: $0) })
                                          : .wide(indices.map { UInt32($0) })
    }

    var nonZeroCount: Int { values.count }

    /// Fraction of entries that are non-zero.
    var density: Double { rows * columns == 0 ? 0 : Double(values.count) / Double(rows * columns) }

    /// Non-zeros of row `r`.
    func count(ofRow r: Int) -> Int { Int(rowOffsets[r + 1] - rowOffsets[r]) }

    /// Column index of non-zero `k`.
    func column(_ k: Int) -> Int {
        switch columnIndices {
        case .narrow(let c): Int(c[k])
        case .wide(let c): Int(c[k])
        }
    }

    /// Plain-Swift `y[r] = activation(A[r, :] x + bias[r])` for rows `rows`.
    func multiplyVector(rows: Range<Int>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        bias: UnsafePointer<Float>?, _ activation: FusedActivation) {
        rowOffsets.withUnsafeBufferPointer { o in
            values.withUnsafeBufferPointer { v in
                switch columnIndices {
                case .narrow(let c):
                    c.withUnsafeBufferPointer { c in
                        csrMatrixVector(rows, o.baseAddress!, v.baseAddress!, x, y, bias, activation) { Int(c[$0]) }
                    }
                case .wide(let c):
                    c.withUnsafeBufferPointer { c in
                        csrMatrixVector(rows, o.baseAddress!, v.baseAddress!, x, y, bias, activation) { Int(c[$0]) }
                    }
                }
            }
        }
    }

    /// `C[r, :] = activation(A[r, :] B + bias[r] + residual[r, :])` for rows `rows`, element `(r, j)`
    /// of `C` (and of the residual) at `r * output.rowStride + j * output.columnStride`:
    /// `SIMDKernels.sparseRowsTimesDense` when `vectorized` and the indices are 16-bit, else plain Swift.
    func multiplyDense(rows: Range<Int>, _ b: UnsafePointer<Float>, rowStride ldb: Int, width: Int,
                       bias: UnsafePointer<Float>?, _ output: StridedRows, _ activation: FusedActivation,
                       vectorized: Bool) {
        rowOffsets.withUnsafeBufferPointer { o in
            values.withUnsafeBufferPointer { v in
                switch columnIndices {
                case .narrow(let idx):
                    idx.withUnsafeBufferPointer { idx in
                        if vectorized {
                            sparseRowsTimesDense(rows: rows, rowOffsets: o.baseAddress!, columns: idx.baseAddress!,
                                                 values: v.baseAddress!, dense: b, denseRowStride: ldb, width: width,
                                                 bias: bias, residual: output.residual, output: output.start,
                                                 outputRowStride: output.rowStride,
                                                 outputColumnStride: output.columnStride, clamp: activation.clamp)
                            return
                        }
                        csrTimesDense(rows, o.baseAddress!, v.baseAddress!, b, ldb, width, bias, output, activation) {
                            Int(idx[$0])
                        }
                    }
                case .wide(let idx):
                    idx.withUnsafeBufferPointer { idx in
                        csrTimesDense(rows, o.baseAddress!, v.baseAddress!, b, ldb, width, bias, output, activation) {
                            Int(idx[$0])
                        }
                    }
                }
            }
        }
    }
}

/// An output matrix (and the residual read with it) addressed by strides.
struct StridedRows {
    let start: UnsafeMutablePointer<Float>
    let residual: UnsafePointer<Float>?
    let rowStride: Int, columnStride: Int
}

extension FusedActivation {
    @inline(__always)
    func apply(_ v: Float) -> Float {
        switch self {
        case .none: v
        case .relu: v > 0 ? v : 0
        case .relu6: v > 0 ? (v < 6 ? v : 6) : 0
        case .hardSigmoid(let alpha, let beta): ScalarActivation.hardSigmoid(v, alpha: alpha, beta: beta)
        case .hardSwish: ScalarActivation.hardSwish(v)
        case .gelu(let tanhApproximation): tanhApproximation ? ScalarActivation.geluTanh(v) : ScalarActivation.gelu(v)
        }
    }
}

/// The scalar CSR matrix-vector loop; `column` reads one index (inlined per index width).
@inline(__always)
private func csrMatrixVector(_ rows: Range<Int>, _ offsets: UnsafePointer<Int32>, _ values: UnsafePointer<Float>,
                             _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?,
                             _ activation: FusedActivation, column: (Int) -> Int) {
    for r in rows {
        var k = Int(offsets[r])
        let end = Int(offsets[r &+ 1])
        var (s0, s1): (Float, Float) = (0, 0)
        while k &+ 2 <= end {
            s0 += values[k] * x[column(k)]
            s1 += values[k &+ 1] * x[column(k &+ 1)]
            k &+= 2
        }
        if k < end { s0 += values[k] * x[column(k)] }
        y[r] = activation.apply(s0 + s1 + (bias?[r] ?? 0))
    }
}

/// The scalar CSR x dense loop: each row is summed from scaled rows of `b` in a
/// contiguous buffer (which the compiler vectorizes), then stored with its epilogue.
@inline(__always)
private func csrTimesDense(_ rows: Range<Int>, _ offsets: UnsafePointer<Int32>, _ values: UnsafePointer<Float>,
                           _ b: UnsafePointer<Float>, _ ldb: Int, _ width: Int, _ bias: UnsafePointer<Float>?,
                           _ out: StridedRows, _ activation: FusedActivation, column: (Int) -> Int) {
    guard width > 0 else { return }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { buffer in
        let sum = buffer.baseAddress!
        for r in rows {
            sum.update(repeating: bias?[r] ?? 0, count: width)
            for k in Int(offsets[r])..<Int(offsets[r &+ 1]) {
                let (w, src) = (values[k], b + column(k) &* ldb)
                for j in 0..<width { sum[j] += w * src[j] }
            }
            let (row, cs) = (out.start + r &* out.rowStride, out.columnStride)
            if let residual = out.residual.map({ $0 + r &* out.rowStride }) {
                for j in 0..<width { sum[j] += residual[j &* cs] }
            }
            for j in 0..<width { row[j &* cs] = activation.apply(sum[j]) }
        }
    }
}

/// The rows of a CSR matrix regrouped for `SIMDKernels.slicedSparseMatrixVector`:
/// sorted by non-zero count (longest first) and cut into slices of 8, each
/// slice padded to its longest row and stored step by step, 8 lanes a step.
/// Sorting keeps the padding small; the kernel writes each lane to its row.
///
/// A class over buffers allocated once: a batch-1 call is a few microseconds,
/// so the call itself should not retain arrays or open closures over them.
final class SlicedSparseRows {
    let sliceCount: Int
    /// `sliceCount + 1` entries: slice `s` holds steps `sliceSteps[s]..<sliceSteps[s + 1]`.
    let sliceSteps: UnsafeMutablePointer<Int32>
    /// 8 per step, 64-byte aligned: the kernel is bound by its loads, and a
    /// vector load split across two cache lines costs two.
    let values: UnsafeMutablePointer<Float>
    /// 8 per step.
    let columns: UnsafeMutablePointer<UInt16>
    /// 8 per slice: each lane's row, -1 for padding.
    let rowOrder: UnsafeMutablePointer<Int32>
    /// 8 per slice: each lane's bias.
    let laneBias: UnsafeMutablePointer<Float>

    /// Nil when `matrix` has 32-bit column indices.
    init?(_ matrix: CompressedSparseRows, bias: [Float]?) {
        guard case .narrow(let indices) = matrix.columnIndices else { return nil }
        let order = (0..<matrix.rows).sorted {
            (matrix.count(ofRow: $0), $1) > (matrix.count(ofRow: $1), $0)
        }
        sliceCount = (matrix.rows + 7) / 8
        var (steps, values, columns) = ([Int32(0)], [Float](), [UInt16]())
        var (rowOrder, laneBias) = ([Int32](), [Float]())
        for s in 0..<sliceCount {
            let lanes = (0..<8).map { s * 8 + $0 < order.count ? order[s * 8 + $0] : -1 }
            let width = lanes.map { $0 >= 0 ? matrix.count(ofRow: $0) : 0 }.max() ?? 0
            for t in 0..<width {
                for row in lanes {
                    guard row >= 0 else { values.append(0); columns.append(0); continue }
                    let (start, count) = (Int(matrix.rowOffsets[row]), matrix.count(ofRow: row))
                    // Padding repeats the row's last column with value 0, so it reads nothing new.
                    values.append(t < count ? matrix.values[start + t] : 0)
                    columns.append(count == 0 ? 0 : indices[start + min(t, count - 1)])
                }
            }
            steps.append(steps.last! + Int32(width))
            rowOrder += lanes.map { Int32($0) }
            laneBias += lanes.map { $0 >= 0 ? bias?[$0] ?? 0 : 0 }
        }
        func copy<T>(_ array: [T], alignment: Int = 16) -> UnsafeMutablePointer<T> {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(array.count, 1) * MemoryLayout<T>.stride,
                                                       alignment: alignment)
            let pointer = raw.bindMemory(to: T.self, capacity: max(array.count, 1))
            pointer.initialize(from: array, count: array.count)
            return pointer
        }
        (sliceSteps, self.values, self.columns) = (copy(steps), copy(values, alignment: 64), copy(columns))
        (self.rowOrder, self.laneBias) = (copy(rowOrder), copy(laneBias))
    }

    deinit {
        for pointer in [UnsafeMutableRawPointer(sliceSteps), UnsafeMutableRawPointer(values),
                        UnsafeMutableRawPointer(columns), UnsafeMutableRawPointer(rowOrder),
                        UnsafeMutableRawPointer(laneBias)] {
            pointer.deallocate()
        }
    }

    /// Steps in all slices.
    var stepCount: Int { Int(sliceSteps[sliceCount]) }

    /// `y = clamp(A x + bias)` for slices `slices`.
    func multiplyVector(slices: Range<Int>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        _ clamp: BlockedClamp) {
        slicedSparseMatrixVector(slices: slices, sliceSteps: sliceSteps, values: values, columns: columns,
                                 rowOrder: rowOrder, laneBias: laneBias, x: x, y: y, clamp: clamp)
    }

    /// Slices `0..<sliceCount` cut into `parts` contiguous ranges of nearly equal steps.
    func slices(part: Int, of parts: Int) -> Range<Int> {
        if parts == 1 { return 0..<sliceCount }
        func boundary(_ p: Int) -> Int {
            if p == parts { return sliceCount }
            let target = Int32(stepCount * p / parts)
            var s = 0
            while s < sliceCount && sliceSteps[s] < target { s += 1 }
            return s
        }
        return boundary(part)..<max(boundary(part), boundary(part + 1))
    }
}
