import CZlib

/// The fixed 24-byte header in front of a model file's protobuf payload:
/// magic, format version, payload length and payload CRC-32, all little-endian.
/// It lets a reader refuse a foreign, newer, truncated or corrupt file with a
/// precise message before handing any byte to the protobuf decoder.
struct FileHeader: Equatable {
    /// "CMPRSSR" and a NUL.
    static let magic: [UInt8] = Array("CMPRSSR\0".utf8)
    /// Header size in bytes: magic (8), version (4), payload length (8), CRC-32 (4).
    static let size = 24
    /// The format version this build writes and the newest it reads. Version
    /// 2 added `metadata_deflated` (the metadata as one zlib stream); version
    /// 1 files read as before.
    static let currentVersion: UInt32 = 2

    var version: UInt32
    var payloadLength: UInt64
    var payloadCRC: UInt32

    /// The header of `payload` in the current format.
    init(payload: [UInt8]) {
        version = Self.currentVersion
        payloadLength = UInt64(payload.count)
        payloadCRC = crc32(of: payload[...])
    }

    init(version: UInt32, payloadLength: UInt64, payloadCRC: UInt32) {
        self.version = version; self.payloadLength = payloadLength; self.payloadCRC = payloadCRC
    }

    /// The 24 header bytes.
    var bytes: [UInt8] {
        var out = Self.magic
        out.reserveCapacity(Self.size)
        appendLittleEndian(version, to: &out)
        appendLittleEndian(payloadLength, to: &out)
        appendLittleEndian(payloadCRC, to: &out)
        return out
    }

    /// Checks a whole file's bytes (header, length, checksum) and returns the
    /// payload. The checks run in the order that gives the most useful message:
    /// a foreign file is named as such before it is called short.
    static func payload(of file: [UInt8]) throws(ModelFileError) -> ArraySlice<UInt8> {
        guard !file.isEmpty else { throw .empty }
        let prefix = file.prefix(magic.count)
        guard prefix.elementsEqual(magic.prefix(prefix.count)) else {
            throw .wrongMagic(looksLike: sniffFormat(file))
        }
        guard file.count >= size else { throw .tooShort(byteCount: file.count, headerSize: size) }
        let header = FileHeader(version: readLittleEndian(file, at: 8),
                                payloadLength: readLittleEndian(file, at: 12),
                                payloadCRC: readLittleEndian(file, at: 20))
        guard header.version != 0 else { throw .invalidFormatVersion(0) }
        guard header.version <= currentVersion else {
            throw .newerFormat(version: header.version, supported: currentVersion)
        }
        let available = file.count - size
        guard UInt64(available) >= header.payloadLength else {
            throw .truncated(expectedPayload: header.payloadLength, actualPayload: available)
        }
        // payloadLength <= available, so it fits in Int.
        let length = Int(header.payloadLength)
        guard available == length else { throw .trailingBytes(count: available - length) }
        let payload = file[size...]
        let crc = crc32(of: payload)
        guard crc == header.payloadCRC else { throw .checksumMismatch(expected: header.payloadCRC, actual: crc) }
        return payload
    }
}

/// zlib's CRC-32 of `bytes`.
func crc32(of bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.withUnsafeBufferPointer { buffer in
        UInt32(truncatingIfNeeded: crc32_z(0, buffer.baseAddress, buffer.count))
    }
}

private func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    var v = value.littleEndian
    withUnsafeBytes(of: &v) { out.append(contentsOf: $0) }
}

/// Reads a little-endian integer at `offset`; the caller checks the bounds.
private func readLittleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
    var v: T = 0
    for i in (0..<MemoryLayout<T>.size).reversed() {
        v = (v << 8) | T(bytes[offset + i])
    }
    return v
}

/// A guess at what a file that is not a model file is, from its first bytes,
/// phrased to follow "it looks like".
func sniffFormat(_ bytes: [UInt8]) -> String? {
    func starts(with prefix: [UInt8]) -> Bool { bytes.starts(with: prefix) }
    if starts(with: [0x93] + Array("NUMPY".utf8)) { return "a NumPy .npy array" }
    if starts(with: Array("PK".utf8) + [3, 4]) { return "a zip archive, such as a PyTorch .pt checkpoint" }
    if starts(with: [0x89] + Array("HDF".utf8)) { return "an HDF5 file, such as a Keras .h5 model" }
    if bytes.count >= 2, bytes[0] == 0x80, (2...5).contains(bytes[1]) {
        return "a Python pickle, such as a PyTorch checkpoint"
    }
    // ONNX ModelProto starts with ir_version (field 1, varint: tag 0x08, a small
    // number), then usually producer_name, domain, graph or opset_import.
    if bytes.count >= 3, bytes[0] == 0x08, (1...20).contains(bytes[1]),
       [0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42].contains(bytes[2]) {
        return "an ONNX file: import it with the ONNX importer first"
    }
    // Some other protobuf message starting with field 1 as a varint.
    if bytes.first == 0x08 { return "a protobuf message, perhaps an ONNX file" }
    let head = bytes.prefix(64)
    if head.allSatisfy({ (0x20..<0x7F).contains($0) || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
        return "a text file"
    }
    return nil
}
