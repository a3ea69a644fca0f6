/// One ONNX node the importer cannot represent, and why.
public struct UnsupportedONNXNode: Sendable, Equatable, CustomStringConvertible {
    /// The node's name (or the name the importer gave an unnamed node).
    public var node: String
    /// The node's `op_type`.
    public var opType: String
    /// What about it is unsupported, e.g. "auto_pad VALID with dilations" or "op type not supported".
    public var reason: String

    public init(node: String, opType: String, reason: String) {
        self.node = node; self.opType = opType; self.reason = reason
    }

    public var description: String { "'\(node)' (\(opType)): \(reason)" }
}

/// Why an ONNX file could not be imported. Each description is one line for
/// the command line; `unsupported` lists every offending node at once.
public enum ONNXImportError: Error, Equatable, CustomStringConvertible {
    /// The bytes are not a valid protobuf `ModelProto`.
    case malformed
    /// The model has no graph.
    case missingGraph
    /// The graph has no inputs besides its initializers, or no outputs.
    case noInputs
    /// The graph has no outputs.
    case noOutputs
    /// No opset for the default ONNX domain, or one outside the supported range.
    case unsupportedOpset(version: Int?)
    /// A tensor keeps its data in an external file.
    case externalData(tensor: String)
    /// A tensor is invalid or of an element type the importer does not read.
    case invalidTensor(name: String, detail: String)
    /// A graph input or output is unusable (non-float, unknown or symbolic non-batch dimensions).
    case invalidValue(name: String, detail: String)
    /// Nodes the importer cannot represent, every one of them.
    case unsupported([UnsupportedONNXNode])
    /// The converted graph failed validation.
    case invalidGraph(String)
    /// The initializers need more memory, at their declared shapes, than the
    /// memory budget allows (checked before any is decoded).
    case exceedsMemoryBudget(MemoryBudgetExceeded)

    public var description: String {
        switch self {
        case .malformed: "not a valid ONNX model (the protobuf message does not parse)"
        case .missingGraph: "the ONNX model has no graph"
        case .noInputs: "the ONNX graph has no inputs (besides initializers)"
        case .noOutputs: "the ONNX graph has no outputs"
        case .unsupportedOpset(let v?): "ONNX opset \(v) is not supported (supported: \(ONNXImporter.supportedOpsets))"
        case .unsupportedOpset(nil): "the ONNX model imports no opset of the default domain"
        case .externalData(let t): "tensor '\(t)' keeps its data in an external file, which is not supported: save the model with its data inside"
        case .invalidTensor(let n, let d): "ONNX tensor '\(n)': \(d)"
        case .invalidValue(let n, let d): "ONNX value '\(n)': \(d)"
        case .unsupported(let nodes):
            "the ONNX model has \(nodes.count) unsupported node\(nodes.count == 1 ? "" : "s"): "
                + nodes.map(\.description).joined(separator: "; ")
        case .invalidGraph(let d): "the imported graph is invalid: \(d)"
        case .exceedsMemoryBudget(let refusal): refusal.description
        }
    }
}
