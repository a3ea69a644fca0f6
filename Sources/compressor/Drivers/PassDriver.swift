import ArgumentParser
import Compress
import Foundation

/// The `CommandConfiguration` of pass `P`'s subcommand: its name and summary
/// from the pass; the options come from `P.parameters` (`GeneratedOptions.forPass`).
func passCommandConfiguration<P: Pass>(_ pass: P.Type, discussion: String = "") -> CommandConfiguration {
    CommandConfiguration(commandName: P.name, abstract: P.summary,
                         usage: "compressor \(P.name) <model> -o <file> [<options>]", discussion: discussion)
}

extension PassIOOptions {
    /// The generated options of pass `P` the user gave, and the input model;
    /// unknown options, options without a value and a missing or second model
    /// are usage errors (call from the command's `validate()`).
    func passArguments<P: Pass>(_ pass: P.Type) throws -> (values: [String: String], input: String) {
        let given = try GeneratedOptions.forPass(P.self).parse(arguments)
        return (given.values, try singleInput(given.positionals))
    }
}

/// The one positional argument naming the input model.
func singleInput(_ positionals: [String]) throws -> String {
    guard positionals.count == 1 else {
        throw ValidationError(positionals.isEmpty ? "missing the input model"
                              : "one input model, got \(positionals.map { "'\($0)'" }.joined(separator: ", "))")
    }
    return positionals[0]
}

/// Refuses positional arguments where a command takes none (`hint` says what it takes instead).
func noPositionals(_ positionals: [String], hint: String = "") throws {
    guard positionals.isEmpty else {
        throw ValidationError("unexpected argument\(positionals.count == 1 ? "" : "s") \(positionals.map { "'\($0)'" }.joined(separator: ", "))" + hint)
    }
}

/// Runs pass `P` as a subcommand: its parameters from the generated options
/// the user gave (the declaration supplies defaults), the model from the one
/// positional argument; writes the result and prints the record.
func runPass<P: Pass>(_ pass: P.Type, options io: PassIOOptions) throws {
    let (given, input) = try io.passArguments(P.self)
    let parameters = try PassParameters(validating: given, against: P.parameters, pass: P.name)
    let instance = try P(parameters: parameters)
    let model = try loadModel(input)
    let cancellation = CancellationFlag()
    let interrupt = installInterruptHandler(cancellation)
    defer { interrupt.cancel() }
    let context = PassContext.standard(
        seed: io.runtime.seed, data: .directory(io.dataOptions.data, validationCount: io.dataOptions.validationCount),
        threads: io.runtime.threads, progress: TerminalProgress(), cancellation: cancellation, input: model,
        log: { line in FileHandle.standardError.write(Data((line + "\n").utf8)) })
    let (result, record): (Model, PassRecord)
    do {
        (result, record) = try instance.run(on: model, context: context, parameters: parameters)
    } catch is PassCancelled {
        throw CLIError("interrupted: nothing was written")
    }
    try saveModel(result, to: io.output)
    if io.outputOptions.json {
        try printJSON(PassReport(pass: record.pass, input: input, output: io.output, parameters: record.parameters,
                                 seed: io.runtime.seed, changes: record.changes, metrics: record.metrics))
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
