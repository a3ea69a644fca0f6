/// Reads a model from a file in either format, told apart by content, not
/// by extension: the native model file (magic "CMPRSSR") or an ONNX model.
public enum ModelLoader {
    /// The model at `path`.
    ///
    /// - Throws: `ModelFileError` when the file cannot be read, is a damaged
    ///   native file, or is neither format (naming what it looks like);
    ///   `ONNXImportError` when it is an ONNX model that cannot be imported;
    ///   either's `exceedsMemoryBudget` when its tensors' declared sizes
    ///   exceed `budget`.
    public static func read(path: String, budget: MemoryBudget = .processDefault) throws -> Model {
        try decode(try readFile(path), budget: budget)
    }

    /// The model in `bytes`, native or ONNX (see `read(path:budget:)`).
    public static func decode(_ bytes: [UInt8], budget: MemoryBudget = .processDefault) throws -> Model {
        if bytes.starts(with: FileHeader.magic.prefix(4)) { return try ModelFile.decode(bytes, budget: budget) }
        // A damaged ONNX file (cut off, say) still gets the ONNX importer's message.
        if ONNXImporter.looksLikeONNX(bytes) || sniffFormat(bytes)?.contains("ONNX") == true {
            return try ONNXImporter.decode(bytes, budget: budget)
        }
        return try ModelFile.decode(bytes, budget: budget)
    }
}
