import Compress

/// How a student learns from its teacher.
public enum DistillationMode: String, CaseIterable, Sendable {
    /// Hinton et al. 2015: the student's temperature-softened outputs match
    /// the teacher's, mixed with the labels' cross-entropy
    /// (`Loss.knowledgeDistillation`).
    case kd
    /// FitNets (Romero et al. 2015): chosen student layers regress chosen
    /// teacher layers through learned adapters, first alone (the student up
    /// to its hint layers), then beside KD with a weight, or both.
    case hint
    /// Zhou et al. 2020: each student block learns to reproduce its teacher
    /// block's output, block by block, then KD trains the whole student.
    case layerwise
}

/// How layerwise imitation spends its steps over the blocks.
public enum ImitationOrder: String, CaseIterable, Sendable {
    /// Block by block, bottom to top: the steps are split evenly over the
    /// blocks, and each block trains alone on its own output's imitation
    /// loss, fed by the student's earlier blocks (already trained).
    case sequential
    /// Every block on every step: the mean of all blocks' imitation losses
    /// trains the whole student, so each block gets all the steps (and the
    /// blocks below it learn to feed it).
    case joint
}

/// `distill`: trains the input model (the student) to imitate a teacher by
/// knowledge distillation (Hinton, Vinyals & Dean, "Distilling the Knowledge
/// in a Neural Network", 2015): `loss = α · T² · KL(softmax(teacher / T) ‖
/// softmax(student / T)) + (1 - α) · cross-entropy(student, labels)`, the
/// teacher run by the inference runtime on the student's augmented batches.
/// The epoch with the best validation accuracy is kept, as in `train`.
///
/// Modes `hint` and `layerwise` first warm the student up by imitating the
/// teacher's intermediate outputs (``prepare(student:teacher:data:settings:log:progress:cancellation:)``;
/// FitNets' hints, Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR
/// 2015; layerwise imitation, Zhou et al., "Go Wide, Then Narrow: Efficient
/// Training of Deep Thin Networks", ICML 2020) for `hint-epochs` or
/// `imitation-epochs` of the `epochs`, and KD trains it for the rest.
///
/// The parameters are `mode`, the hint and imitation parameters and every
/// training parameter (`teacher`, `temperature`, `alpha`, `epochs`, `lr`,
/// ...) with `train`'s defaults; `teacher` is required. In a pipeline
/// `teacher: input` is the pipeline's input model.
public struct DistillPass: Pass {
    public static let name = "distill"
    public static let summary = "Train a student model to imitate a teacher (knowledge distillation, hints, layerwise imitation)."
    /// The training defaults of a distillation: `train`'s (10 epochs, lr 0.01, ...), with T = 4 and α = 0.9.
    public static var defaults: TrainingSettings { TrainingSettings() }
    public static let parameters: [ParameterSpec] = [
        ParameterSpec("mode", .choice(DistillationMode.allCases.map(\.rawValue)), default: .string(DistillationMode.kd.rawValue),
                      help: "kd: match the teacher's temperature-softened outputs (Hinton et al. 2015); hint: also regress teacher layers (FitNets, Romero et al. 2015); layerwise: imitate the teacher block by block first (Zhou et al. 2020)."),
        .optional("hint", .string,
                  help: "Mode hint: STUDENT=TEACHER[,...] layer pairs; each student layer's output regresses the teacher layer's (squared error relative to the teacher's mean square) through a learned 1x1 conv or linear adapter where the channel counts differ."),
        ParameterSpec("hint-epochs", .int, default: .int(2),
                      help: "Mode hint: epochs of the first stage (the hint loss alone, training the student up to its hint layers), counted in epochs; KD trains the rest."),
        ParameterSpec("hint-weight", .double, default: .double(0),
                      help: "Mode hint: weight of the hint loss added to the KD loss during the KD epochs (0: none)."),
        ParameterSpec("hint-pool", .bool, default: .bool(false),
                      help: "Modes hint and layerwise: average-pool the larger of two feature maps of different sizes to the smaller (their ratio must be an integer)."),
        ParameterSpec("imitation-epochs", .int, default: .int(2),
                      help: "Mode layerwise: epochs of block-by-block imitation, counted in epochs; KD trains the rest."),
        ParameterSpec("imitation", .choice(ImitationOrder.allCases.map(\.rawValue)), default: .string(ImitationOrder.sequential.rawValue),
                      help: "Mode layerwise: sequential splits the imitation steps evenly over the blocks, bottom to top, each block training alone; joint trains every block on every step on the mean of the blocks' imitation losses."),
    ] + TrainingSettings.parameterSpecs(defaults: defaults)

    public let mode: DistillationMode
    /// The training settings (seed and threads come from the context when run as a pass).
    public let settings: TrainingSettings
    /// Where the teacher comes from.
    public let teacher: TeacherSource
    /// Mode hint: the layer pairs.
    public let hints: HintLayers?
    /// Mode hint: epochs of the hint stage; KD runs `settings.epochs - hintEpochs`.
    public let hintEpochs: Int
    /// Mode hint: weight of the hint loss beside KD.
    public let hintWeight: Float
    /// Modes hint and layerwise: pool the larger of two feature maps to the smaller.
    public let pools: Bool
    /// Mode layerwise: epochs of block-by-block imitation; KD runs `settings.epochs - imitationEpochs`.
    public let imitationEpochs: Int
    /// Mode layerwise: the blocks one after another, or all at once.
    public let imitationOrder: ImitationOrder

