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
    /// How the gaps are stored: fixed-width, or Huffman-coded where the model allows it.
    var gapCoding: StreamCoding = .fixed

    /// Bytes of the gaps stream.
    var gapByteCount: Int { gapCoding.dataByteCount(symbols: entryCount, fixedWidth: indexBits) }
    /// Bytes of the little-endian float32 values.
    var valueByteCount: Int { 4 &* entryCount }
    /// The largest gap one entry can express.
    var maxGap: Int { (1 << indexBits) - 1 }

    /// Bytes of the serialized `SparseFloat32` message with float32 values.
    var messageSize: Int {
        let values = lengthDelimitedFieldSize(fieldNumber: 1, contentSize: valueByteCount)
        return messageSize(valuesField: lengthDelimitedFieldSize(fieldNumber: 10, contentSize: values))
    }

    /// Bytes of the serialized `SparseFloat32` message with the values as
    /// the integers of an int8 grid, one byte per entry.
    var int8MessageSize: Int {
        let values = lengthDelimitedFieldSize(fieldNumber: 1, contentSize: entryCount)
        return messageSize(valuesField: lengthDelimitedFieldSize(fieldNumber: 12, contentSize: values))
    }

    /// Bytes of the serialized `SparseFloat32` message with the values as
    /// codebook indices in `codebook`.
    func messageSize(codebook: CodebookLayout) -> Int {
        messageSize(valuesField: lengthDelimitedFieldSize(fieldNumber: 11, contentSize: codebook.messageSize))
    }

    private func messageSize(valuesField: Int) -> Int {
        let indexBitsField = 2  // key and a one-byte varint: indexBits <= 16
        let entryCountField = 1 + varintSize(UInt64(entryCount))
        let gapsField = lengthDelimitedFieldSize(fieldNumber: 3, contentSize: gapByteCount)
        return indexBitsField + entryCountField + gapsField + gapCoding.tableFieldSize(fieldNumber: 4) + valuesField
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

    /// How often each gap 0...2^indexBits - 1 occurs at width `indexBits`,
    /// given the run of zeros before each non-zero element: a run of `g`
    /// takes `g >> indexBits` fillers of the maximum gap and ends with the gap
    /// `g & maxGap`.
    static func gapFrequencies(runs: [Int], indexBits: Int) -> [Int] {
        let maxGap = (1 << indexBits) - 1
        var frequencies = [Int](repeating: 0, count: maxGap + 1)
        for run in runs {
            frequencies[maxGap] &+= run >> indexBits
            frequencies[run & maxGap] &+= 1
        }
        return frequencies
    }

    /// The run of zeros before each non-zero element, in order.
    static func zeroRuns(of values: UnsafeBufferPointer<Float>) -> [Int] {
        var runs: [Int] = []
        var run = 0
        for value in values {
            guard value.bitPattern != 0 else { run &+= 1; continue }
            runs.append(run)
            run = 0
        }
        return runs
    }
}

/// How one initializer is stored in the model file.
enum TensorFileEncoding: Equatable {
    /// Every element, in the dense encoding of the tensor's dtype.
    case dense
    /// A float32 tensor of float16 values (`TensorPrecision.float16`) as DenseFloat16.
    case denseFloat16
    /// A float32 tensor on an int8 grid (`TensorPrecision.int8`) as DenseInt8.
    case denseInt8(QuantizationGrid)
    /// A float32 tensor on an int8 grid whose zero points are all 0, in the
    /// relative-index sparse layout with its entries' integers as int8: a
    /// pruned and quantized weight pays a byte per non-zero plus its gaps.
    case sparseInt8(SparseFloat32Layout, QuantizationGrid)
    /// A float32 tensor in the relative-index sparse layout.
    case sparseFloat32(SparseFloat32Layout)
    /// A weight-shared float32 tensor as a codebook and one index per element.
    case codebook(CodebookLayout)
    /// A weight-shared float32 tensor in the sparse layout, its entries'
    /// values as codebook indices.
    case sparseCodebook(SparseFloat32Layout, CodebookLayout)
    /// A hashed float32 tensor as its layout's bucket bit patterns and seed
    /// (HashedNets; see `HashedLayout`).
    case hashed(HashedLayout, buckets: [UInt32])

