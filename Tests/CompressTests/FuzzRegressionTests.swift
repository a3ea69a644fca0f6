import Compress
import Foundation
import FuzzEntries
import Testing

/// Replays the inputs the fuzzers found (`scripts/fuzz.sh`,
/// docs/reliability.md) through the same readers, in the normal build: each
/// is either read or refused with a message, never a crash. The inputs live in
/// `Fixtures/fuzz/TARGET/`, one directory per `FuzzTarget`.
@Suite struct FuzzRegressionTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/fuzz")

    /// The fixture files of `target`, sorted by name.
    static func inputs(_ target: FuzzTarget) -> [URL] {
        let directory = fixtures.appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    /// The error `target` gives for the fixture `name`, or nil when it reads the input.
    static func outcome(_ target: FuzzTarget, _ name: String) throws -> String? {
        let bytes = Array(try Data(contentsOf: fixtures.appendingPathComponent("\(target.rawValue)/\(name)")))
        do { try target.run(bytes) } catch { return String(describing: error) }
        return nil
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyFoundInputIsReadOrRefused(target: FuzzTarget) throws {
        for file in Self.inputs(target) {
            let bytes = Array(try Data(contentsOf: file))
            do {
                try target.run(bytes)
            } catch {
                let message = String(describing: error)
                #expect(!message.isEmpty, "\(target) \(file.lastPathComponent): empty message")
            }
        }
    }

    /// A data file header whose dimensions multiply past `Int.max` trapped
    /// (IDX found by the fuzzer; NPY had the same code): now refused.
    @Test func dataShapesWhoseProductOverflowsAreRefused() throws {
        #expect(try Self.outcome(.idx, "dimension-product-overflow")
                == "IDX data is malformed: its header announces [4294967295, 4294967295] elements, more than a file can hold")
        #expect(try Self.outcome(.npy, "shape-product-overflow")
                == "npy data is malformed: its header announces [4611686018427387904, 4] elements, more than a file can hold")
        #expect(try Self.outcome(.idx, "crash-60524f7d1dce4d602b9c4490509bb1e0d8fe52a4")?
            .hasSuffix("more than a file can hold") == true)
    }

    /// An ONNX initializer whose dimensions (each under 2^40) multiply past
    /// `Int.max` trapped in `Tensor.init(shape:storage:)` (found by the ONNX
    /// fuzzer): the importer now refuses its size against the memory budget,
    /// and the tensor initializer checks the product for overflow.
    @Test func shapesWhoseProductOverflowsMatchNoStorage() throws {
        let message = try #require(try Self.outcome(.onnx, "crash-e9b86a354963d7823cd02ca43e03b38f8d8d19f2"))
        #expect(message.contains("loading the model's initializers needs 8.0 EiB of memory"))
        #expect(message.contains("more than the memory budget of 256.0 MiB"))
        let shape = [1 << 39, 1 << 39]
        #expect(throws: TensorError.elementCountMismatch(shape: shape, count: 0)) {
            try Tensor(shape: shape, storage: .float32([]))
        }
        #expect(TensorError.elementCountMismatch(shape: shape, count: 0).description
                == "tensor shape [549755813888, 549755813888] needs more than Int.max elements, got 0")
        #expect(try Tensor(shape: [1 << 39, 1 << 39, 0], storage: .float32([])).count == 0)
    }

    /// An empty pipeline file is refused as not a mapping (its read leaked
    /// 4 KB in Foundation's `String(contentsOfFile:)`, which the fuzzer reported).
    @Test func emptyPipelineFileIsRefused() throws {
        let message = try #require(try Self.outcome(.pipeline, "empty"))
        #expect(message.contains("the file must be a mapping with keys model, data, output"))
    }

    /// The native target repairs the header of a mutated file, so the payload
    /// reaches the decoder: a file with a wrong CRC is refused as it is and read
    /// once `withValidHeader` recomputes the checksum.
    @Test func nativeTargetRecomputesTheChecksum() throws {
        let model = Architecture.lenet5.build(seed: 0, width: 0.1)
        var file = try ModelFile.encode(model)
        file[20] ^= 0xFF
        #expect(throws: ModelFileError.self) { try FuzzTarget.header.run(file) }
        let repaired = FuzzTarget.withValidHeader(file)
        #expect(try ModelFile.decode(repaired) == model)
        // An unknown version becomes the current one; version 1 stays.
        file[8] = 9
        #expect(FuzzTarget.withValidHeader(file)[8] == UInt8(ModelFile.formatVersion))
        file[8] = 1
        #expect(FuzzTarget.withValidHeader(file)[8] == 1)
    }
}
