import Compress
import Foundation
import Testing
@testable import LowRank

func lowRankPass(_ raw: [String: String]) throws -> (LowRankPass, PassParameters) {
    let p = try PassParameters(validating: raw, against: LowRankPass.parameters, pass: LowRankPass.name)
    return (try LowRankPass(parameters: p), p)
}

/// Runs the pass with `raw` parameters on `model`.
func lowRank(_ model: Model, _ raw: [String: String]) throws -> (model: Model, record: PassRecord) {
    let (pass, parameters) = try lowRankPass(raw)
    return try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
}

/// The message of the `ParameterError` `body` throws, or nil.
func parameterErrorMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch let error as ParameterError { return error.description } catch { return "not a ParameterError: \(error)" }
    return nil
}

@Suite struct LowRankPassTests {
    let mlp = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)
    let vgg = Architecture.vggSmall.build(seed: 3, inputShape: [1, 8, 8], classes: 4)
    let lenet5 = Architecture.lenet5.build(seed: 4, inputShape: [1, 28, 28], classes: 10)

    /// A seeded batch of `n` inputs for `model`.
    func batch(_ model: Model, _ n: Int = 3) -> Tensor {
        let shape = [n] + model.graph.inputs[0].sampleShape
        var rng = SeededGenerator(seed: 9)
        return Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float(rng.next() % 1000) / 1000 })
    }

    /// `model`'s outputs on `x` through the runtime.
    func outputs(_ model: Model, _ x: Tensor) throws -> Tensor { try Session(model: model).run(x) }

    func nodeNames(_ m: Model) -> [String] { m.graph.nodes.map(\.name) }

    // MARK: exact at full rank

    @Test func svdAtFullRankKeepsTheMLPOutputs() throws {
        let (out, record) = try lowRank(mlp, ["method": "svd", "energy": "1", "require-reduction": "none"])
        #expect(nodeNames(out).filter { $0.hasPrefix("fc") } == ["fc1.factor1", "fc1.factor2", "fc2.factor1", "fc2.factor2",
                                                                     "fc3.factor1", "fc3.factor2"])
        #expect(out.graph.initializers["fc1.weight"] == nil)
        #expect(out.graph.initializers["fc1.factor1.weight"]?.shape == [64, 64])
        #expect(out.graph.initializers["fc1.factor2.weight"]?.shape == [300, 64])
        #expect(out.graph.nodes.first { $0.name == "fc3.factor2" }?.output == mlp.graph.nodes.first { $0.name == "fc3" }?.output)
        #expect(out.graph.nodes.first { $0.name == "fc3.factor2" }?.inputs.last == "fc3.bias")
        #expect(record.metrics["factorized-layers"] == 3)
        #expect(record.metrics["params-before"] == Double(64 * 300 + 300 + 300 * 100 + 100 + 100 * 4 + 4))
        #expect(record.metrics["params-after"] == Double(64 * 64 + 300 * 64 + 300 + 100 * 100 + 100 * 300 + 100 + 4 * 100 + 4 * 4 + 4))
        let x = batch(mlp)
        #expect(relativeDifference(try outputs(mlp, x), try outputs(out, x)) < 1e-4)
    }

    @Test(arguments: ["channel", "spatial", "tucker2", "separable"])
    func convMethodAtFullRankKeepsTheOutputsThroughBatchNorm(method: String) throws {
        let (out, record) = try lowRank(vgg, ["method": method, "energy": "1", "require-reduction": "none"])
        #expect(record.metrics["factorized-layers"] == 6)
        #expect(out.graph.nodes.contains { $0.name == "conv4" } == false)
        // BatchNorm still reads the value the conv wrote, now written by the last factor.
        let bn4 = try #require(out.graph.nodes.first { $0.name == "bn4" })
        let last = try #require(out.graph.producer(of: bn4.inputs[0]))
        #expect(last.name == (method == "tucker2" ? "conv4.factor3" : "conv4.factor2"))
        _ = try out.graph.inferShapes(batch: 2)
        let x = batch(vgg)
        #expect(relativeDifference(try outputs(vgg, x), try outputs(out, x)) < 1e-4, "\(method)")
    }

    @Test func svdOnLeNet5FullyConnectedLayers() throws {
        let (out, record) = try lowRank(lenet5, ["method": "svd", "layers": "fc*", "layer-rank": "fc1=16,fc2=10"])
        // fc1 800 -> 500 at rank 16; fc2 500 -> 10 at its full rank 10 would not be smaller.
        #expect(out.graph.initializers["fc1.factor1.weight"]?.shape == [16, 800])
        #expect(out.graph.initializers["fc1.factor2.weight"]?.shape == [500, 16])
        #expect(out.graph.initializers["fc2.weight"]?.shape == [10, 500])
        #expect(record.changes[0] == "fc1: svd rank 16, 400000 -> 20800 weights (19.23x), MACs 400000 -> 20800, relative error "
                + String(format: "%.4f", record.metrics["max-relative-error"]!), "\(record.changes)")
        #expect(record.changes[1].hasPrefix("fc2: skipped: svd at rank 10 would not reduce weights and MACs (weights 5000 -> 5100, MACs 5000 -> 5100)"), "\(record.changes)")
        #expect(record.metrics["macs-before"]! - record.metrics["macs-after"]! == Double(400_000 - 20_800))
        #expect(out.graph.nodes.contains { $0.name == "conv1" })
    }

    // MARK: ranks and errors

    @Test func errorDoesNotIncreaseWithRank() throws {
        var errors: [Float] = []
        for rank in [1, 4, 16, 40, 64] {
            let (out, record) = try lowRank(mlp, ["method": "svd", "layers": "fc1", "rank": String(rank), "require-reduction": "none"])
            errors.append(Float(try #require(record.metrics["max-relative-error"])))
            #expect(out.graph.initializers["fc1.factor1.weight"]?.shape == [rank, 64])
        }
        #expect(isNonIncreasing(errors), "\(errors)")
        #expect(errors[0] > 0.5 && errors[4] < 1e-5, "\(errors)")
    }

    @Test func energyPicksTheRankAndRoundToRoundsItUp() throws {
        let w = mlp.graph.initializers["fc2.weight"]!
        let svd = try SingularValueDecomposition(w.floats, rows: 100, columns: 300)
        let expected = try svd.rank(keepingEnergy: 0.5)
        let (out, _) = try lowRank(mlp, ["method": "svd", "layers": "fc2", "energy": "0.5"])
        #expect(out.graph.initializers["fc2.factor1.weight"]?.shape == [expected, 300])
        let (rounded, _) = try lowRank(mlp, ["method": "svd", "layers": "fc2", "energy": "0.5", "round-to": "8"])
        #expect(rounded.graph.initializers["fc2.factor1.weight"]?.shape == [(expected + 7) / 8 * 8, 300])
        // Rounding never passes the full rank.
        let (capped, _) = try lowRank(mlp, ["method": "svd", "layers": "fc1", "rank": "60", "round-to": "16",
                                            "require-reduction": "none"])
        #expect(capped.graph.initializers["fc1.factor1.weight"]?.shape == [64, 64])
    }

    @Test func layerRankFirstMatchWins() throws {
        let (out, _) = try lowRank(mlp, ["method": "svd", "layer-rank": "fc1=8,fc*=20", "exclude": "fc3"])
        #expect(out.graph.initializers["fc1.factor1.weight"]?.shape == [8, 64])
        #expect(out.graph.initializers["fc2.factor1.weight"]?.shape == [20, 300])
        #expect(out.graph.initializers["fc3.weight"] != nil)
        // Only layer-rank: a layer no entry matches is left as it is, and the record says so.
        let (only, record) = try lowRank(mlp, ["method": "svd", "layer-rank": "fc1=8"])
        #expect(only.graph.initializers["fc1.factor1.weight"]?.shape == [8, 64])
        #expect(only.graph.initializers["fc2.weight"] != nil)
        #expect(record.changes.dropFirst() == [
            "fc2: skipped: no layer-rank entry matches it, and neither rank nor energy is given",
            "fc3: skipped: no layer-rank entry matches it, and neither rank nor energy is given",
        ])
    }

    @Test func cpWritesDepthwiseFactorsThatRunAndTrainShapes() throws {
        let (out, record) = try lowRank(vgg, ["method": "cp", "layers": "conv4", "rank": "8"])
        let names = nodeNames(out).filter { $0.hasPrefix("conv4") }
        #expect(names == ["conv4.factor1", "conv4.factor2", "conv4.factor3", "conv4.factor4"])
        let depthwise = try #require(out.graph.nodes.first { $0.name == "conv4.factor2" })
        guard case .conv2d(let a) = depthwise.op else { Issue.record("not a conv"); return }
        #expect(a.groups == 8)
        #expect(out.graph.initializers["conv4.factor2.weight"]?.shape == [8, 1, 3, 1])
        let error = try #require(record.metrics["max-relative-error"])
        #expect(error > 0 && error < 1)
        let x = batch(vgg)
        #expect(try outputs(out, x).shape == [3, 4])
        #expect(try outputs(out, x).floats.allSatisfy(\.isFinite))
    }

    /// Separable at multipliers 1 and 2: the depthwise factor (groups = C, C·m
    /// outputs) runs in the runtime as in the reference evaluator, and the record
    /// line counts its weights and MACs.
    @Test(arguments: [1, 2])
    func separableWritesADepthwiseAndAPointwiseFactor(multiplier m: Int) throws {
        let (out, record) = try lowRank(vgg, ["method": "separable", "layers": "conv4,conv6", "rank": String(m)])
        #expect(nodeNames(out).filter { $0.hasPrefix("conv4") } == ["conv4.factor1", "conv4.factor2"])
        let depthwise = try #require(out.graph.nodes.first { $0.name == "conv6.factor1" })
        guard case .conv2d(let a) = depthwise.op else { Issue.record("not a conv"); return }
        #expect(a.groups == 128 && a.padding == .same(1))
        #expect(out.graph.initializers["conv6.factor1.weight"]?.shape == [128 * m, 1, 3, 3])
        #expect(out.graph.initializers["conv6.factor2.weight"]?.shape == [128, 128 * m, 1, 1])
        let shapes = try out.graph.inferShapes(batch: 1)
        let conv6 = try #require(vgg.graph.nodes.first { $0.name == "conv6" })
        let side = try #require(shapes[conv6.output]?.last)
        let weights = 128 * m * 9 + 128 * 128 * m
        let macs = (128 * m * 9 + 128 * 128 * m) * side * side
        let error = try #require(record.metrics["max-relative-error"])
        #expect(record.changes[1].hasPrefix("conv6: separable rank \(m), 147456 -> \(weights) weights"), "\(record.changes)")
        #expect(record.changes[1].contains("MACs \(147456 * side * side) -> \(macs)"), "\(record.changes)")
        #expect(error > 0.1 && error < 1)
        let x = batch(vgg)
        // Session.run(_:) normalizes raw pixels; run(inputs:) takes the graph input as the reference evaluator does.
        let input = out.graph.inputs[0].name, output = out.graph.outputs[0]
        let reference = try ReferenceEvaluator.run(out.graph, inputs: [input: x])[output]!
        let runtime = try #require(try Session(model: out).run(inputs: [input: x])[output])
        #expect(maxAbsDifference(reference, runtime) < 1e-4)
    }

    /// ResNet-20's 1x1 shortcut convolutions have nothing to separate: listed
    /// as skipped by default, an error when named; the strided 3x3 convs
    /// (stride 2, pad 1) keep the layer's outputs at full multiplier.
    @Test func separableSkipsOneByOneConvolutionsAndKeepsStridedOnes() throws {
        let resnet = Architecture.resnet20.build(seed: 5, inputShape: [1, 8, 8], classes: 4)
        let (out, record) = try lowRank(resnet, ["method": "separable", "rank": "9", "require-reduction": "none"])
        #expect(record.changes.prefix(2) == ["layer2.0.shortcut.conv: skipped: 1x1 convolution; separable needs a larger kernel",
                                             "layer3.0.shortcut.conv: skipped: 1x1 convolution; separable needs a larger kernel"])
        #expect(record.metrics["factorized-layers"] == 19)
        #expect(out.graph.initializers["layer2.0.shortcut.conv.weight"] != nil)
        let x = batch(resnet)
        #expect(relativeDifference(try outputs(resnet, x), try outputs(out, x)) < 1e-4)
        let message = parameterErrorMessage { _ = try lowRank(resnet, ["method": "separable", "rank": "1", "layers": "layer2.0.*"]) }
        #expect(message == "lowrank: 'layer2.0.shortcut.conv' is a 1x1 convolution; separable needs a kernel larger than 1x1")
    }

    // MARK: rank selection

    @Test func vbmfPicksTheRanksAndLayerRankOverrides() throws {
        let (out, record) = try lowRank(vgg, ["method": "tucker2", "rank-selection": "vbmf", "layers": "conv3,conv4,conv5",
                                              "layer-rank": "conv5=8x16", "require-reduction": "none"])
        for name in ["conv3", "conv4"] {
            let w = vgg.graph.initializers[name + ".weight"]!
            let ranks = try vbmfTucker2Ranks(w.floats, shape: w.shape)
            #expect(out.graph.initializers[name + ".factor2.weight"]?.shape == [ranks.output, ranks.input, 3, 3], "\(name)")
            #expect(record.changes.contains { $0.hasPrefix("\(name): tucker2 rank \(ranks.input)x\(ranks.output), ") }, "\(record.changes)")
        }
        #expect(out.graph.initializers["conv5.factor1.weight"]?.shape == [8, 64, 1, 1])
        #expect(out.graph.initializers["conv5.factor2.weight"]?.shape == [16, 8, 3, 3])
        #expect(out.graph.initializers["conv5.factor3.weight"]?.shape == [128, 16, 1, 1])
        #expect(record.changes[2].hasPrefix("conv5: tucker2 rank 8x16, "), "\(record.changes)")
        // svd: the VBMF rank of each weight matrix, then round-to.
        let (mlpOut, _) = try lowRank(mlp, ["method": "svd", "rank-selection": "vbmf", "round-to": "4", "require-reduction": "none"])
        for name in ["fc1", "fc2", "fc3"] {
            let w = mlp.graph.initializers[name + ".weight"]!
            let r = max(1, try vbmfRank(w.floats, rows: w.shape[0], columns: w.shape[1]).rank)
            let rounded = min((r + 3) / 4 * 4, min(w.shape[0], w.shape[1]))
            #expect(mlpOut.graph.initializers[name + ".factor1.weight"]?.shape == [rounded, w.shape[1]], "\(name)")
        }
    }

    @Test func perModeTucker2RanksAreRoundedAndChecked() throws {
        let (out, _) = try lowRank(vgg, ["method": "tucker2", "layer-rank": "conv4=3x5,conv6=20x7", "round-to": "4",
                                         "require-reduction": "none"])
        #expect(out.graph.initializers["conv4.factor2.weight"]?.shape == [8, 4, 3, 3])
        #expect(out.graph.initializers["conv6.factor2.weight"]?.shape == [8, 20, 3, 3])
        #expect(out.graph.initializers["conv5.weight"] != nil)
        // conv1 reads one channel: its input mode's full rank is 1.
        let message = parameterErrorMessage { _ = try lowRank(vgg, ["method": "tucker2", "layer-rank": "conv1=2x4"]) }
        #expect(message == "lowrank: layer 'conv1': rank 2 is out of range: it must be between 1 and the full rank 1")
    }

    // MARK: skipped layers

    @Test func sparseSharedAndUnprofitableLayersAreSkipped() throws {
        var model = mlp
        let w = model.graph.initializers["fc1.weight"]!
        model.graph.initializers["fc1.weight"] = Tensor(shape: w.shape, floats: w.floats.enumerated().map { $0 % 2 == 0 ? 0 : $1 })
        model.metadata.storage.sharedTensors = ["fc2.weight"]
        let (out, record) = try lowRank(model, ["method": "svd", "rank": "4"])
        #expect(record.changes == [
            "fc1: skipped: its weight is sparse (50.0% zeros); factorizing would make it dense",
            "fc2: skipped: its weight is shared (k-means codebook); factorizing would undo that",
            "fc3: skipped: svd at rank 4 would not reduce weights and MACs (weights 400 -> 416, MACs 400 -> 416)",
        ])
        #expect(out.graph == model.graph)
        #expect(record.metrics["skipped-layers"] == 3)
    }

    // MARK: files and export

    @Test func factorizedModelRoundTripsThroughTheFileAndONNX() throws {
        let (out, _) = try lowRank(vgg, ["method": "tucker2", "rank": "8", "layers": "conv3,conv4,conv5,conv6"])
        let decoded = try ModelFile.decode(try ModelFile.encode(out))
        #expect(decoded.graph == out.graph)
        #expect(decoded.metadata.history.last?.pass == "lowrank")
        let x = batch(vgg)
        let imported = try ONNXImporter.decode(try ONNXExporter.encode(out))
        #expect(maxAbsDifference(try outputs(out, x), try outputs(imported, x)) < 1e-5)
        let (spatial, _) = try lowRank(vgg, ["method": "spatial", "rank": "4", "layers": "conv2"])
        let importedSpatial = try ONNXImporter.decode(try ONNXExporter.encode(spatial))
        #expect(maxAbsDifference(try outputs(spatial, x), try outputs(importedSpatial, x)) < 1e-5)
    }

    // MARK: bad parameters

    @Test func badParametersGetOneClearError() throws {
        let cases: [([String: String], Model, String)] = [
            (["rank": "0"], mlp, "lowrank: rank must be >= 1, got 0"),
            (["energy": "0"], mlp, "lowrank: energy must be in (0, 1], got 0.0"),
            (["energy": "1.5"], mlp, "lowrank: energy must be in (0, 1], got 1.5"),
            (["rank": "4", "energy": "0.9"], mlp, "lowrank: give rank or energy, not both"),
            ([:], mlp, "lowrank: give rank, energy, target-macs, target-latency or layer-rank"),
            (["rank": "5", "layers": "fc3"], mlp,
             "lowrank: layer 'fc3': rank 5 is out of range: it must be between 1 and the full rank 4"),
            (["rank": "4", "layers": "fc9"], mlp,
             "lowrank: layer pattern 'fc9' matches no conv or linear layer (layers: fc1, fc2, fc3)"),
            (["rank": "4", "layers": "conv1"], lenet5, "lowrank: svd applies to linear layers; 'conv1' is a Conv2d"),
            (["rank": "4", "method": "channel", "layers": "fc1"], mlp,
             "lowrank: channel applies to convolutions; 'fc1' is a Linear"),
            (["rank": "4", "method": "channel"], mlp,
             "lowrank: no selected layer is one channel applies to (convolutions); selected: fc1, fc2, fc3"),
            (["layer-rank": "fc7=3"], mlp,
             "lowrank: layer-rank pattern 'fc7' matches no selected layer (selected: fc1, fc2, fc3)"),
            (["energy": "0.9", "method": "cp"], vgg,
             "lowrank: cp has no singular values to keep a fraction of: give rank or layer-rank, not energy"),
            (["rank": "10", "method": "separable", "layers": "conv2"], vgg,
             "lowrank: layer 'conv2': rank 10 is out of range: it must be between 1 and the full rank 9"),
            (["rank-selection": "vbmf", "rank": "4"], mlp,
             "lowrank: rank-selection vbmf chooses the ranks: give layer-rank to override it for some layers, not rank, energy or a target"),
            (["rank-selection": "vbmf", "method": "cp"], vgg,
             "lowrank: rank-selection vbmf needs singular values, and cp has none: give rank or layer-rank"),
            (["layer-rank": "fc1=8x4"], mlp,
             "lowrank: layer-rank entry 'fc1=8x4': INPUTxOUTPUT ranks are for tucker2 only; svd takes one rank"),
            (["layer-rank": "conv3=8x", "method": "tucker2"], vgg,
             "lowrank: layer-rank entry 'conv3=8x' must be PATTERN=RANK with the rank >= 1 (tucker2 also INPUTxOUTPUT, e.g. 16x24)"),
        ]
        for (raw, model, expected) in cases {
            let message = parameterErrorMessage { _ = try lowRank(model, raw) }
            #expect(message == expected, "\(raw)")
        }
    }
}
