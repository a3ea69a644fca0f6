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

/// Reads a model file (`loadModel`) that the command will run, and checks
/// first that running one image fits the memory budget (`--max-memory`), so a
/// model too large for this machine gets that one message before any data is
/// read or buffer allocated.
func loadRunnableModel(_ path: String) throws -> Model {
    let model = try loadModel(path)
    do {
        try model.checkInferenceMemory()
    } catch let refusal as MemoryBudgetExceeded {
        throw CLIError("\(path): \(refusal)")
    }
    return model
}

/// Writes `model` atomically to `path`: ONNX when the path ends in `.onnx`,
/// the native format otherwise.
func saveModel(_ model: Model, to path: String) throws {
    try ModelWriter.write(model, to: path, format: ModelFormat.forOutputPath(path))
}
