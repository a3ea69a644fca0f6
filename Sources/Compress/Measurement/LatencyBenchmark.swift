/// Latency of one model at one batch size and thread count.
public struct LatencyMeasurement: Sendable, Equatable, Codable {
    public var batch: Int
    public var threads: Int
    public var repetitions: Int
    /// Milliseconds per batch.
    public var medianMs: Double
    public var p90Ms: Double
    public var minMs: Double
    public var maxMs: Double
    /// Images per second at the median latency.
    public var imagesPerSecond: Double
    /// For a training step: the bytes it works in (values, gradients, scratch,
    /// parameters and their gradients, optimizer state), all allocated once.
    public var trainingBytes: Int?
}

/// Something that measures a model's inference latency: the real benchmark,
/// or, in tests, a stand-in that decides what is faster without timing.
public protocol LatencyMeasuring: Sendable {
    /// Latency of `model` on a batch of `batch` images with `threads` threads.
    func measure(_ model: Model, batch: Int, threads: Int) throws -> LatencyMeasurement
}

/// Measures inference latency the same way everywhere (`bench`, reports,
/// latency-targeted passes): with `RunTimer`, warm-up runs, then timed runs
/// until both a minimum count and a minimum time are reached, reporting
/// median, p90 and spread.
public struct LatencyBenchmark: LatencyMeasuring {
    public var warmupRuns: Int
    public var minRepetitions: Int
    public var minSeconds: Double
    public var maxRepetitions: Int

    public init(warmupRuns: Int = 3, minRepetitions: Int = 10, minSeconds: Double = 1.0, maxRepetitions: Int = 10_000) {
        self.warmupRuns = warmupRuns; self.minRepetitions = minRepetitions
        self.minSeconds = minSeconds; self.maxRepetitions = maxRepetitions
    }

    /// Times `model` on a seeded random batch of `batch` images with `threads` threads.
    public func measure(_ model: Model, batch: Int, threads: Int) throws -> LatencyMeasurement {
        try measure(model, batch: batch, threads: threads, seed: 0, sparseKernels: .auto)
    }

    /// Times `model` on a seeded random batch of `batch` images with `threads` threads.
    public func measure(_ model: Model, batch: Int, threads: Int, seed: UInt64,
                        sparseKernels: SparseKernelPolicy = .auto) throws -> LatencyMeasurement {
        try measure(Session(model: model, threads: threads, sparseKernels: sparseKernels), batch: batch, seed: seed)
    }

    /// Times `session` on a seeded random batch of `batch` images.
    public func measure(_ session: Session, batch: Int, seed: UInt64 = 0) throws -> LatencyMeasurement {
        try session.prepare(batch: batch)
        let input = Self.input(session.model, batch: batch, seed: seed)
        return try time(batch: batch, threads: session.threads) { _ = try session.run(input) }
    }

    /// Times every planned step of `session` on its own at `batch` (`Session.profileSteps`),
    /// each the way `time` times a whole run.
    public func measureSteps(_ session: Session, batch: Int, seed: UInt64 = 0) throws -> StepProfile {
        try session.prepare(batch: batch)
        return try session.profileSteps(Self.input(session.model, batch: batch, seed: seed), benchmark: self)
    }

    private static func input(_ model: Model, batch: Int, seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return rng.uniformTensor([batch] + model.inputShape, in: 0...1)
    }

    /// The timer with this benchmark's warm-up and stopping rule.
    public var timer: RunTimer {
        RunTimer(warmupRuns: warmupRuns, minRepetitions: minRepetitions, minSeconds: minSeconds,
                 maxRepetitions: maxRepetitions)
    }

    /// Times `run` (one batch of `batch` images): warm-up, then timed runs until
    /// both `minRepetitions` and `minSeconds` are reached (`timer`).
    public func time(batch: Int, threads: Int, _ run: () throws -> Void) throws -> LatencyMeasurement {
        let times = try timer.time(run)
        let median = times.medianMs
        return LatencyMeasurement(batch: batch, threads: threads, repetitions: times.count,
                                  medianMs: median, p90Ms: times.p90Ms, minMs: times.fastestMs, maxMs: times.slowestMs,
                                  imagesPerSecond: median > 0 ? Double(batch) * 1000 / median : 0)
    }
}
