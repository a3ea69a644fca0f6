import CZlib
import Foundation

/// Reads a whole file into memory, inflating it first when it is gzip-compressed.
///
/// zlib's `gzread` passes uncompressed files through unchanged, so one code path
/// serves `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz` alike.
/// A gzip stream cut short is reported as truncated, not silently shortened;
/// one that inflates to more than `budget` is refused as soon as it does.
func readFileBytes(path: String, budget: MemoryBudget = .processDefault) throws(DataError) -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw .cannotOpen(path: path, reason: "no such file")
    }
    guard !isDirectory.boolValue else { throw .cannotOpen(path: path, reason: "it is a directory") }
    guard let file = gzopen(path, "rb") else {
        throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
    }
    defer { gzclose(file) }
    gzbuffer(file, 1 << 18)

    let fileSize = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    var bytes: [UInt8] = []
    // Fashion-MNIST images compress about 1.8x; reserving 2x the file avoids most regrowth.
    bytes.reserveCapacity(max(fileSize * 2, 1 << 16))
    let chunkSize = 1 << 20
    var chunk = [UInt8](repeating: 0, count: chunkSize)
    while true {
        let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunkSize)) }
        if n < 0 { break }
        if n == 0 { break }
        if bytes.count + Int(n) > budget.bytes {
            throw .exceedsMemoryBudget(MemoryBudgetExceeded(
                need: MemoryNeed(purpose: "reading \(path)", bytes: bytes.count + Int(n)), budget: budget))
        }
        bytes.append(contentsOf: chunk[0..<Int(n)])
    }
    var errnum: Int32 = 0
    let message = gzerror(file, &errnum).map { String(cString: $0) } ?? "unknown zlib error"
    if errnum != Z_OK && errnum != Z_STREAM_END {
        if errnum == Z_BUF_ERROR {
            throw .malformed(path: path, detail: "the gzip stream ends early (\(message)) after \(bytes.count) bytes")
        }
        if errnum == Z_ERRNO {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        throw .malformed(path: path, detail: "zlib: \(message)")
    }
    return bytes
}

/// Bytes of the elements a data file's header declares (`shape`, elements of
/// `elementWidth` bytes), or nil when they and the `headerBytes` before them
/// exceed `Int.max`: a header can declare dimensions whose product overflows.
func declaredDataBytes(shape: [Int], elementWidth: Int, after headerBytes: Int) -> Int? {
    guard let count = shape.checkedElementCount else { return nil }
    let (bytes, overflow) = count.multipliedReportingOverflow(by: elementWidth)
    return !overflow && bytes <= Int.max - headerBytes ? bytes : nil
}

/// Writes `bytes` to `path`, gzip-compressed when `gzip` is true, atomically
/// (`writeFileAtomically`): `path` keeps its old content unless every byte is written.
func writeFileBytes(_ bytes: [UInt8], path: String, gzip: Bool = false) throws(DataError) {
    do {
        try writeFileAtomically(gzip ? gzipMember(bytes) : bytes, to: path)
    } catch {
        throw .cannotWrite(path: path, reason: (error as? FileWriteError).map(\.explanation)
                               ?? "\(error)")
    }
}

/// `bytes` as one gzip member (RFC 1952: deflate at level 9 with a gzip header
/// and CRC-32 trailer; no name, modification time 0), as `gzread` reads it back.
/// The same input and zlib build give the same bytes.
private func gzipMember(_ bytes: [UInt8]) -> [UInt8] {
    var z = z_stream()
    // windowBits 15 + 16: a gzip wrapper instead of zlib's.
    var status = deflateInit2_(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                               Int32(MemoryLayout<z_stream>.size))
    precondition(status == Z_OK, "zlib deflateInit2 failed (\(status))")
    defer { deflateEnd(&z) }
    // The bound covers every input (plus the gzip header and trailer), so one call finishes.
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&z, uLong(bytes.count))) + 32)
    var input = bytes
    status = input.withUnsafeMutableBufferPointer { source in
        out.withUnsafeMutableBufferPointer { target in
            z.next_in = source.baseAddress
            z.avail_in = uInt(source.count)
            z.next_out = target.baseAddress
            z.avail_out = uInt(target.count)
            return deflate(&z, Z_FINISH)
        }
    }
    precondition(status == Z_STREAM_END, "zlib deflate failed (\(status))")
    out.removeLast(out.count - Int(z.total_out))
    return out
}
