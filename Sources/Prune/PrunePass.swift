import Compress
import Foundation

/// What a pruning pass removes: single weights or whole channels.
public enum PruningGranularity: String, Sendable, CaseIterable {
    /// Fine-grained: single weights are zeroed; the file shrinks through sparse
    /// storage and the runtime may pick sparse kernels.
    case weight
    /// Structured: whole filters/channels are removed, giving a smaller dense model.
    case channel
}

/// `prune`: magnitude pruning of single weights (Han et al., "Learning both
/// Weights and Connections for Efficient Neural Networks", NeurIPS 2015) one-shot,
/// iteratively or gradually (Zhu & Gupta 2017), and structured pruning of
/// channels through the graph's channel dependency groups.
public struct PrunePass: Pass {
    public static let name = "prune"
    public static let summary = "Prune weights (sparse) or channels (smaller dense model), optionally fine-tuning between steps."
    public static let parameters: [ParameterSpec] = [
        ParameterSpec("granularity", .choice(PruningGranularity.allCases.map(\.rawValue)), default: .string("weight"),
                      help: "weight: zero single weights (sparse file and kernels); channel: remove whole channels (smaller dense model)."),
        ParameterSpec("criterion", .choice(PruningCriterion.parameterChoices), default: .string(PruningCriterion.automaticName),
                      help: "Importance: magnitude (weights); l1, l2, bn-scale, taylor, apoz (channels). auto: magnitude for weights, l1 for channels."),
        ParameterSpec("scope", .choice(PruningScope.allCases.map(\.rawValue)), default: .string("layer"),
                      help: "layer: the amount applies to each layer; global: one ranking across the selected layers."),
        .optional("sparsity", .double,
                  help: "Fraction of weights (or channels) to remove, in [0, 1)."),
        .optional("threshold-std", .double,
                  help: "Weight granularity: remove |w| < K x the layer's weight standard deviation (Han et al. 2015)."),
        .optional("layer-sparsity", .string,
                  help: "Per-layer fractions, e.g. 'conv1=0.5,fc*=0.9' (patterns allowed; unnamed layers untouched)."),
        .optional("sensitivity", .string,
                  help: "A sensitivity.json from `compressor sensitivity`: per layer, the largest sparsity whose validation accuracy drop stays within --max-accuracy-drop."),
        ParameterSpec("max-accuracy-drop", .double, default: .double(0.5),
                      help: "With --sensitivity: allowed validation top-1 drop per layer, in percentage points."),
        .optional("target-macs", .double,
                  help: "Channel granularity: keep at most this fraction of the MACs, e.g. 0.5."),
        .optional("target-latency", .double,
                  help: "Channel granularity: keep at most this fraction of the measured latency (batch 1), e.g. 0.55."),
        .optional("latency-table", .string,
                  help: "With --target-latency: a latency table (JSON), or a model file whose history holds one, from an earlier run; candidates found in it take the recorded latency instead of being measured."),
        ParameterSpec("schedule", .choice(PruningSchedule.allCases.map(\.rawValue)), default: .string("one-shot"),
                      help: "one-shot; iterative (prune + fine-tune rounds, Han et al.); agp (cubic sparsity ramp, Zhu & Gupta 2017)."),
        .optional("steps", .int, help: "Pruning steps (default: 1 for one-shot, 4 for iterative, 8 for agp)."),
        ParameterSpec("layers", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of the conv/linear layers to prune (default: all)."),
        ParameterSpec("exclude", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of layers to leave alone."),
        ParameterSpec("round-to", .int, default: .int(1),
                      help: "Channel granularity: keep a multiple of this many channels per group (8 suits the blocked kernels)."),
        CalibrationImages.parameterSpec(help: "Validation images the data-driven criteria (taylor, apoz) look at."),
    ] + FineTuneParameters.specs(epochsHelp:
        "Fine-tuning epochs after each step, pruned weights held at zero (default: 0 for one-shot, 1 otherwise).")

    public let granularity: PruningGranularity
    /// The criterion, `auto` already resolved for the granularity.
    public let criterion: PruningCriterion
    public let scope: PruningScope
    public let amount: PruningAmount
    public let schedule: PruningSchedule
    public let steps: Int
    public let fineTuneEpochs: Int
    /// Fine-tuning settings by training parameter name (`lr`, `flip`, ...).
    public let fineTuneOverrides: [String: String]
    public let selection: LayerSelection
    public let roundTo: Int
    public let calibrationImages: Int

    public init(parameters p: PassParameters) throws {
        var problems: [String] = []
        granularity = PruningGranularity(rawValue: p.string("granularity"))!
        let named = p.string("criterion")
        criterion = named == PruningCriterion.automaticName ? .automatic(for: granularity) : PruningCriterion(rawValue: named)!
        scope = PruningScope(rawValue: p.string("scope"))!
        schedule = PruningSchedule(rawValue: p.string("schedule"))!
        steps = p.optionalInt("steps") ?? schedule.defaultSteps
        let fineTune = FineTuneParameters.request(p)
        fineTuneEpochs = fineTune.epochs ?? (schedule == .oneShot ? 0 : 1)
        fineTuneOverrides = fineTune.overrides
        selection = LayerSelection(include: p.string("layers"), exclude: p.string("exclude"))
        roundTo = p.int("round-to")
        calibrationImages = p.int("calibration-images")
        let parsed = PruningAmount.parse(p, granularity: granularity, scope: scope, problems: &problems)
        amount = parsed ?? .sparsity(0)
        if granularity == .weight && criterion.ranksChannels {
            problems.append("criterion '\(criterion.rawValue)' ranks channels; weight granularity uses magnitude")
        }
        if granularity == .channel && !criterion.ranksChannels {
            problems.append("criterion 'magnitude' ranks single weights; channel granularity uses l1, l2, bn-scale, taylor or apoz")
        }
        if steps < 1 { problems.append("steps must be at least 1, got \(steps)") }
        if schedule == .oneShot && steps != 1 { problems.append("a one-shot schedule has 1 step; use iterative or agp for \(steps)") }
        problems += FineTuneParameters.problems(fineTune, defaultEpochs: fineTuneEpochs)
        if roundTo < 1 { problems.append("round-to must be at least 1, got \(roundTo)") }
        if roundTo > 1 && granularity == .weight { problems.append("round-to applies to channel granularity only") }
        if calibrationImages < 1 { problems.append("calibration-images must be at least 1, got \(calibrationImages)") }
        if schedule == .agp, case .thresholdStd = amount {
            problems.append("agp ramps a sparsity; use --sparsity (or the iterative schedule with --threshold-std)")
        }
        if case .targetLatency = amount, steps > 1 {
            problems.append("target-latency is met in one step (it measures candidates); use the one-shot schedule")
        }
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let outcome = switch granularity {
        case .weight: try pruneWeights(model, context: context)
        case .channel: try pruneChannels(model, context: context)
        }
        try refuseChangedHashedTensors(before: model, after: outcome.model, pass: Self.name)
        return outcome
    }

    /// Fine-tunes for `fineTuneEpochs` (pruned weights held at zero), or returns `model` when there are none.
    func fineTuned(_ model: Model, context: PassContext) throws -> Model {
        guard fineTuneEpochs > 0 else { return model }
        return try context.fineTune(model, epochs: fineTuneEpochs, overrides: fineTuneOverrides, pass: Self.name)
    }
}
