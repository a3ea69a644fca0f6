import Foundation

/// The result of a training run.
public struct TrainingOutcome: Sendable {
    /// The model of the epoch with the best validation accuracy, its history extended.
    public var model: Model
    public var bestEpoch: Int
    public var bestValidationAccuracy: Double
    /// Top-1 accuracy of `model` on the test split (reported, never used for choices).
    public var testAccuracy: Double?
    public var epochs: [EpochSummary]
    /// The epoch the run resumed after, when it resumed.
    public var resumedAfterEpoch: Int?
}

/// Trains a model with softmax cross-entropy on the training split (mixed
/// with the distillation loss of a teacher when the settings name one), picks
/// the epoch with the best validation accuracy, and checkpoints after every
/// epoch so an interrupted run resumes where it stopped.
///
/// Batches are shuffled from the settings' seed and the epoch number alone and
/// every epoch's dropout stream is seeded the same way, so a resumed run
/// writes the same bytes as one that was never interrupted.
public final class TrainingRun {
    public let settings: TrainingSettings
    /// Name recorded in the model history ("train", "finetune").
    public let passName: String
    /// Extra history parameters (e.g. the architecture).
    public var historyParameters: [String: String] = [:]
    /// Called with each epoch's fresh `TrainingGraph` before it trains (to set parameter policies).
    public var configure: ((TrainingGraph) throws -> Void)?
    /// Called after every epoch with the best model so far (to write it out).
    public var onBestModel: ((Model) throws -> Void)?
    /// Called with one line per finished epoch.
    public var log: (String) -> Void = { _ in }
    /// An extra loss term (distillation's hint layers), its state checkpointed with the run.
    public var auxiliaryLoss: (any AuxiliaryLoss)?

    private let initialModel: Model
    private let data: DatasetSplits
    private let checkpoint: TrainingCheckpoint?
    private let progress: any ProgressReporting
    private let cancellation: CancellationFlag
    private let teacher: DistillationTeacher?

    /// - Parameter teacher: the model `settings.teacher` names, loaded
    ///   (``TeacherSource/load(input:pass:)``); required with a teacher, refused without one.
    /// - Throws: `ParameterError` for unusable settings or data, or a teacher
    ///   that takes other inputs or has another class count than `model`.
    public init(model: Model, data: DatasetSplits, settings: TrainingSettings, passName: String,
                checkpointDirectory: String?, teacher: Model? = nil, progress: any ProgressReporting = SilentProgress(),
                cancellation: CancellationFlag = CancellationFlag()) throws {
        let problems = settings.problems
        guard problems.isEmpty else { throw ParameterError(pass: passName, problems: problems) }
        guard data.train.count >= settings.batchSize else {
            throw ParameterError(pass: passName, problems: ["the training split has \(data.train.count) images, fewer than one batch of \(settings.batchSize)"])
        }
        guard data.validation.count > 0 else {
            throw ParameterError(pass: passName, problems: ["the validation split is empty: the best epoch is chosen on validation data"])
        }
        if let problem = DatasetSplits.inputShapeProblem(data: data.sampleShape, model: model.inputShape) {
            throw ParameterError(pass: passName, problems: [problem])
        }
        switch (settings.teacher, teacher) {
        case (nil, nil): self.teacher = nil
        case (.some(let source), nil):
            throw ParameterError(pass: passName, problems: ["the teacher \(source) is not loaded"])
        case (nil, .some):
            throw ParameterError(pass: passName, problems: ["a teacher model is given but the settings name no teacher"])
        case (.some, .some(let teacher)):
            self.teacher = try DistillationTeacher(teacher: teacher, student: model, train: data.train,
                                                   caches: settings.cachesTeacherOutputs, threads: settings.threads,
                                                   pass: passName)
        }
        initialModel = model
        self.data = data
        self.settings = settings
        self.passName = passName
        checkpoint = checkpointDirectory.map(TrainingCheckpoint.init(directory:))
        self.progress = progress
        self.cancellation = cancellation
    }

