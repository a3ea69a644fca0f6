import Foundation
import Testing
import Compress
@testable import Prune

/// Images whose class is which quadrant of a 1x8x8 image is bright.
func quadrantImages(_ n: Int, seed: UInt64) -> LabeledImages {
    var rng = SeededGenerator(seed: seed)
    var pixels = [Float](repeating: 0, count: n * 64)
    var labels: [Int32] = []
    for i in 0..<n {
        let q = Int(rng.next() % 4)
        labels.append(Int32(q))
        for p in 0..<64 {
            let inside = (p / 32) * 2 + (p % 8) / 4 == q
            pixels[i * 64 + p] = (inside ? 0.7 : 0.1) + 0.2 * rng.nextUniform()
        }
    }
    return LabeledImages(images: Tensor(shape: [n, 1, 8, 8], floats: pixels), labels: labels)
}

func quadrantSplits() -> DatasetSplits {
    DatasetSplits(train: quadrantImages(256, seed: 1), validation: quadrantImages(64, seed: 2),
                  test: quadrantImages(64, seed: 3), classNames: ["0", "1", "2", "3"])
}

func pruneContext(seed: UInt64 = 1) -> PassContext {
    var s = TrainingSettings.fineTuneDefaults
    s.batchSize = 32
    s.learningRate = 0.05
    let splits = quadrantSplits()
    return PassContext(seed: seed, data: DataProvider { splits }, trainer: FineTuner(settings: s))
}

func prunePass(_ raw: [String: String]) throws -> (PrunePass, PassParameters) {
    let p = try PassParameters(validating: raw, against: PrunePass.parameters, pass: PrunePass.name)
    return (try PrunePass(parameters: p), p)
}