    /// The encoding the writer uses for `tensor`: the smallest of
    /// `candidates(for:shared:huffman:)`, the first among equals. Every
    /// dtype but float32 is dense. A function of the tensor and the options.
    init(choosingFor tensor: Tensor, shared: Bool = false, huffman: Bool = false, precision: TensorPrecision? = nil) {
        let candidates = Self.candidates(for: tensor, shared: shared, huffman: huffman, precision: precision)
        let denseByteCount = tensor.denseByteCount
        var best = candidates[0]
        var bestSize = best.fieldSize(denseByteCount: denseByteCount)
        for candidate in candidates.dropFirst() {
            let size = candidate.fieldSize(denseByteCount: denseByteCount)
            if size < bestSize { (best, bestSize) = (candidate, size) }
        }
        self = best
    }

    /// The encoding the writer uses for the initializer `name` of a model
    /// with these storage options. A tensor listed in `hashedTensors` whose
    /// values are exactly drawn from its layout also has the hashed encoding
    /// as a candidate, after all the others.
    init(choosingFor tensor: Tensor, named name: String, storage: StorageOptions) {
        self.init(choosingFor: tensor, shared: storage.sharedTensors.contains(name), huffman: storage.huffman,
                  precision: storage.precisions[name])
        guard let hashed = storage.hashedTensors[name], case .float32(let values) = tensor.storage,
              hashed.buckets >= 1 else { return }
        let layout = hashed.layout(count: values.count)
        guard let buckets = values.withUnsafeBufferPointer({ layout.exactBuckets(of: $0) }) else { return }
        let candidate = TensorFileEncoding.hashed(layout, buckets: buckets)
        let denseByteCount = tensor.denseByteCount
        if candidate.fieldSize(denseByteCount: denseByteCount) < fieldSize(denseByteCount: denseByteCount) {
            self = candidate
        }
    }

