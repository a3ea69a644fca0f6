import CZlib
import Compress
import Distill
import Foundation
import LowRank
import Prune

/// A reader of untrusted bytes that the fuzzers drive (`Fuzz/`,
/// `scripts/fuzz.sh`) and `FuzzRegressionTests` replays: each case does with
/// one input what the CLI does with a file, and either returns (the input was
/// read) or throws the error the CLI would print. Anything else (a trap, an
/// out-of-bounds access, a leak, an allocation the file's size does not
/// justify) is a bug the fuzzers report.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A native model file whose header is made valid for its payload (magic,
    /// version 1 or 2, length and CRC-32 recomputed), so every mutation of the
    /// payload reaches the protobuf decoder and the tensor decoders (dense,
    /// sparse, codebook, Huffman, hashed, float16, int8); then what
    /// `compressor info` computes.
    case native
    /// Any model file as it is, read as `compressor info` reads it
    /// (`ModelLoader`: format sniffing, the 24-byte header's checks).
    case header
    /// An ONNX model, then what `compressor info` computes.
    case onnx
    /// A pipeline file, parsed and checked as `compressor run` does before
    /// running anything (input model fixed to a small one, output in a
    /// scratch directory); nothing is run.
    case pipeline
    /// The bytes of an IDX file (MNIST layout).
    case idx
    /// The bytes of a `.npy` file.
    case npy

    /// Reads `bytes` as this target's file.
    ///
    /// - Throws: the error the CLI reports for bad input.
    public func run(_ bytes: [UInt8]) throws {
        switch self {
        case .native: try Self.inspect(ModelFile.decode(Self.withValidHeader(bytes), budget: Self.budget))
        case .header: try Self.inspect(ModelLoader.decode(bytes, budget: Self.budget))
        case .onnx: try Self.inspect(ONNXImporter.decode(bytes, budget: Self.budget))
        case .pipeline: try Self.checkPipeline(bytes)
        case .idx: _ = try IDX.decode(bytes, budget: Self.budget)
        case .npy: _ = try NPY.decode(bytes, budget: Self.budget)
        }
    }

    /// The memory budget the readers check declared sizes against: the
    /// fuzzers' `-malloc_limit_mb`, so a refused size is an error, not an
    /// out-of-memory report.
    public static let budget = MemoryBudget(bytes: 256 << 20, origin: "the fuzz targets' 256 MB")

    /// `file` with its first 24 bytes replaced by a valid native header for
    /// the bytes after them: magic, format version (the file's when it is 1
    /// or 2, else the current one), payload length and CRC-32. Shorter
    /// inputs are returned as they are.
    public static func withValidHeader(_ file: [UInt8]) -> [UInt8] {
        let headerSize = 24
        guard file.count >= headerSize else { return file }
        var out = file
        // The magic of `FileHeader`: "CMPRSSR" and a NUL.
        out.replaceSubrange(0..<8, with: Array("CMPRSSR\0".utf8))
        let version = UInt32(file[8]) | UInt32(file[9]) << 8 | UInt32(file[10]) << 16 | UInt32(file[11]) << 24
        let validVersion = (1...ModelFile.formatVersion).contains(version) ? version : ModelFile.formatVersion
        let crc = file.withUnsafeBufferPointer { buffer in
            UInt32(truncatingIfNeeded: crc32_z(0, buffer.baseAddress! + headerSize, buffer.count - headerSize))
        }
        write(validVersion, to: &out, at: 8)
        write(UInt64(file.count - headerSize), to: &out, at: 12)
        write(crc, to: &out, at: 20)
        return out
    }

    private static func write<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8], at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    /// What `compressor info` computes from a model: shapes, costs, the
    /// summary, encoded sizes, non-zero counts and shared-tensor costs.
    private static func inspect(_ model: Model) throws {
        let graph = model.graph
        _ = try graph.inferShapes(batch: 1)
        _ = try graph.costReport()
        _ = try ModelSummary(model)
        _ = ModelFile.encodedTensorSizes(model)
        _ = graph.initializers.values.reduce(0) { $0 + $1.nonZeroCount }
        _ = ModelFile.storageCosts(of: model.metadata.storage.sharedTensors, in: model)
    }

    /// Every pass `compressor run` knows (the CLI's registry).
    private static let registry = PassRegistry(PassRegistry.corePasses + PruneLibrary.passes
                                               + LowRankLibrary.passes + DistillLibrary.passes)

    /// A scratch directory holding the small input model every pipeline
    /// input is checked against, made once per process.
    private static let pipelineDirectory: String = {
        let directory = NSTemporaryDirectory() + "compressor-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let model = Architecture.lenet5.build(seed: 0, width: 0.1)
        try? ModelFile.write(model, to: directory + "/model.bin")
        return directory
    }()

    /// Parses and validates pipeline YAML as `compressor run` does before its
    /// first step (`Pipeline.plan`), with the input model and output fixed.
    private static func checkPipeline(_ bytes: [UInt8]) throws {
        let directory = pipelineDirectory
        let file = directory + "/pipeline.yaml"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let overrides = PipelineOverrides(model: directory + "/model.bin", output: directory + "/out.bin",
                                          reportDirectory: directory + "/report")
        _ = try Pipeline.plan(file: file, overrides: overrides, registry: registry)
    }
}
