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
    try namingModel(path) { try model.checkInferenceMemory() }
    return model
}

/// Runs `work` on the model at `path`; a memory-budget refusal it throws
/// becomes one message that starts with the path.
func namingModel<T>(_ path: String, _ work: () throws -> T) throws -> T {
    do {
        return try work()
    } catch let refusal as MemoryBudgetExceeded {
        throw CLIError("\(path): \(refusal)")
    }
}

/// Writes `model` atomically to `path`: ONNX when the path ends in `.onnx`,
/// the native format otherwise.
func saveModel(_ model: Model, to path: String) throws {
    try ModelWriter.write(model, to: path, format: ModelFormat.forOutputPath(path))
}