    public init(parameters p: PassParameters) throws {
        mode = DistillationMode(rawValue: p.string("mode"))!
        let settings = TrainingSettings(parameters: p, defaults: Self.defaults)
        var problems = settings.problems
        if settings.teacher == nil { problems.append("missing the teacher: give 'teacher' (--teacher FILE)") }
        hints = p.optionalString("hint").map { HintLayers($0, problems: &problems) }
        (hintEpochs, hintWeight) = (p.int("hint-epochs"), Float(p.double("hint-weight")))
        pools = p.bool("hint-pool")
        imitationEpochs = p.int("imitation-epochs")
        imitationOrder = ImitationOrder(rawValue: p.string("imitation"))!
        switch mode {
        case .kd: break
        case .hint:
            if hints == nil { problems.append("mode hint needs the layer pairs: give 'hint' (--hint STUDENT=TEACHER)") }
            if hintEpochs < 0 { problems.append("hint-epochs must be >= 0, got \(hintEpochs)") }
            if !(hintWeight >= 0 && hintWeight.isFinite) { problems.append("hint-weight must be >= 0, got \(hintWeight)") }
            if hintEpochs == 0 && hintWeight == 0 {
                problems.append("mode hint needs hint-epochs > 0 (a hint stage) or hint-weight > 0 (hints beside KD)")
            }
            if hintEpochs >= settings.epochs && settings.epochs >= 1 {
                problems.append("hint-epochs (\(hintEpochs)) must be fewer than epochs (\(settings.epochs)): KD trains the remaining epochs")
            }
        case .layerwise:
            if imitationEpochs < 1 { problems.append("imitation-epochs must be at least 1, got \(imitationEpochs)") }
            if imitationEpochs >= settings.epochs && settings.epochs >= 1 {
                problems.append("imitation-epochs (\(imitationEpochs)) must be fewer than epochs (\(settings.epochs)): KD trains the remaining epochs")
            }
        }
        if mode != .hint && hints != nil { problems.append("hint is for mode hint (the mode is \(mode.rawValue))") }
        if mode != .layerwise && imitationOrder != .sequential {
            problems.append("imitation is for mode layerwise (the mode is \(mode.rawValue))")
        }
        guard problems.isEmpty, let teacher = settings.teacher else {
            throw ParameterError(pass: Self.name, problems: problems)
        }
        self.settings = settings
        self.teacher = teacher
    }

    /// Trains `model` against the teacher (after the mode's warm-up,
    /// ``prepare(student:teacher:data:settings:log:progress:cancellation:)``);
    /// the record's metrics are the training's (best epoch, validation and
    /// test accuracy), the warm-up's imitation errors, and the student's top-1
    /// agreement with the teacher on the validation split before and after.
    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let teacherModel = try teacher.load(input: context.runInput, pass: Self.name)
        let data = try context.data.splits()
        var s = settings
        s.seed = context.seed
        s.threads = context.threads
        let log = { context.log("  distill " + $0) }
        let preparation = try prepare(student: model, teacher: teacherModel, data: data, settings: s, log: log,
                                      progress: context.progress, cancellation: context.cancellation)
        let run = try TrainingRun(model: preparation.student, data: data, settings: preparation.settings, passName: Self.name,
                                  checkpointDirectory: nil, teacher: teacherModel, progress: context.progress,
                                  cancellation: context.cancellation)
        preparation.configure(run)
        run.log = log
        let before = try Evaluation.agreement(of: model, with: teacherModel, on: data.validation, threads: s.threads)
        var student = try run.run(resume: false).model
        let after = try Evaluation.agreement(of: student, with: teacherModel, on: data.validation, threads: s.threads)
        // The training's history entry becomes this pass's metrics: one entry per step.
        var metrics = student.metadata.history.removeLast().metrics.merging(preparation.metrics) { $1 }
        metrics["teacher-agreement-before"] = before
        metrics["teacher-agreement-after"] = after
        let kdEpochs = s.epochs == preparation.settings.epochs ? "" : " (\(preparation.settings.epochs) of KD)"
        let bestEpoch = Int(metrics["best-epoch"] ?? 0)
        let changes = preparation.changes + [
            "distilled (\(mode.rawValue), T=\(s.temperature), alpha=\(s.distillationWeight)) from \(teacher) for \(s.epochs) epochs\(kdEpochs); best epoch \(bestEpoch)",
            "top-1 agreement with the teacher on validation: \(percent(before)) -> \(percent(after))",
        ]
        return PassOutcome(model: student, changes: changes, metrics: metrics)
    }

    private func percent(_ fraction: Double) -> String {
        String(Double(Int((fraction * 10000).rounded())) / 100) + "%"
    }
}
