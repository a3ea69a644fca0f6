import Foundation

/// ReLU, ReLU6, LeakyReLU, sigmoid, tanh, hard sigmoid, hard swish and GELU,
/// forward and backward. Derivatives at the kinks follow PyTorch: ReLU and
/// ReLU6 pass no gradient at 0 (and 6); LeakyReLU treats 0 as the positive
/// side, as its forward does; the hard sigmoid passes alpha strictly inside
/// (0, 1) only; the hard swish's derivative is x/3 + 1/2 on [-3, 3], 0 below, 1 above.
/// Large tensors are split over the workers in element ranges (`forEachElementRange`).
final class ActivationTrainingKernel: TrainingKernel {
    let op: Op

    init(op: Op) { self.op = op }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        forEachElementRange(b.outputShape.elementCount, context) { r in
            guard applyActivation(op, b.inputs[0] + r.lowerBound, b.output + r.lowerBound, count: r.count) else {
                preconditionFailure("\(op.kind) is not an activation")
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        forEachElementRange(b.outputShape.elementCount, context) { r in
            backward(count: r.count, x: b.inputs[0] + r.lowerBound, y: b.output + r.lowerBound,
                     dY: b.outputGradient + r.lowerBound, dX: dX + r.lowerBound)
        }
    }

    private func backward(count: Int, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                          dY: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>) {
        switch op {
        case .relu: accumulateWhere(count, x, dY, dX, lower: 0, upper: .infinity)
        case .relu6: accumulateWhere(count, x, dY, dX, lower: 0, upper: 6)
        case .leakyRelu(let alpha): for i in 0..<count { dX[i] += x[i] >= 0 ? dY[i] : alpha * dY[i] }
        case .sigmoid: for i in 0..<count { dX[i] += dY[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<count { dX[i] += dY[i] * (1 - y[i] * y[i]) }
        case .hardSigmoid(let alpha, let beta):
            for i in 0..<count {
                let g = alpha * x[i] + beta
                if g > 0 && g < 1 { dX[i] += alpha * dY[i] }
            }
        case .hardSwish:
            for i in 0..<count {
                let v = x[i]
                if v > 3 { dX[i] += dY[i] } else if v >= -3 { dX[i] += dY[i] * (v / 3 + 0.5) }
            }
        case .gelu(tanhApproximation: false):
            // Φ(x) + x·φ(x), φ the standard normal density.
            for i in 0..<count {
                let v = x[i]
                let density = exp(-0.5 * v * v) * 0.398942280
                dX[i] += dY[i] * (erfc(-v * 0.70710678) * 0.5 + v * density)
            }
        case .gelu(tanhApproximation: true):
            // (1 + t)/2 + x(1 - t²)/2 · √(2/π)(1 + 3·0.044715x²), t = tanh(√(2/π)(x + 0.044715x³)).
            for i in 0..<count {
                let v = x[i]
                let t = Foundation.tanh(0.797884561 * (v + 0.044715 * v * v * v))
                dX[i] += dY[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.797884561 * (1 + 0.134145 * v * v))
            }
        default: preconditionFailure("\(op.kind) is not an activation")
        }
    }
}
