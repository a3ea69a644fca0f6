import CModelProto
import Foundation
import Testing
@testable import Compress

/// The sparse relative-index encoding of float32 tensors in the model file:
/// exact round trips, the writer's choice of encoding and index width, sizes
/// that fall with sparsity, and refusal of inconsistent records.
@Suite struct SparseStorageTests {
    // MARK: Fixtures

    /// A model whose only content is `tensors`.
    static func model(_ tensors: [String: Tensor]) -> Model {
        Model(graph: Graph(inputs: [], outputs: [], nodes: [], initializers: tensors), metadata: ModelMetadata())
    }

    /// `count` floats of which exactly `nonZeros`, at seeded random positions,
    /// are non-zero, with magnitudes in [0.001, 1) and random signs.
    static func randomSparse(count: Int, nonZeros: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var values = [Float](repeating: 0, count: count)
        for position in (0..<count).shuffled(using: &generator).prefix(nonZeros) {
            let magnitude = Float.random(in: 0.001..<1, using: &generator)
            values[position] = Bool.random(using: &generator) ? magnitude : -magnitude
        }
        return values
    }

    /// Zeros with `value` after each run: runs of `runs[i]` zeros, then a non-zero.
    static func runs(_ runs: [Int], trailingZeros: Int = 0) -> [Float] {
        runs.enumerated().flatMap { i, run in [Float](repeating: 0, count: run) + [Float(i + 1)] }
            + [Float](repeating: 0, count: trailingZeros)
    }

    /// The file of a model holding only `tensor`, named "t", stored in
    /// `encoding` (by default the writer's choice), after `edit` changed its
    /// protobuf-c message. The header, CRC included, covers the edited payload.
    static func file(_ tensor: Tensor, encoding: TensorFileEncoding? = nil,
                     edit: (ProtoArena, UnsafeMutablePointer<Compressor__Tensor>) -> Void = { _, _ in }) throws -> [UInt8] {
        let encoder = ProtoEncoder()
        let message = try encoder.model(model([:]))
        let t = try encoder.tensor(tensor, named: "t", encoding: encoding)
        edit(encoder.arena, t)
        message.pointee.graph.pointee.n_tensors = 1
        message.pointee.graph.pointee.tensors = encoder.arena.pointers([t])
        let payload = [UInt8](unsafeUninitializedCapacity: compressor__model__get_packed_size(message)) { buffer, count in
            count = compressor__model__pack(message, buffer.baseAddress)
        }
        withExtendedLifetime(encoder) {}
        return FileHeader(payload: payload).bytes + payload
    }

    /// `file(_:encoding:edit:)` with the edit applied to the `SparseFloat32` message.
    static func sparseFile(_ tensor: Tensor, indexBits: Int,
                           edit: (ProtoArena, inout Compressor__SparseFloat32) -> Void) throws -> [UInt8] {
        let layout = SparseFloat32Layout.candidates(for: tensor.floats)[indexBits - 1]
        return try file(tensor, encoding: .sparseFloat32(layout)) { arena, t in
            precondition(t.pointee.encoding_case == COMPRESSOR__TENSOR__ENCODING_SPARSE_FLOAT32)
            edit(arena, &t.pointee.sparse_float32.pointee)
        }
    }

    /// Decodes `tensor` from its file, in `encoding` or the writer's choice,
    /// and expects the same shape and float32 bit patterns.
    @discardableResult
    func expectRoundTrip(_ tensor: Tensor, encoding: TensorFileEncoding? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        let bytes = try Self.file(tensor, encoding: encoding)
        let back = try #require(try ModelFile.decode(bytes).graph.initializers["t"], sourceLocation: sourceLocation)
        #expect(back.shape == tensor.shape, sourceLocation: sourceLocation)
        #expect(back.floats.map(\.bitPattern) == tensor.floats.map(\.bitPattern), sourceLocation: sourceLocation)
        return bytes
    }

