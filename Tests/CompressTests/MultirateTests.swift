import Foundation
import Testing
@testable import Compress

/// Multirate training (slow layers every k steps, scoped backward on the
/// steps in between) and the transfer helpers (class subsets, a new head).
@Suite struct MultirateTests {
    /// LeNet-5 at 16x16 with 4 classes: conv1, pool1, conv2, pool2, flatten, fc1, relu, fc2.
    func lenet5() -> Model { Architecture.lenet5.build(seed: 5, inputShape: [1, 16, 16], classes: 4) }

    func batch(_ seed: UInt64, count: Int = 8) -> (Tensor, [Int32]) {
        var rng = SeededGenerator(seed: seed)
        return (rng.uniformTensor([count, 1, 16, 16], in: 0...1), (0..<count).map { Int32($0 % 4) })
    }

    /// Values of every parameter by name.
    func snapshot(_ graph: TrainingGraph) -> [String: [Float]] { graph.parameters.mapValues { Array($0.values) } }

    /// One training step through `trainer` on batch `step`, returning the loss gradient used.
    func step(_ graph: TrainingGraph, _ trainer: MultirateTrainer, _ optimizer: any Optimizer, step: Int, lr: Float) throws {
        let (images, labels) = batch(UInt64(step))
        graph.zeroGradients()
        let logits = try graph.forward(images, training: true)
        let gradient = Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient
        try trainer.backwardAndUpdate(graph, gradient: gradient, optimizer: optimizer, learningRate: lr, step: step)
    }

