import COnnxProto
import CProtobufC

/// An ONNX model read out of the protobuf-c tree into Swift values, so the
/// converter never touches C memory (the tree is freed right after reading).
struct ONNXModelProto {
    var opset: Int?
    var metadata: [String: String]
    var graph: ONNXGraphProto?
}

/// The parts of a `GraphProto` the importer reads.
struct ONNXGraphProto {
    var nodes: [ONNXNodeProto]
    /// Initializers in file order.
    var initializers: [(name: String, tensor: Tensor)]
    /// Each initializer's element type as declared (int16, int32 and uint16 decode to int64).
    var initializerTypes: [String: ONNXTensorDecoder.ElementType] = [:]
    var inputs: [ONNXValueInfo]
    var outputs: [ONNXValueInfo]
}

/// One `NodeProto`.
struct ONNXNodeProto {
    var name: String
    var opType: String
    var domain: String
    /// Input value names; "" marks an absent optional input.
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: ONNXAttribute]
}

/// An attribute value; types the importer never reads are kept as `.other`.
enum ONNXAttribute {
    case float(Float)
    case int(Int64)
    case string(String)
    case tensor(Tensor)
    case floats([Float])
    case ints([Int64])
    case other(type: String)
}

/// A graph input or output: element type and dimensions when declared.
struct ONNXValueInfo {
    enum Dimension: Equatable {
        case value(Int64)
        case symbol(String)
        case unknown
    }
    var name: String
    var elementType: Int32?
    var dimensions: [Dimension]?
}

enum ONNXProtoReader {
    /// Parses `bytes` as a `ModelProto`; the initializers' declared sizes are checked against `budget` first.
    static func model(_ bytes: [UInt8], budget: MemoryBudget = .processDefault) throws(ONNXImportError) -> ONNXModelProto {
        let unpacked = bytes.withUnsafeBufferPointer { onnx_subset__onnx_model__unpack(nil, $0.count, $0.baseAddress) }
        guard let unpacked else { throw .malformed }
        defer { onnx_subset__onnx_model__free_unpacked(unpacked, nil) }
        let m = unpacked.pointee
        var opset: Int? = nil
        for p in onnxMessages(m.opset_import, m.n_opset_import) {
            let domain = onnxString(p.pointee.domain)
            if domain.isEmpty || domain == "ai.onnx", p.pointee.has_version != 0 { opset = Int(p.pointee.version) }
        }
        var metadata: [String: String] = [:]
        for p in onnxMessages(m.metadata_props, m.n_metadata_props) {
            metadata[onnxString(p.pointee.key)] = onnxString(p.pointee.value)
        }
        return ONNXModelProto(opset: opset, metadata: metadata, graph: try m.graph.map { p throws(ONNXImportError) in try graph(p.pointee, budget: budget) })
    }

    static func graph(_ g: OnnxSubset__OnnxGraph, budget: MemoryBudget = .processDefault) throws(ONNXImportError) -> ONNXGraphProto {
        try checkDeclaredSizes(g, budget: budget)
        var initializers: [(name: String, tensor: Tensor)] = []
        var types: [String: ONNXTensorDecoder.ElementType] = [:]
        for p in onnxMessages(g.initializer, g.n_initializer) {
            let name = onnxString(p.pointee.name)
            initializers.append((name, try ONNXTensorDecoder.tensor(p.pointee, name: name)))
            types[name] = ONNXTensorDecoder.ElementType(rawValue: p.pointee.data_type)
        }
        var nodes: [ONNXNodeProto] = []
        for p in onnxMessages(g.node, g.n_node) { nodes.append(try node(p.pointee)) }
        return ONNXGraphProto(nodes: nodes, initializers: initializers, initializerTypes: types,
                              inputs: onnxMessages(g.input, g.n_input).map { valueInfo($0.pointee) },
                              outputs: onnxMessages(g.output, g.n_output).map { valueInfo($0.pointee) })
    }

