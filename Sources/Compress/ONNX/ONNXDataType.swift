/// ONNX `TensorProto.DataType` codes of the element types an export writes:
/// float32 for every value the graph computes and every float weight, int64
/// for shapes; uint8, int8 and int32 for the quantized tensors and zero
/// points of a QDQ export.
enum ONNXDataType: Int32, Sendable {
    case float = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
}

/// A tensor as an ONNX export stores it: dense elements of one type.
struct ONNXTensorData: Sendable, Equatable {
    /// Elements in row-major order.
    enum Values: Sendable, Equatable {
        case float([Float])
        case int64([Int64])
        case uint8([UInt8])
        case int8([Int8])
        case int32([Int32])
    }

    var shape: [Int]
    var values: Values

    var dataType: ONNXDataType {
        switch values {
        case .float: .float
        case .int64: .int64
        case .uint8: .uint8
        case .int8: .int8
        case .int32: .int32
        }
    }

    /// `tensor` as an export writes a model initializer: int64 stays INT64
    /// unless an op reads it (every op input of the IR is float: kernels widen
    /// any storage to float32, so the ONNX graph must see float32 too); every
    /// other storage (float16, int8, uint8) becomes dense float32.
    static func initializer(_ tensor: Tensor, readByOp: Bool) -> ONNXTensorData {
        if case .int64(let v) = tensor.storage, !readByOp { return ONNXTensorData(shape: tensor.shape, values: .int64(v)) }
        return ONNXTensorData(shape: tensor.shape, values: .float(tensor.floats))
    }

    /// A float32 scalar (shape `[]`), e.g. a `Clip` bound.
    static func scalar(_ value: Float) -> ONNXTensorData { ONNXTensorData(shape: [], values: .float([value])) }
}
