import Foundation

extension ReferenceEvaluator {
    /// An activation (or inference-time dropout) applied to every element.
    static func unary(_ op: Op, _ x: Tensor) -> Tensor {
        let f: (Float) -> Float
        switch op {
        case .relu: f = { max($0, 0) }
        case .relu6: f = { min(max($0, 0), 6) }
        case .leakyRelu(let alpha): f = { $0 >= 0 ? $0 : alpha * $0 }
        case .sigmoid: f = { Float(1 / (1 + exp(-Double($0)))) }
        case .tanh: f = { Float(Foundation.tanh(Double($0))) }
        case .hardSigmoid(let alpha, let beta): f = { min(max(alpha * $0 + beta, 0), 1) }
        case .hardSwish: f = { $0 * min(max($0 / 6 + 0.5, 0), 1) }
        case .gelu(tanhApproximation: false):
            // Φ(x) = erfc(-x/√2) / 2: no cancellation for negative x, as 1 + erf has.
            f = { Float(Double($0) * erfc(-Double($0) / 2.squareRoot()) / 2) }
        case .gelu(tanhApproximation: true):
            f = { let x = Double($0); return Float(x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) / 2) }
        case .dropout: f = { $0 }
        default: preconditionFailure("\(op.kind) is not a unary elementwise op")
        }
        return Tensor(shape: x.shape, floats: x.floats.map(f))
    }

    /// QuantizeLinear then DequantizeLinear of every element, one value at a
    /// time through `QuantizationGrid`'s scalar definitions.
    static func quantizeDequantize(_ x: Tensor, _ q: ActivationQuantization) -> Tensor {
        Tensor(shape: x.shape, floats: x.floats.map {
            QuantizationGrid.dequantize(QuantizationGrid.quantize($0, scale: q.scale, zeroPoint: q.zeroPoint, range: q.range),
                                        scale: q.scale, zeroPoint: q.zeroPoint)
        })
    }

    /// Add, Sub, Mul or Div with numpy broadcasting: shapes align on the right,
    /// and a dimension of size 1 (or a missing one) repeats along the other's.
    static func binary(_ op: Op, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShapes(a.shape, b.shape)!
        let f: (Float, Float) -> Float
        switch op {
        case .add: f = (+)
        case .sub: f = (-)
        case .mul: f = (*)
        case .div: f = (/)
        default: preconditionFailure("\(op.kind) is not a binary elementwise op")
        }
        let outStrides = contiguousStrides(shape)
        let (av, bv) = (a.floats, b.floats)
        var out = [Float](repeating: 0, count: shape.elementCount)
        for i in out.indices {
            let index = shape.indices.map { (i / outStrides[$0]) % shape[$0] }
            out[i] = f(av[broadcastOffset(index, into: a.shape)], bv[broadcastOffset(index, into: b.shape)])
        }
        return Tensor(shape: shape, floats: out)
    }

    /// The offset in a tensor of `shape` read at the broadcast output `index`.
    private static func broadcastOffset(_ index: [Int], into shape: [Int]) -> Int {
        let skipped = index.count - shape.count
        let strides = contiguousStrides(shape)
        var offset = 0
        for d in shape.indices where shape[d] != 1 { offset += index[d + skipped] * strides[d] }
        return offset
    }

    /// Softmax along `axis`: `exp(x - max) / sum(exp(x - max))` over each line.
    static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        let a = axis < 0 ? axis + x.rank : axis
        let (outer, length) = (x.shape[..<a].reduce(1, *), x.shape[a])
        let inner = x.shape[(a + 1)...].reduce(1, *)
        let xs = x.floats
        var out = xs
        for o in 0..<outer {
            for i in 0..<inner {
                let offsets = (0..<length).map { (o * length + $0) * inner + i }
                let peak = offsets.map { xs[$0] }.max() ?? 0
                let exps = offsets.map { exp(Double(xs[$0] - peak)) }
                let total = exps.reduce(0, +)
                for (k, offset) in offsets.enumerated() { out[offset] = Float(exps[k] / total) }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
