import Foundation
import Testing
@testable import Compress

@Suite struct TrainingRunTests {
    /// Images whose class is which quadrant of a 1x8x8 image is bright: learnable in a few epochs.
    func quadrants(_ n: Int, seed: UInt64) -> LabeledImages {
        var rng = SeededGenerator(seed: seed)
        var pixels = [Float](repeating: 0, count: n * 64)
        var labels: [Int32] = []
        for i in 0..<n {
            let q = Int(rng.next() % 4)
            labels.append(Int32(q))
            for y in 0..<8 {
                for x in 0..<8 {
                    let inside = (y / 4) * 2 + (x / 4) == q
                    pixels[i * 64 + y * 8 + x] = (inside ? 0.7 : 0.1) + 0.2 * rng.nextUniform()
                }
            }
        }
        return LabeledImages(images: Tensor(shape: [n, 1, 8, 8], floats: pixels), labels: labels)
    }

    func data() -> DatasetSplits {
        DatasetSplits(train: quadrants(256, seed: 1), validation: quadrants(64, seed: 2), test: quadrants(64, seed: 3),
                      classNames: ["0", "1", "2", "3"])
    }

    func settings(epochs: Int = 3) -> TrainingSettings {
        var s = TrainingSettings()
        s.epochs = epochs
        s.batchSize = 32
        s.learningRate = 0.05
        s.seed = 4
        return s
    }

    func model() -> Model { Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4) }

    func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("train-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func learnsAndRecordsHistory() throws {
        let outcome = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                      checkpointDirectory: nil).run(resume: false)
        #expect(outcome.epochs.count == 3)
        #expect(outcome.epochs.last!.trainLoss < outcome.epochs.first!.trainLoss)
        #expect(outcome.bestValidationAccuracy > 0.9)
        #expect(outcome.bestValidationAccuracy == outcome.epochs.map(\.validationAccuracy).max())
        #expect(outcome.epochs[outcome.bestEpoch - 1].validationAccuracy == outcome.bestValidationAccuracy)
        let entry = try #require(outcome.model.metadata.history.last)
        #expect(entry.pass == "train")
        #expect(entry.metrics["test-accuracy"] == outcome.testAccuracy)
        #expect(entry.parameters["lr"] == "0.05")
        // The written model is the best epoch's, and its test accuracy is what eval measures.
        let measured = try Evaluation.accuracy(of: outcome.model, on: data().test).top1
        #expect(measured == outcome.testAccuracy)
    }

    @Test func resumedRunWritesTheSameModel() throws {
        let straight = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                       checkpointDirectory: nil).run(resume: false).model
        let dir = try tempDir()
        // Stop after the first epoch by cancelling from the epoch callback.
        let flag = CancellationFlag()
        let first = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                    checkpointDirectory: dir, cancellation: flag)
        first.onBestModel = { _ in flag.cancel() }
        #expect(throws: PassCancelled.self) { try first.run(resume: false) }
        let state = try TrainingCheckpoint(directory: dir).loadState()
        #expect(state.completedEpochs == 1)
        let resumed = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                      checkpointDirectory: dir).run(resume: true)
        #expect(resumed.resumedAfterEpoch == 1)
        #expect(try ModelFile.encode(resumed.model) == ModelFile.encode(straight))
    }

    @Test func resumeRefusesOtherSettings() throws {
        let dir = try tempDir()
        _ = try TrainingRun(model: model(), data: data(), settings: settings(epochs: 1), passName: "train",
                            checkpointDirectory: dir).run(resume: false)
        var other = settings(epochs: 1)
        other.learningRate = 0.1
        #expect(throws: CheckpointError.self) {
            try TrainingRun(model: model(), data: data(), settings: other, passName: "train", checkpointDirectory: dir).run(resume: true)
        }
    }

    /// An auxiliary loss that pushes `relu1` by `scale` times itself and
    /// learns one number of its own (the sum of the losses it gave), so its
    /// state is something a checkpoint must carry.
    final class PushLoss: AuxiliaryLoss {
        let scale: Float
        var steps: [Int] = []
        var learned: Float = 0
        init(scale: Float) { self.scale = scale }

        var valuesRead: Set<String> { ["relu1"] }
        func loss(graph: TrainingGraph, batch: LabeledImages, step: Int) throws -> (loss: Float, seeds: [String: Tensor]) {
            steps.append(step)
            let value = try #require(graph.value(named: "relu1"))
            #expect(value.shape[0] == batch.count)
            learned += scale
            return (scale, ["relu1": Tensor(shape: value.shape, floats: value.floats.map { $0 * scale * (1 + learned / 100) })])
        }
        func stateTensors() -> [String: Tensor] { scale == 0 ? [:] : ["learned": Tensor(shape: [1], floats: [learned])] }
        func loadState(_ tensors: [String: Tensor]) throws {
            guard let saved = tensors["learned"] else { throw CheckpointError("no learned value") }
            learned = saved.floats[0]
        }
    }

    /// `auxiliaryLoss` adds its gradients on graph values to the batch's: a
    /// zero one trains the same bytes as none, a non-zero one on a hidden
    /// value changes the layers before it and is counted in the loss.
    @Test func auxiliaryLossIsBackpropagatedWithTheBatchLoss() throws {
        let plain = try TrainingRun(model: model(), data: data(), settings: settings(epochs: 1), passName: "train",
                                    checkpointDirectory: nil).run(resume: false)
        func run(scale: Float) throws -> TrainingOutcome {
            let run = try TrainingRun(model: model(), data: data(), settings: settings(epochs: 1), passName: "train",
                                      checkpointDirectory: nil)
            let loss = PushLoss(scale: scale)
            run.auxiliaryLoss = loss
            let outcome = try run.run(resume: false)
            #expect(loss.steps == Array(0..<loss.steps.count) && !loss.steps.isEmpty)
            return outcome
        }
        let zero = try run(scale: 0)
        #expect(zero.model == plain.model)
        let pushed = try run(scale: 0.5)
        #expect(pushed.model.graph.initializers["fc1.weight"] != plain.model.graph.initializers["fc1.weight"])
        #expect(pushed.model.graph.initializers["fc3.weight"] != plain.model.graph.initializers["fc3.weight"])
        #expect(pushed.epochs[0].trainLoss > plain.epochs[0].trainLoss + 0.4)
    }

    /// The auxiliary loss's state is checkpointed after every epoch and
    /// restored on resume: the resumed run writes the same bytes as the
    /// straight one. A checkpoint and a run that disagree on having such a
    /// state are refused.
    @Test func auxiliaryLossStateIsCheckpointed() throws {
        let straightRun = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                          checkpointDirectory: nil)
        straightRun.auxiliaryLoss = PushLoss(scale: 0.2)
        let straight = try straightRun.run(resume: false).model
        let dir = try tempDir()
        let flag = CancellationFlag()
        let first = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                    checkpointDirectory: dir, cancellation: flag)
        first.auxiliaryLoss = PushLoss(scale: 0.2)
        first.onBestModel = { _ in flag.cancel() }
        #expect(throws: PassCancelled.self) { try first.run(resume: false) }
        #expect(try TrainingCheckpoint(directory: dir).loadState().auxiliaryFile == "auxiliary-1.bin")
        // Without the auxiliary loss, or with one that learns nothing: refused.
        for other in [nil, PushLoss(scale: 0)] {
            let run = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train", checkpointDirectory: dir)
            run.auxiliaryLoss = other
            #expect(throws: CheckpointError.self) { try run.run(resume: true) }
        }
        let resumedRun = try TrainingRun(model: model(), data: data(), settings: settings(), passName: "train",
                                         checkpointDirectory: dir)
        let resumedLoss = PushLoss(scale: 0.2)
        resumedRun.auxiliaryLoss = resumedLoss
        let resumed = try resumedRun.run(resume: true)
        #expect(resumed.resumedAfterEpoch == 1 && resumedLoss.steps.first == 8)
        #expect(try ModelFile.encode(resumed.model) == ModelFile.encode(straight))
    }

    @Test func divergenceIsReported() throws {
        var s = settings(epochs: 1)
        s.learningRate = 1e6
        #expect(throws: TrainingDiverged.self) {
            try TrainingRun(model: model(), data: data(), settings: s, passName: "train", checkpointDirectory: nil).run(resume: false)
        }
    }

    @Test func badSettingsListEveryProblem() {
        var s = settings()
        s.epochs = 0
        s.batchSize = 1
        s.momentum = 2
        do {
            _ = try TrainingRun(model: model(), data: data(), settings: s, passName: "train", checkpointDirectory: nil)
            Issue.record("expected an error")
        } catch let error as ParameterError {
            #expect(error.problems.count == 3)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func optimizerStateRoundTrips() throws {
        let p = ParameterBuffer(name: "w", role: .weight, tensor: Tensor(shape: [3], floats: [1, 2, 3]))
        _ = p.gradient.update(fromContentsOf: [0.5, -1, 2] as [Float])
        let a = SGD(momentum: 0.9), b = SGD(momentum: 0.9)
        a.step([p], learningRate: 0.1)
        try b.loadState(a.stateTensors())
        let q = ParameterBuffer(name: "w", role: .weight, tensor: Tensor(shape: [3], floats: Array(p.values)))
        _ = q.gradient.update(fromContentsOf: [0.5, -1, 2] as [Float])
        a.step([p], learningRate: 0.1)
        b.step([q], learningRate: 0.1)
        #expect(Array(p.values) == Array(q.values))
        let adam = Adam(), adam2 = Adam()
        adam.step([p], learningRate: 0.01)
        try adam2.loadState(adam.stateTensors())
        #expect(adam2.stateTensors() == adam.stateTensors())
    }
}

