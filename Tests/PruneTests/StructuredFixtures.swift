import Testing
import Compress
@testable import Prune

/// Models, silencing and comparisons shared by the structured-pruning tests.
enum StructuredFixtures {
    /// `architecture` with random BatchNorm scales, shifts and statistics, so
    /// eval-mode BatchNorm is far from the identity and a silenced channel matters.
    static func withRandomBatchNorm(_ architecture: Architecture, seed: UInt64 = 3) -> Model {
        var model = architecture.build(seed: seed)
        var rng = SeededGenerator(seed: seed &+ 1000)
        for node in model.graph.nodes {
            guard case .batchNorm = node.op else { continue }
            let c = model.graph.initializers[node.inputs[1]]!.count
            model.graph.initializers[node.inputs[1]] = rng.uniformTensor([c], in: 0.5...1.5)
            model.graph.initializers[node.inputs[2]] = rng.gaussianTensor([c], std: 0.5)
            model.graph.initializers[node.inputs[3]] = rng.gaussianTensor([c], std: 0.5)
            model.graph.initializers[node.inputs[4]] = rng.uniformTensor([c], in: 0.2...2)
        }
        return model
    }

    /// `model` with the given index of each listed initializer's axis set to zero.
    static func silencing(_ model: Model, _ entries: [(initializer: String, axis: Int, index: Int)]) -> Model {
        var silenced = model
        for entry in entries {
            let tensor = silenced.graph.initializers[entry.initializer]!
            precondition(tensor.shape.indices.contains(entry.axis), "\(entry.initializer) has no axis \(entry.axis)")
            let (dim, inner) = (tensor.shape[entry.axis], tensor.shape[(entry.axis + 1)...].reduce(1, *))
            var values = tensor.floats
            for o in 0..<tensor.shape[..<entry.axis].reduce(1, *) {
                let start = (o * dim + entry.index) * inner
                for i in start..<(start + inner) { values[i] = 0 }
            }
            silenced.graph.initializers[entry.initializer] = Tensor(shape: tensor.shape, floats: values)
        }
        return silenced
    }

    /// Silences a source layer's output channels: weight rows (axis 0) and bias, if any.
    static func filters(_ layer: String, _ channels: [Int], in model: Model) -> [(initializer: String, axis: Int, index: Int)] {
        let bias = model.graph.initializers["\(layer).bias"] != nil ? ["\(layer).bias"] : []
        return (["\(layer).weight"] + bias).flatMap { name in channels.map { (name, 0, $0) } }
    }

    /// Silences BatchNorm channels so they output exactly zero: γ = 0 and β = 0.
    static func batchNorm(_ node: String, _ channels: [Int]) -> [(initializer: String, axis: Int, index: Int)] {
        ["\(node).scale", "\(node).bias"].flatMap { name in channels.map { (name, 0, $0) } }
    }

    /// The group whose source layers include `layer`.
    static func group(of layer: String, in groups: [ChannelGroup]) -> ChannelGroup {
        groups.first { $0.sourceLayers.contains(layer) }!
    }

    /// Every graph output of `model` on seeded uniform inputs (pixels in [0, 1]), by the runtime.
    static func outputs(_ model: Model, batch: Int = 2, seed: UInt64 = 7) throws -> [String: Tensor] {
        var rng = SeededGenerator(seed: seed)
        let inputs = Dictionary(uniqueKeysWithValues: model.graph.inputs.map {
            ($0.name, rng.uniformTensor([batch] + $0.sampleShape))
        })
        return try Session(model: model).run(inputs: inputs, normalizing: true)
    }

