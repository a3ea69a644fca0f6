import Foundation
import Testing
@testable import Compress
@testable import Distill

/// Real images for imitation: the first training and validation images of
/// Fashion-MNIST (loaded once).
enum FashionSubset {
    static let full: DatasetSplits? = try? DatasetLoader.load(validationCount: 5000, splits: [.train, .validation])

    /// `train` training images and `validation` validation images.
    static func splits(train: Int, validation: Int) throws -> DatasetSplits {
        let data = try #require(full)
        return DatasetSplits(train: data.train.batch(0..<train), validation: data.validation.batch(0..<validation),
                             test: data.validation.batch(0..<0), classNames: data.classNames)
    }
}

/// Hint adapters and the hint loss (FitNets): shapes, and gradients against
/// central finite differences.
@Suite struct FeatureImitationTests {
    func match(_ student: [Int], _ teacher: [Int], pools: Bool = true) throws -> FeatureMatch {
        try FeatureMatch.make(student: "s", teacher: "t", studentShapes: ["s": [1] + student], teacherShapes: ["t": [1] + teacher],
                              pools: pools, label: "hint 's=t'").get()
    }

    @Test func adaptersHaveTheShapesThatMakeValuesComparable() throws {
        // A wider, larger student map: pooled 2x2, then a 1x1 conv 16 -> 32.
        let pooled = try match([16, 14, 14], [32, 7, 7])
        #expect(pooled.studentPool == Size2(2, 2) && pooled.teacherPool == nil)
        let adapter = try #require(adapterModel(for: pooled))
        #expect(adapter.graph.initializers["adapter.weight"]?.shape == [32, 16, 1, 1])
        #expect(adapter.graph.initializers["adapter.bias"]?.shape == [32])
        // Zero at the start: the adapted value is 0, its relative error exactly 1.
        #expect(adapter.graph.initializers["adapter.weight"]!.floats.allSatisfy { $0 == 0 })
        #expect(try adapter.graph.inferShapes(batch: 3)[adapter.graph.outputs[0]] == [3, 32, 7, 7])
        // A larger teacher map is pooled on the teacher's side (rectangular ratios too); the adapter only maps channels.
        let teacherPooled = try match([8, 7, 7], [4, 14, 21])
        #expect(teacherPooled.teacherPool == Size2(2, 3) && teacherPooled.studentPool == nil)
        #expect(teacherPooled.teacherTarget == "t#pool2x3")
        #expect(try adapterModel(for: teacherPooled)?.graph.inferShapes(batch: 2)["adapter"] == [2, 4, 7, 7])
        // Vectors: a linear [teacher, student] layer.
        let vectors = try #require(adapterModel(for: try match([75], [300])))
        #expect(vectors.graph.initializers["adapter.weight"]?.shape == [300, 75])
        // Same shape: no adapter.
        #expect(adapterModel(for: try match([16, 7, 7], [16, 7, 7])) == nil)
    }

