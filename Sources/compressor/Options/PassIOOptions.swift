import ArgumentParser

/// The options every pass subcommand shares: output path, runtime, data and
/// output format, and the tokens left for the pass's generated options
/// (`GeneratedOptions.forPass`), the input model among them.
struct PassIOOptions: ParsableArguments {
    @Argument(parsing: .allUnrecognized,
              help: ArgumentHelp("Input model file (native or ONNX), then the pass options listed below.",
                                 valueName: "model"))
    var arguments: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file (written atomically).", valueName: "file"))
    var output: String

    @OptionGroup var runtime: RuntimeOptions

    @OptionGroup var dataOptions: DataOptions

    @OptionGroup var outputOptions: OutputOptions
}