    /// Entries at width `indexBits`, counted by walking the positions one at a
    /// time: a zero becomes a filler entry when the gap since the previous
    /// entry is full and a non-zero follows somewhere later.
    static func entryCountByWalking(_ values: [Float], indexBits: Int) -> Int {
        guard let last = values.lastIndex(where: { $0.bitPattern != 0 }) else { return 0 }
        var entries = 0, gap = 0
        for value in values[...last] {
            if value.bitPattern != 0 || gap == (1 << indexBits) - 1 {
                entries += 1
                gap = 0
            } else {
                gap += 1
            }
        }
        return entries
    }

    /// Expects `bytes` to be refused as an invalid sparse encoding of tensor "t"
    /// whose detail contains `detail`.
    func expectInvalidSparse(_ bytes: [UInt8], _ detail: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ModelFile.decode(bytes)
            Issue.record("decoded a corrupt sparse tensor", sourceLocation: sourceLocation)
        } catch {
            guard case .invalidSparseTensor(let tensor, let actual) = error else {
                Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(tensor == "t", sourceLocation: sourceLocation)
            #expect(actual.contains(detail), "\(actual)", sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix("tensor 't' has an invalid sparse encoding: "), sourceLocation: sourceLocation)
        }
    }

    // MARK: Round trips

    @Test(arguments: [0, 600, 1080, 1188, 1200])
    func roundTripAtSparsity(zeros: Int) throws {
        let values = Self.randomSparse(count: 1200, nonZeros: 1200 - zeros, seed: UInt64(zeros))
        let tensor = Tensor(shape: [30, 40], floats: values)
        let bytes = try expectRoundTrip(tensor)
        // Dense only when nothing is zero.
        let name = ModelFile.encodingName(of: tensor)
        #expect(name.hasPrefix(zeros == 0 ? "dense-float32" : "sparse-float32/"), "\(name)")
        let size = try #require(ModelFile.encodedTensorSizes(Self.model(["t": tensor]))["t"])
        #expect(size.bytes == (try ProtoEncoder.encodedSize(ofTensor: tensor, named: "t")))
        #expect(size.encoding == name)
        // The test files are what the writer writes.
        #expect(bytes == (try ModelFile.encode(Self.model(["t": tensor]))))
    }

    @Test func tinyAndEmptyTensorsRoundTrip() throws {
        let tensors = [
            Tensor(shape: [], floats: [0]), Tensor(shape: [], floats: [3]), Tensor(shape: [1], floats: [0]),
            Tensor(shape: [1], floats: [-2]), Tensor(shape: [0], floats: []), Tensor(shape: [4, 0, 3], floats: []),
        ]
        for tensor in tensors {
            try expectRoundTrip(tensor)
            for layout in SparseFloat32Layout.candidates(for: tensor.floats) {
                try expectRoundTrip(tensor, encoding: .sparseFloat32(layout))
            }
        }
    }

