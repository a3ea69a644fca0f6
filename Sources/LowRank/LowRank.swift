import Compress

/// Low-rank factorization passes: SVD for linear layers, Tucker-2 and CP for convolutions.
///
/// Passes in this library conform to `Compress.Pass` and are registered with
/// `PassRegistry` so the CLI and pipelines find them by name. The library
/// depends on `Compress` only; nothing in `Compress` depends on it.
public enum LowRankLibrary {
    /// The passes this library provides.
    public static let passes: [any Pass.Type] = []
}
