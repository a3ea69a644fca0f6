import ArgumentParser
import Compress

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a model between compressor's format (.bin) and ONNX (.onnx).",
        discussion: """
        The output's extension picks the format: .onnx writes ONNX, anything else \
        the native format. ONNX files take pixels in [0,1] like `eval` and `predict`: \
        the model's normalization becomes Sub and Div nodes at the start of the graph. \
        Weights are written as dense float32, except in an int8 model (`quantize --format \
        int8`), which is written as QDQ ONNX (opset 13 or newer): QuantizeLinear + \
        DequantizeLinear for its activation quantizers, int8 weights and int32 biases \
        read through DequantizeLinear, which onnxruntime runs on its integer kernels; \
        an op onnxruntime cannot run on integers is refused by name. The output is \
        written atomically, so it may name the input.
        """)

    @Argument(help: ArgumentHelp("Input model file.", valueName: "model"))
    var input: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file (.onnx for ONNX).", valueName: "file"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("ONNX opset to target (default: \(ONNXExporter.defaultOpset)).",
                                            valueName: "N"))
    var opset: Int?

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        let range = ONNXExporter.supportedOpsets
        if let opset {
            guard ModelFormat.forOutputPath(output) == .onnx else {
                throw ValidationError("--opset applies to ONNX output only; \(output) does not end in .onnx")
            }
            guard range.contains(opset) else {
                throw ValidationError("--opset must be \(range.lowerBound) to \(range.upperBound), got \(opset)")
            }
        }
    }

    func run() throws {
        let model = try loadModel(input)
        let format = ModelFormat.forOutputPath(output)
        let bytes: [UInt8]
        do {
            bytes = try ModelWriter.encode(model, format: format, opset: opset ?? ONNXExporter.defaultOpset)
        } catch {
            throw CLIError("cannot convert \(input): \(error)")
        }
        try writeFileAtomically(bytes, to: output)
        let report = ConvertReport(input: input, output: output, format: format.rawValue,
                                   opset: format == .onnx ? opset ?? ONNXExporter.defaultOpset : nil,
                                   nodes: model.graph.nodes.count, parameters: model.graph.parameterCount,
                                   bytes: bytes.count,
                                   sharedAsFloat32: format == .onnx ? model.metadata.storage.sharedTensors : [],
                                   hashedAsFloat32: format == .onnx ? model.metadata.storage.hashedTensors.keys.sorted() : [])
        if outputOptions.json {
            try printJSON(report)
        } else {
            print(report.text)
        }
    }

    struct ConvertReport: Encodable {
        var input: String
        var output: String
        var format: String
        var opset: Int?
        var nodes: Int
        var parameters: Int
        var bytes: Int
        /// Codebook-shared tensors written as plain float32 initializers (ONNX has no codebook type).
        var sharedAsFloat32: [String]
        /// Hashed tensors (HashedNets) written as their virtual weights in plain float32 (ONNX has no hashed type).
        var hashedAsFloat32: [String]

        var text: String {
            let what = opset.map { "ONNX opset \($0)" } ?? "native"
            var line = "wrote \(output) (\(what)): \(nodes) nodes, \(ReportFormat.grouped(parameters)) parameters, \(ReportFormat.grouped(bytes)) bytes"
            if !sharedAsFloat32.isEmpty {
                line += "\nnote: \(sharedAsFloat32.count) weight-shared tensor(s) (\(sharedAsFloat32.joined(separator: ", "))) written "
                    + "as plain float32 initializers: ONNX has no codebook type, so the file does not shrink"
            }
            if !hashedAsFloat32.isEmpty {
                line += "\nnote: \(hashedAsFloat32.count) hashed tensor(s) (\(hashedAsFloat32.joined(separator: ", "))) written "
                    + "as their virtual weights in plain float32 initializers: ONNX has no hashed type, so the file does not shrink"
            }
            return line
        }
    }
}
