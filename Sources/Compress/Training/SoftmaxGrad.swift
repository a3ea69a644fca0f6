import Foundation

/// Softmax along an axis, with backward `dx = y ⊙ (dy - Σ dy·y)` over each line.
final class SoftmaxTrainingKernel: TrainingKernel {
    let axis: Int

    init(axis: Int) { self.axis = axis }

    /// Calls `body(start, length, stride)` for each line along the axis.
    @inline(__always)
    private func forEachLine(_ shape: [Int], _ body: (Int, Int, Int) -> Void) {
        let a = axis < 0 ? axis + shape.count : axis
        let (outer, length, inner) = (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
        for o in 0..<outer {
            for i in 0..<inner { body(o &* length &* inner &+ i, length, inner) }
        }
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        forEachLine(b.outputShape) { start, length, stride in
            softmaxLine(b.inputs[0] + start, b.output + start, length: length, stride: stride)
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dXBase = b.inputGradients[0] else { return }
        forEachLine(b.outputShape) { start, length, stride in
            let (y, dY, dX) = (b.output + start, b.outputGradient + start, dXBase + start)
            var dot: Float = 0
            for k in 0..<length { dot += dY[k &* stride] * y[k &* stride] }
            for k in 0..<length { dX[k &* stride] += y[k &* stride] * (dY[k &* stride] - dot) }
        }
    }
}
