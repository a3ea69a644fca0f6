/// Writes models as ONNX (`ModelProto`, https://onnx.ai), so any ONNX runtime
/// can run what compressor produced.
///
/// Every op of the IR has an ONNX counterpart in the default domain:
///
/// | IR | ONNX |
/// | --- | --- |
/// | `conv2d` | `Conv` (kernel_shape, strides, pads [top, left, bottom, right], dilations, group) |
/// | `linear` | `Gemm` with `transB = 1` |
/// | `batchNorm` | `BatchNormalization` (epsilon) |
/// | `layerNorm` | `Transpose` (channels last), `LayerNormalization` (axis -1, epsilon), `Transpose` back; below opset 17 the middle is decomposed (`ReduceMean`, `Sub`, `Mul`, `ReduceMean`, `Add`, `Sqrt`, `Div`, `Mul`, `Add`); no `Transpose` on `[N, F]` |
/// | `relu6` | `Clip` with scalar min 0 and max 6 as constant inputs |
/// | `hardSigmoid` | `HardSigmoid` (alpha, beta) |
/// | `hardSwish` | `HardSwish` from opset 14; below, `x * HardSigmoid(x)` (alpha 1/6, beta 1/2) |
/// | `gelu` | `Gelu` from opset 20 (approximate "tanh" for the tanh form); below, `Div(x, √2)`, `Erf`, `Add(1)`, `Mul(x)`, `Mul(0.5)` as PyTorch writes it (`Mul`/`Tanh` for the tanh form), which the importer folds back |
/// | `maxPool`, `avgPool` | `MaxPool`, `AveragePool` (ceil_mode, count_include_pad; a dilated average pool needs opset 19) |
/// | `globalAvgPool` | `GlobalAveragePool` |
/// | `reshape` | `Reshape` with the target as an INT64 initializer |
/// | `convTranspose` | `ConvTranspose` (kernel_shape, strides, pads, dilations, group, output_padding) |
/// | `resize` | `Resize` (mode, coordinate_transformation_mode, nearest_mode) with an empty roi and float scales `[1, 1, h, w]`; sizes on `axes` [2, 3] (opset 18) when no scale reproduces them |
/// | `dropout` | `Identity` |
/// | `slice` | `Slice` with starts, ends and axes as one-element INT64 initializers (step 1) |
/// | `channelPermute` | `Gather` on axis 1 with the order as an INT64 initializer (any permutation, a channel shuffle included) |
/// | others | the op of the same meaning (`Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Flatten`, `Add`, `Sub`, `Mul`, `Div`, `Concat`, `Softmax`) |
///
/// The model's input normalization becomes part of the graph: a `Sub` node
/// (`compressor.normalize.sub`, constant `compressor.normalization.mean`) and
/// a `Div` node (`compressor.normalize.div`, constant
/// `compressor.normalization.std`), both `[C, 1, 1]`, come first, so the file
/// takes pixels in [0, 1] exactly like `Session.run(_:)` and `compressor eval`.
///
/// Graph inputs and outputs are float32 with a symbolic batch dimension `N`.
/// Initializers are little-endian `raw_data`: float32 for every weight
/// (float16, uint8 and int8 tensor storage is widened), INT64 for shape
/// tensors.
///
/// A quantized model (activation quantizers or int8-precision weights) is
/// written as QDQ ONNX, opset 13 or newer (`ONNXQDQLowering`): its
/// quantizers become QuantizeLinear + DequantizeLinear, int8 weights INT8
/// initializers read through DequantizeLinear, the biases of quantized
/// layers INT32 initializers, so onnxruntime's graph optimizer runs the
/// layers on its integer kernels.
/// The architecture and class names go into `metadata_props`
/// (`compressor.architecture`, `compressor.class_names`, newline-separated).
///
/// The bytes are a function of the model and opset alone: nodes keep the
/// graph's order, initializers are sorted by name, and nothing depends on
/// time or the host.
public enum ONNXExporter {
    /// The opsets the export can target. 13 is the first whose `Softmax` has
    /// a single-axis meaning like the IR's.
    public static let supportedOpsets: ClosedRange<Int> = 13...22

