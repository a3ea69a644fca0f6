/// How a stream of fixed-alphabet symbols (codebook indices, sparse gaps) is
/// stored: packed at a fixed width, or Huffman-coded (`HuffmanTable` in
/// `proto/model.proto`).
enum StreamCoding: Equatable {
    /// Each symbol at the stream's fixed width, least significant bit first.
    case fixed
    /// The canonical Huffman code over the alphabet and the coded bits of the stream.
    case huffman(HuffmanCode, bitCount: Int)

    /// The code for symbol `frequencies` and the bits the stream takes in it.
    static func huffman(frequencies: [Int]) -> StreamCoding {
        let code = HuffmanCode(frequencies: frequencies)
        var bits = 0
        for (symbol, count) in frequencies.enumerated() { bits &+= count &* Int(code.lengths[symbol]) }
        return .huffman(code, bitCount: bits)
    }

    /// Bytes of the stream's data (`fixedWidth` bits per symbol when fixed).
    func dataByteCount(symbols: Int, fixedWidth: Int) -> Int {
        switch self {
        case .fixed: (symbols &* fixedWidth &+ 7) / 8
        case .huffman(_, let bits): (bits &+ 7) / 8
        }
    }

    /// Bytes of the `HuffmanTable` field numbered `fieldNumber`, 0 when fixed.
    func tableFieldSize(fieldNumber: Int) -> Int {
        guard case .huffman(let code, _) = self else { return 0 }
        return lengthDelimitedFieldSize(
            fieldNumber: fieldNumber, contentSize: lengthDelimitedFieldSize(fieldNumber: 1, contentSize: code.lengths.count))
    }

    var isHuffman: Bool { if case .huffman = self { true } else { false } }

    /// The stream of `symbols`: Huffman-coded, or `fixedWidth` bits each packed LSB first.
    func bytes(_ symbols: [Int], fixedWidth: Int) -> [UInt8] {
        if case .huffman(let code, _) = self { return code.encode(symbols) }
        var bytes = [UInt8](repeating: 0, count: dataByteCount(symbols: symbols.count, fixedWidth: fixedWidth))
        bytes.withUnsafeMutableBytes { out in
            var writer = FixedWidthWriter(bytes: out, width: fixedWidth)
            for s in symbols { writer.append(s) }
            writer.finish()
        }
        return bytes
    }
}

/// The distinct values of a weight-shared float32 tensor: its centroids in
/// IEEE 754 totalOrder, +0.0 apart (code 0 when present).
struct StoredCodebook: Equatable {
    /// The most codes a codebook has (8-bit indices).
    static let maxCodes = 256

    /// Bit patterns of the distinct values other than +0.0, in totalOrder.
    var centroids: [UInt32]
    /// How many elements hold each centroid.
    var counts: [Int]
    /// Elements holding +0.0.
    var zeros: Int

    /// The codebook of `values`, or nil when they hold more than `maxCodes`
    /// distinct bit patterns (+0.0 included).
    init?(_ values: UnsafeBufferPointer<Float>) {
        var countByPattern: [UInt32: Int] = [:]
        var zeros = 0
        for value in values {
            let bits = value.bitPattern
            if bits == 0 { zeros &+= 1; continue }
            countByPattern[bits, default: 0] &+= 1
            if countByPattern.count + (zeros > 0 ? 1 : 0) > Self.maxCodes { return nil }
        }
        guard countByPattern.count + (zeros > 0 ? 1 : 0) <= Self.maxCodes else { return nil }
        centroids = countByPattern.keys.sorted { totalOrderKey($0) < totalOrderKey($1) }
        counts = centroids.map { countByPattern[$0]! }
        self.zeros = zeros
    }

    /// Whether every centroid converts to float16 and back bit for bit.
    var fitsFloat16: Bool {
        centroids.allSatisfy { bits in
            let value = Float(bitPattern: bits)
            return !value.isNaN && Float(Float16(value)).bitPattern == bits
        }
    }

    /// The code of each bit pattern of `centroids`, and code 0 for +0.0 when `zeroCode`.
    static func codes(of centroids: [UInt32], zeroCode: Bool) -> [UInt32: Int] {
        var codes: [UInt32: Int] = [:]
        if zeroCode { codes[0] = 0 }
        for (i, bits) in centroids.enumerated() { codes[bits] = i + (zeroCode ? 1 : 0) }
        return codes
    }
}

/// IEEE 754 totalOrder as an unsigned key: negatives reversed below positives.
private func totalOrderKey(_ bits: UInt32) -> UInt32 {
    bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
}

/// The layout of a `CodebookIndices` message: a codebook and `count` indices.
struct CodebookLayout: Equatable {
    /// Bit patterns of the centroids, in file order.
    var centroids: [UInt32]
    /// Whether code 0 is +0.0.
    var zeroCode: Bool
    /// Centroids stored as float16.
    var float16: Bool
    /// Indices in the stream.
    var count: Int
    var indexCoding: StreamCoding

    /// Codes in the codebook.
    var codeCount: Int { centroids.count + (zeroCode ? 1 : 0) }
    /// The fixed index width: the narrowest holding every code, at least 1.
    var indexBits: Int { Self.indexBits(codes: codeCount) }

    static func indexBits(codes: Int) -> Int {
        var bits = 1
        while 1 << bits < codes { bits += 1 }
        return bits
    }

