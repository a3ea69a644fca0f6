import ArgumentParser
import Compress
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline file: passes, fine-tuning and evaluation in order, then the report.",
        discussion: """
        A pipeline file (YAML) names the input model, the data, the steps and the \
        output; see pipelines/ for examples. Every step is checked before the first \
        one runs: all problems are reported at once and nothing is run. Each step's \
        model is kept in OUTPUT-STEM.steps/ with a state.json, so after Ctrl-C or a \
        failure --resume continues from the last finished step (a fine-tune from its \
        last finished epoch). It first checks that nothing changed: the input model, \
        the data files' content, the seed, and every reused step's file against the \
        hash state.json recorded. It refuses, naming what changed, and reruns a step \
        only when asked: --rerun-from N, or a run without --resume to start over. \
        Paths in the file are relative to the file; paths on the command line are \
        relative to the working directory and override the file's.

        Smoke run of a long pipeline (every step, one epoch, 512 images a split):
          compressor run pipelines/deep-compression-lenet5.yaml --max-epochs 1 --limit 512 \\
              -o /tmp/smoke.bin
        """)

    @Argument(help: ArgumentHelp("Pipeline file (YAML).", valueName: "pipeline.yaml"))
    var pipeline: String

    @Option(name: .long, help: ArgumentHelp("Input model file, instead of the file's 'model:'.", valueName: "file"))
    var model: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Final model file, instead of the file's 'output:'.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: ArgumentHelp("Report directory, instead of the file's 'report.directory'.", valueName: "dir"))
    var report: String?

    @Flag(name: .long, help: "Skip the steps a previous, interrupted run of the same pipeline finished.")
    var resume = false

    @Option(name: .long, help: ArgumentHelp(
        "Like --resume, but rerun step N and every later step (steps 1 to N-1 are reused after checking their files).",
        valueName: "N"))
    var rerunFrom: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Cap every step's epochs (epochs, finetune-epochs, a finetune step's default) at N: a smoke run.",
        valueName: "N"))
    var maxEpochs: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Use only the first N images of the training, validation and test splits (with --max-epochs: a smoke run).",
        valueName: "N"))
    var limit: Int?

    @OptionGroup var kernelsOption: KernelsOption
    @OptionGroup var maxMemoryOption: MaxMemoryOption
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if let maxEpochs, maxEpochs < 1 { throw ValidationError("--max-epochs must be at least 1") }
        if let rerunFrom, rerunFrom < 1 { throw ValidationError("--rerun-from must be at least 1 (steps are numbered from 1)") }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2 (a training batch needs two images)") }
    }

    func run() throws {
        let plan = try makePlan()
        let runner = PipelineRunner(plan: plan)
        let json = outputOptions.json
        runner.progress = TerminalProgress()
        runner.log = { line in if !json { printLine("  " + line) } }
        runner.passLog = { line in if !json { printLine("  " + line) } }
        runner.onStep = { step in if !json { printLine(Self.describe(step, of: plan.steps.count)) } }
        runner.writeReport = pipelineReportWriter(plan)
        let interrupt = installInterruptHandler(runner.cancellation)
        defer { interrupt.cancel() }
        let summary: PipelineSummary
        do {
            summary = try runner.run(resume: resume, rerunFrom: rerunFrom)
        } catch is PassCancelled {
            throw CLIError("interrupted: finished steps are kept in \(runner.stepsDirectory); continue with --resume")
        }
        if json { try printJSON(summary) } else { print(Self.describe(summary)) }
    }

    /// The pipeline file with the command line's values applied, validated.
    private func makePlan() throws -> PipelinePlan {
        let cwd = FileManager.default.currentDirectoryPath
        let overrides = PipelineOverrides(model: model.map { resolvePath($0, against: cwd) },
                                          output: output.map { resolvePath($0, against: cwd) },
                                          reportDirectory: report.map { resolvePath($0, against: cwd) },
                                          maxEpochs: maxEpochs, imageLimit: limit)
        return try Pipeline.plan(file: pipeline, overrides: overrides, registry: Compressor.registry)
    }

    /// One line per step: what it did and what it measured.
    static func describe(_ step: PipelineStepResult, of total: Int) -> String {
        let head = "step \(step.number)/\(total) \(step.name):"
        if step.resumed { return "\(head) finished in an earlier run" + (step.file.map { " (\($0))" } ?? "") }
        if let a = step.accuracy {
            return head + String(format: " top-1 %.2f%%  top-5 %.2f%%  (%d test images, %.1f s)",
                                 a.top1 * 100, a.top5 * 100, a.images, step.seconds)
        }
        var measures: [String] = []
        if let before = step.metrics["params-before"], let after = step.metrics["params-after"] {
            measures.append("params \(ReportFormat.grouped(Int(before))) -> \(ReportFormat.grouped(Int(after)))")
        }
        for key in ["test-accuracy"] {
            if let v = step.metrics[key] { measures.append(String(format: "%@ %.2f%%", key, v * 100)) }
        }
        for key in step.metrics.keys.sorted() where !key.hasPrefix("params-") && !key.hasPrefix("macs-")
            && !key.hasSuffix("accuracy") && key != "best-epoch" {
            measures.append("\(key) \(formatMetric(step.metrics[key]!))")
        }
        measures.append(String(format: "%.1f s", step.seconds))
        return "\(head) \(step.changes.joined(separator: "; ")) (\(measures.joined(separator: ", ")))"
    }

    /// The closing lines: where the model went, its size and accuracy.
    static func describe(_ s: PipelineSummary) -> String {
        var line = "wrote \(s.output): \(ReportFormat.grouped(s.parameters)) parameters, \(ReportFormat.bytes(s.bytes))"
        if let a = s.finalAccuracy { line += String(format: ", test top-1 %.2f%%", a.top1 * 100) }
        line += "\nintermediate models and resume state in \(s.stepsDirectory)"
        if let r = s.reportDirectory { line += "\nreport in \(r)/report.html (.md, .json)" }
        return line
    }
}

/// The report writer `compressor run` hands its runner: measures the input and
/// every step's model with `ReportBuilder` (the code behind `compressor report`)
/// on the pipeline's test split (and, with `validation: true`, its validation
/// split) and writes report.json, .md and .html.
func pipelineReportWriter(_ plan: PipelinePlan) -> ((_ models: [(label: String, path: String)], _ directory: String) throws -> Void)? {
    let pipeline = plan.pipeline
    return { models, directory in
        var settings = ReportSettings()
        if let report = pipeline.report {
            settings.batches = report.batches
            settings.threads = [report.threads]
            settings.testLimit = report.limit
        }
        if let limit = pipeline.imageLimit { settings.testLimit = min(settings.testLimit ?? limit, limit) }
        let test = try DatasetLoader.load(directory: pipeline.data, validationCount: pipeline.validationCount,
                                          splits: [.test]).test
        let validation = pipeline.report?.validation == true
            ? try DatasetLoader.load(directory: pipeline.data, validationCount: pipeline.validationCount,
                                     splits: [.validation]).validation
            : nil
        let report = try ReportBuilder.build(models: models, test: test, validation: validation, settings: settings,
                                             progress: TerminalProgress())
        try ReportWriter.write(report, to: directory)
    }
}

/// Writes `line` to standard output at once (progress bars share the terminal).
private func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
