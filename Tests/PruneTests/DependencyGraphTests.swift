import Testing
import Compress
@testable import Prune

@Suite struct DependencyGraphTests {
    typealias F = StructuredFixtures

    /// ResNet-20 by hand: the Adds tie each stage's stem (conv1 or the
    /// projection shortcut) to every block's conv2, each block's conv1 is
    /// alone, and the classifier reaches the graph output.
    @Test func resnet20GroupsFollowTheResidualStreams() throws {
        let groups = try channelDependencyGroups(in: Architecture.resnet20.build(seed: 1).graph)
        let stages: [Set<String>] = [
            ["conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"],
            ["layer2.0.conv2", "layer2.0.shortcut.conv", "layer2.1.conv2", "layer2.2.conv2"],
            ["layer3.0.conv2", "layer3.0.shortcut.conv", "layer3.1.conv2", "layer3.2.conv2"],
        ]
        let blockConv1s = (1...3).flatMap { s in (0..<3).map { ["layer\(s).\($0).conv1"] } }
        let expected = Set(stages + blockConv1s.map(Set.init) + [["fc"]])
        #expect(Set(groups.map { Set($0.sourceLayers) }) == expected)
        #expect(groups.count == 13)
        #expect(groups.map(\.id) == Array(0..<13))
        for group in groups {
            #expect(group.isPrunable == !group.sourceLayers.contains("fc"), "\(group.sourceLayers) \(group.notPrunableReasons)")
        }
        for (stage, width) in zip(stages, [16, 32, 64]) {
            #expect(groups.first { Set($0.sourceLayers) == stage }!.channels == width)
        }
    }

    @Test func resnet20StageOneGroupListsEverySlice() throws {
        let groups = try channelDependencyGroups(in: Architecture.resnet20.build(seed: 1).graph)
        let stage1 = F.group(of: "conv1", in: groups)
        let readers = Set(stage1.slices(.consumerInput).map(\.node))
        #expect(readers == ["layer1.0.conv1", "layer1.1.conv1", "layer1.2.conv1", "layer2.0.conv1", "layer2.0.shortcut.conv"])
        #expect(stage1.slices(.consumerInput).allSatisfy { $0.axis == 1 && $0.mapping == .identity })
        let norms = ["bn1", "layer1.0.bn2", "layer1.1.bn2", "layer1.2.bn2"]
        for role in [SliceRole.normScale, .normShift, .normMean, .normVariance] {
            #expect(Set(stage1.slices(role).map(\.node)) == Set(norms))
        }
        #expect(Set(stage1.slices(.filter).map(\.initializer)) == Set(stage1.sourceLayers.map { "\($0).weight" }))
        #expect(stage1.slices(.bias).isEmpty)
        for value in ["relu1", "layer1.0.add", "layer1.0.relu2", "layer1.2.bn2", "layer1.2.relu2"] {
            #expect(stage1.valueNames.contains(value), "\(value)")
        }
        #expect(!stage1.valueNames.contains("layer1.0.relu1"))

        let stage3 = F.group(of: "layer3.0.shortcut.conv", in: groups)
        #expect(stage3.slices(.consumerInput).map(\.node) == ["layer3.1.conv1", "layer3.2.conv1", "fc"])
        #expect(stage3.slices(.consumerInput).allSatisfy { $0.mapping == .identity })  // GlobalAvgPool leaves 1x1
        let block = F.group(of: "layer2.1.conv1", in: groups)
        #expect(block.sourceLayers == ["layer2.1.conv1"])
        #expect(block.slices(.consumerInput).map(\.node) == ["layer2.1.conv2"])
        #expect(Set(block.slices(.normScale).map(\.node)) == ["layer2.1.bn1"])
    }