    /// Bytes of the serialized `CodebookIndices` message.
    var messageSize: Int {
        let centroidBytes = centroids.count * (float16 ? 2 : 4)
        var size = lengthDelimitedFieldSize(fieldNumber: float16 ? 11 : 10,
                                            contentSize: lengthDelimitedFieldSize(fieldNumber: 1, contentSize: centroidBytes))
        if zeroCode { size += 2 }
        if !indexCoding.isHuffman { size += 2 }  // index_bits <= 8: key and a one-byte varint
        size += lengthDelimitedFieldSize(fieldNumber: 3,
                                         contentSize: indexCoding.dataByteCount(symbols: count, fixedWidth: indexBits))
        return size + indexCoding.tableFieldSize(fieldNumber: 4)
    }

    /// The layouts of `count` indices drawn from `codebook` with `frequencies`
    /// per code: fixed-width, then Huffman-coded when `huffman` is allowed.
    static func candidates(_ codebook: StoredCodebook, zeroCode: Bool, float16: Bool, frequencies: [Int],
                           huffman: Bool) -> [CodebookLayout] {
        let count = frequencies.reduce(0, +)
        let fixed = CodebookLayout(centroids: codebook.centroids, zeroCode: zeroCode, float16: float16, count: count,
                                   indexCoding: .fixed)
        guard huffman else { return [fixed] }
        var coded = fixed
        coded.indexCoding = .huffman(frequencies: frequencies)
        return [fixed, coded]
    }

    /// The stream of `symbols` (each a code) in this layout.
    func indexBytes(_ symbols: [Int]) -> [UInt8] {
        precondition(symbols.count == count)
        return indexCoding.bytes(symbols, fixedWidth: indexBits)
    }
}

// MARK: - Reading

/// Reads a stream of `count` symbols below `alphabet`, fixed-width or
/// Huffman-coded, checking every length and code; errors are `detail`
/// strings for the caller's tensor error.
struct SymbolStreamReader {
    let count: Int
    let alphabet: Int
    let data: UnsafeRawBufferPointer
    /// The fixed width, or nil when Huffman-coded by `code`.
    let width: Int?
    let code: HuffmanCode?

    /// `what` and `one` name the stream and one symbol ("indices", "index") in errors.
    func symbols(_ what: String, one: String) throws(StreamError) -> [Int] {
        if let code {
            // Every code is at least one bit: a shorter stream cannot hold `count` symbols.
            guard data.count >= (count + 7) / 8 else {
                throw StreamError("\(data.count) bytes of Huffman-coded \(what) cannot hold \(count) symbols")
            }
            let bytes = [UInt8](data)
            let symbols: [Int]
            do {
                symbols = try code.decode(bytes, count: count)
            } catch {
                throw StreamError("\(what): \(error)")
            }
            let bits = code.bitCount(symbols)
            guard data.count == (bits + 7) / 8 else {
                throw StreamError("\(data.count) bytes of Huffman-coded \(what), its \(count) symbols take \((bits + 7) / 8)")
            }
            if bits % 8 != 0, bytes[bytes.count - 1] & (0xFF >> UInt8(bits % 8)) != 0 {
                throw StreamError("the padding bits after the last Huffman-coded \(what) are not zero")
            }
            return symbols
        }
        let width = width!
        let expected = (count * width + 7) / 8
        guard data.count == expected else {
            throw StreamError("\(data.count) bytes of \(what), \(count) of \(width) bits need \(expected)")
        }
        var symbols = [Int](repeating: 0, count: count)
        let mask = UInt64(1) << UInt64(width) &- 1
        var pending: UInt64 = 0
        var pendingBits = 0
        var offset = 0
        for i in 0..<count {
            while pendingBits < width {
                pending |= UInt64(data[offset]) << UInt64(pendingBits)
                offset &+= 1
                pendingBits &+= 8
            }
            let s = Int(truncatingIfNeeded: pending & mask)
            guard s < alphabet else {
                throw StreamError("\(one) \(i) is \(s), past the \(alphabet) codes")
            }
            symbols[i] = s
            pending >>= UInt64(width)
            pendingBits &-= width
        }
        guard pending == 0 else { throw StreamError("the padding bits after the last \(one) are not zero") }
        return symbols
    }

    /// The Huffman code of a table's `lengths`, which must have `alphabet` entries.
    static func code(lengths: UnsafeRawBufferPointer, alphabet: Int, _ what: String) throws(StreamError) -> HuffmanCode {
        guard lengths.count == alphabet else {
            throw StreamError("the Huffman table of the \(what) has \(lengths.count) code lengths for \(alphabet) symbols")
        }
        do {
            return try HuffmanCode(lengths: [UInt8](lengths))
        } catch {
            throw StreamError("the Huffman table of the \(what): \(error)")
        }
    }
}

/// Why a symbol stream was refused; the caller names the tensor.
struct StreamError: Error {
    let detail: String
    init(_ detail: String) { self.detail = detail }
}

/// Packs fixed-width values into bytes, least significant bit first (the
/// layout of `SparseFloat32.gaps` and `CodebookIndices.indices`).
struct FixedWidthWriter {
    let bytes: UnsafeMutableRawBufferPointer
    let width: Int
    var pending: UInt64 = 0
    var pendingBits = 0
    var offset = 0

    init(bytes: UnsafeMutableRawBufferPointer, width: Int) {
        self.bytes = bytes
        self.width = width
    }

    mutating func append(_ value: Int) {
        pending |= UInt64(truncatingIfNeeded: value) << UInt64(pendingBits)
        pendingBits &+= width
        while pendingBits >= 8 {
            bytes[offset] = UInt8(truncatingIfNeeded: pending)
            pending >>= 8
            pendingBits &-= 8
            offset &+= 1
        }
    }

    /// Writes the last partial byte, its unused high bits zero.
    mutating func finish() {
        if pendingBits > 0 {
            bytes[offset] = UInt8(truncatingIfNeeded: pending)
            offset &+= 1
        }
    }
}
