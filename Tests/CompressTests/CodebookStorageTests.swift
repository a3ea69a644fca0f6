import CModelProto
import Foundation
import Testing
@testable import Compress

/// The codebook (weight-sharing) encodings of float32 tensors in the model
/// file, dense and as sparse values, with Huffman-coded streams: exact round
/// trips, sizes computed without writing, the writer's choice under the
/// model's `StorageOptions`, and refusal of inconsistent records.
@Suite struct CodebookStorageTests {
    // MARK: Fixtures

    /// A model whose only content is `tensors`, with `storage` options.
    static func model(_ tensors: [String: Tensor], storage: StorageOptions = StorageOptions()) -> Model {
        Model(graph: Graph(inputs: [], outputs: [], nodes: [], initializers: tensors),
              metadata: ModelMetadata(storage: storage))
    }

    /// `count` values, a fraction `density` of them non-zero at seeded random
    /// positions, each one of `levels` centroids (multiples of 1/64, exact in
    /// float16 unless `offset` makes them not) drawn with a bell-shaped
    /// frequency, as k-means on trained weights gives.
    static func shared(count: Int, density: Double, levels: Int, offset: Float = 0, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        let centroids = (0..<levels).map { Float($0 - levels / 2) / 64 + (($0 - levels / 2) == 0 ? 1.0 / 128 : 0) + offset }
        return (0..<count).map { _ in
            guard Double.random(in: 0..<1, using: &generator) < density else { return 0 }
            // The sum of three uniforms: most weights near the middle levels.
            let u = (0..<3).reduce(0.0) { acc, _ in acc + Double.random(in: 0..<1, using: &generator) } / 3
            return centroids[min(levels - 1, Int(u * Double(levels)))]
        }
    }

    /// Every candidate encoding of a shared `tensor` with Huffman allowed.
    static func candidates(_ tensor: Tensor, huffman: Bool = true) -> [TensorFileEncoding] {
        TensorFileEncoding.candidates(for: tensor, shared: true, huffman: huffman)
    }

    /// The sparse float32 candidates among `candidates`.
    static func sparseCount(_ candidates: [TensorFileEncoding]) -> Int {
        candidates.filter { if case .sparseFloat32 = $0 { true } else { false } }.count
    }

    static func denseCodebook(_ tensor: Tensor, huffman: Bool) -> CodebookLayout? {
        for case .codebook(let layout) in candidates(tensor) where layout.indexCoding.isHuffman == huffman { return layout }
        return nil
    }

    static func sparseCodebook(_ tensor: Tensor, indexBits: Int, gapsHuffman: Bool,
                               indicesHuffman: Bool) -> TensorFileEncoding? {
        for candidate in candidates(tensor) {
            if case .sparseCodebook(let gaps, let indices) = candidate, gaps.indexBits == indexBits,
               gaps.gapCoding.isHuffman == gapsHuffman, indices.indexCoding.isHuffman == indicesHuffman {
                return candidate
            }
        }
        return nil
    }

