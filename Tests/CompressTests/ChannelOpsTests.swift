import Testing
import SIMDKernels
@testable import Compress

/// `Op.slice` and `Op.channelPermute` (ShuffleNetV2's split and channel
/// shuffle): hand-computed reference values, the runtime kernels (plain and
/// NCHW8c) against the reference on seeded inputs within
/// `1e-4 * (1 + max|expected|)`, finite-difference gradients, shape errors and
/// the native file.
@Suite struct ChannelOpsTests {
    typealias F = RuntimeFixtures
    typealias G = GradientCheck

    /// The channel shuffle of `channels` in `groups` groups.
    static func shuffle(_ channels: Int, groups: Int) -> [Int] {
        (0..<channels).map { i in (i % groups) * (channels / groups) + i / groups }
    }

    // MARK: Reference

    @Test func sliceTakesTheRangeAlongItsAxis() throws {
        let x = Tensor(shape: [1, 3, 2, 2], floats: (0..<12).map(Float.init))
        let channels = try ReferenceEvaluator.run(F.singleOp(.slice(axis: 1, start: 1, end: 3), sample: [3, 2, 2]), inputs: ["x": x])["y"]!
        #expect(channels.shape == [1, 2, 2, 2])
        #expect(channels.floats == [4, 5, 6, 7, 8, 9, 10, 11])
        let columns = try ReferenceEvaluator.run(F.singleOp(.slice(axis: -1, start: 1, end: 2), sample: [3, 2, 2]), inputs: ["x": x])["y"]!
        #expect(columns.shape == [1, 3, 2, 1])
        #expect(columns.floats == [1, 3, 5, 7, 9, 11])
    }

    @Test func channelPermuteMovesWholePlanes() throws {
        // Shuffle of 4 channels in 2 groups: order [0, 2, 1, 3].
        #expect(Self.shuffle(4, groups: 2) == [0, 2, 1, 3])
        #expect(Self.shuffle(6, groups: 3) == [0, 2, 4, 1, 3, 5])
        let x = Tensor(shape: [2, 4, 1, 2], floats: (0..<16).map(Float.init))
        let y = try ReferenceEvaluator.run(F.singleOp(.channelPermute(order: [0, 2, 1, 3]), sample: [4, 1, 2]),
                                           inputs: ["x": x])["y"]!
        #expect(y.floats == [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15])
    }

    // MARK: Runtime

    @Test(arguments: [(1, 2, 5), (1, 0, 3), (2, 1, 4), (3, 0, 1), (-1, 2, 3)])
    func plainSliceMatchesReference(axis: Int, start: Int, end: Int) throws {
        let graph = F.singleOp(.slice(axis: axis, start: start, end: end), sample: [6, 5, 4])
        #expect(try F.sessionMatchesReference(graph, batch: 2))
    }

