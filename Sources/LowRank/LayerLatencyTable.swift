import CBLAS
import Compress
import Foundation

/// The measured latencies `lowrank --target-latency` chooses ranks from, and
/// `--require-reduction latency` compares: for every budgeted or checked
/// layer, the dense layer and each candidate factor chain, each run alone on
/// the layer's input shape, with the machine and settings they were measured
/// with.
///
/// Written to `latency-table` when that file does not exist; read from it,
/// with nothing timed, when it does, so given the table the choice and the
/// output are reproducible. A table that lacks an entry the run needs, or was
/// measured for another method, batch or thread count, is refused.
public struct LayerLatencyTable: Sendable, Equatable, Codable {
    /// What `format` says, so that another JSON file is not taken for a table.
    public static let formatName = "compressor lowrank latency table"
    /// The version this build writes and the newest it reads.
    public static let currentVersion = 1

    /// One layer at one choice of ranks.
    public struct Entry: Sendable, Equatable, Codable {
        /// The layer's node name.
        public var layer: String
        /// The factor chain's ranks (`[r]`, or `[inputRank, outputRank]` for
        /// Tucker-2); empty for the dense layer.
        public var ranks: [Int]
        /// Median milliseconds per batch.
        public var ms: Double

        public init(layer: String, ranks: [Int], ms: Double) {
            self.layer = layer; self.ranks = ranks; self.ms = ms
        }
    }

    public var format: String = formatName
    public var version: Int = currentVersion
    /// The `lowrank` method the chains belong to.
    public var method: String
    public var batch: Int
    public var threads: Int
    /// The CPU's model name, when known (informational).
    public var cpu: String?
    /// The convolution kernels the runtime had: "avx2-fma blocked" or "portable" (informational).
    public var kernels: String
    /// In the order measured.
    public var entries: [Entry]

    public init(method: String, batch: Int, threads: Int, cpu: String?, kernels: String, entries: [Entry] = []) {
        self.method = method; self.batch = batch; self.threads = threads
        self.cpu = cpu; self.kernels = kernels; self.entries = entries
    }

    /// The recorded latency of `layer` at `ranks`, if any.
    public func milliseconds(layer: String, ranks: [Int]) -> Double? {
        entries.first { $0.layer == layer && $0.ranks == ranks }?.ms
    }

    /// The table as pretty JSON with sorted keys (the same table, the same text).
    public func json() throws -> String { try LatencyTableFile.json(self) }

    /// A table from its JSON text, or why the text is not one.
    public init(json text: String) throws(LatencyTableError) {
        let table = try LatencyTableFile.decode(LayerLatencyTable.self, json: text)
        try LatencyTableFile.checkHeader(format: table.format, version: table.version, expectedFormat: Self.formatName,
                                         currentVersion: Self.currentVersion)
        guard table.entries.allSatisfy({ $0.ms.isFinite && $0.ms >= 0 }) else {
            throw .notATable("a latency is negative or not finite")
        }
        self = table
    }

    /// The table in the JSON file at `path`.
    public static func read(path: String) throws(LatencyTableError) -> LayerLatencyTable {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable }
        guard let text = String(data: data, encoding: .utf8) else { throw .notJSON }
        return try LayerLatencyTable(json: text)
    }

    /// The machine's convolution kernels, as `kernels` names them.
    static var machineKernels: String { MachineInfo.current.simdKernels ? "avx2-fma blocked" : "portable" }
}