    @Test func valuesThatCannotBeComparedAreRefusedWithOneSentence() {
        func problem(_ s: [Int], _ t: [Int], pools: Bool) -> String? {
            if case .failure(let p) = FeatureMatch.make(student: "s", teacher: "t", studentShapes: ["s": [1] + s],
                                                        teacherShapes: ["t": [1] + t], pools: pools, label: "hint 's=t'") {
                return p.message
            }
            return nil
        }
        #expect(problem([16, 14, 14], [32, 7, 7], pools: false)
            == "hint 's=t': the student's map is 14x14 and the teacher's 7x7; spatial sizes must match (hint-pool average-pools the larger map to the smaller when their ratio is an integer)")
        #expect(problem([16, 12, 12], [32, 8, 8], pools: true)
            == "hint 's=t': the student's map is 12x12 and the teacher's 8x8; pooling needs one map's height and width to be integer multiples of the other's")
        #expect(problem([16, 7, 7], [300], pools: true)
            == "hint 's=t': the student's value is [16, 7, 7] and the teacher's [300]; feature maps [C, H, W] pair with feature maps and vectors [F] with vectors")
    }

    /// `weight · mean((adapter(x) - t)²) / mean(t²)` with the adapter's current parameters.
    func hintLoss(_ graph: TrainingGraph, _ x: Tensor, _ target: Tensor, weight: Float) throws -> Double {
        let y = try graph.forward(x, training: true)
        return Double(relativeSquaredError(y, target, weight: weight).loss)
    }

    /// The loss is quadratic in every weight and input element, so central
    /// differences are exact up to float rounding.
    @Test(arguments: [([6, 4, 4], [10, 2, 2]), ([7], [5])])
    func adapterAndHintLossGradientsMatchFiniteDifferences(student: [Int], teacher: [Int]) throws {
        let m = try match(student, teacher)
        let graph = try TrainingGraph(model: try #require(adapterModel(for: m)), computesInputGradient: true)
        var rng = SeededGenerator(seed: 9)
        // Adapters start at zero; any weights will do for the check.
        for name in ["adapter.weight", "adapter.bias"] {
            graph.parameters[name]!.load(rng.gaussianTensor(graph.parameters[name]!.shape))
        }
        let x = rng.gaussianTensor([2] + student)
        let targetShape = [2, teacher[0]] + (teacher.count == 3 ? [teacher[1], teacher[2]] : [])
        let target = rng.gaussianTensor(targetShape)
        let weight: Float = 0.7
        graph.zeroGradients()
        let y = try graph.forward(x, training: true)
        try graph.backward(relativeSquaredError(y, target, weight: weight).gradient)
        let inputGradient = try #require(graph.inputGradient).floats
        let weightGradient = graph.gradients["adapter.weight"]!.floats
        let biasGradient = graph.gradients["adapter.bias"]!.floats
        let h: Float = 0.01
        // With respect to the input (the gradient the student backpropagates).
        for i in stride(from: 0, to: x.count, by: 5) {
            var (plus, minus) = (x.floats, x.floats)
            plus[i] += h; minus[i] -= h
            let numeric = (try hintLoss(graph, Tensor(shape: x.shape, floats: plus), target, weight: weight)
                - (try hintLoss(graph, Tensor(shape: x.shape, floats: minus), target, weight: weight))) / Double(2 * h)
            #expect(abs(numeric - Double(inputGradient[i])) < 1e-3 * max(1, abs(numeric)), "input \(i)")
        }
        // With respect to the adapter's weight and bias.
        for (name, analytic) in [("adapter.weight", weightGradient), ("adapter.bias", biasGradient)] {
            let buffer = graph.parameters[name]!
            for i in stride(from: 0, to: buffer.count, by: 3) {
                let saved = buffer.values[i]
                buffer.values[i] = saved + h
                let plus = try hintLoss(graph, x, target, weight: weight)
                buffer.values[i] = saved - h
                let minus = try hintLoss(graph, x, target, weight: weight)
                buffer.values[i] = saved
                let numeric = (plus - minus) / Double(2 * h)
                #expect(abs(numeric - Double(analytic[i])) < 1e-3 * max(1, abs(numeric)), "\(name)[\(i)]")
            }
        }
    }

    /// Through the whole chain: a student parameter's gradient of the hint
    /// loss (student graph -> linear adapter -> MSE against the teacher's
    /// layer) against central differences.
    @Test func hintLossGradientReachesTheStudentsParameters() throws {
        let teacher = Architecture.lenet300.build(seed: 1)
        let student = Architecture.lenet300.build(seed: 2, width: 0.25)
        var problems: [String] = []
        let hints = HintLayers("relu2=relu1", problems: &problems)
        #expect(problems.isEmpty)
        let matches = try hints.matches(student: student, teacher: teacher, pools: false, pass: "distill")
        let imitation = try FeatureImitation(matches: matches, teacher: teacher, weight: 1, settings: TrainingSettings())
        let images = try FashionSubset.splits(train: 8, validation: 1).train.images
        let graph = try TrainingGraph(model: student)
        func loss(learningRate: Float? = nil) throws -> Double {
            _ = try graph.forward(images, training: true)
            return Double(try imitation.step(student: graph, images: images, learningRate: learningRate).loss)
        }
        // The adapter starts at zero, passing no gradient: a few steps train it (and lower the loss).
        let start = try loss(learningRate: 0.5)
        for _ in 0..<4 { _ = try loss(learningRate: 0.5) }
        #expect(try loss() < start)
        graph.zeroGradients()
        _ = try loss()
        let (_, seeds) = try imitation.step(student: graph, images: images, learningRate: nil)
        #expect(Set(seeds.keys) == ["relu2"])
        try graph.backward(seeds: seeds)
        let h: Float = 1e-2
        for name in ["fc2.weight", "fc1.bias"] {
            let buffer = graph.parameters[name]!
            let analytic = graph.gradients[name]!.floats
            let checked = analytic.indices.sorted { abs(analytic[$0]) > abs(analytic[$1]) }.prefix(4)
            #expect(analytic[checked.first!] != 0)
            for i in checked {
                let saved = buffer.values[i]
                buffer.values[i] = saved + h
                let plus = try loss()
                buffer.values[i] = saved - h
                let minus = try loss()
                buffer.values[i] = saved
                let numeric = (plus - minus) / Double(2 * h)
                #expect(abs(numeric - Double(analytic[i])) < 2e-2 * max(1e-3, abs(numeric)), "\(name)[\(i)]: \(numeric) vs \(analytic[i])")
            }
        }
    }

    /// The teacher's imitated values come from the inference runtime, which
    /// folds BatchNorm and fuses ReLUs: a value named as an output (here a
    /// conv's output before its BatchNorm) must still be the graph's value.
    @Test func teacherFeaturesAreTheGraphsValues() throws {
        let teacher = Architecture.resnet20.build(seed: 5)
        var matches: [FeatureMatch] = []
        for name in ["conv1", "relu1", "layer2.0.relu2"] {
            let shape = try teacher.graph.inferShapes(batch: 1)[name]!
            var m = FeatureMatch(student: name, teacher: name, studentShape: Array(shape.dropFirst()), teacherShape: Array(shape.dropFirst()))
            if name == "layer2.0.relu2" { m.teacherPool = Size2(2, 2) }
            matches.append(m)
        }
        let images = try FashionSubset.splits(train: 3, validation: 1).train.images
        let features = try TeacherFeatures(teacher: teacher, matches: matches, threads: 1).values(on: images)
        let reference = try TrainingGraph(model: teacher)
        _ = try reference.forward(images, training: false)
        for name in ["conv1", "relu1"] {
            let (a, b) = (features[name]!.floats, reference.value(named: name)!.floats)
            #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 * max(1, abs($1)) }, "\(name)")
        }
        #expect(features["layer2.0.relu2#pool2x2"]?.shape == [3, 32, 7, 7])
    }
}
