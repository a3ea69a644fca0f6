import ArgumentParser
import Compress

/// What `bench` and `report` time: lists of batch sizes and thread counts,
/// and how long each configuration is timed.
struct MeasurementOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Batch sizes to time, comma-separated.", valueName: "list"))
    var batch = "1,64"

    @Option(name: .long, help: ArgumentHelp("Thread counts to time, comma-separated.", valueName: "list"))
    var threads = "1"

    @OptionGroup var kernelsOption: KernelsOption
    @OptionGroup var maxMemoryOption: MaxMemoryOption

    @Option(name: .long, help: "Minimum timed runs per configuration.")
    var repetitions = 20

    @Option(name: .long, help: "Minimum timed seconds per configuration.")
    var seconds = 1.0

    func validate() throws {
        guard repetitions >= 1, seconds >= 0 else { throw ValidationError("--repetitions must be >= 1 and --seconds >= 0") }
    }

    /// The batch sizes, each at least 1.
    func batches() throws -> [Int] { try parsePositiveList(batch, name: "batch") }

    /// The thread counts, each at least 1.
    func threadCounts() throws -> [Int] {
        let counts = try parsePositiveList(threads, name: "threads")
        guard counts.allSatisfy({ $0 <= ThreadsOption.maximum }) else {
            throw CLIError("--threads takes counts between 1 and \(ThreadsOption.maximum), got '\(threads)'")
        }
        return counts
    }

    /// The benchmark timing each configuration.
    var benchmark: LatencyBenchmark { LatencyBenchmark(minRepetitions: repetitions, minSeconds: seconds) }
}
