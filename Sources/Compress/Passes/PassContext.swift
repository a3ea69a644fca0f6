/// Everything a pass may need besides the model and its parameters, plumbed
/// once here so pass families do not each re-plumb it.
public final class PassContext: Sendable {
    /// The seed every random choice of this run derives from.
    public let seed: UInt64
    /// Loads the data splits on first use (passes that need no data never load it).
    public let data: DataProvider
    /// Reports progress of long work (a bar on a terminal, nothing otherwise).
    public let progress: any ProgressReporting
    /// Set from a signal handler or another thread; long passes poll it.
    public let cancellation: CancellationFlag
    /// Training hook for passes that fine-tune (wired in by the training engine).
    public let trainer: (any Trainer)?
    /// Threads for the runtime and BLAS.
    public let threads: Int
    /// How latency is measured, the same way `bench` and reports measure it.
    public let latency: any LatencyMeasuring
    /// Receives one line per finished unit of long work (e.g. a fine-tuning epoch).
    public let log: @Sendable (String) -> Void
    /// The model the whole run started from (a pipeline's or a command's
    /// input): what `teacher: input` names for a `distill` step.
    public let runInput: Model?
    /// The model the running pass started from (set by `Pass.run`): what
    /// `teacher: input` names for the pass's own fine-tuning.
    public let passInput: Model?

    public init(seed: UInt64 = 0, data: DataProvider = DataProvider { nil },
                progress: any ProgressReporting = SilentProgress(), cancellation: CancellationFlag = CancellationFlag(),
                trainer: (any Trainer)? = nil, threads: Int = 1,
                latency: any LatencyMeasuring = LatencyBenchmark(), log: @escaping @Sendable (String) -> Void = { _ in },
                runInput: Model? = nil, passInput: Model? = nil) {
        self.seed = seed; self.data = data; self.progress = progress
        self.cancellation = cancellation; self.trainer = trainer; self.threads = threads
        self.latency = latency
        self.log = log
        self.runInput = runInput; self.passInput = passInput
    }

    /// This context for a pass that starts from `input`.
    public func forPass(input: Model) -> PassContext {
        PassContext(seed: seed, data: data, progress: progress, cancellation: cancellation, trainer: trainer,
                    threads: threads, latency: latency, log: log, runInput: runInput, passInput: input)
    }

    /// The context commands and pipeline steps run passes in: `data` loaded on
    /// first use, fine-tuning with `TrainingSettings.fineTuneDefaults` on
    /// `threads` threads, latency measured by `LatencyBenchmark()`; `input`
    /// is the run's input model (``runInput``).
    public static func standard(seed: UInt64, data: DataProvider, threads: Int, progress: any ProgressReporting,
                                cancellation: CancellationFlag, input: Model? = nil,
                                log: @escaping @Sendable (String) -> Void) -> PassContext {
        var fineTune = TrainingSettings.fineTuneDefaults
        fineTune.threads = threads
        return PassContext(seed: seed, data: data, progress: progress, cancellation: cancellation,
                           trainer: FineTuner(settings: fineTune), threads: threads, log: log, runInput: input)
    }

    /// A fresh generator for a named purpose: the same seed and purpose always
    /// give the same stream, independent of what other code drew before.
    public func generator(for purpose: String) -> SeededGenerator {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in purpose.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return SeededGenerator(seed: seed ^ h)
    }

    /// Fine-tunes `model` for `epochs` with the fine-tune option group's
    /// `overrides`, for the pass named `pass`: the one path every pass that
    /// fine-tunes takes. Throws when this context has no trainer.
    public func fineTune(_ model: Model, epochs: Int, overrides: [String: String], pass: String) throws -> Model {
        guard let trainer else {
            throw ParameterError(pass: pass, problems: ["fine-tuning needs a trainer, which this run does not provide"])
        }
        return try trainer.fineTune(model, data: try data.splits(), epochs: epochs, overrides: overrides, context: self)
    }

    /// Throws ``PassCancelled`` when the user asked to stop.
    public func checkCancellation() throws(PassCancelled) {
        if cancellation.isCancelled { throw PassCancelled() }
    }
}

/// Trains or fine-tunes a model; the training engine provides the implementation.
public protocol Trainer: Sendable {
    /// Fine-tunes `model` on `data`, returning the model with the best
    /// validation accuracy (its history records that accuracy). Conv and
    /// linear weights that are exactly zero stay zero, so pruned models keep
    /// their sparsity. `overrides` replace the trainer's own settings, by
    /// training parameter name (`lr`, `crop-padding`, ...: `TrainingSettings.parameterSpecs`);
    /// a `teacher` of `input` is the pass's input model (`context.passInput`).
    func fineTune(_ model: Model, data: DatasetSplits, epochs: Int, overrides: [String: String],
                  context: PassContext) throws -> Model
}

extension Trainer {
    /// Fine-tunes with the trainer's own settings.
    public func fineTune(_ model: Model, data: DatasetSplits, epochs: Int, context: PassContext) throws -> Model {
        try fineTune(model, data: data, epochs: epochs, overrides: [:], context: context)
    }
}
