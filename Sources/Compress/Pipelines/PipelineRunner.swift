import Foundation

/// What a pipeline run did: every step's result and where the model went.
public struct PipelineSummary: Sendable, Codable {
    public var input: String
    public var output: String
    /// Where each step's model and the resume manifest are kept.
    public var stepsDirectory: String
    public var steps: [PipelineStepResult]
    /// The accuracy measured by the last eval step, if any.
    public var finalAccuracy: AccuracyResult?
    /// Parameters of the final model.
    public var parameters: Int
    /// Bytes of the final model file.
    public var bytes: Int
    /// The report directory, when a report was written.
    public var reportDirectory: String?
}

/// Runs a validated pipeline's steps in order.
///
/// Each step's model is written to `<output-stem>.steps/NN-name.bin` and the
/// step recorded in `state.json` there with the file's size and hash, so
/// `run(resume: true)` skips finished steps (after checking the pipeline, its
/// input model, the data's content and every reused step file are unchanged);
/// a `finetune` step checkpoints every epoch in `NN-finetune.ckpt`, so an
/// interrupted fine-tune resumes mid-step. Every step's seed derives from the
/// pipeline seed and the step number alone: the same pipeline on the same
/// inputs writes the same bytes, resumed or not.
public final class PipelineRunner {
    public let plan: PipelinePlan
    /// Progress of long work (a bar on a terminal).
    public var progress: any ProgressReporting = SilentProgress()
    /// Raised (by Ctrl-C) to stop after the current batch; finished steps are kept.
    public var cancellation = CancellationFlag()
    /// Free-form lines during a step (fine-tuning epochs).
    public var log: (String) -> Void = { _ in }
    /// Receives the lines passes log while they run (fine-tuning epochs); nothing by default.
    public var passLog: @Sendable (String) -> Void = { _ in }
    /// Called after every step, including those skipped by resume.
    public var onStep: (PipelineStepResult) -> Void = { _ in }
    /// Writes the comparison report of `models` (the input, then every step's
    /// model) into `reportDirectory`. Injected by the CLI; nil writes none.
    public var writeReport: ((_ models: [(label: String, path: String)], _ reportDirectory: String) throws -> Void)?

    private let data: DataProvider

    public init(plan: PipelinePlan) {
        self.plan = plan
        data = .directory(plan.pipeline.data, validationCount: plan.pipeline.validationCount,
                          imageLimit: plan.pipeline.imageLimit)
    }

    /// The directory holding each step's model and the manifest: the output
    /// path without its extension, plus `.steps`.
    public var stepsDirectory: String { Self.stepsDirectory(for: plan.output) }

    public static func stepsDirectory(for output: String) -> String {
        let url = URL(fileURLWithPath: output)
        return url.deletingPathExtension().path + ".steps"
    }

    /// Where the report goes when the pipeline names no directory: beside the
    /// output, its path without the extension plus `-report`.
    public static func defaultReportDirectory(for output: String) -> String {
        URL(fileURLWithPath: output).deletingPathExtension().path + "-report"
    }

    /// Runs every step not finished yet (all, unless `resume` finds a matching
    /// manifest), writes the final model atomically and, when asked, the report.
    ///
    /// - Parameters:
    ///   - resume: reuse the steps an earlier run of the same pipeline on the
    ///     same inputs finished. Throws `PipelineResumeError`, before running
    ///     anything, when the input model, the data's content, the seed,
    ///     threads or image limit changed, or a reused step's file changed.
    ///   - rerunFrom: resume, but rerun step N and every later step (reusing,
    ///     after the same checks, only steps 1 to N-1).
    public func run(resume: Bool, rerunFrom: Int? = nil) throws -> PipelineSummary {
        if let rerunFrom, rerunFrom < 1 || rerunFrom > plan.steps.count {
            throw PipelineResumeError("cannot rerun from step \(rerunFrom): the pipeline has steps 1 to \(plan.steps.count)")
        }
        let resume = resume || rerunFrom != nil
        var manifest = try prepareStepsDirectory(resume: resume, rerunFrom: rerunFrom, fresh: try manifestOfThisRun())
        let finished = manifest.steps
        manifest.steps = []
        var model = plan.model
        var results: [PipelineStepResult] = []
        for step in plan.steps {
            var result: PipelineStepResult
            var recorded: PipelineManifest.Step
            if step.number <= finished.count {
                recorded = finished[step.number - 1]
                result = recorded.result
                result.resumed = true
                if let file = result.file { model = try ModelFile.read(path: file) }
            } else {
                try checkCancellation()
                (model, recorded) = try runStep(step, on: model, resume: resume)
                result = recorded.result
            }
            manifest.steps.append(recorded)
            if !result.resumed { try manifest.save(to: stepsDirectory) }
            results.append(result)
            onStep(result)
        }
        try ModelWriter.write(model, to: plan.output, format: ModelFormat.forOutputPath(plan.output))
        let reportDirectory = try writeReportIfAsked(results)
        return try summary(results, model: model, reportDirectory: reportDirectory)
    }

