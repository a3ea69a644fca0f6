import Foundation

/// NumPy's `.npy` array file format (format versions 1.0, 2.0 and 3.0 read;
/// 1.0 written). See `numpy.lib.format`.
///
/// Layout: the magic `\x93NUMPY`, a major and minor version byte, the header
/// length (little-endian UInt16 for 1.0, UInt32 for 2.0 and 3.0), then an
/// ASCII Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with
/// spaces and a newline so the data starts on a 64-byte boundary, then the
/// elements in C order.
///
/// Element types read, and the tensor dtype each becomes:
/// `<f4` float32, `<f8` float32 (narrowed), `<f2` float16, `|u1` uint8,
/// `|i1` int8, `|b1` uint8, `<i4`, `<i8`, `<u2`, `<u4`, `<i2` int64.
/// Big-endian data and Fortran order are refused with a clear error.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Reads a `.npy` file; its bytes and the array its header declares are
    /// checked against `budget` before they are allocated.
    public static func read(path: String, budget: MemoryBudget = .processDefault) throws(DataError) -> Tensor {
        try decode(readFileBytes(path: path, budget: budget), source: path, budget: budget)
    }

    /// Writes `tensor` as a version 1.0 `.npy` file.
    public static func write(_ tensor: Tensor, path: String) throws(DataError) {
        try writeFileBytes(encode(tensor), path: path)
    }

    /// The `descr` string NumPy uses for a tensor dtype.
    public static func descr(for dtype: DType) -> String {
        switch dtype {
        case .float32: "<f4"
        case .float16: "<f2"
        case .int8: "|i1"
        case .uint8: "|u1"
        case .int64: "<i8"
        }
    }

    /// Encodes a tensor as a version 1.0 `.npy` file, as `numpy.save` would.
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(descr(for: tensor.dtype))', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so magic + version + length + header + "\n" is a multiple of 64.
        let unpadded = magic.count + 2 + 2 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"

        let prefix = magic + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        let total = prefix.count + tensor.denseByteCount
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            _ = buffer.initialize(from: prefix)
            let body = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[prefix.count...]))
            switch tensor.storage {
            case .float32(let v):
                v.withUnsafeBufferPointer { $0.withMemoryRebound(to: UInt32.self) { storeLittleEndian($0, into: body) } }
            case .float16(let v): v.withUnsafeBufferPointer { storeLittleEndian($0, into: body) }
            case .int8(let v): v.withUnsafeBufferPointer { storeLittleEndian($0, into: body) }
            case .uint8(let v): v.withUnsafeBufferPointer { storeLittleEndian($0, into: body) }
            case .int64(let v): v.withUnsafeBufferPointer { storeLittleEndian($0, into: body) }
            }
            initialized = total
        }
    }

    private static func storeLittleEndian<T: FixedWidthInteger>(_ values: UnsafeBufferPointer<T>,
                                                                into body: UnsafeMutableRawBufferPointer) {
        let width = MemoryLayout<T>.size
        for i in 0..<values.count {
            body.storeBytes(of: values[i].littleEndian, toByteOffset: i &* width, as: T.self)
        }
    }

    /// Decodes the bytes of a `.npy` file. `source` names the file in errors.
    public static func decode(_ bytes: [UInt8], source: String = "npy data",
                              budget: MemoryBudget = .processDefault) throws(DataError) -> Tensor {
        guard bytes.count >= 10 else {
            throw .truncated(path: source, expectedBytes: 10, actualBytes: bytes.count)
        }
        guard Array(bytes[0..<6]) == magic else {
            throw .malformed(path: source, detail: "bad magic: a .npy file starts with \\x93NUMPY, got " + hex(bytes[0..<6]))
        }
        let major = bytes[6]
        let lengthStart = 8
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = lengthStart + 2
        case 2, 3:
            guard bytes.count >= 12 else { throw .truncated(path: source, expectedBytes: 12, actualBytes: bytes.count) }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = lengthStart + 4
        default:
            throw .unsupported(path: source, detail: "npy format version \(major).\(bytes[7]) (this reader knows 1.0, 2.0 and 3.0)")
        }
        let dataStart = headerStart + headerLength
        guard bytes.count >= dataStart else {
            throw .truncated(path: source, expectedBytes: dataStart, actualBytes: bytes.count)
        }
        guard let headerText = String(validating: bytes[headerStart..<dataStart], as: UTF8.self) else {
            throw .malformed(path: source, detail: "the header is not text")
        }
        let header: NPYHeader
        do { header = try NPYHeader(parsing: headerText) } catch {
            throw .malformed(path: source, detail: "bad header \(headerText.trimmingCharacters(in: .whitespacesAndNewlines)): \(error.detail)")
        }
        guard !header.fortranOrder else {
            throw .unsupported(path: source, detail: "fortran_order is True; only C-order arrays are supported "
                               + "(save with numpy.ascontiguousarray)")
        }
        guard let element = NPYElement(descr: header.descr) else {
            throw .unsupported(path: source, detail: "unsupported dtype '\(header.descr)' (supported: "
                               + "<f4, <f8, <f2, |u1, |i1, |b1, <i2, <i4, <i8, <u2, <u4; little-endian only)")
        }
        guard let dataBytes = declaredDataBytes(shape: header.shape, elementWidth: element.width, after: dataStart) else {
            throw .malformed(path: source, detail: "its header announces \(header.shape) elements, more than a file can hold")
        }
        try checkDeclaredSize(header.shape, elementSize: element.storedWidth, source: source, budget: budget)
        let count = dataBytes / element.width
        let expected = dataStart + dataBytes
        guard bytes.count >= expected else {
            throw .truncated(path: source, expectedBytes: expected, actualBytes: bytes.count)
        }
        guard bytes.count == expected else {
            throw .malformed(path: source, detail: "\(bytes.count - expected) bytes follow the \(expected) bytes "
                             + "its header \(header.shape) announces")
        }
        let storage = bytes.withUnsafeBytes { raw in
            element.decode(UnsafeRawBufferPointer(rebasing: raw[dataStart..<expected]), count: count)
        }
        return try! Tensor(shape: header.shape, storage: storage)
    }

}

