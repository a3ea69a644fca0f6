/// Per-channel input normalization applied before the graph: `(x - mean) / std`.
/// Pixels reach the model scaled to [0, 1]; the model owns its normalization.
public struct Normalization: Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]
    public init(mean: [Float], std: [Float]) { self.mean = mean; self.std = std }
}

/// One step of a model's history: what produced or transformed it, with
/// deterministic numbers only (no dates, no latencies), so files are reproducible.
public struct HistoryEntry: Sendable, Equatable {
    public var pass: String
    /// Parameters as given, by kebab-case name.
    public var parameters: [String: String]
    public var seed: UInt64?
    /// Deterministic metrics, e.g. "params", "macs", "bytes", "test-accuracy".
    public var metrics: [String: Double]
    /// Documents the pass based its choices on, by name, to review or replay
    /// (e.g. "latency-table": the JSON latencies a latency target was met with).
    public var attachments: [String: String]

    public init(pass: String, parameters: [String: String] = [:], seed: UInt64? = nil, metrics: [String: Double] = [:],
                attachments: [String: String] = [:]) {
        self.pass = pass; self.parameters = parameters; self.seed = seed; self.metrics = metrics
        self.attachments = attachments
    }
}

/// How a model's tensors may be stored, recorded in the model so every later
/// step keeps the choice (values always stay float32 in memory; the writer
/// picks, per tensor, the smallest encoding these options allow).
public struct StorageOptions: Sendable, Equatable {
    /// Initializers tied to a codebook by weight sharing (Han et al., "Deep
    /// Compression", ICLR 2016): each holds at most 256 distinct values and is
    /// stored with a codebook encoding where that is smaller; fine-tuning keeps
    /// them tied. Sorted.
    public var sharedTensors: [String]
    /// Huffman-code the index and position streams of tensors where that is smaller.
    public var huffman: Bool
    /// Initializers drawn from a bucket vector by a seeded hash (HashedNets,
    /// Chen et al., ICML 2015; see ``HashedLayout``), by name: each is stored
    /// as its buckets and seed while its values are consistent with the
    /// layout, and fine-tuning keeps them tied to their buckets.
    public var hashedTensors: [String: HashedTensor]
    /// Initializers stored narrower than float32 (quantization), by name;
    /// each holds exactly the values its precision stores.
    public var precisions: [String: TensorPrecision]

    public init(sharedTensors: [String] = [], huffman: Bool = false, hashedTensors: [String: HashedTensor] = [:],
                precisions: [String: TensorPrecision] = [:]) {
        self.sharedTensors = sharedTensors.sorted(); self.huffman = huffman; self.hashedTensors = hashedTensors
        self.precisions = precisions
    }
}

/// What a model carries besides its graph.
public struct ModelMetadata: Sendable, Equatable {
    /// Built-in architecture name, if it came from one.
    public var architecture: String?
    public var normalization: Normalization?
    public var classNames: [String]
    public var history: [HistoryEntry]
    /// Which storage encodings the model's tensors may use beyond dense and sparse float32.
    public var storage: StorageOptions

    public init(architecture: String? = nil, normalization: Normalization? = nil,
                classNames: [String] = [], history: [HistoryEntry] = [], storage: StorageOptions = StorageOptions()) {
        self.architecture = architecture; self.normalization = normalization
        self.classNames = classNames; self.history = history; self.storage = storage
    }
}

/// A graph with its metadata: the unit passes transform and files store.
public struct Model: Sendable, Equatable {
    public var graph: Graph
    public var metadata: ModelMetadata

    public init(graph: Graph, metadata: ModelMetadata = ModelMetadata()) {
        self.graph = graph; self.metadata = metadata
    }

    /// Shape of one input sample, e.g. `[1, 28, 28]`.
    public var inputShape: [Int] { graph.inputs.first?.sampleShape ?? [] }
}
