import Compress

/// How a student learns from its teacher.
public enum DistillationMode: String, CaseIterable, Sendable {
    /// Hinton et al. 2015: the student's temperature-softened outputs match
    /// the teacher's, mixed with the labels' cross-entropy
    /// (`Loss.knowledgeDistillation`).
    case kd
}

/// `distill`: trains the input model (the student) to imitate a teacher by
/// knowledge distillation (Hinton, Vinyals & Dean, "Distilling the Knowledge
/// in a Neural Network", 2015): `loss = α · T² · KL(softmax(teacher / T) ‖
/// softmax(student / T)) + (1 - α) · cross-entropy(student, labels)`, the
/// teacher run by the inference runtime on the student's augmented batches.
/// The epoch with the best validation accuracy is kept, as in `train`.
///
/// The parameters are `mode` and every training parameter (`teacher`,
/// `temperature`, `alpha`, `epochs`, `lr`, ...) with `train`'s defaults;
/// `teacher` is required. In a pipeline `teacher: input` is the pipeline's
/// input model.
public struct DistillPass: Pass {
    public static let name = "distill"
    public static let summary = "Train a student model to imitate a teacher (knowledge distillation)."
    /// The training defaults of a distillation: `train`'s (10 epochs, lr 0.01, ...), with T = 4 and α = 0.9.
    public static var defaults: TrainingSettings { TrainingSettings() }
    public static let parameters: [ParameterSpec] = [
        ParameterSpec("mode", .choice(DistillationMode.allCases.map(\.rawValue)), default: .string(DistillationMode.kd.rawValue),
                      help: "kd: match the teacher's temperature-softened outputs (Hinton et al. 2015)."),
    ] + TrainingSettings.parameterSpecs(defaults: defaults)

    public let mode: DistillationMode
    /// The training settings (seed and threads come from the context when run as a pass).
    public let settings: TrainingSettings
    /// Where the teacher comes from.
    public let teacher: TeacherSource

    public init(parameters p: PassParameters) throws {
        mode = DistillationMode(rawValue: p.string("mode"))!
        let settings = TrainingSettings(parameters: p, defaults: Self.defaults)
        var problems = settings.problems
        if settings.teacher == nil { problems.append("missing the teacher: give 'teacher' (--teacher FILE)") }
        guard problems.isEmpty, let teacher = settings.teacher else {
            throw ParameterError(pass: Self.name, problems: problems)
        }
        self.settings = settings
        self.teacher = teacher
    }

    /// Trains `model` against the teacher; the record's metrics are the
    /// training's (best epoch, validation and test accuracy) and the
    /// student's top-1 agreement with the teacher on the validation split before and after.
    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let teacherModel = try teacher.load(input: context.runInput, pass: Self.name)
        let data = try context.data.splits()
        var s = settings
        s.seed = context.seed
        s.threads = context.threads
        let run = try TrainingRun(model: model, data: data, settings: s, passName: Self.name, checkpointDirectory: nil,
                                  teacher: teacherModel, progress: context.progress, cancellation: context.cancellation)
        run.log = { context.log("  distill " + $0) }
        let before = try Evaluation.agreement(of: model, with: teacherModel, on: data.validation, threads: s.threads)
        var student = try run.run(resume: false).model
        let after = try Evaluation.agreement(of: student, with: teacherModel, on: data.validation, threads: s.threads)
        // The training's history entry becomes this pass's metrics: one entry per step.
        var metrics = student.metadata.history.removeLast().metrics
        metrics["teacher-agreement-before"] = before
        metrics["teacher-agreement-after"] = after
        let changes = [
            "distilled (\(mode.rawValue), T=\(s.temperature), alpha=\(s.distillationWeight)) from \(teacher) for \(s.epochs) epochs; best epoch \(Int(metrics["best-epoch"] ?? 0))",
            "top-1 agreement with the teacher on validation: \(percent(before)) -> \(percent(after))",
        ]
        return PassOutcome(model: student, changes: changes, metrics: metrics)
    }

    private func percent(_ fraction: Double) -> String {
        String(Double(Int((fraction * 10000).rounded())) / 100) + "%"
    }
}
