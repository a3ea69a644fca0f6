import CModelProto
import Foundation
import Testing
@testable import Compress

/// Hashed tensors (HashedNets): the layout's hash against an independent
/// reference of its documented formula, bucket usage, the `hashed_float32`
/// encoding's exact round trip, the writer's choice, the storage options, and
/// refusal of inconsistent records by tensor name.
@Suite struct HashedStorageTests {
    /// The documented hash, written out again with 128-bit arithmetic.
    static func reference(seed: UInt64, buckets: Int, i: Int) -> (bucket: Int, negated: Bool) {
        func mix(_ x: UInt64) -> UInt64 {
            var z = x
            z ^= z >> 30; z = z &* 0xBF58476D1CE4E5B9
            z ^= z >> 27; z = z &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        func key(_ t: UInt64) -> UInt64 { mix(seed &+ (2 &* UInt64(i) &+ t &+ 1) &* 0x9E3779B97F4A7C15) }
        let bucket = Int((UInt128(key(0)) * UInt128(buckets)) >> 64)
        return (bucket, key(1) >> 63 == 1)
    }

    @Test func theLayoutIsTheDocumentedHash() {
        for (seed, buckets) in [(UInt64(0), 1), (42, 7), (0xDEAD_BEEF_0123_4567, 1250), (.max, 33_250)] {
            let layout = HashedLayout(seed: seed, buckets: buckets, count: 500)
            for i in 0..<500 {
                let r = Self.reference(seed: seed, buckets: buckets, i: i)
                #expect(layout.bucket(i) == r.bucket && layout.isNegated(i) == r.negated, "seed \(seed) element \(i)")
            }
        }
        // Golden values computed with Python's integers from the formula in
        // proto/model.proto, so a change of the hash (which would misread
        // every hashed file) is seen.
        let small = HashedLayout(seed: 1, buckets: 10, count: 8)
        #expect(small.assignments == [5, 9, 4, 8, 2, 4, 4, 4])
        #expect(small.signs == [-1, 1, -1, -1, -1, -1, -1, 1])
        let large = HashedLayout(seed: 0xDEAD_BEEF, buckets: 1000, count: 8)
        #expect(large.assignments == [292, 8, 234, 352, 41, 883, 108, 961])
        #expect(large.signs == [-1, 1, -1, -1, 1, -1, -1, 1])
    }

    @Test func bucketsAreEvenlyUsedAndSignsBalanced() {
        let layout = HashedLayout(seed: 7, buckets: 1250, count: 10_000)
        var members = [Int](repeating: 0, count: 1250)
        for k in layout.assignments { members[Int(k)] += 1 }
        // Poisson(8): an empty bucket has probability e^-8, so about 0.4 of 1250.
        #expect(members.filter { $0 == 0 }.count <= 5)
        #expect(members.max()! <= 25)
        let negated = (0..<10_000).filter { layout.isNegated($0) }.count
        #expect((4_800...5_200).contains(negated), "\(negated)")
        // Another seed gives another layout.
        let other = HashedLayout(seed: 8, buckets: 1250, count: 10_000)
        let same = zip(layout.assignments, other.assignments).filter { $0 == $1 }.count
        #expect(same < 50, "\(same)")
    }

    /// Buckets with every special bit pattern: -0.0, +0.0, quiet and
    /// signalling NaNs of both signs with payloads, infinities, a denormal.
    static let specialBuckets: [UInt32] = [0x3FC0_0000, 0x8000_0000, 0, 0x7FC0_0123, 0xFFA0_0001, 0x7F80_0000,
                                           0xFF80_0000, 0x0000_0001, 0xBE80_0000]

    static func hashedModel(buckets: [UInt32], shape: [Int], seed: UInt64) -> Model {
        let layout = HashedLayout(seed: seed, buckets: buckets.count, count: shape.elementCount)
        let values = layout.materialize(bitPatterns: buckets).map { Float(bitPattern: $0) }
        return CodebookStorageTests.model(
            ["t": Tensor(shape: shape, floats: values)],
            storage: StorageOptions(hashedTensors: ["t": HashedTensor(buckets: buckets.count, seed: seed)]))
    }

    @Test func hashedTensorsRoundTripBitForBitWithTheirComputedSize() throws {
        let model = Self.hashedModel(buckets: Self.specialBuckets, shape: [6, 12], seed: 99)
        let tensor = model.graph.initializers["t"]!
        let name = ModelFile.encodingName(of: tensor, named: "t", storage: model.metadata.storage)
        #expect(name == "hashed-float32")
        let bytes = try ModelFile.encode(model)
        let back = try ModelFile.decode(bytes)
        #expect(back.graph.initializers["t"]!.floats.map(\.bitPattern) == tensor.floats.map(\.bitPattern))
        #expect(back.metadata.storage == model.metadata.storage)
        #expect(try ModelFile.encode(back) == bytes)
        // Some virtual weights are sign-flipped specials: -NaN from +NaN, +0.0 from -0.0.
        let patterns = Set(tensor.floats.map(\.bitPattern))
        #expect(patterns.contains(0xFFC0_0123) || patterns.contains(0x7FA0_0001))
        let encoding = TensorFileEncoding(choosingFor: tensor, named: "t", storage: model.metadata.storage)
        #expect(try ProtoEncoder.encodedSize(ofTensor: tensor, named: "t", encoding: encoding)
            == encodedTensorRecordSize(tensor, named: "t", encoding: encoding))
        // 72 weights from 9 buckets: 36 bytes of buckets against 288 dense.
        #expect(ModelFile.encodedTensorSizes(model)["t"]!.bytes < 60)
    }

