import ArgumentParser
import Compress
import Prune

struct QuantizeCommand: GeneratedOptionsCommand {
    static var generatedOptions: GeneratedOptions { .forPass(QuantizePass.self) }
    static let configuration = passCommandConfiguration(QuantizePass.self, discussion: """
        Rounds every weight of the selected layers to the format and records \
        each tensor's precision in the model, so the file stores the narrow \
        values and later steps keep them; the model still computes in float32 \
        on the rounded values, so `eval` measures what a float16 runtime would. \
        Quantize last: a later pass that changes the weights takes them back to \
        float32; fine-tuning keeps them on their grids (--keep-precisions).

        int8 quantizes each conv/linear weight on a grid per output channel \
        (--weights per-tensor: one grid), symmetric about zero unless \
        --symmetric false, rounding half to even and saturating as \
        onnxruntime's QuantizeLinear does; scales and zero points are stored \
        with the model and shown by `info`. Activations (the input and each \
        layer's output but the logits) are quantized per tensor to uint8 \
        (--activations int8|none), their ranges calibrated on the first \
        --calibration-images validation images (needs --data or the default \
        Fashion-MNIST) by --calibration minmax|percentile. BatchNorm is folded \
        first (--fold-bn false quantizes its parameters instead), and the record \
        says so.

        --finetune-epochs N then fine-tunes quantization-aware (the other \
        --finetune-* options as for finetune): float32 shadow weights start from \
        the unrounded weights, the forward pass reads them rounded onto their \
        fixed grids (and through the calibrated activation quantizers), \
        gradients pass straight through where nothing saturates; the trained \
        weights are stored on their grids, biases of int8 layers on their int32 \
        grids. The best epoch on validation is kept, and only when it beats the \
        quantized model.

        Examples (half the file, weights as IEEE half; a quarter, int8 per channel):
          compressor quantize model.bin -o model-fp16.bin --format float16
          compressor quantize model.bin -o model-int8.bin --format int8 --calibration percentile
          compressor quantize model.bin -o model-qat.bin --format int8 --finetune-epochs 2 --finetune-lr 0.001
        """)

    @OptionGroup var io: PassIOOptions

    func validate() throws { _ = try io.passArguments(QuantizePass.self) }

    func run() throws { try runPass(QuantizePass.self, options: io) }
}
