import ArgumentParser
import Compress
import Foundation

/// Help text for a pass option, taken from the pass's own parameter declaration
/// so the CLI and pipelines describe a parameter the same way.
func passOptionHelp<P: Pass>(_ pass: P.Type, _ name: String) -> ArgumentHelp {
    guard let spec = P.parameters.first(where: { $0.name == name }) else {
        preconditionFailure("\(P.name) declares no parameter \(name)")
    }
    let defaultText = spec.defaultValue.map { " (default: \($0))" } ?? ""
    return ArgumentHelp(spec.help + defaultText, valueName: spec.type.description)
}

/// The options every pass subcommand shares: input model, output path, seed, threads.
struct PassIOOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Input model file.", valueName: "model"))
    var input: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output model file (written atomically).", valueName: "file"))
    var output: String

    @Option(name: .long, help: "Seed for every random choice the pass makes.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Threads for the runtime and BLAS.")
    var threads = 1

    @OptionGroup var dataOptions: DataOptions

    @OptionGroup var outputOptions: OutputOptions
}

/// Runs pass `P` with textual parameter values (only those the user gave;
/// the declaration supplies defaults), writes the result and prints the record.
func runPass<P: Pass>(_ pass: P.Type, options io: PassIOOptions, given: [String: String?]) throws {
    let raw = given.compactMapValues { $0 }
    let parameters = try PassParameters(validating: raw, against: P.parameters, pass: P.name)
    let instance = try P(parameters: parameters)
    let model = try loadModel(io.input)
    let cancellation = CancellationFlag()
    let interrupt = installInterruptHandler(cancellation)
    defer { interrupt.cancel() }
    let context = PassContext.standard(
        seed: io.seed, data: .directory(io.dataOptions.data, validationCount: io.dataOptions.validationCount),
        threads: io.threads, progress: TerminalProgress(), cancellation: cancellation,
        log: { line in FileHandle.standardError.write(Data((line + "\n").utf8)) })
    let (result, record): (Model, PassRecord)
    do {
        (result, record) = try instance.run(on: model, context: context, parameters: parameters)
    } catch is PassCancelled {
        throw CLIError("interrupted: nothing was written")
    }
    try saveModel(result, to: io.output)
    if io.outputOptions.json {
        try printJSON(PassReport(pass: record.pass, input: io.input, output: io.output, parameters: record.parameters,
                                 seed: io.seed, changes: record.changes, metrics: record.metrics))
    } else {
        for c in record.changes { print(c) }
        let metrics = record.metrics.keys.sorted().map { "\($0)=\(formatMetric(record.metrics[$0]!))" }
        print("wrote \(io.output) (\(metrics.joined(separator: " ")))")
    }
}

func formatMetric(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.6g", v)
}

struct PassReport: Encodable {
    var pass: String
    var input: String
    var output: String
    var parameters: [String: String]
    var seed: UInt64
    var changes: [String]
    var metrics: [String: Double]
}
