import ArgumentParser
import Compress
import Foundation

extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}

/// Help for a training option from its one declaration
/// (`TrainingSettings.parameterSpecs`, shared with pipeline `finetune` steps),
/// with its default for `train` and, where that differs, for `finetune`.
func trainingOptionHelp(_ name: String) -> ArgumentHelp {
    func spec(_ defaults: TrainingSettings) -> ParameterSpec {
        guard let s = TrainingSettings.parameterSpecs(defaults: defaults).first(where: { $0.name == name }) else {
            preconditionFailure("no training parameter \(name)")
        }
        return s
    }
    let train = spec(TrainingSettings()), fineTune = spec(.fineTuneDefaults)
    let trainDefault = train.defaultValue.map(String.init(describing:)) ?? "none"
    let fineTuneDefault = fineTune.defaultValue.map(String.init(describing:)) ?? "none"
    let defaults = trainDefault == fineTuneDefault ? "(default: \(trainDefault))"
        : "(default: \(trainDefault) for train, \(fineTuneDefault) for finetune)"
    return ArgumentHelp("\(train.help) \(defaults)", valueName: train.type == .bool ? "true/false" : nil)
}

/// Training options shared by `train` and `finetune`. Options left out take
/// the command's defaults (a fresh model trains longer and faster than a fine-tune).
struct TrainingOptions: ParsableArguments {
    @Option(name: .long, help: trainingOptionHelp("epochs"))
    var epochs: Int?

    @Option(name: .long, help: trainingOptionHelp("batch"))
    var batch: Int?

    @Option(name: .long, help: trainingOptionHelp("lr"))
    var lr: Float?

    @Option(name: .long, help: trainingOptionHelp("optimizer"))
    var optimizer: OptimizerKind?

    @Option(name: .long, help: trainingOptionHelp("momentum"))
    var momentum: Float?

    @Option(name: .long, help: trainingOptionHelp("nesterov"))
    var nesterov: Bool?

    @Option(name: .long, help: trainingOptionHelp("weight-decay"))
    var weightDecay: Float?

    @Option(name: .long, help: trainingOptionHelp("schedule"))
    var schedule: ScheduleKind?

    @Option(name: .long, help: trainingOptionHelp("step-epochs"))
    var stepEpochs: Int?

    @Option(name: .long, help: trainingOptionHelp("gamma"))
    var gamma: Float?

    @Option(name: .long, help: trainingOptionHelp("label-smoothing"))
    var labelSmoothing: Float?

    @Option(name: .long, help: trainingOptionHelp("crop-padding"))
    var cropPadding: Int?

    @Flag(name: .long, help: trainingOptionHelp("flip"))
    var flip = false

    @Option(name: .long, help: trainingOptionHelp("keep-zeros"))
    var keepZeros: Bool?

    @Option(name: .long, help: "Seed for initialization, shuffling, augmentation and dropout.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Threads.")
    var threads = 1

    @Option(name: .long, help: ArgumentHelp("Checkpoint directory. (default: OUTPUT.ckpt)", valueName: "dir"))
    var checkpointDir: String?

    @Flag(name: .long, help: "Continue from the last finished epoch in the checkpoint directory.")
    var resume = false

    /// Settings from the given options over `defaults`.
    func settings(defaults: TrainingSettings) throws -> TrainingSettings {
        var s = defaults
        if let epochs { s.epochs = epochs }
        if let batch { s.batchSize = batch }
        if let lr { s.learningRate = lr }
        if let optimizer { s.optimizer = optimizer }
        if let momentum { s.momentum = momentum }
        if let nesterov { s.nesterov = nesterov }
        if let weightDecay { s.weightDecay = weightDecay }
        if let schedule { s.schedule = schedule }
        if let stepEpochs { s.stepEpochs = stepEpochs }
        if let gamma { s.gamma = gamma }
        if let labelSmoothing { s.labelSmoothing = labelSmoothing }
        if let cropPadding { s.augmentation.cropPadding = cropPadding }
        s.augmentation.horizontalFlip = flip
        if let keepZeros { s.keepsZeroWeights = keepZeros }
        s.seed = seed
        s.threads = threads
        if !s.problems.isEmpty { throw CLIError(s.problems.joined(separator: "; ")) }
        return s
    }
}

/// Trains `model` as the CLI does: progress on a terminal, a line per epoch,
/// Ctrl-C stops after the current batch, the best model written after every
/// epoch, the checkpoint removed once the run completes.
func runTraining(model: Model, passName: String, settings: TrainingSettings, options: TrainingOptions,
                 data: DataOptions, output: String, json: Bool, historyParameters: [String: String]) throws {
    let splits = try DatasetLoader.load(directory: data.data, validationCount: data.validationCount)
    let checkpointDirectory = options.checkpointDir ?? output + ".ckpt"
    let cancellation = CancellationFlag()
    let interrupt = installInterruptHandler(cancellation)
    defer { interrupt.cancel() }
    let run = try TrainingRun(model: model, data: splits, settings: settings, passName: passName,
                              checkpointDirectory: checkpointDirectory, progress: TerminalProgress(),
                              cancellation: cancellation)
    run.historyParameters = historyParameters
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

/// Makes Ctrl-C raise `flag` instead of killing the process (a second Ctrl-C still kills it).
func installInterruptHandler(_ flag: CancellationFlag) -> DispatchSourceSignal {
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler {
        if flag.isCancelled { exit(130) }
        flag.cancel()
        FileHandle.standardError.write(Data("\nstopping after this batch (Ctrl-C again to quit now)\n".utf8))
    }
    source.resume()
    return source
}
