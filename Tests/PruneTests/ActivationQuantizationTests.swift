import Foundation
import Testing
@testable import Compress
@testable import Prune

/// `quantize --format int8` with calibrated activations: where the
/// quantizers go, what ranges calibration gives, and that the runtime, the
/// reference evaluator and the file agree on the fake-quantized graph.
@Suite struct ActivationQuantizationTests {
    /// VGG-small (blocked convs, BatchNorm) and ResNet-20 (residual adds) on 1x8x8 images.
    static let vgg = Architecture.vggSmall.build(seed: 4, inputShape: [1, 8, 8], classes: 4)
    static let resnet = Architecture.resnet20.build(seed: 5, inputShape: [1, 8, 8], classes: 4)

    func context() -> PassContext {
        let splits = quadrantSplits()
        return PassContext(seed: 1, data: DataProvider { splits })
    }

    func quantized(_ model: Model, _ raw: [String: String] = [:]) throws -> (Model, PassRecord) {
        let (pass, parameters) = try quantizePass(["format": "int8", "fold-bn": "true"].merging(raw) { $1 })
        return try pass.run(on: model, context: context(), parameters: parameters)
    }

    func quantizers(_ m: Model) -> [(Node, ActivationQuantization)] {
        m.graph.nodes.compactMap { n in if case .quantizeDequantize(let q) = n.op { (n, q) } else { nil } }
    }

    @Test func theOpQuantizesAsTheGridDoesByHand() throws {
        let q = ActivationQuantization(scale: 0.5, zeroPoint: 10, signed: false)
        let x: [Float] = [0, 0.25, 0.75, -5, -5.25, 200, -0.0, 1.3]
        // 0.25 / 0.5 = 0.5 -> 0; 0.75 -> 1.5 -> 2; -5 -> -10 + 10 = 0; -5.25 -> -10.5 -> -10 + 10 = 0 (tie to even);
        // 200 saturates at 255: (255 - 10) * 0.5.
        let expected: [Float] = [0, 0, 1, -5, -5, 122.5, 0, 1.5]
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { q.apply($0.baseAddress!, &y, count: x.count) }
        #expect(y == expected)
        #expect(x.map(q.apply) == expected)
        let signed = ActivationQuantization(scale: 1, zeroPoint: 0, signed: true)
        #expect([-200, 127.5, 126.5, -128.5].map(signed.apply) == [-128, 127, 126, -128])
        #expect(ActivationQuantization(scale: 0, zeroPoint: 0, signed: true).problem != nil)
        #expect(ActivationQuantization(scale: 1, zeroPoint: -1, signed: false).problem != nil)
    }

    @Test func quantizersFollowEveryLayerOutputButTheLogits() throws {
        let (out, record) = try quantized(Self.resnet)
        let q = quantizers(out)
        let inputs = Set(q.map { $0.0.inputs[0] })
        #expect(inputs.contains(Self.resnet.graph.inputs[0].name))
        #expect(!inputs.contains { Self.resnet.graph.outputs.contains($0) })
        // Each quantized value is read only through its quantizer.
        for (node, _) in q {
            let readers = out.graph.nodes.filter { $0.inputs.contains(node.inputs[0]) }
            #expect(readers.map(\.name) == [node.name], "\(node.inputs[0]) read by \(readers.map(\.name))")
        }
        // The folded ResNet-20: conv + ReLU units, the adds (+ReLU) and the pool.
        let adds = Self.resnet.graph.nodes.filter { $0.op == .add }.count
        #expect(adds > 0 && q.count == record.metrics["quantized-activations"].map { Int($0) })
        #expect(q.allSatisfy { !$0.1.signed && $0.1.problem == nil })
        _ = try out.graph.inferShapes(batch: 1)
    }

    @Test func runtimeReferenceAndFileAgreeOnTheFakeQuantizedGraph() throws {
        for model in [Self.vgg, Self.resnet] {
            let (out, _) = try quantized(model)
            var rng = SeededGenerator(seed: 3)
            let x = rng.uniformTensor([5] + model.inputShape, in: 0...1)
            let fast = try Session(model: out).run(x)
            let slow = try ReferenceEvaluator.run(model: out, input: x)
            let tolerance = zip(fast.floats, slow.floats).map { abs($0 - $1) }.max()!
            #expect(tolerance < 1e-3, "\(tolerance)")
            let back = try ModelFile.decode(try ModelFile.encode(out))
            #expect(back == out)
            #expect(try Session(model: back).run(x).floats == fast.floats)
        }
    }

