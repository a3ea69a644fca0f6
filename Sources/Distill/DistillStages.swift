import Foundation
import Compress

/// What a distillation runs before its KD training, and beside it.
public struct DistillPreparation {
    /// The student after the hint stage or layerwise imitation (the given one in mode kd).
    public var student: Model
    /// The KD training's settings: its `epochs` are what the warm-up left.
    public var settings: TrainingSettings
    /// Sets up the KD run: the hint loss beside KD, when `hint-weight` > 0.
    public var configure: (TrainingRun) -> Void
    /// The mode's parameters for the history entry, `epochs` the total.
    public var historyParameters: [String: String]
    /// A line per stage or block of the warm-up.
    public var changes: [String]
    /// The imitation errors before and after the warm-up: the mean over the
    /// matches (`imitation-error-before`, `imitation-error-after`) and each
    /// match's, by its student value (`imitation-error-before:relu1`).
    public var metrics: [String: Double]
}

extension DistillPass {
    /// Validation images the imitation errors are measured on (the first ones).
    static let errorImages = 1000

    /// Checks that `teacher` can teach `student` in this mode, runs the
    /// warm-up (the hint stage, or layerwise imitation) and says how the KD
    /// training goes on: the student to train, its settings and set-up.
    ///
    /// - Hint stage (FitNets' first stage): for `hint-epochs`, the student's
    ///   parameters its hint layers depend on (those layers included) and the
    ///   adapters train on the hint loss alone; the rest of the student is frozen.
    /// - Layerwise imitation, `imitation` sequential: the `imitation-epochs`
    ///   are split evenly over the blocks in order; block `k` trains its own
    ///   parameters and adapter on its output's imitation loss while every
    ///   other block is frozen. The student's earlier blocks, already trained,
    ///   feed it (not the teacher's): each block learns from the inputs it
    ///   will see. `imitation` joint: for all the `imitation-epochs`, the mean
    ///   of every block's imitation loss trains the whole student and the
    ///   adapters.
    ///
    /// Each logs the imitation loss at the start and end of its steps, and the
    /// relative squared imitation error of every match before and after, on the
    /// first 1,000 validation images (eval mode).
    ///
    /// With `resumingAfterWarmUp` (a KD run resumed from its checkpoint, which
    /// holds the warm-up's result) the warm-up is not run again: the
    /// preparation is the given student, the KD settings and the set-up, whose
    /// hint adapters the checkpoint restores.
    ///
    /// - Throws: `ParameterError` when teacher and student take different
    ///   inputs or have other class counts, a hint layer does not exist,
    ///   values cannot be compared, or the models' block counts differ.
    public func prepare(student: Model, teacher: Model, data: DatasetSplits, settings: TrainingSettings,
                        log: @escaping (String) -> Void, progress: any Compress.ProgressReporting = SilentProgress(),
                        cancellation: CancellationFlag = CancellationFlag(),
                        resumingAfterWarmUp: Bool = false) throws -> DistillPreparation {
        var problems = student.distillationProblems(teacher: teacher)
        if data.train.count < settings.batchSize {
            problems.append("the training split has \(data.train.count) images, fewer than one batch of \(settings.batchSize)")
        }
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
        var preparation = DistillPreparation(student: student, settings: settings, configure: { _ in },
                                             historyParameters: ["mode": mode.rawValue], changes: [], metrics: [:])
        let warmUpEpochs: Int
        let matches: [FeatureMatch]
        var blocks: LayerwiseBlocks?
        switch mode {
        case .kd: return preparation
        case .hint:
            matches = try hints!.matches(student: student, teacher: teacher, pools: pools, pass: Self.name)
            warmUpEpochs = hintEpochs
            preparation.historyParameters.merge(["hint": hints!.description, "hint-epochs": String(hintEpochs),
                                                 "hint-weight": String(hintWeight), "hint-pool": String(pools)]) { $1 }
        case .layerwise:
            blocks = try LayerwiseBlocks(student: student, teacher: teacher, pools: pools, pass: Self.name)
            matches = blocks!.matches
            warmUpEpochs = imitationEpochs
            preparation.historyParameters.merge(["imitation-epochs": String(imitationEpochs), "imitation": imitationOrder.rawValue,
                                                 "hint-pool": String(pools)]) { $1 }
        }
        preparation.historyParameters["epochs"] = String(settings.epochs)
        preparation.settings.epochs = settings.epochs - warmUpEpochs
        let trainer = ImitationTrainer(data: data.train, settings: settings, progress: progress, cancellation: cancellation)
        let steps = warmUpEpochs * trainer.stepsPerEpoch
        if blocks != nil && imitationOrder == .sequential && matches.count > steps {
            throw ParameterError(pass: Self.name, problems: [
                "layerwise imitation has \(steps) steps (\(warmUpEpochs) epochs of \(trainer.stepsPerEpoch)) for \(matches.count) blocks: "
                    + "every block needs at least one; give more imitation-epochs or training images",
            ])
        }
        let joint = blocks != nil && imitationOrder == .joint
        let imitation = try FeatureImitation(matches: matches, teacher: teacher, weight: joint ? 1 / Float(matches.count) : 1,
                                             settings: settings)
        let probe = data.validation.batch(0..<min(Self.errorImages, data.validation.count))
        if steps > 0 && resumingAfterWarmUp {
            preparation.changes.append("resuming: the \(mode.rawValue) warm-up's result is in the checkpoint, not run again")
            log(preparation.changes.last!)
        } else if steps > 0 {
            let before = try imitation.errors(of: student, on: probe, threads: settings.threads)
            let graph = try trainer.graph(for: student, keeping: Set(matches.map(\.student)))
            if let blocks, !joint {
                for (k, match) in matches.enumerated() {
                    let range = blocks.steps(ofBlock: k, total: steps)
                    let label = "block \(k + 1)/\(matches.count) \(match.student) <- \(match.teacher)"
                    let loss = try trainer.train(graph, imitation: imitation, only: k, trainable: blocks.parameters[k],
                                                 steps: range, label: label)
                    preparation.changes.append(Self.describe(label, loss, steps: range.count))
                    log(preparation.changes.last!)
                }
            } else {
                let label = joint ? "joint imitation of \(matches.count) blocks" : "hint stage " + hints!.description
                let loss = try trainer.train(graph, imitation: imitation,
                                             trainable: student.graph.parametersUpstream(of: matches.map(\.student)),
                                             steps: 0..<steps, label: label)
                preparation.changes.append(Self.describe(label, loss, steps: steps))
                log(preparation.changes.last!)
            }
            preparation.student = graph.exportModel()
            let after = try imitation.errors(of: preparation.student, on: probe, threads: settings.threads)
            for (k, match) in matches.enumerated() {
                preparation.changes.append(String(format: "%@ <- %@: relative squared error on %d validation images %.4f -> %.4f",
                                                  match.student, match.teacher, probe.count, before[k], after[k]))
                log(preparation.changes.last!)
                preparation.metrics["imitation-error-before:" + match.student] = before[k]
                preparation.metrics["imitation-error-after:" + match.student] = after[k]
            }
            preparation.metrics["imitation-error-before"] = before.reduce(0, +) / Double(before.count)
            preparation.metrics["imitation-error-after"] = after.reduce(0, +) / Double(after.count)
        }
        if mode == .hint && hintWeight > 0 {
            imitation.weight = hintWeight
            let schedule = preparation.settings.makeSchedule(stepsPerEpoch: trainer.stepsPerEpoch)
            let hints = HintLoss(imitation: imitation, schedule: schedule)
            preparation.configure = { run in run.auxiliaryLoss = hints }
        }
        return preparation
    }

    private static func describe(_ label: String, _ loss: (first: Double, last: Double), steps: Int) -> String {
        String(format: "%@: %d steps, imitation loss %.5g -> %.5g (first and last tenth)", label, steps, loss.first, loss.last)
    }
}

/// FitNets' hint loss beside KD (mode hint with `hint-weight` > 0): the
/// imitation's loss on every KD step, its adapters trained on the KD run's
/// learning-rate schedule and checkpointed with the run.
final class HintLoss: AuxiliaryLoss {
    let imitation: FeatureImitation
    let schedule: LRSchedule

    init(imitation: FeatureImitation, schedule: LRSchedule) {
        self.imitation = imitation
        self.schedule = schedule
    }

    var valuesRead: Set<String> { Set(imitation.matches.map(\.student)) }

    func loss(graph: TrainingGraph, batch: LabeledImages, step: Int) throws -> (loss: Float, seeds: [String: Tensor]) {
        try imitation.step(student: graph, images: batch.images, learningRate: schedule.learningRate(atStep: step))
    }

    func stateTensors() -> [String: Tensor] { imitation.stateTensors() }

    func loadState(_ tensors: [String: Tensor]) throws { try imitation.loadState(tensors) }
}
