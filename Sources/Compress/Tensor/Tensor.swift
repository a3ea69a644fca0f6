/// The element type of a tensor.
///
/// Kernels compute in `float32`. `int64` carries shape values (ONNX `Reshape`
/// targets, indices). `float16`, `int8` and `uint8` are storage types that
/// quantization passes and ONNX imports produce; they are widened to `float32`
/// before any kernel sees them.
public enum DType: String, Sendable, CaseIterable, Codable {
    case float32
    case float16
    case int8
    case uint8
    case int64

    /// Bytes one element occupies when stored densely.
    public var byteWidth: Int {
        switch self {
        case .float32: 4
        case .float16: 2
        case .int8, .uint8: 1
        case .int64: 8
        }
    }
}

/// Elements of a tensor, one case per dtype. Arrays give value semantics
/// with copy-on-write, so a `Tensor` can be passed around freely.
public enum TensorStorage: Sendable, Equatable {
    case float32([Float])
    /// IEEE 754 half-precision bit patterns.
    case float16([UInt16])
    case int8([Int8])
    case uint8([UInt8])
    case int64([Int64])

    public var dtype: DType {
        switch self {
        case .float32: .float32
        case .float16: .float16
        case .int8: .int8
        case .uint8: .uint8
        case .int64: .int64
        }
    }

    public var count: Int {
        switch self {
        case .float32(let v): v.count
        case .float16(let v): v.count
        case .int8(let v): v.count
        case .uint8(let v): v.count
        case .int64(let v): v.count
        }
    }
}

/// A dense, contiguous, row-major n-dimensional array with a shape and a dtype.
public struct Tensor: Sendable, Equatable {
    public let shape: [Int]
    public let storage: TensorStorage

    public var dtype: DType { storage.dtype }
    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// Creates a tensor, checking that the number of elements matches the shape.
    public init(shape: [Int], storage: TensorStorage) throws(TensorError) {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidShape(shape) }
        // A shape from a file can be any size (found by the ONNX fuzzer).
        guard shape.checkedElementCount == storage.count else {
            throw .elementCountMismatch(shape: shape, count: storage.count)
        }
        self.shape = shape
        self.storage = storage
    }

    /// A float32 tensor. Traps when the element count does not match the shape:
    /// use the throwing initializer for data from outside the program.
    public init(shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) elements, got \(floats.count)")
        self.shape = shape
        self.storage = .float32(floats)
    }

    /// An int64 tensor (shape values, indices).
    public init(shape: [Int], int64s: [Int64]) {
        precondition(shape.reduce(1, *) == int64s.count)
        self.shape = shape
        self.storage = .int64(int64s)
    }

    /// A float32 tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, floats: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// A float32 tensor filled with `value`.
    public static func filled(_ shape: [Int], with value: Float) -> Tensor {
        Tensor(shape: shape, floats: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// The elements widened to float32 (float16 decoded, integers converted).
    public var floats: [Float] {
        switch storage {
        case .float32(let v): v
        case .float16(let v): v.map { Float(Float16(bitPattern: $0)) }
        case .int8(let v): v.map { Float($0) }
        case .uint8(let v): v.map { Float($0) }
        case .int64(let v): v.map { Float($0) }
        }
    }

    /// The elements as Int64 (float values truncated toward zero).
    public var int64s: [Int64] {
        switch storage {
        case .int64(let v): v
        case .int8(let v): v.map { Int64($0) }
        case .uint8(let v): v.map { Int64($0) }
        default: floats.map { Int64($0) }
        }
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        try Tensor(shape: newShape, storage: storage)
    }

    /// This tensor converted to float32 storage.
    public func asFloat32() -> Tensor {
        if case .float32 = storage { return self }
        return Tensor(shape: shape, floats: floats)
    }

    /// Bytes the elements occupy stored densely.
    public var denseByteCount: Int { count * dtype.byteWidth }
}

/// Errors constructing or reshaping tensors.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case invalidShape([Int])
    case elementCountMismatch(shape: [Int], count: Int)

    public var description: String {
        switch self {
        case .invalidShape(let s): "invalid tensor shape \(s): dimensions must be non-negative"
        case .elementCountMismatch(let s, let c):
            "tensor shape \(s) needs \(s.checkedElementCount.map(String.init) ?? "more than Int.max") elements, got \(c)"
        }
    }
}

extension Array where Element == Int {
    /// Number of elements of a tensor with this shape.
    public var elementCount: Int { reduce(1, *) }

    /// Number of elements of a tensor with this shape, or nil when the
    /// product overflows `Int` (a shape read from a file can be any size).
    public var checkedElementCount: Int? {
        if contains(0) { return 0 }
        var count = 1
        for d in self {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = product
        }
        return count
    }
}