    @Test func quantizedValuesLieOnTheirGrids() throws {
        let (out, _) = try quantized(Self.vgg)
        var probe = out
        probe.graph.outputs = quantizers(out).map(\.0.output)
        var rng = SeededGenerator(seed: 8)
        let values = try Session(model: probe).run(inputs: [out.graph.inputs[0].name: rng.uniformTensor([2, 1, 8, 8])],
                                                   normalizing: true)
        for (node, q) in quantizers(out) {
            for v in values[node.output]!.floats {
                let steps = v / q.scale + Float(q.zeroPoint)
                #expect(abs(steps - steps.rounded()) < 1e-3 && steps.rounded() >= 0 && steps.rounded() <= 255, "\(node.name): \(v)")
            }
        }
    }

    @Test func minmaxCalibrationCoversTheCalibrationImagesAndPercentileIsInside() throws {
        let (minmax, _) = try quantized(Self.vgg, ["calibration-images": "64"])
        let (percentile, _) = try quantized(Self.vgg, ["calibration": "percentile", "percentile": "99.9"])
        // Every range contains zero; ReLU outputs start at zero (zero point 0).
        for ((a, qa), (b, qb)) in zip(quantizers(minmax), quantizers(percentile)) {
            #expect(a.name == b.name)
            #expect(qb.scale <= qa.scale * 1.001, "\(a.name): percentile \(qb.scale) > minmax \(qa.scale)")
            if a.inputs[0].hasSuffix("relu") || a.inputs[0].contains("relu") { #expect(qa.zeroPoint == 0, "\(a.name)") }
        }
        // minmax by hand: the largest value the first ReLU takes on the 64 validation images.
        let first = try #require(quantizers(minmax).first { $0.0.inputs[0].contains("relu") })
        var probe = Model(graph: foldingBatchNorm(Self.vgg.graph).graph, metadata: Self.vgg.metadata)
        for (name, p) in minmax.metadata.storage.precisions { probe.graph.initializers[name] = minmax.graph.initializers[name]; _ = p }
        probe.graph.outputs = [first.0.inputs[0]]
        let images = quadrantSplits().validation.images
        let upper = try Session(model: probe).run(images).floats.max()!
        #expect(first.1.scale == upper / 255, "\(first.1.scale) vs \(upper / 255)")
    }

    @Test func entropyClipsRareOutliersAndKeepsAUniformRange() {
        // 10,000 values spread evenly over [0, 1] and ten outliers at 10.
        var range = ValueRange()
        let uniform = (0..<10_000).map { Float($0) / 10_000 }
        range.add(uniform + [10])
        var h = MagnitudeHistogram(range, bins: 1024)
        h.add(uniform + [Float](repeating: 10, count: 10))
        let t = h.entropyThreshold(levels: 32)
        #expect(t >= 0.95 && t <= 1.2, "\(t)")
        // Without outliers the whole range is kept.
        var plain = ValueRange()
        plain.add(uniform)
        var g = MagnitudeHistogram(plain, bins: 256)
        g.add(uniform)
        #expect(abs(g.entropyThreshold(levels: 32) - 1) < 0.01, "\(g.entropyThreshold(levels: 32))")
        // Percentiles on the same data.
        var p = ValueHistogram(range, bins: 1024)
        p.add(uniform + [Float](repeating: 10, count: 10))
        let r = p.range(percentile: 99.8)
        #expect(r.lower == 0 && r.upper <= 1.1, "\(r)")
    }

    @Test func entropyIgnoresTheSpikeOfZerosAfterAReLU() {
        // Half the values exactly zero (a ReLU's output), the rest the
        // quantiles of an exponential distribution with mean 0.2 (max 1.98).
        let n = 10_000
        let tail = (0..<n).map { Float(-0.2 * log(1 - (Double($0) + 0.5) / Double(n))) }
        let values = [Float](repeating: 0, count: n) + tail
        var range = ValueRange()
        range.add(values)
        var h = MagnitudeHistogram(range, bins: 256)
        h.add(values)
        // Counted as it is, the spike smeared over Q's first group would cut
        // at 0.24 (a numpy transcription of the search, spike kept, gives
        // that), clipping a third of the tail; with the first bin taken as
        // the second the threshold keeps all but the last ~1% (numpy: 1.354).
        let t = h.entropyThreshold(levels: 16)
        #expect(t >= 1.3 && t <= 1.4, "\(t)")
    }

    @Test func calibrationWithoutDataIsOneClearMessage() throws {
        let (pass, parameters) = try quantizePass(["format": "int8"])
        do {
            _ = try pass.run(on: Self.vgg, context: PassContext(), parameters: parameters)
            Issue.record("calibrated without data")
        } catch {
            #expect("\(error)" == "this pass needs data, but none was given (use --data DIR)")
        }
        let empty = DatasetSplits(train: quadrantImages(8, seed: 1), validation: quadrantImages(0, seed: 2),
                                  test: quadrantImages(8, seed: 3), classNames: ["0", "1", "2", "3"])
        #expect(throws: ParameterError(pass: "quantize", problems: ["int8 activation calibration needs validation images"])) {
            try pass.run(on: Self.vgg, context: PassContext(data: DataProvider { empty }), parameters: parameters)
        }
        #expect(throws: ParameterError.self) { try quantizePass(["format": "int8", "calibration-images": "0"]) }
        #expect(throws: ParameterError.self) { try quantizePass(["format": "int8", "percentile": "120"]) }
    }

