// Sparse x dense products for pruned conv and linear layers. Magnitude
// pruning leaves most weights zero; Han et al. (Deep Compression, ICLR 2016)
// measured pruned fully connected layers running about 3x faster on a CPU as
// sparse products. Two kernels over 16-bit column indices:
//
// - `slicedSparseMatrixVector`, batch 1: rows sorted by length and grouped in
//   slices of 8, stored step by step, so one `SIMD8<Float>` accumulates 8 rows
//   at once. Each step gathers the 8 inputs its columns name with scalar loads
//   (AVX2's gather instruction was slower here), reading the 16-bit column
//   indices 4 at a time as one 64-bit word. No horizontal sums, no row tails.
// - `sparseRowsTimesDense`, several columns: row r of `C = A B` accumulates
//   `A[r, k] * B[k, :]` over row r's non-zeros, vectorized along B's rows in
//   tiles of up to 64 floats (8 accumulators keep both FMA units busy).
//
// Compiled with AVX2 and FMA (see Package.swift): callers check
// `cpuSupportsBlockedKernels` first. Plain-Swift versions of both live with
// the sparse format in the Compress target.

@inline(__always)
private func clamped(_ v: SIMD8<Float>, _ clamp: BlockedClamp) -> SIMD8<Float> { clamp.apply(v) }

@inline(__always)
private func clamped(_ v: Float, _ clamp: BlockedClamp) -> Float { clamp.apply(v) }

/// `x[c[0]], ..., x[c[7]]`. The indices arrive as two 64-bit words: two loads
/// and shifts instead of eight 16-bit loads keep the load ports for `x`.
@inline(__always)
private func gather8(_ x: UnsafePointer<Float>, _ c: UnsafePointer<UInt16>) -> SIMD8<Float> {
    let lo = UnsafeRawPointer(c).loadUnaligned(as: UInt64.self)
    let hi = UnsafeRawPointer(c + 4).loadUnaligned(as: UInt64.self)
    return SIMD8(x[Int(truncatingIfNeeded: lo & 0xFFFF)], x[Int(truncatingIfNeeded: (lo &>> 16) & 0xFFFF)],
                 x[Int(truncatingIfNeeded: (lo &>> 32) & 0xFFFF)], x[Int(truncatingIfNeeded: lo &>> 48)],
                 x[Int(truncatingIfNeeded: hi & 0xFFFF)], x[Int(truncatingIfNeeded: (hi &>> 16) & 0xFFFF)],
                 x[Int(truncatingIfNeeded: (hi &>> 32) & 0xFFFF)], x[Int(truncatingIfNeeded: hi &>> 48)])
}

/// `y = clamp(A x + bias)` for the rows in slices `slices` of a matrix in
/// sliced form.
///
/// - Parameters:
///   - sliceSteps: slice `s` holds steps `sliceSteps[s]..<sliceSteps[s + 1]`;
///     step `t` is 8 values at `values + 8t` and their columns at `columns + 8t`,
///     one per lane (padding lanes hold value 0).
///   - rowOrder: 8 per slice, the output row of each lane, or -1 for a padding lane.
///   - laneBias: 8 per slice, the bias of each lane's row (0 where none).
public func slicedSparseMatrixVector(slices: Range<Int>, sliceSteps: UnsafePointer<Int32>,
                                     values: UnsafePointer<Float>, columns: UnsafePointer<UInt16>,
                                     rowOrder: UnsafePointer<Int32>, laneBias: UnsafePointer<Float>,
                                     x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, clamp: BlockedClamp) {
    for s in slices {
        var step = Int(sliceSteps[s])
        let end = Int(sliceSteps[s &+ 1])
        var v = values + step &* 8
        var c = columns + step &* 8
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
        // 8 steps in flight: 2% faster than 4 on Zen 4, where the loads and the inserts bound the loop.
        while step &+ 8 <= end {
            a0 = a0.addingProduct(load8(v), gather8(x, c))
            a1 = a1.addingProduct(load8(v + 8), gather8(x, c + 8))
            a2 = a2.addingProduct(load8(v + 16), gather8(x, c + 16))
            a3 = a3.addingProduct(load8(v + 24), gather8(x, c + 24))
            a4 = a4.addingProduct(load8(v + 32), gather8(x, c + 32))
            a5 = a5.addingProduct(load8(v + 40), gather8(x, c + 40))
            a6 = a6.addingProduct(load8(v + 48), gather8(x, c + 48))
            a7 = a7.addingProduct(load8(v + 56), gather8(x, c + 56))
            v += 64; c += 64; step &+= 8
        }
        while step < end {
            a0 = a0.addingProduct(load8(v), gather8(x, c))
            v += 8; c += 8; step &+= 1
        }
        let sum = clamped(((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)) + load8(laneBias + s &* 8), clamp)
        let order = rowOrder + s &* 8
        for lane in 0..<8 {
            let row = Int(order[lane])
            if row >= 0 { y[row] = sum[lane] }
        }
    }
}

