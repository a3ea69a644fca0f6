import CModelProto
import Foundation
import Testing
@testable import Compress

/// Quantized precisions in the model file (`StorageOptions.precisions`):
/// the grid arithmetic against hand computations, exact round trips of
/// float16 and int8 tensors, sizes computed without writing, and refusal of
/// inconsistent records by tensor name.
@Suite struct QuantizationStorageTests {
    // MARK: The grid, by hand

    @Test func quantizeRoundsHalfToEvenAndSaturates() {
        let q = { (x: Float, s: Float, z: Int32, r: ClosedRange<Int32>) in
            QuantizationGrid.quantize(x, scale: s, zeroPoint: z, range: r)
        }
        // Ties go to the even integer, both signs.
        #expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5].map { q($0, 1, 0, -128...127) } == [0, 2, 2, 4, 0, -2, -2])
        #expect(q(2.4999998, 1, 0, -128...127) == 2 && q(2.5000002, 1, 0, -128...127) == 3)
        // Rounding happens before the zero point: 1.25 / 0.5 = 2.5 -> 2, + 3.
        #expect(q(1.25, 0.5, 3, -128...127) == 5 && q(1.75, 0.5, 3, -128...127) == 7)
        // Saturation to the storage range, after adding the zero point.
        #expect(q(200, 1, 0, -128...127) == 127 && q(-200, 1, 0, -128...127) == -128)
        #expect(q(-1000, 0.1, 128, 0...255) == 0 && q(1000, 0.1, 128, 0...255) == 255)
        #expect(q(126.5, 1, 1, -128...127) == 127)  // 126 (even) + 1
        #expect(q(.nan, 1, 7, 0...255) == 7 && q(.infinity, 1, 0, 0...255) == 255)
        #expect(QuantizationGrid.dequantize(5, scale: 0.5, zeroPoint: 3) == 1)
        #expect(QuantizationGrid.dequantize(0, scale: 0.25, zeroPoint: 128) == -32)
        #expect(QuantizationGrid.fakeQuantize(0.3, scale: 0.25, zeroPoint: 0, range: -128...127) == 0.25)
    }

    @Test func scalesAndZeroPointsFromRanges() {
        // Asymmetric uint8 over [-1, 3]: scale 4/255, zero point round(63.75) = 64.
        let a = QuantizationGrid.scaleAndZeroPoint(lower: -1, upper: 3, qmin: 0, qmax: 255, symmetric: false)
        #expect(a.scale == Float(4) / 255 && a.zeroPoint == 64)
        // The range is widened to contain zero: [1, 3] is treated as [0, 3].
        let b = QuantizationGrid.scaleAndZeroPoint(lower: 1, upper: 3, qmin: 0, qmax: 255, symmetric: false)
        #expect(b.scale == Float(3) / 255 && b.zeroPoint == 0)
        // Symmetric int8 over [-2, 1]: [-2, 2] on -127...127, zero point 0.
        let c = QuantizationGrid.scaleAndZeroPoint(lower: -2, upper: 1, qmin: -127, qmax: 127, symmetric: true)
        #expect(c.scale == Float(4) / 254 && c.zeroPoint == 0)
        // Symmetric uint8: the middle of 0...255, 127.5, rounds to even 128.
        #expect(QuantizationGrid.scaleAndZeroPoint(lower: -1, upper: 1, qmin: 0, qmax: 255, symmetric: true).zeroPoint == 128)
        // An all-zero range: scale 1, so zero stays exactly zero.
        let d = QuantizationGrid.scaleAndZeroPoint(lower: 0, upper: 0, qmin: -128, qmax: 127, symmetric: false)
        #expect(d.scale == 1 && d.zeroPoint == 0)
    }

