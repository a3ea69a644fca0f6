import Foundation
import Testing
@testable import Compress

@Suite struct TrainingGraphTests {
    typealias F = RuntimeFixtures

    /// `architecture` with random BatchNorm statistics and affine parameters, so eval-mode BN is not the identity.
    static func modelWithRandomBatchNorm(_ architecture: Architecture) -> Model {
        var model = architecture.build(seed: 4)
        var seed: UInt64 = 100
        for node in model.graph.nodes {
            guard case .batchNorm = node.op else { continue }
            let channels = model.graph.initializers[node.inputs[1]]!.count
            for (k, (_, t)) in F.batchNormParameters("bn", channels: channels, seed: seed).enumerated() {
                model.graph.initializers[node.inputs[k + 1]] = t
            }
            seed += 10
        }
        return model
    }

    @Test(arguments: [Architecture.vggSmall, .resnet20, .lenet5, .mobilenetSmall, .lenet300])
    func evalForwardMatchesSession(_ architecture: Architecture) throws {
        let model = Self.modelWithRandomBatchNorm(architecture)
        var rng = SeededGenerator(seed: 8)
        let x = rng.uniformTensor([3] + model.inputShape)
        let expected = try Session(model: model).run(x)
        for threads in [1, 2] {
            let actual = try TrainingGraph(model: model, threads: threads).forward(x, training: false)
            #expect(F.isClose(actual, expected), "threads \(threads): max difference \(F.maxAbsDifference(actual, expected))")
        }
    }

