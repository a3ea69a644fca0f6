import Foundation
import Testing
import Compress
@testable import Prune

func hashPass(_ raw: [String: String]) throws -> (HashPass, PassParameters) {
    let p = try PassParameters(validating: raw, against: HashPass.parameters, pass: HashPass.name)
    return (try HashPass(parameters: p), p)
}

@Suite struct HashPassTests {
    /// LeNet-300 on 1x8x8 images: fc1 64x300, fc2 300x100, fc3 100x4.
    let model = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)

    func values(_ m: Model, _ name: String) -> [Float] { m.graph.initializers[name]!.floats }

    @Test func everyLinearLayerIsDrawnFromItsBucketsAtTheCompression() throws {
        let (pass, parameters) = try hashPass(["compression": "8"])
        let (out, record) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        for (name, weights) in [("fc1.weight", 19_200), ("fc2.weight", 30_000), ("fc3.weight", 400)] {
            let hashed = try #require(out.metadata.storage.hashedTensors[name])
            #expect(hashed.buckets == (weights + 7) / 8, "\(name)")
            let layout = hashed.layout(count: weights)
            let after = values(out, name), before = values(model, name)
            let buckets = try #require(after.withUnsafeBufferPointer { layout.exactBuckets(of: $0) })
            // The least-squares projection: each bucket the mean of its signed members (in Double here).
            for k in [0, 1, hashed.buckets / 2, hashed.buckets - 1] {
                let members = (0..<weights).filter { layout.bucket($0) == k }
                guard !members.isEmpty else { continue }
                let mean = members.reduce(0.0) { $0 + (layout.isNegated($1) ? -1 : 1) * Double(before[$1]) } / Double(members.count)
                #expect(abs(Double(Float(bitPattern: buckets[k])) - mean) <= 1e-6, "\(name) bucket \(k)")
            }
        }
        // Biases stay dense and untouched.
        #expect(values(out, "fc1.bias") == values(model, "fc1.bias"))
        #expect(out.metadata.storage.hashedTensors.count == 3)
        #expect(record.metrics["buckets"] == Double(2_400 + 3_750 + 50))
        #expect(record.metrics["virtual-weights"] == Double(19_200 + 30_000 + 400))
        #expect(record.changes.first?.hasPrefix("fc1: 19200 virtual weights from 2400 buckets (8.00x, ") == true)
        // Seeds differ per layer and follow the run's seed.
        let seeds = Set(out.metadata.storage.hashedTensors.values.map(\.seed))
        #expect(seeds.count == 3)
        let (again, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        #expect(try ModelFile.encode(again) == ModelFile.encode(out))
        let (other, _) = try pass.run(on: model, context: PassContext(seed: 2), parameters: parameters)
        #expect(other.metadata.storage.hashedTensors != out.metadata.storage.hashedTensors)
        // The file stores buckets: about an eighth of the dense weights.
        #expect(Double(try ModelFile.encode(out).count) < Double(try ModelFile.encode(model).count) / 7)
    }

    @Test func sampledBucketsKeepTheWeightsDistribution() throws {
        let (pass, parameters) = try hashPass(["compression": "4", "layers": "fc2", "init": "sample"])
        let (out, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        #expect(out.metadata.storage.hashedTensors.keys.sorted() == ["fc2.weight"])
        let before = Set(values(model, "fc2.weight").map { abs($0) })
        #expect(values(out, "fc2.weight").allSatisfy { before.contains(abs($0)) })
        #expect(values(out, "fc1.weight") == values(model, "fc1.weight"))
    }

    @Test func tiedFineTuningKeepsTheLayersHashed() throws {
        let (pass, parameters) = try hashPass(["compression": "8", "finetune-epochs": "1"])
        let (out, record) = try pass.run(on: model, context: pruneContext(), parameters: parameters)
        #expect(record.changes.last?.hasPrefix("fine-tuned 1 epoch(s), buckets tied: validation ") == true)
        for (name, hashed) in out.metadata.storage.hashedTensors {
            let w = out.graph.initializers[name]!
            #expect(w.floats.withUnsafeBufferPointer { hashed.layout(count: w.count).exactBuckets(of: $0) } != nil, "\(name)")
        }
        #expect(out.metadata.history.map(\.pass).suffix(2) == ["finetune", "hash"])
    }

    @Test func pruneAndShareRefuseHashedLayers() throws {
        let (pass, parameters) = try hashPass(["layers": "fc2"])
        let (hashed, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        let (prune, p1) = try prunePass(["sparsity": "0.5"])
        #expect(throws: ParameterError(pass: "prune", problems: [
            "layer 'fc2' is hashed (HashedNets, tensor 'fc2.weight'): prune would break its hashing; exclude it (--exclude fc2)",
        ])) { try prune.run(on: hashed, context: PassContext(), parameters: p1) }
        let (share, p2) = try sharePass(["fc-bits": "4"])
        #expect(throws: ParameterError(pass: "share", problems: [
            "layer 'fc2' is hashed (HashedNets, tensor 'fc2.weight'): share would break its hashing; exclude it (--exclude fc2)",
        ])) { try share.run(on: hashed, context: PassContext(), parameters: p2) }
        // Leaving the hashed layer out works, and keeps it hashed.
        let (prune2, p3) = try prunePass(["sparsity": "0.5", "exclude": "fc2"])
        let (pruned, _) = try prune2.run(on: hashed, context: PassContext(), parameters: p3)
        #expect(pruned.metadata.storage.hashedTensors == hashed.metadata.storage.hashedTensors)
        let (share2, p4) = try sharePass(["fc-bits": "4", "exclude": "fc2"])
        let (shared, _) = try share2.run(on: hashed, context: PassContext(), parameters: p4)
        #expect(shared.metadata.storage.hashedTensors == hashed.metadata.storage.hashedTensors)
        #expect(shared.metadata.storage.sharedTensors == ["fc1.weight", "fc3.weight"])
        // Hashing a shared layer is refused too.
        let (rehash, p5) = try hashPass([:])
        #expect(throws: ParameterError.self) { try rehash.run(on: shared, context: PassContext(), parameters: p5) }
    }

    @Test func badInputsAreRefusedWithOneError() throws {
        func problems(_ raw: [String: String], on m: Model? = nil) -> [String] {
            do {
                let (pass, parameters) = try hashPass(raw)
                _ = try pass.run(on: m ?? model, context: PassContext(), parameters: parameters)
                return []
            } catch let e as ParameterError {
                #expect(e.pass == "hash")
                return e.problems
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems(["compression": "1"]) == ["compression must be greater than 1, got 1.0"])
        #expect(problems(["compression": "0.5"]) == ["compression must be greater than 1, got 0.5"])
        #expect(problems(["layers": "nope"]).first?.contains("layer pattern 'nope' matches no conv or linear layer") == true)
        #expect(problems(["exclude": "fc*"]) == ["no conv or linear layer is selected"])
        #expect(problems(["finetune-epochs": "1", "finetune-keep-codebooks": "false"]).first?.contains("would undo the hashing") == true)
        #expect(problems(["finetune-epochs": "1"]) == ["fine-tuning needs a trainer, which this run does not provide"])
        // A model with convolutions only has no linear weight to hash unless convs are asked for.
        let convOnly = Model(graph: Graph(
            inputs: [GraphInput(name: "x", sampleShape: [1, 6, 6])], outputs: ["y"],
            nodes: [Node(name: "conv1", op: .conv2d(Conv2d()), inputs: ["x", "w"], output: "c"),
                    Node(name: "gap", op: .globalAvgPool, inputs: ["c"], output: "y")],
            initializers: ["w": Tensor(shape: [4, 1, 3, 3], floats: (0..<36).map { Float($0) / 36 - 0.5 })]))
        #expect(problems([:], on: convOnly)
            == ["no linear layer weight is selected (selected: conv1); pass convs true to hash conv layers"])
        #expect(problems(["convs": "true", "compression": "4"], on: convOnly) == [])
    }

    @Test func bucketCountRule() {
        #expect(HashPass.bucketCount(weights: 19_200, compression: 8) == 2_400)
        #expect(HashPass.bucketCount(weights: 1_000, compression: 8) == 125)
        #expect(HashPass.bucketCount(weights: 1_001, compression: 8) == 126)
        #expect(HashPass.bucketCount(weights: 3, compression: 64) == 1)
        #expect(PruneLibrary.passes.contains { $0.name == "hash" })
    }
}

