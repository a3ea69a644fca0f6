import Compress

/// Pruning: the `prune` pass, with magnitude pruning of single weights
/// (one-shot, iterative or gradual schedules, per layer or globally, by
/// fraction, threshold or a sensitivity analysis) and structured pruning of
/// whole channels through the graph's channel dependency groups (L1, L2,
/// BatchNorm-scale, Taylor and APoZ criteria; fraction, MAC or measured
/// latency targets), plus per-layer sensitivity analysis; and the `share`
/// pass: weight sharing by k-means into per-layer codebooks (Deep
/// Compression), with fine-tuning that keeps the weights tied; and the
/// `huffman` pass, which lets the file Huffman-code its index streams; and
/// the `hash` pass: HashedNets, weights drawn from a small bucket vector by
/// a seeded hash, fine-tuned with the buckets tied.
/// the `quantize` pass: float16 or int8 weights recorded as the tensors'
/// precision, and int8 activations calibrated on validation images.
///
/// Passes in this library conform to `Compress.Pass` and are registered with
/// `PassRegistry` so the CLI and pipelines find them by name. The library
/// depends on `Compress` only; nothing in `Compress` depends on it.
public enum PruneLibrary {
    /// The passes this library provides.
    public static let passes: [any Pass.Type] = [PrunePass.self, SharePass.self, HuffmanPass.self, HashPass.self,
                                                  QuantizePass.self]
}
