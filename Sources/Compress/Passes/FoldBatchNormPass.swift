/// Folds every BatchNorm that directly follows a convolution or linear layer
/// into that layer's weight and bias, removing the BatchNorm node.
///
/// For a BN with scale γ, shift β, running mean μ and variance σ², the layer
/// `y = W x + b` becomes `y = (γ/√(σ²+ε)) W x + γ (b − μ)/√(σ²+ε) + β`.
/// Outputs are unchanged up to float rounding (Ioffe & Szegedy 2015, "Batch
/// Normalization", §3.2: at inference the normalization is a linear transform).
public struct FoldBatchNormPass: Pass {
    public static let name = "fold-bn"
    public static let summary = "Fold BatchNorm into the preceding conv or linear layer (outputs unchanged)."
    public static let parameters = [
        ParameterSpec("verify", .bool, default: .bool(true),
                      help: "Run a seeded random batch through the original model (reference evaluator) and the folded one (runtime), and record the largest output difference."),
        ParameterSpec("verify-batch", .int, default: .int(2),
                      help: "Images in the verification batch."),
    ]

    public let verify: Bool
    public let verifyBatch: Int

    public init(parameters: PassParameters) throws {
        verify = parameters.bool("verify")
        verifyBatch = parameters.int("verify-batch")
        guard verifyBatch >= 1 else {
            throw ParameterError(pass: Self.name, problems: ["parameter 'verify-batch' must be at least 1, got \(verifyBatch)"])
        }
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let (graph, folded) = foldingBatchNorm(model.graph)
        var result = model
        result.graph = graph
        var changes = folded.isEmpty ? ["no BatchNorm follows a conv or linear layer; nothing folded"]
            : folded.map { bn in
                let layer = model.graph.nodes.first { $0.name == bn }.flatMap { model.graph.producer(of: $0.inputs[0])?.name }
                return "folded \(bn) into \(layer ?? "?")"
            }
        // Folding scales a weight's rows by the BatchNorm's factors: a shared
        // (codebook), hashed or quantized tensor it changed no longer holds its
        // codebook, its buckets or its grid, so it is released and stored like
        // any other tensor.
        var storage = result.metadata.storage
        let changed = Set(graph.initializers.keys.filter { model.graph.initializers[$0] != graph.initializers[$0] })
        for name in storage.sharedTensors where changed.contains(name) {
            changes.append("released the weight sharing of \(name): folding scaled its rows")
        }
        for name in storage.hashedTensors.keys.sorted() where changed.contains(name) {
            changes.append("released the hashing of \(name): folding scaled its rows")
        }
        for name in storage.precisions.keys.sorted() where changed.contains(name) {
            changes.append("released the \(storage.precisions[name]!.name) precision of \(name): folding scaled its rows "
                           + "(quantize again to store it narrow)")
        }
        storage.sharedTensors.removeAll { changed.contains($0) }
        for name in changed { storage.precisions[name] = nil }
        for name in changed { storage.hashedTensors[name] = nil }
        result.metadata.storage = storage
        var metrics: [String: Double] = ["folded": Double(folded.count)]
        if verify {
            try model.checkInferenceMemory(batch: verifyBatch)
            var rng = context.generator(for: Self.name)
            let input = rng.uniformTensor([verifyBatch] + model.inputShape, in: 0...1)
            let before = try ReferenceEvaluator.run(model: model, input: input)
            let after = try Session(model: result, threads: context.threads).run(input)
            metrics["max-abs-diff"] = Double(zip(before.floats, after.floats).map { abs($0 - $1) }.max() ?? 0)
        }
        return PassOutcome(model: result, changes: changes, metrics: metrics)
    }
}