    /// A blocked conv output sliced along channels: at a block boundary the
    /// slice stays blocked (the last block's lanes past the range zeroed, so a
    /// following blocked conv reads zeros there); inside a block it reads the
    /// plain layout through a reorder.
    @Test(arguments: [(0, 5), (8, 21), (16, 24), (8, 24), (4, 13), (3, 4)])
    func channelSliceOfBlockedValue(start: Int, end: Int) throws {
        let nodes = [
            Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w"], output: "c"),
            Node(name: "slice", op: .slice(axis: 1, start: start, end: end), inputs: ["c"], output: "s"),
            Node(name: "next", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["s", "w2"], output: "y"),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [8, 6, 5])], outputs: ["y", "s"], nodes: nodes,
                          initializers: ["w": F.weights([24, 8, 3, 3], seed: 2), "w2": F.weights([9, end - start, 3, 3], seed: 3)])
        #expect(try F.sessionMatchesReference(graph, batch: 2))
        let plan = try ExecutionPlan(graph: graph)
        let blocked = plan.steps.contains { $0.kernel is BlockedChannelSliceKernel }
        #expect(blocked == (cpuSupportsBlockedKernels && start % 8 == 0))
        #expect(plan.steps.contains { $0.kernel is SliceKernel } == !blocked)
    }

    @Test(arguments: [(16, 2), (12, 3), (5, 5), (24, 4)])
    func channelPermuteMatchesReferenceInBothLayouts(channels: Int, groups: Int) throws {
        let order = Self.shuffle(channels, groups: groups)
        let plain = F.singleOp(.channelPermute(order: order), sample: [channels, 3, 4])
        #expect(try F.sessionMatchesReference(plain, batch: 2))
        let nodes = [
            Node(name: "conv", op: .conv2d(Conv2d()), inputs: ["x", "w"], output: "c"),
            Node(name: "shuffle", op: .channelPermute(order: order), inputs: ["c"], output: "p"),
            Node(name: "next", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["p", "w2"], output: "y"),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [6, 5, 4])], outputs: ["y", "p"], nodes: nodes,
                          initializers: ["w": F.weights([channels, 6, 1, 1], seed: 2), "w2": F.weights([7, channels, 3, 3], seed: 3)])
        #expect(try F.sessionMatchesReference(graph, batch: 2))
        let plan = try ExecutionPlan(graph: graph)
        let permute = plan.steps.first { $0.node == "shuffle" }!.kernel as! ChannelPermuteKernel
        #expect(permute.layout == (cpuSupportsBlockedKernels ? .blocked : .plain))
    }

    // MARK: Backward

    @Test(arguments: [(1, 1, 3), (2, 0, 2), (3, 1, 4)])
    func sliceGradient(axis: Int, start: Int, end: Int) throws {
        let nodes = [
            Node(name: "tanh", op: .tanh, inputs: ["x"], output: "t"),
            Node(name: "slice", op: .slice(axis: axis, start: start, end: end), inputs: ["t"], output: "s"),
            Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["s", "w"], output: "y"),
        ]
        let channels = axis == 1 ? end - start : 4
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [4, 5, 5])], outputs: ["y"], nodes: nodes,
                          initializers: ["w": F.weights([3, channels, 3, 3], seed: 2)])
        let result = try G.run(graph, input: G.gaussian([2, 4, 5, 5], seed: 1))
        #expect(result.worst < 2e-3, "\(result)")
    }

    /// Both halves of a split read by different layers and joined again: each
    /// input channel's gradient comes from exactly one slice.
    @Test func splitAndShuffleGradient() throws {
        let nodes = [
            Node(name: "left", op: .slice(axis: 1, start: 0, end: 3), inputs: ["x"], output: "l"),
            Node(name: "right", op: .slice(axis: 1, start: 3, end: 6), inputs: ["x"], output: "r"),
            Node(name: "conv", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["r", "w"], output: "c"),
            Node(name: "cat", op: .concat(axis: 1), inputs: ["l", "c"], output: "j"),
            Node(name: "shuffle", op: .channelPermute(order: Self.shuffle(6, groups: 2)), inputs: ["j"], output: "p"),
            Node(name: "scale", op: .mul, inputs: ["p", "k"], output: "y"),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [6, 4, 4])], outputs: ["y"], nodes: nodes,
                          initializers: ["w": F.weights([3, 3, 3, 3], seed: 2),
                                         "k": Tensor(shape: [6, 1, 1], floats: [1, 2, 3, 4, 5, 6])])
        let result = try G.run(graph, input: G.gaussian([2, 6, 4, 4], seed: 1))
        #expect(result.worst < 2e-3, "\(result)")
    }

    // MARK: Shapes and the native file

    @Test func shapeInferenceRejectsBadAttributes() throws {
        func shape(_ op: Op) throws -> [Int]? { try F.singleOp(op, sample: [4, 3, 3]).inferShapes(batch: 2)["y"] }
        #expect(try shape(.slice(axis: 1, start: 1, end: 3)) == [2, 2, 3, 3])
        #expect(try shape(.channelPermute(order: [3, 2, 1, 0])) == [2, 4, 3, 3])
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "slice 2..<2 is empty or outside 0..<4 along axis 1")) {
            try shape(.slice(axis: 1, start: 2, end: 2))
        }
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "slice 1..<5 is empty or outside 0..<4 along axis 1")) {
            try shape(.slice(axis: 1, start: 1, end: 5))
        }
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "slice axis 4 out of range for [2, 4, 3, 3]")) {
            try shape(.slice(axis: 4, start: 0, end: 1))
        }
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "slice along axis 0, the batch, is not supported")) {
            try shape(.slice(axis: -4, start: 0, end: 1))
        }
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "channel order [0, 1, 1, 2] is not a permutation of 0..<4")) {
            try shape(.channelPermute(order: [0, 1, 1, 2]))
        }
        #expect(throws: GraphError.invalidAttribute(node: "op", detail: "channel order [0, 1, 2] is not a permutation of 0..<4")) {
            try shape(.channelPermute(order: [0, 1, 2]))
        }
    }

    @Test func nativeFileRoundTrip() throws {
        let nodes = [
            Node(name: "slice", op: .slice(axis: 1, start: 2, end: 7), inputs: ["x"], output: "s"),
            Node(name: "rows", op: .slice(axis: -2, start: 0, end: 1), inputs: ["s"], output: "r"),
            Node(name: "shuffle", op: .channelPermute(order: [4, 0, 3, 1, 2]), inputs: ["r"], output: "y"),
        ]
        let model = Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [8, 2, 2])], outputs: ["y"], nodes: nodes,
                                       initializers: [:]))
        let decoded = try ModelFile.decode(try ModelFile.encode(model))
        #expect(decoded == model)
        #expect(decoded.graph.nodes.map(\.op) == nodes.map(\.op))
    }

    // MARK: ONNX

    /// ShuffleNetV2's unit as torch exports it (`Tests/onnx/make_fixtures.py`): the Split becomes two
    /// slices, the Reshape -> Transpose -> Reshape one channel permutation, and the outputs match onnxruntime's.
    @Test func shuffleUnitImportsAsSlicesAndOnePermutation() throws {
        let model = try ONNXImportTests().expectGolden("channel_shuffle")
        #expect(model.graph.nodes.map(\.op.kind) == ["Slice", "Slice", "Conv2d", "ReLU", "Concat", "ChannelPermute", "Slice"])
        #expect(model.graph.nodes[0].op == .slice(axis: 1, start: 0, end: 4))
        #expect(model.graph.nodes[1].op == .slice(axis: 1, start: 4, end: 8))
        #expect(model.graph.nodes[5].op == .channelPermute(order: Self.shuffle(8, groups: 2)))
        // Slice starts -7 and ends INT64_MAX along 8 channels: 1..<8.
        #expect(model.graph.nodes[6].op == .slice(axis: 1, start: 1, end: 8))
        // Any batch size runs.
        var rng = SeededGenerator(seed: 3)
        let x = rng.uniformTensor([3, 8, 4, 4])
        let fast = try Session(model: model).run(inputs: ["x": x])
        let reference = try ReferenceEvaluator.run(model.graph, inputs: ["x": x])
        #expect(F.isClose(fast["y"]!, reference["y"]!))
    }

    /// Export writes Slice with one-element starts/ends/axes and the permutation as Gather on axis 1;
    /// importing that file gives the same ops back.
    @Test func exportWritesSliceAndGatherAndImportsThemBack() throws {
        let nodes = [
            Node(name: "slice", op: .slice(axis: 1, start: 2, end: 7), inputs: ["x"], output: "s"),
            Node(name: "shuffle", op: .channelPermute(order: [4, 0, 3, 1, 2]), inputs: ["s"], output: "p"),
            Node(name: "rows", op: .slice(axis: 2, start: 1, end: 3), inputs: ["p"], output: "y"),
        ]
        let model = Model(graph: Graph(inputs: [GraphInput(name: "x", sampleShape: [8, 3, 2])], outputs: ["y"], nodes: nodes,
                                       initializers: [:]))
        let bytes = try ONNXExporter.encode(model)
        let graph = try #require(try ONNXProtoReader.model(bytes).graph)
        #expect(graph.nodes.map(\.opType) == ["Slice", "Gather", "Slice"])
        guard case .int(1)? = graph.nodes[1].attributes["axis"] else { Issue.record("Gather axis is not 1"); return }
        let constants = Dictionary(uniqueKeysWithValues: graph.initializers.map { ($0.name, $0) })
        #expect(graph.nodes[0].inputs.dropFirst().map { constants[$0]!.tensor.int64s } == [[2], [7], [1]])
        #expect(constants[graph.nodes[1].inputs[1]]!.tensor.int64s == [4, 0, 3, 1, 2])
        let imported = try ONNXImporter.decode(bytes)
        #expect(imported.graph.nodes.map(\.op) == nodes.map(\.op))
    }
}
