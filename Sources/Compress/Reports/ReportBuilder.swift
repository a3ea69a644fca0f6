import Foundation
import SIMDKernels

/// What a report measures and how.
public struct ReportSettings: Sendable {
    /// Batch sizes to time.
    public var batches: [Int] = [1, 64]
    /// Thread counts to time.
    public var threads: [Int] = [1]
    /// Evaluate only the first N test images (all when nil).
    public var testLimit: Int? = nil
    /// How latency is timed: the same benchmark as `compressor bench`, with its defaults.
    public var latency: LatencyBenchmark = LatencyBenchmark(minRepetitions: 20, minSeconds: 1.0)

    public init(batches: [Int] = [1, 64], threads: [Int] = [1], testLimit: Int? = nil,
                latency: LatencyBenchmark = LatencyBenchmark(minRepetitions: 20, minSeconds: 1.0)) {
        self.batches = batches; self.threads = threads; self.testLimit = testLimit; self.latency = latency
    }
}

/// Why a report could not be built; names the model or setting at fault.
public enum ReportError: Error, Equatable, CustomStringConvertible {
    case noModels
    case unreadableModel(path: String, reason: String)
    case inputShapeMismatch(label: String, modelShape: [Int], dataShape: [Int])
    case invalidSettings(String)
    /// Measuring a model needs more memory than the budget allows (one image:
    /// `Model.checkInferenceMemory`, or a batch size being timed or evaluated).
    case exceedsMemoryBudget(path: String, MemoryBudgetExceeded)

    public var description: String {
        switch self {
        case .noModels: "a report needs at least one model"
        case .unreadableModel(let path, let reason): reason.contains(path) ? reason : "\(path): \(reason)"
        case .inputShapeMismatch(let label, let m, let d):
            "the data's images are \(d.map(String.init).joined(separator: "x")) but \(label) takes "
                + m.map(String.init).joined(separator: "x")
        case .invalidSettings(let detail): detail
        case .exceedsMemoryBudget(let path, let refusal): "\(path): \(refusal)"
        }
    }
}

/// Measures models for a `ComparisonReport`: file and weight sizes, counts,
/// latency (all models in this one process, by `LatencyBenchmark`) and
/// accuracy (by `Evaluation.accuracy`, as `compressor eval` does).
public enum ReportBuilder {
    /// Threads accuracy is evaluated with: `compressor eval`'s default, so the numbers match it.
    public static let evaluationThreads = 1

    /// Builds the report for `models`; the first is the baseline for the
    /// compression ratio and accuracy change. Accuracy is left out when `test`
    /// is nil; validation accuracy (on every image of `validation`) when
    /// `validation` is nil.
    public static func build(models: [(label: String, path: String)], test: LabeledImages?,
                             validation: LabeledImages? = nil, settings: ReportSettings,
                             progress: any ProgressReporting) throws -> ComparisonReport {
        try validate(settings, modelCount: models.count)
        if let validation, validation.count == 0 {
            throw ReportError.invalidSettings("the validation split is empty (hold out images with --validation-count)")
        }
        let loaded = try models.map { try LoadedModel(label: $0.label, path: $0.path) }
        for m in loaded { try m.namingRefusals { try m.model.checkInferenceMemory() } }
        for data in [test, validation].compactMap({ $0 }) { try checkShapes(loaded, data: data) }
        let latencies = try measureLatency(loaded, settings: settings, progress: progress)
        func accuracies(on data: LabeledImages, limit: Int?) throws -> [AccuracyResult] {
            try loaded.map { m in
                try m.namingRefusals {
                    try Evaluation.accuracy(of: m.model, on: data, limit: limit, threads: evaluationThreads, progress: progress)
                }
            }
        }
        let tested = try test.map { try accuracies(on: $0, limit: settings.testLimit) }
        let validated = try validation.map { try accuracies(on: $0, limit: nil) }
        var reports: [ModelReport] = []
        for (i, m) in loaded.enumerated() {
            var report = try modelReport(m, baseline: loaded[0], latency: latencies[i],
                                         accuracy: tested?[i], baselineAccuracy: tested?[0])
            report.validationAccuracy = validated.map { accuracyReport($0[i], baseline: $0[0]) }
            reports.append(report)
        }
        let measurement = measurementSettings(settings, testImages: tested?.first?.images,
                                              validationImages: validated?.first?.images)
        return ComparisonReport(generator: "compressor", generatedAt: timestamp(), settings: measurement,
                                models: reports, paretoFronts: paretoFronts(reports, settings: measurement))
    }

