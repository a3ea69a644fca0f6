import ArgumentParser
import Compress
import Distill

struct DistillCommand: GeneratedOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: DistillPass.name,
        abstract: DistillPass.summary,
        usage: "compressor distill --teacher <file> --student <file> -o <file> [<options>]",
        discussion: """
        Trains the student, starting from its weights (a fresh one from `compressor init \
        --arch NAME --width W`, or a pruned or factorized copy of the teacher), on \
        alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * \
        cross-entropy with the labels (Hinton et al. 2015). The teacher runs in the \
        inference runtime on the student's (augmented) batches. Teacher and student \
        must take the same input and have the same number of classes. Same loop as \
        train otherwise: the epoch with the best validation accuracy is written, \
        checkpoints in OUTPUT.ckpt, --resume. Defaults: train's (10 epochs, batch 64, \
        SGD with Nesterov momentum 0.9, lr 0.01, weight decay 5e-4, cosine \
        schedule), T 4, alpha 0.9. See docs/distillation.md.

        Example:
          compressor init --arch vgg-small --width 0.5 -o student.bin
          compressor distill --teacher models/vgg-small.bin --student student.bin \\
              -o distilled.bin --mode kd --epochs 10 --crop-padding 2
        """)
    static var generatedOptions: GeneratedOptions { .forPass(DistillPass.self) }

    @Option(name: .long, help: ArgumentHelp("The student model file (native or ONNX).", valueName: "file"))
    var student: String

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The options listed below.", valueName: "options"))
    var arguments: [String] = []

    @OptionGroup var training: TrainingOptions

    /// The pass the options describe; unknown or ill-typed options and stray arguments are usage errors.
    private func pass() throws -> DistillPass {
        let (parameters, positionals) = try training.parameters(Self.generatedOptions, arguments: arguments)
        try noPositionals(positionals, hint: " (the student is --student FILE)")
        return try DistillPass(parameters: parameters)
    }

    func validate() throws { _ = try pass() }

    func run() throws {
        let pass = try pass()
        var settings = pass.settings
        settings.seed = training.runtime.seed
        settings.threads = training.runtime.threads
        try runTraining(model: try loadModel(student), passName: DistillPass.name, settings: settings, options: training,
                        historyParameters: ["mode": pass.mode.rawValue])
    }
}
