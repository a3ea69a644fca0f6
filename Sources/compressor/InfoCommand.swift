import ArgumentParser
import Compress
import Foundation

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a model's layers: op, output shape, parameters, MACs and bytes by encoding.")

    @Argument(help: ArgumentHelp("Model file.", valueName: "model"))
    var model: String

    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let m = try loadModel(model)
        let report = try InfoReport(model: m, path: model)
        if outputOptions.json { try printJSON(report) } else { print(report.text) }
    }
}

/// What `info` shows, also as JSON.
struct InfoReport: Encodable {
    struct Layer: Encodable {
        var name: String
        var op: String
        var outputShape: [Int]
        var parameters: Int
        var nonZeros: Int
        var macs: Int
        /// Bytes the layer's tensors take in the file, by encoding name.
        var bytes: [String: Int]
    }
    /// How one hashed tensor (HashedNets) is stored: its virtual weights,
    /// buckets and seed, its encoding and the bits it takes per virtual weight.
    struct HashedTensorInfo: Encodable {
        var tensor: String
        var weights: Int
        var buckets: Int
        var seed: UInt64
        /// Virtual weights per bucket.
        var compression: Double
        var encoding: String
        var bytes: Int
        var bitsPerWeight: Double
    }
    struct HistoryItem: Encodable {
        var pass: String
        var parameters: [String: String]
        var seed: UInt64?
        var metrics: [String: Double]
    }
    var file: String
    var fileBytes: Int
    var architecture: String?
    var inputShape: [Int]
    var classes: [String]
    var parameters: Int
    var nonZeros: Int
    var macs: Int
    var weightBytes: Int
    var layers: [Layer]
    /// Weight-shared tensors: encoding and bits per weight, with and without
    /// Huffman coding (absent for a model without any).
    var sharedTensors: [TensorStorageCost]?
    var huffman: Bool?
    /// Hashed tensors (absent for a model without any).
    var hashedTensors: [HashedTensorInfo]?
    /// Values the file stores: parameters with each hashed tensor counted as its buckets (absent without hashed tensors).
    var storedParameters: Int?
    /// Tensors stored narrower than float32 (absent for a model without any).
    var precisions: [PrecisionRow]?
    /// Activation quantizers (absent for a model without any).
    var activationQuantizers: [ActivationRow]?
    var history: [HistoryItem]

    init(model: Model, path: String) throws {
        let g = model.graph
        let shapes = try g.inferShapes(batch: 1)
        let macsByNode = try g.costReport().macsByNode
        let sizes = ModelFile.encodedTensorSizes(model)
        file = path
        fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        architecture = model.metadata.architecture
        inputShape = model.inputShape
        classes = model.metadata.classNames
        layers = g.nodes.map { node in
            let weights = node.inputs.filter { g.initializers[$0] != nil }
            var bytes: [String: Int] = [:]
            for w in weights { if let s = sizes[w] { bytes[s.encoding, default: 0] += s.bytes } }
            let tensors = weights.compactMap { g.initializers[$0] }
            return Layer(name: node.name, op: node.op.kind, outputShape: Array((shapes[node.output] ?? []).dropFirst()),
                         parameters: tensors.reduce(0) { $0 + $1.count },
                         nonZeros: tensors.reduce(0) { $0 + $1.nonZeroCount },
                         macs: macsByNode[node.name] ?? 0, bytes: bytes)
        }
        let summary = try ModelSummary(model)
        parameters = summary.parameters
        nonZeros = summary.nonZeroParameters
        macs = summary.macs
        weightBytes = sizes.values.reduce(0) { $0 + $1.bytes }
        let storage = model.metadata.storage
        if !storage.sharedTensors.isEmpty {
            huffman = storage.huffman
            sharedTensors = ModelFile.storageCosts(of: storage.sharedTensors, in: model)
        }
        if !storage.hashedTensors.isEmpty {
            hashedTensors = storage.hashedTensors.keys.sorted().compactMap { name in
                guard let t = g.initializers[name], let size = sizes[name], let hashed = storage.hashedTensors[name] else {
                    return nil
                }
                return HashedTensorInfo(tensor: name, weights: t.count, buckets: hashed.buckets, seed: hashed.seed,
                                        compression: Double(t.count) / Double(hashed.buckets), encoding: size.encoding,
                                        bytes: size.bytes, bitsPerWeight: TensorStorageCost.bits(size.bytes, per: t.count))
            }
            storedParameters = parameters - hashedTensors!.reduce(0) { $0 + $1.weights - $1.buckets }
        }
        precisions = Self.precisionRows(model, sizes: sizes)
        activationQuantizers = Self.activationRows(g)
        history = model.metadata.history.map {
            HistoryItem(pass: $0.pass, parameters: $0.parameters, seed: $0.seed, metrics: $0.metrics)
        }
    }

