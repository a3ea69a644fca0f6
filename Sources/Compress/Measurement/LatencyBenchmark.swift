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
}

/// One planned step timed on its own (`LatencyBenchmark.measureSteps`).
public struct StepTiming: Sendable, Equatable, Codable {
    /// The node, or a layout conversion named after the value it converts ("x#nchw8c").
    public var node: String
    /// What ran: "dense-blocked", "dense-gemv", "sparse-csr-gemm", "pool", "reorder", ...
    public var kernel: String
    /// Non-zero weights over all weights, for conv and linear layers.
    public var weightDensity: Double?
    /// Median milliseconds of the step per batch.
    public var medianMs: Double
    /// Fastest run, in milliseconds per batch (steadier than the median on a busy machine).
    public var minMs: Double
}

/// Every planned step's latency at one batch size and thread count.
public struct StepProfile: Sendable, Equatable, Codable {
    public var batch: Int
    public var threads: Int
    /// "layer-wise" (each step over the whole batch) or "image-wise" (each worker
    /// runs its images through all steps; a step's time is one image's times the images per worker).
    public var execution: String
    public var steps: [StepTiming]
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
        let input = Self.input(session.model, batch: batch, seed: seed)
        return try time(batch: batch, threads: session.threads) { _ = try session.run(input) }
    }

    /// Times every planned step of `session` on its own at `batch` (`Session.profileSteps`),
    /// each the way `time` times a whole run.
    public func measureSteps(_ session: Session, batch: Int, seed: UInt64 = 0) throws -> StepProfile {
        try session.profileSteps(Self.input(session.model, batch: batch, seed: seed), benchmark: self)
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

extension Session {
    /// Times each planned step on its own at `input`'s batch size with
    /// `benchmark`, after one full run on `input` has filled every value
    /// (`stepRuns(on:)`). A batch that runs image by image is timed on one
    /// worker's single-image steps, scaled to the images each worker runs.
    public func profileSteps(_ input: Tensor, benchmark: LatencyBenchmark) throws -> StepProfile {
        let runs = try stepRuns(on: input)
        var steps: [StepTiming] = []
        for step in runs.steps {
            Session.useSingleThreadedBLAS()
            let time = try benchmark.time(batch: runs.batch, threads: threads) { step.run() }
            steps.append(StepTiming(node: step.node, kernel: step.kernel, weightDensity: step.weightDensity,
                                    medianMs: time.medianMs * runs.scale, minMs: time.minMs * runs.scale))
        }
        return StepProfile(batch: runs.batch, threads: threads, execution: runs.execution, steps: steps)
    }
}
