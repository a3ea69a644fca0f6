import Compress

/// Knowledge distillation: training smaller students against a teacher's
/// softened outputs. Today: the `distill` pass in `kd` mode (Hinton et al.
/// 2015); the loss and the teacher runner live in the core's training engine,
/// so every pass's fine-tuning can distill too (`finetune-teacher`).
///
/// Passes in this library conform to `Compress.Pass` and are registered with
/// `PassRegistry` so the CLI and pipelines find them by name. The library
/// depends on `Compress` only; nothing in `Compress` depends on it.
public enum DistillLibrary {
    /// The passes this library provides.
    public static let passes: [any Pass.Type] = [DistillPass.self]
}
