/// A comparison of models in file size, counts, latency and accuracy: what
/// `compressor report` and `compressor run` write as JSON, Markdown and HTML.
///
/// The JSON form is this type encoded with sorted keys; its schema is
/// described field by field in `docs/report-schema.md` and versioned by
/// `schemaVersion`.
public struct ComparisonReport: Sendable, Equatable, Codable {
    /// The schema version this build writes. Raise it when a field changes
    /// meaning or is removed; adding a field keeps the version.
    public static let currentSchemaVersion = 1

    /// Version of the JSON schema (`currentSchemaVersion` when written by this build).
    public var schemaVersion: Int
    /// What wrote the report, e.g. "compressor 0.1.0".
    public var generator: String
    /// When the measurements were taken, ISO 8601 in UTC.
    public var generatedAt: String
    /// How latency and accuracy were measured, and on what machine.
    public var settings: ReportMeasurementSettings
    /// The meaning of every metric, by field name (see `ReportDefinitions`).
    public var definitions: [String: String]
    /// One entry per model, in the order given; the first is the baseline.
    public var models: [ModelReport]
    /// Labels of the models on each Pareto front.
    public var paretoFronts: ParetoFronts
    /// A per-layer sensitivity analysis shown with the comparison, when one was given.
    public var sensitivity: SensitivityReport?

    public init(schemaVersion: Int = ComparisonReport.currentSchemaVersion, generator: String, generatedAt: String,
                settings: ReportMeasurementSettings, definitions: [String: String] = ReportDefinitions.dictionary,
                models: [ModelReport], paretoFronts: ParetoFronts) {
        self.schemaVersion = schemaVersion; self.generator = generator; self.generatedAt = generatedAt
        self.settings = settings; self.definitions = definitions; self.models = models
        self.paretoFronts = paretoFronts
    }

    /// The model every ratio and accuracy change is relative to.
    public var baseline: ModelReport? { models.first }
}

/// The models on the Pareto fronts the charts draw: no other model is both at
/// most as costly and at least as accurate, and strictly better in one of the two.
public struct ParetoFronts: Sendable, Equatable, Codable {
    /// Front of file bytes (smaller is better) against top-1 accuracy.
    public var sizeVsAccuracy: [String]
    /// Front of median latency at `ReportMeasurementSettings.chartBatch` and
    /// `chartThreads` against top-1 accuracy.
    public var latencyVsAccuracy: [String]

    public init(sizeVsAccuracy: [String], latencyVsAccuracy: [String]) {
        self.sizeVsAccuracy = sizeVsAccuracy; self.latencyVsAccuracy = latencyVsAccuracy
    }
}

/// How the report's measurements were taken.
public struct ReportMeasurementSettings: Sendable, Equatable, Codable {
    /// Batch sizes latency was measured at.
    public var batches: [Int]
    /// Thread counts latency was measured with.
    public var threads: [Int]
    /// Untimed runs before timing each configuration.
    public var warmupRuns: Int
    /// Minimum timed runs per configuration.
    public var minRepetitions: Int
    /// Minimum timed seconds per configuration.
    public var minSeconds: Double
    /// Maximum timed runs per configuration.
    public var maxRepetitions: Int
    /// The batch size and thread count the latency chart and summary use.
    public var chartBatch: Int
    public var chartThreads: Int
    /// Test images accuracy was measured on (nil when no test data was given).
    public var testImages: Int?
    /// Validation images accuracy was also measured on (nil when not asked):
    /// the last images of the training data, the split `train` and `finetune` choose by.
    public var validationImages: Int?
    /// Threads used for accuracy (as `compressor eval` by default).
    public var evaluationThreads: Int
    /// The machine the numbers come from.
    public var machine: MachineInfo