/// The element types `.npy` decoding accepts.
enum NPYElement {
    case f4, f8, f2, u1, i1, i2, i4, i8, u2, u4

    init?(descr: String) {
        // '=' means native order, which is little-endian on every platform we build for.
        var d = Substring(descr)
        if let first = d.first, "<|=".contains(first) { d = d.dropFirst() } else if d.count != 2 || d.first == ">" { return nil }
        switch d {
        case "f4": self = .f4
        case "f8": self = .f8
        case "f2": self = .f2
        case "u1", "b1": self = .u1
        case "i1": self = .i1
        case "i2": self = .i2
        case "i4": self = .i4
        case "i8": self = .i8
        case "u2": self = .u2
        case "u4": self = .u4
        default: return nil
        }
    }

    var width: Int {
        switch self {
        case .u1, .i1: 1
        case .f2, .i2, .u2: 2
        case .f4, .i4, .u4: 4
        case .f8, .i8: 8
        }
    }

    /// Bytes of one element once decoded (`decode`'s storage).
    var storedWidth: Int {
        switch self {
        case .u1, .i1: 1
        case .f2: 2
        case .f4, .f8: 4
        case .i2, .i4, .i8, .u2, .u4: 8
        }
    }

    func decode(_ body: UnsafeRawBufferPointer, count: Int) -> TensorStorage {
        /// Reads `count` little-endian `T`s, each converted by `convert`, in one pass.
        func load<T: FixedWidthInteger, U>(_: T.Type, _ convert: (T) -> U) -> [U] {
            [U](unsafeUninitializedCapacity: count) { buffer, initialized in
                let width = MemoryLayout<T>.size
                for i in 0..<count {
                    buffer[i] = convert(T(littleEndian: body.loadUnaligned(fromByteOffset: i &* width, as: T.self)))
                }
                initialized = count
            }
        }
        switch self {
        case .u1: return .uint8(Array(body))
        case .i1: return .int8(body.map { Int8(bitPattern: $0) })
        case .f2: return .float16(load(UInt16.self) { $0 })
        case .f4: return .float32(load(UInt32.self) { Float(bitPattern: $0) })
        case .f8: return .float32(load(UInt64.self) { Float(Double(bitPattern: $0)) })
        case .i2: return .int64(load(Int16.self) { Int64($0) })
        case .i4: return .int64(load(Int32.self) { Int64($0) })
        case .i8: return .int64(load(Int64.self) { $0 })
        case .u2: return .int64(load(UInt16.self) { Int64($0) })
        case .u4: return .int64(load(UInt32.self) { Int64($0) })
        }
    }
}

