import CZlib

/// One zlib stream (RFC 1950: deflate with an Adler-32 trailer), as the model
/// file stores its metadata (`Model.metadata_deflated` in proto/model.proto).
enum ZlibStream {
    /// `bytes` deflated at level 9. The same input and zlib build give the same bytes.
    static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var capacity = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                compress2(output.baseAddress, &capacity, input.baseAddress, uLong(input.count), 9)
            }
        }
        // compressBound covers every input, so only running out of memory fails.
        precondition(status == Z_OK, "zlib compress2 failed (\(status))")
        out.removeLast(out.count - Int(capacity))
        return out
    }

    /// The bytes `stream` inflates to, or a reason it cannot: not zlib, a bad
    /// checksum, cut short, bytes after the end, or more than `limit` bytes out.
    static func inflate(_ stream: UnsafeRawBufferPointer, limit: Int) -> Result<[UInt8], InflateFailure> {
        var z = z_stream()
        guard inflateInit_(&z, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return .failure(InflateFailure("zlib could not start"))
        }
        defer { inflateEnd(&z) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        z.next_in = UnsafeMutablePointer(mutating: stream.baseAddress?.assumingMemoryBound(to: UInt8.self))
        z.avail_in = uInt(stream.count)
        while true {
            let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                z.next_out = buffer.baseAddress
                z.avail_out = uInt(buffer.count)
                return CZlib.inflate(&z, Z_NO_FLUSH)
            }
            let produced = chunk.count - Int(z.avail_out)
            guard out.count + produced <= limit else {
                return .failure(InflateFailure("it inflates to more than \(limit) bytes"))
            }
            out += chunk[..<produced]
            switch status {
            case Z_STREAM_END:
                guard z.avail_in == 0 else { return .failure(InflateFailure("\(z.avail_in) bytes follow the end of its zlib stream")) }
                return .success(out)
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible: the input ran out before the stream's end.
                return .failure(InflateFailure("its zlib stream is cut short"))
            default:
                let message = z.msg.map { String(cString: $0) } ?? "error \(status)"
                return .failure(InflateFailure("zlib: \(message)"))
            }
        }
    }

    struct InflateFailure: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