    /// Whether `directory` holds a checkpoint a run can resume from (a finished epoch).
    public static func checkpointExists(in directory: String) -> Bool {
        TrainingCheckpoint(directory: directory).exists()
    }

    /// Runs the remaining epochs (all of them, unless `resume` finds a checkpoint).
    public func run(resume: Bool) throws -> TrainingOutcome {
        var progressState = try startingState(resume: resume)
        let optimizer = settings.makeOptimizer()
        if let file = progressState.optimizerFile, let checkpoint {
            try optimizer.loadState(try checkpoint.loadOptimizerState(file))
        }
        if progressState.resumedAfter != nil, let checkpoint {
            try resumeAuxiliaryLoss(file: progressState.auxiliaryFile, checkpoint: checkpoint)
        }
        let stepsPerEpoch = data.train.count / settings.batchSize
        let schedule = settings.makeSchedule(stepsPerEpoch: stepsPerEpoch)
        let multirate = try makeMultirateTrainer()
        for epoch in progressState.completedEpochs..<settings.epochs {
            let summary = try trainEpoch(epoch, state: &progressState, optimizer: optimizer, schedule: schedule,
                                         multirate: multirate)
            progressState.summaries.append(summary)
            log(Self.describe(summary, of: settings.epochs, best: summary.epoch == progressState.bestEpoch))
            try save(progressState, optimizer: optimizer)
            if let best = progressState.best { try onBestModel?(withHistory(best, state: progressState, testAccuracy: nil)) }
        }
        let best = progressState.best ?? progressState.current
        let test = data.test.count > 0
            ? try Evaluation.accuracy(of: best, on: data.test, threads: settings.threads).top1 : nil
        return TrainingOutcome(model: withHistory(best, state: progressState, testAccuracy: test),
                               bestEpoch: progressState.bestEpoch, bestValidationAccuracy: progressState.bestAccuracy,
                               testAccuracy: test, epochs: progressState.summaries,
                               resumedAfterEpoch: progressState.resumedAfter)
    }

    /// Where the run stands: the model to continue from, the best so far, finished epochs.
    struct RunState {
        var current: Model
        var best: Model?
        var bestEpoch = 0
        var bestAccuracy = -1.0
        var completedEpochs = 0
        var summaries: [EpochSummary] = []
        var optimizerFile: String?
        /// The auxiliary loss's state in the checkpoint resumed from, when it saved one.
        var auxiliaryFile: String?
        var resumedAfter: Int?
        /// The shadow weights of the tensors kept in their precisions
        /// (``ShadowWeights``), by name: what the next epoch trains on. Empty
        /// before the first epoch, whose shadow weights are the model's values.
        var shadows: [String: Tensor] = [:]
    }

    private func startingState(resume: Bool) throws -> RunState {
        guard resume, let checkpoint, checkpoint.exists() else { return RunState(current: initialModel) }
        let saved = try checkpoint.loadState()
        let differing = Set(saved.settings.keys).union(settings.descriptions.keys)
            .filter { saved.settings[$0] != settings.descriptions[$0] }.sorted()
        guard differing.isEmpty else {
            let detail = differing.map { "\($0): \(saved.settings[$0] ?? "unset") then, \(settings.descriptions[$0] ?? "unset") now" }
            throw CheckpointError("cannot resume from \(checkpoint.directory): the settings differ (\(detail.joined(separator: "; ")))")
        }
        return RunState(current: try checkpoint.loadModel(saved.currentFile), best: try checkpoint.loadModel(saved.bestFile),
                        bestEpoch: saved.bestEpoch, bestAccuracy: saved.bestValidationAccuracy,
                        completedEpochs: saved.completedEpochs, summaries: saved.epochs,
                        optimizerFile: saved.optimizerFile, auxiliaryFile: saved.auxiliaryFile,
                        resumedAfter: saved.completedEpochs,
                        shadows: try saved.shadowFile.map(checkpoint.loadTensors) ?? [:])
    }

