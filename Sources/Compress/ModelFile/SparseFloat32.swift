/// The relative-index sparse layout of a float32 tensor in the model file
/// (`SparseFloat32` in `proto/model.proto`): each stored entry is a gap, the
/// number of positions skipped since the previous entry, `indexBits` wide, and
/// a value. Runs of zeros longer than the widest gap are bridged by filler
/// entries holding +0.0.
///
/// Only the bit pattern 0 (+0.0) counts as zero, so -0.0 and NaNs are stored
/// as values and the round trip is bit-exact.
struct SparseFloat32Layout: Equatable {
    /// The gap widths the format allows.
    static let indexBitsRange = 1...16

    /// Width of each gap in bits.
    var indexBits: Int
    /// Stored entries: one per non-zero element plus the filler entries.
    var entryCount: Int

    /// Bytes of the bit-packed gaps.
    var gapByteCount: Int { (entryCount &* indexBits &+ 7) / 8 }
    /// Bytes of the little-endian float32 values.
    var valueByteCount: Int { 4 &* entryCount }
    /// The largest gap one entry can express.
    var maxGap: Int { (1 << indexBits) - 1 }

    /// Bytes of the serialized `SparseFloat32` message.
    var messageSize: Int {
        let indexBitsField = 2  // key and a one-byte varint: indexBits <= 16
        let entryCountField = 1 + varintSize(UInt64(entryCount))
        let gapsField = lengthDelimitedFieldSize(fieldNumber: 3, contentSize: gapByteCount)
        let values = lengthDelimitedFieldSize(fieldNumber: 1, contentSize: valueByteCount)
        return indexBitsField + entryCountField + gapsField + lengthDelimitedFieldSize(fieldNumber: 10, contentSize: values)
    }

    /// The layout of `values` for every allowed index width, narrowest first.
    static func candidates(for values: [Float]) -> [SparseFloat32Layout] {
        let entryCounts = values.withUnsafeBufferPointer { entryCountsByIndexBits(of: $0) }
        return indexBitsRange.map { SparseFloat32Layout(indexBits: $0, entryCount: entryCounts[$0 - 1]) }
    }

    /// The smallest layout of `values`; the narrowest index width among equals.
    static func smallest(for values: [Float]) -> SparseFloat32Layout {
        candidates(for: values).min { $0.messageSize < $1.messageSize }!
    }

    /// Entries needed at each index width 1...16 (element `b - 1` for width `b`).
    ///
    /// A run of `g` zeros before a non-zero element costs `g >> b` filler
    /// entries at width `b`: each filler covers `2^b` positions (its maximum
    /// gap plus itself), and the remainder, below `2^b`, fits in one gap.
    /// Trailing zeros need no entries.
    static func entryCountsByIndexBits(of values: UnsafeBufferPointer<Float>) -> [Int] {
        var fillers = [Int](repeating: 0, count: indexBitsRange.count)
        var nonZeros = 0
        fillers.withUnsafeMutableBufferPointer { fillers in
            var run = 0
            for value in values {
                guard value.bitPattern != 0 else { run &+= 1; continue }
                nonZeros &+= 1
                var bits = 1
                while bits <= 16, run >> bits != 0 {
                    fillers[bits &- 1] &+= run >> bits
                    bits &+= 1
                }
                run = 0
            }
        }
        return fillers.map { nonZeros &+ $0 }
    }
}

/// How one initializer is stored in the model file.
enum TensorFileEncoding: Equatable {
    /// Every element, in the dense encoding of the tensor's dtype.
    case dense
    /// A float32 tensor in the relative-index sparse layout.
    case sparseFloat32(SparseFloat32Layout)

    /// The encoding the writer uses for `tensor`: for float32, whichever of
    /// dense and the smallest sparse layout takes fewer bytes (dense on a
    /// tie); every other dtype is dense. A function of the tensor alone.
    init(choosingFor tensor: Tensor) {
        guard case .float32(let values) = tensor.storage else { self = .dense; return }
        let sparse = SparseFloat32Layout.smallest(for: values)
        self = sparse.messageSize < denseMessageSize(byteCount: tensor.denseByteCount) ? .sparseFloat32(sparse) : .dense
    }

    /// Bytes of the `Tensor.encoding` field for a tensor of `denseByteCount`
    /// bytes: field key, length and message.
    func fieldSize(denseByteCount: Int) -> Int {
        switch self {
        case .dense:
            lengthDelimitedFieldSize(fieldNumber: 10, contentSize: denseMessageSize(byteCount: denseByteCount))
        case .sparseFloat32(let layout):
            lengthDelimitedFieldSize(fieldNumber: 20, contentSize: layout.messageSize)
        }
    }
}

/// Bytes of a dense encoding message: its `data` field of `byteCount` bytes.
private func denseMessageSize(byteCount: Int) -> Int {
    lengthDelimitedFieldSize(fieldNumber: 1, contentSize: byteCount)
}

/// Bytes of a length-delimited protobuf field: key, length varint, content.
func lengthDelimitedFieldSize(fieldNumber: Int, contentSize: Int) -> Int {
    varintSize(UInt64(fieldNumber << 3 | 2)) + varintSize(UInt64(contentSize)) + contentSize
}

// MARK: - Writing

