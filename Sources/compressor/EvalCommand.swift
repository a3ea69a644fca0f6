import ArgumentParser
import Compress
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Top-1 and top-5 accuracy on the test split.",
        discussion: "The default data is Fashion-MNIST from Debian's dataset-fashion-mnist package.")

    @Argument(help: ArgumentHelp("Model file.", valueName: "model"))
    var model: String

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var classes: ClassesOption

    @Option(name: .long, help: "Evaluate only the first N test images.")
    var limit: Int?

    @Option(name: .long, help: "Images per batch.")
    var batch = 256

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var kernelsOption: KernelsOption
    @OptionGroup var maxMemoryOption: MaxMemoryOption

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        let m = try loadRunnableModel(model)
        let splits = try DatasetLoader.load(directory: dataOptions.data, validationCount: dataOptions.validationCount, splits: [.test])
        let test = try classes.apply(to: splits, model: m).test
        if let problem = DatasetSplits.inputShapeProblem(data: test.sampleShape, model: m.inputShape) {
            throw CLIError(problem)
        }
        let start = Date()
        let result = try namingModel(model) {
            try Evaluation.accuracy(of: m, on: test, limit: limit, batch: batch, threads: threadsOption.threads,
                                    progress: TerminalProgress())
        }
        let seconds = Date().timeIntervalSince(start)
        if outputOptions.json {
            try printJSON(EvalReport(model: model, images: result.images, top1: result.top1, top5: result.top5,
                                     seconds: seconds))
        } else {
            print(String(format: "%@: top-1 %.2f%%  top-5 %.2f%%  (%d test images, %.1f s)",
                         model, result.top1 * 100, result.top5 * 100, result.images, seconds))
        }
    }

    struct EvalReport: Encodable {
        var model: String
        var images: Int
        var top1: Double
        var top5: Double
        var seconds: Double
    }
}
