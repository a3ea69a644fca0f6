import ArgumentParser
import Compress

/// `--json`, shared by every command.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// `--data`, for commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Dataset directory: IDX files (MNIST layout, raw or .gz) or .npy arrays.",
                                            valueName: "dir"))
    var data: String?

    @Option(name: .long, help: "Training images held out for validation (the last N of the training split).")
    var validationCount = 5000
}

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
