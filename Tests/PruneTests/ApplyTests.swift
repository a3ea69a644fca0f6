import Testing
import Compress
@testable import Prune

/// The pruned model computes exactly what the original computes with the
/// removed channels silenced (their filters, biases, BatchNorm scale and
/// shift set to zero, so they carry exact zeros). The silencing is listed by
/// hand from the architecture, independently of the dependency analysis.
@Suite struct ApplyTests {
    typealias F = StructuredFixtures

    @Test func residualNetworkMatchesItsSilencedOriginal() throws {
        let model = F.withRandomBatchNorm(.resnet20)
        let groups = try channelDependencyGroups(in: model.graph)
        let removal: [(layer: String, channels: [Int])] = [
            ("conv1", [0, 5, 15]), ("layer1.1.conv1", [2, 3]), ("layer2.0.shortcut.conv", [1, 31]),
            ("layer2.0.conv1", [7]), ("layer3.1.conv2", [0, 10, 63]), ("layer3.2.conv1", [4]),
        ]
        let result = try applyChannelPruning(model, removing: Dictionary(uniqueKeysWithValues: removal.map {
            (F.group(of: $0.layer, in: groups).id, $0.channels)
        }))
        var silence = [(initializer: String, axis: Int, index: Int)]()
        // Stage 1: the stem and every block's second conv + BN feed the same stream through the Adds.
        silence += F.filters("conv1", [0, 5, 15], in: model) + F.batchNorm("bn1", [0, 5, 15])
        // Stage 2 and 3 streams: the projection shortcut is silenced too.
        for (stage, channels) in [(1, [0, 5, 15]), (2, [1, 31]), (3, [0, 10, 63])] {
            for block in 0..<3 {
                silence += F.filters("layer\(stage).\(block).conv2", channels, in: model)
                silence += F.batchNorm("layer\(stage).\(block).bn2", channels)
            }
            if stage > 1 {
                silence += F.filters("layer\(stage).0.shortcut.conv", channels, in: model)
                silence += F.batchNorm("layer\(stage).0.shortcut.bn", channels)
            }
        }
        for (block, channels) in [("layer1.1", [2, 3]), ("layer2.0", [7]), ("layer3.2", [4])] {
            silence += F.filters("\(block).conv1", channels, in: model) + F.batchNorm("\(block).bn1", channels)
        }
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)

