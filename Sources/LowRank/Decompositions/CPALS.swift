import CLAPACKE
import Compress

/// A rank-R CP (CANDECOMP/PARAFAC) decomposition of a convolution kernel
/// `W [N, C, kh, kw]`: `W[n,c,y,x] ≈ Σᵣ weights[r]·output[n,r]·input[c,r]·vertical[y,r]·horizontal[x,r]`.
/// Factor matrices are row-major with `rank` columns of unit norm.
public struct CPFactors: Sendable {
    public var rank: Int
    public var weights: [Float]
    /// `[N, rank]`
    public var output: [Float]
    /// `[C, rank]`
    public var input: [Float]
    /// `[kh, rank]`
    public var vertical: [Float]
    /// `[kw, rank]`
    public var horizontal: [Float]
    /// `‖W − Ŵ‖_F / ‖W‖_F`.
    public var relativeError: Float
    /// ALS sweeps run.
    public var iterations: Int
}

/// CP decomposition of the kernel `weight [N, C, kh, kw]` at `rank` by
/// alternating least squares, accumulated in `Double`. Factors start from the
/// leading left singular vectors of each mode's unfolding, with columns beyond a
/// mode's size drawn from `SeededGenerator(seed:)`. Stops after `maxIterations`
/// sweeps or when the relative error changes by less than `tolerance`.
///
/// Lebedev et al., "Speeding-up Convolutional Neural Networks Using Fine-tuned
/// CP-Decomposition", ICLR 2015 (https://arxiv.org/abs/1412.6553).
///
/// - Throws: `LowRankError.cpDiverged` (suggesting a lower rank or Tucker-2) when
///   a factor or the error becomes non-finite or the weights explode;
///   `.rankOutOfRange` for rank 0; `.badShape`, `.nonFiniteInput`.
public func cpALS(_ weight: Tensor, rank: Int, maxIterations: Int = 500, tolerance: Double = 1e-9,
                  seed: UInt64 = 0) throws(LowRankError) -> CPFactors {
    guard weight.rank == 4, weight.shape.allSatisfy({ $0 > 0 }) else {
        throw .badShape(what: "convolution weight", shape: weight.shape, expected: "[N, C, kh, kw]")
    }
    let w = weight.floats
    guard allFinite(w) else { throw .nonFiniteInput(what: "convolution weight") }
    let dims = weight.shape
    // CP rank can exceed every mode size; bound it by the product of all but the largest mode.
    let maxRank = dims.reduce(1, *) / dims.max()!
    guard rank >= 1, rank <= maxRank else { throw .rankOutOfRange(rank: rank, fullRank: maxRank) }
    let x = w.map(Double.init)
    let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
    let count = x.count

    // Initialization.
    var rng = SeededGenerator(seed: seed)
    var factors: [[Double]] = []
    for mode in 0..<4 {
        let size = dims[mode]
        let svd = try SingularValueDecomposition(unfold(w, dims: dims, mode: mode), rows: size, columns: count / size)
        let kept = min(rank, svd.rank)
        var a = [Double](repeating: 0, count: size * rank)
        for i in 0..<size {
            for r in 0..<rank {
                a[i * rank + r] = r < kept ? Double(svd.u[i * svd.rank + r]) : Double(rng.nextGaussian())
            }
        }
        factors.append(a)
    }
    var lambda = [Double](repeating: 1, count: rank)
    for mode in 0..<4 { normalizeColumns(&factors[mode], rows: dims[mode], rank: rank, into: &lambda) }

    var error = Double.infinity
    var iteration = 0
    while iteration < maxIterations {
        iteration += 1
        for mode in 0..<4 {
            // Gram Hadamard product of the other modes.
            var v = [Double](repeating: 1, count: rank * rank)
            for other in 0..<4 where other != mode {
                let a = factors[other]
                for p in 0..<rank { for q in p..<rank {
                    var g = 0.0
                    for i in 0..<dims[other] { g += a[i * rank + p] * a[i * rank + q] }
                    v[p * rank + q] *= g
                    if p != q { v[q * rank + p] *= g }
                } }
            }
            var m = mttkrp(x, dims: dims, factors: factors, mode: mode, rank: rank)
            guard solveSymmetric(&v, &m, rank: rank, rows: dims[mode]) else {
                throw .cpDiverged(rank: rank, iteration: iteration)
            }
            factors[mode] = m
            normalizeColumns(&factors[mode], rows: dims[mode], rank: rank, into: &lambda)
        }
        guard lambda.allSatisfy({ $0.isFinite && abs($0) < 1e8 * max(norm, 1e-30) }),
              factors.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw .cpDiverged(rank: rank, iteration: iteration)
        }
        let newError = cpError(x, dims: dims, factors: factors, lambda: lambda, rank: rank) / max(norm, 1e-300)
        guard newError.isFinite else { throw .cpDiverged(rank: rank, iteration: iteration) }
        let change = abs(error - newError)
        error = newError
        if change < tolerance || error < 1e-7 { break }
    }
    func floats(_ a: [Double]) -> [Float] { a.map(Float.init) }
    let result = CPFactors(rank: rank, weights: floats(lambda), output: floats(factors[0]), input: floats(factors[1]),
                           vertical: floats(factors[2]), horizontal: floats(factors[3]),
                           relativeError: Float(error), iterations: iteration)
    guard [result.weights, result.output, result.input, result.vertical, result.horizontal].allSatisfy(allFinite) else {
        throw .cpDiverged(rank: rank, iteration: iteration)
    }
    return result
}

