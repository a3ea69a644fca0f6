import ArgumentParser
import Compress
import Foundation

/// What `train`, `finetune` and `distill` share besides the training options
/// themselves (those are generated from `TrainingSettings.parameterSpecs`, see
/// `GeneratedOptions.training`): the output, runtime, data, checkpointing and
/// resuming, `--json`.
struct TrainingOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @OptionGroup var runtime: RuntimeOptions

    @Option(name: .long, help: ArgumentHelp("Checkpoint directory. (default: OUTPUT.ckpt)", valueName: "dir"))
    var checkpointDir: String?

    @Flag(name: .long, help: "Continue from the last finished epoch in the checkpoint directory.")
    var resume = false

    @OptionGroup var data: DataOptions
    @OptionGroup var outputOptions: OutputOptions

    /// The generated training options in `arguments`, typed against the
    /// declarations, and the positional arguments; anything unknown or
    /// ill-typed is a usage error (call from the command's `validate()`).
    func parameters(defaults: TrainingSettings, arguments: [String]) throws -> (PassParameters, positionals: [String]) {
        try parameters(.training(defaults: defaults), arguments: arguments)
    }

    /// ``parameters(defaults:arguments:)`` for a command whose generated
    /// options are `options` (the training options and its own).
    func parameters(_ options: GeneratedOptions, arguments: [String]) throws -> (PassParameters, positionals: [String]) {
        let given = try options.parse(arguments)
        do {
            return (try PassParameters(validating: given.values, against: options.specs, pass: "training"),
                    given.positionals)
        } catch {
            throw ValidationError(error.problems.map { $0.replacingOccurrences(of: "parameter '", with: "option '--") }
                                  .joined(separator: "; "))
        }
    }

    /// Settings from the generated training options in `arguments` over
    /// `defaults`, with this command's seed and threads, and the positional
    /// arguments left over.
    func settings(defaults: TrainingSettings, arguments: [String]) throws -> (TrainingSettings, positionals: [String]) {
        let (parameters, positionals) = try self.parameters(defaults: defaults, arguments: arguments)
        var s = TrainingSettings(parameters: parameters, defaults: defaults)
        s.seed = runtime.seed
        s.threads = runtime.threads
        if !s.problems.isEmpty { throw CLIError(s.problems.joined(separator: "; ")) }
        return (s, positionals)
    }
}
