import ArgumentParser
import Compress

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Continue training a model (after compression, for example).",
        discussion: """
        Same loop as train, starting from the given model. Defaults: 3 epochs, \
        batch 64, SGD with Nesterov momentum 0.9, lr 0.01, weight decay 5e-4, \
        cosine schedule.
        """)

    @Argument(help: ArgumentHelp("Model file (native or ONNX).", valueName: "model"))
    var model: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @OptionGroup var training: TrainingOptions
    @OptionGroup var data: DataOptions
    @OptionGroup var outputOptions: OutputOptions

    static var defaults: TrainingSettings { .fineTuneDefaults }

    func run() throws {
        let settings = try training.settings(defaults: Self.defaults)
        try runTraining(model: try loadModel(model), passName: "finetune", settings: settings, options: training,
                        data: data, output: output, json: outputOptions.json, historyParameters: [:])
    }
}
