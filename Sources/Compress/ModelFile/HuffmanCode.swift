/// A canonical Huffman code over the symbols `0..<lengths.count` (Huffman,
/// "A Method for the Construction of Minimum-Redundancy Codes", 1952), in the
/// canonical form of DEFLATE (RFC 1951 §3.2.2): the code is fully determined
/// by each symbol's code length, so a file stores only the lengths. Codes are
/// written most significant bit first.
///
/// Deep Compression (Han et al., ICLR 2016, §4) Huffman-codes the centroid
/// indices and the sparse relative positions of each layer.
public struct HuffmanCode: Sendable, Equatable {
    /// Bits per symbol; 0 for a symbol that never occurs.
    public let lengths: [UInt8]
    /// Per symbol, its code (the low `lengths[s]` bits).
    private let codes: [UInt32]

    /// The longest code built or accepted; longer optimal codes are limited to it.
    public static let maxLength = 24

    /// The optimal code for `frequencies` (one count per symbol), limited to
    /// `maxLength` bits. Ties between equal counts go to the lower symbol, so
    /// the same counts always give the same code. A single occurring symbol
    /// gets a 1-bit code; no occurring symbol gives an empty code.
    public init(frequencies: [Int]) {
        precondition(frequencies.allSatisfy { $0 >= 0 }, "Huffman frequencies must be non-negative")
        var lengths = [UInt8](repeating: 0, count: frequencies.count)
        let used = frequencies.indices.filter { frequencies[$0] > 0 }
        if used.count == 1 { lengths[used[0]] = 1 }
        if used.count > 1 {
            let depths = huffmanDepths(used.map { frequencies[$0] })
            var limited = limitedLengths(depths, limit: Self.maxLength)
            // Limiting keeps the multiset of lengths valid; hand the shortest to the most frequent.
            limited.sort()
            let byFrequency = used.indices.sorted { frequencies[used[$0]] != frequencies[used[$1]]
                ? frequencies[used[$0]] > frequencies[used[$1]] : used[$0] < used[$1] }
            for (rank, k) in byFrequency.enumerated() { lengths[used[k]] = UInt8(limited[rank]) }
        }
        self.lengths = lengths
        codes = canonicalCodes(lengths)
    }

    /// The code with these lengths, as read from a file: refused unless the
    /// lengths are at most `maxLength` and form a complete prefix code (or
    /// one symbol of length 1, or none).
    public init(lengths: [UInt8]) throws(HuffmanError) {
        guard lengths.allSatisfy({ Int($0) <= Self.maxLength }) else { throw .invalidLengths("a code is longer than \(Self.maxLength) bits") }
        let used = lengths.filter { $0 > 0 }
        if used.count == 1 {
            guard used[0] == 1 else { throw .invalidLengths("a single symbol's code must be 1 bit") }
        } else if !used.isEmpty {
            let kraft = used.reduce(UInt64(0)) { $0 + (UInt64(1) << UInt64(Self.maxLength - Int($1))) }
            guard kraft == UInt64(1) << UInt64(Self.maxLength) else {
                throw .invalidLengths("the code lengths do not form a complete prefix code")
            }
        }
        self.lengths = lengths
        codes = canonicalCodes(lengths)
    }

    /// Bits `symbols` take in this code.
    public func bitCount(_ symbols: [Int]) -> Int {
        symbols.reduce(0) { $0 + Int(lengths[$1]) }
    }

    /// `symbols` coded, packed most significant bit first; the last byte is
    /// padded with zeros. Every symbol must have a code.
    public func encode(_ symbols: [Int]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (bitCount(symbols) + 7) / 8)
        var position = 0
        bytes.withUnsafeMutableBufferPointer { out in
            for s in symbols {
                let (code, length) = (codes[s], Int(lengths[s]))
                precondition(length > 0, "symbol \(s) has no Huffman code")
                for b in stride(from: length - 1, through: 0, by: -1) {
                    if (code >> UInt32(b)) & 1 == 1 { out[position >> 3] |= 0x80 >> UInt8(position & 7) }
                    position &+= 1
                }
            }
        }
        return bytes
    }

    /// The first `count` symbols coded in `bytes`; refused when the bits run
    /// out or spell no code.
    public func decode(_ bytes: [UInt8], count: Int) throws(HuffmanError) -> [Int] {
        guard count > 0 else { return [] }
        // Canonical decoding: per length, the first code and where its symbols start.
        var perLength = [Int](repeating: 0, count: Self.maxLength + 1)
        for l in lengths where l > 0 { perLength[Int(l)] += 1 }
        let symbolsByCode = lengths.indices.filter { lengths[$0] > 0 }.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        var firstCode = [Int](repeating: 0, count: Self.maxLength + 2)
        var firstIndex = [Int](repeating: 0, count: Self.maxLength + 2)
        var (code, index) = (0, 0)
        for l in 1...Self.maxLength {
            code = (code + (l > 1 ? perLength[l - 1] : 0)) << (l > 1 ? 1 : 0)
            firstCode[l] = code
            firstIndex[l] = index
            index += perLength[l]
        }
        var symbols: [Int] = []
        symbols.reserveCapacity(count)
        let totalBits = bytes.count * 8
        var position = 0
        while symbols.count < count {
            var (value, length) = (0, 0)
            while true {
                guard position < totalBits else { throw .truncated(decoded: symbols.count, expected: count) }
                value = value << 1 | Int(bytes[position >> 3] >> UInt8(7 - position & 7) & 1)
                position += 1
                length += 1
                guard length <= Self.maxLength else { throw .invalidCode(at: symbols.count) }
                let offset = value - firstCode[length]
                if perLength[length] > 0 && offset >= 0 && offset < perLength[length] {
                    symbols.append(symbolsByCode[firstIndex[length] + offset])
                    break
                }
            }
        }
        return symbols
    }
}

