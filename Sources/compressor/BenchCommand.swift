import ArgumentParser
import Compress
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure inference latency per batch: median and p90 after warm-up, and images/s.",
        discussion: """
        Each configuration runs a few warm-up batches, then timed batches until at \
        least --repetitions runs and --seconds have passed. Inputs are seeded random \
        pixels. BLAS threads are process-wide, so configurations run one after another.
        """)

    @Argument(help: ArgumentHelp("Model file.", valueName: "model"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Batch sizes, comma-separated.", valueName: "list"))
    var batch = "1,64"

    @Option(name: .long, help: ArgumentHelp("Thread counts, comma-separated.", valueName: "list"))
    var threads = "1"

    @Option(name: .long, help: "Minimum timed runs per configuration.")
    var repetitions = 20

    @Option(name: .long, help: "Minimum timed seconds per configuration.")
    var seconds = 1.0

    @Flag(name: .long, help: "Time a full training step (forward, backward, SGD update) instead of inference.")
    var train = false

    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let batches = try parsePositiveList(batch, name: "batch")
        let threadCounts = try parsePositiveList(threads, name: "threads")
        guard repetitions >= 1, seconds >= 0 else { throw CLIError("--repetitions must be >= 1 and --seconds >= 0") }
        let m = try loadModel(model)
        let bench = LatencyBenchmark(minRepetitions: repetitions, minSeconds: seconds)
        var results: [LatencyMeasurement] = []
        for t in threadCounts {
            for b in batches {
                results.append(train ? try bench.measureTrainingStep(m, batch: b, threads: t)
                                     : try bench.measure(m, batch: b, threads: t))
            }
        }
        if outputOptions.json {
            try printJSON(BenchReport(model: model, mode: train ? "training-step" : "inference", results: results))
            return
        }
        let rows = results.map { r in
            [String(r.batch), String(r.threads), String(format: "%.3f", r.medianMs), String(format: "%.3f", r.p90Ms),
             String(format: "%.3f", r.minMs), String(format: "%.0f", r.imagesPerSecond), String(r.repetitions)]
        }
        print("\(model)\(train ? " (training step: forward + backward + SGD update)" : "")\n")
        print(formatTable(["batch", "threads", "median ms", "p90 ms", "min ms", "images/s", "runs"], rows))
    }

    struct BenchReport: Encodable {
        var model: String
        var mode: String
        var results: [LatencyMeasurement]
    }
}