    @Test func slowParametersMoveExactlyEveryKStepsWithKTimesTheStep() throws {
        let graph = try TrainingGraph(model: lenet5(), seed: 1)
        let trainer = MultirateTrainer(period: 3, slowNodes: ["conv1", "conv2"])
        trainer.prepare(graph)
        let optimizer = SGD()
        let (slow, fast) = (["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"], ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        let lr: Float = 0.05
        for s in 0..<7 {
            let before = snapshot(graph)
            try step(graph, trainer, optimizer, step: s, lr: lr)
            let after = snapshot(graph)
            for name in fast { #expect(after[name] != before[name], "fast \(name) moves at step \(s)") }
            for name in slow {
                if s % 3 == 0 {
                    // Plain SGD: w - (3·lr)·g, bit for bit.
                    let g = Array(graph.parameters[name]!.gradient)
                    let expected = zip(before[name]!, g).map { w, g in w - (lr * 3) * (g + 0 * w) }
                    #expect(after[name] == expected, "slow \(name) takes the 3x step at step \(s)")
                } else {
                    #expect(after[name] == before[name], "slow \(name) holds at step \(s)")
                }
            }
        }
    }

    @Test func fastOnlyBackwardStopsAtTheLowestFastLayer() throws {
        let graph = try TrainingGraph(model: lenet5(), seed: 1)
        var calls: [(String, Bool)] = []
        graph.onBackwardStep = { calls.append(($0, $1)) }
        let (images, labels) = batch(9)

        // Full backward: every step, each with its parameter gradients.
        let logits = try graph.forward(images, training: true)
        let gradient = Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient
        try graph.backward(gradient)
        #expect(calls.map(\.0) == ["fc2", "relu1", "fc1", "pool2", "conv2", "pool1", "conv1"])
        #expect(calls.map(\.1) == Array(repeating: true, count: 7))
        let full = graph.gradients

        // Last layer fast: only fc2 runs, computing its weight gradient and no input gradient.
        calls = []
        graph.zeroGradients()
        _ = try graph.forward(images, training: true)
        try graph.backward(gradient, scope: graph.backwardScope(updating: ["fc2.weight", "fc2.bias"]))
        #expect(calls.map(\.0) == ["fc2"])
        #expect(calls.map(\.1) == [true])
        let scoped = graph.gradients
        #expect(scoped["fc2.weight"] == full["fc2.weight"] && scoped["fc2.bias"] == full["fc2.bias"])
        for name in ["conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias"] {
            #expect(scoped[name]!.floats.allSatisfy { $0 == 0 }, "no gradient for slow \(name)")
        }

        // A slow layer above a fast one passes the gradient on without its own weight gradient.
        calls = []
        graph.zeroGradients()
        _ = try graph.forward(images, training: true)
        let fast: Set<String> = ["conv2.weight", "conv2.bias", "fc2.weight", "fc2.bias"]
        try graph.backward(gradient, scope: graph.backwardScope(updating: fast))
        let byNode = Dictionary(calls.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        #expect(byNode["fc1"] == false && byNode["fc2"] == true && byNode["conv2"] == true)
        #expect(byNode["conv1"] == nil, "conv1 is below the lowest fast layer")
        let partial = graph.gradients
        for name in fast { #expect(partial[name] == full[name], "\(name) as in the full backward") }
        #expect(partial["fc1.weight"]!.floats.allSatisfy { $0 == 0 } && partial["conv1.weight"]!.floats.allSatisfy { $0 == 0 })
    }

    /// Only the first conv (and its BatchNorm) updated: every layer above it,
    /// depthwise, pointwise and BatchNorm included, passes the gradient down
    /// without its own, and the first conv's gradient is the full backward's, bit for bit.
    @Test func slowLayersAboveAFastOnePassTheGradientOnExactly() throws {
        for arch in [Architecture.mobilenetSmall, .lenet5] {
            let model = arch.build(seed: 3, inputShape: [1, 16, 16], classes: 4)
            let graph = try TrainingGraph(model: model, seed: 1)
            let (images, labels) = batch(4, count: 4)
            let gradient = Loss.softmaxCrossEntropy(logits: try graph.forward(images, training: true), labels: labels).gradient
            try graph.backward(gradient)
            let full = graph.gradients
            graph.zeroGradients()
            var parameterGradients: [String: Bool] = [:]
            graph.onBackwardStep = { parameterGradients[$0] = $1 }
            _ = try graph.forward(images, training: true)
            let fast = Set(graph.parameterNames.filter { $0.hasPrefix("conv1.") || $0.hasPrefix("bn1.") })
            try graph.backward(gradient, scope: graph.backwardScope(updating: fast))
            for name in graph.parameterNames {
                if fast.contains(name) {
                    #expect(graph.gradients[name] == full[name], "\(arch) \(name)")
                } else {
                    #expect(graph.gradients[name]!.floats.allSatisfy { $0 == 0 }, "\(arch) \(name) has no gradient")
                }
            }
            #expect(parameterGradients.filter(\.value).keys.sorted() == (arch == .lenet5 ? ["conv1"] : ["bn1", "conv1"]))
            #expect(parameterGradients.count > 5)
        }
    }

    @Test func periodOneIsPlainTrainingBitForBit() throws {
        let (plain, multirate) = (try TrainingGraph(model: lenet5(), seed: 1), try TrainingGraph(model: lenet5(), seed: 1))
        let trainer = MultirateTrainer(period: 1, slowNodes: ["conv1", "conv2"])
        trainer.prepare(multirate)
        let (a, b) = (SGD(momentum: 0.9, nesterov: true, weightDecay: 5e-4), SGD(momentum: 0.9, nesterov: true, weightDecay: 5e-4))
        for s in 0..<4 {
            let (images, labels) = batch(UInt64(s))
            plain.zeroGradients()
            let logits = try plain.forward(images, training: true)
            try plain.backward(Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient)
            a.step(plain, learningRate: 0.05)
            try step(multirate, trainer, b, step: s, lr: 0.05)
        }
        #expect(plain.exportModel() == multirate.exportModel())
    }

    func data() -> DatasetSplits {
        func split(_ n: Int, seed: UInt64) -> LabeledImages {
            let (images, labels) = batch(seed, count: n)
            return LabeledImages(images: images, labels: labels)
        }
        return DatasetSplits(train: split(64, seed: 1), validation: split(16, seed: 2), test: split(16, seed: 3),
                             classNames: ["a", "b", "c", "d"])
    }

    func settings(_ configure: (inout MultirateSettings) -> Void) -> TrainingSettings {
        var s = TrainingSettings.fineTuneDefaults
        s.epochs = 2
        s.batchSize = 8
        s.learningRate = 0.002
        configure(&s.multirate)
        return s
    }

    @Test func aRunReportsBothKindsOfStepAndRecordsTheSettings() throws {
        let s = settings { $0.period = 4; $0.fastLast = 1 }
        let outcome = try TrainingRun(model: lenet5(), data: data(), settings: s, passName: "finetune",
                                      checkpointDirectory: nil).run(resume: false)
        // 8 steps per epoch: steps 0, 4 (then 8, 12) are full.
        for e in outcome.epochs {
            let steps = try #require(e.steps)
            #expect(steps.fullSteps == 2 && steps.fastSteps == 6)
            #expect(steps.fullSeconds > 0 && steps.fastSeconds > 0)
        }
        let entry = try #require(outcome.model.metadata.history.last)
        #expect(entry.parameters["multirate"] == "4" && entry.parameters["fast-last"] == "1")
        // The slow conv layers moved only on the full steps; k = 1 trains as plain training does.
        let plain = try TrainingRun(model: lenet5(), data: data(), settings: settings { _ in }, passName: "finetune",
                                    checkpointDirectory: nil).run(resume: false)
        let one = try TrainingRun(model: lenet5(), data: data(), settings: settings { $0.period = 1; $0.fastLast = 1 },
                                  passName: "finetune", checkpointDirectory: nil).run(resume: false)
        #expect(one.model.graph == plain.model.graph)
        #expect(outcome.model.graph.initializers["conv1.weight"] != plain.model.graph.initializers["conv1.weight"])
    }

    @Test func badSlowSetsAreRefusedWithOneMessage() throws {
        func problems(_ configure: (inout MultirateSettings) -> Void) -> [String] {
            let s = settings(configure)
            do {
                _ = try TrainingRun(model: lenet5(), data: data(), settings: s, passName: "finetune",
                                    checkpointDirectory: nil).run(resume: false)
                return []
            } catch let error as ParameterError { return error.problems } catch { return ["\(error)"] }
        }
        #expect(problems { $0.period = 0 } == ["multirate must be at least 1 (1 is plain training), got 0"])
        #expect(problems { $0.period = 2 } == ["multirate 2 needs the slow layers: slow PATTERNS or fast-last N"])
        #expect(problems { $0.period = 2; $0.fastLast = 1; $0.slowLayers = "conv*" }
                == ["slow and fast-last both choose the slow layers: give one"])
        #expect(problems { $0.period = 2; $0.fastLast = 4 }
                == ["fast-last must be between 1 and 3: the model has 4 conv and linear layers (conv1, conv2, fc1, fc2)"])
        #expect(problems { $0.period = 2; $0.slowLayers = "conv*,bn*" }
                == ["slow pattern 'bn*' matches no layer (layers: conv1, conv2, fc1, fc2)"])
        #expect(problems { $0.period = 2; $0.slowLayers = "*" } == ["every layer is slow: nothing would train between the slow updates"])
        let request = FineTuneParameters.Request(epochs: nil, overrides: ["multirate": "3", "fast-last": "1"])
        #expect(FineTuneParameters.problems(request)
                == ["finetune-multirate, finetune-fast-last without fine-tuning: give finetune-epochs N > 0"])
        #expect(FineTuneParameters.problems(request, defaultEpochs: 1).isEmpty)
    }

