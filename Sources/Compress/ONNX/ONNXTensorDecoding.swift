import COnnxProto
import CProtobufC

/// Decodes an ONNX `TensorProto` into a `Tensor`, from `raw_data` (little-endian)
/// or the typed repeated fields.
///
/// Element types: FLOAT and FLOAT16 keep their storage; DOUBLE narrows to
/// float32; INT64, INT32, INT16, UINT16 and BOOL become int64 (shape values,
/// indices, flags); INT8 and UINT8 keep their storage.
enum ONNXTensorDecoder {
    /// ONNX `TensorProto.DataType` codes the importer reads.
    enum ElementType: Int32 {
        case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, bool = 9
        case float16 = 10, double = 11

        /// Bytes of one element in `raw_data`.
        var width: Int {
            switch self {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16, .float16: 2
            case .float, .int32: 4
            case .int64, .double: 8
            }
        }
    }

    static func tensor(_ t: OnnxSubset__OnnxTensor, name: String) throws(ONNXImportError) -> Tensor {
        if (t.has_data_location != 0 && t.data_location == 1) || t.n_external_data > 0 {
            throw .externalData(tensor: name)
        }
        let dims = Array(onnxBuffer(t.dims, t.n_dims))
        guard dims.allSatisfy({ $0 >= 0 && $0 < (1 << 40) }) else {
            throw .invalidTensor(name: name, detail: "invalid dimensions \(dims)")
        }
        let shape = dims.map { Int($0) }
        let code = t.has_data_type != 0 ? t.data_type : 0
        guard let type = ElementType(rawValue: code) else {
            throw .invalidTensor(name: name, detail: "element type \(code) is not supported")
        }
        let storage = t.has_raw_data != 0
            ? rawStorage(UnsafeRawBufferPointer(start: t.raw_data.data, count: t.raw_data.len), type)
            : typedStorage(t, type)
        guard let storage, let tensor = try? Tensor(shape: shape, storage: storage) else {
            throw .invalidTensor(name: name, detail: "its data does not match shape \(shape) of element type \(type)")
        }
        return tensor
    }

    /// Elements from `raw_data`, or nil when its length is not a multiple of the element width.
    static func rawStorage(_ raw: UnsafeRawBufferPointer, _ type: ElementType) -> TensorStorage? {
        guard raw.count % type.width == 0 else { return nil }
        let n = raw.count / type.width
        func values<T: FixedWidthInteger>(_: T.Type) -> [T] {
            (0..<n).map { i in T(littleEndian: raw.loadUnaligned(fromByteOffset: i * type.width, as: T.self)) }
        }
        switch type {
        case .float: return .float32(values(UInt32.self).map { Float(bitPattern: $0) })
        case .double: return .float32(values(UInt64.self).map { Float(Double(bitPattern: $0)) })
        case .float16: return .float16(values(UInt16.self))
        case .int8: return .int8(values(Int8.self))
        case .uint8: return .uint8(values(UInt8.self))
        case .bool: return .int64(values(UInt8.self).map { $0 != 0 ? 1 : 0 })
        case .int16: return .int64(values(Int16.self).map { Int64($0) })
        case .uint16: return .int64(values(UInt16.self).map { Int64($0) })
        case .int32: return .int64(values(Int32.self).map { Int64($0) })
        case .int64: return .int64(values(Int64.self))
        }
    }

    /// Elements from the typed repeated field that holds `type`.
    static func typedStorage(_ t: OnnxSubset__OnnxTensor, _ type: ElementType) -> TensorStorage? {
        let int32s = onnxBuffer(t.int32_data, t.n_int32_data)
        switch type {
        case .float: return .float32(Array(onnxBuffer(t.float_data, t.n_float_data)))
        case .double: return .float32(onnxBuffer(t.double_data, t.n_double_data).map { Float($0) })
        case .int64: return .int64(Array(onnxBuffer(t.int64_data, t.n_int64_data)))
        case .float16: return .float16(int32s.map { UInt16(truncatingIfNeeded: $0) })
        case .int8: return .int8(int32s.map { Int8(truncatingIfNeeded: $0) })
        case .uint8: return .uint8(int32s.map { UInt8(truncatingIfNeeded: $0) })
        case .bool: return .int64(int32s.map { $0 != 0 ? 1 : 0 })
        case .int16, .uint16, .int32: return .int64(int32s.map { Int64($0) })
        }
    }
}