    /// One thread, and two threads splitting every step however small (so the element
    /// ranges, channel and image splits all run on small batches).
    @Test(arguments: [Architecture.vggSmall, .resnet20, .mobilenetSmall])
    func twoThreadsGiveTheSameGradientsAsOne(_ architecture: Architecture) throws {
        let model = Self.modelWithRandomBatchNorm(architecture)
        var rng = SeededGenerator(seed: 8)
        let x = rng.uniformTensor([4] + model.inputShape)
        var gradients: [[String: Tensor]] = []
        for threads in [1, 2] {
            let graph = try TrainingGraph(model: model, seed: 0, threads: threads, computesInputGradient: false,
                                          kernels: .processDefault, splitsAllWork: threads > 1)
            let logits = try graph.forward(x, training: true)
            try graph.backward(Loss.softmaxCrossEntropy(logits: logits, labels: [1, 2, 3, 4]).gradient)
            gradients.append(graph.gradients)
        }
        for (name, g) in gradients[0] { #expect(F.isClose(gradients[1][name]!, g, relative: 1e-3), "\(name)") }
    }

    /// Every kernel set's training step (forward in training mode, backward into
    /// every parameter and the input) agrees with the portable one (plain loops
    /// and BLAS, the reference) within rounding, on the four small architectures.
    @Test(arguments: [Architecture.mobilenetSmall, .vggSmall, .resnet20, .lenet5])
    func kernelSetsAgreeWithPortable(_ architecture: Architecture) throws {
        let model = Self.modelWithRandomBatchNorm(architecture)
        var rng = SeededGenerator(seed: 9)
        let x = rng.uniformTensor([3] + model.inputShape)
        func step(_ kernels: KernelSet) throws -> (Tensor, [String: Tensor], Tensor) {
            let graph = try TrainingGraph(model: model, threads: 2, computesInputGradient: true, kernels: kernels)
            let logits = try graph.forward(x, training: true)
            try graph.backward(Loss.softmaxCrossEntropy(logits: logits, labels: [1, 5, 9]).gradient)
            return (logits, graph.gradients, graph.inputGradient!)
        }
        let reference = try step(.portable)
        for kernels in KernelSet.supported where kernels != .portable {
            let (logits, gradients, inputGradient) = try step(kernels)
            #expect(F.isClose(logits, reference.0, relative: 1e-4), "\(kernels) logits")
            #expect(F.isClose(inputGradient, reference.2, relative: 1e-3), "\(kernels) input gradient")
            for (name, g) in reference.1 {
                #expect(F.isClose(gradients[name]!, g, relative: 1e-3), "\(kernels) \(name)")
            }
        }
    }

    @Test func batchNormTrainingForwardByHand() throws {
        let (n, c, inner) = (4, 2, 3)
        let parameters = F.batchNormParameters("bn", channels: c, seed: 3)
        let graph = F.singleOp(.batchNorm(epsilon: 1e-3), sample: [c, inner], parameters: parameters)
        let trainer = try TrainingGraph(model: Model(graph: graph))
        let x = GradientCheck.gaussian([n, c, inner], seed: 1, std: 3)
        let y = try trainer.forward(x, training: true).floats
        let (xs, scale, bias) = (x.floats, parameters[0].1.floats, parameters[1].1.floats)
        let (mean0, var0) = (parameters[2].1.floats, parameters[3].1.floats)
        for ch in 0..<c {
            let indices = (0..<n).flatMap { image in (0..<inner).map { (image * c + ch) * inner + $0 } }
            let values = indices.map { Double(xs[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            for i in indices {
                let expected = (Double(xs[i]) - mean) / (variance + 1e-3).squareRoot() * Double(scale[ch]) + Double(bias[ch])
                #expect(abs(Double(y[i]) - expected) < 1e-5)
            }
            let unbiased = variance * Double(values.count) / Double(values.count - 1)
            #expect(abs(Double(trainer.statistics["bn.mean"]!.values[ch]) - (0.9 * Double(mean0[ch]) + 0.1 * mean)) < 1e-5)
            #expect(abs(Double(trainer.statistics["bn.var"]!.values[ch]) - (0.9 * Double(var0[ch]) + 0.1 * unbiased)) < 1e-5)
        }
        // Eval mode uses the (updated) running statistics, as the exported model's Session does.
        let exported = trainer.exportModel()
        #expect(F.isClose(try trainer.forward(x, training: false), try Session(model: exported).run(x)))
    }

    @Test func dropoutIsIdentityInEvalAndKeepsExpectedFractionInTraining() throws {
        let trainer = try TrainingGraph(model: Model(graph: F.singleOp(.dropout(ratio: 0.25), sample: [1000])), seed: 3)
        let x = Tensor.filled([4, 1000], with: 1)
        #expect(try trainer.forward(x, training: false) == x)
        let y = try trainer.forward(x, training: true).floats
        let kept = y.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / 4000 - 0.75) < 0.03)
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        let again = try TrainingGraph(model: Model(graph: F.singleOp(.dropout(ratio: 0.25), sample: [1000])), seed: 3)
        #expect(try again.forward(x, training: true).floats == y)
    }

    @Test func exportWritesTrainedParametersBack() throws {
        let model = Architecture.lenet5.build(seed: 2)
        let trainer = try TrainingGraph(model: model)
        var rng = SeededGenerator(seed: 1)
        let x = rng.uniformTensor([4, 1, 28, 28])
        let logits = try trainer.forward(x, training: true)
        try trainer.backward(Loss.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2, 3]).gradient)
        SGD(momentum: 0.9).step(trainer, learningRate: 0.1)
        let exported = trainer.exportModel()
        #expect(exported.graph.nodes == model.graph.nodes)
        #expect(exported.graph.initializers["conv1.weight"] != model.graph.initializers["conv1.weight"])
        #expect(F.isClose(try Session(model: exported).run(x), try trainer.forward(x, training: false)))
    }

