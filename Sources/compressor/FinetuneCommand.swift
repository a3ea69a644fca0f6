import ArgumentParser
import Compress

struct FinetuneCommand: GeneratedOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Continue training a model (after compression, for example).",
        usage: "compressor finetune <model> -o <file> [<options>]",
        discussion: """
        Same loop as train, starting from the given model. Defaults: 3 epochs, \
        batch 64, SGD with Nesterov momentum 0.9, lr 0.01, weight decay 5e-4, \
        cosine schedule; conv and linear weights that are exactly zero stay zero. \
        --teacher FILE distills from a teacher as well (docs/distillation.md); \
        --teacher input is the input model itself.
        """)
    static var defaults: TrainingSettings { .fineTuneDefaults }
    static var generatedOptions: GeneratedOptions { .training(defaults: defaults) }

    @Argument(parsing: .allUnrecognized,
              help: ArgumentHelp("Model file (native or ONNX), then the training options listed below.", valueName: "model"))
    var arguments: [String] = []

    @OptionGroup var training: TrainingOptions
    @OptionGroup var transfer: TransferOptions

    func validate() throws {
        _ = try singleInput(try training.parameters(defaults: Self.defaults, arguments: arguments).positionals)
    }

    func run() throws {
        let (settings, positionals) = try training.settings(defaults: Self.defaults, arguments: arguments)
        let path = try singleInput(positionals)
        let model = try loadRunnableModel(path)
        try namingModel(path) {
            try runTraining(model: model, passName: "finetune", settings: settings, options: training,
                            historyParameters: [:], teacherInput: model, transfer: transfer)
        }
    }
}
