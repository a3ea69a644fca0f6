/// A file format a model can be written in.
public enum ModelFormat: String, Sendable, CaseIterable {
    /// compressor's own `.bin` file (`ModelFile`): lossless, with history.
    case native
    /// ONNX (`ONNXExporter`): for other runtimes; normalization in the graph.
    case onnx

    /// The format a path's extension names: `.onnx` (any case) is ONNX,
    /// anything else the native format.
    public static func forOutputPath(_ path: String) -> ModelFormat {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        return file.lowercased().hasSuffix(".onnx") ? .onnx : .native
    }
}
