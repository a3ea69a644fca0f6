/// Measured wall-clock time of an epoch's optimizer steps (forward, loss,
/// backward and update; not the batch assembly), split into full steps and
/// the fast-only steps of multirate training (``MultirateTrainer``).
public struct TrainingStepTimes: Sendable, Equatable, Codable {
    public var fullSteps = 0
    public var fullSeconds = 0.0
    public var fastSteps = 0
    public var fastSeconds = 0.0

    public init() {}

    /// Adds one step of `seconds`.
    public mutating func record(full: Bool, seconds: Double) {
        if full { fullSteps += 1; fullSeconds += seconds } else { fastSteps += 1; fastSeconds += seconds }
    }

    /// Mean milliseconds per full step, nil when there was none.
    public var fullStepMilliseconds: Double? { fullSteps > 0 ? 1000 * fullSeconds / Double(fullSteps) : nil }

    /// Mean milliseconds per fast-only step, nil when there was none.
    public var fastStepMilliseconds: Double? { fastSteps > 0 ? 1000 * fastSeconds / Double(fastSteps) : nil }
}