    var text: String {
        let rows = layers.map { l in
            [l.name, l.op, l.outputShape.map(String.init).joined(separator: "x"),
             l.parameters == 0 ? "" : ReportFormat.grouped(l.parameters), l.macs == 0 ? "" : ReportFormat.grouped(l.macs),
             l.bytes.keys.sorted().map { "\($0) \(ReportFormat.grouped(l.bytes[$0]!))" }.joined(separator: ", ")]
        }
        var out = "\(file): \(architecture ?? "model"), input \(inputShape.map(String.init).joined(separator: "x")), \(classes.count) classes\n\n"
        out += formatTable(["layer", "op", "output", "params", "MACs", "bytes"], rows)
        out += "\n\nparameters  \(ReportFormat.grouped(parameters)) (\(ReportFormat.grouped(nonZeros)) non-zero"
            + (storedParameters.map { ", \(ReportFormat.grouped($0)) stored: hashed tensors as their buckets" } ?? "") + ")"
        out += "\nMACs/image  \(ReportFormat.grouped(macs))"
        out += "\nweights     \(ReportFormat.bytes(weightBytes)) in tensors, file \(ReportFormat.bytes(fileBytes)) (\(ReportFormat.grouped(fileBytes)) bytes)"
        if let sharedTensors {
            let rows = sharedTensors.map { t in
                [t.tensor, ReportFormat.grouped(t.weights), ReportFormat.grouped(t.nonZeros), t.encoding,
                 ReportFormat.grouped(t.bytes), String(format: "%.2f", t.bitsPerWeight), String(format: "%.2f", t.bitsPerNonZero)]
                    + (huffman == true ? [t.withoutHuffman.map { "\(ReportFormat.grouped($0.bytes)) (\(String(format: "%.2f", t.bitsPerNonZeroWithoutHuffman ?? 0)))" } ?? ""] : [])
            }
            out += "\n\nweight sharing (codebooks\(huffman == true ? ", Huffman coding allowed" : "")):\n"
            out += formatTable(["tensor", "weights", "non-zero", "encoding", "bytes", "bits/weight", "bits/non-zero"]
                               + (huffman == true ? ["without Huffman: bytes (bits/non-zero)"] : []), rows)
        }
        if let hashedTensors {
            let rows = hashedTensors.map { t in
                [t.tensor, ReportFormat.grouped(t.weights), ReportFormat.grouped(t.buckets),
                 String(format: "%.2fx", t.compression), t.encoding, ReportFormat.grouped(t.bytes),
                 String(format: "%.2f", t.bitsPerWeight)]
            }
            out += "\n\nhashed weights (HashedNets: virtual weights drawn from buckets by a seeded hash):\n"
            out += formatTable(["tensor", "weights", "buckets", "compression", "encoding", "bytes", "bits/weight"], rows)
        }
        if let precisions { out += Self.precisionText(precisions) }
        if let activationQuantizers { out += Self.activationText(activationQuantizers) }
        if !history.isEmpty {
            out += "\n\nhistory:"
            for h in history {
                let shown = h.parameters.filter { !($0.key == "seed" && h.seed != nil) }
                let params = shown.keys.sorted().map { "\($0)=\(shown[$0]!)" }.joined(separator: " ")
                let metrics = h.metrics.keys.sorted().map { "\($0)=\(formatMetric(h.metrics[$0]!))" }.joined(separator: " ")
                out += "\n  \(h.pass) \(params)\(h.seed.map { " seed=\($0)" } ?? "")"
                if !metrics.isEmpty { out += "\n    -> \(metrics)" }
            }
        }
        return out
    }
}
