import Compress
import Testing
@testable import LowRank

@Suite struct TruncatedSVDTests {
    @Test(arguments: [(7, 5), (5, 9), (12, 12), (1, 4)])
    func reconstructsRandomMatrices(rows: Int, columns: Int) throws {
        var rng = SeededGenerator(seed: UInt64(rows * 100 + columns))
        let a = rng.gaussianTensor([rows, columns]).floats
        let svd = try SingularValueDecomposition(a, rows: rows, columns: columns)
        #expect(svd.rank == min(rows, columns))
        #expect(svd.singularValues.allSatisfy { $0 >= 0 })
        #expect(zip(svd.singularValues, svd.singularValues.dropFirst()).allSatisfy { $0 >= $1 })
        let back = svd.reconstructed()
        let worst = zip(a, back).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5)
        // Uᵀ U = I
        let k = svd.rank
        for p in 0..<k { for q in 0..<k {
            var dot: Float = 0
            for i in 0..<rows { dot += svd.u[i * k + p] * svd.u[i * k + q] }
            #expect(abs(dot - (p == q ? 1 : 0)) < 1e-5)
        } }
    }

    @Test func truncationErrorIsEckartYoungAndNonIncreasing() throws {
        var rng = SeededGenerator(seed: 3)
        let a = rng.gaussianTensor([10, 8]).floats
        let svd = try SingularValueDecomposition(a, rows: 10, columns: 8)
        var errors: [Float] = []
        for r in 1...8 {
            let t = try svd.truncated(toRank: r)
            let measured = relativeError(a, t.reconstructed())
            #expect(abs(measured - t.relativeTruncationError) < 1e-5)
            errors.append(measured)
        }
        #expect(isNonIncreasing(errors, slack: 0))
        #expect(errors.last! < 1e-5)
    }

    @Test func energyRuleKeepsTheSmallestSufficientRank() throws {
        // Singular values 4, 3, 2, 1: squares 16, 9, 4, 1 of 30.
        var a = [Float](repeating: 0, count: 4 * 6)
        for (i, s) in [Float(2), 4, 1, 3].enumerated() { a[i * 6 + (i + 1)] = s }
        let svd = try SingularValueDecomposition(a, rows: 4, columns: 6)
        #expect(svd.singularValues.map { ($0 * 1e4).rounded() / 1e4 } == [4, 3, 2, 1])
        #expect(try svd.rank(keepingEnergy: 0.5) == 1)    // 16/30 = 0.533
        #expect(try svd.rank(keepingEnergy: 0.6) == 2)    // 25/30 = 0.833
        #expect(try svd.rank(keepingEnergy: 0.85) == 3)   // 29/30 = 0.967
        #expect(try svd.rank(keepingEnergy: 1) == 4)
        #expect(try svd.truncated(.energy(0.6)).rank == 2)
    }

    @Test func refusals() throws {
        var rng = SeededGenerator(seed: 4)
        let a = rng.gaussianTensor([4, 3]).floats
        let svd = try SingularValueDecomposition(a, rows: 4, columns: 3)
        expectError(.rankOutOfRange(rank: 0, fullRank: 3)) { try svd.truncated(.rank(0)) }
        expectError(.rankOutOfRange(rank: 4, fullRank: 3)) { try svd.truncated(.rank(4)) }
        expectError(.energyOutOfRange(0)) { try svd.truncated(.energy(0)) }
        expectError(.energyOutOfRange(1.5)) { try svd.rank(keepingEnergy: 1.5) }
        expectError(.nonFiniteInput(what: "matrix")) { try SingularValueDecomposition([.nan, 1, 2, 3], rows: 2, columns: 2) }
        expectError(.badShape(what: "matrix of 5 values", shape: [2, 3], expected: "rows x columns values, both positive")) {
            try SingularValueDecomposition([1, 2, 3, 4, 5], rows: 2, columns: 3)
        }
        #expect(LowRankError.rankOutOfRange(rank: 0, fullRank: 3).description
                == "rank 0 is out of range: it must be between 1 and the full rank 3")
    }
}
