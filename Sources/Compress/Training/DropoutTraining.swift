/// The seeded random stream a `TrainingGraph`'s dropout layers draw masks from.
final class DropoutRandomness {
    var generator: SeededGenerator
    /// When true, dropout layers keep the mask of their last training forward
    /// (gradient checks need the same mask on every forward).
    var freezesMasks = false

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
}

/// Inverted dropout (Srivastava et al., "Dropout: A Simple Way to Prevent
/// Neural Networks from Overfitting", JMLR 2014): in training each element is
/// kept with probability `1 - ratio` and scaled by `1 / (1 - ratio)`, so eval
/// mode is the identity. The mask is drawn from the graph's seeded generator
/// and kept for the backward.
final class DropoutTrainingKernel: TrainingKernel {
    let ratio: Float
    let randomness: DropoutRandomness
    /// Per element of the last training forward: 0 or `1 / (1 - ratio)`.
    private var mask: [Float] = []
    private var lastForwardTrained = false

    init(ratio: Float, randomness: DropoutRandomness) {
        self.ratio = ratio
        self.randomness = randomness
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let count = b.outputShape.elementCount
        lastForwardTrained = training
        guard training else {
            b.output.update(from: b.inputs[0], count: count)
            return
        }
        if mask.count != count || !randomness.freezesMasks { drawMask(count: count) }
        for i in 0..<count { b.output[i] = b.inputs[0][i] * mask[i] }
    }

    private func drawMask(count: Int) {
        let keep = ratio < 1 ? 1 / (1 - ratio) : 0
        if mask.count != count { mask = [Float](repeating: 0, count: count) }
        for i in 0..<count { mask[i] = randomness.generator.nextUniform() < ratio ? 0 : keep }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        let count = b.outputShape.elementCount
        guard lastForwardTrained else {
            accumulate(b.outputGradient, into: dX, count: count)
            return
        }
        mask.withUnsafeBufferPointer { m in
            for i in 0..<count { dX[i] += b.outputGradient[i] * m[i] }
        }
    }
}
