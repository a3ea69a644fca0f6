import Testing
import Compress
@testable import Prune

/// Channel rules of `slice` and `channelPermute` on a ShuffleNetV2-style network
/// (Ma et al. 2018) and a GhostNet module, against the silenced-channels oracle:
/// the pruned model computes what the original computes with the removed
/// channels' filters, biases, BatchNorm scales and shifts (and the depthwise
/// filters that follow them) set to zero. The silenced indices are worked out
/// by hand from the architecture below.
@Suite struct ChannelShuffleTests {
    typealias F = StructuredFixtures

    /// The channel shuffle of `channels` in 2 groups: output `i` reads `(i % 2)·C/2 + i / 2`.
    static func shuffle(_ channels: Int) -> [Int] { (0..<channels).map { ($0 % 2) * (channels / 2) + $0 / 2 } }

    /// x[3,8,8] ─ stem (3x3, 8) ─ bn ─ relu = s
    /// unit 1 (stride 1): s[0..<4] = left; s[4..<8] ─ u1.pw1 (1x1, 4) ─ bn ─ relu ─ u1.dw (3x3 dw) ─ bn
    ///     ─ u1.pw2 (1x1, 4) ─ bn ─ relu; cat(left, branch) ─ shuffle = p1 (8)
    /// down unit (stride 2): p1 ─ d.left.dw (3x3/2 dw) ─ bn ─ d.left.pw (1x1, 8) ─ bn ─ relu;
    ///     p1 ─ d.right.pw1 (1x1, 8) ─ bn ─ relu ─ d.right.dw (3x3/2 dw) ─ bn ─ d.right.pw2 (1x1, 8) ─ bn ─ relu;
    ///     cat ─ shuffle = p2 (16, 4x4)
    /// Ghost module: p2 ─ g.primary (1x1, 5) ─ bn ─ relu ─ g.cheap (3x3 dw) ─ bn ─ relu; cat(primary, cheap) (10)
    ///     ─ ghost = slice 0..<9 ─ crop = slice of columns 0..<3 ─ head (1x1, 6) ─ gap ─ flatten ─ fc (3)
    static func shuffleNetModel(seed: UInt64 = 21) -> Model {
        var rng = SeededGenerator(seed: seed)
        var initializers: [String: Tensor] = [:]
        var nodes: [Node] = []
        func conv(_ name: String, _ input: String, out: Int, in channels: Int, kernel: Int = 1, stride: Int = 1,
                  depthwise: Bool = false) -> String {
            initializers["\(name).weight"] = rng.gaussianTensor([out, depthwise ? 1 : channels, kernel, kernel], std: 0.5)
            initializers["\(name).bias"] = rng.gaussianTensor([out], std: 0.5)
            let attributes = Conv2d(stride: .square(stride), padding: .same(kernel / 2), groups: depthwise ? channels : 1)
            nodes.append(Node(name: name, op: .conv2d(attributes), inputs: [input, "\(name).weight", "\(name).bias"], output: name))
            return name
        }
        func bn(_ name: String, _ input: String, channels: Int, relu: Bool = true) -> String {
            initializers["\(name).scale"] = rng.uniformTensor([channels], in: 0.5...1.5)
            initializers["\(name).bias"] = rng.gaussianTensor([channels], std: 0.5)
            initializers["\(name).mean"] = rng.gaussianTensor([channels], std: 0.5)
            initializers["\(name).var"] = rng.uniformTensor([channels], in: 0.2...2)
            nodes.append(Node(name: name, op: .batchNorm(epsilon: 1e-5),
                              inputs: [input] + ["scale", "bias", "mean", "var"].map { "\(name).\($0)" }, output: name))
            guard relu else { return name }
            nodes.append(Node(name: "\(name).relu", op: .relu, inputs: [name], output: "\(name).relu"))
            return "\(name).relu"
        }
        func op(_ name: String, _ op: Op, _ inputs: [String]) -> String {
            nodes.append(Node(name: name, op: op, inputs: inputs, output: name))
            return name
        }
        let s = bn("stem.bn", conv("stem", "x", out: 8, in: 3, kernel: 3), channels: 8)
        let left = op("left", .slice(axis: 1, start: 0, end: 4), [s])
        let right = op("right", .slice(axis: 1, start: 4, end: 8), [s])
        var b = bn("u1.bn1", conv("u1.pw1", right, out: 4, in: 4), channels: 4)
        b = bn("u1.dw.bn", conv("u1.dw", b, out: 4, in: 4, kernel: 3, depthwise: true), channels: 4, relu: false)
        b = bn("u1.bn2", conv("u1.pw2", b, out: 4, in: 4), channels: 4)
        let p1 = op("p1", .channelPermute(order: shuffle(8)), [op("u1.cat", .concat(axis: 1), [left, b])])
        var l = bn("d.left.dw.bn", conv("d.left.dw", p1, out: 8, in: 8, kernel: 3, stride: 2, depthwise: true), channels: 8,
                   relu: false)
        l = bn("d.left.bn", conv("d.left.pw", l, out: 8, in: 8), channels: 8)
        var r = bn("d.right.bn1", conv("d.right.pw1", p1, out: 8, in: 8), channels: 8)
        r = bn("d.right.dw.bn", conv("d.right.dw", r, out: 8, in: 8, kernel: 3, stride: 2, depthwise: true), channels: 8,
               relu: false)
        r = bn("d.right.bn2", conv("d.right.pw2", r, out: 8, in: 8), channels: 8)
        let p2 = op("p2", .channelPermute(order: shuffle(16)), [op("d.cat", .concat(axis: 1), [l, r])])
        let primary = bn("g.primary.bn", conv("g.primary", p2, out: 5, in: 16), channels: 5)
        let cheap = bn("g.cheap.bn", conv("g.cheap", primary, out: 5, in: 5, kernel: 3, depthwise: true), channels: 5)
        let ghost = op("ghost", .slice(axis: 1, start: 0, end: 9), [op("g.cat", .concat(axis: 1), [primary, cheap])])
        let crop = op("crop", .slice(axis: 3, start: 0, end: 3), [ghost])
        let head = conv("head", crop, out: 6, in: 9)
        let flat = op("flatten", .flatten(axis: 1), [op("gap", .globalAvgPool, [head])])
        initializers["fc.weight"] = rng.gaussianTensor([3, 6], std: 0.5)
        initializers["fc.bias"] = rng.gaussianTensor([3], std: 0.5)
        _ = op("fc", .linear, [flat, "fc.weight", "fc.bias"])
        return Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 8, 8])], outputs: ["fc"], nodes: nodes,
                                  initializers: initializers))
    }

    /// A depthwise conv and its BatchNorm silenced at `indices` (bias and shift zero too).
    static func depthwise(_ conv: String, _ norm: String, _ indices: [Int]) -> [(initializer: String, axis: Int, index: Int)] {
        ["\(conv).weight", "\(conv).bias", "\(norm).scale", "\(norm).bias"].flatMap { name in indices.map { (name, 0, $0) } }
    }

    @Test func groupsFollowSlicesAndPermutations() throws {
        let model = Self.shuffleNetModel()
        let groups = try channelDependencyGroups(in: model.graph)
        let stem = F.group(of: "stem", in: groups)
        #expect(stem.isPrunable, "\(stem.notPrunableReasons)")
        #expect(stem.sourceLayers == ["stem"])
        // Stem channels 0..<4 go left and are spread over p1's even channels; 4..<8 feed u1.pw1.
        #expect(stem.members.contains(ChannelMember(value: "p1", mapping: ChannelMapping(start: 0, block: 1,
                                                                                     positions: [0, 2, 4, 6, nil, nil, nil, nil]))))
        #expect(stem.members.contains(ChannelMember(value: "left", mapping: ChannelMapping(start: 0, block: 1,
                                                                                       positions: [0, 1, 2, 3, nil, nil, nil, nil]))))
        let pw1 = stem.slices(.consumerInput).filter { $0.node == "u1.pw1" }
        #expect(pw1.map(\.mapping) == [ChannelMapping(start: 0, block: 1, positions: [nil, nil, nil, nil, 0, 1, 2, 3])])
        #expect(Set(stem.indexedAttributes.map(\.node)) == ["left", "right", "p1"])
        // The Ghost module's primary channels reach the slice twice (itself and through the cheap op).
        let ghost = F.group(of: "g.primary", in: groups)
        #expect(ghost.isPrunable)
        #expect(ghost.indexedAttributes.map(\.node) == ["ghost", "ghost"])
        #expect(ghost.members.filter { $0.value == "crop" }.map(\.mapping)
                    == [.identity, ChannelMapping(start: 0, block: 1, positions: [5, 6, 7, 8, nil])])
        #expect(groups.filter { !$0.isPrunable }.map(\.sourceLayers) == [["fc"]])
    }

    @Test func shuffleNetAndGhostModuleMatchTheirSilencedOriginal() throws {
        let model = Self.shuffleNetModel()
        let groups = try channelDependencyGroups(in: model.graph)
        let removal: [(layer: String, channels: [Int])] = [
            ("stem", [1, 5]), ("u1.pw1", [3]), ("u1.pw2", [2]), ("d.left.pw", [0]), ("d.right.pw1", [6]),
            ("d.right.pw2", [7]), ("g.primary", [4]),
        ]
        let result = try applyChannelPruning(model, removing: Dictionary(uniqueKeysWithValues: removal.map {
            (F.group(of: $0.layer, in: groups).id, $0.channels)
        }))
        var silence = [(initializer: String, axis: Int, index: Int)]()
        // Stem channel 1 is p1's channel 2 (read by the left depthwise conv); channel 5 only feeds u1.pw1.
        silence += F.filters("stem", [1, 5], in: model) + F.batchNorm("stem.bn", [1, 5])
        silence += Self.depthwise("d.left.dw", "d.left.dw.bn", [2])
        silence += F.filters("u1.pw1", [3], in: model) + F.batchNorm("u1.bn1", [3]) + Self.depthwise("u1.dw", "u1.dw.bn", [3])
        // u1.pw2's channel 2 is u1.cat's channel 6, p1's channel 5.
        silence += F.filters("u1.pw2", [2], in: model) + F.batchNorm("u1.bn2", [2]) + Self.depthwise("d.left.dw", "d.left.dw.bn", [5])
        silence += F.filters("d.left.pw", [0], in: model) + F.batchNorm("d.left.bn", [0])
        silence += F.filters("d.right.pw1", [6], in: model) + F.batchNorm("d.right.bn1", [6])
            + Self.depthwise("d.right.dw", "d.right.dw.bn", [6])
        silence += F.filters("d.right.pw2", [7], in: model) + F.batchNorm("d.right.bn2", [7])
        silence += F.filters("g.primary", [4], in: model) + F.batchNorm("g.primary.bn", [4])
            + Self.depthwise("g.cheap", "g.cheap.bn", [4])
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)

        let ops = Dictionary(uniqueKeysWithValues: result.model.graph.nodes.map { ($0.name, $0.op) })
        #expect(ops["left"] == .slice(axis: 1, start: 0, end: 3))
        #expect(ops["right"] == .slice(axis: 1, start: 3, end: 6))
        // p1's order [0, 4, 1, 5, 2, 6, 3, 7] loses u1.cat's channels 1 (stem 1) and 6 (u1.pw2 2);
        // the rest, [0, 4, 5, 2, 3, 7], renumbered over the kept 0, 2, 3, 4, 5, 7.
        #expect(ops["p1"] == .channelPermute(order: [0, 3, 4, 1, 2, 5]))
        #expect(ops["ghost"] == .slice(axis: 1, start: 0, end: 8))
        #expect(ops["crop"] == .slice(axis: 3, start: 0, end: 3))
        #expect(result.model.graph.initializers["d.left.dw.weight"]!.shape == [6, 1, 3, 3])
        #expect(result.model.graph.initializers["head.weight"]!.shape == [6, 8, 1, 1])
        #expect(result.record.macsAfter < result.record.macsBefore)
    }

    @Test func aSliceLeftWithoutChannelsIsRefused() throws {
        let model = Self.shuffleNetModel()
        let stem = F.group(of: "stem", in: try channelDependencyGroups(in: model.graph))
        #expect(throws: StructuredPruningError.valueWouldBeEmpty("left")) {
            try applyChannelPruning(model, removing: [stem.id: [0, 1, 2, 3]])
        }
    }

    @Test func slicingFlattenedFeaturesIsRefusedWithTheOpNamed() throws {
        let nodes = [
            Node(name: "c", op: .conv2d(Conv2d()), inputs: ["x", "c.weight"], output: "c"),
            Node(name: "flatten", op: .flatten(axis: 1), inputs: ["c"], output: "flatten"),
            Node(name: "cut", op: .slice(axis: 1, start: 0, end: 10), inputs: ["flatten"], output: "cut"),
            Node(name: "fc", op: .linear, inputs: ["cut", "fc.weight"], output: "fc"),
        ]
        var rng = SeededGenerator(seed: 1)
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 2, 2])], outputs: ["fc"], nodes: nodes,
                          initializers: ["c.weight": rng.gaussianTensor([4, 2, 1, 1]), "fc.weight": rng.gaussianTensor([3, 10])])
        let c = F.group(of: "c", in: try channelDependencyGroups(in: graph))
        #expect(c.notPrunableReasons == ["Slice 'cut' indexes a flattened value's features, not whole channels"])
    }
}