    /// Throws `exceedsMemoryBudget` when the initializers at their declared
    /// shapes (8 bytes an element for integer types, which become int64; 4
    /// otherwise) need more than `budget`; bad dimensions are left to the decoder.
    static func checkDeclaredSizes(_ g: OnnxSubset__OnnxGraph, budget: MemoryBudget) throws(ONNXImportError) {
        var sizes: [MemoryNeed.TensorSize] = []
        for p in onnxMessages(g.initializer, g.n_initializer) {
            let shape = onnxBuffer(p.pointee.dims, p.pointee.n_dims).map { Int(clamping: $0) }
            guard shape.allSatisfy({ $0 >= 0 }) else { continue }
            let type = ONNXTensorDecoder.ElementType(rawValue: p.pointee.data_type)
            let width = [.float, .float16, .double, .uint8, .int8].contains(type) ? 4 : 8
            sizes.append(MemoryNeed.TensorSize(name: onnxString(p.pointee.name), shape: shape, elementSize: width))
        }
        do {
            try budget.check(MemoryNeed(purpose: "loading the model's initializers", tensors: sizes))
        } catch {
            throw .exceedsMemoryBudget(error)
        }
    }

    static func node(_ n: OnnxSubset__OnnxNode) throws(ONNXImportError) -> ONNXNodeProto {
        var attributes: [String: ONNXAttribute] = [:]
        for p in onnxMessages(n.attribute, n.n_attribute) {
            attributes[onnxString(p.pointee.name)] = try attribute(p.pointee)
        }
        return ONNXNodeProto(name: onnxString(n.name), opType: onnxString(n.op_type), domain: onnxString(n.domain),
                             inputs: onnxStrings(n.input, n.n_input), outputs: onnxStrings(n.output, n.n_output),
                             attributes: attributes)
    }

    static func attribute(_ a: OnnxSubset__OnnxAttribute) throws(ONNXImportError) -> ONNXAttribute {
        let type = a.has_type != 0 ? a.type : ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__UNDEFINED
        switch type {
        case ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__FLOAT: return .float(a.f)
        case ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__INT: return .int(a.i)
        case ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__STRING:
            return .string(String(decoding: onnxBuffer(a.s.data, a.s.len), as: UTF8.self))
        case ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__TENSOR:
            guard let t = a.t else { return .other(type: "empty tensor") }
            return .tensor(try ONNXTensorDecoder.tensor(t.pointee, name: onnxString(a.name)))
        case ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__FLOATS: return .floats(Array(onnxBuffer(a.floats, a.n_floats)))
        case ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__INTS: return .ints(Array(onnxBuffer(a.ints, a.n_ints)))
        default: return .other(type: "type \(type.rawValue)")
        }
    }

    static func valueInfo(_ v: OnnxSubset__OnnxValueInfo) -> ONNXValueInfo {
        var info = ONNXValueInfo(name: onnxString(v.name), elementType: nil, dimensions: nil)
        guard let type = v.type, type.pointee.value_case == ONNX_SUBSET__ONNX_TYPE__VALUE_TENSOR_TYPE,
              let tensorType = type.pointee.tensor_type else { return info }
        if tensorType.pointee.has_elem_type != 0 { info.elementType = tensorType.pointee.elem_type }
        if let shape = tensorType.pointee.shape {
            info.dimensions = onnxMessages(shape.pointee.dim, shape.pointee.n_dim).map { d in
                switch d.pointee.value_case {
                case ONNX_SUBSET__ONNX_TENSOR_SHAPE__DIMENSION__VALUE_DIM_VALUE: .value(d.pointee.dim_value)
                case ONNX_SUBSET__ONNX_TENSOR_SHAPE__DIMENSION__VALUE_DIM_PARAM: .symbol(onnxString(d.pointee.dim_param))
                default: .unknown
                }
            }
        }
        return info
    }
}

/// The `n` elements at `p` (protobuf-c leaves `p` null when `n` is 0).
func onnxBuffer<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: n > 0 ? p : nil, count: p == nil ? 0 : n)
}

/// The messages of a repeated message field.
func onnxMessages<T>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int) -> [UnsafeMutablePointer<T>] {
    onnxBuffer(p, n).compactMap { $0 }
}

/// The strings of a repeated string field (a null entry reads as "").
func onnxStrings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int) -> [String] {
    onnxBuffer(p, n).map { onnxString($0) }
}

/// A C string, or "" for an absent optional string.
func onnxString(_ p: UnsafeMutablePointer<CChar>?) -> String {
    p.map { String(cString: $0) } ?? ""
}
