import ArgumentParser
import Compress
import Foundation
import Prune

struct SensitivityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "Per-layer pruning sensitivity: validation top-1 with one layer pruned at a time.",
        discussion: """
        Each selected conv/linear layer is pruned by weight magnitude to each sparsity with \
        every other layer untouched, and top-1 is measured on the validation split (held out \
        from the training data: the curves drive choices, so the test split stays unseen). \
        Writes sensitivity.json, sensitivity.md and sensitivity.html (SVG chart) into the \
        output directory. `compressor prune --sensitivity DIR/sensitivity.json \
        --max-accuracy-drop 0.5` derives per-layer sparsities from it, and \
        `compressor report --sensitivity` adds it to a report.
        """)

    @Argument(help: ArgumentHelp("Model file (native or ONNX).", valueName: "model"))
    var model: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Directory to write into (created if missing).", valueName: "dir"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("Sparsities to try, comma-separated fractions.", valueName: "list"))
    var sparsities = SensitivityAnalysis.defaultSparsities.map { String($0) }.joined(separator: ",")

    @Option(name: .long, help: ArgumentHelp("Node-name patterns of the layers to analyse (default: all conv/linear).",
                                            valueName: "patterns"))
    var layers = ""

    @Option(name: .long, help: ArgumentHelp("Node-name patterns of layers to skip.", valueName: "patterns"))
    var exclude = ""

    @Option(name: .long, help: "Use only the first N validation images.")
    var limit: Int?

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var kernelsOption: KernelsOption
    @OptionGroup var maxMemoryOption: MaxMemoryOption

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let values = try parseSparsities()
        let m = try loadRunnableModel(model)
        let chosen = try LayerSelection(include: layers, exclude: exclude).layers(in: m.graph, pass: "sensitivity")
        let splits = try DatasetLoader.load(directory: dataOptions.data, validationCount: dataOptions.validationCount,
                                            splits: [.validation])
        var images = splits.validation
        guard images.count > 0 else { throw CLIError("the validation split is empty (--validation-count)") }
        if let problem = DatasetSplits.inputShapeProblem(data: images.sampleShape, model: m.inputShape) {
            throw CLIError(problem)
        }
        if let limit, limit < images.count { images = images.batch(0..<limit) }
        let cancellation = CancellationFlag()
        let interrupt = installInterruptHandler(cancellation)
        defer { interrupt.cancel() }
        let report: SensitivityReport
        do {
            report = try SensitivityAnalysis.run(model: m, modelName: (model as NSString).lastPathComponent, layers: chosen,
                                                 sparsities: values, images: images,
                                                 description: "validation split (\(images.count) images)",
                                                 threads: threadsOption.threads, progress: TerminalProgress(), cancellation: cancellation)
        } catch is PassCancelled {
            throw CLIError("interrupted: nothing was written")
        }
        try write(report)
        if outputOptions.json {
            print(try report.json(), terminator: "")
        } else {
            print(report.markdown(level: 2))
            print("\nwrote " + ["sensitivity.json", "sensitivity.md", "sensitivity.html"]
                .map { (output as NSString).appendingPathComponent($0) }.joined(separator: ", "))
        }
    }

    func parseSparsities() throws -> [Double] {
        let parts = sparsities.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap(Double.init)
        guard !values.isEmpty, values.count == parts.count, values.allSatisfy({ (0..<1).contains($0) }) else {
            throw ValidationError("--sparsities must be comma-separated fractions in [0, 1), got '\(sparsities)'")
        }
        return Array(Set(values)).sorted()
    }

    func write(_ report: SensitivityReport) throws {
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw CLIError("\(output): cannot create directory (\(error.localizedDescription))")
        }
        for (name, text) in [("sensitivity.json", try report.json()), ("sensitivity.md", report.markdown(level: 1) + "\n"),
                             ("sensitivity.html", report.html())] {
            try writeFileAtomically(Array(text.utf8), to: (output as NSString).appendingPathComponent(name))
        }
    }
}