@Suite struct PrunePassTests {
    let model = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)

    func zeros(_ m: Model, _ name: String) -> Set<Int> {
        Set(m.graph.initializers[name]!.floats.enumerated().filter { $0.element == 0 }.map(\.offset))
    }

    @Test func iterativePruningWithFineTuningKeepsMasksExactAndReachesTheTarget() throws {
        let (pass, parameters) = try prunePass(["sparsity": "0.9", "schedule": "iterative", "steps": "3",
                                                "finetune-epochs": "1", "exclude": "fc3"])
        let (out, record) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        for name in ["fc1.weight", "fc2.weight"] {
            let w = out.graph.initializers[name]!
            #expect(zeros(out, name).count == Int((0.9 * Double(w.count)).rounded()), "\(name)")
        }
        #expect(zeros(out, "fc3.weight").isEmpty)
        // Three prune steps, each followed by one fine-tuning epoch recorded in the history.
        #expect(out.metadata.history.filter { $0.pass == "finetune" }.count == 3)
        #expect(out.metadata.history.last?.pass == "prune")
        #expect(record.changes.filter { $0.hasPrefix("step ") }.count == 3)
        let acc = try #require(record.metrics["validation-accuracy"])
        #expect(acc > 0.8)
        // Fine-tuning changed the model: the same prune steps (same seed) without it give other weights.
        let (untuned, p0) = try prunePass(["sparsity": "0.9", "schedule": "iterative", "steps": "3",
                                           "finetune-epochs": "0", "exclude": "fc3"])
        let (pruned, _) = try untuned.run(on: model, context: pruneContext(), parameters: p0)
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            #expect(out.graph.initializers[name]!.floats != pruned.graph.initializers[name]!.floats, "\(name)")
        }
    }

    @Test func masksSurviveFineTuningExactly() throws {
        // One-shot prune, then fine-tune: the zero set after fine-tuning is the zero set after pruning,
        // and the kept weights moved.
        let (oneShot, p1) = try prunePass(["sparsity": "0.7"])
        let (pruned, _) = try oneShot.run(on: model, context: pruneContext(), parameters: p1)
        let (tuned, p2) = try prunePass(["sparsity": "0.7", "finetune-epochs": "2"])
        let (out, _) = try tuned.run(on: model, context: pruneContext(), parameters: p2)
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            #expect(zeros(out, name) == zeros(pruned, name), "\(name)")
            #expect(out.graph.initializers[name]!.floats != pruned.graph.initializers[name]!.floats, "\(name)")
        }
    }

    @Test func agpAndGlobalScopeReachTheOverallTarget() throws {
        let (pass, parameters) = try prunePass(["sparsity": "0.8", "schedule": "agp", "steps": "2",
                                                "finetune-epochs": "1", "scope": "global"])
        let (out, record) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        let layers = try LayerSelection().layers(in: out.graph, pass: "prune")
        #expect(abs(weightSparsity(out.graph, layers: layers) - 0.8) < 1e-3)
        #expect(record.metrics["selected-sparsity"] == weightSparsity(out.graph, layers: layers))
        #expect(abs(record.metrics["nonzero-reduction"]! - 5) < 0.05)
    }

    @Test func layerSparsityPatternsAndSameBytesForTheSameSeed() throws {
        let raw = ["layer-sparsity": "fc1=0.5,fc*=0.25", "finetune-epochs": "1"]
        let (pass, parameters) = try prunePass(raw)
        let (a, _) = try pass.run(on: model, context: pruneContext(seed: 7), parameters: parameters)
        let (b, _) = try pass.run(on: model, context: pruneContext(seed: 7), parameters: parameters)
        #expect(try ModelFile.encode(a) == ModelFile.encode(b))
        #expect(zeros(a, "fc1.weight").count == 300 * 64 / 2)
        #expect(zeros(a, "fc2.weight").count == 100 * 300 / 4)
        #expect(zeros(a, "fc3.weight").count == 4 * 100 / 4)
    }

    @Test func sensitivityFileDrivesPerLayerSparsities() throws {
        let splits = quadrantSplits()
        let layers = try LayerSelection().layers(in: model.graph, pass: "sensitivity")
        let report = try SensitivityAnalysis.run(model: model, modelName: "m", layers: layers, sparsities: [0, 0.5, 0.9],
                                                 images: splits.validation, description: "validation", threads: 1)
        #expect(report.layers.map(\.layer) == ["fc1", "fc2", "fc3"])
        #expect(report.layers.allSatisfy { $0.top1[0] == report.baselineTop1 })
        // Each point is the accuracy of the model with only that layer pruned.
        let (fc2Half, _) = try magnitudePruned(model.graph, layers: [layers[1]], target: .perLayer(["fc2": 0.5]))
        var m = model
        m.graph = fc2Half
        #expect(report.layers[1].top1[1] == (try Evaluation.accuracy(of: m, on: splits.validation).top1))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("s-\(UUID().uuidString).json").path
        try report.json().write(toFile: path, atomically: true, encoding: .utf8)
        let (pass, parameters) = try prunePass(["sensitivity": path, "max-accuracy-drop": "2"])
        let (out, _) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        for (layer, s) in report.sparsities(maxDrop: 0.02) {
            let w = out.graph.initializers[layer + ".weight"]!
            #expect(zeros(out, layer + ".weight").count == Int((s * Double(w.count)).rounded()), "\(layer)")
        }
    }

    @Test func parameterProblemsAreReportedTogether() {
        func problems(_ raw: [String: String]) -> [String] {
            do { _ = try prunePass(raw); return [] } catch let e as ParameterError { return e.problems } catch { return ["\(error)"] }
        }
        #expect(problems([:]).first?.contains("say how much to prune") == true)
        #expect(problems(["sparsity": "0.5", "threshold-std": "1"]).first?.contains("give one amount") == true)
        #expect(problems(["sparsity": "1.5"]) == ["sparsity must be in [0, 1), got 1.5"])
        #expect(problems(["target-macs": "0.5"]).first?.contains("needs channel granularity") == true)
        #expect(problems(["threshold-std": "1", "schedule": "agp"]).first?.contains("agp ramps a sparsity") == true)
        #expect(problems(["sparsity": "0.5", "steps": "3"]).first?.contains("one-shot schedule has 1 step") == true)
        #expect(problems(["sparsity": "0.5", "criterion": "l1"]).count == 1)
        #expect(problems(["sparsity": "0.5", "round-to": "8"]) == ["round-to applies to channel granularity only"])
        #expect(problems(["layer-sparsity": "fc1=2"]).count == 1)
    }

    @Test func fineTuningWithoutATrainerIsRefused() throws {
        let (pass, parameters) = try prunePass(["sparsity": "0.5", "finetune-epochs": "1"])
        #expect(throws: ParameterError.self) { try pass.run(on: model, context: PassContext(), parameters: parameters) }
    }
}

@Suite struct ChannelPrunePassTests {
    let model = Architecture.resnet20.build(seed: 3, inputShape: [1, 8, 8], classes: 4)

    @Test func targetMACsWithRoundingAndFineTuningGivesASmallerValidModel() throws {
        let (pass, parameters) = try prunePass(["granularity": "channel", "target-macs": "0.5", "round-to": "8",
                                                "finetune-epochs": "1", "finetune-batch": "32", "finetune-flip": "true"])
        let (out, record) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        let (before, after) = (try ModelSummary(model), try ModelSummary(out))
        #expect(Double(after.macs) <= 0.5 * Double(before.macs))
        #expect(record.metrics["macs-after"] == Double(after.macs))
        for node in out.graph.nodes {
            guard case .conv2d = node.op else { continue }
            #expect(out.graph.initializers[node.inputs[1]]!.shape[0] % 8 == 0, "\(node.name)")
        }
        #expect(out.metadata.history.map(\.pass).suffix(2) == ["finetune", "prune"])
        #expect(out.metadata.history.last(where: { $0.pass == "finetune" })?.parameters["flip"] == "true")
        #expect(record.changes.contains { $0.hasPrefix("MACs \(before.macs) -> \(after.macs)") })
        let x = SeededGenerator(seed: 1).uniformTensorCopy([2, 1, 8, 8])
        #expect(try Session(model: out).run(x).shape == [2, 4])
    }