    @Test func straightThroughGradientsInsideTheRange() throws {
        let q = ActivationQuantization(scale: 0.5, zeroPoint: 0, signed: false)
        #expect(q.passesGradient(0) && q.passesGradient(127) && !q.passesGradient(-1) && !q.passesGradient(128))
        // A model with quantizers fine-tunes (quantization-aware, straight through).
        let (out, _) = try quantized(Self.vgg)
        let graph = try TrainingGraph(model: out, seed: 1, threads: 1)
        let logits = try graph.forward(quadrantSplits().validation.images.samples(0..<4), training: false)
        let reference = try Session(model: out).run(quadrantSplits().validation.images.samples(0..<4))
        #expect(zip(logits.floats, reference.floats).allSatisfy { abs($0 - $1) < 1e-3 })
    }

    @Test func fineTuningTrainsThroughTheQuantizersAndKeepsTheWeightRecords() throws {
        let small = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)
        let (out, _) = try quantized(small)
        let context = pruneContext()
        let tuned = try context.trainer!.fineTune(out, data: try context.data.splits(), epochs: 1, context: context)
        // The quantizers stay in the graph; the trained weights stay on their int8 grids (keep-precisions).
        #expect(quantizers(tuned).count == quantizers(out).count && !quantizers(out).isEmpty)
        #expect(tuned.metadata.storage.precisions == out.metadata.storage.precisions)
        #expect(tuned.graph.initializers["fc1.weight"] != out.graph.initializers["fc1.weight"])
        #expect(try ModelFile.decode(try ModelFile.encode(tuned)) == tuned)
        // keep-precisions false releases them.
        let released = try context.trainer!.fineTune(out, data: try context.data.splits(), epochs: 1,
                                                     overrides: ["keep-precisions": "false"], context: context)
        #expect(released.metadata.storage.precisions.isEmpty)
        #expect(quantizers(released).count == quantizers(out).count)
    }

    @Test func onnxExportWritesQuantizersAsQDQPairs() throws {
        let (out, _) = try quantized(Self.vgg)
        let spec = try ONNXModelSpec(out, opset: 13)
        // Every quantizer becomes one QuantizeLinear + DequantizeLinear pair (plus the re-quantized pools and flatten).
        let pairs = spec.nodes.filter { $0.opType == "QuantizeLinear" }.map(\.name)
        #expect(Set(quantizers(out).map { "\($0.0.name).QuantizeLinear" }).isSubset(of: pairs))
        #expect(!spec.nodes.contains { $0.opType == "QuantizeDequantize" })
    }
}
