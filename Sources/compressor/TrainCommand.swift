import ArgumentParser
import Compress

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a built-in architecture from scratch.",
        discussion: """
        Trains with softmax cross-entropy on the training split and writes the epoch \
        with the best validation accuracy. A checkpoint after every epoch (in \
        OUTPUT.ckpt) lets --resume continue an interrupted run; Ctrl-C stops after \
        the current batch and leaves the last finished epoch's files intact. \
        Defaults: 10 epochs, batch 64, SGD with Nesterov momentum 0.9, lr 0.01, \
        weight decay 5e-4, cosine schedule.
        """)

    @Option(name: .long, help: "Architecture to build.")
    var arch: Architecture

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @OptionGroup var training: TrainingOptions
    @OptionGroup var data: DataOptions
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let settings = try training.settings(defaults: TrainingSettings())
        let model = arch.build(seed: settings.seed)
        try runTraining(model: model, passName: "train", settings: settings, options: training, data: data,
                        output: output, json: outputOptions.json, historyParameters: ["arch": arch.rawValue])
    }
}