extension SparseFloat32Layout {
    /// Writes the gaps and values of `values` in this layout into `gaps`
    /// (`gapByteCount` bytes) and `storedValues` (`valueByteCount` bytes).
    func write(_ values: UnsafeBufferPointer<Float>, gaps: UnsafeMutableRawBufferPointer,
               storedValues: UnsafeMutableRawBufferPointer) {
        precondition(gaps.count == gapByteCount && storedValues.count == valueByteCount)
        var writer = GapWriter(bytes: gaps, indexBits: indexBits)
        var entry = 0
        func append(gap: Int, bitPattern: UInt32) {
            writer.append(gap)
            storedValues.storeBytes(of: bitPattern.littleEndian, toByteOffset: entry &* 4, as: UInt32.self)
            entry &+= 1
        }
        let maxGap = maxGap
        var run = 0
        for value in values {
            let bitPattern = value.bitPattern
            guard bitPattern != 0 else { run &+= 1; continue }
            while run > maxGap {
                append(gap: maxGap, bitPattern: 0)
                run &-= maxGap &+ 1
            }
            append(gap: run, bitPattern: bitPattern)
            run = 0
        }
        writer.finish()
        precondition(entry == entryCount, "the layout was computed for other values")
    }
}

/// Packs fixed-width gaps into bytes, least significant bit first.
private struct GapWriter {
    let bytes: UnsafeMutableRawBufferPointer
    let indexBits: Int
    var pending: UInt64 = 0
    var pendingBits = 0
    var offset = 0

    init(bytes: UnsafeMutableRawBufferPointer, indexBits: Int) {
        self.bytes = bytes
        self.indexBits = indexBits
    }

    mutating func append(_ gap: Int) {
        pending |= UInt64(truncatingIfNeeded: gap) << UInt64(pendingBits)
        pendingBits &+= indexBits
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

// MARK: - Reading

/// Reads the entries of a `SparseFloat32` message, checking every bound
/// first: it never reads past its buffers or writes past the tensor.
struct SparseFloat32Reader {
    /// Tensor name, for errors.
    let tensor: String
    let elementCount: Int
    let indexBits: Int
    let entryCount: Int
    let gaps: UnsafeRawBufferPointer
    let values: UnsafeRawBufferPointer

    /// Checks the message's numbers against each other and the tensor's
    /// element count; `values` are the float32 values' bytes.
    init(tensor: String, elementCount: Int, indexBits: UInt32, entryCount: UInt64,
         gaps: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer) throws(ModelFileError) {
        func invalid(_ detail: String) -> ModelFileError { Self.invalid(tensor, detail) }
        // The writer's limit; it also bounds what a small file can make the reader allocate.
        guard elementCount <= Int(UInt32.max) / 4 else {
            throw invalid("\(elementCount) elements exceed the format's 4 GiB tensor limit")
        }
        guard indexBits >= 1, indexBits <= 16 else { throw invalid("index_bits is \(indexBits), not in 1...16") }
        guard entryCount <= UInt64(elementCount) else {
            throw invalid("\(entryCount) entries for \(elementCount) elements")
        }
        let layout = SparseFloat32Layout(indexBits: Int(indexBits), entryCount: Int(entryCount))
        guard values.count == layout.valueByteCount else {
            throw invalid("\(values.count) bytes of float32 values, \(entryCount) entries need \(layout.valueByteCount)")
        }
        guard gaps.count == layout.gapByteCount else {
            throw invalid("\(gaps.count) bytes of gaps, \(entryCount) entries of \(indexBits) bits need \(layout.gapByteCount)")
        }
        self.tensor = tensor
        self.elementCount = elementCount
        self.indexBits = layout.indexBits
        self.entryCount = layout.entryCount
        self.gaps = gaps
        self.values = values
    }

    private static func invalid(_ tensor: String, _ detail: String) -> ModelFileError {
        .invalidSparseTensor(tensor: tensor, detail: detail)
    }

    /// The tensor's elements, zeros where no entry is.
    func elements() throws(ModelFileError) -> [Float] {
        var elements = [Float](repeating: 0, count: elementCount)
        try elements.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<Float>) throws(ModelFileError) in
            try scatter(into: out)
        }
        return elements
    }

    private func scatter(into out: UnsafeMutableBufferPointer<Float>) throws(ModelFileError) {
        let mask = UInt64(1) << UInt64(indexBits) &- 1
        var pending: UInt64 = 0
        var pendingBits = 0
        var offset = 0
        var position = -1
        for entry in 0..<entryCount {
            while pendingBits < indexBits {
                pending |= UInt64(gaps[offset]) << UInt64(pendingBits)
                offset &+= 1
                pendingBits &+= 8
            }
            let gap = Int(truncatingIfNeeded: pending & mask)
            pending >>= UInt64(indexBits)
            pendingBits &-= indexBits
            position = position &+ 1 &+ gap
            guard position < elementCount else {
                throw Self.invalid(tensor, "entry \(entry) is at position \(position), past the \(elementCount) elements")
            }
            let bitPattern = UInt32(littleEndian: values.loadUnaligned(fromByteOffset: entry &* 4, as: UInt32.self))
            out[position] = Float(bitPattern: bitPattern)
        }
        guard pending == 0 else { throw Self.invalid(tensor, "the padding bits after the last gap are not zero") }
    }
}
