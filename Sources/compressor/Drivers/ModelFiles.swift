import Compress

/// Reads a model file, native or ONNX, detecting its format by content.
func loadModel(_ path: String) throws -> Model {
    do {
        return try ModelLoader.read(path: path)
    } catch {
        let message = String(describing: error)
        throw CLIError(message.contains(path) ? message : "\(path): \(message)")
    }
}

/// Writes `model` atomically to `path`: ONNX when the path ends in `.onnx`,
/// the native format otherwise.
func saveModel(_ model: Model, to path: String) throws {
    try ModelWriter.write(model, to: path, format: ModelFormat.forOutputPath(path))
}