    public init(batches: [Int], threads: [Int], warmupRuns: Int, minRepetitions: Int, minSeconds: Double,
                maxRepetitions: Int, chartBatch: Int, chartThreads: Int, testImages: Int?,
                validationImages: Int? = nil, evaluationThreads: Int, machine: MachineInfo) {
        self.batches = batches; self.threads = threads; self.warmupRuns = warmupRuns
        self.minRepetitions = minRepetitions; self.minSeconds = minSeconds; self.maxRepetitions = maxRepetitions
        self.chartBatch = chartBatch; self.chartThreads = chartThreads; self.testImages = testImages
        self.validationImages = validationImages; self.evaluationThreads = evaluationThreads; self.machine = machine
    }
}

/// The machine measurements ran on.
public struct MachineInfo: Sendable, Equatable, Codable {
    /// Logical cores the process may use.
    public var cores: Int
    /// The CPU's model name from /proc/cpuinfo, when readable.
    public var cpu: String?
    /// Whether the AVX2+FMA convolution kernels were available.
    public var simdKernels: Bool
    /// Operating system version.
    public var operatingSystem: String
    /// Physical memory in bytes.
    public var memoryBytes: Int

    public init(cores: Int, cpu: String?, simdKernels: Bool, operatingSystem: String, memoryBytes: Int) {
        self.cores = cores; self.cpu = cpu; self.simdKernels = simdKernels
        self.operatingSystem = operatingSystem; self.memoryBytes = memoryBytes
    }
}

/// Everything the report says about one model.
public struct ModelReport: Sendable, Equatable, Codable {
    /// Name shown in tables and charts.
    public var label: String
    /// The model file as given.
    public var path: String
    /// "native" or "onnx".
    public var format: String
    /// Built-in architecture name, when the model came from one.
    public var architecture: String?
    /// Bytes of the file on disk.
    public var fileBytes: Int
    /// Baseline file bytes / this file's bytes (1 for the baseline).
    public var compressionRatio: Double
    /// Elements of all initializers (as `info`'s "parameters").
    public var parameters: Int
    /// Non-zero elements of all initializers (as `info`'s "nonZeros").
    public var nonZeroParameters: Int
    /// Bytes of all initializers' records in the file (as `info`'s "weightBytes").
    public var tensorBytes: Int
    /// Elements of the Conv and Linear weight tensors, counted dense.
    public var weights: Int
    /// Bytes storing those weight tensors, indices, codebooks and tables included.
    public var weightStorageBytes: Int
    /// 8 × `weightStorageBytes` / `weights`; nil when the model has no Conv or Linear weights.
    public var bitsPerWeight: Double?
    /// Conv and Linear multiply-accumulates for one image (as `info`'s "macs").
    public var macsPerImage: Int
    /// One measurement per (threads, batch), threads outer.
    public var latency: [LatencyMeasurement]
    /// Accuracy on the test split; nil when no test data was given.
    public var accuracy: AccuracyReport?
    /// Accuracy on the validation split; nil when not asked for.
    public var validationAccuracy: AccuracyReport?
    /// Layers that read initializers, in graph order.
    public var layers: [LayerReport]

    public init(label: String, path: String, format: String, architecture: String?, fileBytes: Int,
                compressionRatio: Double, parameters: Int, nonZeroParameters: Int, tensorBytes: Int, weights: Int,
                weightStorageBytes: Int, bitsPerWeight: Double?, macsPerImage: Int, latency: [LatencyMeasurement],
                accuracy: AccuracyReport?, validationAccuracy: AccuracyReport? = nil, layers: [LayerReport]) {
        self.label = label; self.path = path; self.format = format; self.architecture = architecture
        self.fileBytes = fileBytes; self.compressionRatio = compressionRatio; self.parameters = parameters
        self.nonZeroParameters = nonZeroParameters; self.tensorBytes = tensorBytes; self.weights = weights
        self.weightStorageBytes = weightStorageBytes; self.bitsPerWeight = bitsPerWeight
        self.macsPerImage = macsPerImage; self.latency = latency; self.accuracy = accuracy
        self.validationAccuracy = validationAccuracy; self.layers = layers
    }