/// fold-bn after sharing or hashing: folding scales a weight's rows, so the
/// tensors it changed leave the model's shared and hashed lists (and are
/// stored like any other tensor); the others keep theirs.
@Suite struct FoldAfterSharingTests {
    /// vgg-small on 1x8x8 images: every conv followed by a BatchNorm, then the fc.
    let model = Architecture.vggSmall.build(seed: 3, inputShape: [1, 8, 8], classes: 4)

    func fold(_ m: Model) throws -> (Model, [String]) {
        let p = try PassParameters(validating: [:], against: FoldBatchNormPass.parameters, pass: FoldBatchNormPass.name)
        let (out, record) = try FoldBatchNormPass(parameters: p).run(on: m, context: PassContext(seed: 1), parameters: p)
        return (out, record.changes)
    }

    @Test func foldingReleasesTheHashedConvsItScales() throws {
        let (pass, parameters) = try hashPass(["compression": "4", "convs": "true"])
        let (hashed, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        #expect(hashed.metadata.storage.hashedTensors.keys.contains("conv2.weight"))
        #expect(hashed.metadata.storage.hashedTensors.keys.contains("fc.weight"))
        let (folded, changes) = try fold(hashed)
        let left = folded.metadata.storage.hashedTensors
        #expect(left.keys.sorted() == ["fc.weight"], "only the fc, which no BatchNorm follows, stays hashed")
        #expect(changes.contains("released the hashing of conv2.weight: folding scaled its rows"))
        // It writes and reads back: the released convs as ordinary tensors, the fc still hashed.
        let back = try ModelFile.decode(ModelFile.encode(folded))
        #expect(back == folded)
        #expect(ModelFile.encodedTensorSizes(folded)["conv2.weight"]?.encoding.hasPrefix("hashed") == false)
        #expect(ModelFile.encodedTensorSizes(folded)["fc.weight"]?.encoding.hasPrefix("hashed") == true)
    }

    @Test func foldingReleasesTheSharedConvsItScales() throws {
        let p = try PassParameters(validating: ["conv-bits": "3", "fc-bits": "3"], against: SharePass.parameters,
                                   pass: SharePass.name)
        let (shared, _) = try SharePass(parameters: p).run(on: model, context: PassContext(seed: 1), parameters: p)
        #expect(shared.metadata.storage.sharedTensors.contains("conv1.weight"))
        let (folded, changes) = try fold(shared)
        #expect(folded.metadata.storage.sharedTensors == ["fc.weight"])
        #expect(changes.contains("released the weight sharing of conv1.weight: folding scaled its rows"))
        #expect(try ModelFile.decode(ModelFile.encode(folded)) == folded)
    }

    @Test func foldingReleasesTheQuantizedConvsItScales() throws {
        // int8 weights with BatchNorm kept: folding moves the convs off their grids, the fc stays int8.
        let (pass, parameters) = try quantizePass(["format": "int8", "fold-bn": "false", "activations": "none"])
        let (quantized, _) = try pass.run(on: model, context: PassContext(seed: 1), parameters: parameters)
        #expect(quantized.metadata.storage.precisions.keys.contains("conv1.weight"))
        let (folded, changes) = try fold(quantized)
        #expect(folded.metadata.storage.precisions.keys.sorted() == ["fc.weight"])
        #expect(changes.contains("released the int8/per-channel precision of conv1.weight: folding scaled its rows "
                                 + "(quantize again to store it narrow)"))
        #expect(try ModelFile.decode(ModelFile.encode(folded)) == folded)
    }
}
