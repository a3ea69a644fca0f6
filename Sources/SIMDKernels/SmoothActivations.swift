// Vectorized exp, erfc and GELU for the epilogues of the blocked kernels
// (`BlockedClamp`): eight lanes at a time, no calls into libm.

/// e^x lane by lane, relative error about 2e-7 for x in [-87, 88]; lanes
/// outside are clamped to that range first (e^-87 ≈ 1.6e-38, e^88 ≈ 1.7e38).
/// x = n·ln 2 + r with |r| <= ln 2 / 2: e^r by its Taylor polynomial of
/// degree 7 (remainder below 5e-9), 2^n written into the exponent bits.
@inline(__always)
func exponential(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let x = x.clamped(lowerBound: SIMD8(repeating: -87), upperBound: SIMD8(repeating: 88))
    // Adding 1.5·2^23 rounds x·log2(e) to the nearest integer n and leaves n
    // in the low bits of the sum (its bit pattern is 0x4B400000 + n).
    let shifted = x * 1.44269504 + 12582912
    let n = shifted - 12582912
    // ln 2 = 355/512 - 2.12194440e-4: n·355/512 is exact for |n| < 2^15.
    let r = (x - n * 0.693359375) - n * -2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.0 / 5040)
    p = SIMD8(repeating: 1.0 / 720).addingProduct(p, r)
    p = SIMD8(repeating: 1.0 / 120).addingProduct(p, r)
    p = SIMD8(repeating: 1.0 / 24).addingProduct(p, r)
    p = SIMD8(repeating: 1.0 / 6).addingProduct(p, r)
    p = SIMD8(repeating: 0.5).addingProduct(p, r)
    p = SIMD8(repeating: 1).addingProduct(p, r)
    p = SIMD8(repeating: 1).addingProduct(p, r)
    let exponent = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    return p * unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD8<Float>.self)
}

/// erfc(z) for z >= 0 lane by lane, relative error within a few 1e-7 for
/// z <= 6 (beyond, the float32 rounding of z² dominates, as it does in any
/// float erfc): erfc(z) = t·e^(-z² + P(t)), t = 1 / (1 + z/2), with the
/// degree-9 polynomial P fitted by `scripts/fit-erfc.py` (4.8e-8 in float64).
@inline(__always)
func complementaryErrorFunction(_ z: SIMD8<Float>) -> SIMD8<Float> {
    let t = 1 / SIMD8<Float>(repeating: 1).addingProduct(z, SIMD8(repeating: 0.5))
    var p = SIMD8<Float>(repeating: 1.449302135e-01)
    p = SIMD8(repeating: -6.808271766e-01).addingProduct(p, t)
    p = SIMD8(repeating: 1.156733755e+00).addingProduct(p, t)
    p = SIMD8(repeating: -6.962518956e-01).addingProduct(p, t)
    p = SIMD8(repeating: -8.028043485e-02).addingProduct(p, t)
    p = SIMD8(repeating: 1.267587731e-03).addingProduct(p, t)
    p = SIMD8(repeating: 3.460279956e-02).addingProduct(p, t)
    p = SIMD8(repeating: 3.866404122e-01).addingProduct(p, t)
    p = SIMD8(repeating: 9.986327833e-01).addingProduct(p, t)
    p = SIMD8(repeating: -1.265447997e+00).addingProduct(p, t)
    return t * exponential(p.addingProduct(-z, z))
}

/// GELU, x·Φ(x) (Hendrycks & Gimpel 2016), lane by lane: Φ(x) = erfc(-x/√2) / 2,
/// taken as 1 - erfc(|x|/√2) / 2 for x >= 0, so negative lanes keep their
/// relative accuracy (no 1 + erf cancellation). GELU(0) = 0 exactly.
@inline(__always)
func gaussianErrorLinearUnit(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let z = x.replacing(with: -x, where: x .< 0) * 0.707106781
    let half = complementaryErrorFunction(z) * 0.5
    let phi = (1 - half).replacing(with: half, where: x .< 0)
    return x * phi
}

/// GELU's tanh approximation, x·(1 + tanh(u)) / 2 with u = √(2/π)(x + 0.044715x³),
/// lane by lane, as x / (1 + e^(-2u)).
@inline(__always)
func gaussianErrorLinearUnitTanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // -2u = x·(-2√(2/π) - 2·0.044715·√(2/π)·x²)
    let minusTwiceU = x * SIMD8(repeating: -1.59576912).addingProduct(x * x, SIMD8(repeating: -0.0713548162))
    return x / (1 + exponential(minusTwiceU))
}
