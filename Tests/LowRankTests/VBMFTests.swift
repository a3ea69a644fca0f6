import Compress
import Testing
@testable import LowRank

@Suite struct VBMFTests {
    /// `A Bᵀ + noise`, `rows x columns`, with A and B Gaussian of `rank` columns.
    static func noisyLowRank(rows: Int, columns: Int, rank: Int, noise: Float, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        let a = rng.gaussianTensor([rows, rank]).floats, b = rng.gaussianTensor([columns, rank]).floats
        var m = matmul(a, b, m: rows, k: rank, n: columns, transposeB: true)
        for i in m.indices { m[i] += noise * rng.nextGaussian() }
        return m
    }

    @Test(arguments: [(30, 50, 4), (60, 40, 7), (25, 25, 3)])
    func picksTheTrueRank(rows: Int, columns: Int, rank: Int) throws {
        let m = Self.noisyLowRank(rows: rows, columns: columns, rank: rank, noise: 0.3, seed: UInt64(rows + rank))
        let estimate = try vbmfRank(m, rows: rows, columns: columns)
        #expect(estimate.rank == rank)
        // σ² is estimated near the true 0.09.
        #expect(abs(estimate.noiseVariance - 0.09) < 0.03)
    }

    @Test func pureNoiseHasRankZero() throws {
        var rng = SeededGenerator(seed: 90)
        let m = rng.gaussianTensor([30, 40]).floats
        #expect(try vbmfRank(m, rows: 30, columns: 40).rank == 0)
    }

    @Test func tucker2RanksFromAKernelOfKnownMultilinearRank() throws {
        // core [4, 3, 3, 3] ×₀ U [16, 4] ×₁ V [12, 3] plus noise.
        var rng = SeededGenerator(seed: 91)
        let core = rng.gaussianTensor([4, 3, 3, 3], std: 3).floats
        let u = rng.gaussianTensor([16, 4]).floats, v = rng.gaussianTensor([12, 3]).floats
        let a = modeProduct(core, dims: [4, 3, 3, 3], mode: 0, u, newSize: 16)
        var w = modeProduct(a.values, dims: a.dims, mode: 1, v, newSize: 12).values
        for i in w.indices { w[i] += 0.1 * rng.nextGaussian() }
        let ranks = try vbmfTucker2Ranks(w, shape: [16, 12, 3, 3])
        #expect(ranks.input == 3 && ranks.output == 4)
    }
}
