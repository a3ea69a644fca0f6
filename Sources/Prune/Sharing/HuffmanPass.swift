import Compress

/// `huffman`: lets the model file Huffman-code each tensor's index and
/// relative-position streams, the last stage of Deep Compression (Han, Mao and
/// Dally, "Deep Compression: Compressing Deep Neural Networks with Pruning,
/// Trained Quantization and Huffman Coding", ICLR 2016, §4). Values are
/// unchanged: it is a storage option recorded in the model
/// (`StorageOptions.huffman`), so every later step keeps it, and the writer
/// codes a stream only where that makes the file smaller.
public struct HuffmanPass: Pass {
    public static let name = "huffman"
    public static let summary = "Huffman-code the index and position streams of the model file where that is smaller (values unchanged)."
    public static let parameters = [
        ParameterSpec("enabled", .bool, default: .bool(true),
                      help: "Allow Huffman coding (false stores every stream plainly again)."),
    ]

    public let enabled: Bool

    public init(parameters: PassParameters) throws {
        enabled = parameters.bool("enabled")
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        var result = model
        result.metadata.storage.huffman = enabled
        let (before, after) = (try ModelFile.encode(model).count, try ModelFile.encode(result).count)
        let change = enabled ? "Huffman coding allowed" : "Huffman coding turned off"
        return PassOutcome(model: result,
                           changes: ["\(change): file \(before) -> \(after) bytes"],
                           metrics: ["file-bytes-before": Double(before), "file-bytes-after": Double(after)])
    }
}