    /// The same declaration serves pipelines: `multirate:` and `fast-last:` on a finetune step.
    @Test func aPipelineFinetuneStepTrainsMultirate() throws {
        let f = try PipelineFixture()
        let path = try f.write("""
            steps:
              - finetune:
                  epochs: 1
                  batch: 32
                  multirate: 2
                  fast-last: 1
            """)
        let summary = try PipelineRunner(plan: try f.plan(path)).run(resume: false)
        let entry = try #require(try ModelFile.read(path: summary.output).metadata.history.last)
        #expect(entry.pass == "finetune" && entry.parameters["multirate"] == "2" && entry.parameters["fast-last"] == "1")
        let bad = try f.write("""
            steps:
              - finetune:
                  multirate: 0
            """, name: "bad.yaml")
        #expect(throws: PipelineError.self) { try f.plan(bad) }
    }

    @Test func classSubsetsKeepAndRelabelInTheOrderGiven() throws {
        let subset = try ClassSubset(parsing: "3,0-1")
        #expect(subset.classes == [3, 0, 1])
        let images = LabeledImages(images: Tensor(shape: [5, 1, 1, 1], floats: [10, 11, 12, 13, 14]), labels: [0, 2, 3, 1, 3])
        let kept = subset.apply(to: images)
        #expect(kept.images.floats == [10, 12, 13, 14])
        #expect(kept.labels == [1, 0, 2, 0])
        let original = DatasetSplits(train: images, validation: images, test: images, classNames: ["a", "b", "c", "d"])
        let splits = try subset.apply(to: original)
        #expect(splits.classNames == ["d", "a", "b"] && splits.test.labels == [1, 0, 2, 0])
        #expect(throws: ClassSubsetError.self) { try ClassSubset(parsing: "4-2") }
        #expect(throws: ClassSubsetError(problems: ["classes names class 1 twice"])) { try ClassSubset(parsing: "0-2,1") }
        #expect(throws: ClassSubsetError(problems: ["class 7 not in the dataset, whose classes are 0-3"])) {
            try ClassSubset(parsing: "7").apply(to: original)
        }
    }

    @Test func aNewHeadHasTheNewClassCountAndIsSeeded() throws {
        let model = lenet5()
        let headed = try model.withNewHead(classes: 3, classNames: ["x", "y", "z"], seed: 7)
        #expect(headed.graph.initializers["fc2.weight"]!.shape == [3, 500])
        #expect(headed.graph.initializers["fc2.bias"]!.floats == [0, 0, 0])
        #expect(try headed.graph.inferShapes(batch: 2)["fc2"] == [2, 3])
        #expect(headed.graph.initializers["fc1.weight"] == model.graph.initializers["fc1.weight"])
        #expect(headed.metadata.classNames == ["x", "y", "z"])
        #expect(headed.metadata.history.last?.parameters == ["layer": "fc2", "classes": "3"])
        #expect(try model.withNewHead(classes: 3, seed: 7).graph == headed.graph)
        #expect(try model.withNewHead(classes: 3, seed: 8).graph != headed.graph)
        let outputs = try Session(model: headed).run(Tensor(shape: [1, 1, 16, 16], floats: .init(repeating: 0.5, count: 256)))
        #expect(outputs.shape == [1, 3])
    }
}
