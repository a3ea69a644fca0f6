import Foundation
import Testing
@testable import Compress
@testable import Prune

/// An int8 model written as QDQ ONNX and imported back is the same model:
/// the same graph (nodes, ops, attributes, names), the same weights bit for
/// bit with the same int8 grids, the same normalization, and so the same
/// outputs.
@Suite struct QDQRoundTripTests {
    static let vgg = Architecture.vggSmall.build(seed: 4, inputShape: [1, 8, 8], classes: 4)
    static let resnet = Architecture.resnet20.build(seed: 5, inputShape: [1, 8, 8], classes: 4)

    func quantized(_ model: Model, _ raw: [String: String] = [:]) throws -> Model {
        let splits = quadrantSplits()
        let context = PassContext(seed: 1, data: DataProvider { splits })
        let (pass, parameters) = try quantizePass(["format": "int8"].merging(raw) { $1 })
        var normalized = model
        normalized.metadata.normalization = Normalization(mean: [0.25], std: [0.5])
        return try pass.run(on: normalized, context: context, parameters: parameters).0
    }

    func expectSameModel(_ a: Model, _ b: Model, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(b.graph.nodes == a.graph.nodes, sourceLocation: sourceLocation)
        #expect(b.graph.inputs == a.graph.inputs && b.graph.outputs == a.graph.outputs, sourceLocation: sourceLocation)
        #expect(b.graph.initializers.keys.sorted() == a.graph.initializers.keys.sorted(), sourceLocation: sourceLocation)
        for (name, tensor) in a.graph.initializers {
            let back = try #require(b.graph.initializers[name], sourceLocation: sourceLocation)
            #expect(back.shape == tensor.shape && back.floats.map(\.bitPattern) == tensor.floats.map(\.bitPattern),
                    "\(name)", sourceLocation: sourceLocation)
        }
        #expect(b.metadata.storage.precisions == a.metadata.storage.precisions, sourceLocation: sourceLocation)
        #expect(b.metadata.normalization == a.metadata.normalization, sourceLocation: sourceLocation)
        var rng = SeededGenerator(seed: 9)
        let input = rng.uniformTensor([3, 1, 8, 8], in: 0...1)
        let (x, y) = (try Session(model: a).run(input), try Session(model: b).run(input))
        #expect(x.floats.map(\.bitPattern) == y.floats.map(\.bitPattern), sourceLocation: sourceLocation)
    }

    @Test(arguments: ["vgg", "resnet"])
    func defaultInt8ModelsComeBackUnchanged(_ which: String) throws {
        let model = try quantized(which == "vgg" ? Self.vgg : Self.resnet)
        let back = try ONNXImporter.decode(try ONNXExporter.encode(model))
        try expectSameModel(model, back)
    }

    @Test func perTensorInt8ActivationsAndWeightOnlyModelsComeBackUnchanged() throws {
        for raw in [["weights": "per-tensor", "activations": "int8"], ["activations": "none"]] {
            let model = try quantized(Self.vgg, raw)
            let back = try ONNXImporter.decode(try ONNXExporter.encode(model))
            try expectSameModel(model, back)
        }
    }
}
