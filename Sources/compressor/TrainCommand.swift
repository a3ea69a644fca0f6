import ArgumentParser
import Compress

struct TrainCommand: GeneratedOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a built-in architecture from scratch.",
        usage: "compressor train --arch <arch> -o <file> [<options>]",
        discussion: """
        Trains with softmax cross-entropy on the training split and writes the epoch \
        with the best validation accuracy. A checkpoint after every epoch (in \
        OUTPUT.ckpt) lets --resume continue an interrupted run; Ctrl-C stops after \
        the current batch and leaves the last finished epoch's files intact. \
        Defaults: 10 epochs, batch 64, SGD with Nesterov momentum 0.9, lr 0.01, \
        weight decay 5e-4, cosine schedule.
        """)
    static var defaults: TrainingSettings { TrainingSettings() }
    static var generatedOptions: GeneratedOptions { .training(defaults: defaults) }

    @Option(name: .long, help: "Architecture to build.")
    var arch: Architecture

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The training options listed below.", valueName: "options"))
    var arguments: [String] = []

    @OptionGroup var training: TrainingOptions
    @OptionGroup var data: DataOptions
    @OptionGroup var transfer: TransferOptions
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        let positionals = try training.parameters(defaults: Self.defaults, arguments: arguments).positionals
        guard positionals.isEmpty else {
            throw ValidationError("unexpected argument\(positionals.count == 1 ? "" : "s") \(positionals.map { "'\($0)'" }.joined(separator: ", "))")
        }
    }

    func run() throws {
        let (settings, _) = try training.settings(defaults: Self.defaults, arguments: arguments)
        let model = arch.build(seed: settings.seed)
        try runTraining(model: model, passName: "train", settings: settings, options: training, data: data,
                        output: output, json: outputOptions.json, historyParameters: ["arch": arch.rawValue], transfer: transfer)
    }
}