    // MARK: - Steps

    static func validate(_ settings: ReportSettings, modelCount: Int) throws {
        guard modelCount > 0 else { throw ReportError.noModels }
        guard !settings.batches.isEmpty, settings.batches.allSatisfy({ $0 >= 1 }) else {
            throw ReportError.invalidSettings("batch sizes must be a non-empty list of positive integers")
        }
        guard !settings.threads.isEmpty, settings.threads.allSatisfy({ $0 >= 1 }) else {
            throw ReportError.invalidSettings("thread counts must be a non-empty list of positive integers")
        }
        if let limit = settings.testLimit, limit < 1 {
            throw ReportError.invalidSettings("the test limit must be at least 1, got \(limit)")
        }
    }

    static func checkShapes(_ models: [LoadedModel], data: LabeledImages) throws {
        for m in models where m.model.inputShape != data.sampleShape {
            throw ReportError.inputShapeMismatch(label: m.label, modelShape: m.model.inputShape,
                                                 dataShape: data.sampleShape)
        }
    }

    /// Latency of every model at every (threads, batch), threads outer; within
    /// a configuration the models run back to back so they see the same machine state.
    static func measureLatency(_ models: [LoadedModel], settings: ReportSettings,
                               progress: any ProgressReporting) throws -> [[LatencyMeasurement]] {
        var results = [[LatencyMeasurement]](repeating: [], count: models.count)
        let total = settings.threads.count * settings.batches.count * models.count
        progress.begin("latency", total: total)
        defer { progress.end() }
        var done = 0
        for threads in settings.threads {
            for batch in settings.batches {
                for (i, m) in models.enumerated() {
                    results[i].append(try m.namingRefusals { try settings.latency.measure(m.model, batch: batch, threads: threads) })
                    done += 1
                    progress.update(completed: done, detail: "\(m.label) batch \(batch), \(threads) threads")
                }
            }
        }
        return results
    }

    static func modelReport(_ m: LoadedModel, baseline: LoadedModel, latency: [LatencyMeasurement],
                            accuracy: AccuracyResult?, baselineAccuracy: AccuracyResult?) throws -> ModelReport {
        let summary = try ModelSummary(m.model)
        let sizes = ModelFile.encodedTensorSizes(m.model)
        let weightNames = convLinearWeightNames(m.model.graph)
        let weights = weightNames.reduce(0) { $0 + (m.model.graph.initializers[$1]?.count ?? 0) }
        let storage = weightNames.reduce(0) { $0 + (sizes[$1]?.bytes ?? 0) }
        return ModelReport(
            label: m.label, path: m.path, format: m.format, architecture: m.model.metadata.architecture,
            fileBytes: m.fileBytes, compressionRatio: Double(baseline.fileBytes) / Double(max(m.fileBytes, 1)),
            parameters: summary.parameters, nonZeroParameters: summary.nonZeroParameters,
            tensorBytes: sizes.values.reduce(0) { $0 + $1.bytes }, weights: weights, weightStorageBytes: storage,
            bitsPerWeight: weights > 0 ? 8 * Double(storage) / Double(weights) : nil, macsPerImage: summary.macs,
            latency: latency, accuracy: accuracy.map { accuracyReport($0, baseline: baselineAccuracy) },
            layers: try layerReports(m.model, sizes: sizes))
    }

    static func accuracyReport(_ a: AccuracyResult, baseline: AccuracyResult?) -> AccuracyReport {
        AccuracyReport(images: a.images, top1: a.top1, top5: a.top5,
                       top1Change: baseline.map { a.top1 - $0.top1 }, top5Change: baseline.map { a.top5 - $0.top5 })
    }

    static func measurementSettings(_ s: ReportSettings, testImages: Int?,
                                    validationImages: Int? = nil) -> ReportMeasurementSettings {
        ReportMeasurementSettings(batches: s.batches, threads: s.threads, warmupRuns: s.latency.warmupRuns,
                                  minRepetitions: s.latency.minRepetitions, minSeconds: s.latency.minSeconds,
                                  maxRepetitions: s.latency.maxRepetitions, chartBatch: s.batches[0],
                                  chartThreads: s.threads[0], testImages: testImages, validationImages: validationImages,
                                  evaluationThreads: evaluationThreads, machine: .current)
    }

