import Foundation
import Testing
@testable import Compress

/// Quantization-aware training: shadow weights rounded onto their grids in
/// the forward, straight-through gradients, and the trainer keeping int8 and
/// float16 tensors in their precisions (`keep-precisions`).
@Suite struct QuantizationAwareTrainingTests {
    /// A per-channel grid on a [2, 3] tensor: scales 0.5 and 0.25, zero point
    /// 0, integers -4...4 (inside int8's storage range).
    let grid = QuantizationGrid(axis: 0, scales: [0.5, 0.25], zeroPoints: [0, 0], qmin: -4, qmax: 4)

    @Test func shadowWeightsRoundOntoTheGridByHand() {
        // Channel 0 (scale 0.5): 0.26 -> 0.52 -> 1 -> 0.5; -0.75 -> -1.5 -> -2 (tie to even) -> -1;
        // 3 -> 6, saturates at 4 -> 2. Channel 1 (scale 0.25): 0.125 -> 0.5 -> 0 (tie to even);
        // -1.1 -> -4.4 -> -4 -> -1; 2 -> 8, saturates at 4 -> 1.
        let shadow = ShadowWeights(format: .grid(grid), shape: [2, 3], values: [0.26, -0.75, 3, 0.125, -1.1, 2])
        #expect(shadow.rounded == [0.5, -1, 2, 0, -1, 1])
        // The same as the grid's own quantize -> dequantize where nothing saturates past -4...4.
        let inside: [Float] = [0.26, -0.75, 1.9, 0.125, -1.1, 0.9]
        #expect(ShadowWeights(format: .grid(grid), shape: [2, 3], values: inside).rounded
                == grid.dequantize(grid.quantize(inside, shape: [2, 3]), shape: [2, 3]))
        // Straight through inside the range, zero where the integer saturates.
        var gradient: [Float] = [1, 2, 3, 4, 5, 6]
        gradient.withUnsafeMutableBufferPointer { shadow.straightThrough($0) }
        #expect(gradient == [1, 2, 0, 4, 5, 0])

        // Asymmetric, per tensor: scale 0.5, zero point 3, integers 0...10.
        let asymmetric = QuantizationGrid(scales: [0.5], zeroPoints: [3], qmin: 0, qmax: 10)
        // -1.6 -> -3.2 -> -3 + 3 = 0 -> -1.5; -2 -> -4 + 3 = -1, saturates at 0 -> -1.5;
        // 3.6 -> 7.2 -> 7 + 3 = 10 -> 3.5; 3.8 -> 7.6 -> 8 + 3 = 11, saturates at 10 -> 3.5.
        let a = ShadowWeights(format: .grid(asymmetric), shape: [4], values: [-1.6, -2, 3.6, 3.8])
        #expect(a.rounded == [-1.5, -1.5, 3.5, 3.5])
        var g: [Float] = [1, 1, 1, 1]
        g.withUnsafeMutableBufferPointer { a.straightThrough($0) }
        #expect(g == [1, 0, 1, 0])

        // Reduced range: integers -64...64 even though int8 storage holds -128...127.
        let reduced = QuantizationGrid(scales: [1], zeroPoints: [0], qmin: -64, qmax: 64)
        #expect(ShadowWeights(format: .grid(reduced), shape: [3], values: [100, -70.4, 63.5]).rounded == [64, -64, 64])

