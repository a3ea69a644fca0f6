import Testing
@testable import Compress

/// Training a model whose `storage.sharedTensors` lists codebook-shared
/// weights: `keep-codebooks` ties them, `false` releases them.
@Suite struct CodebookTrainingTests {
    /// LeNet-300 with fc1 and fc2 rounded to multiples of 0.05 (a few
    /// distinct values each), every fifth fc1 weight zeroed (some -0.0),
    /// and both listed as shared.
    func sharedModel() -> Model {
        var m = TrainingRunTests().model()
        for name in ["fc1.weight", "fc2.weight"] {
            let w = m.graph.initializers[name]!
            m.graph.initializers[name] = Tensor(shape: w.shape, floats: w.floats.enumerated().map { i, v in
                name == "fc1.weight" && i % 5 == 0 ? (i % 10 == 0 ? -0.0 : 0) : (v / 0.05).rounded() * 0.05
            })
        }
        m.metadata.storage = StorageOptions(sharedTensors: ["fc2.weight", "fc1.weight"])
        return m
    }

    func trained(_ model: Model, keepCodebooks: Bool) throws -> Model {
        var s = TrainingRunTests().settings(epochs: 2)
        s.keepsCodebooks = keepCodebooks
        return try TrainingRun(model: model, data: TrainingRunTests().data(), settings: s, passName: "finetune",
                               checkpointDirectory: nil).run(resume: false).model
    }

    func nonZeroValues(_ m: Model, _ name: String) -> Set<Float> {
        Set(m.graph.initializers[name]!.floats.filter { $0 != 0 })
    }

    func zeroSet(_ m: Model, _ name: String) -> Set<Int> {
        Set(m.graph.initializers[name]!.floats.indices.filter { m.graph.initializers[name]!.floats[$0] == 0 })
    }

    @Test func codebookOfValuesListsDistinctNonZerosInOrderOfAppearance() {
        let c = Codebook(tying: [0.5, 0, -0.25, 0.5, -0.0, 1, -0.25])
        #expect(c.centroids == [0.5, -0.25, 1])
        #expect(c.assignments == [0, -1, 1, 0, -1, 2, 1])
    }

    @Test func keptCodebooksMoveCentroidsButKeepTheValueCountAndTheZeros() throws {
        let model = sharedModel()
        let out = try trained(model, keepCodebooks: true)
        #expect(out.metadata.storage.sharedTensors == ["fc1.weight", "fc2.weight"])
        #expect(out.metadata.history.last?.parameters["keep-codebooks"] == nil)
        for name in ["fc1.weight", "fc2.weight"] {
            let before = model.graph.initializers[name]!.floats, after = out.graph.initializers[name]!.floats
            #expect(nonZeroValues(out, name).count <= nonZeroValues(model, name).count, "\(name)")
            #expect(zeroSet(out, name) == zeroSet(model, name), "\(name)")
            #expect(after.allSatisfy { $0 != 0 || $0.sign == .plus }, "\(name): zeros are +0.0")
            // Tied: weights that shared a value still share one, and training moved them.
            var image: [Float: Float] = [:]
            for (b, a) in zip(before, after) where b != 0 {
                #expect(image[b, default: a] == a, "\(name): members of \(b) split")
                image[b] = a
            }
            #expect(image.contains { $0.key != $0.value }, "\(name): no centroid moved")
        }
        // An untied parameter trains freely.
        #expect(nonZeroValues(out, "fc3.weight").count > 100)
    }

    @Test func releasedCodebooksLeaveTheSharedList() throws {
        let model = sharedModel()
        let out = try trained(model, keepCodebooks: false)
        #expect(out.metadata.storage.sharedTensors.isEmpty)
        #expect(out.metadata.history.last?.parameters["keep-codebooks"] == "false")
        for name in ["fc1.weight", "fc2.weight"] {
            #expect(nonZeroValues(out, name).count > 10 * nonZeroValues(model, name).count, "\(name)")
        }
    }

    @Test func keepCodebooksIsATrainingParameter() throws {
        #expect(try TrainingSettings(validating: [:], defaults: .fineTuneDefaults).keepsCodebooks)
        #expect(try !TrainingSettings(validating: ["keep-codebooks": "false"], defaults: .fineTuneDefaults).keepsCodebooks)
        #expect(FineTuneParameters.specs(epochsHelp: "").contains { $0.name == "finetune-keep-codebooks" })
    }
}
