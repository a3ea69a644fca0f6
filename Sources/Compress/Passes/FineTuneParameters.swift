/// The fine-tune option group of a pass: every training parameter
/// (`TrainingSettings.parameterSpecs`) with the `finetune-` prefix, so
/// `--finetune-epochs`, `--finetune-lr`, `--finetune-crop-padding`, ... on
/// the command line and `finetune-lr:` in a pipeline step, generated from the
/// one declaration `train` and `finetune` use without the prefix. A training
/// parameter added there (a teacher for distillation, kept codebooks for
/// weight sharing) reaches every pass that fine-tunes with no change here.
public enum FineTuneParameters {
    /// What every name in the group starts with.
    public static let prefix = "finetune-"

    /// The group's parameters, all optional: an absent one takes the fine-tune
    /// default (`TrainingSettings.fineTuneDefaults`), except `finetune-epochs`,
    /// whose absence the pass decides (`epochsHelp` says how).
    public static func specs(epochsHelp: String) -> [ParameterSpec] {
        TrainingSettings.parameterSpecs(defaults: .fineTuneDefaults).map { spec in
            let help = spec.name == "epochs" ? epochsHelp
                : "Fine-tuning: " + spec.help + (spec.defaultValue.map { " (default: \($0))" } ?? "")
            return .optional(prefix + spec.name, spec.type, help: help)
        }
    }

    /// What a pass's parameters ask of its fine-tuning.
    public struct Request: Sendable, Equatable {
        /// `finetune-epochs`, when given.
        public var epochs: Int?
        /// The other given settings by training parameter name (`lr`, `flip`, ...).
        public var overrides: [String: String]
    }

    /// The request in `parameters` (validated against `specs(epochsHelp:)`).
    public static func request(_ parameters: PassParameters) -> Request {
        var request = Request(epochs: nil, overrides: [:])
        for (name, value) in parameters.values where name.hasPrefix(prefix) {
            let setting = String(name.dropFirst(prefix.count))
            if setting == "epochs", case .int(let e) = value { request.epochs = e } else { request.overrides[setting] = value.description }
        }
        return request
    }

    /// Every problem with the request's settings as a whole (range checks
    /// across settings), named with the prefix; empty when they are usable.
    /// `defaultEpochs` is what the pass fine-tunes when `finetune-epochs` is
    /// absent: multirate options without any epoch are refused.
    public static func problems(_ request: Request, defaultEpochs: Int = 0) -> [String] {
        var problems: [String] = []
        if let e = request.epochs, e < 0 { problems.append("\(prefix)epochs must be >= 0, got \(e)") }
        problems += MultirateSettings.problems(fineTuneOverrides: request.overrides, epochs: request.epochs ?? defaultEpochs,
                                               prefix: prefix)
        do {
            _ = try TrainingSettings(validating: request.overrides, defaults: .fineTuneDefaults, name: "finetune")
        } catch {
            problems += error.problems
        }
        return problems
    }

    /// `problems(_:)`, and for a pass whose result lives in the training
    /// setting `kept` (`keep-codebooks`, `keep-precisions`): that setting
    /// false with fine-tuning epochs would undo `what` (the sharing, the
    /// quantization), so it is refused, pointing to `finetune`.
    public static func problems(_ request: Request, keeping kept: String, undoes what: String) -> [String] {
        var problems = problems(request)
        if (request.epochs ?? 0) > 0, request.overrides[kept] == "false" {
            problems.append("\(prefix)\(kept) false would undo \(what); fine-tune with `finetune --\(kept) false` instead")
        }
        return problems
    }
}