    /// The latency measured at `batch` images and `threads` threads, if any.
    public func latency(batch: Int, threads: Int) -> LatencyMeasurement? {
        latency.first { $0.batch == batch && $0.threads == threads }
    }
}

/// Top-1 and top-5 accuracy on one split (test or validation) and their
/// change vs the baseline on the same split.
public struct AccuracyReport: Sendable, Equatable, Codable {
    /// Images evaluated.
    public var images: Int
    /// Fractions in [0, 1], as `compressor eval --json` prints them.
    public var top1: Double
    public var top5: Double
    /// This model's value minus the baseline's, as a fraction (0.01 = one
    /// percentage point); nil when the baseline has no accuracy.
    public var top1Change: Double?
    public var top5Change: Double?

    public init(images: Int, top1: Double, top5: Double, top1Change: Double?, top5Change: Double?) {
        self.images = images; self.top1 = top1; self.top5 = top5
        self.top1Change = top1Change; self.top5Change = top5Change
    }
}

/// One layer that reads initializers.
public struct LayerReport: Sendable, Equatable, Codable {
    /// Node name.
    public var name: String
    /// Op kind, e.g. "Conv2d".
    public var op: String
    /// Shape of the layer's weight: the Conv/Linear weight, else its first initializer.
    public var weightShape: [Int]
    /// How the weight is stored, e.g. "dense-float32".
    public var encoding: String
    /// What a runtime executing the exported graph computes the layer in
    /// (`Graph.computePrecision`), e.g. "int8 x uint8" or "float32".
    public var computes: String
    /// Elements of every initializer the layer reads (as `info`'s layer "parameters").
    public var parameters: Int
    /// Non-zero elements of those initializers (as `info`'s layer "nonZeros").
    public var nonZeros: Int
    /// Fraction of zero elements in the weight tensor, in [0, 1].
    public var sparsity: Double
    /// Rank of a low-rank factorized weight; nil for a dense layer.
    public var rank: Int?
    /// Multiply-accumulates for one image.
    public var macs: Int
    /// File bytes of every initializer the layer reads (the sum of `info`'s layer "bytes").
    public var bytes: Int
    /// The weight tensor's initializer name.
    public var weightTensor: String
    /// File bytes of the weight tensor alone: values plus any indices,
    /// codebook and Huffman tables, and its record.
    public var weightBytes: Int
    /// 8 × `weightBytes` / elements of the weight tensor.
    public var bitsPerWeight: Double
    /// 8 × `weightBytes` / non-zero elements of the weight tensor.
    public var bitsPerNonZero: Double
    /// When the model allows Huffman coding: how the weight would be stored without it; nil otherwise.
    public var withoutHuffman: EncodingCost?

    public init(name: String, op: String, weightShape: [Int], encoding: String, computes: String = "float32",
                parameters: Int, nonZeros: Int, sparsity: Double, rank: Int?, macs: Int, bytes: Int,
                storage: TensorStorageCost) {
        self.name = name; self.op = op; self.weightShape = weightShape; self.encoding = encoding
        self.computes = computes
        self.parameters = parameters; self.nonZeros = nonZeros; self.sparsity = sparsity; self.rank = rank
        self.macs = macs; self.bytes = bytes
        weightTensor = storage.tensor; weightBytes = storage.bytes
        bitsPerWeight = storage.bitsPerWeight; bitsPerNonZero = storage.bitsPerNonZero
        withoutHuffman = storage.withoutHuffman.map { plain in
            EncodingCost(encoding: plain.encoding, bytes: plain.bytes,
                         bitsPerWeight: TensorStorageCost.bits(plain.bytes, per: storage.weights),
                         bitsPerNonZero: TensorStorageCost.bits(plain.bytes, per: storage.nonZeros))
        }
    }
}