/// Scales each column of `a` (`rows x rank`) to unit norm and stores the norms in
/// `lambda`; a zero column keeps norm 0 and is left as it is.
private func normalizeColumns(_ a: inout [Double], rows: Int, rank: Int, into lambda: inout [Double]) {
    for r in 0..<rank {
        var s = 0.0
        for i in 0..<rows { s += a[i * rank + r] * a[i * rank + r] }
        let norm = s.squareRoot()
        lambda[r] = norm
        if norm > 0 { for i in 0..<rows { a[i * rank + r] /= norm } }
    }
}

/// The matricized tensor times Khatri–Rao product for `mode`: `X₍ₘₒ𝒹ₑ₎ · (⊙ other factors)`,
/// `dims[mode] x rank`, by one pass over the tensor.
private func mttkrp(_ x: [Double], dims: [Int], factors: [[Double]], mode: Int, rank: Int) -> [Double] {
    var m = [Double](repeating: 0, count: dims[mode] * rank)
    var product = [Double](repeating: 0, count: rank)
    x.withUnsafeBufferPointer { px in
        m.withUnsafeMutableBufferPointer { pm in
            product.withUnsafeMutableBufferPointer { pp in
                factors[0].withUnsafeBufferPointer { f0 in
                factors[1].withUnsafeBufferPointer { f1 in
                factors[2].withUnsafeBufferPointer { f2 in
                factors[3].withUnsafeBufferPointer { f3 in
                    let f = [f0, f1, f2, f3]
                    let others = (0..<4).filter { $0 != mode }
                    let a = f[others[0]], b = f[others[1]], c = f[others[2]]
                    var flat = 0
                    for i in 0..<dims[0] { for j in 0..<dims[1] { for k in 0..<dims[2] { for l in 0..<dims[3] {
                        let value = px[flat]
                        flat &+= 1
                        if value == 0 { continue }
                        let idx = SIMD4<Int>(i, j, k, l)
                        let ia = idx[others[0]] &* rank, ib = idx[others[1]] &* rank, ic = idx[others[2]] &* rank
                        let row = idx[mode] &* rank
                        for r in 0..<rank { pp[r] = a[ia &+ r] * b[ib &+ r] * c[ic &+ r] }
                        for r in 0..<rank { pm[row &+ r] += value * pp[r] }
                    } } } }
                }}}}
            }
        }
    }
    return m
}

/// Solves `A · V = M` for `A` in place of `M` (`rows x rank`), `V` symmetric
/// positive semi-definite `rank x rank`, by Cholesky (`dposv`), adding a small
/// ridge when `V` is singular. False when no ridge helps.
private func solveSymmetric(_ v: inout [Double], _ m: inout [Double], rank: Int, rows: Int) -> Bool {
    let trace = (0..<rank).reduce(0.0) { $0 + v[$1 * rank + $1] }
    guard trace.isFinite, trace > 0 else { return false }
    for ridge in [0.0, 1e-12, 1e-9, 1e-6] {
        var vv = v
        for i in 0..<rank { vv[i * rank + i] += ridge * trace / Double(rank) }
        var b = m
        // M (rows x rank, row-major) is Mᵀ column-major: solve V · Aᵀ = Mᵀ.
        let info = vv.withUnsafeMutableBufferPointer { pv in
            b.withUnsafeMutableBufferPointer { pb in
                LAPACKE_dposv(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), Int32(rank), Int32(rows),
                              pv.baseAddress, Int32(rank), pb.baseAddress, Int32(rank))
            }
        }
        if info == 0, b.allSatisfy(\.isFinite) { m = b; return true }
    }
    return false
}

/// `‖X − Σᵣ λᵣ aᵣ ∘ bᵣ ∘ cᵣ ∘ dᵣ‖_F`, computed explicitly (no cancellation, so
/// small errors stay accurate).
private func cpError(_ x: [Double], dims: [Int], factors: [[Double]], lambda: [Double], rank: Int) -> Double {
    var ab = [Double](repeating: 0, count: rank), abc = [Double](repeating: 0, count: rank)
    return x.withUnsafeBufferPointer { px in
        factors[0].withUnsafeBufferPointer { f0 in
        factors[1].withUnsafeBufferPointer { f1 in
        factors[2].withUnsafeBufferPointer { f2 in
        factors[3].withUnsafeBufferPointer { f3 in
        ab.withUnsafeMutableBufferPointer { pab in
        abc.withUnsafeMutableBufferPointer { pabc in
            var s = 0.0
            var flat = 0
            for i in 0..<dims[0] {
                for j in 0..<dims[1] {
                    for r in 0..<rank { pab[r] = lambda[r] * f0[i &* rank &+ r] * f1[j &* rank &+ r] }
                    for k in 0..<dims[2] {
                        for r in 0..<rank { pabc[r] = pab[r] * f2[k &* rank &+ r] }
                        for l in 0..<dims[3] {
                            var y = 0.0
                            let row = l &* rank
                            for r in 0..<rank { y += pabc[r] * f3[row &+ r] }
                            let d = px[flat] - y
                            s += d * d
                            flat &+= 1
                        }
                    }
                }
            }
            return s.squareRoot()
        }}}}}}}
}
