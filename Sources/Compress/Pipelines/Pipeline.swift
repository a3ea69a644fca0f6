/// A compression recipe as written in a pipeline file: the input model, the
/// data, the steps to run in order, where the result goes and how to report it.
///
/// Values are kept as written (parameters as text); ``validate(registry:)``
/// checks them all and turns them into a ``PipelinePlan``. Paths are already
/// resolved against the pipeline file's directory.
public struct Pipeline: Sendable, Equatable {
    /// The input model file (native or ONNX). Required, from the file or `--model`.
    public var model: String?
    /// The dataset directory; nil means the default (Fashion-MNIST).
    public var data: String?
    /// The final model file. Required, from the file or `-o`.
    public var output: String?
    /// The seed every step's seed derives from.
    public var seed: UInt64 = 0
    /// Threads for the runtime, BLAS and training.
    public var threads = 1
    /// Training images held out as the validation split.
    public var validationCount = 5000
    /// Use only the first N images of every split (training, validation,
    /// test), for smoke runs; nil uses them all. Set from the command line.
    public var imageLimit: Int?
    /// The cap on every epoch count (``PipelineOverrides/maxEpochs``), kept
    /// so validation also caps the epochs a pass step leaves at its default.
    public var maxEpochs: Int?
    /// The steps, in the order they run.
    public var steps: [PipelineStep] = []
    /// Where and how the comparison report is written; nil uses the defaults (beside the output).
    public var report: PipelineReportSettings?

    public init() {}
}

/// One step of a pipeline: a registered pass, `finetune` or `eval`, with its
/// parameters as text.
public struct PipelineStep: Sendable, Equatable {
    /// The pass name, `finetune` or `eval`.
    public var name: String
    /// Parameter values as written, by kebab-case name.
    public var parameters: [String: String]
    /// Line of the step in the pipeline file, for messages.
    public var line: Int?

    public init(name: String, parameters: [String: String] = [:], line: Int? = nil) {
        self.name = name; self.parameters = parameters; self.line = line
    }

    /// The step name that fine-tunes the model.
    public static let finetune = "finetune"
    /// The step name that measures test accuracy.
    public static let eval = "eval"

    /// Step parameters holding a file path, resolved against the pipeline
    /// file's directory like the file's own paths: the teacher of
    /// distillation (`teacher: input` is not a path).
    public static let pathParameters: Set<String> = ["teacher", FineTuneParameters.prefix + "teacher"]
}

/// The `report:` section of a pipeline file.
public struct PipelineReportSettings: Sendable, Equatable {
    /// The directory the report is written to; nil means `<output without extension>-report`.
    public var directory: String?
    /// Batch sizes latency is measured at.
    public var batches: [Int] = [1, 64]
    /// Threads latency is measured with.
    public var threads = 1
    /// Evaluate only the first N test images; nil means all.
    public var limit: Int?
    /// Also measure accuracy on the validation split (the pipeline's `validation-count`).
    public var validation = false

    public init(directory: String? = nil) { self.directory = directory }
}

/// Values given on the command line, which take precedence over the file's.
/// Paths are used as given (relative to the working directory).
public struct PipelineOverrides: Sendable, Equatable {
    public var model: String?
    public var output: String?
    public var reportDirectory: String?
    /// Caps every epoch count (`epochs`, `finetune-epochs`) of every step, a
    /// `finetune` step's default included: a smoke run of a long pipeline.
    public var maxEpochs: Int?
    /// Uses only the first N images of every split (see ``Pipeline/imageLimit``).
    public var imageLimit: Int?

    public init(model: String? = nil, output: String? = nil, reportDirectory: String? = nil,
                maxEpochs: Int? = nil, imageLimit: Int? = nil) {
        self.model = model; self.output = output; self.reportDirectory = reportDirectory
        self.maxEpochs = maxEpochs; self.imageLimit = imageLimit
    }

    /// The step parameters that count epochs.
    public static let epochParameters = ["epochs", "finetune-epochs"]
}

extension Pipeline {
    /// This pipeline with the command line's values in place of the file's.
    public func applying(_ overrides: PipelineOverrides) -> Pipeline {
        var p = self
        if let m = overrides.model { p.model = m }
        if let o = overrides.output { p.output = o }
        if let r = overrides.reportDirectory {
            var report = p.report ?? PipelineReportSettings()
            report.directory = r
            p.report = report
        }
        if let cap = overrides.maxEpochs {
            p.steps = p.steps.map { $0.cappingEpochs(at: cap) }
            p.maxEpochs = cap
        }
        if let limit = overrides.imageLimit { p.imageLimit = limit }
        return p
    }
}

extension PipelineStep {
    /// This step with every epoch count above `cap` lowered to it; a
    /// `finetune` step that relies on its default epochs gets `cap` when the
    /// default is larger. Values that are not integers are left for
    /// validation to report.
    func cappingEpochs(at cap: Int) -> PipelineStep {
        var step = self
        for key in PipelineOverrides.epochParameters {
            if let text = parameters[key], let n = Int(text), n > cap { step.parameters[key] = String(cap) }
        }
        if name == Self.finetune, parameters["epochs"] == nil, TrainingSettings.fineTuneDefaults.epochs > cap {
            step.parameters["epochs"] = String(cap)
        }
        return step
    }

    /// This step with every epoch parameter among `specs` that it leaves at
    /// a default above `cap` set to `cap` (a `distill` step's `epochs`).
    func cappingDefaultEpochs(of specs: [ParameterSpec], at cap: Int) -> PipelineStep {
        var step = self
        for spec in specs where PipelineOverrides.epochParameters.contains(spec.name) && parameters[spec.name] == nil {
            if case .int(let epochs)? = spec.defaultValue, epochs > cap { step.parameters[spec.name] = String(cap) }
        }
        return step
    }
}

/// Every problem found in a pipeline, reported at once.
public struct PipelineError: Error, Equatable, CustomStringConvertible {
    /// The pipeline file, when known.
    public var file: String?
    /// One line per problem, each naming its place ("line 4", "step 2 (fold-bn)").
    public var problems: [String]

    public init(file: String? = nil, problems: [String]) { self.file = file; self.problems = problems }

    public var description: String {
        let subject = file ?? "pipeline"
        return problems.count == 1 ? "\(subject): \(problems[0])"
            : "\(subject): \(problems.count) problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