/// One way of storing a tensor and what it costs.
public struct EncodingCost: Sendable, Equatable, Codable {
    /// The encoding's name, e.g. "sparse-codebook/4-bit/5-bit".
    public var encoding: String
    /// Bytes of the tensor's record in that encoding.
    public var bytes: Int
    /// 8 × `bytes` / elements.
    public var bitsPerWeight: Double
    /// 8 × `bytes` / non-zero elements.
    public var bitsPerNonZero: Double

    public init(encoding: String, bytes: Int, bitsPerWeight: Double, bitsPerNonZero: Double) {
        self.encoding = encoding; self.bytes = bytes; self.bitsPerWeight = bitsPerWeight
        self.bitsPerNonZero = bitsPerNonZero
    }
}

// Optional fields are written as an explicit `null` rather than left out, so
// every field the schema documents is present in every report.

extension ReportMeasurementSettings {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(batches, forKey: .batches); try c.encode(threads, forKey: .threads)
        try c.encode(warmupRuns, forKey: .warmupRuns); try c.encode(minRepetitions, forKey: .minRepetitions)
        try c.encode(minSeconds, forKey: .minSeconds); try c.encode(maxRepetitions, forKey: .maxRepetitions)
        try c.encode(chartBatch, forKey: .chartBatch); try c.encode(chartThreads, forKey: .chartThreads)
        try c.encode(testImages, forKey: .testImages)
        try c.encode(validationImages, forKey: .validationImages); try c.encode(evaluationThreads, forKey: .evaluationThreads)
        try c.encode(machine, forKey: .machine)
    }
}

extension MachineInfo {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cores, forKey: .cores); try c.encode(cpu, forKey: .cpu)
        try c.encode(simdKernels, forKey: .simdKernels); try c.encode(operatingSystem, forKey: .operatingSystem)
        try c.encode(memoryBytes, forKey: .memoryBytes)
    }
}

extension ModelReport {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(label, forKey: .label); try c.encode(path, forKey: .path); try c.encode(format, forKey: .format)
        try c.encode(architecture, forKey: .architecture); try c.encode(fileBytes, forKey: .fileBytes)
        try c.encode(compressionRatio, forKey: .compressionRatio); try c.encode(parameters, forKey: .parameters)
        try c.encode(nonZeroParameters, forKey: .nonZeroParameters); try c.encode(tensorBytes, forKey: .tensorBytes)
        try c.encode(weights, forKey: .weights); try c.encode(weightStorageBytes, forKey: .weightStorageBytes)
        try c.encode(bitsPerWeight, forKey: .bitsPerWeight); try c.encode(macsPerImage, forKey: .macsPerImage)
        try c.encode(latency, forKey: .latency); try c.encode(accuracy, forKey: .accuracy)
        try c.encode(validationAccuracy, forKey: .validationAccuracy); try c.encode(layers, forKey: .layers)
    }
}

extension AccuracyReport {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(images, forKey: .images); try c.encode(top1, forKey: .top1); try c.encode(top5, forKey: .top5)
        try c.encode(top1Change, forKey: .top1Change); try c.encode(top5Change, forKey: .top5Change)
    }
}

extension LayerReport {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name); try c.encode(op, forKey: .op); try c.encode(weightShape, forKey: .weightShape)
        try c.encode(encoding, forKey: .encoding); try c.encode(computes, forKey: .computes)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(nonZeros, forKey: .nonZeros); try c.encode(sparsity, forKey: .sparsity)
        try c.encode(rank, forKey: .rank); try c.encode(macs, forKey: .macs); try c.encode(bytes, forKey: .bytes)
        try c.encode(weightTensor, forKey: .weightTensor); try c.encode(weightBytes, forKey: .weightBytes)
        try c.encode(bitsPerWeight, forKey: .bitsPerWeight); try c.encode(bitsPerNonZero, forKey: .bitsPerNonZero)
        try c.encode(withoutHuffman, forKey: .withoutHuffman)
    }
}
