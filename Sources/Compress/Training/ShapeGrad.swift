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

/// `Op.slice`, forward and backward: the backward scatters the output
/// gradient into the sliced rows of the input gradient (the rest get nothing).
final class SliceTrainingKernel: TrainingKernel {
    let axis: Int
    let range: Range<Int>

    init(axis: Int, range: Range<Int>) { (self.axis, self.range) = (axis, range) }

    /// Calls `body(inputOffset, outputOffset, count)` for every run the slice copies.
    @inline(__always)
    private func forEachRun(_ b: TrainingBinding, _ body: (Int, Int, Int) -> Void) {
        let shape = b.inputShapes[0]
        let a = axis < 0 ? axis + shape.count : axis
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let (inBlock, outBlock, first) = (shape[a] &* inner, range.count &* inner, range.lowerBound &* inner)
        for o in 0..<outer { body(o &* inBlock &+ first, o &* outBlock, outBlock) }
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        forEachRun(b) { inOffset, outOffset, count in
            (b.output + outOffset).update(from: b.inputs[0] + inOffset, count: count)
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        forEachRun(b) { inOffset, outOffset, count in
            accumulate(b.outputGradient + outOffset, into: dX + inOffset, count: count)
        }
    }
}

/// `Op.channelPermute`, forward and backward: the backward applies the
/// inverse permutation (output channel `k`'s gradient goes to input channel `order[k]`).
final class ChannelPermuteTrainingKernel: TrainingKernel {
    let order: [Int]

    init(order: [Int]) { self.order = order }

    /// Calls `body(inputOffset, outputOffset, plane)` for every channel of every image.
    @inline(__always)
    private func forEachChannel(_ b: TrainingBinding, _ body: (Int, Int, Int) -> Void) {
        let shape = b.inputShapes[0]
        let (n, c, plane) = (shape[0], shape[1], shape[2...].reduce(1, *))
        order.withUnsafeBufferPointer { order in
            for i in 0..<n {
                for k in 0..<c { body((i &* c &+ order[k]) &* plane, (i &* c &+ k) &* plane, plane) }
            }
        }
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        forEachChannel(b) { inOffset, outOffset, plane in
            (b.output + outOffset).update(from: b.inputs[0] + inOffset, count: plane)
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        forEachChannel(b) { inOffset, outOffset, plane in
            accumulate(b.outputGradient + outOffset, into: dX + inOffset, count: plane)
        }
    }
}