    @Test func iterativeStepsCompoundToTheGlobalRatio() throws {
        let (pass, parameters) = try prunePass(["granularity": "channel", "criterion": "l2", "scope": "global",
                                                "sparsity": "0.5", "schedule": "iterative", "steps": "2"])
        let (out, record) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        let groups = try channelDependencyGroups(in: model.graph).filter(\.isPrunable)
        let total = groups.reduce(0) { $0 + $1.channels }
        let left = try channelDependencyGroups(in: out.graph).filter(\.isPrunable).reduce(0) { $0 + $1.channels }
        // Two steps of 1 - sqrt(0.5) each remove half of the prunable channels, up to rounding per step.
        #expect(abs(Double(left) / Double(total) - 0.5) < 0.03)
        #expect(record.changes.filter { $0.hasPrefix("step ") }.count == 2)
    }

    /// Each criterion, run through the pass on data from the context, removes the
    /// channel of `c` the fixture makes least important for it.
    @Test(arguments: [("l1", 0), ("l2", 0), ("auto", 0), ("bn-scale", 1), ("taylor", 2), ("apoz", 3)])
    func everyCriterionRemovesItsLeastImportantChannel(_ criterion: String, _ removed: Int) throws {
        let model = StructuredFixtures.criteriaModel()
        let (pass, parameters) = try prunePass(["granularity": "channel", "criterion": criterion, "layers": "c",
                                                "sparsity": "0.25"])
        let (out, record) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        // c's filters are constant per channel: the first weight of each row names the channel.
        let filters: [Float] = [0.1, 1.0, 1.1, 1.2]
        let kept = try #require(out.graph.initializers["c.weight"]).floats.enumerated()
            .filter { $0.offset % 9 == 0 }.map { filters.firstIndex(of: $0.element) }
        #expect(kept == (0..<4).filter { $0 != removed }, "\(criterion)")
        #expect(out.graph.initializers["bn.scale"]!.floats == [1, 0.05, 1, 1].enumerated().filter { $0.offset != removed }.map(\.element))
        #expect(out.graph.initializers["d.weight"]!.shape == [3, 3, 1, 1])
        #expect(record.changes.contains("c: 4x1x3x3 -> 3x1x3x3"))
        #expect(out.metadata.history.last?.parameters["criterion"] == criterion)
    }

    @Test func dataDrivenCriteriaNeedValidationImages() throws {
        for criterion in ["taylor", "apoz"] {
            let (pass, parameters) = try prunePass(["granularity": "channel", "criterion": criterion, "layers": "c",
                                                    "sparsity": "0.25"])
            #expect(throws: DataUnavailable.self) {
                try pass.run(on: StructuredFixtures.criteriaModel(), context: PassContext(), parameters: parameters)
            }
        }
    }

    @Test func channelAmountsAreChecked() {
        func problems(_ raw: [String: String]) -> [String] {
            do { _ = try prunePass(raw); return [] } catch let e as ParameterError { return e.problems } catch { return ["\(error)"] }
        }
        #expect(problems(["granularity": "channel", "threshold-std": "1"]).contains("threshold-std applies to weight granularity"))
        #expect(problems(["granularity": "channel", "target-latency": "0.5", "schedule": "iterative"]).count == 1)
        #expect(problems(["granularity": "channel", "criterion": "magnitude", "sparsity": "0.5"]).count == 1)
        #expect(problems(["sparsity": "0.5", "finetune-lr": "fast"]).count == 1)
        #expect(problems(["sparsity": "0.5", "finetune-lr": "-1"]).count == 1)
        #expect(problems(["sparsity": "0.5", "finetune-epochs": "-1"]).count == 1)
        #expect(problems(["granularity": "channel", "target-macs": "0.5", "latency-table": "t.json"])
                == ["latency-table replays the measurements of --target-latency; give it with that amount"])
    }
}

extension SeededGenerator {
    /// Uniform [0, 1) images from a copy of the generator.
    func uniformTensorCopy(_ shape: [Int]) -> Tensor {
        var g = self
        return g.uniformTensor(shape, in: 0...1)
    }
}