@Suite struct KeepZeroWeightsTests {
    /// fc1 of `model` with every third weight zeroed.
    func prunedModel() -> Model {
        var m = TrainingRunTests().model()
        let w = m.graph.initializers["fc1.weight"]!
        m.graph.initializers["fc1.weight"] = Tensor(shape: w.shape, floats: w.floats.enumerated().map { $0.offset % 3 == 0 ? 0 : $0.element })
        return m
    }

    func trained(keepZeros: Bool) throws -> [Float] {
        var s = TrainingRunTests().settings(epochs: 2)
        s.keepsZeroWeights = keepZeros
        let outcome = try TrainingRun(model: prunedModel(), data: TrainingRunTests().data(), settings: s,
                                      passName: "finetune", checkpointDirectory: nil).run(resume: false)
        #expect(outcome.model.metadata.history.last?.parameters["keep-zeros"] == (keepZeros ? "true" : nil))
        return outcome.model.graph.initializers["fc1.weight"]!.floats
    }

    @Test func zeroWeightsStayZeroOnlyWhenAsked() throws {
        let kept = try trained(keepZeros: true)
        let zeroed = kept.indices.filter { $0 % 3 == 0 }
        #expect(zeroed.allSatisfy { kept[$0] == 0 })
        #expect(kept.indices.filter { $0 % 3 != 0 }.contains { kept[$0] != 0 })
        let free = try trained(keepZeros: false)
        #expect(zeroed.filter { free[$0] != 0 }.count > zeroed.count / 2)
    }

    @Test func fineTuneDefaultsKeepZeros() {
        #expect(TrainingSettings.fineTuneDefaults.keepsZeroWeights)
        #expect(!TrainingSettings().keepsZeroWeights)
    }
}
