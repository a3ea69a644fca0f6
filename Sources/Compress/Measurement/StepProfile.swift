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
