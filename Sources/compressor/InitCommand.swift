import ArgumentParser
import Compress

extension Architecture: ExpressibleByArgument {}

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an untrained model of a built-in architecture (seeded He initialization).",
        discussion: "Architectures: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")).")

    @Option(name: .long, help: "Architecture to build.")
    var arch: Architecture

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @OptionGroup var seedOption: SeedOption

    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let model = arch.build(seed: seedOption.seed)
        try saveModel(model, to: output)
        let summary = try ModelSummary(model)
        if outputOptions.json {
            try printJSON(InitReport(architecture: arch.rawValue, seed: seedOption.seed, output: output,
                                     parameters: summary.parameters, macs: summary.macs))
        } else {
            print("wrote \(output): \(arch.rawValue), \(ReportFormat.grouped(summary.parameters)) parameters, \(ReportFormat.grouped(summary.macs)) MACs per image, seed \(seedOption.seed)")
        }
    }

    struct InitReport: Encodable {
        var architecture: String
        var seed: UInt64
        var output: String
        var parameters: Int
        var macs: Int
    }
}