    /// The default opset.
    public static let defaultOpset = 13

    /// `metadata_props` key of the model's architecture name.
    public static let architectureKey = "compressor.architecture"
    /// `metadata_props` key of the model's class names, newline-separated.
    public static let classNamesKey = "compressor.class_names"

    /// The IR version that comes with `opset` in ONNX's releases (the oldest
    /// that can carry it, so older runtimes load the file).
    public static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...14: 7
        case 15...18: 8
        case 19...20: 9
        default: 10
        }
    }

    /// The ONNX `ModelProto` bytes of `model` for `opset`.
    ///
    /// - Throws: `ONNXExportError` when the opset is unsupported, the graph is
    ///   invalid, an op needs a newer opset, the normalization does not fit
    ///   the input, or a name cannot be encoded.
    public static func encode(_ model: Model, opset: Int = defaultOpset) throws -> [UInt8] {
        let spec = try ONNXModelSpec(model, opset: opset)
        return try ONNXProtoEncoder.bytes(of: spec)
    }

    /// Encodes `model` and writes it to `path` atomically (see `writeFileAtomically`).
    public static func write(_ model: Model, to path: String, opset: Int = defaultOpset) throws {
        try writeFileAtomically(try encode(model, opset: opset), to: path)
    }
}

/// Why a model could not be exported to ONNX; one line for the command line.
public enum ONNXExportError: Error, Equatable, CustomStringConvertible {
    /// The requested opset is outside `ONNXExporter.supportedOpsets`.
    case unsupportedOpset(Int)
    /// A node needs a newer opset than the one requested.
    case requiresNewerOpset(node: String, minimum: Int, reason: String)
    /// The graph does not validate.
    case invalidGraph(GraphError)
    /// The normalization's length does not match the input's channels.
    case normalizationMismatch(channels: Int, mean: Int, std: Int)
    /// A name or string cannot be written (it contains a NUL character).
    case unencodable(String)
    /// A node has no ONNX form in this exporter.
    case notExportable(node: String, reason: String)
    /// A quantized model needs QDQ ONNX, which needs at least `minimum`.
    case quantizedModelNeedsOpset(opset: Int, minimum: Int)
    /// A node reads int8 activations but onnxruntime cannot run it on integers.
    case notQuantizable(node: String, op: String, reason: String)
    /// A bias is not on the int32 grid of its layer (the model changed after `quantize`).
    case biasOffGrid(tensor: String, node: String, value: Float)

    public var description: String {
        let range = ONNXExporter.supportedOpsets
        return switch self {
        case .unsupportedOpset(let o): "ONNX opset \(o) is not supported; use \(range.lowerBound) to \(range.upperBound)"
        case .requiresNewerOpset(let n, let m, let r): "node '\(n)' needs ONNX opset \(m) or newer (--opset \(m)): \(r)"
        case .invalidGraph(let e): "cannot export an invalid graph: \(e)"
        case .normalizationMismatch(let c, let m, let s):
            "normalization has \(m) means and \(s) stds for an input with \(c) channels"
        case .unencodable(let what): "cannot write \(what) to ONNX: it contains a NUL character"
        case .notExportable(let n, let r): "node '\(n)' cannot be exported to ONNX: \(r)"
        case .quantizedModelNeedsOpset(let o, let m):
            "a quantized model is written as QDQ ONNX, which needs opset \(m) or newer (per-channel DequantizeLinear); got --opset \(o)"
        case .notQuantizable(let n, let op, let r):
            "node '\(n)' (\(op)) cannot be exported as int8 QDQ ONNX that onnxruntime runs on integers: \(r)"
        case .biasOffGrid(let t, let n, let v):
            "bias '\(t)' of node '\(n)' holds \(v), which is not on its int32 grid (input scale x weight scale): "
                + "the model changed after quantize; re-run quantize"
        }
    }
}