    @Test func concatShiftsEachBranchByItsOffset() throws {
        let groups = try channelDependencyGroups(in: F.concatModel().graph)
        #expect(groups.map(\.sourceLayers) == [["a"], ["b"], ["c"], ["fc"], ["head2"]])
        #expect(groups.map(\.isPrunable) == [true, true, true, false, false])
        let (a, b) = (groups[0], groups[1])
        #expect(a.slices(.normScale).map { [$0.node, "\($0.mapping.start)"] } == [["cat.bn", "0"]])
        #expect(Set(b.slices(.normScale).map { "\($0.node)@\($0.mapping.start)" }) == ["b.bn@0", "cat.bn@4"])
        let bReaders = b.slices(.consumerInput).map { "\($0.initializer)@\($0.mapping.start)x\($0.mapping.block)" }
        #expect(Set(bReaders) == ["c.weight@4x1", "head2.weight@64x16"])
        let aReaders = a.slices(.consumerInput).map { "\($0.initializer)@\($0.mapping.start)x\($0.mapping.block)" }
        #expect(Set(aReaders) == ["c.weight@0x1", "head2.weight@0x16"])
        #expect(b.members.contains(ChannelMember(value: "cat", mapping: ChannelMapping(start: 4, block: 1))))
        #expect(b.members.contains(ChannelMember(value: "flat2", mapping: ChannelMapping(start: 64, block: 16))))
    }

    @Test func flattenMapsAChannelToItsBlockOfFeatures() throws {
        let groups = try channelDependencyGroups(in: Architecture.lenet5.build(seed: 1).graph)
        #expect(groups.map(\.sourceLayers) == [["conv1"], ["conv2"], ["fc1"], ["fc2"]])
        let fc1Columns = groups[1].slices(.consumerInput)
        #expect(fc1Columns.count == 1)
        #expect(fc1Columns[0].initializer == "fc1.weight" && fc1Columns[0].axis == 1)
        #expect(fc1Columns[0].mapping == ChannelMapping(start: 0, block: 16))
        #expect(fc1Columns[0].mapping.indices(ofChannel: 3) == 48..<64)
        #expect(groups[2].slices(.consumerInput).map(\.initializer) == ["fc2.weight"])
        #expect(groups[3].notPrunableReasons == ["reaches graph output 'fc2'"])
    }

    @Test func depthwiseConvolutionFollowsItsInput() throws {
        let groups = try channelDependencyGroups(in: Architecture.mobilenetSmall.build(seed: 1).graph)
        #expect(groups.map(\.sourceLayers) == [["conv1"], ["block1.pw"], ["block2.pw"], ["block3.pw"], ["block4.pw"], ["fc"]])
        let stem = groups[0]
        #expect(stem.slices(.depthwiseFilter).map(\.node) == ["block1.dw"])
        #expect(stem.slices(.depthwiseFilter)[0].axis == 0)
        #expect(Set(stem.slices(.normScale).map(\.node)) == ["bn1", "block1.bn1"])
        #expect(stem.slices(.consumerInput).map(\.node) == ["block1.pw"])
        #expect(groups[4].slices(.consumerInput).map(\.node) == ["fc"])
        #expect(groups.dropLast().allSatisfy { $0.isPrunable })
    }

