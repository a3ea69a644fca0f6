import COnnxProto
import CProtobufC

/// Builds the protobuf-c `OnnxModel` tree of an `ONNXModelSpec` in an arena
/// and packs it. Field order and content follow the spec exactly, so the
/// bytes are deterministic.
struct ONNXProtoEncoder {
    let arena = ProtoArena()

    /// The serialized ONNX `ModelProto` of `spec`.
    static func bytes(of spec: ONNXModelSpec) throws(ONNXExportError) -> [UInt8] {
        let encoder = ONNXProtoEncoder()
        let message = try encoder.model(spec)
        let size = onnx_subset__onnx_model__get_packed_size(message)
        // protobuf, and protobuf-c's nested lengths, stop at 2 GiB.
        guard size < Int(Int32.max) else {
            throw .unencodable("a model of \(size) bytes (ONNX files without external data stop at 2 GiB)")
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = onnx_subset__onnx_model__pack(message, buffer.baseAddress)
        }
        // Keeps the arena, and the tree in it, alive until packing is done.
        withExtendedLifetime(encoder) {}
        return bytes
    }

    // MARK: Messages

    func model(_ spec: ONNXModelSpec) throws(ONNXExportError) -> UnsafeMutablePointer<OnnxSubset__OnnxModel> {
        let m = arena.message(onnx_subset__onnx_model__init)
        m.pointee.has_ir_version = 1
        m.pointee.ir_version = Int64(spec.irVersion)
        let opset = arena.message(onnx_subset__onnx_operator_set_id__init)
        opset.pointee.domain = arena.string("")
        opset.pointee.has_version = 1
        opset.pointee.version = Int64(spec.opset)
        m.pointee.n_opset_import = 1
        m.pointee.opset_import = arena.pointers([opset])
        m.pointee.producer_name = arena.string("compressor")
        m.pointee.graph = try graph(spec)
        var props: [UnsafeMutablePointer<OnnxSubset__OnnxStringStringEntry>] = []
        for (key, value) in spec.metadata {
            let p = arena.message(onnx_subset__onnx_string_string_entry__init)
            p.pointee.key = try string(key, "metadata key")
            p.pointee.value = try string(value, "metadata '\(key)'")
            props.append(p)
        }
        m.pointee.n_metadata_props = props.count
        m.pointee.metadata_props = arena.pointers(props)
        return m
    }

    func graph(_ spec: ONNXModelSpec) throws(ONNXExportError) -> UnsafeMutablePointer<OnnxSubset__OnnxGraph> {
        let g = arena.message(onnx_subset__onnx_graph__init)
        g.pointee.name = try string(spec.graphName, "graph name")
        var nodes: [UnsafeMutablePointer<OnnxSubset__OnnxNode>] = []
        for n in spec.nodes { nodes.append(try node(n)) }
        g.pointee.n_node = nodes.count
        g.pointee.node = arena.pointers(nodes)
        var tensors: [UnsafeMutablePointer<OnnxSubset__OnnxTensor>] = []
        for (name, t) in spec.initializers { tensors.append(try tensor(t, named: name)) }
        g.pointee.n_initializer = tensors.count
        g.pointee.initializer = arena.pointers(tensors)
        var inputs: [UnsafeMutablePointer<OnnxSubset__OnnxValueInfo>] = []
        for v in spec.inputs { inputs.append(try valueInfo(v)) }
        g.pointee.n_input = inputs.count
        g.pointee.input = arena.pointers(inputs)
        var outputs: [UnsafeMutablePointer<OnnxSubset__OnnxValueInfo>] = []
        for v in spec.outputs { outputs.append(try valueInfo(v)) }
        g.pointee.n_output = outputs.count
        g.pointee.output = arena.pointers(outputs)
        return g
    }

    func node(_ spec: ONNXNodeSpec) throws(ONNXExportError) -> UnsafeMutablePointer<OnnxSubset__OnnxNode> {
        let n = arena.message(onnx_subset__onnx_node__init)
        n.pointee.name = try string(spec.name, "node name")
        n.pointee.op_type = arena.string(spec.opType)
        n.pointee.n_input = spec.inputs.count
        n.pointee.input = try strings(spec.inputs, "an input name of node '\(spec.name)'")
        n.pointee.n_output = spec.outputs.count
        n.pointee.output = try strings(spec.outputs, "an output name of node '\(spec.name)'")
        let attributes = spec.attributes.map { attribute($0.name, $0.value) }
        n.pointee.n_attribute = attributes.count
        n.pointee.attribute = arena.pointers(attributes)
        return n
    }

