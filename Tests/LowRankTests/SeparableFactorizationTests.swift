import Compress
import Testing
@testable import LowRank

@Suite struct SeparableFactorizationTests {
    @Test(arguments: ConvCase.all)
    func exactAtFullMultiplierAndErrorFallsWithIt(_ c: ConvCase) throws {
        let (weight, bias, x, original) = try c.fixture(seed: 110)
        let full = min(c.out, c.kh * c.kw)
        var errors: [Float] = [], weightErrors: [Float] = []
        for m in 1...full {
            let f = try SVDFactorization.separable(weight: weight, bias: bias, attributes: c.attributes, multiplier: .rank(m))
            #expect(f.layers.map(\.weight.shape) == [[c.channels * m, 1, c.kh, c.kw], [c.out, c.channels * m, 1, 1]])
            guard case .conv2d(let a) = f.layers[0].op else { Issue.record("not a conv"); return }
            #expect(a.groups == c.channels && a.stride == c.attributes.stride && a.padding == c.attributes.padding
                    && a.dilation == c.attributes.dilation)
            #expect(f.layers[0].bias == nil && f.layers[1].bias == bias)
            errors.append(relativeDifference(original, try runChain(f.layers, on: x)))
            weightErrors.append(f.relativeError)
        }
        let f = try SVDFactorization.separable(weight: weight, bias: bias, attributes: c.attributes, multiplier: .rank(full))
        #expect(maxAbsDifference(original, try runChain(f.layers, on: x)) < 1e-4)
        #expect(errors.last! < 1e-5 && weightErrors.last! < 1e-5)
        #expect(errors.first! > 0.05)
        #expect(isNonIncreasing(errors))
        #expect(isNonIncreasing(weightErrors, slack: 0))
    }

    /// The weight error is the one the SVDs of the channel slices discard, and
    /// it is the distance to the kernel the layers compute.
    @Test func reportedErrorIsTheWeightError() throws {
        var rng = SeededGenerator(seed: 111)
        let weight = rng.gaussianTensor([5, 3, 3, 3])
        let f = try SVDFactorization.separable(weight: weight, bias: nil, attributes: Conv2d(), multiplier: .rank(2))
        // Ŵ[n, c, t] = Σ_j P[n, c·m + j] D[c·m + j, t]
        let d = f.layers[0].weight.floats, p = f.layers[1].weight.floats
        var diff = 0.0, norm = 0.0
        for n in 0..<5 { for c in 0..<3 { for t in 0..<9 {
            var v: Float = 0
            for j in 0..<2 { v += p[n * 6 + c * 2 + j] * d[(c * 2 + j) * 9 + t] }
            let w = weight.floats[(n * 3 + c) * 9 + t]
            diff += Double(w - v) * Double(w - v); norm += Double(w) * Double(w)
        } } }
        #expect(abs(Float((diff / norm).squareRoot()) - f.relativeError) < 1e-5)
        #expect(f.relativeError > 0.1)
    }

    /// `W[n, c, :, :] = p[n, c] · d[c, :, :]` is depthwise-separable with
    /// multiplier 1, so one depthwise filter per channel reproduces it.
    @Test(arguments: ConvCase.all)
    func exactAtMultiplierOneOnASeparableKernel(_ c: ConvCase) throws {
        var rng = SeededGenerator(seed: 112)
        let p = rng.gaussianTensor([c.out, c.channels]).floats, d = rng.gaussianTensor([c.channels, c.kh * c.kw]).floats
        let s = c.kh * c.kw
        var w = [Float](repeating: 0, count: c.out * c.channels * s)
        for n in 0..<c.out { for i in 0..<c.channels { for t in 0..<s { w[(n * c.channels + i) * s + t] = p[n * c.channels + i] * d[i * s + t] } } }
        let weight = Tensor(shape: [c.out, c.channels, c.kh, c.kw], floats: w)
        let bias = rng.gaussianTensor([c.out]), x = rng.gaussianTensor([2, c.channels, c.inputSize.h, c.inputSize.w])
        let original = try runLayer(.conv2d(c.attributes), weight: weight, bias: bias, on: x)
        let f = try SVDFactorization.separable(weight: weight, bias: bias, attributes: c.attributes, multiplier: .rank(1))
        #expect(f.relativeError < 1e-5)
        #expect(f.layers[0].weight.shape == [c.channels, 1, c.kh, c.kw])
        #expect(relativeDifference(original, try runChain(f.layers, on: x)) < 1e-5)
        // Energy 0.999 needs no more than that one filter per channel.
        #expect(try SVDFactorization.separable(weight: weight, bias: bias, attributes: c.attributes, multiplier: .energy(0.999)).ranks == [1])
    }

    /// Energy and VBMF pick the multiplier from the channel slices' singular values.
    @Test func energyAndVBMFPickTheMultiplier() throws {
        var rng = SeededGenerator(seed: 113)
        let weight = rng.gaussianTensor([12, 4, 3, 3])
        let slices = (0..<4).map { c in
            (0..<12).flatMap { n in (0..<9).map { t in weight.floats[(n * 4 + c) * 9 + t] } }
        }
        let squares = try slices.map { try singularValues(of: $0, rows: 12, columns: 9).map { Double($0) * Double($0) } }
        let total = squares.joined().reduce(0, +)
        for e: Float in [0.3, 0.6, 0.9, 1] {
            let expected = (1...9).first { m in squares.reduce(0) { $0 + $1[..<m].reduce(0, +) } >= Double(e) * total * (1 - 1e-12) }!
            let f = try SVDFactorization.separable(weight: weight, bias: nil, attributes: Conv2d(), multiplier: .energy(e))
            #expect(f.ranks == [expected], "energy \(e)")
            #expect(f.relativeError <= (1 - e).squareRoot() + 1e-5)
        }
        // Slice 2 holds a strong rank-3 part; VBMF's multiplier is the largest slice rank.
        var w = weight.floats
        let a = rng.gaussianTensor([12, 3], std: 3).floats, b = rng.gaussianTensor([3, 9], std: 3).floats
        let lowRank = matmul(a, b, m: 12, k: 3, n: 9)
        for n in 0..<12 { for t in 0..<9 { w[(n * 4 + 2) * 9 + t] += lowRank[n * 9 + t] } }
        let strong = Tensor(shape: [12, 4, 3, 3], floats: w)
        let perSlice = try (0..<4).map { c in
            try vbmfRank((0..<12).flatMap { n in (0..<9).map { t in w[(n * 4 + c) * 9 + t] } }, rows: 12, columns: 9).rank
        }
        #expect(perSlice[2] == 3)
        let f = try SVDFactorization.separable(weight: strong, bias: nil, attributes: Conv2d(), multiplier: .vbmf)
        #expect(f.ranks == [max(1, perSlice.max()!)])
    }

    @Test func refusals() throws {
        var rng = SeededGenerator(seed: 114)
        let weight = rng.gaussianTensor([4, 3, 3, 3])
        expectError(.rankOutOfRange(rank: 0, fullRank: 4)) {
            try SVDFactorization.separable(weight: weight, bias: nil, attributes: Conv2d(), multiplier: .rank(0))
        }
        expectError(.rankOutOfRange(rank: 5, fullRank: 4)) {
            try SVDFactorization.separable(weight: weight, bias: nil, attributes: Conv2d(), multiplier: .rank(5))
        }
        expectError(.energyOutOfRange(0)) {
            try SVDFactorization.separable(weight: weight, bias: nil, attributes: Conv2d(), multiplier: .energy(0))
        }
        expectError(.groupedConvolution(groups: 3)) {
            try SVDFactorization.separable(weight: rng.gaussianTensor([3, 1, 3, 3]), bias: nil, attributes: Conv2d(groups: 3),
                                           multiplier: .rank(1))
        }
    }
}
