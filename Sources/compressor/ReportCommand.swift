import ArgumentParser
import Compress
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare models in size, counts, latency and accuracy; write report.json, .md and .html.",
        discussion: """
        The first model is the baseline for compression ratios and accuracy changes. \
        Latency is measured for all models in this one process by the code `bench` uses; \
        accuracy by the code `eval` uses, on the test split, and with --validation also on the \
        validation split (the last --validation-count training images, as `train` and `finetune` \
        hold out). The HTML page is self-contained (inline CSS and SVG charts; accuracy per model \
        in the order given, so a sweep reads as a chart); docs/report-schema.md describes the JSON.
        """)

    @Argument(help: ArgumentHelp("Model files (native or ONNX); the first is the baseline.", valueName: "model"))
    var models: [String]

    @Option(name: .shortAndLong, help: ArgumentHelp("Directory to write the report into (created if missing).",
                                                    valueName: "dir"))
    var output: String

    @OptionGroup var dataOptions: DataOptions

    @Option(name: .long, help: "Evaluate only the first N test images.")
    var limit: Int?

    @Flag(name: .long, help: "Also measure accuracy on the validation split (all of it).")
    var validation = false

    @OptionGroup var measurement: MeasurementOptions

    @Option(name: .long, help: ArgumentHelp("A sensitivity.json from `compressor sensitivity` to include (table and chart).",
                                            valueName: "file"))
    var sensitivity: String?

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one model") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if validation, dataOptions.validationCount < 1 {
            throw ValidationError("--validation needs a validation split: --validation-count must be at least 1")
        }
    }

    func run() throws {
        let settings = ReportSettings(batches: try measurement.batches(), threads: try measurement.threadCounts(),
                                      testLimit: limit, latency: measurement.benchmark)
        for path in models where !FileManager.default.fileExists(atPath: path) {
            throw CLIError("\(path): no such file")
        }
        let data = try DatasetLoader.load(directory: dataOptions.data, validationCount: dataOptions.validationCount,
                                          splits: validation ? [.test, .validation] : [.test])
        let sensitivityReport = try sensitivity.map { path in
            do { return try SensitivityReport.read(path: path) } catch { throw CLIError(String(describing: error)) }
        }
        var report: ComparisonReport
        do {
            report = try ReportBuilder.build(models: Self.labeled(models), test: data.test,
                                             validation: validation ? data.validation : nil, settings: settings,
                                             progress: TerminalProgress())
        } catch let error as ReportError {
            throw CLIError(error.description)
        }
        report.sensitivity = sensitivityReport
        try ReportWriter.write(report, to: output)
        if outputOptions.json {
            print(try ReportWriter.json(report), terminator: "")
        } else {
            print(Self.summary(report, directory: output))
        }
    }

    /// Labels from file names without extension; with the extension where
    /// those repeat, and the path as given where file names repeat too.
    static func labeled(_ paths: [String]) -> [(label: String, path: String)] {
        let files = paths.map { ($0 as NSString).lastPathComponent }
        let stems = files.map { ($0 as NSString).deletingPathExtension }
        return paths.indices.map { i in
            let label = stems.filter { $0 == stems[i] }.count == 1 ? stems[i]
                : files.filter { $0 == files[i] }.count == 1 ? files[i] : paths[i]
            return (label: label, path: paths[i])
        }
    }

    /// The short table printed after writing.
    static func summary(_ report: ComparisonReport, directory: String) -> String {
        let s = report.settings
        let validated = s.validationImages != nil
        func percent(_ a: AccuracyReport?) -> String { a.map { String(format: "%.2f%%", $0.top1 * 100) } ?? "-" }
        let rows = report.models.map { m -> [String] in
            let l = m.latency(batch: s.chartBatch, threads: s.chartThreads)
            let sizes = [m.label, ReportFormat.bytes(m.fileBytes), String(format: "%.2fx", m.compressionRatio),
                         m.bitsPerWeight.map { String(format: "%.2f", $0) } ?? "-",
                         l.map { String(format: "%.3f", $0.medianMs) } ?? "-"]
            let change = m.accuracy?.top1Change.map { String(format: "%+.2f", $0 * 100) } ?? "-"
            return sizes + (validated ? [percent(m.validationAccuracy)] : []) + [percent(m.accuracy), change]
        }
        let header = ["model", "file", "ratio", "bits/weight", "ms (batch \(s.chartBatch), \(s.chartThreads)t)"]
            + (validated ? ["val top-1"] : []) + ["top-1", "change pp"]
        let files = [ReportWriter.jsonName, ReportWriter.markdownName, ReportWriter.htmlName]
            .map { (directory as NSString).appendingPathComponent($0) }
        return formatTable(header, rows) + "\n\nwrote " + files.joined(separator: ", ")
    }
}
