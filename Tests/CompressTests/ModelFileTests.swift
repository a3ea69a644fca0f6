import Foundation
import Testing
@testable import Compress

@Suite struct ModelFileTests {
    // MARK: Fixtures

    /// A model whose graph uses every op, whose initializers use every dtype
    /// (with awkward float values), and whose metadata fills every field.
    static func everythingModel() -> Model {
        let conv = Conv2d(stride: Size2(2, 1), padding: Padding2(top: 1, left: 2, bottom: 3, right: 4),
                          dilation: Size2(1, 2), groups: 2)
        let pool = Pool2d(kernel: Size2(3, 2), stride: Size2(2, 1), padding: Padding2(top: 0, left: 1, bottom: 1, right: 0),
                          dilation: .square(1), ceilMode: true)
        let ops: [(Op, [String])] = [
            (.conv2d(conv), ["x", "conv.w", "conv.b"]),
            (.batchNorm(epsilon: 1e-5), ["v0", "bn.scale", "bn.bias", "bn.mean", "bn.var"]),
            (.relu, ["v1"]),
            (.relu6, ["v2"]),
            (.leakyRelu(alpha: 0.01), ["v3"]),
            (.sigmoid, ["v4"]),
            (.tanh, ["v5"]),
            (.maxPool(pool), ["v6"]),
            (.avgPool(Pool2d(kernel: .square(2)), countIncludePad: true), ["v7"]),
            (.avgPool(pool, countIncludePad: false), ["v8"]),
            (.globalAvgPool, ["v9"]),
            (.add, ["v10", "v10"]),
            (.sub, ["v11", "v10"]),
            (.mul, ["v12", "v11"]),
            (.div, ["v13", "v12"]),
            (.concat(axis: 1), ["v14", "v13", "v12"]),
            (.flatten(axis: 1), ["v15"]),
            (.reshape(shape: [0, -1]), ["v16"]),
            (.linear, ["v17", "fc.w", ""]),
            (.dropout(ratio: 0.5), ["v18"]),
            (.softmax(axis: -1), ["v19"]),
        ]
        let nodes = ops.enumerated().map { i, entry in
            Node(name: "node\(i) \(entry.0.kind)", op: entry.0, inputs: entry.1, output: "v\(i)")
        }
        let initializers: [String: Tensor] = [
            "conv.w": Tensor(shape: [4, 1, 3, 3], floats: (0..<36).map { Float($0) * 0.1 - 1.7 }),
            "conv.b": Tensor(shape: [4], floats: [-0.0, .infinity, -.infinity, .leastNonzeroMagnitude]),
            "bn.scale": Tensor(shape: [4], floats: [.greatestFiniteMagnitude, 1, .ulpOfOne, -1e-30]),
            "bn.bias": try! Tensor(shape: [4], storage: .float16([0x3C00, 0x8000, 0x7C00, 0x0001])),
            "bn.mean": try! Tensor(shape: [2, 2], storage: .int8([-128, -1, 0, 127])),
            "bn.var": try! Tensor(shape: [4], storage: .uint8([0, 1, 128, 255])),
            "fc.w": Tensor(shape: [3, 4], floats: (0..<12).map { Float($0) / 3 }),
            "shape": Tensor(shape: [2], int64s: [.min, .max]),
            "scalar": Tensor(shape: [], floats: [42]),
            "empty": Tensor(shape: [0, 5], floats: []),
            "ünïcödé ☃": try! Tensor(shape: [1], storage: .int64([-7])),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 8, 8]), GraphInput(name: "aux", sampleShape: [])],
                          outputs: ["v20", "v9"], nodes: nodes, initializers: initializers)
        let metadata = ModelMetadata(
            architecture: "lenet5",
            normalization: Normalization(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616]),
            classNames: ["airplane", "automobile", "", "chat 🐈"],
            history: [
                HistoryEntry(pass: "train", parameters: ["epochs": "3", "lr": "0.01", "batch-size": "64"],
                             seed: 42, metrics: ["test-accuracy": 0.9876, "params": 61706, "loss": -0.0]),
                HistoryEntry(pass: "prune", parameters: [:], seed: nil, metrics: [:]),
                HistoryEntry(pass: "quantize", parameters: ["bits": ""], seed: .max,
                             metrics: ["bytes": 1e300, "tiny": .leastNonzeroMagnitude]),
            ])
        return Model(graph: graph, metadata: metadata)
    }

    /// A small valid model, for byte-level tests.
    static func smallModel() -> Model {
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [3])], outputs: ["y"],
                          nodes: [Node(name: "fc", op: .linear, inputs: ["x", "w", "b"], output: "y")],
                          initializers: ["w": Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
                                         "b": Tensor(shape: [2], floats: [0.5, -0.5])])
        return Model(graph: graph, metadata: ModelMetadata(architecture: "tiny", classNames: ["a", "b"],
                                                           history: [HistoryEntry(pass: "init", seed: 1)]))
    }

    /// Expects `body` to throw exactly `expected`.
    func expectError(_ expected: ModelFileError, sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws(ModelFileError) -> Model) {
        do {
            _ = try body()
            Issue.record("expected \(expected), decoded a model", sourceLocation: sourceLocation)
        } catch {
            #expect(error == expected, sourceLocation: sourceLocation)
        }
    }

    /// A fresh, empty directory under the system's temporary directory.
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "modelfile-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: Round trip and determinism

    @Test func roundTripIsExact() throws {
        let model = Self.everythingModel()
        let decoded = try ModelFile.decode(try ModelFile.encode(model))
        #expect(decoded == model)
        // Float equality treats -0 and 0 alike; bit patterns must survive too.
        for (name, tensor) in model.graph.initializers {
            if case .float32(let original) = tensor.storage, case .float32(let back) = decoded.graph.initializers[name]?.storage {
                #expect(original.map(\.bitPattern) == back.map(\.bitPattern), "\(name)")
            }
        }
        #expect(decoded.metadata.history[0].metrics["loss"]?.sign == .minus)
    }

    @Test func nanPayloadsSurvive() throws {
        let patterns: [UInt32] = [0x7FC0_0000, 0x7F80_0001, 0xFFC1_2345, 0x7FFF_FFFF]
        var model = Self.smallModel()
        model.graph.initializers["w"] = Tensor(shape: [4], floats: patterns.map { Float(bitPattern: $0) })
        let decoded = try ModelFile.decode(try ModelFile.encode(model))
        #expect(decoded.graph.initializers["w"]?.floats.map(\.bitPattern) == patterns)
    }

    @Test func absentAndEmptyMetadataStayDistinct() throws {
        var model = Self.smallModel()
        model.metadata = ModelMetadata(architecture: "", normalization: Normalization(mean: [], std: []))
        #expect(try ModelFile.decode(try ModelFile.encode(model)) == model)
        model.metadata = ModelMetadata()
        #expect(try ModelFile.decode(try ModelFile.encode(model)) == model)
    }

    @Test func encodingIsDeterministic() throws {
        let model = Self.everythingModel()
        let bytes = try ModelFile.encode(model)
        #expect(try ModelFile.encode(model) == bytes)
        #expect(try ModelFile.encode(try ModelFile.decode(bytes)) == bytes)

        // The same content built in another insertion order gives the same bytes.
        var shuffled = model
        var generator = SeededGenerator(seed: 7)
        var initializers: [String: Tensor] = [:]
        for name in model.graph.initializers.keys.shuffled(using: &generator) {
            initializers[name] = model.graph.initializers[name]
        }
        shuffled.graph.initializers = initializers
        shuffled.metadata.history = model.metadata.history.map { entry in
            var e = entry
            e.parameters = [:]
            for key in entry.parameters.keys.sorted().reversed() { e.parameters[key] = entry.parameters[key] }
            e.metrics = Dictionary(minimumCapacity: 64)
            for key in entry.metrics.keys.sorted().reversed() { e.metrics[key] = entry.metrics[key] }
            return e
        }
        #expect(try ModelFile.encode(shuffled) == bytes)
    }

    @Test func headerLayout() throws {
        let bytes = try ModelFile.encode(Self.smallModel())
        #expect(Array(bytes[0..<8]) == Array("CMPRSSR\0".utf8))
        #expect(Array(bytes[8..<12]) == [2, 0, 0, 0])
        let length = bytes[12..<20].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(length == UInt64(bytes.count - 24))
    }

    @Test func namesWithNulAreRefused() throws {
        var model = Self.smallModel()
        model.graph.nodes[0].name = "f\0c"
        #expect(throws: ModelFileError.unencodable("node name \"f\\0c\" contains a NUL character")) {
            try ModelFile.encode(model)
        }
    }

    // MARK: Refusals

    @Test func everyTruncationIsRefused() throws {
        let bytes = try ModelFile.encode(Self.smallModel())
        let payload = UInt64(bytes.count - 24)
        for length in 0..<bytes.count {
            let prefix = Array(bytes.prefix(length))
            let expected: ModelFileError = switch length {
            case 0: .empty
            case 1..<24: .tooShort(byteCount: length, headerSize: 24)
            default: .truncated(expectedPayload: payload, actualPayload: length - 24)
            }
            expectError(expected) { () throws(ModelFileError) in try ModelFile.decode(prefix) }
        }
    }

    @Test func trailingBytesAreRefused() throws {
        let bytes = try ModelFile.encode(Self.smallModel())
        expectError(.trailingBytes(count: 3)) { () throws(ModelFileError) in try ModelFile.decode(bytes + [0, 0, 0]) }
    }

    @Test func flippedPayloadByteFailsTheChecksum() throws {
        let bytes = try ModelFile.encode(Self.everythingModel())
        let stored = bytes[20..<24].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<50 {
            var corrupt = bytes
            let position = Int.random(in: 24..<bytes.count, using: &generator)
            corrupt[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
            let actual = crc32(of: corrupt[24...])
            expectError(.checksumMismatch(expected: stored, actual: actual)) { () throws(ModelFileError) in
                try ModelFile.decode(corrupt)
            }
        }
    }

    @Test func wrongMagicIsRefused() throws {
        var bytes = try ModelFile.encode(Self.smallModel())
        bytes[0] = UInt8(ascii: "X")
        expectError(.wrongMagic(looksLike: nil)) { () throws(ModelFileError) in try ModelFile.decode(bytes) }

        // The start of an ONNX ModelProto: ir_version 8, producer_name "pytorch".
        let onnx: [UInt8] = [0x08, 0x08, 0x12, 0x07] + Array("pytorch".utf8) + [0x1A, 0x03] + Array("2.1".utf8)
        do {
            _ = try ModelFile.decode(onnx)
            Issue.record("decoded an ONNX file")
        } catch {
            guard case .wrongMagic(let looksLike?) = error else { Issue.record("unexpected \(error)"); return }
            #expect(looksLike.contains("ONNX"))
            #expect(error.description.hasPrefix("not a compressor model file (it looks like an ONNX file"))
        }
        expectError(.wrongMagic(looksLike: "a text file")) { () throws(ModelFileError) in
            try ModelFile.decode(Array("hello, world\n".utf8))
        }
        expectError(.wrongMagic(looksLike: "a NumPy .npy array")) { () throws(ModelFileError) in
            try ModelFile.decode([0x93] + Array("NUMPY".utf8) + [1, 0])
        }
    }

    @Test func newerFormatIsRefused() throws {
        var bytes = try ModelFile.encode(Self.smallModel())
        bytes[8] = 3
        expectError(.newerFormat(version: 3, supported: 2)) { () throws(ModelFileError) in try ModelFile.decode(bytes) }
        #expect(ModelFileError.newerFormat(version: 3, supported: 2).description
            .hasPrefix("written by a newer compressor (format 3 > supported 2)"))
        bytes[8] = 0
        expectError(.invalidFormatVersion(0)) { () throws(ModelFileError) in try ModelFile.decode(bytes) }
    }

    @Test func emptyAndMissingFilesAreRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let empty = directory + "/empty.bin"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        expectError(.empty) { () throws(ModelFileError) in try ModelFile.read(path: empty) }

        let missing = directory + "/missing.bin"
        expectError(.fileNotFound(path: missing)) { () throws(ModelFileError) in try ModelFile.read(path: missing) }
        #expect(ModelFileError.fileNotFound(path: missing).description == "no such file: \(missing)")

        expectError(.unreadable(path: directory, reason: String(cString: strerror(EISDIR)))) { () throws(ModelFileError) in
            try ModelFile.read(path: directory)
        }
    }

    @Test func writeThenReadRoundTrips() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.bin"
        let model = Self.everythingModel()
        try ModelFile.write(model, to: path)
        #expect(try ModelFile.read(path: path) == model)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.bin"])
    }

    // MARK: Content errors (hand-built payloads behind a valid header)

    @Test func unknownOpIsRefusedByName() {
        let node = PB.field(1, "future") + PB.field(2, "x") + PB.field(3, "y") + PB.field(57, [])
        expectError(.unknownOp(node: "future")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: PB.field(3, node)))
        }
    }

    /// An encoding this build does not know (here 50, the first free number)
    /// leaves the oneof unset, as `sparse_float32` (20), `codebook` (30) or `hashed_float32` (40)
    /// does for a reader that predates it: the tensor is refused by name, not misread.
    @Test func unknownEncodingIsRefusedByName() {
        let graph = PB.tensorGraph(shape: [2], encoding: PB.field(50, PB.field(1, [1, 2, 3])))
        expectError(.unknownEncoding(tensor: "t")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: graph))
        }
    }

    @Test func dataLengthMustMatchShape() {
        let graph = PB.tensorGraph(shape: [2, 3], encoding: PB.field(10, PB.field(1, [UInt8](repeating: 0, count: 20))))
        expectError(.tensorSizeMismatch(tensor: "t", shape: [2, 3], dtype: .float32, expectedBytes: 24, actualBytes: 20)) {
            () throws(ModelFileError) in try ModelFile.decode(PB.file(graph: graph))
        }
        let huge = PB.tensorGraph(shape: [1 << 40, 1 << 40], encoding: PB.field(11, PB.field(1, [])))
        expectError(.invalidShape(context: "tensor 't'", shape: [1 << 40, 1 << 40])) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: huge))
        }
    }

    @Test func negativeDimensionsAreRefused() {
        let graph = PB.tensorGraph(shape: [2, -1], encoding: PB.field(13, PB.field(1, [1, 2])))
        expectError(.invalidShape(context: "tensor 't'", shape: [2, -1])) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: graph))
        }
        let input = PB.field(1, PB.field(1, "x") + PB.field(2, PB.varint(3) + PB.varint(UInt64(bitPattern: -4))))
        expectError(.invalidShape(context: "graph input 'x'", shape: [3, -4])) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: input))
        }
    }

    @Test func missingFieldsAreNamed() {
        let noOutput = PB.field(3, PB.field(1, "n") + PB.field(13, []))
        expectError(.missingField("node 'n': output")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: noOutput))
        }
        let noEpsilon = PB.field(3, PB.field(1, "bn") + PB.field(3, "y") + PB.field(12, []))
        expectError(.missingField("node 'bn': epsilon")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: noEpsilon))
        }
        let noStride = PB.field(3, PB.field(1, "c") + PB.field(3, "y") + PB.field(10, PB.field(4, varint: 1)))
        expectError(.missingField("node 'c': stride")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: noStride))
        }
        expectError(.missingField("format")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: [], format: []))
        }
        let emptyPayload = FileHeader(payload: []).bytes
        expectError(.missingField("format")) { () throws(ModelFileError) in try ModelFile.decode(emptyPayload) }
    }

    @Test func duplicateTensorsAreRefused() {
        let tensor = PB.tensorGraph(shape: [1], encoding: PB.field(14, PB.field(1, [9])))
        expectError(.duplicateName("t")) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: tensor + tensor))
        }
    }

    @Test func newerPayloadFormatIsRefused() {
        expectError(.newerFormat(version: 9, supported: 2)) { () throws(ModelFileError) in
            try ModelFile.decode(PB.file(graph: [], format: PB.field(1, PB.field(1, varint: 9))))
        }
    }

    @Test func garbagePayloadIsRefused() {
        let payload: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x12]
        expectError(.malformedPayload) { () throws(ModelFileError) in
            try ModelFile.decode(FileHeader(payload: payload).bytes + payload)
        }
    }

    /// Random mutations behind a valid header reach the protobuf and content
    /// checks; every one must decode or throw, never trap.
    @Test func mutatedPayloadsNeverCrash() throws {
        let bytes = try ModelFile.encode(Self.everythingModel())
        let payload = Array(bytes[24...])
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<1000 {
            var mutated = payload
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let i = Int.random(in: 0..<mutated.count, using: &generator)
                mutated[i] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) {
                mutated.removeLast(Int.random(in: 0..<mutated.count, using: &generator))
            }
            _ = try? ModelFile.decode(FileHeader(payload: mutated).bytes + mutated)
        }
    }

    // MARK: Sizes by encoding

    @Test func encodedTensorSizesMatchTheFile() throws {
        let model = Self.everythingModel()
        let sizes = ModelFile.encodedTensorSizes(model)
        #expect(Set(sizes.keys) == Set(model.graph.initializers.keys))
        for (name, tensor) in model.graph.initializers {
            #expect(sizes[name]?.bytes == (try ProtoEncoder.encodedSize(ofTensor: tensor, named: name)), "\(name)")
            #expect(sizes[name]?.encoding == "dense-\(tensor.dtype.rawValue)")
        }
        #expect(sizes["conv.w"] == EncodedTensorSize(encoding: "dense-float32",
                                                      bytes: try ProtoEncoder.encodedSize(ofTensor: model.graph.initializers["conv.w"]!,
                                                                                          named: "conv.w")))
        // Removing the tensors shrinks the file by exactly their sizes.
        var bare = model
        bare.graph.initializers = [:]
        let total = try ModelFile.encode(model).count
        let graphDelta = total - (try ModelFile.encode(bare)).count
        let tensorBytes = sizes.values.reduce(0) { $0 + $1.bytes }
        // The graph's own length prefix may grow by a few bytes as well.
        #expect(graphDelta >= tensorBytes && graphDelta <= tensorBytes + 4)
    }

    // MARK: Atomic write

    @Test func atomicWriteReplacesContent() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.npy"
        try writeFileAtomically([1, 2, 3], to: path)
        try writeFileAtomically([4, 5], to: path)
        #expect(FileManager.default.contents(atPath: path) == Data([4, 5]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["out.npy"])
    }

    @Test func failedAtomicWriteKeepsTheOldFile() throws {
        struct Injected: Error {}
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.bin"
        try writeFileAtomically([1, 2, 3], to: path)

        // A failure after the temporary file is complete, before the rename.
        #expect(throws: Injected.self) {
            try writeFileAtomically([9, 9, 9, 9], to: path, beforeRename: { throw Injected() })
        }
        #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.bin"])

        // A rename that fails: the target is a non-empty directory.
        let occupied = directory + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied + "/inside", withIntermediateDirectories: true)
        do {
            try writeFileAtomically([7], to: occupied)
            Issue.record("wrote over a directory")
        } catch let error as FileWriteError {
            #expect(error.operation == "rename")
            #expect(error.path == occupied)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["model.bin", "occupied"])

        // A directory that does not exist: nothing can be created.
        let nowhere = directory + "/no/such/dir/model.bin"
        do {
            try ModelFile.write(Self.smallModel(), to: nowhere)
            Issue.record("wrote into a missing directory")
        } catch let error as FileWriteError {
            #expect(error.operation == "create temporary file")
            #expect(error.description.hasPrefix("cannot write \(nowhere): create temporary file failed: "))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["model.bin", "occupied"])
    }

    /// A path whose directory is a regular file: no permission bits are involved, so
    /// it fails for root too (CI runs as root, which ignores read-only directories).
    @Test func atomicWriteUnderARegularFileFailsClearlyAndLeavesNothing() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/file.txt"
        try Data("not a directory\n".utf8).write(to: URL(fileURLWithPath: file))
        let path = file + "/model.bin"
        let writes: [() throws -> Void] = [{ try ModelFile.write(Self.smallModel(), to: path) },
                                           { try writeFileAtomically([4], to: path) }]
        for write in writes {
            do {
                try write()
                Issue.record("wrote \(path) under a regular file")
            } catch let error as FileWriteError {
                #expect(error.path == path)
                #expect(error.operation == "create temporary file")
                #expect(error.description == "cannot write \(path): create temporary file failed: \(String(cString: strerror(ENOTDIR))); nothing was written")
            }
        }
        #expect(FileManager.default.contents(atPath: file) == Data("not a directory\n".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["file.txt"])
    }
}

/// Hand-built protobuf, to reach the decoder's content checks.
private enum PB {
    /// A protobuf field: key, then a varint or length-delimited value.
    static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] {
        varint(UInt64(number << 3 | 2)) + varint(UInt64(bytes.count)) + bytes
    }
    static func field(_ number: Int, varint value: Int64) -> [UInt8] {
        varint(UInt64(number << 3)) + varint(UInt64(bitPattern: value))
    }
    static func field(_ number: Int, _ string: String) -> [UInt8] { field(number, Array(string.utf8)) }
    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }
    static let format = field(1, field(1, varint: 1))

    /// A file whose payload is a `Model` with `graph` as its graph message.
    static func file(graph: [UInt8], format: [UInt8] = format) -> [UInt8] {
        let payload = format + field(2, graph)
        return FileHeader(payload: payload).bytes + payload
    }

    /// A graph with one tensor named "t".
    static func tensorGraph(shape: [Int64], encoding: [UInt8]) -> [UInt8] {
        let packedShape = shape.flatMap { varint(UInt64(bitPattern: $0)) }
        return field(4, field(1, "t") + field(2, packedShape) + encoding)
    }
}
