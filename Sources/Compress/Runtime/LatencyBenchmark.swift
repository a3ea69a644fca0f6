import Foundation

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

/// Measures inference latency the same way everywhere (`bench`, reports,
/// latency-targeted passes): warm-up runs, then timed runs until both a minimum
/// count and a minimum time are reached, reporting median, p90 and spread.
public struct LatencyBenchmark: Sendable {
    public var warmupRuns: Int
    public var minRepetitions: Int
    public var minSeconds: Double
    public var maxRepetitions: Int

    public init(warmupRuns: Int = 3, minRepetitions: Int = 10, minSeconds: Double = 1.0, maxRepetitions: Int = 10_000) {
        self.warmupRuns = warmupRuns; self.minRepetitions = minRepetitions
        self.minSeconds = minSeconds; self.maxRepetitions = maxRepetitions
    }

    /// Times `model` on a seeded random batch of `batch` images with `threads` threads.
    public func measure(_ model: Model, batch: Int, threads: Int, seed: UInt64 = 0) throws -> LatencyMeasurement {
        let session = try Session(model: model, threads: threads)
        var rng = SeededGenerator(seed: seed)
        let input = rng.uniformTensor([batch] + model.inputShape, in: 0...1)
        return try time(batch: batch, threads: threads) { _ = try session.run(input) }
    }

    /// Times `run` (one batch of `batch` images): warm-up, then timed runs until
    /// both `minRepetitions` and `minSeconds` are reached.
    public func time(batch: Int, threads: Int, _ run: () throws -> Void) throws -> LatencyMeasurement {
        for _ in 0..<warmupRuns { try run() }
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while times.count < maxRepetitions {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try run()
            let t1 = DispatchTime.now().uptimeNanoseconds
            times.append(Double(t1 - t0) / 1e6)
            let elapsed = Double(t1 - start) / 1e9
            if times.count >= minRepetitions && elapsed >= minSeconds { break }
        }
        times.sort()
        let median = Self.percentile(times, 0.5)
        return LatencyMeasurement(batch: batch, threads: threads, repetitions: times.count,
                                  medianMs: median, p90Ms: Self.percentile(times, 0.9),
                                  minMs: times.first ?? 0, maxMs: times.last ?? 0,
                                  imagesPerSecond: median > 0 ? Double(batch) * 1000 / median : 0)
    }

    /// Linear-interpolated percentile of sorted values.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }
}
