import ArgumentParser
import Compress

extension Architecture: ExpressibleByArgument {}

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an untrained model of a built-in architecture (seeded He initialization).",
        discussion: """
        Architectures: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")). \
        --width W multiplies every hidden layer's channels (and hidden fully connected \
        features) by W: rounded to a multiple of 8 where the original count is one, \
        else to the nearest integer, at least 1 (students for distillation: \
        docs/distillation.md). --width 1 is the architecture as published.
        """)

    @Option(name: .long, help: "Architecture to build.")
    var arch: Architecture

    @Option(name: .long, help: "Width multiplier of the hidden layers' channels.")
    var width: Double = 1

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @OptionGroup var seedOption: SeedOption

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard width > 0 && width.isFinite else { throw ValidationError("--width must be positive, got \(width)") }
    }

    func run() throws {
        let model = arch.build(seed: seedOption.seed, width: width)
        try saveModel(model, to: output)
        let summary = try ModelSummary(model)
        if outputOptions.json {
            try printJSON(InitReport(architecture: arch.rawValue, width: width, seed: seedOption.seed, output: output,
                                     parameters: summary.parameters, macs: summary.macs))
        } else {
            print("wrote \(output): \(arch.rawValue)\(width == 1 ? "" : " at width \(width)"), \(ReportFormat.grouped(summary.parameters)) parameters, \(ReportFormat.grouped(summary.macs)) MACs per image, seed \(seedOption.seed)")
        }
    }

    struct InitReport: Encodable {
        var architecture: String
        var width: Double
        var seed: UInt64
        var output: String
        var parameters: Int
        var macs: Int
    }
}
