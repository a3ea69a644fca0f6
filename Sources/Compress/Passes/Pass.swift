/// A named, parameterized transformation of a model.
///
/// A pass declares its parameters once (``parameters``); the CLI subcommand and
/// the pipeline step of the same name are both validated against that one
/// declaration. Running a pass never mutates its input: it returns a new model
/// and a ``PassRecord`` of what it did, which goes into the model's history.
public protocol Pass: Sendable {
    /// The kebab-case name used on the command line and in pipelines (`fold-bn`).
    static var name: String { get }
    /// One line saying what the pass does, for `--help` and reports.
    static var summary: String { get }
    /// Every parameter the pass accepts, with types, defaults and help text.
    static var parameters: [ParameterSpec] { get }

    /// Creates the pass from validated parameters.
    init(parameters: PassParameters) throws

    /// Transforms `model`, returning the new model and what changed.
    func apply(to model: Model, context: PassContext) throws -> PassOutcome
}

/// What a pass returns: the transformed model and a record of what it did.
public struct PassOutcome: Sendable {
    public var model: Model
    /// Human-readable lines describing each change, e.g. "folded bn1 into conv1".
    public var changes: [String]
    /// Deterministic numbers the pass measured (e.g. "max-abs-diff").
    public var metrics: [String: Double]
    /// Documents for the history entry (`HistoryEntry.attachments`), by name.
    public var attachments: [String: String]

    public init(model: Model, changes: [String], metrics: [String: Double] = [:], attachments: [String: String] = [:]) {
        self.model = model; self.changes = changes; self.metrics = metrics; self.attachments = attachments
    }
}

/// The record of one pass run, written into the model's history and shown to users.
public struct PassRecord: Sendable, Equatable {
    public var pass: String
    public var parameters: [String: String]
    public var seed: UInt64?
    public var changes: [String]
    /// Deterministic metrics: "params-before", "params-after", "macs-before", ... and the pass's own.
    public var metrics: [String: Double]
}

extension Pass {
    /// Runs the pass (its context's ``PassContext/passInput`` is `model`),
    /// checks the result is a valid graph, appends a history entry and
    /// returns the new model with its record.
    public func run(on model: Model, context: PassContext,
                    parameters: PassParameters) throws -> (model: Model, record: PassRecord) {
        let outcome = try apply(to: model, context: context.forPass(input: model))
        let outputs = try outcome.model.graph.inferShapes(batch: 1)
        _ = outputs
        var metrics = outcome.metrics
        let before = try ModelSummary(model), after = try ModelSummary(outcome.model)
        metrics["params-before"] = Double(before.parameters)
        metrics["params-after"] = Double(after.parameters)
        metrics["macs-before"] = Double(before.macs)
        metrics["macs-after"] = Double(after.macs)
        let record = PassRecord(pass: Self.name, parameters: parameters.descriptions, seed: context.seed,
                                changes: outcome.changes, metrics: metrics)
        var result = outcome.model
        // The kernel set that computed the pass's measurements (accuracies, calibration) goes with them.
        let historyParameters = record.parameters.merging(["kernels": KernelSet.processDefault.rawValue]) { given, _ in given }
        result.metadata.history.append(HistoryEntry(pass: Self.name, parameters: historyParameters,
                                                    seed: context.seed, metrics: metrics, attachments: outcome.attachments))
        return (result, record)
    }
}

/// Passes available by name. The CLI builds one from every pass library;
/// the core knows none of those libraries.
public struct PassRegistry: Sendable {
    public let passes: [String: any Pass.Type]

    public init(_ passTypes: [any Pass.Type]) {
        var byName: [String: any Pass.Type] = [:]
        for p in passTypes {
            precondition(byName[p.name] == nil, "two passes are named \(p.name)")
            byName[p.name] = p
        }
        passes = byName
    }

    /// The passes of the core library itself.
    public static let corePasses: [any Pass.Type] = [FoldBatchNormPass.self]

    public var names: [String] { passes.keys.sorted() }

    public func pass(named name: String) -> (any Pass.Type)? { passes[name] }
}