    /// Restores the auxiliary loss's state from the checkpoint; a checkpoint
    /// written with an auxiliary state and resumed without one, or the other
    /// way round, is refused (its training would not be the one resumed).
    private func resumeAuxiliaryLoss(file: String?, checkpoint: TrainingCheckpoint) throws {
        let expects = !(auxiliaryLoss?.stateTensors().isEmpty ?? true)
        switch (file, expects) {
        case (nil, false): return
        case (.some(let file), true):
            do { try auxiliaryLoss!.loadState(try checkpoint.loadTensors(file)) } catch let error as CheckpointError {
                throw error
            } catch {
                throw CheckpointError("cannot resume from \(checkpoint.directory): its auxiliary loss state \(file) does not fit this run (\(error))")
            }
        case (nil, true):
            throw CheckpointError("cannot resume from \(checkpoint.directory): this run has an auxiliary loss with learned parameters (hint adapters) and the checkpoint has none")
        case (.some, false):
            throw CheckpointError("cannot resume from \(checkpoint.directory): its run had an auxiliary loss with learned parameters (hint adapters) and this one has none")
        }
    }

    /// The multirate trainer of these settings, nil for plain training (its slow layers checked against the model).
    private func makeMultirateTrainer() throws -> MultirateTrainer? {
        guard settings.multirate.isEnabled else { return nil }
        let graph = try initialModel.graph.topologicallySorted()
        return MultirateTrainer(period: settings.multirate.period,
                                slowNodes: try settings.multirate.slowNodes(in: graph, pass: passName))
    }

