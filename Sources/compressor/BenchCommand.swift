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

        Pruned conv and linear layers may run sparse kernels: --sparse auto (the default) \
        times both kernels of each layer with at most 50% non-zero weights and keeps the \
        faster; dense and sparse force one kind. --layers adds each planned step's \
        kernel, weight density and median time, every step timed on its own.
        """)

    @Argument(help: ArgumentHelp("Model file.", valueName: "model"))
    var model: String

    @OptionGroup var measurement: MeasurementOptions

    @Flag(name: .long, help: "Time a full training step (forward, backward, SGD update) instead of inference; also gives the memory a step works in (MiB/step: values, gradients, scratch, parameters, optimizer state).")
    var train = false

    @Option(name: .long, help: ArgumentHelp("Sparse-kernel policies to compare, comma-separated: auto, dense, sparse.",
                                            valueName: "list"))
    var sparse: String?

    @Flag(name: .long, help: "Also time every planned step on its own: kernel, weight density, median ms.")
    var layers = false

    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let batches = try measurement.batches()
        let threadCounts = try measurement.threadCounts()
        let policies = try parsePolicies()
        guard !train || (sparse == nil && !layers) else { throw CLIError("--sparse and --layers time inference only") }
        let m = try loadRunnableModel(model)
        let bench = measurement.benchmark
        // Steps are timed on their own: a tenth of the time per step keeps --layers affordable.
        var stepBench = bench
        stepBench.minSeconds /= 10
        var results: [LatencyMeasurement] = []
        var details: [BenchReport.Detail] = []
        try namingModel(model) {
            for policy in policies {
                for t in threadCounts {
                    let session = train ? nil : try Session(model: m, threads: t, sparseKernels: policy)
                    for b in batches {
                        guard let session else {
                            results.append(try bench.measureTrainingStep(m, batch: b, threads: t))
                            continue
                        }
                        results.append(try bench.measure(session, batch: b))
                        details.append(BenchReport.Detail(sparseKernels: policy.rawValue, layerKernels: session.layerKernels,
                                                          layers: layers ? try stepBench.measureSteps(session, batch: b) : nil))
                    }
                }
            }
        }
        if outputOptions.json {
            try printJSON(BenchReport(model: model, mode: train ? "training-step" : "inference",
                                      kernels: KernelSet.processDefault.rawValue, results: results,
                                      details: train ? nil : details))
            return
        }
        let showPolicy = sparse != nil
        let rows = results.enumerated().map { i, r in
            [String(r.batch), String(r.threads)] + (showPolicy ? [details[i].sparseKernels] : [])
                + [String(format: "%.3f", r.medianMs), String(format: "%.3f", r.p90Ms),
                   String(format: "%.3f", r.minMs), String(format: "%.0f", r.imagesPerSecond), String(r.repetitions)]
                + (train ? [String(format: "%.1f", Double(r.trainingBytes ?? 0) / 1_048_576)] : [])
        }
        print("\(model)\(train ? " (training step: forward + backward + SGD update)" : ""), "
              + "kernels \(KernelSet.processDefault.rawValue)\n")
        print(formatTable(["batch", "threads"] + (showPolicy ? ["sparse"] : [])
                          + ["median ms", "p90 ms", "min ms", "images/s", "runs"] + (train ? ["MiB/step"] : []), rows))
        if layers { for d in details { print("\n" + layerTable(d)) } }
    }

    private func parsePolicies() throws -> [SparseKernelPolicy] {
        let text = sparse ?? "auto"
        let policies = text.split(separator: ",").map { SparseKernelPolicy(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        guard !policies.isEmpty, policies.allSatisfy({ $0 != nil }) else {
            throw CLIError("--sparse takes a comma-separated list of auto, dense, sparse; got '\(text)'")
        }
        return policies.compactMap { $0 }
    }

    /// One configuration's steps, then the timings behind `.auto`'s choices.
    private func layerTable(_ d: BenchReport.Detail) -> String {
        guard let profile = d.layers else { return "" }
        let (total, totalMin) = profile.steps.reduce((0.0, 0.0)) { ($0.0 + $1.medianMs, $0.1 + $1.minMs) }
        let rows = profile.steps.map { s in
            [s.node, s.kernel, s.weightDensity.map { String(format: "%.1f%%", $0 * 100) } ?? "",
             String(format: "%.4f", s.medianMs), String(format: "%.4f", s.minMs),
             String(format: "%.1f%%", total > 0 ? s.medianMs / total * 100 : 0)]
        } + [["total", "", "", String(format: "%.4f", total), String(format: "%.4f", totalMin), ""]]
        var text = "batch \(profile.batch), \(profile.threads) thread\(profile.threads == 1 ? "" : "s"), "
            + "sparse \(d.sparseKernels), \(profile.execution):\n"
            + formatTable(["step", "kernel", "density", "median ms", "min ms", "share"], rows)
        for c in d.layerKernels {
            guard let dense = c.denseMicroseconds, let sparse = c.sparseMicroseconds else { continue }
            text += String(format: "\nauto: %@ %@ (dense %.1f us, sparse %.1f us at batch 1)", c.node,
                           c.sparse ? "sparse" : "dense", dense, sparse)
        }
        return text
    }

    struct BenchReport: Encodable {
        /// What each inference result ran, in the same order as `results`.
        struct Detail: Encodable {
            var sparseKernels: String
            var layerKernels: [LayerKernelChoice]
            var layers: StepProfile?
        }
        var model: String
        var mode: String
        /// The kernel set every configuration ran (`--kernels`).
        var kernels: String
        var results: [LatencyMeasurement]
        var details: [Detail]?
    }
}
