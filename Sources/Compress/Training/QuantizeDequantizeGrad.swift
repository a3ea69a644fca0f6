/// QuantizeDequantize in training: the forward pass quantizes as inference
/// does; the backward pass is the straight-through estimator (Bengio,
/// Léonard & Courville, "Estimating or Propagating Gradients Through
/// Stochastic Neurons", 2013), passing the gradient where the value is inside
/// the grid's range and none where it saturates.
final class QuantizeDequantizeTrainingKernel: TrainingKernel {
    let quantization: ActivationQuantization

    init(quantization: ActivationQuantization) { self.quantization = quantization }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        quantization.apply(b.inputs[0], b.output, count: b.outputShape.elementCount)
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        let (x, dY) = (b.inputs[0], b.outputGradient)
        for i in 0..<b.outputShape.elementCount where quantization.passesGradient(x[i]) { dX[i] += dY[i] }
    }
}