    private func trainEpoch(_ epoch: Int, state: inout RunState, optimizer: any StatefulOptimizer,
                            schedule: LRSchedule, multirate: MultirateTrainer?) throws -> EpochSummary {
        let started = Date()
        let graph = try TrainingGraph(model: state.current, seed: settings.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15,
                                      threads: settings.threads, keptValues: auxiliaryLoss?.valuesRead ?? [])
        // Shadow weights are loaded first, so the zero mask is taken from them
        // (weights that round to zero are not pruned), and hashed tensors are
        // tied before the mask, so a bucket at zero is not taken for pruned weights.
        if settings.keepsPrecisions { graph.loadShadowWeights(state.shadows) }
        if settings.keepsCodebooks { graph.tieHashedTensors(state.current.metadata.storage.hashedTensors) }
        if settings.keepsZeroWeights { graph.maskZeroWeights() }
        if settings.keepsCodebooks { graph.tieSharedTensors(state.current.metadata.storage.sharedTensors) }
        if settings.keepsPrecisions { graph.tieQuantizedTensors(state.current.metadata.storage.precisions) }
        try configure?(graph)
        multirate?.prepare(graph)
        let batches = MiniBatches(data.train, batchSize: settings.batchSize, seed: settings.seed, epoch: epoch,
                                  dropLast: true, augmentation: settings.augmentation)
        progress.begin("epoch \(epoch + 1)/\(settings.epochs)", total: batches.count)
        var (lossSum, correct, seen) = (0.0, 0, 0)
        var learningRate: Float = 0
        var timing = TrainingStepTimes()
        for i in 0..<batches.count {
            if cancellation.isCancelled { progress.end(); throw PassCancelled() }
            let batch = batches.batch(i)
            let stepStarted = DispatchTime.now().uptimeNanoseconds
            graph.zeroGradients()
            let logits = try graph.forward(batch.images, training: true)
            var (loss, gradient) = try self.loss(logits, batch: batch, indices: batches.indices(i))
            let auxiliary = try auxiliaryLoss?.loss(graph: graph, batch: batch, step: epoch * batches.count + i)
            loss += auxiliary?.loss ?? 0
            guard loss.isFinite else {
                progress.end()
                throw TrainingDiverged(epoch: epoch + 1, batch: i + 1, learningRate: learningRate)
            }
            let seeds = [graph.model.graph.outputs[0]: gradient].merging(auxiliary?.seeds ?? [:]) {
                Tensor(shape: $0.shape, floats: zip($0.floats, $1.floats).map(+))
            }
            let step = epoch * batches.count + i
            learningRate = schedule.learningRate(atStep: step)
            if let multirate {
                try multirate.backwardAndUpdate(graph, seeds: seeds, optimizer: optimizer,
                                                learningRate: learningRate, step: step)
            } else {
                try graph.backward(seeds: seeds)
                optimizer.step(graph, learningRate: learningRate)
            }
            timing.record(full: multirate?.isFullStep(step) ?? true,
                          seconds: Double(DispatchTime.now().uptimeNanoseconds - stepStarted) / 1e9)
            lossSum += Double(loss) * Double(batch.count)
            correct += Self.correctPredictions(logits, batch.labels)
            seen += batch.count
            let rate = Double(seen) / max(Date().timeIntervalSince(started), 1e-9)
            progress.update(completed: i + 1, detail: String(format: "loss %.4f acc %.2f%% %.0f img/s",
                                                              lossSum / Double(seen), 100 * Double(correct) / Double(seen), rate))
        }
        progress.end()
        let trainSeconds = Date().timeIntervalSince(started)
        state.current = graph.exportModel()
        if settings.keepsPrecisions {
            // The values are the shadow weights' rounding: on their grids, as stored.
            state.shadows = graph.shadowWeights
            state.current.roundStatistics(of: graph)
        } else {
            // Released: the trained values are float32.
            state.current.metadata.storage.precisions = state.current.metadata.storage.precisions.filter {
                graph.parameters[$0.key] == nil
            }
        }
        if !settings.keepsCodebooks {
            // Released: the trained values are no longer drawn from a codebook.
            state.current.metadata.storage.sharedTensors.removeAll { graph.parameters[$0] != nil }
            state.current.metadata.storage.hashedTensors = state.current.metadata.storage.hashedTensors
                .filter { graph.parameters[$0.key] == nil }
        }
        state.completedEpochs = epoch + 1
        let validation = try Evaluation.accuracy(of: state.current, on: data.validation, threads: settings.threads).top1
        if validation > state.bestAccuracy {
            (state.best, state.bestAccuracy, state.bestEpoch) = (state.current, validation, epoch + 1)
        }
        return EpochSummary(epoch: epoch + 1, trainLoss: lossSum / Double(max(seen, 1)),
                            trainAccuracy: Double(correct) / Double(max(seen, 1)), validationAccuracy: validation,
                            learningRate: Double(learningRate), seconds: Date().timeIntervalSince(started),
                            imagesPerSecond: Double(seen) / max(trainSeconds, 1e-9), steps: timing)
    }

    /// The batch's loss and its gradient: cross-entropy with the labels, or
    /// with a teacher, the knowledge-distillation mix with its logits on the same images.
    private func loss(_ logits: Tensor, batch: LabeledImages, indices: ArraySlice<Int>) throws -> (loss: Float, gradient: Tensor) {
        guard let teacher else {
            return Loss.softmaxCrossEntropy(logits: logits, labels: batch.labels, labelSmoothing: settings.labelSmoothing)
        }
        return Loss.knowledgeDistillation(student: logits, teacher: try teacher.logits(for: batch, indices: indices),
                                          labels: batch.labels, temperature: settings.temperature,
                                          alpha: settings.distillationWeight, labelSmoothing: settings.labelSmoothing)
    }

