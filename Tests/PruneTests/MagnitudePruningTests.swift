import Foundation
import Testing
import Compress
@testable import Prune

@Suite struct LayerSelectionTests {
    @Test func globPatterns() {
        #expect(globMatches("conv*", "conv1"))
        #expect(globMatches("conv*", "conv"))
        #expect(!globMatches("conv*", "fc1"))
        #expect(globMatches("layer?.*.conv1", "layer2.0.conv1"))
        #expect(!globMatches("layer?.*.conv1", "layer2.0.conv2"))
        #expect(globMatches("*", "anything"))
        #expect(globMatches("fc1", "fc1"))
        #expect(!globMatches("fc1", "fc10"))
    }

    @Test func selectsConvAndLinearLayersAndRefusesUnknownPatterns() throws {
        let g = Architecture.lenet5.build(seed: 1).graph
        let all = try LayerSelection().layers(in: g, pass: "prune")
        #expect(all.map(\.node) == ["conv1", "conv2", "fc1", "fc2"])
        #expect(all.map(\.isConv) == [true, true, false, false])
        let some = try LayerSelection(include: "conv*,fc1", exclude: "conv1").layers(in: g, pass: "prune")
        #expect(some.map(\.node) == ["conv2", "fc1"])
        #expect(throws: ParameterError.self) { try LayerSelection(include: "fc9", exclude: "").layers(in: g, pass: "prune") }
        #expect(throws: ParameterError.self) { try LayerSelection(include: "", exclude: "*").layers(in: g, pass: "prune") }
    }
}

@Suite struct MagnitudePruningTests {
    /// Two linear layers with hand-chosen weights.
    func graph() -> Graph {
        Graph(inputs: [GraphInput(name: "x", sampleShape: [3])], outputs: ["y"], nodes: [
            Node(name: "a", op: .linear, inputs: ["x", "a.w"], output: "h"),
            Node(name: "b", op: .linear, inputs: ["h", "b.w"], output: "y"),
        ], initializers: [
            "a.w": Tensor(shape: [2, 3], floats: [0.5, -0.1, 0.3, -0.2, 0.1, 0.9]),
            "b.w": Tensor(shape: [1, 2], floats: [4, -0.05]),
        ])
    }

    var layers: [PrunableLayer] {
        [PrunableLayer(node: "a", weight: "a.w", isConv: false), PrunableLayer(node: "b", weight: "b.w", isConv: false)]
    }

    @Test func layerScopeRemovesTheSmallestOfEachLayerWithTiesByPosition() throws {
        let (g, counts) = try magnitudePruned(graph(), layers: layers, target: .perLayer(["a": 0.5, "b": 0.5]))
        // a: |w| = .5 .1 .3 .2 .1 .9; three smallest are the two 0.1s (positions 1, 4) and 0.2.
        #expect(g.initializers["a.w"]!.floats == [0.5, 0, 0.3, 0, 0, 0.9])
        #expect(g.initializers["b.w"]!.floats == [4, 0])
        #expect(counts == [LayerSparsity(layer: "a", weights: 6, nonZero: 3), LayerSparsity(layer: "b", weights: 2, nonZero: 1)])
    }

    @Test func globalScopeRanksAllWeightsInOneList() throws {
        // 8 weights, 50%: the four smallest overall are -0.05, 0.1, 0.1, -0.2.
        let (g, _) = try magnitudePruned(graph(), layers: layers, target: .global(0.5))
        #expect(g.initializers["a.w"]!.floats == [0.5, 0, 0.3, 0, 0, 0.9])
        #expect(g.initializers["b.w"]!.floats == [4, 0])
        let (g2, _) = try magnitudePruned(graph(), layers: layers, target: .global(0.25))
        #expect(g2.initializers["a.w"]!.floats == [0.5, 0, 0.3, -0.2, 0.1, 0.9])
        #expect(g2.initializers["b.w"]!.floats == [4, 0])
    }

    @Test func thresholdIsAMultipleOfTheLayersStandardDeviation() throws {
        // b: weights 4 and -0.05: mean 1.975, std 2.025; 0.5 std = 1.0125 removes -0.05 only.
        let (g, _) = try magnitudePruned(graph(), layers: layers,
                                      target: .thresholds(standardDeviationThresholds(0.5, layers: layers, in: graph())))
        #expect(g.initializers["b.w"]!.floats == [4, 0])
        let a: [Float] = [0.5, -0.1, 0.3, -0.2, 0.1, 0.9]
        let mean = a.reduce(0, +) / 6
        let std = (a.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6).squareRoot()
        #expect(abs(nonZeroStandardDeviation(a) - std) < 1e-6)
        #expect(g.initializers["a.w"]!.floats == a.map { abs($0) < 0.5 * std ? 0 : $0 })
    }

