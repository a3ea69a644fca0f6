import Testing
@testable import Compress

/// Training hashed tensors (HashedNets): bucket gradients against central
/// finite differences, an optimizer step moving buckets by them, and tied
/// fine-tuning keeping the tensors drawn from their layouts.
@Suite struct HashedTrainingTests {
    typealias F = RuntimeFixtures

    /// `x -> fc1 (hashed, 24 weights in 7 buckets) -> relu -> fc2`.
    static func tinyModel() -> (Model, HashedLayout) {
        let layout = HashedLayout(seed: 21, buckets: 7, count: 24)
        var rng = SeededGenerator(seed: 3)
        let buckets = rng.gaussianTensor([7], std: 0.5).floats
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [6])], outputs: ["y"],
            nodes: [Node(name: "fc1", op: .linear, inputs: ["x", "w1", "b1"], output: "h"),
                    Node(name: "relu", op: .relu, inputs: ["h"], output: "r"),
                    Node(name: "fc2", op: .linear, inputs: ["r", "w2", "b2"], output: "y")],
            initializers: ["w1": Tensor(shape: [4, 6], floats: layout.materialize(buckets)),
                           "b1": Tensor(shape: [4], floats: [0.3, 0.2, 0.25, 0.35]),
                           "w2": F.weights([3, 4], seed: 5), "b2": F.weights([3], seed: 6)])
        var model = Model(graph: graph)
        model.metadata.storage.hashedTensors = ["w1": HashedTensor(buckets: 7, seed: 21)]
        return (model, layout)
    }

    @Test func bucketGradientsMatchFiniteDifferences() throws {
        let (model, layout) = Self.tinyModel()
        let graph = try TrainingGraph(model: model, seed: 1)
        graph.tieHashedTensors(model.metadata.storage.hashedTensors)
        let p = try #require(graph.parameters["w1"])
        let codebook = try #require(p.policy.codebook)
        #expect(codebook.centroids.count == 7)
        #expect(codebook.assignments == layout.assignments)
        let input = GradientCheck.gaussian([5, 6], seed: 2)
        var rng = SeededGenerator(seed: 9)
        let r = rng.gaussianTensor([5, 3])
        let weights = r.floats.map(Double.init)
        func loss() throws -> Double {
            zip(try graph.forward(input, training: true).floats, weights).reduce(0) { $0 + Double($1.0) * $1.1 }
        }
        graph.zeroGradients()
        _ = try graph.forward(input, training: true)
        try graph.backward(r)
        let analytic = codebook.centroidGradients(p.gradient)
        // Σ s(i) ∂L/∂w_i, here written out from the weight gradients.
        for k in 0..<7 {
            let expected = (0..<24).filter { layout.bucket($0) == k }
                .reduce(Float(0)) { $0 + (layout.isNegated($1) ? -p.gradient[$1] : p.gradient[$1]) }
            #expect(abs(analytic[k] - expected) <= 1e-6)
        }
        let eps: Float = 1e-2
        var (difference, norm) = (0.0, 0.0)
        for k in 0..<7 {
            var c = codebook
            c.centroids[k] += eps
            c.materialize(into: p.values)
            let plus = try loss()
            c.centroids[k] -= 2 * eps
            c.materialize(into: p.values)
            let minus = try loss()
            let numeric = (plus - minus) / (2 * Double(eps))
            difference += (numeric - Double(analytic[k])) * (numeric - Double(analytic[k]))
            norm += numeric * numeric
        }
        codebook.materialize(into: p.values)
        #expect(norm > 1e-4)
        #expect(difference.squareRoot() / norm.squareRoot() < 2e-3)

        // One plain SGD step moves each bucket by -lr times its gradient and keeps w1 hashed.
        SGD(momentum: 0, weightDecay: 0).step([p], learningRate: 0.1)
        let moved = try #require(p.policy.codebook).centroids
        for k in 0..<7 { #expect(abs(moved[k] - (codebook.centroids[k] - 0.1 * analytic[k])) <= 1e-6) }
        #expect(Array(p.values) == layout.materialize(moved))
    }

    /// LeNet-300 on 1x8x8 images with fc1 and fc2 hashed 8x.
    func hashedModel() -> Model {
        var m = TrainingRunTests().model()
        for (name, seed) in [("fc1.weight", UInt64(1)), ("fc2.weight", 2)] {
            let w = m.graph.initializers[name]!
            let hashed = HashedTensor(buckets: (w.count + 7) / 8, seed: seed)
            let layout = hashed.layout(count: w.count)
            m.graph.initializers[name] = Tensor(shape: w.shape, floats: layout.materialize(layout.projectedBuckets(of: w.floats)))
            m.metadata.storage.hashedTensors[name] = hashed
        }
        return m
    }

    func trained(_ model: Model, keepCodebooks: Bool) throws -> Model {
        var s = TrainingRunTests().settings(epochs: 2)
        s.keepsCodebooks = keepCodebooks
        return try TrainingRun(model: model, data: TrainingRunTests().data(), settings: s, passName: "finetune",
                               checkpointDirectory: nil).run(resume: false).model
    }

    @Test func tiedFineTuningKeepsTensorsDrawnFromTheirBuckets() throws {
        let model = hashedModel()
        let out = try trained(model, keepCodebooks: true)
        #expect(out.metadata.storage.hashedTensors == model.metadata.storage.hashedTensors)
        for name in ["fc1.weight", "fc2.weight"] {
            let hashed = model.metadata.storage.hashedTensors[name]!
            let before = model.graph.initializers[name]!.floats, after = out.graph.initializers[name]!
            let layout = hashed.layout(count: after.count)
            let buckets = after.floats.withUnsafeBufferPointer { layout.exactBuckets(of: $0) }
            #expect(buckets != nil, "\(name) is no longer drawn from its layout")
            #expect(before != after.floats, "\(name) did not train")
            #expect(ModelFile.encodingName(of: after, named: name, storage: out.metadata.storage) == "hashed-float32")
        }
        // The file stores buckets: fc1 and fc2 take about an eighth of their dense bytes.
        let dense = ModelFile.encodedTensorSizes(Model(graph: out.graph))
        let hashed = ModelFile.encodedTensorSizes(out)
        for name in ["fc1.weight", "fc2.weight"] {
            #expect(Double(hashed[name]!.bytes) < Double(dense[name]!.bytes) / 7, "\(name)")
        }
        let back = try ModelFile.decode(try ModelFile.encode(out))
        #expect(back == out)
    }

    @Test func releasedHashesLeaveTheHashedList() throws {
        let out = try trained(hashedModel(), keepCodebooks: false)
        #expect(out.metadata.storage.hashedTensors.isEmpty)
        let w = out.graph.initializers["fc1.weight"]!
        #expect(ModelFile.encodingName(of: w, named: "fc1.weight", storage: out.metadata.storage) == "dense-float32")
    }
}

extension HashedTrainingTests {
    /// A bucket at exactly zero is a bucket, not pruned weights: keep-zeros
    /// leaves hashed tensors unmasked, so training moves it and the tensor
    /// stays drawn from its layout.
    @Test func aZeroBucketIsNotMaskedAndMoves() throws {
        var model = hashedModel()
        let name = "fc2.weight"
        let hashed = model.metadata.storage.hashedTensors[name]!
        let w = model.graph.initializers[name]!
        let layout = hashed.layout(count: w.count)
        var buckets = layout.projectedBuckets(of: w.floats)
        buckets[0] = 0
        model.graph.initializers[name] = Tensor(shape: w.shape, floats: layout.materialize(buckets))
        var s = TrainingRunTests().settings(epochs: 1)
        s.keepsZeroWeights = true
        let out = try TrainingRun(model: model, data: TrainingRunTests().data(), settings: s, passName: "finetune",
                                  checkpointDirectory: nil).run(resume: false).model
        let after = out.graph.initializers[name]!.floats
        let moved = try #require(after.withUnsafeBufferPointer { layout.exactBuckets(of: $0) })
        #expect(moved[0] != 0)
    }
}
