@testable import Compress

/// Graph builders and comparisons shared by the runtime and reference tests.
enum RuntimeFixtures {
    /// A graph `x -> op -> y` whose extra inputs are the named initializers, in order.
    static func singleOp(_ op: Op, sample: [Int], parameters: [(String, Tensor)] = []) -> Graph {
        Graph(inputs: [GraphInput(name: "x", sampleShape: sample)], outputs: ["y"],
              nodes: [Node(name: "op", op: op, inputs: ["x"] + parameters.map(\.0), output: "y")],
              initializers: Dictionary(uniqueKeysWithValues: parameters))
    }

    /// Largest absolute difference between two equally shaped tensors.
    static func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.floats, b.floats).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// True when `actual` matches `expected` in shape and within
    /// `1e-4 * (1 + max|expected|)` element by element.
    static func isClose(_ actual: Tensor, _ expected: Tensor, relative: Float = 1e-4) -> Bool {
        let scale = expected.floats.reduce(0) { max($0, abs($1)) }
        return actual.shape == expected.shape && maxAbsDifference(actual, expected) <= relative * (1 + scale)
    }

    /// Runs `graph` through `Session` and `ReferenceEvaluator` on seeded Gaussian
    /// inputs of batch `batch` and returns (session, reference) for every output.
    static func bothOutputs(_ graph: Graph, batch: Int, seed: UInt64 = 1) throws -> [(Tensor, Tensor)] {
        var rng = SeededGenerator(seed: seed)
        var inputs: [String: Tensor] = [:]
        for input in graph.inputs { inputs[input.name] = rng.gaussianTensor([batch] + input.sampleShape) }
        let session = try Session(model: Model(graph: graph))
        let fast = try session.run(inputs: inputs)
        let reference = try ReferenceEvaluator.run(graph, inputs: inputs)
        return graph.outputs.map { (fast[$0]!, reference[$0]!) }
    }

    /// True when Session and ReferenceEvaluator agree on every output.
    static func sessionMatchesReference(_ graph: Graph, batch: Int = 2, seed: UInt64 = 1) throws -> Bool {
        try bothOutputs(graph, batch: batch, seed: seed).allSatisfy { isClose($0.0, $0.1) }
    }

    /// Seeded Gaussian weights.
    static func weights(_ shape: [Int], seed: UInt64, std: Float = 0.5) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return rng.gaussianTensor(shape, std: std)
    }

    /// Seeded uniform values in `range` (e.g. positive variances).
    static func uniform(_ shape: [Int], seed: UInt64, in range: ClosedRange<Float>) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return rng.uniformTensor(shape, in: range)
    }

    /// BatchNorm parameters `[scale, bias, mean, variance]` for `channels`, named `prefix.*`.
    static func batchNormParameters(_ prefix: String, channels: Int, seed: UInt64) -> [(String, Tensor)] {
        [("\(prefix).scale", uniform([channels], seed: seed, in: 0.5...1.5)),
         ("\(prefix).bias", weights([channels], seed: seed + 1)),
         ("\(prefix).mean", weights([channels], seed: seed + 2)),
         ("\(prefix).var", uniform([channels], seed: seed + 3, in: 0.2...2))]
    }
}
