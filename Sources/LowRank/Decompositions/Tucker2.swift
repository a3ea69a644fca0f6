import Compress

/// A Tucker-2 decomposition of a convolution kernel `W [N, C, kh, kw]` on its two
/// channel modes: `W ≈ core ×₀ outputFactor ×₁ inputFactor`.
public struct Tucker2Factors: Sendable {
    /// `[outputRank, inputRank, kh, kw]`, row-major.
    public var core: [Float]
    /// `[C, inputRank]` with orthonormal columns, row-major.
    public var inputFactor: [Float]
    /// `[N, outputRank]` with orthonormal columns, row-major.
    public var outputFactor: [Float]
    public var inputRank: Int
    public var outputRank: Int
    /// `‖W − Ŵ‖_F / ‖W‖_F`.
    public var relativeError: Float
}

/// Tucker-2 of the kernel `weight [N, C, kh, kw]` at ranks `inputRank` (mode C)
/// and `outputRank` (mode N): initialized by HOSVD (the leading left singular
/// vectors of each mode's unfolding), then refined by `iterations` HOOI sweeps;
/// 0 iterations is plain HOSVD.
///
/// Kim et al., "Compression of Deep Convolutional Neural Networks for Fast and
/// Low Power Mobile Applications", ICLR 2016 (https://arxiv.org/abs/1511.06530).
///
/// - Throws: `LowRankError.rankOutOfRange` unless `1 <= inputRank <= min(C, N·kh·kw)`
///   and `1 <= outputRank <= min(N, C·kh·kw)`; `.badShape`, `.nonFiniteInput`, `.lapackFailure`.
public func tucker2(_ weight: Tensor, inputRank: Int, outputRank: Int, iterations: Int = 3) throws(LowRankError) -> Tucker2Factors {
    guard weight.rank == 4, weight.shape.allSatisfy({ $0 > 0 }) else {
        throw .badShape(what: "convolution weight", shape: weight.shape, expected: "[N, C, kh, kw]")
    }
    let w = weight.floats
    guard allFinite(w) else { throw .nonFiniteInput(what: "convolution weight") }
    let dims = weight.shape
    let n = dims[0], c = dims[1], s = dims[2] * dims[3]
    let fullInput = min(c, n * s), fullOutput = min(n, c * s)
    guard inputRank >= 1, inputRank <= fullInput else { throw .rankOutOfRange(rank: inputRank, fullRank: fullInput) }
    guard outputRank >= 1, outputRank <= fullOutput else { throw .rankOutOfRange(rank: outputRank, fullRank: fullOutput) }

    func leadingLeftVectors(_ x: [Float], rows: Int, columns: Int, count: Int) throws(LowRankError) -> [Float] {
        try SingularValueDecomposition(x, rows: rows, columns: columns).truncated(toRank: count).u
    }
    // HOSVD
    var uOut = try leadingLeftVectors(w, rows: n, columns: c * s, count: outputRank)
    var uIn = try leadingLeftVectors(unfold(w, dims: dims, mode: 1), rows: c, columns: n * s, count: inputRank)
    // HOOI: each factor from the other's projection.
    for _ in 0..<max(iterations, 0) {
        let y = modeProduct(w, dims: dims, mode: 0, uOut, newSize: outputRank, transpose: true)
        uIn = try leadingLeftVectors(unfold(y.values, dims: y.dims, mode: 1), rows: c, columns: outputRank * s, count: inputRank)
        let z = modeProduct(w, dims: dims, mode: 1, uIn, newSize: inputRank, transpose: true)
        uOut = try leadingLeftVectors(z.values, rows: n, columns: inputRank * s, count: outputRank)
    }
    let z = modeProduct(w, dims: dims, mode: 1, uIn, newSize: inputRank, transpose: true)
    let core = modeProduct(z.values, dims: z.dims, mode: 0, uOut, newSize: outputRank, transpose: true)
    let back = modeProduct(core.values, dims: core.dims, mode: 0, uOut, newSize: n)
    let reconstruction = modeProduct(back.values, dims: back.dims, mode: 1, uIn, newSize: c)
    return Tucker2Factors(core: core.values, inputFactor: uIn, outputFactor: uOut,
                          inputRank: inputRank, outputRank: outputRank,
                          relativeError: relativeError(w, reconstruction.values))
}