    func attribute(_ name: String, _ value: ONNXAttributeValue) -> UnsafeMutablePointer<OnnxSubset__OnnxAttribute> {
        let a = arena.message(onnx_subset__onnx_attribute__init)
        a.pointee.name = arena.string(name)
        a.pointee.has_type = 1
        switch value {
        case .int(let i):
            a.pointee.type = ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__INT
            a.pointee.has_i = 1
            a.pointee.i = Int64(i)
        case .ints(let values):
            a.pointee.type = ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__INTS
            a.pointee.n_ints = values.count
            a.pointee.ints = arena.array(values.map { Int64($0) })
        case .float(let f):
            a.pointee.type = ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__FLOAT
            a.pointee.has_f = 1
            a.pointee.f = f
        case .string(let s):
            a.pointee.type = ONNX_SUBSET__ONNX_ATTRIBUTE__ATTRIBUTE_TYPE__STRING
            a.pointee.has_s = 1
            let utf8 = Array(s.utf8)
            a.pointee.s = arena.bytes(count: utf8.count) { out in utf8.withUnsafeBytes { out.copyMemory(from: $0) } }
        }
        return a
    }

    func tensor(_ t: ONNXTensorData, named name: String) throws(ONNXExportError) -> UnsafeMutablePointer<OnnxSubset__OnnxTensor> {
        let m = arena.message(onnx_subset__onnx_tensor__init)
        m.pointee.name = try string(name, "initializer name")
        m.pointee.n_dims = t.shape.count
        m.pointee.dims = arena.array(t.shape.map { Int64($0) })
        m.pointee.has_data_type = 1
        m.pointee.data_type = t.dataType.rawValue
        m.pointee.has_raw_data = 1
        switch t.values {
        case .float(let v): m.pointee.raw_data = littleEndianBytes(v.map(\.bitPattern))
        case .int64(let v): m.pointee.raw_data = littleEndianBytes(v)
        case .uint8(let v): m.pointee.raw_data = littleEndianBytes(v)
        case .int8(let v): m.pointee.raw_data = littleEndianBytes(v)
        case .int32(let v): m.pointee.raw_data = littleEndianBytes(v)
        }
        return m
    }

    func valueInfo(_ v: ONNXValueInfoSpec) throws(ONNXExportError) -> UnsafeMutablePointer<OnnxSubset__OnnxValueInfo> {
        let shape = arena.message(onnx_subset__onnx_tensor_shape__init)
        let dims = v.dims.map(dimension)
        shape.pointee.n_dim = dims.count
        shape.pointee.dim = arena.pointers(dims)
        let tensorType = arena.message(onnx_subset__onnx_type__tensor__init)
        tensorType.pointee.has_elem_type = 1
        tensorType.pointee.elem_type = v.dataType.rawValue
        tensorType.pointee.shape = shape
        let type = arena.message(onnx_subset__onnx_type__init)
        type.pointee.value_case = ONNX_SUBSET__ONNX_TYPE__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensorType
        let info = arena.message(onnx_subset__onnx_value_info__init)
        info.pointee.name = try string(v.name, "value name")
        info.pointee.type = type
        return info
    }

    func dimension(_ d: ONNXDimension) -> UnsafeMutablePointer<OnnxSubset__OnnxTensorShape__Dimension> {
        let m = arena.message(onnx_subset__onnx_tensor_shape__dimension__init)
        switch d {
        case .value(let v):
            m.pointee.value_case = ONNX_SUBSET__ONNX_TENSOR_SHAPE__DIMENSION__VALUE_DIM_VALUE
            m.pointee.dim_value = Int64(v)
        case .param(let p):
            m.pointee.value_case = ONNX_SUBSET__ONNX_TENSOR_SHAPE__DIMENSION__VALUE_DIM_PARAM
            m.pointee.dim_param = arena.string(p)
        case .unknown:
            break
        }
        return m
    }

    // MARK: Scalars

    /// A C copy of `s`, refusing strings with NUL (C strings end there).
    private func string(_ s: String, _ what: String) throws(ONNXExportError) -> UnsafeMutablePointer<CChar> {
        guard !s.utf8.contains(0) else { throw .unencodable("\(what) \(s.debugDescription)") }
        return arena.string(s)
    }

    private func strings(_ values: [String], _ what: String) throws(ONNXExportError)
        -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        for s in values where s.utf8.contains(0) { throw .unencodable("\(what) \(s.debugDescription)") }
        return arena.strings(values)
    }

    /// The elements' bytes, little-endian whatever the host's byte order.
    private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> ProtobufCBinaryData {
        arena.bytes(count: values.count * MemoryLayout<T>.size) { out in
            values.withUnsafeBytes { out.copyMemory(from: $0) }
            #if _endian(big)
            let swapped = values.map(\.littleEndian)
            swapped.withUnsafeBytes { out.copyMemory(from: $0) }
            #endif
        }
    }
}
