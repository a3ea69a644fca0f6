import Foundation
import Testing
import Compress
@testable import Prune

func sharePass(_ raw: [String: String]) throws -> (SharePass, PassParameters) {
    let p = try PassParameters(validating: raw, against: SharePass.parameters, pass: SharePass.name)
    return (try SharePass(parameters: p), p)
}

@Suite struct SharePassTests {
    /// LeNet-300 on 1x8x8 images with 60% of fc1 pruned (fc2 and fc3 dense).
    let model: Model = {
        let m = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)
        let layers = try! LayerSelection(include: ["fc1"]).layers(in: m.graph, pass: "test")
        var pruned = m
        pruned.graph = try! magnitudePruned(m.graph, layers: layers, target: .perLayer(["fc1": 0.6])).0
        return pruned
    }()

    func values(_ m: Model, _ name: String) -> [Float] { m.graph.initializers[name]!.floats }
    func nonZeroValues(_ m: Model, _ name: String) -> Set<Float> { Set(values(m, name).filter { $0 != 0 }) }
    func zeroSet(_ m: Model, _ name: String) -> Set<Int> { Set(values(m, name).indices.filter { values(m, name)[$0] == 0 }) }

    /// Checks `after` is weight sharing of `before`: zeros are the same +0.0
    /// entries, and each distinct non-zero value is the mean of the original
    /// weights it replaced (computed here, in Double) and the nearest value to
    /// each of them (Lloyd's fixed point). Returns the number of distinct values.
    @discardableResult
    func expectSharing(_ before: [Float], _ after: [Float], _ name: String,
                       sourceLocation: SourceLocation = #_sourceLocation) -> Int {
        #expect(before.indices.filter { before[$0] == 0 } == after.indices.filter { after[$0] == 0 }, "\(name): zero set",
                sourceLocation: sourceLocation)
        #expect(after.allSatisfy { $0 != 0 || $0.sign == .plus }, "\(name): zeros are +0.0", sourceLocation: sourceLocation)
        var members: [Float: [Float]] = [:]
        for (b, a) in zip(before, after) where a != 0 { members[a, default: []].append(b) }
        for (centroid, group) in members {
            let mean = group.reduce(0.0) { $0 + Double($1) } / Double(group.count)
            #expect(abs(Double(centroid) - mean) <= 1e-6 * max(1, abs(mean)), "\(name): centroid \(centroid), mean \(mean)",
                    sourceLocation: sourceLocation)
        }
        let centroids = members.keys.sorted()
        for (b, a) in zip(before, after) where a != 0 {
            let nearest = centroids.min { abs($0 - b) < abs($1 - b) }!
            #expect(abs(nearest - b) >= abs(a - b) - 1e-6, "\(name): \(b) is nearer \(nearest) than \(a)",
                    sourceLocation: sourceLocation)
        }
        return members.count
    }

    @Test func everyLayerHasAtMostItsCodeCountOfMeans() throws {
        let (pass, parameters) = try sharePass(["fc-bits": "3", "layer-bits": "fc3=2"])
        let (out, record) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        // fc1 has zeros: 2^3 - 1 centroids; fc2 is dense: 2^3; fc3 (layer-bits) 2^2.
        for (name, count) in [("fc1.weight", 7), ("fc2.weight", 8), ("fc3.weight", 4)] {
            #expect(expectSharing(values(model, name), values(out, name), name) == count, "\(name)")
        }
        #expect(zeroSet(out, "fc1.weight").count == Int((0.6 * 300 * 64).rounded()))
        #expect(out.metadata.storage == StorageOptions(sharedTensors: ["fc1.weight", "fc2.weight", "fc3.weight"], huffman: false))
        #expect(record.changes.first?.hasPrefix("fc1: 7 clusters (3 bits), 7 distinct values, mean |w - centroid| ") == true)
        #expect(record.metrics["shared-layers"] == 3)
        #expect(record.metrics["distinct-values"] == 19)
        #expect(record.metrics["shared-weights"] == Double(300 * 64 - zeroSet(model, "fc1.weight").count + 100 * 300 + 4 * 100))
        #expect(record.metrics["index-bits"] == Double((300 * 64 + 100 * 300) * 3 + 4 * 100 * 2))
    }

    /// Zeros scattered among weights of every size (not magnitude-pruned) are
    /// not clustered: clustering them would pull a centroid towards zero.
    @Test func scatteredZerosStayZeroAndAreNotClustered() throws {
        var scattered = model
        let w = model.graph.initializers["fc2.weight"]!
        scattered.graph.initializers["fc2.weight"] = Tensor(shape: w.shape, floats: w.floats.enumerated().map { i, v in
            i % 7 == 0 ? (i % 14 == 0 ? -0.0 : 0) : v
        })
        let (pass, parameters) = try sharePass(["fc-bits": "2"])
        let (out, _) = try pass.run(on: scattered, context: PassContext(seed: 1), parameters: parameters)
        #expect(expectSharing(values(scattered, "fc2.weight"), values(out, "fc2.weight"), "fc2.weight") == 3)
        #expect(zeroSet(out, "fc2.weight").count == (w.count + 6) / 7)
    }

    @Test func convLayersTakeConvBitsAndSelectionApplies() throws {
        let conv = Architecture.resnet20.build(seed: 3, inputShape: [1, 8, 8], classes: 4)
        let (pass, parameters) = try sharePass(["conv-bits": "4", "fc-bits": "2", "exclude": "layer3*", "huffman": "true"])
        let (out, _) = try pass.run(on: conv, context: PassContext(seed: 1), parameters: parameters)
        let layers = prunableLayers(in: conv.graph)
        for layer in layers {
            let name = layer.weight
            if layer.node.hasPrefix("layer3") {
                #expect(values(out, name) == values(conv, name), "\(name) excluded")
                #expect(!out.metadata.storage.sharedTensors.contains(name))
            } else {
                let expected = layer.isConv ? 16 : 4
                #expect(expectSharing(values(conv, name), values(out, name), name) == min(expected, nonZeroValues(conv, name).count))
                #expect(out.metadata.storage.sharedTensors.contains(name))
            }
        }
        #expect(out.metadata.storage.huffman)
        #expect(out.metadata.storage.sharedTensors == out.metadata.storage.sharedTensors.sorted())
    }

    @Test func sameSeedSameBytesAndRandomInitUsesTheSeed() throws {
        let (pass, parameters) = try sharePass(["init": "random", "fc-bits": "4"])
        let (a, _) = try pass.run(on: model, context: PassContext(seed: 7), parameters: parameters)
        let (b, _) = try pass.run(on: model, context: PassContext(seed: 7), parameters: parameters)
        let (c, _) = try pass.run(on: model, context: PassContext(seed: 8), parameters: parameters)
        #expect(try ModelFile.encode(a) == ModelFile.encode(b))
        #expect(values(a, "fc2.weight") != values(c, "fc2.weight"))
        expectSharing(values(model, "fc2.weight"), values(c, "fc2.weight"), "fc2.weight")
        // The three initializations all give valid sharing, and not the same one.
        var results: [[Float]] = []
        for initialization in CentroidInitialization.allCases {
            let (p, q) = try sharePass(["init": initialization.rawValue, "fc-bits": "4"])
            let (m, _) = try p.run(on: model, context: PassContext(seed: 7), parameters: q)
            #expect(expectSharing(values(model, "fc2.weight"), values(m, "fc2.weight"), initialization.rawValue) == 16)
            results.append(values(m, "fc2.weight"))
        }
        #expect(Set(results.map { $0.map(\.bitPattern) }).count > 1)
    }

    /// `model` fine-tuned on the quadrant task (pruned weights held at zero), about 95% accurate.
    func trainedModel() throws -> Model {
        try FineTuner(settings: .fineTuneDefaults).fineTune(model, data: quadrantSplits(), epochs: 3,
                                                           overrides: ["batch": "32", "lr": "0.05"], context: PassContext(seed: 1))
    }

    @Test func tiedFineTuningKeepsTheCodebookAndMovesTheCentroids() throws {
        let trained = try trainedModel()
        let (plain, p0) = try sharePass(["fc-bits": "2"])
        let (shared, _) = try plain.run(on: trained, context: pruneContext(), parameters: p0)
        let (tuned, p1) = try sharePass(["fc-bits": "2", "finetune-epochs": "2", "finetune-lr": "0.002"])
        let (out, record) = try tuned.run(on: trained, context: pruneContext(), parameters: p1)
        #expect(out.metadata.history.map(\.pass).suffix(2) == ["finetune", "share"])
        #expect(out.metadata.storage.sharedTensors == ["fc1.weight", "fc2.weight", "fc3.weight"])
        let accuracy = try #require(record.metrics["validation-accuracy"])
        #expect(accuracy == out.metadata.history.last { $0.pass == "finetune" }?.metrics["validation-accuracy"])
        let untuned = try Evaluation.accuracy(of: shared, on: quadrantSplits().validation).top1
        #expect(accuracy >= untuned, "validation \(accuracy), \(untuned) before fine-tuning")
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            #expect(nonZeroValues(out, name).count <= nonZeroValues(shared, name).count, "\(name)")
            #expect(zeroSet(out, name) == zeroSet(shared, name), "\(name)")
            var image: [Float: Float] = [:]
            for (s, o) in zip(values(shared, name), values(out, name)) where s != 0 {
                #expect(image[s, default: o] == o, "\(name): the members of \(s) split")
                image[s] = o
            }
            #expect(values(out, name) != values(shared, name), "\(name): fine-tuning changed nothing")
        }
    }

    @Test func pruningASharedModelKeepsItsCodebook() throws {
        let (share, p0) = try sharePass(["fc-bits": "4"])
        let (shared, _) = try share.run(on: model, context: pruneContext(), parameters: p0)
        let (prune, p1) = try prunePass(["sparsity": "0.8"])
        let (pruned, _) = try prune.run(on: shared, context: pruneContext(), parameters: p1)
        let (tunedPrune, p2) = try prunePass(["sparsity": "0.8", "finetune-epochs": "1"])
        let (tuned, _) = try tunedPrune.run(on: shared, context: pruneContext(), parameters: p2)
        for m in [pruned, tuned] {
            #expect(m.metadata.storage == shared.metadata.storage)
        }
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            // Zeroing members keeps every value in the set; tied fine-tuning then moves whole clusters.
            #expect(nonZeroValues(pruned, name).isSubset(of: nonZeroValues(shared, name)), "\(name)")
            #expect(nonZeroValues(tuned, name).count <= nonZeroValues(pruned, name).count, "\(name)")
            #expect(zeroSet(tuned, name) == zeroSet(pruned, name), "\(name)")
            #expect(values(tuned, name) != values(pruned, name), "\(name)")
        }
    }

    @Test func badInputsAreRefusedWithOneError() throws {
        func problems(_ raw: [String: String], on m: Model? = nil) -> [String] {
            do {
                let (pass, parameters) = try sharePass(raw)
                _ = try pass.run(on: m ?? model, context: PassContext(), parameters: parameters)
                return []
            } catch let e as ParameterError {
                #expect(e.pass == "share")
                return e.problems
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems(["conv-bits": "0", "fc-bits": "9"]) == ["conv-bits must be in 1...8, got 0", "fc-bits must be in 1...8, got 9"])
        #expect(problems(["layer-bits": "fc1=9"]) == ["layer-bits entry 'fc1=9' must be PATTERN=BITS with the bits in 1...8"])
        #expect(problems(["layer-bits": "conv*=4"]) == ["layer-bits pattern 'conv*' matches no selected layer (selected: fc1, fc2, fc3)"])
        #expect(problems(["layer-bits": "fc3=4", "exclude": "fc3"]).first?.contains("'fc3' matches no selected layer") == true)
        #expect(problems(["layers": "nope"]).first?.contains("layer pattern 'nope' matches no conv or linear layer") == true)
        #expect(problems(["exclude": "fc*"]) == ["no conv or linear layer is selected"])
        #expect(problems(["finetune-epochs": "1", "finetune-keep-codebooks": "false"]).first?.contains("would undo the sharing") == true)
        #expect(problems(["finetune-epochs": "1"]) == ["fine-tuning needs a trainer, which this run does not provide"])
    }

    @Test func clusterCountRule() {
        #expect(sharingClusterCount(bits: 5, hasZeros: false) == 32)
        #expect(sharingClusterCount(bits: 5, hasZeros: true) == 31)
        #expect(sharingClusterCount(bits: 1, hasZeros: true) == 1)
        #expect(PruneLibrary.passes.contains { $0.name == "share" })
    }
}
