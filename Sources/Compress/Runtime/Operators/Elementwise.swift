import Foundation

/// An activation applied element by element.
struct UnaryKernel: Kernel {
    let op: Op

    func run(_ b: StepBinding, _ context: KernelContext) {
        let count = b.outputShape.elementCount
        if !applyActivation(op, b.inputs[0], b.output, count: count) { b.output.update(from: b.inputs[0], count: count) }
    }
}

/// `op` (ReLU, ReLU6, LeakyReLU, sigmoid, tanh, hard sigmoid, hard swish or
/// GELU) of `count` values, `x` into `y` (which may be `x`), the one
/// definition inference and training share; false, writing nothing, for any other op.
func applyActivation(_ op: Op, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) -> Bool {
    switch op {
    case .relu: for i in 0..<count { let v = x[i]; y[i] = v > 0 ? v : 0 }
    case .relu6: for i in 0..<count { let v = x[i]; y[i] = v > 0 ? (v < 6 ? v : 6) : 0 }
    case .leakyRelu(let alpha): for i in 0..<count { let v = x[i]; y[i] = v >= 0 ? v : alpha * v }
    case .sigmoid: for i in 0..<count { y[i] = 1 / (1 + exp(-x[i])) }
    case .tanh: for i in 0..<count { y[i] = Foundation.tanh(x[i]) }
    case .hardSigmoid(let alpha, let beta):
        for i in 0..<count { y[i] = ScalarActivation.hardSigmoid(x[i], alpha: alpha, beta: beta) }
    case .hardSwish: for i in 0..<count { y[i] = ScalarActivation.hardSwish(x[i]) }
    case .gelu(tanhApproximation: false): for i in 0..<count { y[i] = ScalarActivation.gelu(x[i]) }
    case .gelu(tanhApproximation: true): for i in 0..<count { y[i] = ScalarActivation.geluTanh(x[i]) }
    default: return false
    }
    return true
}

/// The hard sigmoid, hard swish (Howard et al. 2019, MobileNetV3) and GELU
/// (Hendrycks & Gimpel 2016) of one value, in float32.
enum ScalarActivation {
    @inline(__always)
    static func hardSigmoid(_ v: Float, alpha: Float, beta: Float) -> Float {
        let g = alpha * v + beta
        return g > 0 ? (g < 1 ? g : 1) : 0
    }

    @inline(__always)
    static func hardSwish(_ v: Float) -> Float { v * hardSigmoid(v, alpha: 1 / 6, beta: 0.5) }

    /// x·Φ(x) with Φ(x) = erfc(-x/√2) / 2, exact to float32 rounding (no
    /// cancellation for negative x, as 1 + erf(x/√2) has).
    @inline(__always)
    static func gelu(_ v: Float) -> Float { v * erfc(-v * 0.70710678) * 0.5 }

    /// x·(1 + tanh(u)) / 2 with u = √(2/π)(x + 0.044715x³), as x / (1 + e^(-2u)).
    @inline(__always)
    static func geluTanh(_ v: Float) -> Float {
        v / (1 + exp(-v * (1.59576912 + 0.0713548162 * v * v)))
    }
}

/// Inference batch normalization that could not be folded: `x * scale[c] + shift[c]`.
struct BatchNormKernel: Kernel {
    let scale: [Float]
    let shift: [Float]

    init(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float) {
        let (g, beta, m, v) = (scale.floats, bias.floats, mean.floats, variance.floats)
        let s = (0..<g.count).map { Double(g[$0]) / (Double(v[$0]) + Double(epsilon)).squareRoot() }
        self.scale = s.map { Float($0) }
        shift = (0..<g.count).map { Float(Double(beta[$0]) - Double(m[$0]) * s[$0]) }
    }

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (channels, inner) = (shape[1], shape[2...].reduce(1, *))
        let planes = shape[0] * channels
        scale.withUnsafeBufferPointer { sp in
            shift.withUnsafeBufferPointer { tp in
                for p in 0..<planes {
                    let c = p % channels
                    let (s, t) = (sp[c], tp[c])
                    let x = b.inputs[0] + p &* inner, y = b.output + p &* inner
                    for i in 0..<inner { y[i] = x[i] * s + t }
                }
            }
        }
    }
}

