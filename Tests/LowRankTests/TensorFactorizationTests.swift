import Compress
import Testing
@testable import LowRank

@Suite struct TensorFactorizationTests {
    @Test(arguments: ConvCase.all)
    func tucker2IsExactAtFullRanksAndErrorFallsWithRank(_ c: ConvCase) throws {
        let (weight, bias, x, original) = try c.fixture(seed: 60)
        for iterations in [0, 3] {
            let f = try TensorFactorization.tucker2(weight: weight, bias: bias, attributes: c.attributes,
                                                    inputRank: c.channels, outputRank: c.out, iterations: iterations)
            #expect(f.layers.map(\.weight.shape)
                    == [[c.channels, c.channels, 1, 1], [c.out, c.channels, c.kh, c.kw], [c.out, c.out, 1, 1]])
            #expect(f.relativeError < 1e-5)
            #expect(maxAbsDifference(original, try runChain(f.layers, on: x)) < 1e-4)
        }
        // HOSVD subspaces are nested, so the error cannot grow with the ranks.
        var outputErrors: [Float] = [], weightErrors: [Float] = []
        for r in 1...min(c.channels, c.out) {
            let f = try TensorFactorization.tucker2(weight: weight, bias: bias, attributes: c.attributes,
                                                    inputRank: r, outputRank: r + c.out - min(c.channels, c.out), iterations: 0)
            outputErrors.append(relativeDifference(original, try runChain(f.layers, on: x)))
            weightErrors.append(f.relativeError)
            // HOOI refines HOSVD: never worse.
            let refined = try tucker2(weight, inputRank: f.ranks[0], outputRank: f.ranks[1], iterations: 5)
            #expect(refined.relativeError <= f.relativeError + 1e-5)
        }
        #expect(isNonIncreasing(weightErrors))
        #expect(isNonIncreasing(outputErrors, slack: 1e-4))
        #expect(outputErrors.first! > 0.05)
    }

    @Test func tucker2FactorsAreOrthonormal() throws {
        var rng = SeededGenerator(seed: 61)
        let f = try tucker2(rng.gaussianTensor([6, 5, 3, 3]), inputRank: 3, outputRank: 4, iterations: 3)
        for (u, rows, k) in [(f.inputFactor, 5, 3), (f.outputFactor, 6, 4)] {
            for p in 0..<k { for q in 0..<k {
                var dot: Float = 0
                for i in 0..<rows { dot += u[i * k + p] * u[i * k + q] }
                #expect(abs(dot - (p == q ? 1 : 0)) < 1e-5)
            } }
        }
        #expect(f.relativeError > 0.05 && f.relativeError < 1)
    }

    /// A kernel that is exactly rank 3 in the CP sense.
    static func cpKernel(seed: UInt64, shape: [Int], rank: Int) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let factors = shape.map { rng.gaussianTensor([$0, rank]).floats }
        var w = [Float](repeating: 0, count: shape.reduce(1, *))
        var flat = 0
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] { for l in 0..<shape[3] {
            for r in 0..<rank {
                w[flat] += factors[0][i * rank + r] * factors[1][j * rank + r] * factors[2][k * rank + r] * factors[3][l * rank + r]
            }
            flat += 1
        } } } }
        return Tensor(shape: shape, floats: w)
    }

    @Test func cpRecoversAKernelOfKnownRank() throws {
        let weight = Self.cpKernel(seed: 70, shape: [6, 5, 3, 3], rank: 3)
        let f = try cpALS(weight, rank: 3, maxIterations: 2000, seed: 1)
        #expect(f.relativeError < 1e-3)
        #expect(f.iterations > 1)
        // The layers reproduce the convolution to the same accuracy.
        var rng = SeededGenerator(seed: 71)
        let bias = rng.gaussianTensor([6], std: 0.5)
        let x = rng.gaussianTensor([2, 5, 7, 6])
        for attributes in ConvCase.all.map(\.attributes) where attributes.dilation == .square(1) {
            let layers = try TensorFactorization.cp(weight: weight, bias: bias, attributes: attributes, rank: 3,
                                                    maxIterations: 2000, seed: 1)
            #expect(layers.layers.map(\.weight.shape) == [[3, 5, 1, 1], [3, 1, 3, 1], [3, 1, 1, 3], [6, 3, 1, 1]])
            let original = try runLayer(.conv2d(attributes), weight: weight, bias: bias, on: x)
            #expect(relativeDifference(original, try runChain(layers.layers, on: x)) < 2e-3)
        }
    }

    @Test func cpReportsItsErrorBelowFullRank() throws {
        var rng = SeededGenerator(seed: 72)
        let weight = rng.gaussianTensor([6, 5, 3, 3])
        let low = try cpALS(weight, rank: 2, maxIterations: 200)
        let high = try cpALS(weight, rank: 12, maxIterations: 200)
        #expect(low.relativeError.isFinite && low.relativeError > 0.3 && low.relativeError < 1)
        #expect(high.relativeError < low.relativeError)
        #expect([low.weights, low.output, low.input, low.vertical, low.horizontal].allSatisfy { $0.allSatisfy(\.isFinite) })
    }

    @Test func refusals() throws {
        var rng = SeededGenerator(seed: 80)
        let weight = rng.gaussianTensor([4, 3, 3, 3])
        expectError(.rankOutOfRange(rank: 0, fullRank: 3)) {
            try TensorFactorization.tucker2(weight: weight, bias: nil, attributes: Conv2d(), inputRank: 0, outputRank: 2)
        }
        expectError(.rankOutOfRange(rank: 4, fullRank: 3)) {
            try TensorFactorization.tucker2(weight: weight, bias: nil, attributes: Conv2d(), inputRank: 4, outputRank: 2)
        }
        expectError(.rankOutOfRange(rank: 5, fullRank: 4)) {
            try TensorFactorization.tucker2(weight: weight, bias: nil, attributes: Conv2d(), inputRank: 2, outputRank: 5)
        }
        expectError(.rankOutOfRange(rank: 0, fullRank: 27)) {
            try TensorFactorization.cp(weight: weight, bias: nil, attributes: Conv2d(), rank: 0)
        }
        let grouped = rng.gaussianTensor([4, 1, 3, 3])
        expectError(.groupedConvolution(groups: 3)) {
            try TensorFactorization.tucker2(weight: grouped, bias: nil, attributes: Conv2d(groups: 3), inputRank: 1, outputRank: 1)
        }
        expectError(.groupedConvolution(groups: 2)) {
            try TensorFactorization.cp(weight: grouped, bias: nil, attributes: Conv2d(groups: 2), rank: 1)
        }
        var bad = weight.floats
        bad[5] = .infinity
        expectError(.nonFiniteInput(what: "convolution weight")) {
            try TensorFactorization.cp(weight: Tensor(shape: weight.shape, floats: bad), bias: nil, attributes: Conv2d(), rank: 2)
        }
        #expect(LowRankError.cpDiverged(rank: 9, iteration: 4).description.contains("try a lower rank or Tucker-2"))
    }
}

@Suite struct CPDivergenceTests {
    /// At every rank up to the bound, on random and on ill-conditioned kernels,
    /// CP-ALS either returns finite factors or throws `cpDiverged`; never NaNs.
    @Test(arguments: [1, 4, 9, 20, 27])
    func neverReturnsNonFiniteFactors(rank: Int) throws {
        var rng = SeededGenerator(seed: 100)
        var w = rng.gaussianTensor([4, 3, 3, 3]).floats
        // Make one output filter nearly a copy of another: a degenerate kernel.
        for i in 0..<27 { w[27 + i] = w[i] + 1e-6 * Float(i) }
        let result = Result { () throws(LowRankError) -> CPFactors in
            try cpALS(Tensor(shape: [4, 3, 3, 3], floats: w), rank: rank, maxIterations: 100)
        }
        switch result {
        case .success(let f):
            #expect([f.weights, f.output, f.input, f.vertical, f.horizontal].allSatisfy { $0.allSatisfy(\.isFinite) })
            #expect(f.relativeError.isFinite && f.relativeError < 1)
        case .failure(let error):
            guard case .cpDiverged(rank, _) = error else {
                Issue.record("expected cpDiverged, got \(error)")
                return
            }
        }
    }
}
