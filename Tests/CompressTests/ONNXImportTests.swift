import Foundation
import Testing
@testable import Compress

/// ONNX import against fixtures written by `Tests/onnx/make_fixtures.py`:
/// models built with onnx.helper and onnxruntime's outputs as golden values.
@Suite struct ONNXImportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx")

    static func path(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    static func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: fixtures.appendingPathComponent(name))) }

    /// Imports fixture `name`, runs its input through a Session and the reference
    /// evaluator, and checks every output against onnxruntime's.
    func expectGolden(_ name: String) throws -> Model {
        let model = try ModelLoader.read(path: Self.path("\(name).onnx"))
        let x = try NPY.read(path: Self.path("\(name)_x.npy"))
        let fast = try Session(model: model).run(inputs: ["x": x])
        let reference = try ReferenceEvaluator.run(model.graph, inputs: ["x": x])
        for (i, output) in model.graph.outputs.enumerated() {
            let expected = try NPY.read(path: Self.path("\(name)_y\(i).npy"))
            for got in [fast[output]!, reference[output]!] {
                expectClose(got, expected, tolerance: 1e-4, "\(name) output \(output)")
            }
        }
        return model
    }

    @Test func opset13ModelMatchesOnnxruntime() throws {
        let model = try expectGolden("opset13_cnn")
        let ops = model.graph.nodes.map(\.op.kind)
        #expect(ops == ["Conv2d", "BatchNorm", "ReLU6", "MaxPool", "Reshape", "Linear", "Softmax"])
        #expect(model.metadata.classNames == ["0", "1", "2"])
        #expect(model.inputShape == [2, 8, 8])
    }

    @Test func padFoldsIntoTheConvPadding() throws {
        let model = try ModelLoader.read(path: Self.path("opset13_cnn.onnx"))
        guard case .conv2d(let a) = model.graph.nodes[0].op else { Issue.record("first node is not a conv"); return }
        #expect(a.padding == .same(1))
        #expect(model.graph.nodes[0].inputs == ["x", "w"])
        let opset9 = try ModelLoader.read(path: Self.path("opset9_attributes.onnx"))
        guard case .conv2d(let b) = opset9.graph.nodes[0].op else { Issue.record("first node is not a conv"); return }
        #expect(b.padding == Padding2(top: 1, left: 0, bottom: 1, right: 2))
    }

    @Test func shapeChainFoldsToABatchCopyingReshape() throws {
        let model = try ModelLoader.read(path: Self.path("opset13_cnn.onnx"))
        let reshape = try #require(model.graph.nodes.first { $0.op.kind == "Reshape" })
        #expect(reshape.op == .reshape(shape: [0, -1]))
        // The folded chain leaves no shape constants behind, and MatMul+Add became one Linear with bias.
        #expect(model.graph.initializers["target"] == nil && model.graph.initializers["i0"] == nil)
        let linear = try #require(model.graph.nodes.first { $0.op == .linear })
        #expect(linear.inputs.count == 3 && linear.output == "logits")
        // Any batch size runs, not just the one the chain was folded at.
        var rng = SeededGenerator(seed: 1)
        let x = rng.uniformTensor([5, 2, 8, 8])
        let fast = try Session(model: model).run(inputs: ["x": x])
        let reference = try ReferenceEvaluator.run(model.graph, inputs: ["x": x])
        #expect(fast["probs"]!.shape == [5, 3])
        expectClose(fast["probs"]!, reference["probs"]!, tolerance: 1e-5)
    }

    @Test func opset9AttributesAreRead() throws {
        let model = try expectGolden("opset9_attributes")
        let ops = model.graph.nodes.map(\.op.kind)
        // Clip(min 0, max 6) as attributes: ReLU6. Dropout(ratio attribute): removed.
        // Pre-13 Softmax on 4-D normalizes over C·H·W: Flatten, Softmax, Reshape.
        // ReduceMean(axes attribute [2, 3], keepdims 0): GlobalAvgPool + Flatten.
        #expect(ops == ["Conv2d", "ReLU6", "Flatten", "Softmax", "Reshape", "GlobalAvgPool", "Flatten", "Linear"])
        // Gemm alpha 2 is folded into the weight, transB=1 keeps it [out, in].
        let gemm = try #require(model.graph.nodes.last)
        #expect(model.graph.initializers[gemm.inputs[1]]?.shape == [5, 3])
    }

    @Test func everyUnsupportedNodeIsListedInOneError() throws {
        #expect {
            _ = try ONNXImporter.decode(try Self.bytes("unsupported.onnx"))
        } throws: { error in
            guard case ONNXImportError.unsupported(let nodes) = error else { return false }
            return nodes.map(\.node) == ["sine", "erf"] && nodes.map(\.opType) == ["Sin", "Erf"]
        }
        #expect(throws: ONNXImportError.malformed) { try ONNXImporter.decode([0x0A, 0xFF, 0xFF]) }
    }

    @Test func formatsAreDetectedByContent() throws {
        let onnx = try Self.bytes("opset13_cnn.onnx")
        #expect(ONNXImporter.looksLikeONNX(onnx))
        let native = try ModelFile.encode(try ModelLoader.decode(onnx))
        #expect(!ONNXImporter.looksLikeONNX(native))
        #expect(!ONNXImporter.looksLikeONNX(Array("hello, world\n".utf8)))
        #expect(try ModelLoader.decode(native) == (try ModelLoader.decode(onnx)))
        #expect(throws: ModelFileError.wrongMagic(looksLike: "a text file")) { try ModelLoader.decode(Array("hello, world\n".utf8)) }
    }

    @Test func exporterMetadataIsRestored() {
        let metadata = ONNXImporter.metadata([ONNXImporter.architectureKey: "lenet5", ONNXImporter.classNamesKey: "cat\ndog"],
                                             outputShape: [1, 2])
        #expect(metadata.architecture == "lenet5" && metadata.classNames == ["cat", "dog"])
        #expect(ONNXImporter.metadata([:], outputShape: [1, 3]).classNames == ["0", "1", "2"])
    }

    @Test func samePaddingSplitsTheOddPixel() {
        #expect(samePadding(5, 3, 2, 1, upper: true) == (1, 1))
        #expect(samePadding(6, 3, 2, 1, upper: true) == (0, 1))
        #expect(samePadding(6, 3, 2, 1, upper: false) == (1, 0))
    }
}
