import Compress
import Foundation

/// `hash`: HashedNets (Chen, Wilson, Tyree, Weinberger & Chen, "Compressing
/// Neural Networks with the Hashing Trick", ICML 2015).
///
/// Each selected linear weight (conv weights too with `convs`) becomes a
/// virtual weight matrix drawn from a bucket vector `compression` times
/// smaller (`ceil(weights / compression)` buckets) by a seeded hash with a
/// sign hash (``HashedLayout``): `w_i = s(i) · bucket[h(i)]`. The seed comes
/// from the run's seed and the layer's name. Biases stay dense.
///
/// The buckets start as the least-squares projection of the current weights
/// (`init project`: bucket k is the mean of `s(i) · w_i` over its members),
/// or, to train from scratch, as one signed member each (`init sample`,
/// keeping the weights' initial distribution). Values stay float32 in
/// memory; the tensor is listed in `ModelMetadata.storage.hashedTensors`, so
/// the file stores its buckets and seed, and fine-tuning (here with
/// `finetune-epochs`, or any later `finetune`) keeps it hashed: a bucket's
/// gradient is the signed sum of its virtual weights' gradients.
public struct HashPass: Pass {
    public static let name = "hash"
    public static let summary = "Hash linear (optionally conv) weights into a bucket vector `compression` times smaller (HashedNets), optionally fine-tuning the buckets."

    /// How the buckets start.
    public enum BucketInitialization: String, CaseIterable, Sendable {
        /// The least-squares projection of the current weights.
        case project
        /// Each bucket takes its first member's signed weight.
        case sample
    }

