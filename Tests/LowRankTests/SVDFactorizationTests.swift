import Compress
import Testing
@testable import LowRank

@Suite struct SVDFactorizationTests {
    @Test func linearIsExactAtFullRankAndErrorFallsWithRank() throws {
        var rng = SeededGenerator(seed: 10)
        let weight = rng.gaussianTensor([6, 4], std: 0.5), bias = rng.gaussianTensor([6], std: 0.5)
        let x = rng.gaussianTensor([3, 4])
        let original = try runLayer(.linear, weight: weight, bias: bias, on: x)
        var errors: [Float] = []
        for r in 1...4 {
            let f = try SVDFactorization.linear(weight: weight, bias: bias, rank: .rank(r))
            #expect(f.layers.map(\.weight.shape) == [[r, 4], [6, r]])
            #expect(f.layers[0].bias == nil && f.layers[1].bias != nil)
            errors.append(relativeDifference(original, try runChain(f.layers, on: x)))
        }
        #expect(errors.last! < 1e-5)
        #expect(isNonIncreasing(errors))
        #expect(errors.first! > 1e-2)
    }

    @Test(arguments: ConvCase.all)
    func channelIsExactAtFullRankAndErrorFallsWithRank(_ c: ConvCase) throws {
        let (weight, bias, x, original) = try c.fixture(seed: 20)
        let full = min(c.out, c.channels * c.kh * c.kw)
        var errors: [Float] = []
        for r in 1...full {
            let f = try SVDFactorization.channel(weight: weight, bias: bias, attributes: c.attributes, rank: .rank(r))
            #expect(f.layers.map(\.weight.shape) == [[r, c.channels, c.kh, c.kw], [c.out, r, 1, 1]])
            errors.append(relativeDifference(original, try runChain(f.layers, on: x)))
        }
        #expect(maxAbsDifference(original, try runChain(
            SVDFactorization.channel(weight: weight, bias: bias, attributes: c.attributes, rank: .rank(full)).layers, on: x)) < 1e-4)
        #expect(errors.last! < 1e-5)
        #expect(errors.first! > 0.05)
        #expect(isNonIncreasing(errors))
    }

    @Test(arguments: ConvCase.all)
    func spatialIsExactAtFullRankAndErrorFallsWithRank(_ c: ConvCase) throws {
        let (weight, bias, x, original) = try c.fixture(seed: 30)
        let full = min(c.channels * c.kh, c.kw * c.out)
        var errors: [Float] = []
        var weightErrors: [Float] = []
        for r in 1...full {
            let f = try SVDFactorization.spatial(weight: weight, bias: bias, attributes: c.attributes, rank: .rank(r))
            #expect(f.layers.map(\.weight.shape) == [[r, c.channels, c.kh, 1], [c.out, r, 1, c.kw]])
            errors.append(relativeDifference(original, try runChain(f.layers, on: x)))
            weightErrors.append(f.relativeError)
        }
        let f = try SVDFactorization.spatial(weight: weight, bias: bias, attributes: c.attributes, rank: .rank(full))
        #expect(maxAbsDifference(original, try runChain(f.layers, on: x)) < 1e-4)
        #expect(errors.last! < 1e-5)
        #expect(errors.first! > 0.05)
        #expect(isNonIncreasing(errors))
        #expect(isNonIncreasing(weightErrors, slack: 0))
    }

    @Test func energySelectsTheRankOfTheFactorization() throws {
        var rng = SeededGenerator(seed: 40)
        let weight = rng.gaussianTensor([8, 3, 3, 3])
        let f = try SVDFactorization.channel(weight: weight, bias: nil, attributes: Conv2d(), rank: .energy(1))
        #expect(f.ranks == [8])
        let half = try SVDFactorization.channel(weight: weight, bias: nil, attributes: Conv2d(), rank: .energy(0.5))
        #expect(half.ranks[0] < 8 && half.relativeError <= Float(0.5).squareRoot() + 1e-6)
    }

    @Test func refusals() throws {
        var rng = SeededGenerator(seed: 50)
        let conv = rng.gaussianTensor([4, 3, 3, 3]), linear = rng.gaussianTensor([5, 3])
        expectError(.rankOutOfRange(rank: 0, fullRank: 3)) { try SVDFactorization.linear(weight: linear, bias: nil, rank: .rank(0)) }
        expectError(.rankOutOfRange(rank: 4, fullRank: 3)) { try SVDFactorization.linear(weight: linear, bias: nil, rank: .rank(4)) }
        expectError(.energyOutOfRange(0)) { try SVDFactorization.linear(weight: linear, bias: nil, rank: .energy(0)) }
        expectError(.energyOutOfRange(1.5)) {
            try SVDFactorization.channel(weight: conv, bias: nil, attributes: Conv2d(), rank: .energy(1.5))
        }
        expectError(.rankOutOfRange(rank: 5, fullRank: 4)) {
            try SVDFactorization.channel(weight: conv, bias: nil, attributes: Conv2d(), rank: .rank(5))
        }
        expectError(.rankOutOfRange(rank: 10, fullRank: 9)) {
            try SVDFactorization.spatial(weight: conv, bias: nil, attributes: Conv2d(), rank: .rank(10))
        }
        let grouped = rng.gaussianTensor([4, 1, 3, 3])
        expectError(.groupedConvolution(groups: 2)) {
            try SVDFactorization.channel(weight: grouped, bias: nil, attributes: Conv2d(groups: 2), rank: .rank(1))
        }
        expectError(.groupedConvolution(groups: 4)) {
            try SVDFactorization.spatial(weight: grouped, bias: nil, attributes: Conv2d(groups: 4), rank: .rank(1))
        }
        expectError(.badShape(what: "bias", shape: [3], expected: "[5]")) {
            try SVDFactorization.linear(weight: linear, bias: .zeros([3]), rank: .rank(1))
        }
    }
}