    @Test func valuesNotDrawnFromTheLayoutFallBackDeterministically() throws {
        var model = Self.hashedModel(buckets: [1, 2, 3, 4], shape: [40], seed: 3)
        var values = model.graph.initializers["t"]!.floats
        // -0.0 where the layout gives +0.0 is enough to break it.
        values[5] = values[5] == 1 ? 1.5 : -values[5]
        model.graph.initializers["t"] = Tensor(shape: [40], floats: values)
        let tensor = model.graph.initializers["t"]!
        #expect(ModelFile.encodingName(of: tensor, named: "t", storage: model.metadata.storage) == "dense-float32")
        let back = try ModelFile.decode(try ModelFile.encode(model))
        #expect(back.graph.initializers["t"]!.floats.map(\.bitPattern) == values.map(\.bitPattern))
        // A tensor not listed is never hashed, nor one listed with another seed.
        let consistent = Self.hashedModel(buckets: [1, 2, 3, 4], shape: [40], seed: 3)
        let t = consistent.graph.initializers["t"]!
        #expect(ModelFile.encodingName(of: t, named: "t") == "dense-float32")
        #expect(ModelFile.encodingName(of: t, named: "t",
                                       storage: StorageOptions(hashedTensors: ["t": HashedTensor(buckets: 4, seed: 4)]))
            == "dense-float32")
    }

    @Test func hashedNamesMustBeInitializers() throws {
        let tensors = ["a": Tensor(shape: [2], floats: [1, 2])]
        #expect(throws: ModelFileError.unencodable(
            "the storage options list 'nope' as a hashed tensor, but the graph has no initializer of that name")) {
            try ModelFile.encode(CodebookStorageTests.model(
                tensors, storage: StorageOptions(hashedTensors: ["nope": HashedTensor(buckets: 1, seed: 0)])))
        }
        let encoder = ProtoEncoder()
        let message = try encoder.model(CodebookStorageTests.model(
            tensors, storage: StorageOptions(hashedTensors: ["a": HashedTensor(buckets: 1, seed: 0)])))
        message.pointee.metadata.pointee.storage.pointee.hashed_tensors.pointee!.pointee.name = encoder.arena.string("gone")
        #expect(throws: ModelFileError.unknownHashedTensor("gone")) { try ModelFile.decode(Self.file(message, encoder)) }
        message.pointee.metadata.pointee.storage.pointee.hashed_tensors.pointee!.pointee.name = encoder.arena.string("a")
        message.pointee.metadata.pointee.storage.pointee.hashed_tensors.pointee!.pointee.buckets = 0
        #expect(throws: ModelFileError.invalidHashedTensor(tensor: "a", detail: "the storage options give it 0 buckets")) {
            try ModelFile.decode(Self.file(message, encoder))
        }
    }

    static func file(_ message: UnsafeMutablePointer<Compressor__Model>, _ encoder: ProtoEncoder) -> [UInt8] {
        let payload = [UInt8](unsafeUninitializedCapacity: compressor__model__get_packed_size(message)) { buffer, count in
            count = compressor__model__pack(message, buffer.baseAddress)
        }
        withExtendedLifetime(encoder) {}
        return FileHeader(payload: payload).bytes + payload
    }

    // MARK: Refusals

    /// The file of 40 elements hashed into 5 buckets with seed 5, listed in
    /// the storage options unless `unlisted`, after `edit`.
    static func hashedFile(unlisted: Bool = false,
                           edit: (ProtoArena, inout Compressor__HashedFloat32) -> Void) throws -> [UInt8] {
        let layout = HashedLayout(seed: 5, buckets: 5, count: 40)
        let buckets: [UInt32] = [1, 2, 3, 4, 5].map { Float($0).bitPattern }
        let tensor = Tensor(shape: [5, 8], floats: layout.materialize(bitPatterns: buckets).map { Float(bitPattern: $0) })
        let encoder = ProtoEncoder()
        let message = try encoder.model(CodebookStorageTests.model(
            ["t": tensor], storage: StorageOptions(hashedTensors: ["t": HashedTensor(buckets: 5, seed: 5)])))
        let t = message.pointee.graph.pointee.tensors[0]!
        precondition(t.pointee.encoding_case == COMPRESSOR__TENSOR__ENCODING_HASHED_FLOAT32)
        edit(encoder.arena, &t.pointee.hashed_float32.pointee)
        if unlisted { message.pointee.metadata.pointee.storage.pointee.n_hashed_tensors = 0 }
        return file(message, encoder)
    }

    @Test func theFixtureReadsBack() throws {
        let m = try ModelFile.decode(try Self.hashedFile { _, _ in })
        let layout = HashedLayout(seed: 5, buckets: 5, count: 40)
        #expect(m.graph.initializers["t"]!.floats == layout.materialize([1, 2, 3, 4, 5]))
    }

    @Test func corruptOrTruncatedRecordsAreRefusedByName() throws {
        func refused(_ error: ModelFileError, edit: (ProtoArena, inout Compressor__HashedFloat32) -> Void) {
            #expect(throws: error) { try ModelFile.decode(try Self.hashedFile(edit: edit)) }
            #expect(error.description.contains("'t'"), "\(error)")
        }
        refused(.invalidHashedTensor(tensor: "t", detail: "19 bytes of float32 buckets, not a multiple of 4")) { _, h in
            h.buckets.len = 19
        }
        refused(.invalidHashedTensor(tensor: "t", detail: "no buckets")) { _, h in h.buckets.len = 0 }
        refused(.invalidHashedTensor(tensor: "t", detail: "41 buckets for 40 elements")) { arena, h in
            h.buckets = arena.bytes(count: 164) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        }
        refused(.missingField("tensor 't': hashed seed")) { _, h in h.has_seed = 0 }
        refused(.missingField("tensor 't': hashed buckets")) { _, h in h.has_buckets = 0 }
        // A record must match the storage options' entry, and have one.
        refused(.invalidHashedTensor(tensor: "t", detail: "5 buckets with seed 6, the storage options say 5 with seed 5")) {
            _, h in h.seed = 6
        }
        #expect(throws: ModelFileError.invalidHashedTensor(tensor: "t", detail: "the storage options do not list it as hashed")) {
            try ModelFile.decode(try Self.hashedFile(unlisted: true) { _, _ in })
        }
        // A whole file cut inside the record is refused before any tensor is read.
        let bytes = try Self.hashedFile { _, _ in }
        #expect(throws: ModelFileError.self) { try ModelFile.decode(Array(bytes.dropLast(3))) }
    }

    @Test func anUnknownEncodingFieldIsRefusedByName() throws {
        // What a reader that predates `hashed_float32` sees: the oneof unset.
        #expect(throws: ModelFileError.unknownEncoding(tensor: "t")) {
            try ModelFile.decode(try SparseStorageTests.file(Tensor(shape: [2], floats: [1, 2])) { _, t in
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING__NOT_SET
            })
        }
    }
}
