import Compress
import Foundation

/// A stage before the training loop (`distill`'s hint stage and layerwise
/// imitation): given the model, the data, the teacher, the run's
/// cancellation and whether the loop resumes from a checkpoint (which holds
/// the stage's result), the model to train, the loop's settings, a set-up of
/// the run and extra history parameters.
typealias TrainingWarmUp = (Model, DatasetSplits, Model?, CancellationFlag, Bool) throws
    -> (model: Model, settings: TrainingSettings, configure: (TrainingRun) -> Void, history: [String: String])

/// Trains `model` as the CLI does: progress on a terminal, a line per epoch,
/// Ctrl-C stops after the current batch, the best model written after every
/// epoch, the checkpoint removed once the run completes. A teacher named by
/// the settings is loaded first (`input` is `teacherInput`, refused when nil);
/// `warmUp` runs before the loop (told on `--resume` that a checkpoint holds its result).
func runTraining(model: Model, passName: String, settings: TrainingSettings, options: TrainingOptions,
                 historyParameters: [String: String], teacherInput: Model? = nil, warmUp: TrainingWarmUp? = nil,
                 transfer: TransferOptions? = nil) throws {
    let (data, output, json) = (options.data, options.output, options.outputOptions.json)
    let teacher = try settings.teacher?.load(input: teacherInput, pass: passName)
    var (model, splits) = (model, try DatasetLoader.load(directory: data.data, validationCount: data.validationCount))
    if let transfer { (model, splits) = try transfer.apply(model: model, splits: splits, seed: settings.seed) }
    let checkpointDirectory = options.checkpointDir ?? output + ".ckpt"
    let cancellation = CancellationFlag()
    let interrupt = installInterruptHandler(cancellation)
    defer { interrupt.cancel() }
    var (settings, historyParameters) = (settings, historyParameters)
    var configure: (TrainingRun) -> Void = { _ in }
    if let warmUp {
        do {
            let resuming = options.resume && TrainingRun.checkpointExists(in: checkpointDirectory)
            let w = try warmUp(model, splits, teacher, cancellation, resuming)
            (model, settings, configure) = (w.model, w.settings, w.configure)
            historyParameters.merge(w.history) { $1 }
        } catch is PassCancelled {
            throw CLIError("interrupted before training: nothing written")
        }
    }
    let run = try TrainingRun(model: model, data: splits, settings: settings, passName: passName,
                              checkpointDirectory: checkpointDirectory, teacher: teacher, progress: TerminalProgress(),
                              cancellation: cancellation)
    configure(run)
    run.historyParameters = historyParameters.merging(transfer?.historyParameters ?? [:]) { $1 }
    run.log = { line in if !json { FileHandle.standardOutput.write(Data((line + "\n").utf8)) } }
    run.onBestModel = { try saveModel($0, to: output) }
    let outcome: TrainingOutcome
    do {
        outcome = try run.run(resume: options.resume)
    } catch is PassCancelled {
        throw CLIError("interrupted: \(output) holds the best model of the finished epochs; continue with --resume")
    }
    try saveModel(outcome.model, to: output)
    try? FileManager.default.removeItem(atPath: checkpointDirectory)
    if json {
        try printJSON(TrainingReport(output: output, bestEpoch: outcome.bestEpoch,
                                     validationAccuracy: outcome.bestValidationAccuracy,
                                     testAccuracy: outcome.testAccuracy, epochs: outcome.epochs))
    } else {
        print(String(format: "wrote %@: best epoch %d, validation %.2f%%, test %.2f%%", output, outcome.bestEpoch,
                     outcome.bestValidationAccuracy * 100, (outcome.testAccuracy ?? 0) * 100))
    }
}

struct TrainingReport: Encodable {
    var output: String
    var bestEpoch: Int
    var validationAccuracy: Double
    var testAccuracy: Double?
    var epochs: [EpochSummary]
}
