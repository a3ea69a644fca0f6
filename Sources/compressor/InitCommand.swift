import ArgumentParser
import Compress

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an untrained model of a built-in architecture (seeded He initialization).",
        discussion: """
        Architectures: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")). \
        resnet18 and mobilenetv2 take 3x224x224 images and have 1000 classes (ImageNet-shaped, \
        for benchmarks); the others take 1x28x28 images and have 10 classes. --width W \
        multiplies every hidden layer's channels (and hidden fully connected features) by W \
        (students for distillation: docs/distillation.md).
        """)

    @OptionGroup var architecture: ArchitectureOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file.", valueName: "file"))
    var output: String

    @OptionGroup var seedOption: SeedOption

    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let model = architecture.build(seed: seedOption.seed)
        try saveModel(model, to: output)
        let summary = try ModelSummary(model)
        if outputOptions.json {
            try printJSON(InitReport(architecture: architecture.arch.rawValue, width: architecture.width, seed: seedOption.seed, output: output,
                                     parameters: summary.parameters, macs: summary.macs))
        } else {
            print("wrote \(output): \(architecture.description), \(ReportFormat.grouped(summary.parameters)) parameters, \(ReportFormat.grouped(summary.macs)) MACs per image, seed \(seedOption.seed)")
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