/// The three keys of a `.npy` header dict.
struct NPYHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    struct ParseError: Error { var detail: String }

    /// Parses the Python dict literal NumPy writes. Only the literal forms a
    /// header can hold are accepted: quoted strings, `True`/`False`, and tuples
    /// of non-negative integers.
    init(parsing text: String) throws(ParseError) {
        var p = PythonLiteralScanner(Array(text.utf8))
        var descr: String?, fortran: Bool?, shape: [Int]?
        try p.expect(UInt8(ascii: "{"))
        while true {
            p.skipSpace()
            if p.consume(UInt8(ascii: "}")) { break }
            let key = try p.string()
            try p.expect(UInt8(ascii: ":"))
            switch key {
            case "descr": descr = try p.string()
            case "fortran_order": fortran = try p.bool()
            case "shape": shape = try p.intTuple()
            default: throw ParseError(detail: "unexpected key '\(key)'")
            }
            p.skipSpace()
            if p.consume(UInt8(ascii: ",")) { continue }
            try p.expect(UInt8(ascii: "}"))
            break
        }
        p.skipSpace()
        guard p.atEnd else { throw ParseError(detail: "text after the closing brace") }
        guard let descr else { throw ParseError(detail: "missing key 'descr'") }
        guard let fortran else { throw ParseError(detail: "missing key 'fortran_order'") }
        guard let shape else { throw ParseError(detail: "missing key 'shape'") }
        self.descr = descr; self.fortranOrder = fortran; self.shape = shape
    }
}

/// A cursor over the bytes of a Python literal.
struct PythonLiteralScanner {
    let bytes: [UInt8]
    var i = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { i >= bytes.count }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
    }

    mutating func consume(_ c: UInt8) -> Bool {
        skipSpace()
        if i < bytes.count, bytes[i] == c { i += 1; return true }
        return false
    }

    mutating func expect(_ c: UInt8) throws(NPYHeader.ParseError) {
        guard consume(c) else {
            throw NPYHeader.ParseError(detail: "expected '\(Character(Unicode.Scalar(c)))' at offset \(i)")
        }
    }

    mutating func string() throws(NPYHeader.ParseError) -> String {
        skipSpace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "'") || bytes[i] == UInt8(ascii: "\"") else {
            throw NPYHeader.ParseError(detail: "expected a quoted string at offset \(i)")
        }
        let quote = bytes[i]
        let start = i + 1
        guard let end = bytes[start...].firstIndex(of: quote) else {
            throw NPYHeader.ParseError(detail: "unterminated string at offset \(i)")
        }
        i = end + 1
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    mutating func bool() throws(NPYHeader.ParseError) -> Bool {
        skipSpace()
        let rest = bytes[i...]
        if rest.starts(with: "True".utf8) { i += 4; return true }
        if rest.starts(with: "False".utf8) { i += 5; return false }
        throw NPYHeader.ParseError(detail: "expected True or False at offset \(i)")
    }

    mutating func intTuple() throws(NPYHeader.ParseError) -> [Int] {
        try expect(UInt8(ascii: "("))
        var values: [Int] = []
        while true {
            if consume(UInt8(ascii: ")")) { return values }
            skipSpace()
            let start = i
            var value = 0
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(bytes[i] - 0x30))
                guard !o1, !o2 else { throw NPYHeader.ParseError(detail: "dimension too large at offset \(start)") }
                value = a
                i += 1
            }
            guard i > start else { throw NPYHeader.ParseError(detail: "expected a dimension at offset \(start)") }
            // NumPy on Python 2 wrote "3L" for long integers.
            if i < bytes.count, bytes[i] == UInt8(ascii: "L") { i += 1 }
            values.append(value)
            if consume(UInt8(ascii: ",")) { continue }
            try expect(UInt8(ascii: ")"))
            return values
        }
    }
}

/// Throws `DataError.exceedsMemoryBudget` when the array a data file's header
/// declares (`shape` of `elementSize`-byte elements, as decoded) needs more
/// than `budget`: checked before the file's length, so a short file declaring
/// a huge array gets the budget's message.
func checkDeclaredSize(_ shape: [Int], elementSize: Int, source: String, budget: MemoryBudget) throws(DataError) {
    let array = MemoryNeed.TensorSize(name: source, shape: shape, elementSize: elementSize)
    do {
        try budget.check(MemoryNeed(purpose: "reading \(source)", tensors: [array]))
    } catch {
        throw .exceedsMemoryBudget(error)
    }
}