/// Add, Sub, Mul or Div with numpy broadcasting. Both operands are viewed
/// with the output's rank (stride 0 along broadcast axes), adjacent axes that
/// stay contiguous for both are merged, and the last axis runs a tight loop.
struct BinaryKernel: Kernel {
    let op: Op

    func run(_ b: StepBinding, _ context: KernelContext) {
        let (dims, aStrides, bStrides) = mergedBroadcastAxes(b.outputShape, b.inputShapes[0], b.inputShapes[1])
        let inner = dims.last!, (sa, sb) = (aStrides.last!, bStrides.last!)
        let outerCount = dims.dropLast().reduce(1, *)
        forEachBroadcastRow(dims: dims, aStrides: aStrides, bStrides: bStrides, outerCount: outerCount) { o, offsetA, offsetB in
            combine(inner, b.inputs[0] + offsetA, sa, b.inputs[1] + offsetB, sb, b.output + o &* inner)
        }
    }

    private func combine(_ n: Int, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                         _ y: UnsafeMutablePointer<Float>) {
        switch op {
        case .add: combineLoop(n, a, sa, b, sb, y, +)
        case .sub: combineLoop(n, a, sa, b, sb, y, -)
        case .mul: combineLoop(n, a, sa, b, sb, y, *)
        default: combineLoop(n, a, sa, b, sb, y, /)
        }
    }
}

/// `y[i] = f(a[i * sa], b[i * sb])`, with the common stride patterns split out
/// so each loop vectorizes.
@inline(__always)
private func combineLoop(_ n: Int, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                         _ y: UnsafeMutablePointer<Float>, _ f: (Float, Float) -> Float) {
    if sa == 1 && sb == 1 {
        for i in 0..<n { y[i] = f(a[i], b[i]) }
    } else if sa == 1 && sb == 0 {
        let bv = b[0]
        for i in 0..<n { y[i] = f(a[i], bv) }
    } else if sa == 0 && sb == 1 {
        let av = a[0]
        for i in 0..<n { y[i] = f(av, b[i]) }
    } else {
        for i in 0..<n { y[i] = f(a[i &* sa], b[i &* sb]) }
    }
}

/// The output's axes with each operand's strides (0 where it broadcasts),
/// after merging adjacent axes that both operands traverse contiguously.
/// Always returns at least one axis.
func mergedBroadcastAxes(_ out: [Int], _ a: [Int], _ b: [Int]) -> (dims: [Int], a: [Int], b: [Int]) {
    func strides(_ shape: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: out.count - shape.count) + shape
        let dense = contiguousStrides(padded)
        return padded.indices.map { padded[$0] == 1 ? 0 : dense[$0] }
    }
    var (dims, sa, sb) = ([1], [0], [0])
    for (d, (x, y)) in zip(out, zip(strides(a), strides(b))) where d != 1 {
        let last = dims.count - 1
        if sa[last] == x * d && sb[last] == y * d {
            dims[last] *= d
            (sa[last], sb[last]) = (x, y)
        } else {
            dims.append(d); sa.append(x); sb.append(y)
        }
    }
    return (dims, sa, sb)
}

/// Walks the outer axes of a broadcast binary op like an odometer, calling
/// `row(o, offsetA, offsetB)` for each output row `o` with the offsets of the
/// matching rows of both inputs. Shared by the inference and training kernels.
@inline(__always)
func forEachBroadcastRow(dims: [Int], aStrides: [Int], bStrides: [Int], outerCount: Int,
                         _ row: (_ o: Int, _ offsetA: Int, _ offsetB: Int) -> Void) {
    var index = [Int](repeating: 0, count: dims.count - 1)
    var (offsetA, offsetB) = (0, 0)
    for o in 0..<outerCount {
        row(o, offsetA, offsetB)
        var axis = dims.count - 2
        while axis >= 0 {
            index[axis] += 1
            offsetA &+= aStrides[axis]
            offsetB &+= bStrides[axis]
            if index[axis] < dims[axis] { break }
            offsetA &-= aStrides[axis] &* dims[axis]
            offsetB &-= bStrides[axis] &* dims[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}
