import Foundation

/// The rank and noise variance that empirical variational Bayesian matrix
/// factorization assigns to a matrix.
public struct VBMFEstimate: Sendable {
    /// The number of singular values above the EVBMF threshold.
    public var rank: Int
    /// The estimated noise variance σ².
    public var noiseVariance: Double
    /// The threshold on singular values, `√(M σ² (1 + τ̄)(1 + α/τ̄))`.
    public var threshold: Double
}

/// Estimates the rank of a noisy low-rank matrix (row-major `rows x columns`) by
/// the analytic solution of empirical VBMF, with the noise variance chosen by
/// minimizing the free energy over its bounded range (golden-section search
/// after a log-spaced scan).
///
/// Nakajima, Sugiyama, Babacan and Tomioka, "Global Analytic Solution of
/// Fully-Observed Variational Bayesian Matrix Factorization", JMLR 14, 2013
/// (https://jmlr.org/papers/v14/nakajima13a.html).
public func vbmfRank(_ matrix: [Float], rows: Int, columns: Int) throws(LowRankError) -> VBMFEstimate {
    vbmfRank(singularValues: try singularValues(of: matrix, rows: rows, columns: columns), rows: rows, columns: columns)
}

/// `vbmfRank(_:rows:columns:)` from the matrix's singular values (all
/// `min(rows, columns)` of them, non-increasing): EVBMF needs nothing else.
public func vbmfRank(singularValues: [Float], rows: Int, columns: Int) -> VBMFEstimate {
    let s = singularValues.map(Double.init)
    // L <= M: the singular values are those of the transpose too.
    let l = Double(min(rows, columns)), m = Double(max(rows, columns))
    let h = s.count
    let alpha = l / m
    let tauBar = 2.5129 * alpha.squareRoot()
    let xBar = (1 + tauBar) * (1 + alpha / tauBar)
    let squares = s.map { $0 * $0 }
    let total = squares.reduce(0, +)
    guard total > 0 else { return VBMFEstimate(rank: 0, noiseVariance: 0, threshold: 0) }
    // Bounds of σ² (Nakajima et al. 2013, Section 5).
    let upper = total / (l * m)
    let eHUpper = min(Int((l / (1 + alpha)).rounded(.up)) - 1, h) - 1
    var lower = 0.0
    if eHUpper + 1 < h {
        let tail = squares[(eHUpper + 1)...]
        lower = max(squares[eHUpper + 1] / (m * xBar), tail.reduce(0, +) / Double(tail.count) / m)
    }
    lower = max(lower, upper * 1e-12)

    func tau(_ x: Double) -> Double {
        let d = x - (1 + alpha)
        return 0.5 * (d + max(d * d - 4 * alpha, 0).squareRoot())
    }
    // The free energy as a function of σ² (up to constants), for H = L.
    func objective(_ sigma2: Double) -> Double {
        var value = 0.0
        for sq in squares {
            let x = sq / (m * sigma2)
            if x > xBar {
                let t = tau(x)
                value += x - t + log((t + 1) / x) + alpha * log(t / alpha + 1)
            } else {
                value += x - log(x)
            }
        }
        return value
    }
    var sigma2 = lower
    if upper > lower {
        let a = log(lower), b = log(upper)
        let steps = 200
        var best = 0, bestValue = Double.infinity
        for i in 0...steps {
            let v = objective(exp(a + (b - a) * Double(i) / Double(steps)))
            if v < bestValue { bestValue = v; best = i }
        }
        var lo = a + (b - a) * Double(max(best - 1, 0)) / Double(steps)
        var hi = a + (b - a) * Double(min(best + 1, steps)) / Double(steps)
        let g = (5.0.squareRoot() - 1) / 2
        for _ in 0..<80 {
            let c = hi - g * (hi - lo), d = lo + g * (hi - lo)
            if objective(exp(c)) < objective(exp(d)) { hi = d } else { lo = c }
        }
        sigma2 = exp((lo + hi) / 2)
    }
    let threshold = (m * sigma2 * (1 + tauBar) * (1 + alpha / tauBar)).squareRoot()
    return VBMFEstimate(rank: s.filter { $0 > threshold }.count, noiseVariance: sigma2, threshold: threshold)
}

/// Tucker-2 ranks for a kernel `[N, C, kh, kw]` from VBMF of its mode unfoldings
/// (as Kim et al. 2016 choose them): the input rank from the `C x (N·kh·kw)`
/// unfolding, the output rank from the `N x (C·kh·kw)` one, each at least 1.
public func vbmfTucker2Ranks(_ weight: [Float], shape: [Int]) throws(LowRankError) -> (input: Int, output: Int) {
    guard shape.count == 4, shape.allSatisfy({ $0 > 0 }), weight.count == shape.reduce(1, *) else {
        throw .badShape(what: "convolution weight", shape: shape, expected: "[N, C, kh, kw]")
    }
    let n = shape[0], c = shape[1], s = shape[2] * shape[3]
    let output = try vbmfRank(weight, rows: n, columns: c * s).rank
    let input = try vbmfRank(unfold(weight, dims: shape, mode: 1), rows: c, columns: n * s).rank
    return (max(input, 1), max(output, 1))
}
