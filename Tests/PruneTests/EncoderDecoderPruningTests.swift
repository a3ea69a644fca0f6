import Testing
import Compress
@testable import Prune

/// Channel rules of ConvTranspose (a source layer with its weight's axes
/// swapped, or depthwise) and Resize (channels pass through), checked against
/// the silenced-channels oracle on a small encoder-decoder.
@Suite struct EncoderDecoderPruningTests {
    typealias F = StructuredFixtures

    /// An encoder-decoder on 3x8x8 images, every parameter random:
    ///
    ///     x ─ a (conv 3x3 stride 2, 6) ─ relu ─ up (convT 2x2 stride 2, 5) ─ relu ─ dwt (depthwise convT 3x3, 5) ─┐
    ///     └─ skip (conv 3x3, 4) ─ relu ──────────────────────────────────────────────────────────────────────────┴ cat (9)
    ///     cat ─ resize (nearest x2) ─ c (conv 1x1, 3) ─ relu ─ gap ─ flatten ─ fc (2)
    static func model(seed: UInt64 = 17, upGroups: Int = 1) -> Model {
        var rng = SeededGenerator(seed: seed)
        let upWeight = upGroups == 1 ? [6, 5, 2, 2] : [6, 6 / upGroups, 2, 2]
        let upChannels = upWeight[1] * upGroups
        let initializers: [String: Tensor] = [
            "a.weight": rng.gaussianTensor([6, 3, 3, 3], std: 0.5), "a.bias": rng.gaussianTensor([6], std: 0.2),
            "up.weight": rng.gaussianTensor(upWeight, std: 0.5), "up.bias": rng.gaussianTensor([upChannels], std: 0.2),
            "dwt.weight": rng.gaussianTensor([upChannels, 1, 3, 3], std: 0.5), "dwt.bias": rng.gaussianTensor([upChannels], std: 0.2),
            "skip.weight": rng.gaussianTensor([4, 3, 3, 3], std: 0.5), "skip.bias": rng.gaussianTensor([4], std: 0.2),
            "c.weight": rng.gaussianTensor([3, upChannels + 4, 1, 1], std: 0.5), "c.bias": rng.gaussianTensor([3], std: 0.2),
            "fc.weight": rng.gaussianTensor([2, 3], std: 0.5), "fc.bias": rng.gaussianTensor([2], std: 0.2),
        ]
        let nearest = Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: .floor, scaleH: 2, scaleW: 2)
        func node(_ name: String, _ op: Op, _ inputs: [String]) -> Node { Node(name: name, op: op, inputs: inputs, output: name) }
        let nodes = [
            node("a", .conv2d(Conv2d(stride: .square(2), padding: .same(1))), ["x", "a.weight", "a.bias"]),
            node("a.relu", .relu, ["a"]),
            node("up", .convTranspose(ConvTranspose2d(stride: .square(2), groups: upGroups)), ["a.relu", "up.weight", "up.bias"]),
            node("up.relu", .relu, ["up"]),
            node("dwt", .convTranspose(ConvTranspose2d(padding: .same(1), groups: upChannels)), ["up.relu", "dwt.weight", "dwt.bias"]),
            node("skip", .conv2d(Conv2d(padding: .same(1))), ["x", "skip.weight", "skip.bias"]),
            node("skip.relu", .relu, ["skip"]),
            node("cat", .concat(axis: 1), ["dwt", "skip.relu"]),
            node("resize", .resize(nearest), ["cat"]),
            node("c", .conv2d(Conv2d()), ["resize", "c.weight", "c.bias"]),
            node("c.relu", .relu, ["c"]),
            node("gap", .globalAvgPool, ["c.relu"]),
            node("flatten", .flatten(axis: 1), ["gap"]),
            node("fc", .linear, ["flatten", "fc.weight", "fc.bias"]),
        ]
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 8, 8])], outputs: ["fc"],
                                  nodes: nodes, initializers: initializers))
    }

    @Test func transposedConvolutionIsASourceAndResizePassesChannels() throws {
        let groups = try channelDependencyGroups(in: Self.model().graph)
        #expect(groups.map(\.sourceLayers) == [["a"], ["up"], ["skip"], ["c"], ["fc"]])
        let up = F.group(of: "up", in: groups)
        #expect(up.isPrunable, "\(up.notPrunableReasons)")
        #expect(up.slices(.filter).map { [$0.initializer: $0.axis] } == [["up.weight": 1]])
        #expect(up.slices(.depthwiseFilter).map(\.initializer) == ["dwt.weight"])
        #expect(up.slices(.consumerInput).map(\.initializer) == ["c.weight"])
        #expect(up.valueNames.contains("resize"))
        // The encoder's channels are the transposed convolution's input channels: weight axis 0.
        let a = F.group(of: "a", in: groups)
        #expect(a.slices(.consumerInput).map { [$0.initializer: $0.axis] } == [["up.weight": 0]])
    }

    @Test func prunedEncoderDecoderMatchesItsSilencedOriginal() throws {
        let model = Self.model()
        let groups = try channelDependencyGroups(in: model.graph)
        let result = try applyChannelPruning(model, removing: [
            F.group(of: "a", in: groups).id: [1, 4], F.group(of: "up", in: groups).id: [0, 3],
            F.group(of: "skip", in: groups).id: [2], F.group(of: "c", in: groups).id: [1],
        ])
        // up's output channels are its weight's axis 1; dwt (depthwise) follows them.
        var silence = F.filters("a", [1, 4], in: model) + F.filters("skip", [2], in: model) + F.filters("c", [1], in: model)
        silence += [0, 3].flatMap { [("up.weight", 1, $0), ("up.bias", 0, $0)] }
        silence += F.filters("dwt", [0, 3], in: model)
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)
        let initializers = result.model.graph.initializers
        #expect(initializers["up.weight"]!.shape == [4, 3, 2, 2])
        #expect(initializers["up.bias"]!.shape == [3])
        #expect(initializers["dwt.weight"]!.shape == [3, 1, 3, 3])
        #expect(initializers["c.weight"]!.shape == [2, 6, 1, 1])
        #expect(result.model.graph.nodes.first { $0.name == "dwt" }!.op == .convTranspose(ConvTranspose2d(padding: .same(1), groups: 3)))
        let up = result.record.layers.first { $0.layer == "up" }!
        #expect((up.outputChannelsBefore, up.outputChannelsAfter, up.inputChannelsBefore, up.inputChannelsAfter) == (5, 3, 6, 4))
        // Every input pixel scatters a (O x 2 x 2) kernel: 4·4 pixels · 4 inputs · 3 outputs · 4 taps.
        #expect(up.macsAfter == 4 * 4 * 4 * 3 * 4)
        #expect(result.record.macsAfter == (try result.model.graph.costReport().totalMACs))
    }

    @Test func groupedTransposedConvolutionIsRefusedByName() throws {
        let groups = try channelDependencyGroups(in: Self.model(upGroups: 2).graph)
        let a = F.group(of: "a", in: groups)
        #expect(a.notPrunableReasons == ["read by grouped transposed convolution 'up' (groups 2)"])
        #expect(F.group(of: "up", in: groups).notPrunableReasons.contains("output of grouped transposed convolution 'up' (groups 2)"))
    }
}
