/// Joins inputs along an axis: for each index before the axis, each input's
/// contiguous block is copied after the previous input's.
struct ConcatKernel: Kernel {
    let axis: Int

    func run(_ b: StepBinding, _ context: KernelContext) {
        let a = axis < 0 ? axis + b.outputShape.count : axis
        let outer = b.outputShape[..<a].reduce(1, *)
        let outBlock = b.outputShape[a...].reduce(1, *)
        var offset = 0
        for (x, shape) in zip(b.inputs, b.inputShapes) {
            let block = shape[a...].reduce(1, *)
            for o in 0..<outer {
                (b.output + (o &* outBlock &+ offset)).update(from: x + o &* block, count: block)
            }
            offset += block
        }
    }
}
