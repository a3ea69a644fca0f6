import Testing
import Compress
@testable import Prune

/// Channel pruning through the hard swish, the hard sigmoid gate of a
/// squeeze-and-excitation block (MobileNetV3) and GELU: each passes channels
/// through, and the pruned model computes what the original does with the
/// removed channels silenced.
@Suite struct SmoothActivationPruningTests {
    typealias F = StructuredFixtures

    /// A MobileNetV3-style block on 3x8x8 images:
    ///
    ///     x ─ stem (conv 3x3, 8) ─ stem.bn ─ hswish ─ dw (depthwise 3x3) ─ dw.bn ─ hswish2 ─┬──────────── mul ─ project (1x1, 6) ─ project.bn ─ gelu ─ gap ─ flatten ─ fc (3)
    ///                                                                                    └ gap ─ se.reduce (1x1, 4) ─ relu ─ se.expand (1x1, 8) ─ hsigmoid ┘
    ///
    /// Every parameter random.
    static func block(seed: UInt64 = 21) -> Model {
        var rng = SeededGenerator(seed: seed)
        var initializers: [String: Tensor] = [:]
        var nodes: [Node] = []
        func conv(_ name: String, _ input: String, _ shape: [Int], padding: Int = 0, groups: Int = 1, bias: Bool = false) {
            initializers["\(name).weight"] = rng.gaussianTensor(shape, std: 0.5)
            var inputs = [input, "\(name).weight"]
            if bias {
                initializers["\(name).bias"] = rng.gaussianTensor([shape[0]], std: 0.5)
                inputs.append("\(name).bias")
            }
            nodes.append(Node(name: name, op: .conv2d(Conv2d(padding: .same(padding), groups: groups)), inputs: inputs, output: name))
        }
        func batchNorm(_ name: String, _ input: String, channels: Int) {
            initializers["\(name).scale"] = rng.uniformTensor([channels], in: 0.5...1.5)
            initializers["\(name).bias"] = rng.gaussianTensor([channels], std: 0.5)
            initializers["\(name).mean"] = rng.gaussianTensor([channels], std: 0.5)
            initializers["\(name).var"] = rng.uniformTensor([channels], in: 0.2...2)
            nodes.append(Node(name: name, op: .batchNorm(epsilon: 1e-5),
                              inputs: [input] + ["scale", "bias", "mean", "var"].map { "\(name).\($0)" }, output: name))
        }
        func add(_ name: String, _ op: Op, _ inputs: [String]) { nodes.append(Node(name: name, op: op, inputs: inputs, output: name)) }
        conv("stem", "x", [8, 3, 3, 3], padding: 1)
        batchNorm("stem.bn", "stem", channels: 8)
        add("hswish", .hardSwish, ["stem.bn"])
        conv("dw", "hswish", [8, 1, 3, 3], padding: 1, groups: 8)
        batchNorm("dw.bn", "dw", channels: 8)
        add("hswish2", .hardSwish, ["dw.bn"])
        add("se.gap", .globalAvgPool, ["hswish2"])
        conv("se.reduce", "se.gap", [4, 8, 1, 1], bias: true)
        add("se.relu", .relu, ["se.reduce"])
        conv("se.expand", "se.relu", [8, 4, 1, 1], bias: true)
        add("hsigmoid", .hardSigmoid(alpha: 1.0 / 6, beta: 0.5), ["se.expand"])
        add("mul", .mul, ["hswish2", "hsigmoid"])
        conv("project", "mul", [6, 8, 1, 1])
        batchNorm("project.bn", "project", channels: 6)
        add("gelu", .gelu(tanhApproximation: false), ["project.bn"])
        add("gap", .globalAvgPool, ["gelu"])
        add("flatten", .flatten(axis: 1), ["gap"])
        initializers["fc.weight"] = rng.gaussianTensor([3, 6], std: 0.5)
        initializers["fc.bias"] = rng.gaussianTensor([3], std: 0.5)
        nodes.append(Node(name: "fc", op: .linear, inputs: ["flatten", "fc.weight", "fc.bias"], output: "fc"))
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 8, 8])], outputs: ["fc"],
                                  nodes: nodes, initializers: initializers))
    }

    @Test func activationsPassChannelsThrough() throws {
        let groups = try channelDependencyGroups(in: Self.block().graph)
        // The stem's channels reach the depthwise conv and, through the gate's Mul, the SE expansion.
        #expect(Set(F.group(of: "stem", in: groups).sourceLayers) == ["stem", "se.expand"])
        #expect(F.group(of: "se.reduce", in: groups).sourceLayers == ["se.reduce"])
        #expect(F.group(of: "project", in: groups).sourceLayers == ["project"])
    }

    @Test func blockMatchesItsSilencedOriginal() throws {
        let model = Self.block()
        let groups = try channelDependencyGroups(in: model.graph)
        let result = try applyChannelPruning(model, removing: [
            F.group(of: "stem", in: groups).id: [1, 6], F.group(of: "se.reduce", in: groups).id: [2],
            F.group(of: "project", in: groups).id: [0, 4],
        ])
        // A silenced stem channel is 0 after BN and the hard swish, 0 after the depthwise conv;
        // the SE gate there is hardsigmoid(0) = 1/2, times 0.
        var silence = F.filters("stem", [1, 6], in: model) + F.batchNorm("stem.bn", [1, 6])
        silence += F.filters("dw", [1, 6], in: model) + F.batchNorm("dw.bn", [1, 6])
        silence += F.filters("se.expand", [1, 6], in: model)
        silence += F.filters("se.reduce", [2], in: model)
        silence += F.filters("project", [0, 4], in: model) + F.batchNorm("project.bn", [0, 4])
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)
        let initializers = result.model.graph.initializers
        #expect(initializers["dw.weight"]!.shape == [6, 1, 3, 3])
        #expect(initializers["se.reduce.weight"]!.shape == [3, 6, 1, 1])
        #expect(initializers["se.expand.weight"]!.shape == [6, 3, 1, 1])
        #expect(initializers["project.weight"]!.shape == [4, 6, 1, 1])
        #expect(initializers["fc.weight"]!.shape == [3, 4])
        #expect(result.model.graph.nodes.map(\.op) == model.graph.nodes.map(\.op).map { op in
            if case .conv2d(var a) = op, a.groups == 8 { a.groups = 6; return .conv2d(a) }
            return op
        })
    }
}