/// Where one output row of `sparseRowsTimesDense` goes: element `j` at
/// `start[j * columnStride]`, with the bias, the residual and the clamp applied on the way.
private struct RowOutput {
    let start: UnsafeMutablePointer<Float>
    let residual: UnsafePointer<Float>?
    let columnStride: Int
    let bias: Float
    let clamp: BlockedClamp

    @inline(__always)
    func store(_ acc: SIMD8<Float>, at j: Int) {
        var v = acc + SIMD8(repeating: bias)
        if columnStride == 1 {
            if let residual { v += load8(residual + j) }
            store8(clamped(v, clamp), start + j)
            return
        }
        if let residual {
            for lane in 0..<8 { v[lane] += residual[(j &+ lane) &* columnStride] }
        }
        v = clamped(v, clamp)
        for lane in 0..<8 { start[(j &+ lane) &* columnStride] = v[lane] }
    }

    @inline(__always)
    func store(_ acc: Float, at j: Int) {
        var v = acc + bias
        if let residual { v += residual[j &* columnStride] }
        start[j &* columnStride] = clamped(v, clamp)
    }
}

/// Columns `j..<j + 8 * vectors` of one output row: `vectors` (1, 2, 4 or 8,
/// a constant after inlining) accumulators, one FMA each per non-zero.
@inline(__always)
private func rowTile(vectors: Int, _ k0: Int, _ k1: Int, _ columns: UnsafePointer<UInt16>,
                     _ values: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int, _ out: RowOutput, _ j: Int) {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
    let base = b + j
    var k = k0
    while k < k1 {
        let p = base + Int(columns[k]) &* ldb
        let w = SIMD8<Float>(repeating: values[k])
        a0 = a0.addingProduct(load8(p), w)
        if vectors > 1 { a1 = a1.addingProduct(load8(p + 8), w) }
        if vectors > 2 {
            a2 = a2.addingProduct(load8(p + 16), w)
            a3 = a3.addingProduct(load8(p + 24), w)
        }
        if vectors > 4 {
            a4 = a4.addingProduct(load8(p + 32), w)
            a5 = a5.addingProduct(load8(p + 40), w)
            a6 = a6.addingProduct(load8(p + 48), w)
            a7 = a7.addingProduct(load8(p + 56), w)
        }
        k &+= 1
    }
    out.store(a0, at: j)
    if vectors > 1 { out.store(a1, at: j &+ 8) }
    if vectors > 2 {
        out.store(a2, at: j &+ 16)
        out.store(a3, at: j &+ 24)
    }
    if vectors > 4 {
        out.store(a4, at: j &+ 32)
        out.store(a5, at: j &+ 40)
        out.store(a6, at: j &+ 48)
        out.store(a7, at: j &+ 56)
    }
}