    // MARK: Steps

    /// Runs `step` on `model`; the step's model file is written and its size
    /// and hash recorded when the step changes the model.
    private func runStep(_ step: PipelinePlanStep, on model: Model, resume: Bool) throws -> (Model, PipelineManifest.Step) {
        let started = Date()
        let seed = Self.seed(pipelineSeed: plan.pipeline.seed, step: step.number)
        var result = PipelineStepResult(number: step.number, name: step.name, parameters: step.parameters, seed: seed,
                                        file: nil, changes: [], metrics: [:], accuracy: nil, seconds: 0)
        var output = model
        switch step.action {
        case .pass(let pass, let parameters):
            let (m, record) = try pass.run(on: model, context: context(seed: seed), parameters: parameters)
            (output, result.changes, result.metrics) = (m, record.changes, record.metrics)
        case .finetune(let settings):
            output = try fineTune(model, settings: settings, step: step, seed: seed, resume: resume, into: &result)
        case .eval(let limit):
            let accuracy = try evaluate(model, limit: limit)
            result.accuracy = accuracy
            result.metrics = ["top1": accuracy.top1, "top5": accuracy.top5, "images": Double(accuracy.images)]
        }
        var written: FileFingerprint?
        if step.action.changesModel {
            let file = stepsDirectory + "/" + step.label + ".bin"
            let bytes = try ModelFile.encode(output)
            try writeFileAtomically(bytes, to: file)
            result.file = file
            written = FileFingerprint(of: bytes)
        }
        result.seconds = Date().timeIntervalSince(started)
        return (output, PipelineManifest.Step(result: result, file: written))
    }

    private func context(seed: UInt64) -> PassContext {
        .standard(seed: seed, data: data, threads: plan.pipeline.threads, progress: progress,
                  cancellation: cancellation, input: plan.model, log: passLog)
    }

    private func fineTune(_ model: Model, settings: TrainingSettings, step: PipelinePlanStep, seed: UInt64, resume: Bool,
                          into result: inout PipelineStepResult) throws -> Model {
        var s = settings
        s.seed = seed
        s.threads = plan.pipeline.threads
        let checkpoint = stepsDirectory + "/" + step.label + ".ckpt"
        // A standalone fine-tune step's teacher `input` is the pipeline's input model.
        let teacher = try s.teacher?.load(input: plan.model, pass: step.name)
        let run = try TrainingRun(model: model, data: try data.splits(), settings: s, passName: step.name,
                                  checkpointDirectory: checkpoint, teacher: teacher, progress: progress,
                                  cancellation: cancellation)
        run.log = log
        let outcome = try run.run(resume: resume)
        try? FileManager.default.removeItem(atPath: checkpoint)
        result.changes = [String(format: "fine-tuned %d epoch%@; best epoch %d (validation %.2f%%)", s.epochs,
                                 s.epochs == 1 ? "" : "s", outcome.bestEpoch, outcome.bestValidationAccuracy * 100)]
        if let after = outcome.resumedAfterEpoch { result.changes.append("resumed after epoch \(after)") }
        result.metrics = ["best-epoch": Double(outcome.bestEpoch), "validation-accuracy": outcome.bestValidationAccuracy]
        if let test = outcome.testAccuracy { result.metrics["test-accuracy"] = test }
        return outcome.model
    }

    private func evaluate(_ model: Model, limit: Int?) throws -> AccuracyResult {
        let test = try data.splits().test
        if let problem = DatasetSplits.inputShapeProblem(data: test.sampleShape, model: model.inputShape) {
            throw ParameterError(pass: PipelineStep.eval, problems: [problem])
        }
        return try Evaluation.accuracy(of: model, on: test, limit: limit, threads: plan.pipeline.threads,
                                       progress: progress, cancellation: cancellation)
    }