    /// Every encoding the writer considers for `tensor`, simplest first: dense;
    /// sparse float32 at each gap width, narrowest first, then (with
    /// `huffman`) the same with Huffman-coded gaps; and for a `shared` tensor
    /// of at most 256 distinct values the dense codebook (fixed-width, then
    /// Huffman-coded indices) and the sparse codebook at each gap width
    /// (gaps fixed, then coded, each with indices fixed, then coded).
    ///
    /// Huffman-coded gaps are left out at widths whose table alone (one byte
    /// per possible gap, 2^width) is at least as large as the smallest
    /// candidate without them: they cannot be the smallest there, and the
    /// wide tables are the costly part of the search.
    ///
    /// A tensor with a `precision` is stored in it: an int8 one as DenseInt8,
    /// or, when its grid's zero points are all 0 (so +0.0 is the integer 0),
    /// in the sparse layout with int8 values (``int8Candidates(values:grid:huffman:)``);
    /// a float16 one as DenseFloat16 in place of dense float32 (the sparse
    /// and codebook encodings keep its values exactly too).
    static func candidates(for tensor: Tensor, shared: Bool, huffman: Bool,
                           precision: TensorPrecision? = nil) -> [TensorFileEncoding] {
        guard case .float32(let values) = tensor.storage else { return [.dense] }
        if case .int8(let grid) = precision { return int8Candidates(values: values, grid: grid, huffman: huffman) }
        let dense: TensorFileEncoding = precision == .float16 ? .denseFloat16 : .dense
        let sparse = SparseFloat32Layout.candidates(for: values)
        let codebook = shared ? values.withUnsafeBufferPointer { StoredCodebook($0) } : nil

        var denseCodebooks: [TensorFileEncoding] = []
        // Per gap width, the codebook index layouts of its entries.
        var sparseIndices: [[CodebookLayout]] = sparse.map { _ in [] }
        if let codebook {
            let float16 = codebook.fitsFloat16
            let zeroCode = codebook.zeros > 0
            let frequencies = (zeroCode ? [codebook.zeros] : []) + codebook.counts
            denseCodebooks = CodebookLayout.candidates(codebook, zeroCode: zeroCode, float16: float16,
                                                       frequencies: frequencies, huffman: huffman).map { .codebook($0) }
            let nonZeros = values.count - codebook.zeros
            for (i, layout) in sparse.enumerated() {
                // Fillers hold +0.0: zero needs a code exactly when there are fillers.
                let fillers = layout.entryCount - nonZeros
                let frequencies = (fillers > 0 ? [fillers] : []) + codebook.counts
                sparseIndices[i] = CodebookLayout.candidates(codebook, zeroCode: fillers > 0, float16: float16,
                                                             frequencies: frequencies, huffman: huffman)
            }
        }
        func sparseCodebooks(_ gaps: SparseFloat32Layout, _ i: Int) -> [TensorFileEncoding] {
            sparseIndices[i].map { .sparseCodebook(gaps, $0) }
        }

        // Huffman-coded gaps where the table leaves room to win.
        var codedGaps: [SparseFloat32Layout?] = sparse.map { _ in nil }
        if huffman {
            let denseByteCount = tensor.denseByteCount
            let withoutCodedGaps = [dense] + sparse.map { .sparseFloat32($0) } + denseCodebooks
                + sparse.indices.flatMap { sparseCodebooks(sparse[$0], $0) }
            let smallest = withoutCodedGaps.map { $0.fieldSize(denseByteCount: denseByteCount) }.min()!
            let runs = values.withUnsafeBufferPointer { SparseFloat32Layout.zeroRuns(of: $0) }
            for (i, layout) in sparse.enumerated() where 1 << layout.indexBits < smallest {
                var coded = layout
                coded.gapCoding = .huffman(
                    frequencies: SparseFloat32Layout.gapFrequencies(runs: runs, indexBits: layout.indexBits))
                codedGaps[i] = coded
            }
        }

        var candidates: [TensorFileEncoding] = [dense] + sparse.map { .sparseFloat32($0) }
        candidates += codedGaps.compactMap { $0.map { .sparseFloat32($0) } }
        candidates += denseCodebooks
        for (i, layout) in sparse.enumerated() {
            candidates += sparseCodebooks(layout, i)
            if let coded = codedGaps[i] { candidates += sparseCodebooks(coded, i) }
        }
        return candidates
    }

    /// The encodings of a float32 tensor on the int8 `grid`: DenseInt8, then
    /// (zero points all 0) the sparse layout with int8 values at each gap
    /// width and, with `huffman`, with Huffman-coded gaps where the table
    /// leaves room to win (as for float32 values).
    static func int8Candidates(values: [Float], grid: QuantizationGrid, huffman: Bool) -> [TensorFileEncoding] {
        let dense = TensorFileEncoding.denseInt8(grid)
        guard grid.zeroPoints.allSatisfy({ $0 == 0 }) else { return [dense] }
        let sparse = SparseFloat32Layout.candidates(for: values)
        var candidates = [dense] + sparse.map { .sparseInt8($0, grid) }
        guard huffman else { return candidates }
        let denseByteCount = 4 * values.count
        let smallest = candidates.map { $0.fieldSize(denseByteCount: denseByteCount) }.min()!
        let runs = values.withUnsafeBufferPointer { SparseFloat32Layout.zeroRuns(of: $0) }
        for layout in sparse where 1 << layout.indexBits < smallest {
            var coded = layout
            coded.gapCoding = .huffman(frequencies: SparseFloat32Layout.gapFrequencies(runs: runs, indexBits: layout.indexBits))
            candidates.append(.sparseInt8(coded, grid))
        }
        return candidates
    }

