/// Imports ONNX models (opsets 9 through 28) into the graph IR.
///
/// Supported: Conv, Gemm, MatMul (+ Add of a bias), BatchNormalization,
/// LayerNormalization (over the features of a 2-D value, and ConvNeXt's
/// channels-last LayerNorm and block between Transposes, folded into
/// channels-first ops, also when written decomposed below opset 17:
/// `ONNXLayerNormFolding.swift`),
/// Relu, LeakyRelu, Sigmoid, Tanh, Clip (as ReLU/ReLU6), HardSigmoid,
/// HardSwish, Gelu (also as the Erf form and the Clip forms of hard sigmoid
/// and hard swish, `ONNXActivationFolding.swift`), MaxPool,
/// AveragePool, GlobalAveragePool, Flatten, Reshape, Add, Sub, Mul, Div,
/// Concat, Pad (zero padding absorbed by the Conv or AveragePool after it),
/// ReduceMean over H and W, Softmax, and Dropout, Identity and Constant, which
/// disappear. Shape computations around Reshape (Shape, Gather, Unsqueeze,
/// Squeeze, Slice, Concat, Cast, arithmetic) are folded to constants.
/// Slice (step 1) and Split of computed values become `slice` nodes, Gather
/// of a computed value on axis 1 with constant indices a `channelPermute`
/// (or a `slice` for a run of channels), and the channel shuffle Reshape ->
/// Transpose perm [0, 2, 1, 3, 4] -> Reshape one `channelPermute`
/// (`ONNXChannelOps.swift`); any other Transpose is refused.
/// QuantizeLinear/DequantizeLinear (QDQ models) import as an int8 model:
/// int8 weights with their grids, activation quantizers as
/// `quantizeDequantize` nodes (see `ONNXQDQImport.swift`).
///
/// Dimension 0 of every graph input is the batch (symbolic or not); the other
/// dimensions must be static. Unsupported nodes fail the import with one
/// `ONNXImportError.unsupported` that lists every one of them.
public enum ONNXImporter {
    /// Opsets of the default ONNX domain the importer understands.
    public static let supportedOpsets = 9...28

    /// Parses and converts an ONNX `ModelProto`, after checking the
    /// initializers' declared sizes against `budget`
    /// (`ONNXImportError.exceedsMemoryBudget` names the largest); a folded
    /// constant that would exceed it makes its node unsupported, saying so.
    public static func decode(_ bytes: [UInt8], budget: MemoryBudget = .processDefault) throws(ONNXImportError) -> Model {
        let proto = try ONNXProtoReader.model(bytes, budget: budget)
        guard let graph = proto.graph else { throw .missingGraph }
        guard let opset = proto.opset, supportedOpsets.contains(opset) else { throw .unsupportedOpset(version: proto.opset) }
        // Aliases first, so the foldings see constants; activations before LayerNorms: the
        // LayerNorm folding carries the folded GELU between its MatMuls.
        let prepared = foldingChannelsLastLayerNorms(foldingDecomposedActivations(resolvingInitializerAliases(graph), opset: opset))
        var converter = try ONNXGraphConverter(graph: prepared, opset: opset)
        converter.context.memoryBudget = budget
        let (imported, outputShape) = try converter.convert()
        var model = liftingInputNormalization(Model(graph: imported, metadata: metadata(proto.metadata, outputShape: outputShape)))
        // int8 weights of a QDQ model (DequantizeLinear of int8 or uint8 initializers) keep their grids.
        model.metadata.storage.precisions = converter.context.precisions.filter { model.graph.initializers[$0.key] != nil }
        return model
    }

    /// True when `bytes` parse as the top level of an ONNX `ModelProto` with a graph:
    /// known field numbers with the right wire types, framing consistent to the end.
    public static func looksLikeONNX(_ bytes: [UInt8]) -> Bool {
        var scanner = ProtobufWireScanner(bytes: bytes)
        var sawGraph = false
        let varintFields: Set<UInt64> = [1, 5], lengthFields: Set<UInt64> = [2, 3, 4, 6, 7, 8, 14, 20, 25, 26]
        while !scanner.atEnd {
            guard let (field, wireType) = scanner.tag() else { return false }
            switch wireType {
            case 0 where varintFields.contains(field): guard scanner.varint() != nil else { return false }
            case 2 where lengthFields.contains(field): guard scanner.skipLengthDelimited() else { return false }
            default: return false
            }
            if field == 7 { sawGraph = true }
        }
        return sawGraph
    }

    /// Metadata keys the compressor's exporter writes.
    static let architectureKey = "compressor.architecture"
    static let classNamesKey = "compressor.class_names"

    /// Model metadata from the exporter's keys, else class names "0"…"K-1" from a 2-D output's width.
    static func metadata(_ props: [String: String], outputShape: [Int]?) -> ModelMetadata {
        var metadata = ModelMetadata(architecture: props[architectureKey])
        if let names = props[classNamesKey] {
            metadata.classNames = names.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        } else if let shape = outputShape, shape.count == 2 {
            metadata.classNames = (0..<shape[1]).map(String.init)
        }
        return metadata
    }
}

/// Reads protobuf wire-format framing without a schema.
struct ProtobufWireScanner {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard offset < bytes.count else { return nil }
            let b = bytes[offset]
            offset += 1
            value |= UInt64(b & 0x7F) << UInt64(shift)
            if b < 0x80 { return value }
        }
        return nil
    }

    /// The next field number and wire type.
    mutating func tag() -> (UInt64, UInt64)? {
        guard let t = varint(), t >> 3 > 0 else { return nil }
        return (t >> 3, t & 7)
    }

    mutating func skipLengthDelimited() -> Bool {
        guard let n = varint(), n <= UInt64(bytes.count - offset) else { return false }
        offset += Int(n)
        return true
    }
}

/// `graph` with every `Identity` of an initializer replaced by an initializer
/// of the Identity's output name holding the same tensor. PyTorch's exporter
/// writes one initializer for equal parameters (zero biases, equal layer
/// scales) and Identity nodes for the others; the pattern foldings before
/// conversion look for constants and would not see through them.
func resolvingInitializerAliases(_ graph: ONNXGraphProto) -> ONNXGraphProto {
    var graph = graph
    var tensors = Dictionary(graph.initializers.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    let outputs = Set(graph.outputs.map(\.name))
    var kept: [ONNXNodeProto] = []
    for node in graph.nodes {
        if node.opType == "Identity", node.domain.isEmpty, node.inputs.count == 1, node.outputs.count == 1,
           let tensor = tensors[node.inputs[0]], !outputs.contains(node.outputs[0]), tensors[node.outputs[0]] == nil {
            let name = node.outputs[0]
            tensors[name] = tensor
            graph.initializers.append((name: name, tensor: tensor))
            graph.initializerTypes[name] = graph.initializerTypes[node.inputs[0]]
            continue
        }
        kept.append(node)
    }
    graph.nodes = kept
    return graph
}
