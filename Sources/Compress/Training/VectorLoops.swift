import SIMDKernels

// Eight-lane loops for the element-wise work the compiler does not vectorize
// on its own (it cannot prove the buffers do not overlap, and a data-dependent
// branch per element costs a misprediction half the time), over `load8` and
// `store8` from SIMDKernels.

/// `dX[i] += keep(x[i]) ? dY[i] : 0`, eight at a time: the backward of a clipping activation.
@inline(__always)
func accumulateWhere(_ count: Int, _ x: UnsafePointer<Float>, _ dY: UnsafePointer<Float>,
                     _ dX: UnsafeMutablePointer<Float>, lower: Float, upper: Float) {
    var i = 0
    let (lo, hi) = (SIMD8<Float>(repeating: lower), SIMD8<Float>(repeating: upper))
    while i &+ 8 <= count {
        let v = load8(x + i)
        let passed = load8(dY + i).replacing(with: 0, where: (v .<= lo) .| (v .>= hi))
        store8(load8(dX + i) + passed, dX + i)
        i &+= 8
    }
    while i < count {
        if x[i] > lower && x[i] < upper { dX[i] += dY[i] }
        i &+= 1
    }
}

/// `y[i] = a[i] + b[i]`, eight at a time (`y` may be `a`): a residual add and its gradient.
@inline(__always)
func addVectors(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i &+ 8 <= count {
        store8(load8(a + i) + load8(b + i), y + i)
        i &+= 8
    }
    while i < count {
        y[i] = a[i] + b[i]
        i &+= 1
    }
}

/// `y[i] = min(max(y[i], 0), upper)` in place, eight at a time, as ReLU (`upper`
/// infinity) and ReLU6 compute it (`v > 0 ? (v < upper ? v : upper) : 0`).
@inline(__always)
func clampVectors(_ y: UnsafeMutablePointer<Float>, count: Int, upper: Float) {
    let top = SIMD8<Float>(repeating: upper)
    var i = 0
    while i &+ 8 <= count {
        let v = load8(y + i)
        let positive = v .> 0
        store8(v.replacing(with: top, where: .!(v .< top)).replacing(with: 0, where: .!positive), y + i)
        i &+= 8
    }
    while i < count {
        let v = y[i]
        y[i] = v > 0 ? (v < upper ? v : upper) : 0
        i &+= 1
    }
}

/// `Σ x[i]` and `Σ (x[i] - shift)²` with eight-lane accumulators.
@inline(__always)
func sumAndSquares(_ x: UnsafePointer<Float>, count: Int, shift: Float) -> (sum: Float, squares: Float) {
    var (s, q) = (SIMD8<Float>(), SIMD8<Float>())
    let m = SIMD8<Float>(repeating: shift)
    var i = 0
    while i &+ 8 <= count {
        let v = load8(x + i)
        s += v
        q += (v - m) * (v - m)
        i &+= 8
    }
    var (sum, squares) = (s.sum(), q.sum())
    while i < count {
        sum += x[i]
        squares += (x[i] - shift) * (x[i] - shift)
        i &+= 1
    }
    return (sum, squares)
}

/// `Σ dY[i]` and `Σ dY[i] (x[i] - shift)` with eight-lane accumulators.
@inline(__always)
func sumAndDot(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int, shift: Float) -> (sum: Float, dot: Float) {
    var (s, d) = (SIMD8<Float>(), SIMD8<Float>())
    let m = SIMD8<Float>(repeating: shift)
    var i = 0
    while i &+ 8 <= count {
        let g = load8(dY + i)
        s += g
        d += g * (load8(x + i) - m)
        i &+= 8
    }
    var (sum, dot) = (s.sum(), d.sum())
    while i < count {
        sum += dY[i]
        dot += dY[i] * (x[i] - shift)
        i &+= 1
    }
    return (sum, dot)
}
