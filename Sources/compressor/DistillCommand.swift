import Foundation
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
        schedule), T 4, alpha 0.9.

        --mode hint first trains the student up to its --hint layers to regress \
        the teacher's (FitNets, Romero et al. 2015) for --hint-epochs, and/or adds \
        the hint loss to KD with --hint-weight; --mode layerwise first trains the \
        student block by block to reproduce the teacher's block outputs (Zhou et \
        al. 2020) for --imitation-epochs. Both count in --epochs; KD trains the \
        rest. See docs/distillation.md.

        Example:
          compressor init --arch vgg-small --width 0.5 -o student.bin
          compressor distill --teacher models/vgg-small.bin --student student.bin \\
              -o distilled.bin --mode kd --epochs 10 --crop-padding 2
          compressor init --arch lenet5 --width 0.5 -o thin.bin
          compressor distill --teacher models/lenet5.bin --student thin.bin \\
              -o hinted.bin --mode hint --hint pool2=pool2 --hint-epochs 2
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
        let json = training.outputOptions.json
        // Unbuffered, as the training loop's lines, so the two keep their order in a file.
        let log = { (line: String) in if !json { FileHandle.standardOutput.write(Data((line + "\n").utf8)) } }
        try runTraining(model: try loadRunnableModel(student), passName: DistillPass.name, settings: settings, options: training,
                        historyParameters: ["mode": pass.mode.rawValue]) { student, data, teacher, cancellation, resuming in
            let p = try pass.prepare(student: student, teacher: teacher!, data: data, settings: settings, log: log,
                                     progress: TerminalProgress(), cancellation: cancellation,
                                     resumingAfterWarmUp: resuming)
            return (p.student, p.settings, p.configure, p.historyParameters)
        }
    }
}