    /// The Pareto fronts over the models that have an accuracy.
    static func paretoFronts(_ models: [ModelReport], settings: ReportMeasurementSettings) -> ParetoFronts {
        let rated = models.filter { $0.accuracy != nil }
        let sizeFront = ParetoFront.indices(costs: rated.map { Double($0.fileBytes) },
                                            values: rated.map { $0.accuracy!.top1 })
        let timed = rated.filter { $0.latency(batch: settings.chartBatch, threads: settings.chartThreads) != nil }
        let latencyFront = ParetoFront.indices(
            costs: timed.map { $0.latency(batch: settings.chartBatch, threads: settings.chartThreads)!.medianMs },
            values: timed.map { $0.accuracy!.top1 })
        return ParetoFronts(sizeVsAccuracy: sizeFront.map { rated[$0].label },
                            latencyVsAccuracy: latencyFront.map { timed[$0].label })
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }

    // MARK: - Layers

    /// Names of the initializers that are Conv or Linear weights (each once).
    static func convLinearWeightNames(_ g: Graph) -> [String] {
        var names: [String] = []
        for node in g.nodes {
            switch node.op {
            case .conv2d, .linear:
                if node.inputs.count > 1, g.initializers[node.inputs[1]] != nil, !names.contains(node.inputs[1]) {
                    names.append(node.inputs[1])
                }
            default: break
            }
        }
        return names
    }

    /// One row per node that reads initializers, in graph order.
    static func layerReports(_ model: Model, sizes: [String: EncodedTensorSize]) throws -> [LayerReport] {
        let g = model.graph
        let macs = try g.costReport().macsByNode
        let weightNames = g.nodes.compactMap { node in
            weightInput(of: node, in: g) ?? node.inputs.first { g.initializers[$0] != nil }
        }
        var costs: [String: TensorStorageCost] = [:]
        for cost in ModelFile.storageCosts(of: weightNames, in: model) { costs[cost.tensor] = cost }
        return g.nodes.compactMap { node in
            let tensors = node.inputs.filter { g.initializers[$0] != nil }
            guard let first = tensors.first else { return nil }
            let weightName = weightInput(of: node, in: g) ?? first
            let weight = g.initializers[weightName]!
            let all = tensors.map { g.initializers[$0]! }
            return LayerReport(name: node.name, op: node.op.kind, weightShape: weight.shape,
                               encoding: sizes[weightName]?.encoding
                                   ?? ModelFile.encodingName(of: weight, named: weightName, storage: model.metadata.storage),
                               computes: g.computePrecision(of: node, precisions: model.metadata.storage.precisions),
                               parameters: all.reduce(0) { $0 + $1.count },
                               nonZeros: all.reduce(0) { $0 + $1.nonZeroCount },
                               sparsity: weight.count > 0 ? 1 - Double(weight.nonZeroCount) / Double(weight.count) : 0,
                               rank: nil, macs: macs[node.name] ?? 0,
                               bytes: tensors.reduce(0) { $0 + (sizes[$1]?.bytes ?? 0) }, storage: costs[weightName]!)
        }
    }

    /// The Conv/Linear weight initializer `node` reads, if it is one.
    static func weightInput(of node: Node, in g: Graph) -> String? {
        switch node.op {
        case .conv2d, .linear:
            node.inputs.count > 1 && g.initializers[node.inputs[1]] != nil ? node.inputs[1] : nil
        default: nil
        }
    }
}

/// A model read for a report, with the facts about its file.
struct LoadedModel {
    var label: String
    var path: String
    var model: Model
    var fileBytes: Int
    /// "native" or "onnx".
    var format: String

    init(label: String, path: String) throws {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
            model = try ModelLoader.decode(bytes)
        } catch {
            throw ReportError.unreadableModel(path: path, reason: String(describing: error))
        }
        self.label = label; self.path = path; fileBytes = bytes.count
        format = bytes.starts(with: FileHeader.magic.prefix(4)) ? "native" : "onnx"
    }

    /// Runs `work` on this model; a memory-budget refusal becomes `ReportError.exceedsMemoryBudget` naming the file.
    func namingRefusals<T>(_ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch let refusal as MemoryBudgetExceeded {
            throw ReportError.exceedsMemoryBudget(path: path, refusal)
        }
    }
}

extension MachineInfo {
    /// The machine this process runs on.
    public static var current: MachineInfo {
        let info = ProcessInfo.processInfo
        return MachineInfo(cores: info.activeProcessorCount, cpu: cpuModelName(), simdKernels: cpuSupportsBlockedKernels,
                           operatingSystem: info.operatingSystemVersionString, memoryBytes: Int(info.physicalMemory))
    }

    /// The first "model name" line of /proc/cpuinfo.
    static func cpuModelName() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line?.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
