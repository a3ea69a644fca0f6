import Testing
import Compress
@testable import Prune

@Suite struct SelectionTests {
    typealias F = StructuredFixtures

    /// Scores `0, 1, 2, ...` per group, shifted by `offset[id]`.
    private func rampImportance(_ groups: [ChannelGroup], offset: [Int: Float] = [:]) -> [Int: [Float]] {
        Dictionary(uniqueKeysWithValues: groups.filter(\.isPrunable).map { g in
            (g.id, (0..<g.channels).map { Float($0) + offset[g.id, default: 0] })
        })
    }

    @Test func perLayerRatiosRemoveTheLeastImportantChannels() throws {
        let graph = Architecture.lenet5.build(seed: 1).graph
        let groups = try channelDependencyGroups(in: graph)
        var importance = rampImportance(groups)
        importance[0] = (0..<20).map { Float(20 - $0) }  // conv1: channel 19 is least important
        let removal = try selectChannelsToRemove(in: graph, groups: groups, importance: importance,
                                                 target: .perLayer(["conv1": 0.25, "fc1": 0.3]))
        #expect(removal == [0: [15, 16, 17, 18, 19], 2: Array(0..<150)])
    }

    @Test func aRatioThatEmptiesAGroupIsRefused() throws {
        let graph = Architecture.resnet20.build(seed: 1).graph
        let groups = try channelDependencyGroups(in: graph)
        let stage1 = F.group(of: "conv1", in: groups)
        #expect(throws: StructuredPruningError.groupWouldBeEmpty(group: stage1.id, sourceLayers: stage1.sourceLayers, channels: 16)) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups),
                                       target: .perLayer(["layer1.2.conv2": 1.0]))
        }
        let fc = F.group(of: "fc", in: groups)
        #expect(throws: StructuredPruningError.groupNotPrunable(group: fc.id, sourceLayers: ["fc"], reasons: ["reaches graph output 'fc'"])) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups), target: .perLayer(["fc": 0.5]))
        }
        #expect(throws: StructuredPruningError.conflictingRatios(group: stage1.id, layers: ["conv1", "layer1.0.conv2"])) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups),
                                       target: .perLayer(["conv1": 0.5, "layer1.0.conv2": 0.25]))
        }
        #expect(throws: StructuredPruningError.unknownLayer("bn1")) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups), target: .perLayer(["bn1": 0.5]))
        }
        #expect(throws: StructuredPruningError.invalidRatio(layer: nil, ratio: 1)) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups), target: .global(1))
        }
    }

    @Test func globalRatioRanksAllGroupsAndNeverEmptiesOne() throws {
        let graph = Architecture.lenet5.build(seed: 1).graph
        let groups = try channelDependencyGroups(in: graph)
        // conv1's scores (0...19) are below conv2's (100...) and fc1's (1000...).
        let importance = rampImportance(groups, offset: [1: 100, 2: 1000])
        let removal = try selectChannelsToRemove(in: graph, groups: groups, importance: importance, target: .global(0.04))
        // 4% of 20 + 50 + 500 channels = 22: conv1 gives 19 (one must stay), then conv2's three least important.
        #expect(removal == [0: Array(0..<19), 1: [0, 1, 2]])
        let almostAll = try selectChannelsToRemove(in: graph, groups: groups, importance: importance, target: .global(0.999))
        #expect(almostAll.mapValues(\.count) == [0: 19, 1: 49, 2: 499])
    }

    @Test func roundingKeepsMultiplesOfEight() throws {
        #expect(roundedRemoval(25, channels: 50, multiple: 8) == 18)  // keeps 25 -> 32
        #expect(roundedRemoval(49, channels: 50, multiple: 8) == 42)  // keeps 1 -> 8, never below 8
        #expect(roundedRemoval(3, channels: 50, multiple: 8) == 2)    // keeps 47 -> 48
        #expect(roundedRemoval(1, channels: 50, multiple: 8) == 0)    // keeps 49 -> 56, capped at 50
        #expect(roundedRemoval(3, channels: 6, multiple: 8) == 0)     // a group under 8 is left whole
        #expect(roundedRemoval(5, channels: 16, multiple: nil) == 5)

        let graph = Architecture.resnet20.build(seed: 1).graph
        let groups = try channelDependencyGroups(in: graph)
        var importance = rampImportance(groups)
        let stage1 = F.group(of: "conv1", in: groups).id
        importance[stage1] = (0..<16).map { Float(($0 * 7) % 16) }  // a shuffled order
        let removal = try selectChannelsToRemove(in: graph, groups: groups, importance: importance,
                                                 target: .perLayer(["conv1": 0.75]), channelMultiple: 8)
        // 12 would go, keeping 4; rounded up to 8 kept, so the 8 least important go.
        #expect(removal[stage1] == (0..<16).filter { ($0 * 7) % 16 < 8 })
    }

    @Test(arguments: [Architecture.vggSmall, .resnet20, .mobilenetSmall, .lenet5])
    func macTargetIsReachedWithRoundedWidths(_ architecture: Architecture) throws {
        let model = F.withRandomBatchNorm(architecture)
        for multiple in [nil, 8] as [Int?] {
            let result = try pruneChannels(model, criterion: .l1, target: .macFraction(0.5), channelMultiple: multiple)
            #expect(Double(result.record.macsAfter) <= 0.5 * Double(result.record.macsBefore))
            guard let multiple else {
                // One channel at a time: the greedy stops just under the budget.
                #expect(Double(result.record.macsAfter) > 0.45 * Double(result.record.macsBefore))
                continue
            }
            let before = try channelDependencyGroups(in: model.graph)
            let shapes = try result.model.graph.inferShapes(batch: 1)
            for group in before where result.record.removedChannels[group.id] != nil {
                let kept = shapes[group.members[0].value]![1]
                #expect(kept % multiple == 0 || kept == group.channels, "\(group.sourceLayers): \(kept) of \(group.channels)")
                #expect(kept >= min(multiple, group.channels))
            }
        }
    }

    @Test func unreachableTargetsAreRefused() throws {
        let graph = Architecture.lenet5.build(seed: 1).graph
        let groups = try channelDependencyGroups(in: graph)
        #expect(throws: StructuredPruningError.self) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups),
                                       target: .macFraction(0.001), channelMultiple: 8)
        }
        #expect(throws: PruningTargetNotApplicable(target: .thresholds(["conv1": 0.1]), granularity: .channel)) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups),
                                       target: .thresholds(["conv1": 0.1]))
        }
        #expect(throws: StructuredPruningError.invalidMACTarget(0)) {
            try selectChannelsToRemove(in: graph, groups: groups, importance: rampImportance(groups), target: .macFraction(0))
        }
    }

    @Test(arguments: [Architecture.resnet20, .mobilenetSmall, .vggSmall])
    func costModelAgreesWithTheCostReportOfThePrunedGraph(_ architecture: Architecture) throws {
        let model = architecture.build(seed: 2)
        let groups = try channelDependencyGroups(in: model.graph)
        let cost = try ChannelCostModel(graph: model.graph, groups: groups)
        #expect(cost.macs(removing: [:]) == (try model.graph.macsPerSample()))
        let removal = Dictionary(uniqueKeysWithValues: groups.filter(\.isPrunable).map { g in
            (g.id, Array(stride(from: 0, to: g.channels - 1, by: 3)))
        })
        let pruned = try applyChannelPruning(model, removing: removal)
        #expect(cost.macs(removing: removal.mapValues(\.count)) == pruned.record.macsAfter)
    }
}
