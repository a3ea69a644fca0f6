import Compress

/// Pruning and weight-sharing passes: magnitude and structured pruning, k-means codebooks, Huffman-coded storage.
///
/// Passes in this library conform to `Compress.Pass` and are registered with
/// `PassRegistry` so the CLI and pipelines find them by name. The library
/// depends on `Compress` only; nothing in `Compress` depends on it.
public enum PruneLibrary {
    /// The passes this library provides.
    public static let passes: [any Pass.Type] = [PrunePass.self]
}