    public static let parameters: [ParameterSpec] = [
        ParameterSpec("compression", .double, default: .double(8),
                      help: "Virtual weights per stored bucket, > 1: each layer keeps ceil(weights / compression) buckets."),
        ParameterSpec("layers", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of the layers to hash (default: every linear layer)."),
        ParameterSpec("exclude", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of layers to leave alone."),
        ParameterSpec("convs", .bool, default: .bool(false),
                      help: "Hash conv weights too (HashedNets hashes fully connected layers)."),
        ParameterSpec("init", .choice(BucketInitialization.allCases.map(\.rawValue)), default: .string("project"),
                      help: "First buckets: project (least-squares fit of the current weights) or sample (one signed member each, for training from scratch)."),
    ] + FineTuneParameters.specs(epochsHelp:
        "Fine-tuning epochs after hashing, every virtual weight tied to its bucket (default: 0).")

    public let compression: Double
    public let selection: LayerSelection
    public let includesConvs: Bool
    public let initialization: BucketInitialization
    public let fineTuneEpochs: Int
    /// Fine-tuning settings by training parameter name (`lr`, `flip`, ...).
    public let fineTuneOverrides: [String: String]

    public init(parameters p: PassParameters) throws {
        var problems: [String] = []
        compression = p.double("compression")
        if !(compression > 1) { problems.append("compression must be greater than 1, got \(p.double("compression"))") }
        selection = LayerSelection(include: p.string("layers"), exclude: p.string("exclude"))
        includesConvs = p.bool("convs")
        initialization = BucketInitialization(rawValue: p.string("init"))!
        let fineTune = FineTuneParameters.request(p)
        fineTuneEpochs = fineTune.epochs ?? 0
        fineTuneOverrides = fineTune.overrides
        problems += FineTuneParameters.problems(fineTune, keeping: "keep-codebooks", undoes: "the hashing")
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
    }

    /// Buckets for `weights` virtual weights: `ceil(weights / compression)`, at least 1.
    public static func bucketCount(weights: Int, compression: Double) -> Int {
        max(1, Int((Double(weights) / compression).rounded(.up)))
    }

    /// The layers to hash: the selection's linear layers, and conv layers with `convs`.
    func layers(in model: Model) throws(ParameterError) -> [PrunableLayer] {
        let selected = try selection.layers(in: model.graph, pass: Self.name)
        let chosen = selected.filter { includesConvs || !$0.isConv }
        guard !chosen.isEmpty else {
            throw ParameterError(pass: Self.name, problems: [
                "no linear layer weight is selected (selected: \(selected.map(\.node).joined(separator: ", "))); "
                    + "pass convs true to hash conv layers",
            ])
        }
        let shared = chosen.filter { model.metadata.storage.sharedTensors.contains($0.weight) }
        guard shared.isEmpty else {
            throw ParameterError(pass: Self.name, problems: shared.map {
                "layer '\($0.node)' is weight-shared (codebook); hashing it would discard its codebook: exclude it"
            })
        }
        return chosen
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let layers = try layers(in: model)
        var current = model
        var changes: [String] = []
        var (virtual, stored, squaredError, squaredNorm) = (0, 0, 0.0, 0.0)
        for layer in layers {
            try context.checkCancellation()
            let tensor = model.graph.initializers[layer.weight]!
            let values = tensor.floats
            var rng = context.generator(for: "hash/" + layer.node)
            let hashed = HashedTensor(buckets: Self.bucketCount(weights: values.count, compression: compression),
                                      seed: rng.next())
            let layout = hashed.layout(count: values.count)
            let buckets = switch initialization {
            case .project: layout.projectedBuckets(of: values)
            case .sample: Self.sampledBuckets(values, layout: layout)
            }
            let materialized = layout.materialize(buckets)
            current.graph.initializers[layer.weight] = Tensor(shape: tensor.shape, floats: materialized)
            current.metadata.storage.hashedTensors[layer.weight] = hashed
            var (error, norm) = (0.0, 0.0)
            for (w, v) in zip(values, materialized) {
                error += Double(w - v) * Double(w - v)
                norm += Double(w) * Double(w)
            }
            virtual += values.count
            stored += hashed.buckets
            squaredError += error
            squaredNorm += norm
            let used = Set(layout.assignments).count
            changes.append(String(format: "%@: %d virtual weights from %d buckets (%.2fx, %d used), relative error %.4g",
                                  layer.node, values.count, hashed.buckets,
                                  Double(values.count) / Double(hashed.buckets), used,
                                  norm > 0 ? (error / norm).squareRoot() : 0))
        }
        var metrics: [String: Double] = [
            "hashed-layers": Double(layers.count),
            "virtual-weights": Double(virtual),
            "buckets": Double(stored),
            "relative-error": squaredNorm > 0 ? (squaredError / squaredNorm).squareRoot() : 0,
        ]
        if fineTuneEpochs > 0 {
            current = try context.fineTune(current, epochs: fineTuneEpochs, overrides: fineTuneOverrides, pass: Self.name)
            let validation = current.metadata.history.last?.metrics["validation-accuracy"] ?? 0
            metrics["validation-accuracy"] = validation
            changes.append(String(format: "fine-tuned %d epoch(s), buckets tied: validation %.2f%%",
                                  fineTuneEpochs, validation * 100))
        }
        return PassOutcome(model: current, changes: changes, metrics: metrics)
    }

    /// Each bucket's first member's signed weight (+0.0 for an empty bucket).
    static func sampledBuckets(_ values: [Float], layout: HashedLayout) -> [Float] {
        var buckets = [Float?](repeating: nil, count: layout.buckets)
        for i in 0..<layout.count where buckets[layout.bucket(i)] == nil {
            buckets[layout.bucket(i)] = layout.isNegated(i) ? -values[i] : values[i]
        }
        return buckets.map { $0 ?? 0 }
    }
}

/// Refuses a pass's result that changed a hashed tensor (its values no
/// longer drawn from its buckets, or its shape changed): `prune` and `share`
/// would silently turn a hashed layer back into a dense one.
public func refuseChangedHashedTensors(before: Model, after: Model, pass: String) throws(ParameterError) {
    let changed = before.metadata.storage.hashedTensors.keys.sorted().filter {
        before.graph.initializers[$0] != after.graph.initializers[$0]
    }
    guard changed.isEmpty else {
        let layers = changed.map { name in
            before.graph.nodes.first { $0.inputs.dropFirst().first == name }?.name ?? name
        }
        throw ParameterError(pass: pass, problems: zip(changed, layers).map { tensor, layer in
            "layer '\(layer)' is hashed (HashedNets, tensor '\(tensor)'): \(pass) would break its hashing; exclude it (--exclude \(layer))"
        })
    }
}
