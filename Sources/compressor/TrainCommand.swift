import ArgumentParser
import Compress

struct TrainCommand: GeneratedOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a built-in architecture from scratch.",
        usage: "compressor train --arch <arch> [--width W] -o <file> [<options>]",
        discussion: """
        Trains with softmax cross-entropy on the training split and writes the epoch \
        with the best validation accuracy. A checkpoint after every epoch (in \
        OUTPUT.ckpt) lets --resume continue an interrupted run; Ctrl-C stops after \
        the current batch and leaves the last finished epoch's files intact. \
        Defaults: 10 epochs, batch 64, SGD with Nesterov momentum 0.9, lr 0.01, \
        weight decay 5e-4, cosine schedule. --width W trains the architecture with \
        every hidden layer's channels times W, as `init --width` builds it.
        """)
    static var defaults: TrainingSettings { TrainingSettings() }
    static var generatedOptions: GeneratedOptions { .training(defaults: defaults) }

    @OptionGroup var architecture: ArchitectureOptions

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The training options listed below.", valueName: "options"))
    var arguments: [String] = []

    @OptionGroup var training: TrainingOptions
    @OptionGroup var transfer: TransferOptions

    func validate() throws {
        try noPositionals(try training.parameters(defaults: Self.defaults, arguments: arguments).positionals)
    }

    func run() throws {
        let (settings, _) = try training.settings(defaults: Self.defaults, arguments: arguments)
        let model = architecture.build(seed: settings.seed)
        var history = ["arch": architecture.arch.rawValue]
        if architecture.width != 1 { history["width"] = "\(architecture.width)" }
        try runTraining(model: model, passName: "train", settings: settings, options: training,
                        historyParameters: history, transfer: transfer)
    }
}