    /// Bytes of the `Tensor.encoding` field for a tensor of `denseByteCount`
    /// bytes: field key, length and message.
    func fieldSize(denseByteCount: Int) -> Int {
        switch self {
        case .dense:
            lengthDelimitedFieldSize(fieldNumber: 10, contentSize: denseMessageSize(byteCount: denseByteCount))
        case .denseFloat16:
            lengthDelimitedFieldSize(fieldNumber: 12, contentSize: denseMessageSize(byteCount: denseByteCount / 2))
        case .denseInt8:
            lengthDelimitedFieldSize(fieldNumber: 13, contentSize: denseMessageSize(byteCount: denseByteCount / 4))
        case .sparseFloat32(let layout):
            lengthDelimitedFieldSize(fieldNumber: 20, contentSize: layout.messageSize)
        case .sparseInt8(let layout, _):
            lengthDelimitedFieldSize(fieldNumber: 20, contentSize: layout.int8MessageSize)
        case .codebook(let layout):
            lengthDelimitedFieldSize(fieldNumber: 30, contentSize: layout.messageSize)
        case .sparseCodebook(let gaps, let indices):
            lengthDelimitedFieldSize(fieldNumber: 20, contentSize: gaps.messageSize(codebook: indices))
        case .hashed(let layout, let buckets):
            lengthDelimitedFieldSize(fieldNumber: 40, contentSize: 1 + varintSize(layout.seed)
                                         + lengthDelimitedFieldSize(fieldNumber: 2, contentSize: 4 * buckets.count))
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
    /// The entries of `values` in this layout: each gap, and the bit pattern
    /// of each value (0 for fillers).
    func entries(_ values: UnsafeBufferPointer<Float>) -> (gaps: [Int], bitPatterns: [UInt32]) {
        var gaps: [Int] = []
        var bitPatterns: [UInt32] = []
        gaps.reserveCapacity(entryCount)
        bitPatterns.reserveCapacity(entryCount)
        let maxGap = maxGap
        var run = 0
        for value in values {
            let bitPattern = value.bitPattern
            guard bitPattern != 0 else { run &+= 1; continue }
            while run > maxGap {
                gaps.append(maxGap)
                bitPatterns.append(0)
                run &-= maxGap &+ 1
            }
            gaps.append(run)
            bitPatterns.append(bitPattern)
            run = 0
        }
        precondition(gaps.count == entryCount, "the layout was computed for other values")
        return (gaps, bitPatterns)
    }

    /// The gaps stream (`gapByteCount` bytes) of `gaps`.
    func gapBytes(_ gaps: [Int]) -> [UInt8] {
        gapCoding.bytes(gaps, fixedWidth: indexBits)
    }
}

// MARK: - Reading

/// Reads the entries of a `SparseFloat32` message, checking every bound
/// first: it never reads past its buffers or writes past the tensor.
struct SparseFloat32Reader {
    /// The entries' values.
    enum Values {
        /// Little-endian float32 bytes, 4 per entry.
        case float32(UnsafeRawBufferPointer)
        /// One bit pattern per entry (decoded codebook indices).
        case bitPatterns([UInt32])
        /// Two's-complement int8 integers, one byte per entry, read as their float values.
        case int8(UnsafeRawBufferPointer)
    }

    /// Tensor name, for errors.
    let tensor: String
    let elementCount: Int
    let indexBits: Int
    let entryCount: Int
    let gaps: UnsafeRawBufferPointer
    /// The gaps' Huffman code, nil when they are fixed-width.
    let gapCode: HuffmanCode?
    let values: Values

    /// Checks the message's numbers against each other and the tensor's
    /// element count. `gapLengths` is the gaps' Huffman table, when present.
    init(tensor: String, elementCount: Int, indexBits: UInt32, entryCount: UInt64,
         gaps: UnsafeRawBufferPointer, gapLengths: UnsafeRawBufferPointer? = nil,
         values: () throws(ModelFileError) -> Values) throws(ModelFileError) {
        func invalid(_ detail: String) -> ModelFileError { Self.invalid(tensor, detail) }
        try Self.checkElementCount(elementCount, tensor: tensor)
        guard indexBits >= 1, indexBits <= 16 else { throw invalid("index_bits is \(indexBits), not in 1...16") }
        guard entryCount <= UInt64(elementCount) else {
            throw invalid("\(entryCount) entries for \(elementCount) elements")
        }
        let layout = SparseFloat32Layout(indexBits: Int(indexBits), entryCount: Int(entryCount))
        let values = try values()
        switch values {
        case .float32(let bytes):
            guard bytes.count == layout.valueByteCount else {
                throw invalid("\(bytes.count) bytes of float32 values, \(entryCount) entries need \(layout.valueByteCount)")
            }
        case .bitPatterns(let patterns):
            precondition(patterns.count == layout.entryCount)
        case .int8(let bytes):
            guard bytes.count == layout.entryCount else {
                throw invalid("\(bytes.count) bytes of int8 values, \(entryCount) entries need \(layout.entryCount)")
            }
        }
        if let gapLengths {
            do {
                gapCode = try SymbolStreamReader.code(lengths: gapLengths, alphabet: layout.maxGap + 1, "gaps")
            } catch {
                throw invalid(error.detail)
            }
        } else {
            gapCode = nil
            guard gaps.count == layout.gapByteCount else {
                throw invalid("\(gaps.count) bytes of gaps, \(entryCount) entries of \(indexBits) bits need \(layout.gapByteCount)")
            }
        }
        self.tensor = tensor
        self.elementCount = elementCount
        self.indexBits = layout.indexBits
        self.entryCount = layout.entryCount
        self.gaps = gaps
        self.values = values
    }

    /// The writer's limit; it also bounds what a small file can make the reader allocate.
    static func checkElementCount(_ elementCount: Int, tensor: String) throws(ModelFileError) {
        guard elementCount <= Int(UInt32.max) / 4 else {
            throw invalid(tensor, "\(elementCount) elements exceed the format's 4 GiB tensor limit")
        }
    }

    private static func invalid(_ tensor: String, _ detail: String) -> ModelFileError {
        .invalidSparseTensor(tensor: tensor, detail: detail)
    }

    /// The tensor's elements, zeros where no entry is.
    func elements() throws(ModelFileError) -> [Float] {
        var decodedGaps: [Int]? = nil
        if let gapCode {
            let stream = SymbolStreamReader(count: entryCount, alphabet: 1 << indexBits, data: gaps, width: nil,
                                            code: gapCode)
            do {
                decodedGaps = try stream.symbols("gaps", one: "gap")
            } catch {
                throw Self.invalid(tensor, error.detail)
            }
        }
        var elements = [Float](repeating: 0, count: elementCount)
        try elements.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<Float>) throws(ModelFileError) in
            try scatter(into: out, decodedGaps: decodedGaps)
        }
        return elements
    }