/// Why a Huffman code or stream was refused.
public enum HuffmanError: Error, Equatable, CustomStringConvertible {
    case invalidLengths(String)
    case truncated(decoded: Int, expected: Int)
    case invalidCode(at: Int)

    public var description: String {
        switch self {
        case .invalidLengths(let why): "invalid Huffman code: \(why)"
        case .truncated(let decoded, let expected): "Huffman stream ends after \(decoded) of \(expected) symbols"
        case .invalidCode(let at): "Huffman stream has no valid code at symbol \(at)"
        }
    }
}

/// Optimal code lengths for positive `counts` (at least two), by the
/// two-queue construction over the leaves sorted by (count, index).
private func huffmanDepths(_ counts: [Int]) -> [Int] {
    let leaves = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] < counts[$1] : $0 < $1 }
    // Nodes 0..<n are leaves (in sorted order), then internal nodes in creation order.
    var weight = leaves.map { counts[$0] }
    var parent = [Int](repeating: -1, count: 2 * counts.count - 1)
    var (nextLeaf, nextInternal) = (0, counts.count)
    func takeSmallest() -> Int {
        // Internal nodes are made in non-decreasing weight; a leaf wins ties.
        if nextLeaf < counts.count && (nextInternal >= weight.count || weight[nextLeaf] <= weight[nextInternal]) {
            nextLeaf += 1
            return nextLeaf - 1
        }
        nextInternal += 1
        return nextInternal - 1
    }
    for _ in 0..<(counts.count - 1) {
        let (a, b) = (takeSmallest(), takeSmallest())
        weight.append(weight[a] + weight[b])
        parent[a] = weight.count - 1
        parent[b] = weight.count - 1
    }
    var depth = [Int](repeating: 0, count: weight.count)
    for node in stride(from: weight.count - 2, through: 0, by: -1) { depth[node] = depth[parent[node]] + 1 }
    var result = [Int](repeating: 0, count: counts.count)
    for (position, leaf) in leaves.enumerated() { result[leaf] = depth[position] }
    return result
}

/// `lengths` with none above `limit`, still a complete prefix code (the
/// adjustment of JPEG, ITU T.81 Annex K.3, on the count of codes per length).
private func limitedLengths(_ lengths: [Int], limit: Int) -> [Int] {
    guard let longest = lengths.max(), longest > limit else { return lengths }
    var perLength = [Int](repeating: 0, count: longest + 1)
    for l in lengths { perLength[l] += 1 }
    for i in stride(from: longest, to: limit, by: -1) {
        while perLength[i] > 0 {
            var j = i - 2
            while perLength[j] == 0 { j -= 1 }
            perLength[i] -= 2
            perLength[i - 1] += 1
            perLength[j + 1] += 2
            perLength[j] -= 1
        }
    }
    return perLength.indices.flatMap { l in [Int](repeating: l, count: perLength[l]) }
}

/// Canonical codes from lengths (RFC 1951 §3.2.2).
private func canonicalCodes(_ lengths: [UInt8]) -> [UInt32] {
    let maxLength = Int(lengths.max() ?? 0)
    guard maxLength > 0 else { return [UInt32](repeating: 0, count: lengths.count) }
    var perLength = [UInt32](repeating: 0, count: maxLength + 1)
    for l in lengths where l > 0 { perLength[Int(l)] += 1 }
    var next = [UInt32](repeating: 0, count: maxLength + 2)
    var code: UInt32 = 0
    for l in 1...maxLength {
        code = (code + (l > 1 ? perLength[l - 1] : 0)) << (l > 1 ? 1 : 0)
        next[l] = code
    }
    var codes = [UInt32](repeating: 0, count: lengths.count)
    for (s, l) in lengths.enumerated() where l > 0 {
        codes[s] = next[Int(l)]
        next[Int(l)] += 1
    }
    return codes
}