    /// Decodes `tensor` from its file in `encoding` and expects the same
    /// shape and bit patterns, and the record size the writer computes.
    func expectRoundTrip(_ tensor: Tensor, encoding: TensorFileEncoding,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = try SparseStorageTests.file(tensor, encoding: encoding)
        let back = try #require(try ModelFile.decode(bytes).graph.initializers["t"], sourceLocation: sourceLocation)
        #expect(back.shape == tensor.shape, sourceLocation: sourceLocation)
        #expect(back.floats.map(\.bitPattern) == tensor.floats.map(\.bitPattern), "\(encoding.name(dtype: .float32))",
                sourceLocation: sourceLocation)
        #expect(encodedTensorRecordSize(tensor, named: "t", encoding: encoding)
            == (try ProtoEncoder.encodedSize(ofTensor: tensor, named: "t", encoding: encoding)),
                "\(encoding.name(dtype: .float32))", sourceLocation: sourceLocation)
    }

    /// Expects decoding `bytes` to fail with `expected` naming tensor "t",
    /// its detail containing `detail`.
    func expectRefused(_ bytes: [UInt8], codebook: Bool = true, _ detail: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ModelFile.decode(bytes)
            Issue.record("decoded a corrupt record", sourceLocation: sourceLocation)
        } catch {
            switch error {
            case .invalidCodebookTensor(let tensor, let actual) where codebook,
                 .invalidSparseTensor(let tensor, let actual) where !codebook:
                #expect(tensor == "t", sourceLocation: sourceLocation)
                #expect(actual.contains(detail), "\(actual)", sourceLocation: sourceLocation)
                #expect(error.description.hasPrefix(codebook ? "tensor 't' has an invalid codebook encoding: "
                                                             : "tensor 't' has an invalid sparse encoding: "),
                        sourceLocation: sourceLocation)
            default:
                Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Tensors to round-trip: specials as centroids, all zeros, one value,
    /// 256 distinct values (with and without zero), sparse and dense.
    static func roundTripCases() -> [Tensor] {
        let specials: [UInt32] = [0x8000_0000, 0x7FC0_0000, 0xFFC1_2345, 0x7F80_0001, 0x0000_0001, 0x7F80_0000,
                                  0xFF80_0000, 0x3F80_0000]
        var withSpecials = [Float](repeating: 0, count: 500)
        for i in stride(from: 0, to: 500, by: 3) { withSpecials[i] = Float(bitPattern: specials[(i / 3) % specials.count]) }
        let all256 = (0..<512).map { Float($0 % 256) * 0.37 + 0.01 }  // 256 non-zero values, none float16-exact
        let zeroAnd255 = (0..<512).map { Float($0 % 256) / 4 }  // +0.0 and 255 non-zeros, float16-exact
        return [
            Tensor(shape: [500], floats: withSpecials),
            Tensor(shape: [10, 10], floats: [Float](repeating: 0, count: 100)),
            Tensor(shape: [7, 3], floats: [Float](repeating: 0.1, count: 21)),
            Tensor(shape: [3], floats: [-0.0, -0.0, -0.0]),
            Tensor(shape: [512], floats: all256),
            Tensor(shape: [512], floats: zeroAnd255),
            Tensor(shape: [40, 50], floats: shared(count: 2000, density: 0.1, levels: 32, seed: 1)),
            Tensor(shape: [2000], floats: shared(count: 2000, density: 0.7, levels: 16, offset: 0.001, seed: 2)),
            Tensor(shape: [1, 3], floats: [0, 0, 5]),
            Tensor(shape: [0], floats: []),
            Tensor(shape: [], floats: [2.5]),
        ]
    }

    // MARK: Round trips and sizes

    @Test func everyCandidateRoundTripsBitForBitWithItsComputedSize() throws {
        for tensor in Self.roundTripCases() {
            let candidates = Self.candidates(tensor)
            // Dense, the sparse layouts (16 widths, some with Huffman-coded gaps too),
            // 2 dense codebooks and, per sparse layout, 2 sparse codebooks.
            let sparse = Self.sparseCount(candidates)
            #expect(sparse >= 16 && candidates.count == 1 + sparse + 2 + 2 * sparse, "\(tensor.shape)")
            for candidate in candidates {
                try expectRoundTrip(tensor, encoding: candidate)
            }
        }
    }

    @Test func specialsAreCentroidsInTotalOrderKeptBitForBit() throws {
        let values: [Float] = [0, 0.5, -0.0, .nan, -1, 0.5, Float(bitPattern: 0xFFC0_0001), 0]
        let tensor = Tensor(shape: [8], floats: values)
        let layout = try #require(Self.denseCodebook(tensor, huffman: false))
        // totalOrder: negative NaN, -1, -0.0, 0.5, positive NaN; +0.0 is code 0.
        #expect(layout.centroids == [0xFFC0_0001, Float(-1).bitPattern, 0x8000_0000, Float(0.5).bitPattern,
                                     Float.nan.bitPattern])
        #expect(layout.zeroCode && layout.codeCount == 6 && layout.indexBits == 3)
        #expect(!layout.float16, "NaN centroids stay float32")
        try expectRoundTrip(tensor, encoding: .codebook(layout))

        let halves = try #require(Self.denseCodebook(Tensor(shape: [3], floats: [0.5, -1, 65504]), huffman: false))
        #expect(halves.float16 && !halves.zeroCode && halves.indexBits == 2)
        let inexact = try #require(Self.denseCodebook(Tensor(shape: [2], floats: [0.5, 0.1]), huffman: false))
        #expect(!inexact.float16, "0.1 is not a float16")
        // 2^-24, the smallest float16 subnormal, is exact; 2^-25 is not.
        #expect(try #require(Self.denseCodebook(Tensor(shape: [1], floats: [0x1p-24]), huffman: false)).float16)
        #expect(!(try #require(Self.denseCodebook(Tensor(shape: [1], floats: [0x1p-25]), huffman: false)).float16))
    }

    @Test func moreThan256DistinctValuesHaveNoCodebook() {
        let values = (0..<300).map { Float($0 % 257) + 1 }
        let tensor = Tensor(shape: [300], floats: values)
        #expect(Self.candidates(tensor).count == 1 + Self.sparseCount(Self.candidates(tensor)))
        // 256 non-zeros plus +0.0 are 257 codes: none either.
        let withZero = Tensor(shape: [257], floats: (0..<257).map { Float($0) })
        #expect(Self.candidates(withZero).count == 1 + Self.sparseCount(Self.candidates(withZero)))
        let most = Self.candidates(Tensor(shape: [256], floats: (0..<256).map { Float($0) }))
        #expect(most.count == 1 + 3 * Self.sparseCount(most) + 2)
    }

    /// A dense codebook of n elements at k bits is its framing, the centroids
    /// and ceil(n * k / 8) index bytes.
    @Test func denseCodebookSizeIsFramingCentroidsAndPackedIndices() throws {
        // 1000 elements over 32 float16-exact non-zero values: 5-bit indices, 625 bytes.
        let values = (0..<1000).map { Float($0 % 32 + 1) / 8 }
        let tensor = Tensor(shape: [1000], floats: values)
        let layout = try #require(Self.denseCodebook(tensor, huffman: false))
        #expect(layout.indexBits == 5 && layout.float16 && !layout.zeroCode)
        // Centroids: DenseFloat16 (key, length, 64 bytes) in field 11 (key, length): 68.
        // index_bits: 2. indices: key, 2-byte length, 625 bytes: 628. Message 698.
        #expect(layout.messageSize == (1 + 1 + (1 + 1 + 2 * 32)) + 2 + (1 + 2 + (1000 * 5 + 7) / 8))
        // Record: name (3), shape (1 + 1 + 2), encoding field 30 (2-byte key, 2-byte length), framing (1 + 2).
        let record = 1 + 2 + (3 + 4 + (2 + 2 + 698))
        #expect(encodedTensorRecordSize(tensor, named: "t", encoding: .codebook(layout)) == record)
        #expect(try ProtoEncoder.encodedSize(ofTensor: tensor, named: "t", encoding: .codebook(layout)) == record)
        // The same with float32 centroids (+1/3 each): 128 centroid bytes, whose two
        // length prefixes take 2 bytes each: 66 more.
        let wide = Tensor(shape: [1000], floats: values.map { $0 + 1.0 / 3 })
        let wideLayout = try #require(Self.denseCodebook(wide, huffman: false))
        #expect(!wideLayout.float16)
        #expect(encodedTensorRecordSize(wide, named: "t", encoding: .codebook(wideLayout)) == record + 66)
        // Dense codebook is the writer's choice here: the sparse layouts pay for 1000 gaps and dense for 4000 bytes.
        #expect(TensorFileEncoding(choosingFor: tensor, shared: true) == .codebook(layout))
        #expect(ModelFile.encodingName(of: tensor, named: "t", storage: StorageOptions(sharedTensors: ["t"]))
            == "codebook/5-bit")
    }

    // MARK: The writer's choice

    static func choiceCases() -> [Tensor] {
        roundTripCases() + [0.0, 0.3, 0.5, 0.9, 1.0].enumerated().map { i, density in
            Tensor(shape: [3000], floats: shared(count: 3000, density: density, levels: 8 << (i % 3), seed: UInt64(10 + i)))
        }
    }

    @Test func theChoiceIsTheFirstSmallestCandidate() throws {
        for tensor in Self.choiceCases() {
            // Sizes as protobuf-c packs them, for every candidate of the most permissive options.
            let all = Self.candidates(tensor)
            let packedSizes = try all.map { try ProtoEncoder.encodedSize(ofTensor: tensor, named: "t", encoding: $0) }
            for (shared, huffman) in [(false, false), (false, true), (true, false), (true, true)] {
                let candidates = TensorFileEncoding.candidates(for: tensor, shared: shared, huffman: huffman)
                let packed = try candidates.map { candidate in
                    try all.firstIndex(of: candidate).map { packedSizes[$0] }
                        ?? ProtoEncoder.encodedSize(ofTensor: tensor, named: "t", encoding: candidate)
                }
                let best = candidates[packed.firstIndex(of: packed.min()!)!]
                #expect(TensorFileEncoding(choosingFor: tensor, shared: shared, huffman: huffman) == best)
                let storage = StorageOptions(sharedTensors: shared ? ["t"] : [], huffman: huffman)
                #expect(ModelFile.encodedTensorSizes(Self.model(["t": tensor], storage: storage))["t"]
                    == EncodedTensorSize(encoding: best.name(dtype: .float32), bytes: packed.min()!))
            }
        }
    }

    /// The writer leaves out Huffman-coded gaps whose table alone is too
    /// large to win; built here at every width, none is smaller than the choice.
    @Test func huffmanCodedGapsLeftOutCannotWin() {
        for tensor in Self.choiceCases() {
            let values = tensor.floats
            let chosen = TensorFileEncoding(choosingFor: tensor, shared: true, huffman: true)
            let chosenSize = chosen.fieldSize(denseByteCount: tensor.denseByteCount)
            let runs = values.withUnsafeBufferPointer { SparseFloat32Layout.zeroRuns(of: $0) }
            let candidates = Self.candidates(tensor)
            for var layout in SparseFloat32Layout.candidates(for: values) {
                let bits = layout.indexBits
                // The codebook index layouts the writer pairs with this width's gaps.
                let indices = candidates.compactMap { candidate -> CodebookLayout? in
                    guard case .sparseCodebook(let gaps, let indices) = candidate, gaps.indexBits == bits,
                          !gaps.gapCoding.isHuffman else { return nil }
                    return indices
                }
                layout.gapCoding = .huffman(frequencies: SparseFloat32Layout.gapFrequencies(runs: runs, indexBits: bits))
                let sizes = [TensorFileEncoding.sparseFloat32(layout).fieldSize(denseByteCount: tensor.denseByteCount)]
                    + indices.map { TensorFileEncoding.sparseCodebook(layout, $0).fieldSize(denseByteCount: tensor.denseByteCount) }
                #expect(sizes.allSatisfy { $0 >= chosenSize }, "\(bits)-bit gaps: \(sizes) < \(chosenSize)")
            }
        }
    }

    @Test func theSameModelGivesTheSameBytes() throws {
        let a = Tensor(shape: [300, 20], floats: Self.shared(count: 6000, density: 0.2, levels: 32, seed: 5))
        let b = Tensor(shape: [6000], floats: Self.shared(count: 6000, density: 0.95, levels: 4, seed: 6))
        let model = Self.model(["a": a, "b": b, "c": a], storage: StorageOptions(sharedTensors: ["b", "a"], huffman: true))
        let bytes = try ModelFile.encode(model)
        #expect(try ModelFile.encode(model) == bytes)
        let back = try ModelFile.decode(bytes)
        #expect(back == model)
        #expect(try ModelFile.encode(back) == bytes)
        let sizes = ModelFile.encodedTensorSizes(model)
        #expect(sizes["a"]!.encoding.contains("codebook/"), "\(sizes["a"]!)")
        #expect(sizes["b"]!.encoding.hasPrefix("codebook/"), "\(sizes["b"]!)")
        // "c" holds the same values as "a" but is not shared.
        #expect(sizes["c"]!.encoding.hasPrefix("sparse-float32/"), "\(sizes["c"]!)")
        #expect(sizes["c"]!.bytes > 2 * sizes["a"]!.bytes)
    }

    @Test func aTensorNotSharedNeverGetsACodebook() throws {
        for tensor in Self.choiceCases() {
            for huffman in [false, true] {
                for candidate in TensorFileEncoding.candidates(for: tensor, shared: false, huffman: huffman) {
                    switch candidate {
                    case .codebook, .sparseCodebook, .hashed: Issue.record("codebook candidate for a tensor not shared")
                    case .dense, .denseFloat16, .denseInt8, .sparseInt8, .sparseFloat32: break
                    }
                }
                let storage = StorageOptions(sharedTensors: ["other"], huffman: huffman)
                let model = Self.model(["t": tensor, "other": Tensor(shape: [1], floats: [1])], storage: storage)
                let name = try #require(ModelFile.encodedTensorSizes(model)["t"]).encoding
                #expect(!name.contains("codebook"), "\(name)")
            }
        }
    }

    @Test func huffmanOnlyWhenAllowedAndSmaller() throws {
        // Skewed indices: Huffman wins when allowed.
        let skewed = Tensor(shape: [20_000], floats: Self.shared(count: 20_000, density: 1, levels: 64, seed: 7))
        let fixed = TensorFileEncoding(choosingFor: skewed, shared: true, huffman: false)
        let coded = TensorFileEncoding(choosingFor: skewed, shared: true, huffman: true)
        let bits = try #require(Self.denseCodebook(skewed, huffman: false)).indexBits
        #expect(bits >= 5)
        #expect(fixed.name(dtype: .float32) == "codebook/\(bits)-bit")
        #expect(coded.name(dtype: .float32) == "codebook/\(bits)-bit+huffman")
        #expect(coded.fieldSize(denseByteCount: 80_000) < fixed.fieldSize(denseByteCount: 80_000))
        // Without the option no candidate is Huffman-coded.
        for candidate in TensorFileEncoding.candidates(for: skewed, shared: true, huffman: false) {
            #expect(!candidate.name(dtype: .float32).contains("huffman"))
        }
        // Equally frequent indices: Huffman gives every index 5 bits and adds its table, so it is not used.
        let uniform = Tensor(shape: [1024], floats: (0..<1024).map { Float($0 % 32 + 1) / 8 })
        #expect(TensorFileEncoding(choosingFor: uniform, shared: true, huffman: true).name(dtype: .float32) == "codebook/5-bit")
        let table = try #require(Self.denseCodebook(uniform, huffman: true))
        // No index_bits (2 bytes), a table of 32 lengths (field 4 holding field 1: 36 bytes), the same 640 index bytes.
        #expect(table.messageSize == (try #require(Self.denseCodebook(uniform, huffman: false))).messageSize - 2 + 36)
    }

    /// lenet300's fc1 after Deep Compression: 300x784, 90% of the weights
    /// pruned, the rest shared among 32 centroids (5-bit).
    @Test func deepCompressedFc1IsEightTimesSmaller() throws {
        let values = Self.shared(count: 300 * 784, density: 0.1, levels: 32, offset: 1.0 / 3000, seed: 11)
        let tensor = Tensor(shape: [300, 784], floats: values)
        let name = "fc1.weight"
        func size(_ encoding: TensorFileEncoding) -> Int { encodedTensorRecordSize(tensor, named: name, encoding: encoding) }
        let dense = size(.dense)
        let sparse = size(TensorFileEncoding(choosingFor: tensor))
        let codebookDense = size(.codebook(try #require(Self.denseCodebook(tensor, huffman: false))))
        let codebookDenseHuffman = size(.codebook(try #require(Self.denseCodebook(tensor, huffman: true))))
        let codebookSparse = size(TensorFileEncoding(choosingFor: tensor, shared: true, huffman: false))
        let best = TensorFileEncoding(choosingFor: tensor, shared: true, huffman: true)
        let codebookSparseHuffman = size(best)
        print("fc1 300x784, 10% of 5-bit weights: dense \(dense), sparse-float32 \(sparse), codebook dense \(codebookDense),"
              + " codebook dense + Huffman \(codebookDenseHuffman), codebook sparse \(codebookSparse)"
              + " (\(TensorFileEncoding(choosingFor: tensor, shared: true).name(dtype: .float32))),"
              + " codebook sparse + Huffman \(codebookSparseHuffman) (\(best.name(dtype: .float32)))")
        #expect(dense == 940_830)
        #expect(codebookSparse * 8 < dense, "\(codebookSparse)")
        #expect(codebookSparseHuffman < codebookSparse && codebookSparse < sparse && codebookSparse < codebookDense)
        #expect(codebookDenseHuffman < codebookDense)
        let model = Self.model([name: tensor], storage: StorageOptions(sharedTensors: [name], huffman: true))
        let bytes = try ModelFile.encode(model)
        #expect(bytes.count < codebookSparseHuffman + 100)
        #expect(try ModelFile.decode(bytes) == model)
    }

    // MARK: Metadata

    @Test func storageOptionsRoundTrip() throws {
        let tensors = ["a": Tensor(shape: [2], floats: [1, 2]), "b": Tensor(shape: [2], floats: [3, 3])]
        for storage in [StorageOptions(sharedTensors: ["b"]), StorageOptions(huffman: true),
                        StorageOptions(sharedTensors: ["b", "a"], huffman: true)] {
            let model = Self.model(tensors, storage: storage)
            #expect(try ModelFile.decode(try ModelFile.encode(model)).metadata.storage == storage)
        }
        // Empty options write nothing: the metadata message stays empty (its field, 2 bytes, ends the payload).
        let plain = try ModelFile.encode(Self.model(tensors))
        #expect(Array(plain.suffix(2)) == [0x1A, 0x00])
        let withHuffman = try ModelFile.encode(Self.model(tensors, storage: StorageOptions(huffman: true)))
        // Field 3 holding field 5 (2 bytes) holding huffman = true (2 bytes).
        #expect(Array(withHuffman.suffix(6)) == [0x1A, 0x04, 0x2A, 0x02, 0x10, 0x01])
    }

    @Test func sharedNamesMustBeInitializers() throws {
        let tensors = ["a": Tensor(shape: [2], floats: [1, 2])]
        #expect(throws: ModelFileError.unencodable(
            "the storage options list 'nope' as a shared tensor, but the graph has no initializer of that name")) {
            try ModelFile.encode(Self.model(tensors, storage: StorageOptions(sharedTensors: ["a", "nope"])))
        }
        // A file that lists one anyway is refused on read.
        let encoder = ProtoEncoder()
        let message = try encoder.model(Self.model(tensors, storage: StorageOptions(sharedTensors: ["a"])))
        message.pointee.metadata.pointee.storage.pointee.shared_tensors = encoder.arena.strings(["gone"])
        let payload = [UInt8](unsafeUninitializedCapacity: compressor__model__get_packed_size(message)) { buffer, count in
            count = compressor__model__pack(message, buffer.baseAddress)
        }
        withExtendedLifetime(encoder) {}
        let bytes = FileHeader(payload: payload).bytes + payload
        #expect(throws: ModelFileError.unknownSharedTensor("gone")) { try ModelFile.decode(bytes) }
        #expect(ModelFileError.unknownSharedTensor("gone").description
            == "the model's storage options list 'gone' as a shared tensor, but the graph has no initializer of that name")
    }

    // MARK: Refusals

    /// 40 elements over +0.0 and five float32 centroids (0.1 is no float16):
    /// six codes, 3-bit indices, 120 bits in 15 bytes.
    static let corruptible = Tensor(shape: [5, 8], floats: (0..<40).map { [0, -1.5, 0.1, 0.5, 2, 3][$0 % 6] })

    /// The file of `corruptible` (or `tensor`) as a dense codebook, after `edit`.
    static func codebookFile(_ tensor: Tensor = corruptible, huffman: Bool = false,
                             edit: (ProtoArena, inout Compressor__CodebookIndices) -> Void) throws -> [UInt8] {
        let layout = denseCodebook(tensor, huffman: huffman)!
        return try SparseStorageTests.file(tensor, encoding: .codebook(layout)) { arena, t in
            precondition(t.pointee.encoding_case == COMPRESSOR__TENSOR__ENCODING_CODEBOOK)
            edit(arena, &t.pointee.codebook.pointee)
        }
    }

    @Test func theCorruptibleFixtureIsAsDescribed() throws {
        let layout = try #require(Self.denseCodebook(Self.corruptible, huffman: false))
        #expect(layout.zeroCode && layout.centroids.count == 5 && layout.indexBits == 3 && !layout.float16)
        #expect(layout.indexCoding.dataByteCount(symbols: 40, fixedWidth: 3) == 15)
        try expectRoundTrip(Self.corruptible, encoding: .codebook(layout))
    }

    @Test func truncatedOrPaddedIndicesAreRefused() throws {
        expectRefused(try Self.codebookFile { _, c in c.indices.len -= 1 }, "14 bytes of indices, 40 of 3 bits need 15")
        expectRefused(try Self.codebookFile { _, c in c.has_indices = 0 }, "0 bytes of indices, 40 of 3 bits need 15")
        // 15 elements over two codes: 1-bit indices, 15 bits in 2 bytes; bit 15 is padding.
        var six = [Float](repeating: 0.5, count: 15)
        six[0] = 2
        expectRefused(try Self.codebookFile(Tensor(shape: [15], floats: six)) { _, c in c.indices.data[1] |= 0x80 },
                      "the padding bits after the last index are not zero")
    }

    @Test func indicesPastTheCodebookAreRefused() throws {
        // Index 0 becomes 7: there are 6 codes.
        expectRefused(try Self.codebookFile { _, c in c.indices.data[0] |= 0x07 }, "index 0 is 7, past the 6 codes")
        // Dropping the zero code leaves 5 codes: index 5 (centroid 3.0, element 5) is past them.
        expectRefused(try Self.codebookFile { _, c in c.has_zero_code = 0 }, "index 5 is 5, past the 5 codes")
    }

    @Test func badIndexBitsAreRefused() throws {
        for bits: UInt32 in [0, 9, 32, .max] {
            expectRefused(try Self.codebookFile { _, c in c.index_bits = bits }, "index_bits is \(bits), not in 1...8")
        }
        expectRefused(try Self.codebookFile { _, c in c.index_bits = 2 }, "2-bit indices cannot address 6 codes")
        #expect(throws: ModelFileError.missingField("tensor 't': codebook index_bits")) {
            try ModelFile.decode(try Self.codebookFile { _, c in c.has_index_bits = 0 })
        }
    }

    @Test func centroidBytesOfTheWrongLengthAreRefused() throws {
        expectRefused(try Self.codebookFile { _, c in c.centroids_float32.pointee.data.len -= 1 },
                      "19 bytes of float32 centroids, not a multiple of 4")
        let halves = Tensor(shape: [4], floats: [0.5, 1, 0.5, 0])
        expectRefused(try Self.codebookFile(halves) { _, c in c.centroids_float16.pointee.data.len -= 1 },
                      "3 bytes of float16 centroids, not a multiple of 2")
        // 256 centroids and a zero code: 257 codes.
        expectRefused(try Self.codebookFile { arena, c in
            c.centroids_float32.pointee.data = arena.bytes(count: 1024) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
        }, "257 codes, more than 256")
    }

    @Test func unknownMembersAreRefusedByName() throws {
        // A centroid type this build does not know leaves the centroids oneof unset.
        #expect(throws: ModelFileError.unknownEncoding(tensor: "t")) {
            try ModelFile.decode(try Self.codebookFile { _, c in c.centroids_case = COMPRESSOR__CODEBOOK_INDICES__CENTROIDS__NOT_SET })
        }
        #expect(throws: ModelFileError.unknownEncoding(tensor: "t")) {
            try ModelFile.decode(try SparseStorageTests.file(Self.corruptible) { _, t in
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING__NOT_SET
            })
        }
    }

    @Test func badHuffmanTablesAndStreamsAreRefused() throws {
        let skewed = Tensor(shape: [200], floats: Self.shared(count: 200, density: 0.8, levels: 6, seed: 3))
        let layout = try #require(Self.denseCodebook(skewed, huffman: true))
        try expectRoundTrip(skewed, encoding: .codebook(layout))
        let codes = layout.codeCount
        expectRefused(try Self.codebookFile(skewed, huffman: true) { _, c in
            for i in 0..<c.indices_huffman.pointee.lengths.len { c.indices_huffman.pointee.lengths.data[i] = 1 }
        }, "the Huffman table of the indices: invalid Huffman code: the code lengths do not form a complete prefix code")
        expectRefused(try Self.codebookFile(skewed, huffman: true) { _, c in c.indices_huffman.pointee.lengths.len -= 1 },
                      "the Huffman table of the indices has \(codes - 1) code lengths for \(codes) symbols")
        expectRefused(try Self.codebookFile(skewed, huffman: true) { _, c in c.indices_huffman.pointee.lengths.data[0] = 30 },
                      "a code is longer than 24 bits")
        expectRefused(try Self.codebookFile(skewed, huffman: true) { _, c in c.indices.len /= 2 },
                      "indices: Huffman stream ends after")
        expectRefused(try Self.codebookFile(skewed, huffman: true) { _, c in c.indices.len = 10 },
                      "10 bytes of Huffman-coded indices cannot hold 200 symbols")
        expectRefused(try Self.codebookFile(skewed, huffman: true) { arena, c in
            let longer = [UInt8](UnsafeRawBufferPointer(start: c.indices.data, count: c.indices.len)) + [0]
            c.indices = arena.bytes(count: longer.count) { out in longer.withUnsafeBytes { out.copyMemory(from: $0) } }
        }, "bytes of Huffman-coded indices, its 200 symbols take")
    }

    /// The sparse layout with codebook values at 3-bit gaps: 30 non-zeros
    /// in 300 elements; its gaps and indices are refused like the others.
    @Test func sparseCodebookStreamsAreRefused() throws {
        var values = [Float](repeating: 0, count: 300)
        for i in 0..<30 { values[i * i % 300] = [0.5, -0.25, 1, 0.5, 0.5][i % 5] }
        let tensor = Tensor(shape: [300], floats: values)
        func file(gapsHuffman: Bool, indicesHuffman: Bool,
                  _ edit: (inout Compressor__SparseFloat32) -> Void) throws -> [UInt8] {
            let encoding = try #require(Self.sparseCodebook(tensor, indexBits: 3, gapsHuffman: gapsHuffman,
                                                            indicesHuffman: indicesHuffman))
            try expectRoundTrip(tensor, encoding: encoding)
            return try SparseStorageTests.file(tensor, encoding: encoding) { _, t in edit(&t.pointee.sparse_float32.pointee) }
        }
        expectRefused(try file(gapsHuffman: false, indicesHuffman: false) { s in s.values_codebook.pointee.indices.len -= 1 },
                      "bytes of indices")
        expectRefused(try file(gapsHuffman: false, indicesHuffman: true) { s in s.values_codebook.pointee.indices.len = 1 },
                      "Huffman-coded indices cannot hold")
        expectRefused(try file(gapsHuffman: true, indicesHuffman: false) { s in s.gaps.len = 1 }, codebook: false,
                      "Huffman-coded gaps cannot hold")
        expectRefused(try file(gapsHuffman: true, indicesHuffman: false) { s in s.gaps_huffman.pointee.lengths.len = 3 },
                      codebook: false, "the Huffman table of the gaps has 3 code lengths for 8 symbols")
        expectRefused(try file(gapsHuffman: true, indicesHuffman: false) { s in
            for i in 0..<8 { s.gaps_huffman.pointee.lengths.data[i] = 2 }
        }, codebook: false, "do not form a complete prefix code")
    }

    /// Random byte mutations inside packed codebook records (dense and
    /// sparse, Huffman-coded or not): every file decodes or throws, never traps.
    @Test func mutatedCodebookRecordsNeverCrash() throws {
        let tensor = Tensor(shape: [40, 25], floats: Self.shared(count: 1000, density: 0.3, levels: 12, seed: 23))
        var generator = SeededGenerator(seed: 19)
        let encodings = [Self.denseCodebook(tensor, huffman: false)!, Self.denseCodebook(tensor, huffman: true)!]
            .map { TensorFileEncoding.codebook($0) }
            + [(false, false), (true, true), (true, false)].map {
                Self.sparseCodebook(tensor, indexBits: 4, gapsHuffman: $0, indicesHuffman: $1)!
            }
        for encoding in encodings {
            let payload = Array(try SparseStorageTests.file(tensor, encoding: encoding)[24...])
            let size = encoding.fieldSize(denseByteCount: 4000)
            let end = payload.count - 2  // the empty metadata follows the tensor
            let start = end - size
            for _ in 0..<300 {
                var mutated = payload
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    mutated[Int.random(in: start..<end, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                _ = try? ModelFile.decode(FileHeader(payload: mutated).bytes + mutated)
            }
        }
    }
}