    @Test func allZerosStoreNoEntries() throws {
        let tensor = Tensor(shape: [100, 100], floats: [Float](repeating: 0, count: 10_000))
        #expect(TensorFileEncoding(choosingFor: tensor)
            == .sparseFloat32(SparseFloat32Layout(indexBits: 1, entryCount: 0)))
        #expect(ModelFile.encodingName(of: tensor) == "sparse-float32/1-bit")
        try expectRoundTrip(tensor)
        // Name (1 + 1 + 1), shape (1 + 1 + 1 + 1), encoding key and length (2 + 1), index_bits (2),
        // entry_count (2), empty gaps (2), values (1 + 1) holding empty data (2), record framing (1 + 1).
        #expect(ModelFile.encodedTensorSizes(Self.model(["t": tensor]))["t"]?.bytes == 22)
    }

    @Test func negativeZeroNaNAndDenormalsKeepTheirBits() throws {
        let specials: [UInt32] = [0x8000_0000, 0x7FC0_0000, 0xFFC1_2345, 0x7F80_0001, 0x0000_0001, 0x8000_0001,
                                  0x7F80_0000, 0xFF80_0000]
        var values = [Float](repeating: 0, count: 1000)
        for (i, bits) in specials.enumerated() { values[i * 97 + 5] = Float(bitPattern: bits) }
        let tensor = Tensor(shape: [1000], floats: values)
        guard case .sparseFloat32(let layout) = TensorFileEncoding(choosingFor: tensor) else {
            Issue.record("stored dense")
            return
        }
        // -0.0 is a value like any other: every special is an entry.
        #expect(layout.entryCount >= specials.count)
        try expectRoundTrip(tensor)
        for candidate in SparseFloat32Layout.candidates(for: values) {
            try expectRoundTrip(tensor, encoding: .sparseFloat32(candidate))
        }
    }

    @Test func fillerEntriesBridgeLongRunsAtEveryWidth() throws {
        // Runs around powers of two, and one longer than the widest gap (65,535).
        let values = Self.runs([0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 257, 1000, 65_535, 65_536, 70_000, 0],
                               trailingZeros: 300)
        let tensor = Tensor(shape: [values.count], floats: values)
        let layouts = SparseFloat32Layout.candidates(for: values)
        #expect(layouts.map(\.indexBits) == Array(1...16))
        #expect(layouts.map(\.entryCount) == (1...16).map { Self.entryCountByWalking(values, indexBits: $0) })
        // 16 non-zeros; at 16 bits only the runs of 65,535 and more need a filler: 65,536 and 70,000.
        #expect(layouts[15].entryCount == 16 + 2)
        #expect(layouts[0].entryCount == 16 + [1, 2, 3, 7, 8, 15, 16, 255, 256, 257, 1000, 65_535, 65_536, 70_000]
            .reduce(0) { $0 + $1 / 2 })
        for layout in layouts {
            try expectRoundTrip(tensor, encoding: .sparseFloat32(layout))
        }
    }

    // MARK: The writer's choice

    /// Tensors whose best encodings differ: random sparsity from none to all,
    /// clustered zeros, and runs long enough to want wide gaps.
    static func choiceCases() -> [[Float]] {
        var cases = [0, 300, 500, 700, 850, 900, 950, 990, 999, 1000].map {
            randomSparse(count: 1000, nonZeros: 1000 - $0, seed: UInt64($0))
        }
        cases.append(runs([40_000, 70_000, 0, 3]))
        cases.append(runs([300, 0, 0, 600, 2, 2, 5000, 1]))
        cases.append(runs(Array(repeating: 31, count: 50) + Array(repeating: 32, count: 50)))
        cases.append([])
        cases.append([0])
        cases.append([-0.0])
        return cases
    }

    @Test func chosenEncodingIsTheSmallestAndSizesMatchProtobufC() throws {
        for values in Self.choiceCases() {
            let tensor = Tensor(shape: [values.count], floats: values)
            let options: [TensorFileEncoding] = [.dense]
                + SparseFloat32Layout.candidates(for: values).map { .sparseFloat32($0) }
            let packed = try options.map { try ProtoEncoder.encodedSize(ofTensor: tensor, named: "t", encoding: $0) }
            #expect(options.map { encodedTensorRecordSize(tensor, named: "t", encoding: $0) } == packed)
            // The first smallest: dense on a tie, then the narrowest width.
            let best = options[packed.firstIndex(of: packed.min()!)!]
            #expect(TensorFileEncoding(choosingFor: tensor) == best, "\(values.count) values")
            #expect(SparseFloat32Layout.candidates(for: values).map(\.entryCount)
                == (1...16).map { Self.entryCountByWalking(values, indexBits: $0) })
        }
    }

    @Test func wideGapsWinForLongRuns() {
        // Three non-zeros 40,000 and 70,000 positions apart: at 16 bits one filler (70,000 > 65,535).
        let tensor = Tensor(shape: [110_003], floats: Self.runs([0, 40_000, 70_000]))
        #expect(TensorFileEncoding(choosingFor: tensor) == .sparseFloat32(SparseFloat32Layout(indexBits: 16, entryCount: 4)))
    }

    @Test func encodingIsDeterministic() throws {
        let values = Self.randomSparse(count: 5000, nonZeros: 400, seed: 9)
        let model = Self.model(["a": Tensor(shape: [50, 100], floats: values),
                                "b": Tensor(shape: [5000], floats: values.reversed())])
        let bytes = try ModelFile.encode(model)
        #expect(try ModelFile.encode(model) == bytes)
        #expect(try ModelFile.encode(try ModelFile.decode(bytes)) == bytes)
    }

    @Test func fileSizeFallsWithSparsity() throws {
        let count = 300 * 784
        var sizes: [Int] = []
        for nonZeros in [count, count / 2, count / 10, count / 20, count / 100, 0] {
            let tensor = Tensor(shape: [300, 784], floats: Self.randomSparse(count: count, nonZeros: nonZeros, seed: 4))
            sizes.append(try ModelFile.encode(Self.model(["fc1.weight": tensor])).count)
        }
        #expect(zip(sizes, sizes.dropFirst()).allSatisfy { $0 > $1 }, "\(sizes)")

        // At 92% sparsity, 18,816 non-zeros and 216,384 zeros, wherever they are:
        // at 8-bit gaps a run of g zeros costs floor(g / 256) fillers, so at most
        // floor(216,384 / 256) = 845 in all and at most 19,661 entries; each
        // takes 4 value bytes and 1 gap byte: 98,305 bytes, plus 18 for the
        // message's own fields and under 30 for the record's name, shape and
        // framing. The dense data alone is 940,800 bytes, more than 9 times as
        // much, and the writer's pick is no larger than the 8-bit layout.
        let tensor = Tensor(shape: [300, 784], floats: Self.randomSparse(count: count, nonZeros: 18_816, seed: 5))
        let sparse = try #require(ModelFile.encodedTensorSizes(Self.model(["fc1.weight": tensor]))["fc1.weight"])
        let dense = encodedTensorRecordSize(tensor, named: "fc1.weight", encoding: .dense)
        #expect(dense == 940_830)
        #expect(sparse.bytes * 9 < dense, "\(sparse)")
        #expect(sparse.bytes == (try ProtoEncoder.encodedSize(ofTensor: tensor, named: "fc1.weight")))
    }

    // MARK: Refusals

    /// 64 elements, non-zero at 0, 5, 20 and 63: gaps 0, 4, 14 and 42. At
    /// 3 bits (gaps up to 7) 14 takes one filler and 42 five: 10 entries,
    /// 30 bits of gaps in 4 bytes with 2 padding bits.
    static let corruptible: Tensor = {
        var values = [Float](repeating: 0, count: 64)
        for (i, p) in [0, 5, 20, 63].enumerated() { values[p] = Float(i) + 0.5 }
        return Tensor(shape: [8, 8], floats: values)
    }()

    @Test func theCorruptibleFixtureIsAsDescribed() throws {
        let layout = SparseFloat32Layout.candidates(for: Self.corruptible.floats)[2]
        #expect(layout == SparseFloat32Layout(indexBits: 3, entryCount: 10))
        #expect(layout.gapByteCount == 4)
        try expectRoundTrip(Self.corruptible, encoding: .sparseFloat32(layout))
    }

    @Test func indexBitsOutOfRangeAreRefused() throws {
        for bits: UInt32 in [0, 17, 64, .max] {
            expectInvalidSparse(try Self.sparseFile(Self.corruptible, indexBits: 3) { _, s in s.index_bits = bits },
                                "index_bits is \(bits), not in 1...16")
        }
    }

    @Test func lengthsMustMatchTheEntryCount() throws {
        let t = Self.corruptible
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.gaps.len -= 1 },
                            "3 bytes of gaps, 10 entries of 3 bits need 4")
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.has_gaps = 0 },
                            "0 bytes of gaps, 10 entries of 3 bits need 4")
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.values_float32.pointee.data.len -= 1 },
                            "39 bytes of float32 values, 10 entries need 40")
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.entry_count = 11 },
                            "40 bytes of float32 values, 11 entries need 44")
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.entry_count = 9 },
                            "40 bytes of float32 values, 9 entries need 36")
        // Values for 8 entries, gaps for 10.
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in
            s.entry_count = 8
            s.values_float32.pointee.data.len = 32
        }, "4 bytes of gaps, 8 entries of 3 bits need 3")
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.entry_count = 65 }, "65 entries for 64 elements")
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in s.entry_count = .max },
                            "\(UInt64.max) entries for 64 elements")
    }

    @Test func int8ValuesMustMatchTheEntryCount() throws {
        // Integers on the grid of scale 1: without a precision record the tensor reads back as int8.
        let values: [Float] = (0..<64).map { (i: Int) -> Float in
            guard i % 7 == 2 else { return 0 }
            return Float(i % 5 == 0 ? -i : i)
        }
        let tensor = Tensor(shape: [64], floats: values)
        let grid = QuantizationGrid(scales: [1], zeroPoints: [0], qmin: -127, qmax: 127)
        let layout = SparseFloat32Layout.candidates(for: values)[2]
        let good = try Self.file(tensor, encoding: .sparseInt8(layout, grid))
        let back = try #require(try ModelFile.decode(good).graph.initializers["t"])
        #expect(back.dtype == .int8 && back.shape == [64])
        #expect(back.floats == values)
        let corrupt = try Self.file(tensor, encoding: .sparseInt8(layout, grid)) { _, t in
            t.pointee.sparse_float32.pointee.values_int8.pointee.data.len -= 1
        }
        expectInvalidSparse(corrupt, "\(layout.entryCount - 1) bytes of int8 values, \(layout.entryCount) entries need \(layout.entryCount)")
    }

    @Test func entriesPastTheEndAreRefused() throws {
        let t = Self.corruptible
        // Every gap at its maximum, 7: the eighth entry would be at 8 * 8 - 1 = 63, the ninth at 71.
        expectInvalidSparse(try Self.sparseFile(t, indexBits: 3) { _, s in
            for i in 0..<s.gaps.len { s.gaps.data[i] = 0xFF }
        }, "entry 8 is at position 71, past the 64 elements")
        // One 16-bit gap of 65,535 in a 64-element tensor.
        var single = [Float](repeating: 0, count: 64)
        single[63] = 1
        expectInvalidSparse(try Self.sparseFile(Tensor(shape: [64], floats: single), indexBits: 16) { _, s in
            s.gaps.data[0] = 0xFF
            s.gaps.data[1] = 0xFF
        }, "entry 0 is at position 65535, past the 64 elements")
    }

    @Test func nonZeroPaddingBitsAreRefused() throws {
        // Bits 30 and 31 of the 4 gap bytes are padding.
        expectInvalidSparse(try Self.sparseFile(Self.corruptible, indexBits: 3) { _, s in s.gaps.data[3] |= 0x80 },
                            "the padding bits after the last gap are not zero")
        // Dropping the last entry's value leaves its gap (2) in the padding.
        expectInvalidSparse(try Self.sparseFile(Self.corruptible, indexBits: 3) { _, s in
            s.entry_count = 9
            s.values_float32.pointee.data.len = 36
        }, "the padding bits after the last gap are not zero")
    }

    @Test func missingSparseFieldsAreNamed() throws {
        let t = Self.corruptible
        #expect(throws: ModelFileError.missingField("tensor 't': sparse index_bits")) {
            try ModelFile.decode(try Self.sparseFile(t, indexBits: 3) { _, s in s.has_index_bits = 0 })
        }
        #expect(throws: ModelFileError.missingField("tensor 't': sparse entry_count")) {
            try ModelFile.decode(try Self.sparseFile(t, indexBits: 3) { _, s in s.has_entry_count = 0 })
        }
    }

    /// A values encoding this build does not know (the planned codebook
    /// values, member 11) reaches the reader as an unset oneof.
    @Test func unknownValuesEncodingIsRefusedByName() throws {
        let bytes = try Self.sparseFile(Self.corruptible, indexBits: 3) { _, s in
            s.values_case = COMPRESSOR__SPARSE_FLOAT32__VALUES__NOT_SET
        }
        #expect(throws: ModelFileError.unknownEncoding(tensor: "t")) { try ModelFile.decode(bytes) }
    }

    @Test func hugeShapesWithoutEntriesAreRefused() throws {
        // 2^32 elements of zeros would be a 20-byte record and a 16 GiB tensor.
        let empty = SparseFloat32Layout(indexBits: 1, entryCount: 0)
        let bytes = try Self.file(Tensor(shape: [0], floats: []), encoding: .sparseFloat32(empty)) { arena, t in
            t.pointee.n_shape = 2
            t.pointee.shape = arena.array([Int64(1) << 20, Int64(1) << 12])
        }
        expectInvalidSparse(bytes, "4294967296 elements exceed the format's 4 GiB tensor limit")
    }

    /// Random edits of a sparse record's fields and bytes, behind a valid
    /// header: every file decodes or throws, never traps.
    @Test func editedSparseRecordsNeverCrash() throws {
        let tensor = Tensor(shape: [40, 25], floats: Self.randomSparse(count: 1000, nonZeros: 120, seed: 21))
        var generator = SeededGenerator(seed: 13)
        for _ in 0..<300 {
            let indexBits = Int.random(in: 1...16, using: &generator)
            let bytes = try Self.sparseFile(tensor, indexBits: indexBits) { _, s in
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: s.index_bits = UInt32.random(in: 0...20, using: &generator)
                case 1: s.entry_count = UInt64.random(in: 0...1100, using: &generator)
                case 2: s.gaps.len = Int.random(in: 0...s.gaps.len, using: &generator)
                default: break
                }
                for _ in 0..<Int.random(in: 0...3, using: &generator) where s.gaps.len > 0 {
                    s.gaps.data[Int.random(in: 0..<s.gaps.len, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            _ = try? ModelFile.decode(bytes)
        }
    }

    /// Random byte mutations inside the packed `SparseFloat32` message (the
    /// shape is left alone, so no mutation asks for a huge tensor).
    @Test func mutatedSparseMessagesNeverCrash() throws {
        let tensor = Tensor(shape: [40, 25], floats: Self.randomSparse(count: 1000, nonZeros: 120, seed: 22))
        guard case .sparseFloat32(let layout) = TensorFileEncoding(choosingFor: tensor) else {
            Issue.record("stored dense")
            return
        }
        let payload = Array(try Self.file(tensor)[24...])
        // The payload ends with the sparse message, then the empty metadata (2 bytes).
        let end = payload.count - 2
        let start = end - layout.messageSize
        #expect(Array(payload[end...]) == [0x1A, 0x00])
        #expect(payload[start] == 0x08)  // index_bits, field 1
        var generator = SeededGenerator(seed: 17)
        for _ in 0..<500 {
            var mutated = payload
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                mutated[Int.random(in: start..<end, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? ModelFile.decode(FileHeader(payload: mutated).bytes + mutated)
        }
    }

    // MARK: Beyond the file

    @Test func onnxExportOfAReadBackSparseModelIsUnchanged() throws {
        var model = Architecture.lenet300.build(seed: 3)
        let fc1 = try #require(model.graph.nodes.first { $0.name == "fc1" }).inputs[1]
        let weight = try #require(model.graph.initializers[fc1])
        var generator = SeededGenerator(seed: 8)
        let pruned = weight.floats.map { Float.random(in: 0..<1, using: &generator) < 0.9 ? 0 : $0 }
        model.graph.initializers[fc1] = Tensor(shape: weight.shape, floats: pruned)
        #expect(ModelFile.encodingName(of: model.graph.initializers[fc1]!).hasPrefix("sparse-float32/"))
        let readBack = try ModelFile.decode(try ModelFile.encode(model))
        #expect(try ONNXExporter.encode(readBack) == (try ONNXExporter.encode(model)))
    }
}