        // float16: ties to even at half precision, saturating at ±65504.
        let half = ShadowWeights(format: .float16, shape: [4], values: [1.0001, 1 + 3 * 0.00048828125, 70000, -1e6])
        #expect(half.rounded == [1, 1.001953125, 65504, -65504])
        var h: [Float] = [1, 1, 1, 1]
        h.withUnsafeMutableBufferPointer { half.straightThrough($0) }
        #expect(h == [1, 1, 0, 0])
    }

    /// LeNet-300 on 8x8 images with int8 per-channel grids on fc2 and fc3,
    /// its weights left at their float32 values (off the grids): what the
    /// quantize pass hands the trainer.
    func recordedModel() -> (Model, [String: QuantizationGrid]) {
        var m = TrainingRunTests().model()
        var grids: [String: QuantizationGrid] = [:]
        for name in ["fc2.weight", "fc3.weight"] {
            let w = m.graph.initializers[name]!
            let g = QuantizationGrid.fitted(to: w.floats, shape: w.shape, axis: 0, qmin: -127, qmax: 127, symmetric: true)
            grids[name] = g
            m.metadata.storage.precisions[name] = .int8(g)
        }
        return (m, grids)
    }

    /// The first `n` training images and their labels.
    func firstImages(_ n: Int) -> (Tensor, [Int32]) {
        let train = TrainingRunTests().data().train
        let size = train.images.count / train.images.shape[0]
        return (Tensor(shape: [n] + train.images.shape.dropFirst(), floats: Array(train.images.floats[0..<n * size])),
                Array(train.labels[0..<n]))
    }

    func loss(_ graph: TrainingGraph, _ images: Tensor, _ labels: [Int32]) throws -> (Float, Tensor) {
        let logits = try graph.forward(images, training: false)
        return Loss.softmaxCrossEntropy(logits: logits, labels: labels, labelSmoothing: 0)
    }

    @Test func forwardReadsTheRoundedShadowAndGradientsPassStraightThrough() throws {
        let (model, grids) = recordedModel()
        let (images, labels) = firstImages(16)
        let tied = try TrainingGraph(model: model)
        tied.tieQuantizedTensors(model.metadata.storage.precisions)
        #expect(tied.parameters["fc1.weight"]!.policy.shadow == nil)
        // The forward reads quantize -> dequantize of the shadow weights.
        var rounded = model
        for (name, g) in grids {
            let w = model.graph.initializers[name]!
            let expected = g.dequantize(g.quantize(w.floats, shape: w.shape), shape: w.shape)
            #expect(Array(tied.parameters[name]!.values) == expected)
            #expect(tied.parameters[name]!.policy.shadow?.values == w.floats)
            #expect(expected != w.floats)
            rounded.graph.initializers[name] = Tensor(shape: w.shape, floats: expected)
        }
        // Its gradient is the gradient with respect to the rounded weights: the
        // same as an untied graph's at the rounded values.
        let plain = try TrainingGraph(model: rounded)
        let (tiedLoss, tiedGradient) = try loss(tied, images, labels)
        let (plainLoss, plainGradient) = try loss(plain, images, labels)
        #expect(tiedLoss == plainLoss)
        try tied.backward(tiedGradient)
        try plain.backward(plainGradient)
        let g = Array(tied.parameters["fc3.weight"]!.gradient)
        #expect(g == Array(plain.parameters["fc3.weight"]!.gradient))
        #expect(Array(tied.parameters["fc2.weight"]!.gradient) == Array(plain.parameters["fc2.weight"]!.gradient))
        // Finite differences on the rounded fc3 weights (the logits are linear in them).
        let probe = try TrainingGraph(model: rounded)
        let p = probe.parameters["fc3.weight"]!
        let largest = g.indices.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(5)
        for i in largest {
            let (saved, eps) = (p.values[i], Float(1e-2))
            p.values[i] = saved + eps
            let up = try loss(probe, images, labels).0
            p.values[i] = saved - eps
            let down = try loss(probe, images, labels).0
            p.values[i] = saved
            let numeric = (up - down) / (2 * eps)
            #expect(abs(numeric - g[i]) <= 0.02 * abs(g[i]) + 1e-4, "fc3.weight[\(i)]: \(numeric) vs \(g[i])")
        }
    }

    @Test func aStepMovesTheShadowByTheStraightThroughGradient() throws {
        var (model, grids) = recordedModel()
        // One fc3 weight far beyond its channel's range: its integer saturates.
        var w3 = model.graph.initializers["fc3.weight"]!.floats
        let shape3 = model.graph.initializers["fc3.weight"]!.shape
        w3[5] = 1000
        model.graph.initializers["fc3.weight"] = Tensor(shape: shape3, floats: w3)
        let (images, labels) = firstImages(16)
        let graph = try TrainingGraph(model: model)
        graph.tieQuantizedTensors(model.metadata.storage.precisions)
        let (_, gradient) = try loss(graph, images, labels)
        try graph.backward(gradient)
        let p = graph.parameters["fc3.weight"]!
        let g = Array(p.gradient)
        #expect(g[5] != 0)
        let lr: Float = 0.5
        SGD().step([p], learningRate: lr)
        let shadow = p.policy.shadow!.values
        for i in g.indices where i != 5 { #expect(shadow[i] == w3[i] - lr * g[i], "\(i)") }
        #expect(shadow[5] == 1000, "a saturated weight gets no gradient")
        // The values are the new shadow weights' rounding; the saturated one sits at its channel's end (127 x scale).
        let expected = ShadowWeights(format: .grid(grids["fc3.weight"]!), shape: shape3, values: shadow).rounded
        #expect(Array(p.values) == expected)
        let channel = 5 / shape3[1]
        #expect(p.values[5] == 127 * grids["fc3.weight"]!.scales[channel])
        #expect(expected != grids["fc3.weight"]!.fakeQuantize(w3, shape: shape3), "the step moved some integers")
    }

    func trained(_ model: Model, keepPrecisions: Bool, epochs: Int = 2, checkpoint: String? = nil) throws -> Model {
        var s = TrainingRunTests().settings(epochs: epochs)
        s.keepsPrecisions = keepPrecisions
        s.keepsZeroWeights = true
        return try TrainingRun(model: model, data: TrainingRunTests().data(), settings: s, passName: "finetune",
                               checkpointDirectory: checkpoint).run(resume: false).model
    }

    /// LeNet-300 stored with fc1 on an int8 grid per tensor and fc2 in float16.
    func storedModel() -> Model {
        var m = TrainingRunTests().model()
        let w1 = m.graph.initializers["fc1.weight"]!
        let g = QuantizationGrid.fitted(to: w1.floats, shape: w1.shape, axis: nil, qmin: -127, qmax: 127, symmetric: true)
        m.graph.initializers["fc1.weight"] = Tensor(shape: w1.shape, floats: g.fakeQuantize(w1.floats, shape: w1.shape))
        let w2 = m.graph.initializers["fc2.weight"]!
        m.graph.initializers["fc2.weight"] = Tensor(shape: w2.shape, floats: w2.floats.map(\.roundedToFloat16))
        m.metadata.storage.precisions = ["fc1.weight": .int8(g), "fc2.weight": .float16]
        return m
    }

    @Test func keptPrecisionsStayOnTheirGridsAndTheFileWrites() throws {
        let model = storedModel()
        let out = try trained(model, keepPrecisions: true)
        #expect(out.metadata.storage.precisions == model.metadata.storage.precisions)
        #expect(out.metadata.history.last?.parameters["keep-precisions"] == nil)
        for (name, precision) in out.metadata.storage.precisions {
            let t = out.graph.initializers[name]!
            #expect(precision.problem(values: t.floats, shape: t.shape) == nil, "\(name)")
            #expect(t != model.graph.initializers[name]!, "\(name) did not train")
        }
        // The symmetric grid's integers stay within -127...127.
        guard case .int8(let g) = out.metadata.storage.precisions["fc1.weight"] else { Issue.record("no grid"); return }
        let w1 = out.graph.initializers["fc1.weight"]!
        #expect(g.quantize(w1.floats, shape: w1.shape).allSatisfy { (-127...127).contains($0) })
        #expect(try ModelFile.decode(try ModelFile.encode(out)) == out)
    }

    @Test func releasedPrecisionsTrainInFloat32() throws {
        let model = storedModel()
        let out = try trained(model, keepPrecisions: false)
        #expect(out.metadata.storage.precisions.isEmpty)
        #expect(out.metadata.history.last?.parameters["keep-precisions"] == "false")
        let w1 = out.graph.initializers["fc1.weight"]!
        guard case .int8(let g) = model.metadata.storage.precisions["fc1.weight"] else { Issue.record("no grid"); return }
        #expect(g.firstValueOffGrid(w1.floats, shape: w1.shape) != nil)
        #expect(try !TrainingSettings(validating: ["keep-precisions": "false"], defaults: .fineTuneDefaults).keepsPrecisions)
        #expect(FineTuneParameters.specs(epochsHelp: "").contains { $0.name == "finetune-keep-precisions" })
    }

    @Test func shadowWeightsCarryAcrossEpochsAndCheckpoints() throws {
        // Two epochs in one run equal one epoch, stopped, then resumed: the
        // second epoch continues from the shadow weights, not from their rounding.
        let (model, _) = recordedModel()
        let once = try trained(model, keepPrecisions: true)
        let directory = try TrainingRunTests().tempDir()
        var s = TrainingRunTests().settings(epochs: 2)
        s.keepsZeroWeights = true
        // Run epoch 1 only by cancelling at the start of epoch 2.
        let cancel = CancellationFlag()
        let run = try TrainingRun(model: model, data: TrainingRunTests().data(), settings: s, passName: "finetune",
                                  checkpointDirectory: directory, cancellation: cancel)
        run.onBestModel = { _ in cancel.cancel() }
        #expect(throws: PassCancelled.self) { try run.run(resume: false) }
        let shadowFiles = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("shadow-") }
        #expect(shadowFiles == ["shadow-1.bin"])
        let resumed = try TrainingRun(model: model, data: TrainingRunTests().data(), settings: s, passName: "finetune",
                                      checkpointDirectory: directory).run(resume: true).model
        #expect(resumed.graph.initializers == once.graph.initializers)
    }
}