    private func scatter(into out: UnsafeMutableBufferPointer<Float>, decodedGaps: [Int]?) throws(ModelFileError) {
        let mask = UInt64(1) << UInt64(indexBits) &- 1
        var pending: UInt64 = 0
        var pendingBits = 0
        var offset = 0
        var position = -1
        for entry in 0..<entryCount {
            let gap: Int
            if let decodedGaps {
                gap = decodedGaps[entry]
            } else {
                while pendingBits < indexBits {
                    pending |= UInt64(gaps[offset]) << UInt64(pendingBits)
                    offset &+= 1
                    pendingBits &+= 8
                }
                gap = Int(truncatingIfNeeded: pending & mask)
                pending >>= UInt64(indexBits)
                pendingBits &-= indexBits
            }
            position = position &+ 1 &+ gap
            guard position < elementCount else {
                throw Self.invalid(tensor, "entry \(entry) is at position \(position), past the \(elementCount) elements")
            }
            switch values {
            case .float32(let bytes):
                out[position] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: entry &* 4,
                                                                                           as: UInt32.self)))
            case .bitPatterns(let patterns):
                out[position] = Float(bitPattern: patterns[entry])
            case .int8(let bytes):
                out[position] = Float(Int8(bitPattern: bytes[entry]))
            }
        }
        guard pending == 0 else { throw Self.invalid(tensor, "the padding bits after the last gap are not zero") }
    }
}
