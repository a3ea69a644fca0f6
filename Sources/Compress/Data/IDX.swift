/// The IDX file format of the MNIST and Fashion-MNIST distributions
/// (LeCun et al., "Gradient-Based Learning Applied to Document Recognition", 1998;
/// format described at the MNIST database page).
///
/// Layout: two zero bytes, a type byte, a rank byte, `rank` big-endian UInt32
/// dimensions, then the elements in row-major order, big-endian.
///
/// | type byte | element          | tensor dtype               |
/// |-----------|------------------|----------------------------|
/// | `0x08`    | unsigned byte    | `uint8`                    |
/// | `0x09`    | signed byte      | `int8`                     |
/// | `0x0B`    | Int16            | `int64`                    |
/// | `0x0C`    | Int32            | `int64`                    |
/// | `0x0D`    | Float32          | `float32`                  |
/// | `0x0E`    | Float64          | `float32` (narrowed)       |
public enum IDX {
    /// Reads an IDX file, gzip-compressed (`.gz`) or not.
    public static func read(path: String, budget: MemoryBudget = .processDefault) throws(DataError) -> Tensor {
        try decode(readFileBytes(path: path, budget: budget), source: path, budget: budget)
    }

    /// Writes `tensor` as an IDX file, gzip-compressed when `gzip` is true.
    public static func write(_ tensor: Tensor, path: String, gzip: Bool = false) throws(DataError) {
        try writeFileBytes(encode(tensor), path: path, gzip: gzip)
    }

    /// Decodes the bytes of an IDX file. `source` names the file in errors.
    public static func decode(_ bytes: [UInt8], source: String = "IDX data",
                              budget: MemoryBudget = .processDefault) throws(DataError) -> Tensor {
        guard bytes.count >= 4 else {
            throw .truncated(path: source, expectedBytes: 4, actualBytes: bytes.count)
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw .malformed(path: source, detail: "bad magic: an IDX file starts with two zero bytes, got "
                             + hex(bytes[0..<4]))
        }
        let typeByte = bytes[2]
        let rank = Int(bytes[3])
        guard rank >= 1 else { throw .malformed(path: source, detail: "rank byte is 0") }
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw .truncated(path: source, expectedBytes: headerSize, actualBytes: bytes.count)
        }
        var shape: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            shape.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let elementWidth: Int
        switch typeByte {
        case 0x08, 0x09: elementWidth = 1
        case 0x0B: elementWidth = 2
        case 0x0C, 0x0D: elementWidth = 4
        case 0x0E: elementWidth = 8
        default:
            throw .unsupported(path: source, detail: "unknown IDX element type byte 0x" + hex([typeByte])
                               + " (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)")
        }
        guard let dataBytes = declaredDataBytes(shape: shape, elementWidth: elementWidth, after: headerSize) else {
            throw .malformed(path: source, detail: "its header announces \(shape) elements, more than a file can hold")
        }
        try checkDeclaredSize(shape, elementSize: [0x08, 0x09].contains(typeByte) ? 1 : [0x0B, 0x0C].contains(typeByte) ? 8 : 4,
                              source: source, budget: budget)
        let count = dataBytes / elementWidth
        let expected = headerSize + dataBytes
        guard bytes.count >= expected else {
            throw .truncated(path: source, expectedBytes: expected, actualBytes: bytes.count)
        }
        guard bytes.count == expected else {
            throw .malformed(path: source, detail: "\(bytes.count - expected) bytes follow the \(expected) bytes "
                             + "its header \(shape) announces")
        }
        let storage: TensorStorage = bytes.withUnsafeBytes { raw in
            let body = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
            switch typeByte {
            case 0x08: return .uint8(Array(body))
            case 0x09: return .int8(body.map { Int8(bitPattern: $0) })
            case 0x0B:
                return .int64((0..<count).map { Int64(Int16(bigEndian: body.loadUnaligned(fromByteOffset: 2 &* $0, as: Int16.self))) })
            case 0x0C:
                return .int64((0..<count).map { Int64(Int32(bigEndian: body.loadUnaligned(fromByteOffset: 4 &* $0, as: Int32.self))) })
            case 0x0D:
                return .float32((0..<count).map {
                    Float(bitPattern: UInt32(bigEndian: body.loadUnaligned(fromByteOffset: 4 &* $0, as: UInt32.self)))
                })
            default:
                return .float32((0..<count).map {
                    Float(Double(bitPattern: UInt64(bigEndian: body.loadUnaligned(fromByteOffset: 8 &* $0, as: UInt64.self))))
                })
            }
        }
        return try! Tensor(shape: shape, storage: storage)
    }

    /// Encodes a tensor as IDX bytes: `uint8` as `0x08`, `int8` as `0x09`,
    /// `int64` as `0x0C` (values must fit in Int32), everything else as `0x0D` float32.
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let typeByte: UInt8
        var body: [UInt8]
        switch tensor.storage {
        case .uint8(let v): typeByte = 0x08; body = v
        case .int8(let v): typeByte = 0x09; body = v.map { UInt8(bitPattern: $0) }
        case .int64(let v):
            typeByte = 0x0C
            body = []
            body.reserveCapacity(4 * v.count)
            for x in v { withUnsafeBytes(of: Int32(truncatingIfNeeded: x).bigEndian) { body.append(contentsOf: $0) } }
        default:
            typeByte = 0x0D
            let v = tensor.floats
            body = []
            body.reserveCapacity(4 * v.count)
            for x in v { withUnsafeBytes(of: x.bitPattern.bigEndian) { body.append(contentsOf: $0) } }
        }
        var out: [UInt8] = [0, 0, typeByte, UInt8(tensor.rank)]
        for d in tensor.shape { withUnsafeBytes(of: UInt32(d).bigEndian) { out.append(contentsOf: $0) } }
        return out + body
    }
}

func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { b in
        let s = String(b, radix: 16)
        return s.count == 1 ? "0" + s : s
    }.joined(separator: " ")
}
