import Foundation

/// A small, fast, seeded random number generator (xoshiro256**, seeded through
/// SplitMix64). Every random choice in the project takes one of these, so the
/// same seed gives the same bytes on every machine.
///
/// Blackman & Vigna, "Scrambled Linear Pseudorandom Number Generators", 2018.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm); s1 = splitMix(&sm); s2 = splitMix(&sm); s3 = splitMix(&sm)
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A float uniformly distributed in [0, 1), from the top 24 bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (Box–Muller), computed in Double for portability.
    public mutating func nextGaussian() -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A float32 tensor of `shape` with samples from N(0, std²).
    public mutating func gaussianTensor(_ shape: [Int], std: Float = 1) -> Tensor {
        var v = [Float](repeating: 0, count: shape.elementCount)
        for i in v.indices { v[i] = nextGaussian() * std }
        return Tensor(shape: shape, floats: v)
    }

    /// A float32 tensor of `shape` with samples uniform in [lo, hi).
    public mutating func uniformTensor(_ shape: [Int], in range: ClosedRange<Float> = 0...1) -> Tensor {
        var v = [Float](repeating: 0, count: shape.elementCount)
        let width = range.upperBound - range.lowerBound
        for i in v.indices { v[i] = range.lowerBound + nextUniform() * width }
        return Tensor(shape: shape, floats: v)
    }
}