    private func save(_ state: RunState, optimizer: any StatefulOptimizer) throws {
        guard let checkpoint else { return }
        let e = state.completedEpochs
        let auxiliary = auxiliaryLoss?.stateTensors() ?? [:]
        let saved = TrainingCheckpoint.State(completedEpochs: e, bestEpoch: state.bestEpoch,
                                             bestValidationAccuracy: state.bestAccuracy, settings: settings.descriptions,
                                             epochs: state.summaries, currentFile: "epoch-\(e).bin",
                                             optimizerFile: "optimizer-\(e).bin", bestFile: "best.bin",
                                             shadowFile: state.shadows.isEmpty ? nil : "shadow-\(e).bin",
                                             auxiliaryFile: auxiliary.isEmpty ? nil : "auxiliary-\(e).bin")
        try checkpoint.save(state: saved, current: state.current, best: state.best, optimizer: optimizer.stateTensors(),
                            shadows: state.shadows, auxiliary: auxiliary)
    }

    /// `model` with this run's history entry appended (deterministic numbers only).
    private func withHistory(_ model: Model, state: RunState, testAccuracy: Double?) -> Model {
        var m = model
        var metrics: [String: Double] = [
            "epochs": Double(state.completedEpochs), "best-epoch": Double(state.bestEpoch),
            "validation-accuracy": state.bestAccuracy, "params": Double(model.graph.parameterCount),
        ]
        if let testAccuracy { metrics["test-accuracy"] = testAccuracy }
        // The kernel set of the validation and test evaluations goes with their accuracies.
        let parameters = settings.descriptions.merging(historyParameters) { $1 }
            .merging(["kernels": KernelSet.processDefault.rawValue]) { given, _ in given }
        m.metadata.history.append(HistoryEntry(pass: passName, parameters: parameters,
                                               seed: settings.seed, metrics: metrics))
        return m
    }

    static func correctPredictions(_ logits: Tensor, _ labels: [Int32]) -> Int {
        zip(Evaluation.topClasses(logits), labels).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
    }

    static func describe(_ s: EpochSummary, of total: Int, best: Bool) -> String {
        String(format: "epoch %d/%d  loss %.4f  train %.2f%%  validation %.2f%%%@  lr %.4g  %.0f img/s  %.0f s",
               s.epoch, total, s.trainLoss, s.trainAccuracy * 100, s.validationAccuracy * 100, best ? " (best)" : "",
               s.learningRate, s.imagesPerSecond, s.seconds)
            + (s.steps?.fastStepMilliseconds.map { String(format: "  step %.1f ms full, %.1f ms fast", s.steps!.fullStepMilliseconds ?? 0, $0) } ?? "")
    }
}

/// The loss stopped being a finite number.
public struct TrainingDiverged: Error, CustomStringConvertible {
    public var epoch: Int
    public var batch: Int
    public var learningRate: Float
    public var description: String {
        "training diverged (loss is not finite) in epoch \(epoch), batch \(batch); try a lower learning rate (last: \(learningRate))"
    }
}

/// Fine-tunes models for passes through `PassContext.trainer`; a teacher
/// `input` is the pass's input model (`PassContext.passInput`).
public struct FineTuner: Trainer {
    public var settings: TrainingSettings

    public init(settings: TrainingSettings) { self.settings = settings }

    public func fineTune(_ model: Model, data: DatasetSplits, epochs: Int, overrides: [String: String],
                         context: PassContext) throws -> Model {
        var s = try TrainingSettings(validating: overrides, defaults: settings)
        s.epochs = epochs
        s.keepsZeroWeights = true
        s.seed = context.seed
        s.threads = context.threads
        let teacher = try s.teacher?.load(input: context.passInput, pass: "finetune")
        let run = try TrainingRun(model: model, data: data, settings: s, passName: "finetune", checkpointDirectory: nil,
                                  teacher: teacher, progress: context.progress, cancellation: context.cancellation)
        run.log = { context.log("  fine-tune " + $0) }
        return try run.run(resume: false).model
    }
}