/// `C[r, :] = clamp(A[r, :] B + bias[r] + residual[r, :])` for rows `rows` of a
/// sparse `A` in compressed sparse row form and a dense row-major `B` of `width` columns.
///
/// - Parameters:
///   - rowOffsets: row `r`'s non-zeros are `rowOffsets[r]..<rowOffsets[r + 1]` of `values` and `columns`.
///   - dense: `B`, row `k` at `dense + k * denseRowStride`.
///   - output: element `(r, j)` of `C` at `output[r * outputRowStride + j * outputColumnStride]`;
///     the residual (if any) is read at the same offsets.
public func sparseRowsTimesDense(rows: Range<Int>, rowOffsets: UnsafePointer<Int32>, columns: UnsafePointer<UInt16>,
                                 values: UnsafePointer<Float>, dense b: UnsafePointer<Float>, denseRowStride ldb: Int,
                                 width n: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                                 output: UnsafeMutablePointer<Float>, outputRowStride: Int, outputColumnStride: Int,
                                 clamp: BlockedClamp) {
    for r in rows {
        let (k0, k1) = (Int(rowOffsets[r]), Int(rowOffsets[r &+ 1]))
        let offset = r &* outputRowStride
        let out = RowOutput(start: output + offset, residual: residual.map { $0 + offset },
                            columnStride: outputColumnStride, bias: bias?[r] ?? 0, clamp: clamp)
        var j = 0
        while j &+ 64 <= n {
            rowTile(vectors: 8, k0, k1, columns, values, b, ldb, out, j)
            j &+= 64
        }
        if j &+ 32 <= n {
            rowTile(vectors: 4, k0, k1, columns, values, b, ldb, out, j)
            j &+= 32
        }
        if j &+ 16 <= n {
            rowTile(vectors: 2, k0, k1, columns, values, b, ldb, out, j)
            j &+= 16
        }
        if j &+ 8 <= n {
            rowTile(vectors: 1, k0, k1, columns, values, b, ldb, out, j)
            j &+= 8
        }
        while j < n {
            var sum: Float = 0
            for k in k0..<k1 { sum = sum.addingProduct(values[k], b[Int(columns[k]) &* ldb &+ j]) }
            out.store(sum, at: j)
            j &+= 1
        }
    }
}

/// The two halves of `a` and `b` concatenated and split by lane parity:
/// (elements 0, 2, ..., 14; elements 1, 3, ..., 15). Three rounds of it transpose 8 x 8.
@inline(__always)
private func unzip(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (even: SIMD8<Float>, odd: SIMD8<Float>) {
    let both = SIMD16(lowHalf: a, highHalf: b)
    return (both.evenHalf, both.oddHalf)
}

/// `y[c * rows + r] = x[r * columns + c]`: a row-major `rows x columns` matrix
/// transposed, 8 x 8 blocks in registers (the edges element by element).
public func transposeMatrix(_ x: UnsafePointer<Float>, rows: Int, columns: Int, _ y: UnsafeMutablePointer<Float>) {
    var r = 0
    while r &+ 8 <= rows {
        let src = x + r &* columns
        var c = 0
        while c &+ 8 <= columns {
            // Round k pairs rows differing in bit k of r; lanes end up ordered by r,
            // and the vectors by c with bits (c0, c1, c2) chosen in rounds 1, 2, 3.
            let v = src + c
            let (a0, a1) = unzip(load8(v), load8(v + columns))
            let (a2, a3) = unzip(load8(v + 2 &* columns), load8(v + 3 &* columns))
            let (a4, a5) = unzip(load8(v + 4 &* columns), load8(v + 5 &* columns))
            let (a6, a7) = unzip(load8(v + 6 &* columns), load8(v + 7 &* columns))
            let (b0, b1) = unzip(a0, a2), (b2, b3) = unzip(a1, a3)
            let (b4, b5) = unzip(a4, a6), (b6, b7) = unzip(a5, a7)
            let (c0, c4) = unzip(b0, b4), (c2, c6) = unzip(b1, b5)
            let (c1, c5) = unzip(b2, b6), (c3, c7) = unzip(b3, b7)
            let dst = y + (c &* rows &+ r)
            store8(c0, dst); store8(c1, dst + rows); store8(c2, dst + 2 &* rows); store8(c3, dst + 3 &* rows)
            store8(c4, dst + 4 &* rows); store8(c5, dst + 5 &* rows); store8(c6, dst + 6 &* rows)
            store8(c7, dst + 7 &* rows)
            c &+= 8
        }
        for i in 0..<8 {
            for j in c..<columns { y[j &* rows &+ r &+ i] = src[i &* columns &+ j] }
        }
        r &+= 8
    }
    while r < rows {
        for j in 0..<columns { y[j &* rows &+ r] = x[r &* columns &+ j] }
        r &+= 1
    }
}