    /// The seed of step `step`: a SplitMix64-style mix of the pipeline seed
    /// and the step number, so inserting a step changes only later seeds'
    /// positions, never how a seed is derived.
    public static func seed(pipelineSeed: UInt64, step: Int) -> UInt64 {
        var z = pipelineSeed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private func checkCancellation() throws {
        if cancellation.isCancelled { throw PassCancelled() }
    }

    // MARK: Manifest, report, summary

    /// The manifest of this run before any step finished: its fingerprint
    /// and the size and hash of every data file.
    func manifestOfThisRun() throws -> PipelineManifest {
        var dataFiles: [String: FileFingerprint] = [:]
        for path in try DatasetLoader.files(directory: plan.pipeline.data) {
            dataFiles[(path as NSString).lastPathComponent] = FileFingerprint(of: try readFile(path))
        }
        return PipelineManifest(fingerprint: try fingerprint(), dataFiles: dataFiles)
    }

    /// Everything that determines the result but the data's content, one line each.
    func fingerprint() throws -> [String] {
        let p = plan.pipeline
        var lines = [
            "input \(String(fnv1a(try readFile(plan.modelPath)), radix: 16))",
            "data \(p.data ?? DatasetLoader.defaultDirectory) validation-count \(p.validationCount)",
            "seed \(p.seed) threads \(p.threads)",
        ]
        if let limit = p.imageLimit { lines.append("image-limit \(limit)") }
        lines += try plan.steps.map { step in
            let parameters = try step.parameters.keys.sorted().map { key in
                let value = step.parameters[key]!
                // A teacher file's content determines the step, as its name does.
                guard PipelineStep.pathParameters.contains(key), value != "input" else { return "\(key)=\(value)" }
                return "\(key)=\(value)@\(String(fnv1a(try readFile(value)), radix: 16))"
            }
            return (["step \(step.number) \(step.name)"] + parameters).joined(separator: " ")
        }
        return lines
    }

    /// The manifest this run continues: with `resume`, the saved one when
    /// the run and its inputs are unchanged, cut before the first changed
    /// step (or step `rerunFrom`) after checking the files of the steps it
    /// keeps; else `fresh`, in a new, empty steps directory.
    private func prepareStepsDirectory(resume: Bool, rerunFrom: Int?, fresh: PipelineManifest) throws -> PipelineManifest {
        let directory = stepsDirectory
        if resume, var saved = try PipelineManifest.load(from: directory) {
            let unchanged = try saved.unchangedSteps(for: fresh.fingerprint, dataFiles: fresh.dataFiles, directory: directory)
            let kept = min(unchanged, saved.steps.count, (rerunFrom ?? .max) - 1)
            try saved.checkStepFiles(upTo: kept, directory: directory)
            if let rerunFrom, kept == rerunFrom - 1 {
                log(kept == 0 ? "rerunning every step as asked (--rerun-from 1)"
                    : "rerunning from step \(rerunFrom) as asked; reusing steps 1-\(kept) after checking their files")
            } else if kept < saved.steps.count {
                log(kept == 0 ? "step 1 changed since that run; rerunning every step"
                    : "step \(kept + 1) changed since that run; reusing steps 1-\(kept), rerunning from step \(kept + 1)")
            }
            // A changed or rerun fine-tune step must not resume an old checkpoint.
            for step in plan.steps where step.number > min(unchanged, (rerunFrom ?? .max) - 1) {
                let checkpoint = directory + "/" + step.label + ".ckpt"
                guard FileManager.default.fileExists(atPath: checkpoint) else { continue }
                try FileManager.default.removeItem(atPath: checkpoint)
                log("step \(step.number) (\(step.name)) starts over, "
                    + (step.number > unchanged ? "changed since its checkpoint" : "as asked") + ": removed \(checkpoint)")
            }
            saved.steps = Array(saved.steps.prefix(kept))
            saved.fingerprint = fresh.fingerprint
            saved.hash = fresh.hash
            try saved.save(to: directory)
            return saved
        }
        if resume { log("nothing to resume in \(directory); starting from the first step") }
        let fm = FileManager.default
        if fm.fileExists(atPath: directory) {
            // Only ever delete a directory a pipeline run made.
            let contents = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
            guard contents.isEmpty || contents.contains(PipelineManifest.fileName) else {
                throw PipelineResumeError("\(directory) exists and is not a pipeline's steps directory; move it or choose another output")
            }
            try fm.removeItem(atPath: directory)
        }
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try fresh.save(to: directory)
        return fresh
    }

    /// Writes the comparison report of the input and every step's model (to the
    /// pipeline's report directory, else beside the output).
    private func writeReportIfAsked(_ steps: [PipelineStepResult]) throws -> String? {
        guard let writeReport else { return nil }
        let directory = plan.pipeline.report?.directory ?? Self.defaultReportDirectory(for: plan.output)
        let models = [(label: "input", path: plan.modelPath)]
            + steps.compactMap { step in step.file.map { (label: String(format: "%02d-%@", step.number, step.name), path: $0) } }
        try writeReport(models, directory)
        return directory
    }

    private func summary(_ steps: [PipelineStepResult], model: Model, reportDirectory: String?) throws -> PipelineSummary {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: plan.output)[.size] as? Int) ?? 0
        return PipelineSummary(input: plan.modelPath, output: plan.output, stepsDirectory: stepsDirectory, steps: steps,
                               finalAccuracy: steps.last { $0.accuracy != nil }?.accuracy,
                               parameters: model.graph.parameterCount, bytes: bytes, reportDirectory: reportDirectory)
    }
}
