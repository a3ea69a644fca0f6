/// QuantizeLinear then DequantizeLinear of every stored element
/// (`ActivationQuantization.apply`), on plain or blocked values alike: the
/// op is elementwise and maps zero to zero, so blocked padding stays zero.
struct QuantizeDequantizeKernel: Kernel {
    let quantization: ActivationQuantization
    let layout: ValueLayout

    func run(_ b: StepBinding, _ context: KernelContext) {
        quantization.apply(b.inputs[0], b.output, count: layout.storageCount(b.outputShape))
    }
}
