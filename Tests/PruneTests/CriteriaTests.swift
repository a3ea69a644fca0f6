import Testing
import Compress
@testable import Prune

@Suite struct CriteriaTests {
    typealias F = StructuredFixtures

    /// x[2,3,3] → c (1x1 conv, 3 filters) → bn → relu → d (1x1 conv, 1 filter): output `d`.
    ///
    /// Filters of c: [1, -2], [0.5, 0.5], [-4, 0]; BatchNorm γ: [0.2, -3, 1].
    private func handMadeLayer() -> Model {
        let initializers: [String: Tensor] = [
            "c.weight": Tensor(shape: [3, 2, 1, 1], floats: [1, -2, 0.5, 0.5, -4, 0]),
            "c.bias": Tensor(shape: [3], floats: [0.1, 0.2, 0.3]),
            "bn.scale": Tensor(shape: [3], floats: [0.2, -3, 1]), "bn.bias": .zeros([3]),
            "bn.mean": .zeros([3]), "bn.var": .filled([3], with: 1),
            "d.weight": .filled([1, 3, 1, 1], with: 1),
        ]
        let nodes = [
            Node(name: "c", op: .conv2d(Conv2d()), inputs: ["x", "c.weight", "c.bias"], output: "c"),
            Node(name: "bn", op: .batchNorm(epsilon: 1e-5), inputs: ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], output: "bn"),
            Node(name: "relu", op: .relu, inputs: ["bn"], output: "relu"),
            Node(name: "d", op: .conv2d(Conv2d()), inputs: ["relu", "d.weight"], output: "d"),
        ]
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 3, 3])], outputs: ["d"],
                                  nodes: nodes, initializers: initializers))
    }

    private func normalized(_ raw: [Double]) -> [Float] {
        let mean = raw.reduce(0, +) / Double(raw.count)
        return raw.map { Float($0 / mean) }
    }

    private func expectClose(_ a: [Float]?, _ b: [Float], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a?.count == b.count && zip(a ?? [], b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) },
                "\(a ?? []) vs \(b)", sourceLocation: sourceLocation)
    }

    private func ranking(_ scores: [Float]) -> [Int] { scores.indices.sorted { scores[$0] < scores[$1] } }

    @Test func weightCriteriaRankAHandMadeLayerAsByHand() throws {
        let model = handMadeLayer()
        let groups = try channelDependencyGroups(in: model.graph)
        #expect(groups.map(\.isPrunable) == [true, false])
        let l1 = try channelImportance(of: groups, in: model, criterion: .l1)
        expectClose(l1[0], normalized([3, 1, 4]))
        #expect(ranking(l1[0]!) == [1, 0, 2])
        let l2 = try channelImportance(of: groups, in: model, criterion: .l2)
        expectClose(l2[0], normalized([Double(5).squareRoot(), Double(0.5).squareRoot(), 4]))
        #expect(ranking(l2[0]!) == [1, 0, 2])
        let bn = try channelImportance(of: groups, in: model, criterion: .bnScale)
        expectClose(bn[0], normalized([0.2, 3, 1]))
        #expect(ranking(bn[0]!) == [0, 2, 1])
        #expect(l1[1] == nil)
    }

    @Test func sourcesOfOneGroupAreNormalizedBeforeAveraging() throws {
        var tiny = TinyGraph()
        tiny.conv("a", "x", out: 2)
        tiny.conv("b", "x", out: 2)
        tiny.initializers["a.weight"] = Tensor(shape: [2, 4, 1, 1], floats: [1, 0, 0, 0, 3, 0, 0, 0])
        tiny.initializers["b.weight"] = Tensor(shape: [2, 4, 1, 1], floats: [10, 10, 10, -10, 5, 5, 0, 0])
        tiny.add(Node(name: "sum", op: .add, inputs: ["a", "b"], output: "sum"))
        tiny.conv("d", "sum", out: 3)
        let model = Model(graph: tiny.graph)
        let groups = try channelDependencyGroups(in: model.graph)
        #expect(groups[0].sourceLayers == ["a", "b"])
        let l1 = try channelImportance(of: groups, in: model, criterion: .l1)
        // a: [1, 3] / 2 = [0.5, 1.5]; b: [40, 10] / 25 = [1.6, 0.4]; mean [1.05, 0.95].
        expectClose(l1[0], [1.05, 0.95])
    }

    @Test func averagePercentageOfZerosByHand() throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [1, 2, 2])], outputs: ["d"],
            nodes: [Node(name: "c", op: .conv2d(Conv2d()), inputs: ["x", "c.weight"], output: "c"),
                    Node(name: "r", op: .relu, inputs: ["c"], output: "r"),
                    Node(name: "d", op: .conv2d(Conv2d()), inputs: ["r", "d.weight"], output: "d")],
            initializers: ["c.weight": Tensor(shape: [2, 1, 1, 1], floats: [1, -1]), "d.weight": .filled([1, 2, 1, 1], with: 1)])
        let model = Model(graph: graph)
        let images = Tensor(shape: [2, 1, 2, 2], floats: [1, -1, 2, 0, 3, 4, -5, 6])
        let scores = try channelImportance(of: try channelDependencyGroups(in: graph), in: model, criterion: .apoz, calibration: CalibrationImages(images: images))
        // Channel 0 = relu(x) is zero at -1, 0, -5 (3 of 8); channel 1 = relu(-x) at 1, 2, 0, 3, 4, 6 (6 of 8).
        expectClose(scores[0], [0.625, 0.25])
    }

    @Test func criteriaNeedWhatTheyMeasure() throws {
        let model = Architecture.lenet5.build(seed: 1)
        let groups = try channelDependencyGroups(in: model.graph)
        #expect(throws: StructuredPruningError.criterionNotApplicable(criterion: "bn-scale", group: 0, sourceLayers: ["conv1"],
                                                                     reason: "the group has no BatchNorm")) {
            try channelImportance(of: groups, in: model, criterion: .bnScale)
        }
        var rng = SeededGenerator(seed: 1)
        let images = rng.uniformTensor([2, 1, 28, 28])
        #expect(throws: StructuredPruningError.self) {
            try channelImportance(of: groups, in: model, criterion: .apoz, calibration: CalibrationImages(images: images))
        }
        let fc1Only = groups.filter { $0.sourceLayers == ["fc1"] }
        #expect(try channelImportance(of: fc1Only, in: model, criterion: .apoz, calibration: CalibrationImages(images: images))[2]?.count == 500)
        #expect(throws: StructuredPruningError.self) {
            try channelImportance(of: groups, in: model, criterion: .taylor,
                                  calibration: CalibrationImages(images: images, labels: [1]))
        }
        #expect(throws: StructuredPruningError.self) {
            try channelImportance(of: groups, in: model, criterion: .apoz,
                                  calibration: CalibrationImages(images: rng.uniformTensor([2, 1, 14, 14])))
        }
    }

    /// Σ a·g over a 1x1 convolution's input channel `c` equals Σₒ W[o,c]·∂L/∂W[o,c]:
    /// an independent way to the Taylor score from the ordinary weight gradients.
    @Test func taylorMatchesWeightGradientIdentity() throws {
        var rng = SeededGenerator(seed: 21)
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [2, 3, 3])], outputs: ["fc"],
            nodes: [Node(name: "c", op: .conv2d(Conv2d()), inputs: ["x", "c.weight", "c.bias"], output: "c"),
                    Node(name: "r", op: .relu, inputs: ["c"], output: "r"),
                    Node(name: "d", op: .conv2d(Conv2d()), inputs: ["r", "d.weight", "d.bias"], output: "d"),
                    Node(name: "gap", op: .globalAvgPool, inputs: ["d"], output: "gap"),
                    Node(name: "flatten", op: .flatten(axis: 1), inputs: ["gap"], output: "flatten"),
                    Node(name: "fc", op: .linear, inputs: ["flatten", "fc.weight"], output: "fc")],
            initializers: ["c.weight": rng.gaussianTensor([3, 2, 1, 1]), "c.bias": rng.gaussianTensor([3], std: 0.3),
                           "d.weight": rng.gaussianTensor([4, 3, 1, 1]), "d.bias": rng.gaussianTensor([4], std: 0.3),
                           "fc.weight": rng.gaussianTensor([2, 4])])
        let model = Model(graph: graph)
        let images = rng.gaussianTensor([3, 2, 3, 3])
        let labels: [Int32] = [0, 1, 1]
        let scores = try channelImportance(of: try channelDependencyGroups(in: graph), in: model,
                                           criterion: .taylor,
                                           calibration: CalibrationImages(images: images, labels: labels))

        var expected: [String: [Double]] = ["d.weight": [0, 0, 0], "fc.weight": [0, 0, 0, 0]]
        let trainer = try TrainingGraph(model: model)
        for i in 0..<3 {
            let x = Tensor(shape: [1, 2, 3, 3], floats: Array(images.floats[(i * 18)..<((i + 1) * 18)]))
            let logits = try trainer.forward(x, training: false)
            trainer.zeroGradients()
            try trainer.backward(Loss.softmaxCrossEntropy(logits: logits, labels: [labels[i]]).gradient)
            for (name, (outputs, inputs, positions)) in [("d.weight", (4, 3, 9.0)), ("fc.weight", (2, 4, 1.0))] {
                let (w, g) = (graph.initializers[name]!.floats, trainer.gradients[name]!.floats)
                for c in 0..<inputs {
                    let sum = (0..<outputs).reduce(0.0) { $0 + Double(w[$1 * inputs + c]) * Double(g[$1 * inputs + c]) }
                    expected[name]![c] += abs(sum) / positions
                }
            }
        }
        expectClose(scores[0], normalized(expected["d.weight"]!))
        expectClose(scores[1], normalized(expected["fc.weight"]!))
    }

    @Test(arguments: [Architecture.vggSmall, .resnet20, .mobilenetSmall])
    func dataDrivenCriteriaScoreEveryPrunableGroup(_ architecture: Architecture) throws {
        let model = F.withRandomBatchNorm(architecture)
        let groups = try channelDependencyGroups(in: model.graph)
        var rng = SeededGenerator(seed: 4)
        let images = rng.uniformTensor([2] + model.inputShape)
        let calibration = CalibrationImages(images: images, labels: [3, 7])
        for criterion in [PruningCriterion.apoz, .taylor] {
            let scores = try channelImportance(of: groups, in: model, criterion: criterion, calibration: calibration)
            #expect(Set(scores.keys) == Set(groups.filter(\.isPrunable).map(\.id)))
            for group in groups where group.isPrunable {
                #expect(scores[group.id]!.count == group.channels)
                #expect(scores[group.id]!.allSatisfy { $0.isFinite && $0 >= 0 })
            }
        }
    }
}