extension LowRankPass {
    /// Sets each candidate's cost of `layers` to its latency: read from the
    /// table at `tablePath` when that file exists, else measured (each chain
    /// and the dense layer built as a graph of their own on the layer's input
    /// shape, seeded weights, timed by `context.latency` on 1 thread at
    /// `batch`, with a tenth of its minimum time, as `bench --layers` times
    /// steps) and, when `tablePath` is given, written there atomically.
    ///
    /// - Returns: where the latencies come from, the same words whether the
    ///   table was read or written (so both runs record the same history);
    ///   `context.log` says which.
    func setLatencies(_ layers: inout [BudgetLayer], nodes: [Node], inputShapes: [[Int]], graph: Graph, batch: Int,
                      tablePath: String?, context: PassContext) throws -> String {
        let threads = 1
        if let tablePath, FileManager.default.fileExists(atPath: tablePath) {
            let table: LayerLatencyTable
            do { table = try LayerLatencyTable.read(path: tablePath) } catch {
                throw ParameterError(pass: Self.name, problems: ["latency-table '\(tablePath)': \(error)"])
            }
            guard table.method == method.rawValue, table.batch == batch, table.threads == threads else {
                throw ParameterError(pass: Self.name, problems: [
                    "latency-table '\(tablePath)' was measured for \(table.method) at batch \(table.batch), \(table.threads) thread(s); "
                        + "this run needs \(method.rawValue) at batch \(batch), \(threads) thread(s)"])
            }
            for l in layers.indices {
                for c in layers[l].candidates.indices {
                    let ranks = layers[l].candidates[c].ranks
                    guard let ms = table.milliseconds(layer: layers[l].name, ranks: ranks) else {
                        throw ParameterError(pass: Self.name, problems: [
                            "latency-table '\(tablePath)' has no entry for layer '\(layers[l].name)' at ranks "
                                + "[\(ranks.map(String.init).joined(separator: ", "))] ([] is the dense layer); "
                                + "delete it to measure again"])
                    }
                    layers[l].candidates[c].cost = ms
                }
            }
            context.log("lowrank: \(table.entries.count) latencies read from \(tablePath), nothing timed")
            return "from the table \(tablePath)"
        }
        // Timing plans sessions, which set BLAS to one thread process-wide;
        // the factorizations after this run under the caller's setting again,
        // as they do when the table is read, so both runs write the same weights.
        let blasThreads = openblas_get_num_threads()
        defer { openblas_set_num_threads(blasThreads) }
        var benchmark = context.latency
        if var b = benchmark as? LatencyBenchmark {
            b.minSeconds /= 10
            benchmark = b
        }
        var table = LayerLatencyTable(method: method.rawValue, batch: batch, threads: threads,
                                      cpu: MachineInfo.current.cpu, kernels: LayerLatencyTable.machineKernels)
        for l in layers.indices {
            let node = nodes[l]
            let weight = graph.initializers[node.inputs[1]]!
            var attributes = Conv2d()
            if case .conv2d(let a) = node.op { attributes = a }
            for c in layers[l].candidates.indices {
                try context.checkCancellation()
                let ranks = layers[l].candidates[c].ranks
                let chain = ranks.isEmpty ? [(op: node.op, weight: weight.shape)]
                    : Self.chainShape(method, shape: weight.shape, attributes: attributes, ranks: ranks)
                let model = Self.standaloneModel(chain, inputShape: inputShapes[l])
                let ms = try benchmark.measure(model, batch: batch, threads: threads).medianMs
                layers[l].candidates[c].cost = ms
                table.entries.append(.init(layer: layers[l].name, ranks: ranks, ms: ms))
            }
        }
        guard let tablePath else { return "measured" }
        try writeFileAtomically(Array(try table.json().utf8), to: tablePath)
        context.log("lowrank: \(table.entries.count) latencies measured and written to \(tablePath)")
        return "from the table \(tablePath)"
    }

    /// A model of `chain` alone on an input of `inputShape` (batch included):
    /// seeded weights in [-1, 1], a zero bias on the last layer.
    static func standaloneModel(_ chain: [(op: Op, weight: [Int])], inputShape: [Int]) -> Model {
        var rng = SeededGenerator(seed: 0)
        var nodes: [Node] = [], initializers: [String: Tensor] = [:]
        var previous = "x"
        for (k, layer) in chain.enumerated() {
            let name = "f\(k + 1)"
            initializers[name + ".weight"] = rng.uniformTensor(layer.weight, in: -1...1)
            var inputs = [previous, name + ".weight"]
            if k == chain.count - 1 {
                initializers[name + ".bias"] = Tensor(shape: [layer.weight[0]], floats: [Float](repeating: 0, count: layer.weight[0]))
                inputs.append(name + ".bias")
            }
            nodes.append(Node(name: name, op: layer.op, inputs: inputs, output: name))
            previous = name
        }
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: Array(inputShape.dropFirst()))], outputs: [previous],
                          nodes: nodes, initializers: initializers)
        return Model(graph: graph)
    }
}
