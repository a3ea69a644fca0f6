import Foundation

/// ReLU, ReLU6, LeakyReLU, sigmoid and tanh, forward and backward.
/// Derivatives at the kinks follow PyTorch: ReLU and ReLU6 pass no gradient
/// at 0 (and 6); LeakyReLU treats 0 as the positive side, as its forward does.
final class ActivationTrainingKernel: TrainingKernel {
    let op: Op

    init(op: Op) { self.op = op }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        guard applyActivation(op, b.inputs[0], b.output, count: b.outputShape.elementCount) else {
            preconditionFailure("\(op.kind) is not an activation")
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        let count = b.outputShape.elementCount
        let (x, y, dY) = (b.inputs[0], b.output, b.outputGradient)
        switch op {
        case .relu: accumulateWhere(count, x, dY, dX, lower: 0, upper: .infinity)
        case .relu6: accumulateWhere(count, x, dY, dX, lower: 0, upper: 6)
        case .leakyRelu(let alpha): for i in 0..<count { dX[i] += x[i] >= 0 ? dY[i] : alpha * dY[i] }
        case .sigmoid: for i in 0..<count { dX[i] += dY[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<count { dX[i] += dY[i] * (1 - y[i] * y[i]) }
        default: preconditionFailure("\(op.kind) is not an activation")
        }
    }
}
