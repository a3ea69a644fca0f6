import Dispatch

/// The one timing loop: `bench`, reports, latency-targeted passes
/// (`LatencyBenchmark`) and the plan's sparse-kernel choice
/// (`RunTimer.kernelChoice`) all time work with it. Warm-up runs, then timed
/// runs until both `minRepetitions` and `minSeconds` are reached, or
/// `maxRepetitions` runs.
public struct RunTimer: Sendable, Equatable {
    public var warmupRuns: Int
    public var minRepetitions: Int
    /// Wall time since the first timed run started.
    public var minSeconds: Double
    public var maxRepetitions: Int

    public init(warmupRuns: Int, minRepetitions: Int, minSeconds: Double, maxRepetitions: Int) {
        self.warmupRuns = warmupRuns; self.minRepetitions = minRepetitions
        self.minSeconds = minSeconds; self.maxRepetitions = maxRepetitions
    }

    /// How the sparse-kernel choice times a candidate kernel: 2 warm-up runs,
    /// then up to 7 timed runs, fewer once they add up to 20 ms; it keeps the
    /// fastest, steadier than the median on a busy machine.
    public static let kernelChoice = RunTimer(warmupRuns: 2, minRepetitions: 1, minSeconds: 0.02, maxRepetitions: 7)

    /// The times of `run`'s timed runs.
    public func time(_ run: () throws -> Void) rethrows -> RunTimes {
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
        return RunTimes(milliseconds: times.sorted())
    }
}

/// The timed runs of one `RunTimer.time` call.
public struct RunTimes: Sendable, Equatable {
    /// Milliseconds per run, fastest first.
    public var milliseconds: [Double]

    public var count: Int { milliseconds.count }
    public var medianMs: Double { Self.percentile(milliseconds, 0.5) }
    public var p90Ms: Double { Self.percentile(milliseconds, 0.9) }
    public var fastestMs: Double { milliseconds.first ?? 0 }
    public var slowestMs: Double { milliseconds.last ?? 0 }

    /// Linear-interpolated percentile of sorted values.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }
}