    @Test func misuseIsReported() throws {
        let trainer = try TrainingGraph(model: Architecture.lenet300.build(seed: 1))
        #expect(throws: TrainingError.backwardBeforeForward) { try trainer.backward(.zeros([1, 10])) }
        _ = try trainer.forward(.zeros([2, 1, 28, 28]), training: true)
        #expect(throws: TrainingError.gradientShape(value: "fc3", expected: [2, 10], got: [1, 10])) {
            try trainer.backward(.zeros([1, 10]))
        }
        #expect(trainer.inputGradient == nil)
        let bad = Graph(inputs: [GraphInput(name: "x", sampleShape: [3])], outputs: ["y"],
                        nodes: [Node(name: "fc", op: .linear, inputs: ["x", "x2"], output: "y"),
                                Node(name: "sq", op: .mul, inputs: ["x", "x"], output: "x2")], initializers: [:])
        #expect(throws: (any Error).self) { try TrainingGraph(model: Model(graph: bad)) }
    }

    /// Fashion-MNIST: a small MLP trained 300 SGD steps on 2,000 images reaches > 70% on 1,000 test images.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: DatasetLoader.defaultDirectory)))
    func learnsFashionMNIST() throws {
        let data = try DatasetLoader.load(validationCount: 0, splits: [.train, .test])
        let train = data.train.batch(0..<2000), test = data.test.batch(0..<1000)
        let model = Self.mlp(hidden: 64)
        let trainer = try TrainingGraph(model: model, seed: 1)
        let optimizer = SGD(momentum: 0.9, nesterov: true, weightDecay: 1e-4)
        let schedule = LRSchedule.cosine(base: 0.05, floor: 0.005, totalSteps: 300)
        var rng = SeededGenerator(seed: 2)
        var losses: [Float] = []
        for step in 0..<300 {
            let batch = train.subset((0..<32).map { _ in Int(rng.next() % 2000) })
            let logits = try trainer.forward(batch.images, training: true)
            let (loss, gradient) = Loss.softmaxCrossEntropy(logits: logits, labels: batch.labels, labelSmoothing: 0.05)
            losses.append(loss)
            trainer.zeroGradients()
            try trainer.backward(gradient)
            optimizer.step(trainer, learningRate: schedule.learningRate(atStep: step))
        }
        let early = losses.prefix(20).reduce(0, +) / 20, late = losses.suffix(20).reduce(0, +) / 20
        #expect(late < early * 0.6, "loss \(early) -> \(late)")
        let logits = try Session(model: trainer.exportModel()).run(test.images).floats
        let correct = (0..<test.count).filter { i in
            let row = logits[(i * 10)..<(i * 10 + 10)]
            return row.firstIndex(of: row.max()!)! - i * 10 == Int(test.labels[i])
        }.count
        #expect(correct > 700, "accuracy \(correct) / 1000")
    }

    /// flatten, fc `hidden`, BN, ReLU, dropout 0.1, fc 10, with Fashion-MNIST normalization.
    static func mlp(hidden: Int) -> Model {
        var rng = SeededGenerator(seed: 5)
        let nodes = [
            Node(name: "flatten", op: .flatten(axis: 1), inputs: ["input"], output: "f"),
            Node(name: "fc1", op: .linear, inputs: ["f", "fc1.weight", "fc1.bias"], output: "h"),
            Node(name: "bn", op: .batchNorm(epsilon: 1e-5), inputs: ["h", "bn.scale", "bn.bias", "bn.mean", "bn.var"], output: "n"),
            Node(name: "relu", op: .relu, inputs: ["n"], output: "r"),
            Node(name: "drop", op: .dropout(ratio: 0.1), inputs: ["r"], output: "d"),
            Node(name: "fc2", op: .linear, inputs: ["d", "fc2.weight", "fc2.bias"], output: "logits"),
        ]
        let initializers: [String: Tensor] = [
            "fc1.weight": rng.gaussianTensor([hidden, 784], std: (2.0 / 784).squareRoot()), "fc1.bias": .zeros([hidden]),
            "bn.scale": .filled([hidden], with: 1), "bn.bias": .zeros([hidden]), "bn.mean": .zeros([hidden]),
            "bn.var": .filled([hidden], with: 1),
            "fc2.weight": rng.gaussianTensor([10, hidden], std: (2.0 / Float(hidden)).squareRoot()), "fc2.bias": .zeros([10]),
        ]
        let graph = Graph(inputs: [GraphInput(name: "input", sampleShape: [1, 28, 28])], outputs: ["logits"], nodes: nodes,
                          initializers: initializers)
        let normalization = Normalization(mean: [Architecture.fashionMNISTMean], std: [Architecture.fashionMNISTStd])
        return Model(graph: graph, metadata: ModelMetadata(normalization: normalization))
    }
}
