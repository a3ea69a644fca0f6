// The per-plane loops of BatchNorm on NCHW8c values (the training kernel in
// Compress, Training/BlockedBatchNorm.swift): one image's block of eight
// channels, `pixels` vectors 8 floats apart, eight channels per vector. Every
// per-channel quantity is passed as a pointer to 8 floats (one per lane).
// An optional fused ReLU/ReLU6 (`upper` infinity or 6): the forward writes
// `min(max(y, 0), upper)`, the backward passes `dY` only where `0 < y < upper`,
// `y = x * scale + shift` recomputed exactly as the forward computed it.

/// Per lane `sums += Σ x` and `squares += Σ (x - mean)²` over the plane's pixels
/// (Float, four accumulators); `squares` only when `mean` is given.
public func blockedPlaneMoments(_ x: UnsafePointer<Float>, pixels: Int, mean: UnsafePointer<Float>?,
                                sums: UnsafeMutablePointer<Float>) {
    var (a, b, c, d) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var k = 0
    if let mean {
        let m = load8(mean)
        while k &+ 4 <= pixels {
            let p = x + k &* 8
            let (u, v, w, z) = (load8(p) - m, load8(p + 8) - m, load8(p + 16) - m, load8(p + 24) - m)
            a += u * u; b += v * v; c += w * w; d += z * z
            k &+= 4
        }
        while k < pixels {
            let u = load8(x + k &* 8) - m
            a += u * u
            k &+= 1
        }
    } else {
        while k &+ 4 <= pixels {
            let p = x + k &* 8
            a += load8(p); b += load8(p + 8); c += load8(p + 16); d += load8(p + 24)
            k &+= 4
        }
        while k < pixels { a += load8(x + k &* 8); k &+= 1 }
    }
    store8((a + b) + (c + d), sums)
}

/// `y = x * scale + shift` over the plane, clamped to `[0, upper]` when `fused`.
public func blockedPlaneNormalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pixels: Int,
                                  scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, fused: Bool, upper: Float) {
    let (s, t) = (load8(scale), load8(shift))
    if fused {
        let top = SIMD8<Float>(repeating: upper)
        for k in 0..<pixels {
            let v = load8(x + k &* 8) * s + t
            let positive = v .> 0
            store8(v.replacing(with: top, where: .!(v .< top)).replacing(with: 0, where: .!positive), y + k &* 8)
        }
    } else {
        for k in 0..<pixels { store8(load8(x + k &* 8) * s + t, y + k &* 8) }
    }
}

/// `dY` where the fused activation passed (`0 < y < top`), else 0.
@inline(__always)
private func passed(_ g: SIMD8<Float>, _ y: SIMD8<Float>, _ top: SIMD8<Float>) -> SIMD8<Float> {
    g.replacing(with: 0, where: (y .<= 0) .| (y .>= top))
}

/// Per lane `Σ g` into `sums` and `Σ g (x - mean)` into `dots` (written, not added),
/// `g = dY`, masked by the fused activation when `fused`.
public func blockedPlaneGradientSums(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>, pixels: Int,
                                     mean: UnsafePointer<Float>, scale: UnsafePointer<Float>,
                                     shift: UnsafePointer<Float>, fused: Bool, upper: Float,
                                     sums: UnsafeMutablePointer<Float>, dots: UnsafeMutablePointer<Float>) {
    let (m, s, t, top) = (load8(mean), load8(scale), load8(shift), SIMD8<Float>(repeating: upper))
    var (s0, s1, d0, d1) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var k = 0
    while k &+ 2 <= pixels {
        let o = k &* 8
        let (x0, x1) = (load8(x + o), load8(x + (o &+ 8)))
        var (g0, g1) = (load8(dY + o), load8(dY + (o &+ 8)))
        if fused { (g0, g1) = (passed(g0, x0 * s + t, top), passed(g1, x1 * s + t, top)) }
        s0 += g0; s1 += g1
        d0 += g0 * (x0 - m); d1 += g1 * (x1 - m)
        k &+= 2
    }
    if k < pixels {
        let x0 = load8(x + k &* 8)
        var g = load8(dY + k &* 8)
        if fused { g = passed(g, x0 * s + t, top) }
        s0 += g
        d0 += g * (x0 - m)
    }
    store8(s0 + s1, sums)
    store8(d0 + d1, dots)
}

/// The data gradient over the plane, `dx = gain (g - meanDy - (x - mean) inverse meanDyXhat)`,
/// `g` as in ``blockedPlaneGradientSums(_:_:pixels:mean:scale:shift:fused:upper:sums:dots:)``:
/// written into `dX` when `assigns`, else added. `coefficients` holds 5 x 8 floats:
/// mean, inverse std, gain, meanDy, meanDyXhat; `scale`/`shift` the forward's affine map.
public func blockedPlaneInputGradient(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                      _ dX: UnsafeMutablePointer<Float>, pixels: Int,
                                      coefficients c: UnsafePointer<Float>, scale: UnsafePointer<Float>,
                                      shift: UnsafePointer<Float>, fused: Bool, upper: Float, assigns: Bool) {
    let (mu, inverse, gain, meanDy, meanDyXhat) = (load8(c), load8(c + 8), load8(c + 16), load8(c + 24), load8(c + 32))
    let (s, t, top) = (load8(scale), load8(shift), SIMD8<Float>(repeating: upper))
    for k in 0..<pixels {
        let o = k &* 8
        let v = load8(x + o)
        var g = load8(dY + o)
        if fused { g = passed(g, v * s + t, top) }
        let d = gain * (g - meanDy - (v - mu) * inverse * meanDyXhat)
        store8(assigns ? d : load8(dX + o) + d, dX + o)
    }
}
