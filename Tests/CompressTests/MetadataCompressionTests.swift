import Foundation
import Testing
import CZlib
@testable import Compress

/// The model file's metadata as one zlib stream (`Model.metadata_deflated`,
/// format version 2).
@Suite struct MetadataCompressionTests {
    /// A model whose history is long, as a pruning schedule's is.
    static func modelWithLongHistory() -> Model {
        var model = ModelFileTests.smallModel()
        for step in 0..<12 {
            model.metadata.history.append(HistoryEntry(
                pass: "finetune", parameters: ["epochs": "4", "lr": "0.01", "momentum": "0.9", "crop-padding": "2",
                                               "schedule": "cosine", "weight-decay": "0.0005"],
                seed: UInt64(step) &* 0x9E37_79B9_7F4A_7C15,
                metrics: ["validation-accuracy": 0.9 + Double(step) / 1000, "best-epoch": 3]))
        }
        return model
    }

    /// The top-level fields of a payload: field number and the byte range of its content.
    static func topLevelFields(_ payload: ArraySlice<UInt8>) -> [(field: Int, range: Range<Int>)] {
        var fields: [(Int, Range<Int>)] = []
        var i = payload.startIndex
        func varint() -> Int {
            var (value, shift) = (0, 0)
            while true {
                let byte = Int(payload[i]); i += 1
                value |= (byte & 0x7F) << shift; shift += 7
                if byte < 0x80 { return value }
            }
        }
        while i < payload.endIndex {
            let key = varint()
            let length = varint()
            fields.append((key >> 3, i..<(i + length)))
            i += length
        }
        return fields
    }

    /// The file bytes with a new payload and a header whose length and CRC match it.
    static func file(withPayload payload: [UInt8]) -> [UInt8] {
        FileHeader(payload: payload).bytes + payload
    }

    @Test func metadataIsStoredDeflatedAndReadsBackExactly() throws {
        let model = Self.modelWithLongHistory()
        let bytes = try ModelFile.encode(model)
        let fields = Self.topLevelFields(bytes[24...])
        #expect(fields.map(\.field) == [1, 2, 4], "format, graph, deflated metadata; no plain metadata")
        #expect(try ModelFile.decode(bytes) == model)
        // The stream is zlib: it inflates (with zlib's own one-shot call) to the plain
        // Metadata message, which is more than twice as long.
        let stream = Array(bytes[fields[2].range])
        var size = uLong(1 << 20)
        var plain = [UInt8](repeating: 0, count: Int(size))
        #expect(uncompress(&plain, &size, stream, uLong(stream.count)) == Z_OK)
        #expect(Int(size) > 2 * stream.count)
        // Format version 2 in the header.
        #expect(bytes[8] == 2)
    }

    @Test func sameModelSameBytes() throws {
        #expect(try ModelFile.encode(Self.modelWithLongHistory()) == ModelFile.encode(Self.modelWithLongHistory()))
    }

    @Test func versionOneFilesWithPlainMetadataStillRead() throws {
        // A version-1 file: plain metadata (field 3) and version 1 in the header and format record.
        let model = Self.modelWithLongHistory()
        let bytes = try ModelFile.encode(model)
        let fields = Self.topLevelFields(bytes[24...])
        var size = uLong(1 << 20)
        var plain = [UInt8](repeating: 0, count: Int(size))
        let stream = Array(bytes[fields[2].range])
        #expect(uncompress(&plain, &size, stream, uLong(stream.count)) == Z_OK)
        plain.removeLast(plain.count - Int(size))
        var format = Array(bytes[fields[0].range])
        // FormatInfo: field 1 (version) is the first varint, written as key 0x08 then 2.
        #expect(format[0] == 0x08 && format[1] == 2)
        format[1] = 1
        func record(_ field: Int, _ content: [UInt8]) -> [UInt8] {
            var out = [UInt8(field << 3 | 2)]
            var n = content.count
            repeat { out.append(UInt8(n & 0x7F) | (n >= 0x80 ? 0x80 : 0)); n >>= 7 } while n > 0
            return out + content
        }
        let payload = record(1, format) + record(2, Array(bytes[fields[1].range])) + record(3, plain)
        var file = Self.file(withPayload: payload)
        file[8] = 1
        #expect(try ModelFile.decode(file) == model)
    }

    @Test func corruptCompressedMetadataIsRefused() throws {
        let bytes = try ModelFile.encode(Self.modelWithLongHistory())
        let fields = Self.topLevelFields(bytes[24...])
        let range = fields[2].range
        // Flip a byte in the middle of the stream: zlib's checks (or the Adler-32
        // trailer) catch it; the header CRC is recomputed so the mutation reaches the decoder.
        var payload = Array(bytes[24...])
        payload[(range.lowerBound + range.upperBound) / 2 - 24] ^= 0x55
        do {
            _ = try ModelFile.decode(Self.file(withPayload: payload))
            Issue.record("a corrupt metadata stream was accepted")
        } catch {
            guard case .invalidMetadata(let reason) = error else { Issue.record("wrong error \(error)"); return }
            #expect(!reason.isEmpty)
            #expect(error.description.hasPrefix("the model file's compressed metadata is corrupt: "))
        }
    }

    @Test func inflateNamesEachFailure() {
        func reason(_ bytes: [UInt8], limit: Int = 1 << 20) -> String? {
            let result = bytes.withUnsafeBytes { ZlibStream.inflate($0, limit: limit) }
            if case .failure(let f) = result { return f.reason }
            return nil
        }
        let text = Array(String(repeating: "finetune lr=0.01 ", count: 200).utf8)
        let stream = ZlibStream.compress(text)
        let inflated = try? stream.withUnsafeBytes { ZlibStream.inflate($0, limit: 1 << 20) }.get()
        #expect(inflated == text)
        #expect(reason(Array(stream.dropLast(5))) == "its zlib stream is cut short")
        #expect(reason(stream + [0]) == "1 bytes follow the end of its zlib stream")
        #expect(reason(stream, limit: 100) == "it inflates to more than 100 bytes")
        #expect(reason(Array("not zlib at all".utf8))?.hasPrefix("zlib: ") == true)
    }
}
