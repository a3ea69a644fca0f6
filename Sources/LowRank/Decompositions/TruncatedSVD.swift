import CLAPACKE

/// A (possibly truncated) singular value decomposition `A ≈ U · diag(s) · Vᵀ` of a
/// row-major `rows x columns` float matrix.
///
/// `u` is `rows x rank` and `vt` is `rank x columns`, both row-major;
/// `singularValues` holds `rank` values, non-increasing and non-negative.
/// `allSingularValues` keeps the full spectrum so truncation errors and the
/// energy rule stay available after truncation.
public struct SingularValueDecomposition: Sendable {
    public let rows: Int
    public let columns: Int
    public let u: [Float]
    public let singularValues: [Float]
    public let vt: [Float]
    /// Every singular value of the original matrix, `min(rows, columns)` of them.
    public let allSingularValues: [Float]

    /// The number of kept components.
    public var rank: Int { singularValues.count }
    /// The largest rank the shape allows, `min(rows, columns)`.
    public var fullRank: Int { min(rows, columns) }

    /// The thin SVD of `matrix` (row-major, `rows x columns`) by LAPACK's
    /// divide-and-conquer `sgesdd`.
    ///
    /// - Throws: `LowRankError.badShape` when the sizes do not match or are zero,
    ///   `.nonFiniteInput` for NaN or infinite entries, `.lapackFailure` when
    ///   `sgesdd` reports `info != 0`.
    public init(_ matrix: [Float], rows: Int, columns: Int) throws(LowRankError) {
        guard rows > 0, columns > 0, matrix.count == rows * columns else {
            throw .badShape(what: "matrix of \(matrix.count) values", shape: [rows, columns],
                            expected: "rows x columns values, both positive")
        }
        guard allFinite(matrix) else { throw .nonFiniteInput(what: "matrix") }
        let k = min(rows, columns)
        var a = matrix
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: rows * k)
        var vt = [Float](repeating: 0, count: k * columns)
        let info = a.withUnsafeMutableBufferPointer { pa in
            s.withUnsafeMutableBufferPointer { ps in
                u.withUnsafeMutableBufferPointer { pu in
                    vt.withUnsafeMutableBufferPointer { pv in
                        LAPACKE_sgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(rows), Int32(columns),
                                       pa.baseAddress, Int32(columns), ps.baseAddress,
                                       pu.baseAddress, Int32(k), pv.baseAddress, Int32(columns))
                    }
                }
            }
        }
        guard info == 0 else { throw .lapackFailure(routine: "sgesdd", info: Int(info)) }
        guard allFinite(s), allFinite(u), allFinite(vt) else { throw .lapackFailure(routine: "sgesdd", info: -1000) }
        self.init(rows: rows, columns: columns, u: u, singularValues: s, vt: vt, allSingularValues: s)
    }

    init(rows: Int, columns: Int, u: [Float], singularValues: [Float], vt: [Float], allSingularValues: [Float]) {
        self.rows = rows; self.columns = columns; self.u = u
        self.singularValues = singularValues; self.vt = vt; self.allSingularValues = allSingularValues
    }

    /// The leading `rank` components.
    ///
    /// - Throws: `LowRankError.rankOutOfRange` unless `1 <= rank <= self.rank`.
    public func truncated(toRank r: Int) throws(LowRankError) -> SingularValueDecomposition {
        guard r >= 1, r <= rank else { throw .rankOutOfRange(rank: r, fullRank: rank) }
        if r == rank { return self }
        var ur = [Float](repeating: 0, count: rows * r)
        for i in 0..<rows { for j in 0..<r { ur[i * r + j] = u[i * rank + j] } }
        return SingularValueDecomposition(rows: rows, columns: columns, u: ur, singularValues: Array(singularValues[..<r]),
                                          vt: Array(vt[..<(r * columns)]), allSingularValues: allSingularValues)
    }

    /// The smallest rank `r` whose leading singular values keep at least the
    /// fraction `energy` of `Σ sᵢ²` (at least 1).
    ///
    /// - Throws: `LowRankError.energyOutOfRange` unless `0 < energy <= 1`.
    public func rank(keepingEnergy energy: Float) throws(LowRankError) -> Int {
        guard energy > 0, energy <= 1, energy.isFinite else { throw .energyOutOfRange(energy) }
        let squares = allSingularValues.map { Double($0) * Double($0) }
        let total = squares.reduce(0, +)
        if total == 0 { return 1 }
        let goal = Double(energy) * total * (1 - 1e-12)
        var kept = 0.0
        for (i, sq) in squares.enumerated() {
            kept += sq
            if kept >= goal { return i + 1 }
        }
        return squares.count
    }

    /// The leading components chosen by `selection`.
    public func truncated(_ selection: RankSelection) throws(LowRankError) -> SingularValueDecomposition {
        switch selection {
        case .rank(let r):
            guard r >= 1, r <= fullRank else { throw .rankOutOfRange(rank: r, fullRank: fullRank) }
            return try truncated(toRank: r)
        case .energy(let e):
            return try truncated(toRank: rank(keepingEnergy: e))
        case .vbmf:
            return try truncated(toRank: max(1, vbmfRank(singularValues: allSingularValues, rows: rows, columns: columns).rank))
        }
    }

    /// `U · diag(s) · Vᵀ`, row-major `rows x columns`.
    public func reconstructed() -> [Float] {
        var us = u
        let r = rank
        for i in 0..<rows { for j in 0..<r { us[i * r + j] *= singularValues[j] } }
        return matmul(us, vt, m: rows, k: r, n: columns)
    }

    /// `‖A − A_r‖_F / ‖A‖_F` for the kept rank, from the discarded singular values
    /// (Eckart–Young).
    public var relativeTruncationError: Float {
        let squares = allSingularValues.map { Double($0) * Double($0) }
        let total = squares.reduce(0, +)
        guard total > 0 else { return 0 }
        return Float((squares[rank...].reduce(0, +) / total).squareRoot())
    }

    /// The factors with the singular values split as square roots into both:
    /// `left = U·√s` (`rows x rank`) and `right = √s·Vᵀ` (`rank x columns`), so `A ≈ left · right`.
    public func balancedFactors() -> (left: [Float], right: [Float]) {
        let r = rank
        let roots = singularValues.map { $0.squareRoot() }
        var left = u
        for i in 0..<rows { for j in 0..<r { left[i * r + j] *= roots[j] } }
        var right = vt
        for j in 0..<r { for c in 0..<columns { right[j * columns + c] *= roots[j] } }
        return (left, right)
    }
}

/// The singular values of `matrix` (row-major `rows x columns`), non-increasing.
public func singularValues(of matrix: [Float], rows: Int, columns: Int) throws(LowRankError) -> [Float] {
    try SingularValueDecomposition(matrix, rows: rows, columns: columns).singularValues
}
