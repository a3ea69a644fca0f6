import Foundation
import Testing
import Compress
@testable import Prune

func quantizePass(_ raw: [String: String]) throws -> (QuantizePass, PassParameters) {
    let p = try PassParameters(validating: raw, against: QuantizePass.parameters, pass: QuantizePass.name)
    return (try QuantizePass(parameters: p), p)
}

@Suite struct QuantizePassTests {
    /// VGG-small on 1x8x8 images: convs, BatchNorms, linears.
    let model = Architecture.vggSmall.build(seed: 4, inputShape: [1, 8, 8], classes: 4)

    /// `m` with every float32 initializer rounded to float16, computed here.
    func roundedByHand(_ m: Model) -> Model {
        var rounded = m
        for (name, t) in m.graph.initializers where t.dtype == .float32 {
            rounded.graph.initializers[name] = Tensor(shape: t.shape, floats: t.floats.map { Float(Float16($0)) })
        }
        return rounded
    }

    func input(_ m: Model) -> Tensor {
        var rng = SeededGenerator(seed: 9)
        return rng.uniformTensor([3] + m.inputShape, in: 0...1)
    }

    @Test func float16OutputsAreTheFloat16RoundedModelsOutputs() throws {
        let (pass, parameters) = try quantizePass(["format": "float16", "fold-bn": "false"])
        let (out, record) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        let floats = model.graph.initializers.filter { $0.value.dtype == .float32 }
        #expect(Set(out.metadata.storage.precisions.keys) == Set(floats.keys))
        #expect(out.metadata.storage.precisions.values.allSatisfy { $0 == .float16 })
        let byHand = roundedByHand(model)
        #expect(out.graph == byHand.graph)
        let (a, b) = (try Session(model: out).run(input(model)), try Session(model: byHand).run(input(model)))
        #expect(a.floats.map(\.bitPattern) == b.floats.map(\.bitPattern))
        // The reference evaluator computes the same model.
        let reference = try ReferenceEvaluator.run(model: out, input: input(model))
        #expect(zip(reference.floats, a.floats).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($0)) })
        #expect(record.metrics["quantized-tensors"] == Double(floats.count))
        #expect(record.metrics["max-abs-diff"].map { $0 > 0 && $0 < 0.05 } == true, "\(record.metrics)")
        let ratio = record.metrics["file-bytes-before"]! / record.metrics["file-bytes-after"]!
        #expect(ratio > 1.9, "\(ratio)")
        // The file keeps the values and the records exactly.
        let back = try ModelFile.decode(try ModelFile.encode(out))
        #expect(back == out)
        // Weights as DenseFloat16; the all-zero running means of a fresh model are smaller sparse.
        for (name, size) in ModelFile.encodedTensorSizes(out) {
            let zeros = out.graph.initializers[name]!.nonZeroCount == 0
            #expect(size.encoding == "dense-float16" || zeros && size.encoding.hasPrefix("sparse-float32/"), "\(name): \(size)")
        }
    }

    @Test func foldingFirstQuantizesTheFoldedWeights() throws {
        let (pass, parameters) = try quantizePass(["format": "float16"])
        let (out, record) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        #expect(!out.graph.nodes.contains { if case .batchNorm = $0.op { true } else { false } })
        #expect(out.graph == roundedByHand(Model(graph: foldingBatchNorm(model.graph).graph)).graph)
        #expect(record.metrics["folded-bn"]! > 0)
        #expect(record.changes.first?.hasPrefix("folded ") == true)
        #expect(out.metadata.history.last?.parameters["fold-bn"] == "true")
    }