    @Test func perLayerAmountsLeaveUnnamedLayersAlone() throws {
        let (g, _) = try magnitudePruned(graph(), layers: layers, target: .perLayer(["a": 1.0 / 3]))
        #expect(g.initializers["a.w"]!.floats == [0.5, 0, 0.3, -0.2, 0, 0.9])
        #expect(g.initializers["b.w"]!.floats == [4, -0.05])
    }

    @Test func aMACFractionIsRefusedForWeights() {
        #expect(throws: PruningTargetNotApplicable(target: .macFraction(0.5), granularity: .weight)) {
            try magnitudePruned(graph(), layers: layers, target: .macFraction(0.5))
        }
    }

    @Test func pruningFurtherNeverRevivesAWeight() throws {
        var rng = SeededGenerator(seed: 3)
        let w = rng.uniformTensor([40, 30], in: -1...1)
        let g = Graph(inputs: [GraphInput(name: "x", sampleShape: [30])], outputs: ["y"],
                      nodes: [Node(name: "a", op: .linear, inputs: ["x", "w"], output: "y")], initializers: ["w": w])
        let layer = [PrunableLayer(node: "a", weight: "w", isConv: false)]
        var previous = g
        for s in [0.3, 0.6, 0.9] {
            let (next, counts) = try magnitudePruned(previous, layers: layer, target: .perLayer(["a": s]))
            let (old, new) = (previous.initializers["w"]!.floats, next.initializers["w"]!.floats)
            #expect(old.count == 1200 && new.count == 1200)
            #expect(zip(old, new).allSatisfy { $0 != 0 || $1 == 0 })
            #expect(counts[0].nonZero == 1200 - Int((s * 1200).rounded()))
            previous = next
        }
    }
}

@Suite struct PruningScheduleTests {
    @Test func iterativeKeepsAGeometricallyFallingFraction() {
        // From 0 to 0.9375 in 4 steps: kept 1 -> 1/16, halving each step.
        let s = (1...4).map { PruningSchedule.iterative.sparsity(afterStep: $0, of: 4, start: 0, target: 0.9375) }
        for (got, want) in zip(s, [0.5, 0.75, 0.875, 0.9375]) { #expect(abs(got - want) < 1e-12) }
    }

    @Test func agpFollowsTheCubicRamp() {
        // s_t = s_f + (s_0 - s_f)(1 - t/n)^3 with s_0 = 0, s_f = 0.8, n = 4.
        let s = (1...4).map { PruningSchedule.agp.sparsity(afterStep: $0, of: 4, start: 0, target: 0.8) }
        let want = [0.8 - 0.8 * 27.0 / 64, 0.8 - 0.8 / 8, 0.8 - 0.8 / 64, 0.8]
        for (got, w) in zip(s, want) { #expect(abs(got - w) < 1e-12) }
        #expect(PruningSchedule.oneShot.sparsity(afterStep: 1, of: 1, start: 0.2, target: 0.7) == 0.7)
    }

    @Test func thresholdRampsLinearly() {
        #expect(PruningSchedule.iterative.thresholdMultiple(afterStep: 1, of: 4, target: 2) == 0.5)
        #expect(PruningSchedule.oneShot.thresholdMultiple(afterStep: 1, of: 1, target: 2) == 2)
    }
}

@Suite struct SensitivityReportTests {
    @Test func derivedSparsityIsTheLargestWithinTheDropWithNoWorseSmallerOne() {
        let r = SensitivityReport(model: "m", granularity: "weight", measuredOn: "v", baselineTop1: 0.90,
                                  sparsities: [0, 0.5, 0.8, 0.9],
                                  layers: [SensitivityCurve(layer: "a", weights: 10, top1: [0.90, 0.899, 0.897, 0.85]),
                                           SensitivityCurve(layer: "b", weights: 10, top1: [0.90, 0.80, 0.899, 0.899]),
                                           SensitivityCurve(layer: "c", weights: 10, top1: [0.90, 0.91, 0.905, 0.90])])
        let s = r.sparsities(maxDrop: 0.005)
        #expect(s == ["a": 0.8, "b": 0, "c": 0.9])
    }

    @Test func reportRoundTripsThroughJSONAndRendersEveryLayer() throws {
        let r = SensitivityReport(model: "m.bin", granularity: "weight", measuredOn: "validation split, 10 images",
                                  baselineTop1: 0.5, sparsities: [0, 0.5],
                                  layers: [SensitivityCurve(layer: "fc<1>", weights: 4, top1: [0.5, 0.25])])
        let text = try r.json()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sens-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try SensitivityReport.read(path: path) == r)
        let html = r.html()
        #expect(html.contains("fc&lt;1&gt;") && !html.contains("fc<1>") && html.contains("<polyline"))
        #expect(r.markdown().contains("| fc<1> | 4 | 50.00 | 25.00 |"))
    }
}
