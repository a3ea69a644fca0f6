/// Writes a model in either format, atomically (see `writeFileAtomically`).
public enum ModelWriter {
    /// The bytes of `model` in `format`; `opset` applies to ONNX only.
    public static func encode(_ model: Model, format: ModelFormat,
                              opset: Int = ONNXExporter.defaultOpset) throws -> [UInt8] {
        switch format {
        case .native: try ModelFile.encode(model)
        case .onnx: try ONNXExporter.encode(model, opset: opset)
        }
    }

    /// Encodes `model` in `format` and writes it to `path` atomically: `path`
    /// keeps its old content if anything fails, so writing over the input is safe.
    public static func write(_ model: Model, to path: String, format: ModelFormat,
                             opset: Int = ONNXExporter.defaultOpset) throws {
        try writeFileAtomically(try encode(model, format: format, opset: opset), to: path)
    }
}
