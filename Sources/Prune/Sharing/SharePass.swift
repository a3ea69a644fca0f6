import Compress
import Foundation

/// `share`: weight sharing, the trained quantization of Deep Compression (Han,
/// Mao & Dally, "Deep Compression: Compressing Deep Neural Networks with
/// Pruning, Trained Quantization and Huffman Coding", ICLR 2016, §3).
///
/// Each selected conv and linear weight is clustered by 1-D k-means over its
/// non-zero weights into `2^bits` centroids, or `2^bits - 1` when it has
/// zeros (one code of the `bits`-bit index is then free for zero; see
/// ``sharingClusterCount(bits:hasZeros:)``), and every weight is replaced by
/// its centroid. Values stay float32 in memory; the tensor is listed in
/// `ModelMetadata.storage.sharedTensors`, so the file may store it as a
/// codebook and indices and fine-tuning (here with `finetune-epochs`, or any
/// later `finetune`) keeps it tied: each centroid moves by its members'
/// summed gradient and zeros stay zero.
public struct SharePass: Pass {
    public static let name = "share"
    public static let summary = "Share weights: k-means each conv/linear weight into 2^bits centroids (Deep Compression), optionally fine-tuning the centroids."
    public static let bitRange = 1...8
    /// Lloyd iterations allowed per layer: each costs O(k log n) on sorted
    /// values, and stopping early would leave centroids that are not their
    /// members' means.
    static let maxIterations = 10_000
    public static let parameters: [ParameterSpec] = [
        ParameterSpec("conv-bits", .int, default: .int(8),
                      help: "Index bits per conv weight: 2^bits centroids (2^bits - 1 when the layer has zeros), 1-8."),
        ParameterSpec("fc-bits", .int, default: .int(5),
                      help: "Index bits per linear weight, 1-8 (Han et al. 2016 use 8 for conv, 5 for fc)."),
        .optional("layer-bits", .string,
                  help: "Per-layer bits overriding conv-bits/fc-bits, e.g. 'conv1=8,fc*=4' (patterns allowed; first match wins)."),
        ParameterSpec("layers", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of the conv/linear layers to share (default: all)."),
        ParameterSpec("exclude", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of layers to leave alone."),
        ParameterSpec("init", .choice(CentroidInitialization.allCases.map(\.rawValue)), default: .string("linear"),
                      help: "First centroids: linear (evenly between min and max, best in Han et al.), density (quantiles), random (seeded)."),
        ParameterSpec("huffman", .bool, default: .bool(false),
                      help: "Allow the file to Huffman-code the shared tensors' indices where that is smaller."),
    ] + FineTuneParameters.specs(epochsHelp:
        "Fine-tuning epochs after sharing, every shared weight tied to its centroid (default: 0).")

    public let convBits: Int
    public let fcBits: Int
    /// `layer-bits` as pattern/bits pairs, in the order given.
    public let layerBits: [(pattern: String, bits: Int)]
    public let selection: LayerSelection
    public let initialization: CentroidInitialization
    public let huffman: Bool
    public let fineTuneEpochs: Int
    /// Fine-tuning settings by training parameter name (`lr`, `flip`, ...).
    public let fineTuneOverrides: [String: String]

    public init(parameters p: PassParameters) throws {
        var problems: [String] = []
        convBits = p.int("conv-bits")
        fcBits = p.int("fc-bits")
        for (name, bits) in [("conv-bits", convBits), ("fc-bits", fcBits)] where !Self.bitRange.contains(bits) {
            problems.append("\(name) must be in 1...8, got \(bits)")
        }
        layerBits = p.optionalString("layer-bits").map { text in
            parsePerLayerValues(text, parameter: "layer-bits", valueName: "bits", requirement: "in 1...8", problems: &problems) {
                Int($0).flatMap { Self.bitRange.contains($0) ? $0 : nil }
            }.map { (pattern: $0.pattern, bits: $0.value) }
        } ?? []
        selection = LayerSelection(include: p.string("layers"), exclude: p.string("exclude"))
        initialization = CentroidInitialization(rawValue: p.string("init"))!
        huffman = p.bool("huffman")
        let fineTune = FineTuneParameters.request(p)
        fineTuneEpochs = fineTune.epochs ?? 0
        fineTuneOverrides = fineTune.overrides
        problems += FineTuneParameters.problems(fineTune, keeping: "keep-codebooks", undoes: "the sharing")
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
    }

    /// The bits of each selected layer: its first matching `layer-bits`
    /// entry, else `conv-bits` or `fc-bits`. Every `layer-bits` pattern must
    /// match a selected layer.
    func bits(for layers: [PrunableLayer]) throws(ParameterError) -> [Int] {
        let unmatched = unmatchedPatternProblems(layerBits.map(\.pattern), parameter: "layer-bits", layers: layers)
        guard unmatched.isEmpty else { throw ParameterError(pass: Self.name, problems: unmatched) }
        return layers.map { layer in
            layerBits.first { globMatches($0.pattern, layer.node) }?.bits ?? (layer.isConv ? convBits : fcBits)
        }
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let layers = try selection.layers(in: model.graph, pass: Self.name)
        let hashed = layers.filter { model.metadata.storage.hashedTensors[$0.weight] != nil }
        guard hashed.isEmpty else {
            throw ParameterError(pass: Self.name, problems: hashed.map {
                "layer '\($0.node)' is hashed (HashedNets, tensor '\($0.weight)'): share would break its hashing; exclude it (--exclude \($0.node))"
            })
        }
        let bits = try bits(for: layers)
        var current = model
        var changes: [String] = []
        var (sharedCount, errorSum, distinct) = (0, 0.0, 0)
        for (layer, b) in zip(layers, bits) {
            try context.checkCancellation()
            let tensor = model.graph.initializers[layer.weight]!
            var rng = context.generator(for: "share/" + layer.node)
            let shared = sharedWeights(tensor.floats, bits: b, initialization: initialization, seed: rng.next(),
                                       maxIterations: Self.maxIterations)
            current.graph.initializers[layer.weight] = Tensor(shape: tensor.shape, floats: shared.values)
            let nonZero = shared.clustering.assignments.count
            sharedCount += nonZero
            errorSum += shared.meanAbsoluteError * Double(nonZero)
            distinct += shared.distinctValues
            var line = String(format: "%@: %d clusters (%d bits), %d distinct values, mean |w - centroid| %.4g",
                              layer.node, shared.clusters, b, shared.distinctValues, shared.meanAbsoluteError)
            if shared.clustering.iterations >= Self.maxIterations { line += " (k-means stopped at its iteration limit)" }
            changes.append(line)
        }
        let alreadyShared = current.metadata.storage.sharedTensors
        current.metadata.storage.sharedTensors = Array(Set(alreadyShared).union(layers.map(\.weight))).sorted()
        current.metadata.storage.huffman = huffman
        // Centroids are float32 values: a quantized precision no longer holds.
        for layer in layers { current.metadata.storage.precisions[layer.weight] = nil }
        var metrics: [String: Double] = [
            "shared-layers": Double(layers.count),
            "shared-weights": Double(sharedCount),
            "distinct-values": Double(distinct),
            "mean-abs-error": sharedCount == 0 ? 0 : errorSum / Double(sharedCount),
            "index-bits": Double(zip(layers, bits).reduce(0) { $0 + model.graph.initializers[$1.0.weight]!.count * $1.1 }),
        ]
        if fineTuneEpochs > 0 {
            current = try context.fineTune(current, epochs: fineTuneEpochs, overrides: fineTuneOverrides, pass: Self.name)
            let validation = current.metadata.history.last?.metrics["validation-accuracy"] ?? 0
            metrics["validation-accuracy"] = validation
            changes.append(String(format: "fine-tuned %d epoch(s), centroids tied: validation %.2f%%",
                                  fineTuneEpochs, validation * 100))
        }
        return PassOutcome(model: current, changes: changes, metrics: metrics)
    }
}
