/// Concat along an axis, forward and backward (the backward hands each input
/// its block of the output gradient).
///
/// Flatten and Reshape need no kernel: a `TrainingGraph` plans their output
/// as an alias of their input's storage, and of its gradient storage too, so
/// their backward is the identity for free.
final class ConcatTrainingKernel: TrainingKernel {
    let axis: Int

    init(axis: Int) { self.axis = axis }

    /// Calls `body(input, inputOffset, outputOffset, count)` for every block the concat copies.
    @inline(__always)
    private func forEachBlock(_ b: TrainingBinding, _ body: (Int, Int, Int, Int) -> Void) {
        let rank = b.outputShape.count
        let a = axis < 0 ? axis + rank : axis
        let outer = b.outputShape[..<a].reduce(1, *)
        let blocks = b.inputShapes.map { $0[a...].reduce(1, *) }
        let outBlock = blocks.reduce(0, +)
        for o in 0..<outer {
            var offset = o &* outBlock
            for (k, block) in blocks.enumerated() {
                body(k, o &* block, offset, block)
                offset &+= block
            }
        }
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        forEachBlock(b) { k, inOffset, outOffset, count in
            (b.output + outOffset).update(from: b.inputs[k] + inOffset, count: count)
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        forEachBlock(b) { k, inOffset, outOffset, count in
            guard let dX = b.inputGradients[k] else { return }
            accumulate(b.outputGradient + outOffset, into: dX + inOffset, count: count)
        }
    }
}