    @Test func reshapeSoftmaxAndGroupedConvolutionsAreNotPrunable() throws {
        var reshape = TinyGraph()
        reshape.conv("a", "x", out: 4)
        reshape.add(Node(name: "r", op: .reshape(shape: [0, -1]), inputs: ["a"], output: "r"))
        reshape.linear("fc", "r", out: 3, in: 4 * 6 * 6)
        #expect(try channelDependencyGroups(in: reshape.graph)[0].notPrunableReasons == ["read by Reshape 'r'"])

        var softmax = TinyGraph()
        softmax.conv("a", "x", out: 4)
        softmax.add(Node(name: "s", op: .softmax(axis: 1), inputs: ["a"], output: "s"))
        softmax.conv("b", "s", out: 2)
        let softmaxGroups = try channelDependencyGroups(in: softmax.graph)
        #expect(softmaxGroups[0].notPrunableReasons == ["read by Softmax 's' over channels"])
        #expect(softmaxGroups[1].isPrunable == false)

        var grouped = TinyGraph()
        grouped.conv("a", "x", out: 4)
        grouped.conv("g", "a", out: 4, groups: 2)
        grouped.conv("b", "g", out: 2)
        let groupedGroups = try channelDependencyGroups(in: grouped.graph)
        #expect(groupedGroups.map(\.sourceLayers) == [["a"], ["g"], ["b"]])
        #expect(groupedGroups[0].notPrunableReasons == ["read by grouped convolution 'g' (groups 2)"])
        #expect(groupedGroups[1].notPrunableReasons == ["output of grouped convolution 'g' (groups 2)"])
    }

    @Test func addingAGraphInputIsNotPrunable() throws {
        var tiny = TinyGraph()
        tiny.conv("a", "x", out: 4)
        tiny.add(Node(name: "sum", op: .add, inputs: ["a", "x"], output: "sum"))
        tiny.conv("b", "sum", out: 2)
        let groups = try channelDependencyGroups(in: tiny.graph)
        #expect(groups[0].isPrunable == false)
        #expect(groups[0].notPrunableReasons.first?.contains("cannot be matched") == true)
    }

    @Test func broadcastOperandsPassThroughAndSharedWeightsAreNotPrunable() throws {
        var tiny = TinyGraph()
        tiny.conv("a", "x", out: 4)
        tiny.initializers["k"] = .filled([1, 1, 1], with: 2)
        tiny.add(Node(name: "scaled", op: .mul, inputs: ["a", "k"], output: "scaled"))
        tiny.conv("b", "scaled", out: 2)
        tiny.initializers["shared.weight"] = .filled([2, 2, 1, 1], with: 1)
        tiny.add(Node(name: "b2", op: .conv2d(Conv2d()), inputs: ["b", "shared.weight"], output: "b2"))
        tiny.add(Node(name: "b3", op: .conv2d(Conv2d()), inputs: ["b2", "shared.weight"], output: "b3"))
        let groups = try channelDependencyGroups(in: tiny.graph)
        #expect(groups[0].isPrunable, "\(groups[0].notPrunableReasons)")
        #expect(groups[0].valueNames == ["a", "scaled"])
        #expect(groups[1].notPrunableReasons == ["initializer 'shared.weight' is read by 2 nodes"])
    }
}

/// A small graph over input `x` `[4, 6, 6]`, built node by node; the last node's output is the graph output.
struct TinyGraph {
    var nodes: [Node] = []
    var initializers: [String: Tensor] = [:]
    private var channels = ["x": 4]

    /// A 1x1 convolution with weights of 0.5 and no bias.
    mutating func conv(_ name: String, _ input: String, out: Int, groups: Int = 1) {
        initializers["\(name).weight"] = .filled([out, channels[input]! / groups, 1, 1], with: 0.5)
        add(Node(name: name, op: .conv2d(Conv2d(groups: groups)), inputs: [input, "\(name).weight"], output: name), channels: out)
    }

    mutating func linear(_ name: String, _ input: String, out: Int, in features: Int) {
        initializers["\(name).weight"] = .filled([out, features], with: 0.1)
        add(Node(name: name, op: .linear, inputs: [input, "\(name).weight"], output: name), channels: out)
    }

    /// Appends `node`; its output has `channels` channels (default: its first input's).
    mutating func add(_ node: Node, channels: Int? = nil) {
        nodes.append(node)
        self.channels[node.output] = channels ?? self.channels[node.inputs[0]]
    }

    var graph: Graph {
        Graph(inputs: [GraphInput(name: "x", sampleShape: [4, 6, 6])], outputs: [nodes.last!.output],
              nodes: nodes, initializers: initializers)
    }
}