    /// Largest absolute difference between two equally shaped tensors (infinity when shapes differ).
    static func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return zip(a.floats, b.floats).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// Checks the pruned model computes what the silenced original does, output by output:
    /// within 1e-4 absolute, or 1e-5 of the output's magnitude when that is larger.
    /// Also checks the silencing mattered: `original` differs from `silenced` by more than the tolerance.
    static func expectSameOutputs(_ pruned: Model, _ silenced: Model, original: Model,
                                  sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (a, b, unsilenced) = (try outputs(pruned), try outputs(silenced), try outputs(original))
        for (name, expected) in b {
            #expect(expected.floats.allSatisfy { $0.isFinite }, sourceLocation: sourceLocation)
            let scale = expected.floats.reduce(0) { max($0, abs($1)) }
            #expect(maxAbsDifference(unsilenced[name]!, expected) > 1e-3 * max(1, scale), "\(name): silencing changed nothing",
                    sourceLocation: sourceLocation)
            let difference = maxAbsDifference(a[name]!, expected)
            #expect(difference <= max(1e-4, 1e-5 * scale), "\(name): max difference \(difference), magnitude \(scale)",
                    sourceLocation: sourceLocation)
        }
    }

    /// A model on 1x8x8 images in which each channel criterion finds a different
    /// least important channel of conv `c`:
    ///
    ///     x[1,8,8] ─ c (conv 3x3, 4) ─ bn ─ relu ─ d (conv 1x1, 3) ─ gap ─ flatten ─ fc (4)
    ///
    /// c's filters are constant: 0.1, 1.0, 1.1 and 1.2 (channel 0 has the
    /// smallest L1 and L2 norm). BatchNorm γ = [1, 0.05, 1, 1] (channel 1 has
    /// the smallest |γ|) and β = [0, 0, 0, -100], which silences channel 3
    /// after the ReLU on images with pixels in [0, 1] (its APoZ is 100%).
    /// d reads nothing from channel 2 (its weights from it are zero), so the
    /// loss gradient there is zero and so is its Taylor score; channel 3's is
    /// zero too (its activations are), and the tie goes to the lower index, 2.
    /// With pixels in [0, 1] every other activation is positive.
    static func criteriaModel(seed: UInt64 = 5) -> Model {
        var rng = SeededGenerator(seed: seed)
        let filters: [Float] = [0.1, 1.0, 1.1, 1.2]
        var d = rng.gaussianTensor([3, 4, 1, 1], std: 0.5).floats
        for o in 0..<3 { d[o * 4 + 2] = 0 }
        let initializers: [String: Tensor] = [
            "c.weight": Tensor(shape: [4, 1, 3, 3], floats: filters.flatMap { [Float](repeating: $0, count: 9) }),
            "bn.scale": Tensor(shape: [4], floats: [1, 0.05, 1, 1]), "bn.bias": Tensor(shape: [4], floats: [0, 0, 0, -100]),
            "bn.mean": .zeros([4]), "bn.var": .filled([4], with: 1),
            "d.weight": Tensor(shape: [3, 4, 1, 1], floats: d), "d.bias": rng.gaussianTensor([3], std: 0.1),
            "fc.weight": rng.gaussianTensor([4, 3], std: 0.5), "fc.bias": .zeros([4]),
        ]
        let nodes = [
            Node(name: "c", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "c.weight"], output: "c"),
            Node(name: "bn", op: .batchNorm(epsilon: 1e-5), inputs: ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], output: "bn"),
            Node(name: "relu", op: .relu, inputs: ["bn"], output: "relu"),
            Node(name: "d", op: .conv2d(Conv2d()), inputs: ["relu", "d.weight", "d.bias"], output: "d"),
            Node(name: "gap", op: .globalAvgPool, inputs: ["d"], output: "gap"),
            Node(name: "flatten", op: .flatten(axis: 1), inputs: ["gap"], output: "flatten"),
            Node(name: "fc", op: .linear, inputs: ["flatten", "fc.weight", "fc.bias"], output: "fc"),
        ]
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [1, 8, 8])], outputs: ["fc"],
                                  nodes: nodes, initializers: initializers))
    }

    /// A graph with two convolution branches concatenated on channels:
    ///
    ///     x[3,8,8] ─ a (conv 3x3, 4) ─ a.relu ──────────────┐
    ///           └─ b (conv 1x1, 6) ─ b.bn ─ b.relu ─────────┴ cat (10) ─ cat.bn ─ cat.relu ─┬─ c (conv 3x3, 5) ─ gap ─ flatten ─ fc (3)
    ///                                                                                        └─ pool (2x2) ─ flat2 ─ head2 (2)
    ///
    /// Outputs `fc` and `head2`; every parameter random.
    static func concatModel(seed: UInt64 = 11) -> Model {
        var rng = SeededGenerator(seed: seed)
        var initializers: [String: Tensor] = [:]
        func conv(_ name: String, _ input: String, out: Int, in channels: Int, kernel: Int, padding: Int) -> Node {
            initializers["\(name).weight"] = rng.gaussianTensor([out, channels, kernel, kernel], std: 0.5)
            initializers["\(name).bias"] = rng.gaussianTensor([out], std: 0.5)
            return Node(name: name, op: .conv2d(Conv2d(padding: .same(padding))),
                        inputs: [input, "\(name).weight", "\(name).bias"], output: name)
        }
        func bn(_ name: String, _ input: String, channels: Int) -> Node {
            initializers["\(name).scale"] = rng.uniformTensor([channels], in: 0.5...1.5)
            initializers["\(name).bias"] = rng.gaussianTensor([channels], std: 0.5)
            initializers["\(name).mean"] = rng.gaussianTensor([channels], std: 0.5)
            initializers["\(name).var"] = rng.uniformTensor([channels], in: 0.2...2)
            return Node(name: name, op: .batchNorm(epsilon: 1e-5),
                        inputs: [input] + ["scale", "bias", "mean", "var"].map { "\(name).\($0)" }, output: name)
        }
        func linear(_ name: String, _ input: String, out: Int, in features: Int) -> Node {
            initializers["\(name).weight"] = rng.gaussianTensor([out, features], std: 0.3)
            initializers["\(name).bias"] = rng.gaussianTensor([out], std: 0.3)
            return Node(name: name, op: .linear, inputs: [input, "\(name).weight", "\(name).bias"], output: name)
        }
        func unary(_ name: String, _ op: Op, _ input: String) -> Node { Node(name: name, op: op, inputs: [input], output: name) }
        let nodes = [
            conv("a", "x", out: 4, in: 3, kernel: 3, padding: 1), unary("a.relu", .relu, "a"),
            conv("b", "x", out: 6, in: 3, kernel: 1, padding: 0), bn("b.bn", "b", channels: 6), unary("b.relu", .relu, "b.bn"),
            Node(name: "cat", op: .concat(axis: 1), inputs: ["a.relu", "b.relu"], output: "cat"),
            bn("cat.bn", "cat", channels: 10), unary("cat.relu", .relu, "cat.bn"),
            conv("c", "cat.relu", out: 5, in: 10, kernel: 3, padding: 1), unary("gap", .globalAvgPool, "c"),
            unary("flatten", .flatten(axis: 1), "gap"), linear("fc", "flatten", out: 3, in: 5),
            unary("pool", .maxPool(Pool2d(kernel: .square(2))), "cat.relu"), unary("flat2", .flatten(axis: 1), "pool"),
            linear("head2", "flat2", out: 2, in: 160),
        ]
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 8, 8])], outputs: ["fc", "head2"],
                                  nodes: nodes, initializers: initializers))
    }
}
