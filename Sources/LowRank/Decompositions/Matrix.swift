import CBLAS

/// `op(A) · op(B)` for row-major float matrices, `op(A)` `m x k` and `op(B)` `k x n`,
/// through `cblas_sgemm`.
func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int,
            transposeA: Bool = false, transposeB: Bool = false) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    if m == 0 || n == 0 || k == 0 { return c }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), 1,
                            pa.baseAddress, Int32(transposeA ? m : k), pb.baseAddress, Int32(transposeB ? k : n),
                            0, pc.baseAddress, Int32(n))
            }
        }
    }
    return c
}

/// The transpose of a row-major `rows x columns` matrix.
func transposed(_ a: [Float], rows: Int, columns: Int) -> [Float] {
    var t = [Float](repeating: 0, count: a.count)
    a.withUnsafeBufferPointer { pa in
        t.withUnsafeMutableBufferPointer { pt in
            for i in 0..<rows {
                for j in 0..<columns { pt[j &* rows &+ i] = pa[i &* columns &+ j] }
            }
        }
    }
    return t
}

/// The mode-`mode` unfolding of a row-major tensor of shape `dims`: a
/// `dims[mode] x (product of the others)` matrix whose columns run over the
/// other indices in their original order (last fastest).
func unfold(_ x: [Float], dims: [Int], mode: Int) -> [Float] {
    let outer = dims[..<mode].reduce(1, *)
    let size = dims[mode]
    let inner = dims[(mode + 1)...].reduce(1, *)
    var out = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            let columns = outer &* inner
            for o in 0..<outer {
                for i in 0..<size {
                    let src = (o &* size &+ i) &* inner
                    let dst = i &* columns &+ o &* inner
                    for j in 0..<inner { po[dst &+ j] = px[src &+ j] }
                }
            }
        }
    }
    return out
}

/// The inverse of `unfold`: a `dims[mode] x rest` matrix back to a tensor of shape `dims`.
func fold(_ m: [Float], dims: [Int], mode: Int) -> [Float] {
    let outer = dims[..<mode].reduce(1, *)
    let size = dims[mode]
    let inner = dims[(mode + 1)...].reduce(1, *)
    var out = [Float](repeating: 0, count: m.count)
    m.withUnsafeBufferPointer { pm in
        out.withUnsafeMutableBufferPointer { po in
            let columns = outer &* inner
            for o in 0..<outer {
                for i in 0..<size {
                    let dst = (o &* size &+ i) &* inner
                    let src = i &* columns &+ o &* inner
                    for j in 0..<inner { po[dst &+ j] = pm[src &+ j] }
                }
            }
        }
    }
    return out
}

/// `x ×_mode F`: multiplies mode `mode` of the tensor `x` (shape `dims`) by the
/// matrix `F` (`newSize x dims[mode]`, or its transpose when `transpose`).
/// Returns the new tensor and its shape.
func modeProduct(_ x: [Float], dims: [Int], mode: Int, _ f: [Float], newSize: Int,
                 transpose: Bool = false) -> (values: [Float], dims: [Int]) {
    let unfolded = unfold(x, dims: dims, mode: mode)
    let rest = x.count / max(dims[mode], 1)
    let product = matmul(f, unfolded, m: newSize, k: dims[mode], n: rest, transposeA: transpose)
    var newDims = dims
    newDims[mode] = newSize
    return (fold(product, dims: newDims, mode: mode), newDims)
}

/// The Frobenius norm, accumulated in `Double`.
func frobeniusNorm(_ x: [Float]) -> Double {
    x.withUnsafeBufferPointer { p in
        var s = 0.0
        for v in p { s += Double(v) * Double(v) }
        return s.squareRoot()
    }
}

/// `‖a − b‖_F / ‖a‖_F` (0 when `a` is zero and `b` equals it).
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    let diff = a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            var s = 0.0
            for i in 0..<pa.count { let d = Double(pa[i]) - Double(pb[i]); s += d * d }
            return s.squareRoot()
        }
    }
    let norm = frobeniusNorm(a)
    return norm == 0 ? (diff == 0 ? 0 : .infinity) : Float(diff / norm)
}

func allFinite(_ x: [Float]) -> Bool { x.allSatisfy { $0.isFinite } }