        let initializers = result.model.graph.initializers
        #expect(initializers["conv1.weight"]!.shape == [13, 1, 3, 3])
        #expect(initializers["layer1.1.conv1.weight"]!.shape == [14, 13, 3, 3])
        #expect(initializers["layer1.1.conv2.weight"]!.shape == [13, 14, 3, 3])
        #expect(initializers["layer2.0.shortcut.conv.weight"]!.shape == [30, 13, 1, 1])
        #expect(initializers["layer2.0.shortcut.bn.var"]!.shape == [30])
        #expect(initializers["fc.weight"]!.shape == [10, 61])
        #expect(result.model.graph.nodes.map(\.name) == model.graph.nodes.map(\.name))
        #expect(result.record.macsAfter < result.record.macsBefore)
        #expect(result.record.parametersAfter == result.model.graph.parameterCount)
    }

    @Test func concatenatedBranchesMatchTheirSilencedOriginal() throws {
        let model = F.concatModel()
        let groups = try channelDependencyGroups(in: model.graph)
        let result = try applyChannelPruning(model, removing: [
            F.group(of: "a", in: groups).id: [1], F.group(of: "b", in: groups).id: [0, 4], F.group(of: "c", in: groups).id: [2],
        ])
        let silence = F.filters("a", [1], in: model) + F.batchNorm("cat.bn", [1])
            + F.filters("b", [0, 4], in: model) + F.batchNorm("b.bn", [0, 4]) + F.batchNorm("cat.bn", [4, 8])
            + F.filters("c", [2], in: model)
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)
        let initializers = result.model.graph.initializers
        #expect(initializers["cat.bn.scale"]!.shape == [7])
        #expect(initializers["c.weight"]!.shape == [4, 7, 3, 3])
        #expect(initializers["head2.weight"]!.shape == [2, 7 * 16])
        #expect(initializers["fc.weight"]!.shape == [3, 4])
    }

    @Test func flattenIntoLinearMatchesItsSilencedOriginal() throws {
        let model = Architecture.lenet5.build(seed: 5)
        let groups = try channelDependencyGroups(in: model.graph)
        let fc1 = [0, 17, 250, 499]
        let result = try applyChannelPruning(model, removing: [
            F.group(of: "conv1", in: groups).id: [0, 7, 19], F.group(of: "conv2", in: groups).id: [3, 49],
            F.group(of: "fc1", in: groups).id: fc1,
        ])
        let silence = F.filters("conv1", [0, 7, 19], in: model) + F.filters("conv2", [3, 49], in: model)
            + F.filters("fc1", fc1, in: model)
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)
        #expect(result.model.graph.initializers["fc1.weight"]!.shape == [496, 48 * 16])
        #expect(result.model.graph.initializers["fc2.weight"]!.shape == [10, 496])
        let conv2 = result.record.layers.first { $0.layer == "conv2" }!
        #expect((conv2.outputChannelsBefore, conv2.outputChannelsAfter) == (50, 48))
        #expect((conv2.inputChannelsBefore, conv2.inputChannelsAfter) == (20, 17))
        #expect(conv2.macsAfter == 8 * 8 * 48 * 17 * 25)
        #expect(conv2.parametersAfter == 48 * 17 * 25 + 48)
    }

    @Test func vggWithBatchNormMatchesItsSilencedOriginal() throws {
        let model = F.withRandomBatchNorm(.vggSmall)
        let groups = try channelDependencyGroups(in: model.graph)
        let removal: [(String, [Int])] = [("conv1", [0, 31]), ("conv4", [5, 6, 7]), ("conv6", [100])]
        let result = try applyChannelPruning(model, removing: Dictionary(uniqueKeysWithValues: removal.map {
            (F.group(of: $0.0, in: groups).id, $0.1)
        }))
        let silence = removal.flatMap { layer, channels in
            F.filters(layer, channels, in: model) + F.batchNorm("bn" + layer.dropFirst(4), channels)
        }
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)
        #expect(result.model.graph.initializers["fc.weight"]!.shape == [10, 127])
    }

    @Test func depthwiseNetworkMatchesItsSilencedOriginal() throws {
        let model = F.withRandomBatchNorm(.mobilenetSmall)
        let groups = try channelDependencyGroups(in: model.graph)
        let result = try applyChannelPruning(model, removing: [
            F.group(of: "conv1", in: groups).id: [0, 3], F.group(of: "block2.pw", in: groups).id: [5],
            F.group(of: "block4.pw", in: groups).id: [100, 127],
        ])
        var silence = F.filters("conv1", [0, 3], in: model) + F.batchNorm("bn1", [0, 3])
        silence += F.filters("block1.dw", [0, 3], in: model) + F.batchNorm("block1.bn1", [0, 3])
        silence += F.filters("block2.pw", [5], in: model) + F.batchNorm("block2.bn2", [5])
        silence += F.filters("block3.dw", [5], in: model) + F.batchNorm("block3.bn1", [5])
        silence += F.filters("block4.pw", [100, 127], in: model) + F.batchNorm("block4.bn2", [100, 127])
        try F.expectSameOutputs(result.model, F.silencing(model, silence), original: model)
        let dw = result.model.graph.nodes.first { $0.name == "block1.dw" }!
        #expect(dw.op == .conv2d(Conv2d(stride: .square(2), padding: .same(1), groups: 14)))
        #expect(result.model.graph.initializers["block1.dw.weight"]!.shape == [14, 1, 3, 3])
        #expect(result.model.graph.initializers["block3.dw.weight"]!.shape == [63, 1, 3, 3])
    }

    @Test func emptyingOrUnprunableGroupsAreRefused() throws {
        let model = Architecture.lenet5.build(seed: 1)
        let groups = try channelDependencyGroups(in: model.graph)
        let conv1 = F.group(of: "conv1", in: groups)
        #expect(throws: StructuredPruningError.groupWouldBeEmpty(group: conv1.id, sourceLayers: ["conv1"], channels: 20)) {
            try applyChannelPruning(model, removing: [conv1.id: Array(0..<20)])
        }
        let fc2 = F.group(of: "fc2", in: groups)
        #expect(throws: StructuredPruningError.groupNotPrunable(group: fc2.id, sourceLayers: ["fc2"],
                                                               reasons: ["reaches graph output 'fc2'"])) {
            try applyChannelPruning(model, removing: [fc2.id: [0]])
        }
        #expect(throws: StructuredPruningError.channelOutOfRange(group: conv1.id, channel: 20, channels: 20)) {
            try applyChannelPruning(model, removing: [conv1.id: [20]])
        }
        #expect(throws: StructuredPruningError.duplicateChannel(group: conv1.id, channel: 2)) {
            try applyChannelPruning(model, removing: [conv1.id: [2, 2]])
        }
        #expect(throws: StructuredPruningError.unknownGroup(9)) { try applyChannelPruning(model, removing: [9: [0]]) }
    }

    @Test func tensorsLoseIndicesAlongAnyAxis() throws {
        let t = Tensor(shape: [2, 3, 2], floats: (0..<12).map(Float.init))
        #expect(try t.removing([1], alongAxis: 1) == Tensor(shape: [2, 2, 2], floats: [0, 1, 4, 5, 6, 7, 10, 11]))
        #expect(try t.removing([0], alongAxis: 0) == Tensor(shape: [1, 3, 2], floats: [6, 7, 8, 9, 10, 11]))
        let bytes = try Tensor(shape: [4], storage: .int8([1, 2, 3, 4]))
        #expect(try bytes.removing([0, 2], alongAxis: 0) == Tensor(shape: [2], storage: .int8([2, 4])))
    }
}
