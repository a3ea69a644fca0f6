import Foundation
import Testing
@testable import Compress

/// `NPY.write` and `IDX.write` (plain and gzip) go through `writeFileAtomically`:
/// a failed write leaves the previous file byte for byte and no temporary file,
/// and a replaced file keeps its permission bits; gzip output is deterministic.
@Suite struct DataWriteFaultTests {
    static let tensor = try! Tensor(shape: [2, 3], storage: .uint8([1, 2, 3, 250, 251, 252]))

    /// The three data writers, each writing `tensor` to `path`.
    static let writers: [(name: String, write: @Sendable (Tensor, String) throws -> Void)] = [
        ("npy", { try NPY.write($0, path: $1) }),
        ("idx", { try IDX.write($0, path: $1) }),
        ("idx.gz", { try IDX.write($0, path: $1, gzip: true) }),
    ]

    @Test(arguments: 0..<3) func failedWriteLeavesThePreviousFileAndNoTemporary(_ k: Int) throws {
        let dir = try makeTemporaryDirectory("write-fault")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = Self.writers[k]
        // The target is a non-empty directory: every step but the rename succeeds.
        let occupied = dir + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied + "/inside", withIntermediateDirectories: true)
        let before = Data("previous content\n".utf8)
        try before.write(to: URL(fileURLWithPath: occupied + "/inside/kept.txt"))
        do {
            try writer.write(Self.tensor, occupied)
            Issue.record("\(writer.name): wrote over a directory")
        } catch let error as DataError {
            guard case .cannotWrite(let path, let reason) = error else {
                Issue.record("\(writer.name): \(error)")
                return
            }
            #expect(path == occupied)
            #expect(reason.hasPrefix("rename failed: "))
            #expect("\(error)".hasPrefix("cannot write \(occupied): rename failed: "))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["occupied"])
        #expect(FileManager.default.contents(atPath: occupied + "/inside/kept.txt") == before)

        // A missing directory: nothing is created anywhere.
        let nowhere = dir + "/no/such/dir/t.bin"
        #expect(throws: DataError.self) { try writer.write(Self.tensor, nowhere) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["occupied"])
    }

    @Test(arguments: 0..<3) func replacedFileKeepsItsPermissions(_ k: Int) throws {
        let dir = try makeTemporaryDirectory("write-mode")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.out"
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        for mode in [0o640, 0o600, 0o755] as [mode_t] {
            #expect(chmod(path, mode) == 0)
            try Self.writers[k].write(Self.tensor, path)
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o7777 == mode, "\(Self.writers[k].name): mode \(String(info.st_mode & 0o7777, radix: 8))")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["t.out"])
        let read = Self.writers[k].name == "npy" ? try NPY.read(path: path) : try IDX.read(path: path)
        #expect(read == Self.tensor)
    }

    /// Gzip output is one member that `gzread` reads back, the same bytes every time.
    @Test func gzipIsDeterministicAndReadable() throws {
        let dir = try makeTemporaryDirectory("write-gzip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = try Tensor(shape: [100, 100], storage: .uint8((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7 / 3) }))
        let (a, b) = (dir + "/a-idx3-ubyte.gz", dir + "/b-idx3-ubyte.gz")
        try IDX.write(big, path: a, gzip: true)
        try IDX.write(big, path: b, gzip: true)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: a))
        #expect(bytes == (try Data(contentsOf: URL(fileURLWithPath: b))))
        #expect(bytes.prefix(3) == Data([0x1F, 0x8B, 0x08]))
        #expect(bytes.count < 10_016)
        #expect(try IDX.read(path: a) == big)
    }
}
