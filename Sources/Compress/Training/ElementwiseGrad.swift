/// Add, Sub, Mul and Div with numpy broadcasting, forward and backward.
///
/// Both operands are walked with the output's shape (stride 0 along the axes
/// an operand broadcasts over, `mergedBroadcastAxes`). The backward adds each
/// output element's contribution at the operand offset it was read from, so
/// gradients of a broadcast operand are summed over its broadcast axes:
/// `d(a+b)`: `(dy, dy)`, `d(a-b)`: `(dy, -dy)`, `d(ab)`: `(dy·b, dy·a)`,
/// `d(a/b)`: `(dy/b, -dy·a/b²)`.
final class BinaryTrainingKernel: TrainingKernel {
    let op: Op
    /// When set (a same-shape Add whose output only a ReLU or ReLU6 read), the
    /// kernel also applies that activation, `min(max(a + b, 0), upper)`, and its
    /// backward passes its output gradient where `0 < y < upper`
    /// (`TrainingPlan.fuseActivations`).
    var fusedActivationUpper: Float?

    init(op: Op) { self.op = op }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let (x, y, out) = (b.inputs[0], b.inputs[1], b.output)
        if b.inputShapes[0] == b.outputShape && b.inputShapes[1] == b.outputShape {
            // Same shapes (a residual Add): element ranges over the workers.
            return forEachElementRange(b.outputShape.elementCount, context) { r in
                if op == .add {
                    addVectors(x + r.lowerBound, y + r.lowerBound, out + r.lowerBound, count: r.count)
                    if let upper = fusedActivationUpper { clampVectors(out + r.lowerBound, count: r.count, upper: upper) }
                    return
                }
                for o in r {
                    switch op {
                    case .sub: out[o] = x[o] - y[o]
                    case .mul: out[o] = x[o] * y[o]
                    default: out[o] = x[o] / y[o]
                    }
                }
            }
        }
        forEachBroadcastElement(b) { o, i, j in
            switch op {
            case .add: out[o] = x[i] + y[j]
            case .sub: out[o] = x[i] - y[j]
            case .mul: out[o] = x[i] * y[j]
            default: out[o] = x[i] / y[j]
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let (x, y, dY) = (b.inputs[0], b.inputs[1], b.outputGradient)
        let (dA, dB) = (b.inputGradients[0], b.inputGradients[1])
        guard dA != nil || dB != nil else { return }
        if op == .add && b.inputShapes[0] == b.outputShape && b.inputShapes[1] == b.outputShape {
            return forEachElementRange(b.outputShape.elementCount, context) { r in
                let g = UnsafePointer(dY + r.lowerBound)
                if let upper = fusedActivationUpper {
                    let y = b.output + r.lowerBound
                    if let dA { accumulateWhere(r.count, y, g, dA + r.lowerBound, lower: 0, upper: upper) }
                    if let dB { accumulateWhere(r.count, y, g, dB + r.lowerBound, lower: 0, upper: upper) }
                    return
                }
                if let dA { addVectors(dA + r.lowerBound, g, dA + r.lowerBound, count: r.count) }
                if let dB { addVectors(dB + r.lowerBound, g, dB + r.lowerBound, count: r.count) }
            }
        }
        forEachBroadcastElement(b) { o, i, j in
            let g = dY[o]
            switch op {
            case .add:
                dA?[i] += g
                dB?[j] += g
            case .sub:
                dA?[i] += g
                dB?[j] -= g
            case .mul:
                dA?[i] += g * y[j]
                dB?[j] += g * x[i]
            default:
                let inverse = 1 / y[j]
                dA?[i] += g * inverse
                dB?[j] -= g * x[i] * inverse * inverse
            }
        }
    }

    /// Calls `body(outputOffset, firstOperandOffset, secondOperandOffset)` for every output element in order.
    @inline(__always)
    private func forEachBroadcastElement(_ b: TrainingBinding, _ body: (Int, Int, Int) -> Void) {
        let (dims, aStrides, bStrides) = mergedBroadcastAxes(b.outputShape, b.inputShapes[0], b.inputShapes[1])
        let inner = dims.last!, (sa, sb) = (aStrides.last!, bStrides.last!)
        let outerCount = dims.dropLast().reduce(1, *)
        forEachBroadcastRow(dims: dims, aStrides: aStrides, bStrides: bStrides, outerCount: outerCount) { o, offsetA, offsetB in
            let base = o &* inner
            for k in 0..<inner { body(base &+ k, offsetA &+ k &* sa, offsetB &+ k &* sb) }
        }
    }
}