    @Test func layerPatternsChooseTheTensors() throws {
        let (pass, parameters) = try quantizePass(["format": "float16", "exclude": "fc"])
        let (out, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        let names = out.metadata.storage.precisions.keys
        #expect(!names.contains { $0.hasPrefix("fc") } && names.contains { $0.hasPrefix("conv") })
        let (bad, badParameters) = try quantizePass(["format": "float16", "layers": "nope*"])
        #expect(throws: ParameterError.self) { try bad.run(on: model, context: PassContext(), parameters: badParameters) }
    }

    @Test func laterPassesKeepOrReleaseThePrecision() throws {
        let (pass, parameters) = try quantizePass(["format": "float16"])
        let (out, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        // Huffman leaves it; sharing replaces a tensor's values by centroids and drops its record.
        let huffman = try HuffmanPass(parameters: PassParameters(validating: [:], against: HuffmanPass.parameters, pass: "huffman"))
        #expect(try huffman.apply(to: out, context: PassContext()).model.metadata.storage.precisions == out.metadata.storage.precisions)
        let (share, shareParameters) = try sharePass(["layers": "fc"])
        let shared = try share.run(on: out, context: PassContext(seed: 1), parameters: shareParameters).model
        #expect(shared.metadata.storage.precisions["fc.weight"] == nil)
        #expect(shared.metadata.storage.precisions["fc.bias"] == .float16)
        _ = try ModelFile.encode(shared)
    }

    @Test func int8WeightsPerChannelAreOnTheirChannelsSymmetricGrid() throws {
        let (pass, parameters) = try quantizePass(["format": "int8", "activations": "none", "fold-bn": "false"])
        let (out, record) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        let layers = try LayerSelection().layers(in: model.graph, pass: "test")
        #expect(Set(out.metadata.storage.precisions.keys) == Set(layers.map(\.weight)))
        for layer in layers {
            let before = model.graph.initializers[layer.weight]!, after = out.graph.initializers[layer.weight]!
            guard case .int8(let grid) = out.metadata.storage.precisions[layer.weight] else {
                Issue.record("\(layer.weight) is not int8"); continue
            }
            #expect(grid.axis == 0 && grid.qmin == -127 && grid.qmax == 127 && grid.zeroPoints.allSatisfy { $0 == 0 })
            let inner = before.count / before.shape[0]
            for c in 0..<before.shape[0] {
                let channel = before.floats[(c * inner)..<((c + 1) * inner)]
                let scale = channel.map(abs).max()! / 127
                #expect(grid.scales[c] == scale, "\(layer.weight)[\(c)]")
                for (w, q) in zip(channel, after.floats[(c * inner)..<((c + 1) * inner)]) {
                    // The nearest grid point, computed here: within half a step, and never beyond the channel's range.
                    #expect(abs(w - q) <= scale / 2 * 1.0001 && abs(q) <= 127 * scale * 1.0001)
                    #expect(q == Float((w / scale).rounded(.toNearestOrEven)) * scale)
                }
            }
        }
        #expect(record.metrics["quantized-tensors"] == Double(layers.count))
        let back = try ModelFile.decode(try ModelFile.encode(out))
        #expect(back == out)
        let sizes = ModelFile.encodedTensorSizes(out)
        #expect(layers.allSatisfy { sizes[$0.weight]!.encoding == "dense-int8/per-channel" })
        #expect(record.metrics["file-bytes-before"]! / record.metrics["file-bytes-after"]! > 3.2)
    }

    @Test func int8PerTensorAsymmetricAndReducedRangeGrids() throws {
        for (raw, qmin, qmax) in [(["weights": "per-tensor", "symmetric": "false"], Int32(-128), Int32(127)),
                                  (["reduce-range": "true"], -64, 64), (["reduce-range": "true", "symmetric": "false"], -64, 64)] {
            let (pass, parameters) = try quantizePass(raw.merging(["format": "int8", "fold-bn": "true", "activations": "none"]) { $1 })
            let (out, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
            for (name, precision) in out.metadata.storage.precisions {
                guard case .int8(let grid) = precision else { Issue.record("\(name)"); continue }
                #expect(grid.qmin == qmin && grid.qmax == qmax, "\(raw)")
                #expect((grid.axis == nil) == (raw["weights"] == "per-tensor"))
                let q = grid.quantize(out.graph.initializers[name]!.floats, shape: out.graph.initializers[name]!.shape)
                #expect(q.allSatisfy { (qmin...qmax).contains($0) }, "\(raw) \(name)")
                if raw["symmetric"] == "false" { #expect(q.contains(qmin) || q.contains(qmax)) }
            }
            #expect(try ModelFile.decode(try ModelFile.encode(out)) == out)
        }
    }

    @Test func badParametersAreRefused() throws {
        #expect(throws: ParameterError.self) { try quantizePass([:]) }
        #expect(throws: ParameterError.self) { try quantizePass(["format": "int4"]) }
        #expect(throws: ParameterError.self) { try quantizePass(["format": "int8", "weights": "per-row"]) }
        #expect(throws: ParameterError.self) { try quantizePass(["format": "float16", "verify-batch": "-1"]) }
        var huge = model
        huge.graph.initializers["fc.bias"] = Tensor(shape: huge.graph.initializers["fc.bias"]!.shape,
                                                     floats: huge.graph.initializers["fc.bias"]!.floats.map { _ in 1e6 })
        let (pass, parameters) = try quantizePass(["format": "float16"])
        do {
            _ = try pass.run(on: huge, context: PassContext(), parameters: parameters)
            Issue.record("quantized a value beyond float16")
        } catch let error as ParameterError {
            #expect(error.problems == ["tensor 'fc.bias' holds 1000000.0, beyond float16's range (±65504)"])
        }
    }
}