    @Test func perChannelScalesFollowEachChannelsRange() {
        // Two output channels of three weights each.
        let values: [Float] = [1, -2, 0.5, 0.1, 0.2, -0.4]
        let grid = QuantizationGrid.fitted(to: values, shape: [2, 3], axis: 0, qmin: -127, qmax: 127, symmetric: true)
        #expect(grid.scales == [Float(4) / 254, Float(0.8) / 254] && grid.zeroPoints == [0, 0])
        let q = grid.quantize(values, shape: [2, 3])
        // -2 and -0.4 are their channel's extremes: -127. 1 / (4/254) = 63.5 -> 64 (even).
        #expect(q == [64, -127, 32, 32, 64, -127])
        let perTensor = QuantizationGrid.fitted(to: values, shape: [2, 3], axis: nil, qmin: -127, qmax: 127, symmetric: true)
        #expect(perTensor.scales == [Float(4) / 254])
        #expect(perTensor.quantize(values, shape: [2, 3]) == [64, -127, 32, 6, 13, -25])
        // Axis 1 of a [2, 2, 2] tensor: elements 0, 1, 4, 5 are channel 0.
        let mid = QuantizationGrid(axis: 1, scales: [1, 10], zeroPoints: [0, 0], qmin: -127, qmax: 127)
        #expect(mid.quantize([1, 2, 30, 40, 5, 6, 70, 80], shape: [2, 2, 2]) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    // MARK: Round trips

    static func model(_ tensors: [String: Tensor], precisions: [String: TensorPrecision]) -> Model {
        Model(graph: Graph(inputs: [], outputs: [], nodes: [], initializers: tensors),
              metadata: ModelMetadata(storage: StorageOptions(precisions: precisions)))
    }

    /// Values exactly representable in float16: signed zeros, the smallest
    /// subnormal, the largest finite half, infinities, ordinary values.
    static let halves: [Float] = [0, -0.0, 1, -1.5, 0.333251953125, 65504, -65504, Float(Float16.leastNonzeroMagnitude),
                                  .infinity, -.infinity, Float(1e-3).roundedToFloat16, Float(3.14159).roundedToFloat16]

    @Test func float16TensorsRoundTripBitExactInHalfTheBytes() throws {
        let big = Tensor(shape: [64, 64], floats: (0..<4096).map { (Float($0) * 0.37 - 700).roundedToFloat16 })
        let model = Self.model(["h": Tensor(shape: [3, 4], floats: Self.halves), "big": big, "plain": big],
                               precisions: ["h": .float16, "big": .float16])
        let bytes = try ModelFile.encode(model)
        let back = try ModelFile.decode(bytes)
        #expect(back == model)
        for name in ["h", "big"] {
            #expect(back.graph.initializers[name]!.floats.map(\.bitPattern) == model.graph.initializers[name]!.floats.map(\.bitPattern))
            #expect(back.graph.initializers[name]!.dtype == .float32)
        }
        let sizes = ModelFile.encodedTensorSizes(model)
        #expect(sizes["big"]!.encoding == "dense-float16" && sizes["plain"]!.encoding == "dense-float32")
        #expect(sizes["big"]!.bytes * 2 - sizes["plain"]!.bytes <= 16, "\(sizes)")
        // The computed sizes are the written ones.
        for (name, size) in sizes {
            #expect(size.bytes == (try ProtoEncoder.encodedSize(ofTensor: model.graph.initializers[name]!, named: name,
                                                                 storage: model.metadata.storage)), "\(name)")
        }
        let withoutRecords = Self.model(["h": Tensor(shape: [3, 4], floats: Self.halves), "big": big, "plain": big],
                                        precisions: [:])
        let saved = try ModelFile.encode(withoutRecords).count - bytes.count
        #expect(saved > 2 * 4096 + 2 * 12 - 40 && saved < 2 * 4096 + 2 * 12, "\(saved): two bytes a value, less the records")
    }

    @Test func int8TensorsRoundTripBitExact() throws {
        var rng = SeededGenerator(seed: 3)
        let raw = rng.uniformTensor([4, 3, 2, 2], in: -1...1).floats
        for (axis, symmetric) in [(Int?(0), true), (nil, false), (1, false)] {
            let shape = [4, 3, 2, 2]
            let grid = QuantizationGrid.fitted(to: raw, shape: shape, axis: axis, qmin: symmetric ? -127 : -128, qmax: 127,
                                               symmetric: symmetric)
            let values = grid.fakeQuantize(raw, shape: shape)
            let model = Self.model(["w": Tensor(shape: shape, floats: values)], precisions: ["w": .int8(grid)])
            let back = try ModelFile.decode(try ModelFile.encode(model))
            #expect(back == model)
            let size = try #require(ModelFile.encodedTensorSizes(model)["w"])
            #expect(size.encoding == "dense-int8/" + (axis == nil ? "per-tensor" : "per-channel"))
            #expect(size.bytes == (try ProtoEncoder.encodedSize(ofTensor: model.graph.initializers["w"]!, named: "w",
                                                                 storage: model.metadata.storage)))
            #expect(size.bytes < 48 + 16, "one byte a value and the framing")
        }
    }

    @Test func prunedInt8TensorsAreStoredSparseAndRoundTripBitExact() throws {
        // A [16, 8, 3, 3] weight with 90% of its elements zero, on a per-channel symmetric grid.
        var rng = SeededGenerator(seed: 11)
        let shape = [16, 8, 3, 3]
        let raw = rng.uniformTensor(shape, in: -1...1).floats.enumerated().map { i, v in i % 10 == 3 ? v : 0 }
        let grid = QuantizationGrid.fitted(to: raw, shape: shape, axis: 0, qmin: -127, qmax: 127, symmetric: true)
        let values = grid.fakeQuantize(raw, shape: shape)
        for huffman in [false, true] {
            var model = Self.model(["w": Tensor(shape: shape, floats: values)], precisions: ["w": .int8(grid)])
            model.metadata.storage.huffman = huffman
            let bytes = try ModelFile.encode(model)
            #expect(try ModelFile.decode(bytes) == model)
            let size = try #require(ModelFile.encodedTensorSizes(model)["w"])
            #expect(size.encoding.hasPrefix("sparse-int8/per-channel/"), "\(size.encoding)")
            #expect(size.bytes == (try ProtoEncoder.encodedSize(ofTensor: model.graph.initializers["w"]!, named: "w",
                                                                 storage: model.metadata.storage)))
            // At most 116 non-zeros (a few round to 0): a byte each plus a few bits of gap, against 1,152 bytes dense.
            let nonZeros = values.filter { $0 != 0 }.count
            #expect(nonZeros > 100 && nonZeros <= 116, "\(nonZeros)")
            #expect(size.bytes < nonZeros * 2 + 120, "\(size.bytes)")
        }
        // A dense weight stays dense-int8; so does a grid with non-zero zero points.
        let dense = grid.fakeQuantize(rng.uniformTensor(shape, in: -1...1).floats, shape: shape)
        let denseModel = Self.model(["w": Tensor(shape: shape, floats: dense)], precisions: ["w": .int8(grid)])
        #expect(ModelFile.encodedTensorSizes(denseModel)["w"]?.encoding == "dense-int8/per-channel")
        let asymmetric = QuantizationGrid.fitted(to: raw, shape: shape, axis: nil, qmin: -128, qmax: 127, symmetric: false)
        try #require(asymmetric.zeroPoints != [0])
        let shifted = Self.model(["w": Tensor(shape: shape, floats: asymmetric.fakeQuantize(raw, shape: shape))],
                                 precisions: ["w": .int8(asymmetric)])
        #expect(ModelFile.encodedTensorSizes(shifted)["w"]?.encoding == "dense-int8/per-tensor")
        #expect(try ModelFile.decode(try ModelFile.encode(shifted)) == shifted)
    }

    @Test func theWriterRefusesValuesItsPrecisionCannotHold() throws {
        let tensor = Tensor(shape: [2], floats: [1, 0.1])
        #expect(throws: ModelFileError.unencodable("tensor 'w' is recorded as float16 but holds 0.1, which float16 does not represent exactly; quantize after the passes that change weights")) {
            try ModelFile.encode(Self.model(["w": tensor], precisions: ["w": .float16]))
        }
        let grid = QuantizationGrid(scales: [0.5], zeroPoints: [0], qmin: -127, qmax: 127)
        #expect(throws: ModelFileError.self) { try ModelFile.encode(Self.model(["w": tensor], precisions: ["w": .int8(grid)])) }
        #expect(throws: ModelFileError.unencodable("the storage options record a precision for 'gone', but the graph has no float32 initializer of that name")) {
            try ModelFile.encode(Self.model(["w": Tensor(shape: [1], floats: [1])], precisions: ["gone": .float16]))
        }
    }

    @Test func quantizeDequantizeNodesRoundTripAndBadAttributesAreRefused() throws {
        let q = ActivationQuantization(scale: 0.03125, zeroPoint: 7, signed: false)
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [4])], outputs: ["y"],
                          nodes: [Node(name: "qdq", op: .quantizeDequantize(q), inputs: ["x"], output: "y")], initializers: [:])
        let model = Model(graph: graph)
        #expect(try ModelFile.decode(try ModelFile.encode(model)) == model)
        let signed = Model(graph: Graph(inputs: graph.inputs, outputs: ["y"], nodes: [
            Node(name: "qdq", op: .quantizeDequantize(ActivationQuantization(scale: 2, zeroPoint: -3, signed: true)),
                 inputs: ["x"], output: "y")], initializers: [:]))
        #expect(try ModelFile.decode(try ModelFile.encode(signed)) == signed)
        for bad in [ActivationQuantization(scale: 0, zeroPoint: 0, signed: false),
                    ActivationQuantization(scale: .nan, zeroPoint: 0, signed: false),
                    ActivationQuantization(scale: 1, zeroPoint: 300, signed: false),
                    ActivationQuantization(scale: 1, zeroPoint: 200, signed: true)] {
            var m = model
            m.graph.nodes[0].op = .quantizeDequantize(bad)
            do {
                _ = try ModelFile.decode(try ModelFile.encode(m))
                Issue.record("read \(bad)")
            } catch let error as ModelFileError {
                guard case .invalidAttribute(let node, _) = error else { Issue.record("\(error)"); continue }
                #expect(node == "qdq")
            }
        }
    }

    // MARK: Refusals

    /// The file of an int8 per-channel [2, 3] tensor "t" after `edit` of its
    /// precision record (and `tensorEdit` of its tensor message).
    static func int8File(edit: (inout Compressor__QuantizationParameters) -> Void = { _ in },
                         recordEdit: (ProtoArena, inout Compressor__TensorPrecision) -> Void = { _, _ in },
                         tensorEdit: (inout Compressor__Tensor) -> Void = { _ in }) throws -> [UInt8] {
        let grid = QuantizationGrid(axis: 0, scales: [0.5, 0.25], zeroPoints: [0, 1], qmin: -128, qmax: 127)
        let values = grid.dequantize([1, 2, 3, -4, -5, 6], shape: [2, 3])
        let encoder = ProtoEncoder()
        let message = try encoder.model(model(["t": Tensor(shape: [2, 3], floats: values)], precisions: ["t": .int8(grid)]))
        let record = message.pointee.metadata.pointee.storage.pointee.precisions[0]!
        edit(&record.pointee.int8.pointee)
        recordEdit(encoder.arena, &record.pointee)
        tensorEdit(&message.pointee.graph.pointee.tensors[0]!.pointee)
        let payload = [UInt8](unsafeUninitializedCapacity: compressor__model__get_packed_size(message)) { buffer, count in
            count = compressor__model__pack(message, buffer.baseAddress)
        }
        withExtendedLifetime(encoder) {}
        return FileHeader(payload: payload).bytes + payload
    }

    func expectRefused(_ bytes: [UInt8], tensor: String = "t", _ detail: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ModelFile.decode(bytes)
            Issue.record("decoded a corrupt precision record", sourceLocation: sourceLocation)
        } catch {
            guard case .invalidPrecision(let name, let actual) = error else {
                Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(name == tensor, sourceLocation: sourceLocation)
            #expect(actual.contains(detail), "\(actual)", sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix("tensor '\(tensor)' has an invalid precision record: "),
                    sourceLocation: sourceLocation)
        }
    }

    @Test func theCorruptibleFixtureReads() throws {
        let m = try ModelFile.decode(try Self.int8File())
        #expect(m.graph.initializers["t"]!.floats == [0.5, 1, 1.5, -1.25, -1.5, 1.25])
    }

    @Test func corruptQuantizationRecordsAreRefusedByTensorName() throws {
        expectRefused(try Self.int8File { $0.n_scales = 1 }, "has 1 scale(s) and 2 zero point(s) for 2 channel(s)")
        expectRefused(try Self.int8File { $0.axis = 2 }, "has axis 2, but the tensor has 2 dimension(s)")
        expectRefused(try Self.int8File { $0.has_axis = 0 }, "has 2 scale(s) and 2 zero point(s) for 1 channel(s)")
        expectRefused(try Self.int8File { $0.scales[1] = 0 }, "has the scale 0.0, not positive and finite")
        expectRefused(try Self.int8File { $0.scales[0] = -.infinity }, "not positive and finite")
        expectRefused(try Self.int8File { $0.zero_points[1] = 300 }, "has the zero point 300, outside -128...127")
        expectRefused(try Self.int8File { $0.qmax = 200 }, "has the integer range -128...200")
        expectRefused(try Self.int8File { $0.has_qmin = 0 }, "its integer range is missing")
        expectRefused(try Self.int8File(recordEdit: { _, r in r.format_case = COMPRESSOR__TENSOR_PRECISION__FORMAT__NOT_SET }),
                      "uses a format this compressor does not know")
        expectRefused(try Self.int8File(recordEdit: { arena, r in r.tensor = arena.string("gone") }), tensor: "gone",
                      "the graph has no initializer of that name")
        // The record says int8, the tensor is stored as float16.
        expectRefused(try Self.int8File(recordEdit: { arena, r in
            r.format_case = COMPRESSOR__TENSOR_PRECISION__FORMAT_FLOAT16
            r.float16 = arena.message(compressor__no_attributes__init)
        }), "it is float16, but the tensor is stored as int8")
        // A DenseInt8 tensor of the wrong length is refused as ever.
        #expect(throws: ModelFileError.self) {
            try ModelFile.decode(try Self.int8File(tensorEdit: { $0.dense_int8.pointee.data.len -= 1 }))
        }
    }
}
