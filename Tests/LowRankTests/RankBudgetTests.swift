@testable import Compress
import Foundation
import Testing
@testable import LowRank

/// A stand-in for the benchmark: a model's "latency" is its MACs in millions
/// plus 0.001 ms per node, so the measure-and-write path runs without timing.
struct MACsAsLatency: LatencyMeasuring {
    func measure(_ model: Model, batch: Int, threads: Int) throws -> LatencyMeasurement {
        let ms = Double(try model.graph.macsPerSample() * batch) / 1e6 + 0.001 * Double(model.graph.nodes.count)
        return LatencyMeasurement(batch: batch, threads: threads, repetitions: 1, medianMs: ms, p90Ms: ms, minMs: ms,
                                  maxMs: ms, imagesPerSecond: 0)
    }
}

@Suite struct RankBudgetTests {
    let vgg = Architecture.vggSmall.build(seed: 3, inputShape: [1, 8, 8], classes: 4)
    let lenet5 = Architecture.lenet5.build(seed: 4, inputShape: [1, 28, 28], classes: 10)
    let mlp = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)

    /// Squared relative errors of the factorized layers, by layer, read off the record lines.
    func squaredErrors(_ record: PassRecord) -> [String: Double] {
        var errors: [String: Double] = [:]
        for line in record.changes {
            guard let range = line.range(of: "relative error ") else { continue }
            let e = Double(line[range.upperBound...])!
            errors[String(line.prefix { $0 != ":" })] = e * e
        }
        return errors
    }

    /// The budget must meet the MAC target and, at the MACs a uniform rank
    /// spends, lose less than the uniform rank does (channel SVD: the proxy is
    /// the exact error).
    @Test(arguments: [4, 8])
    func targetMACsMeetsTheTargetWithLessErrorThanAUniformRank(rank: Int) throws {
        let (uniform, uniformRecord) = try lowRank(vgg, ["method": "channel", "rank": "\(rank)"])
        let before = Double(try vgg.graph.macsPerSample())
        let fraction = Double(try uniform.graph.macsPerSample()) / before
        let (out, record) = try lowRank(vgg, ["method": "channel", "target-macs": "\(fraction)"])
        let after = Double(try out.graph.macsPerSample())
        #expect(after <= fraction * before)
        #expect(record.metrics["macs-after"] == after)
        let uniformError = squaredErrors(uniformRecord).values.reduce(0, +)
        let budgetError = squaredErrors(record).values.reduce(0, +)
        #expect(budgetError < uniformError, "budget \(budgetError), uniform \(uniformError) at \(fraction)")
        // The metric is the same sum, exact rather than read off 4-decimal lines.
        #expect(abs(record.metrics["budget-squared-error"]! - budgetError) < 1e-3)
        #expect(record.changes[0].hasPrefix(String(format: "target-macs %g: MACs %.0f -> %.0f", fraction, before, after)),
                "\(record.changes)")
    }

    /// Tucker-2 gets a rank per mode; the factorized model meets the target and runs.
    @Test func targetMACsWithTucker2() throws {
        let (out, record) = try lowRank(vgg, ["method": "tucker2", "target-macs": "0.4", "round-to": "2"])
        let before = Double(try vgg.graph.macsPerSample()), after = Double(try out.graph.macsPerSample())
        #expect(after <= 0.4 * before)
        #expect(after > 0.3 * before)  // the slack is spent
        #expect(record.metrics["factorized-layers"]! >= 3)
        // Every factorized layer's ranks are multiples of round-to or full.
        for (name, tensor) in out.graph.initializers where name.hasSuffix(".factor2.weight") {
            let original = vgg.graph.initializers[name.replacingOccurrences(of: ".factor2", with: "")]!.shape
            #expect(tensor.shape[0] % 2 == 0 || tensor.shape[0] == min(original[0], original[1] * 9), "\(name) \(tensor.shape)")
            #expect(tensor.shape[1] % 2 == 0 || tensor.shape[1] == min(original[1], original[0] * 9), "\(name) \(tensor.shape)")
        }
        _ = try Session(model: out).run(Tensor(shape: [2, 1, 8, 8], floats: [Float](repeating: 0.5, count: 128)))
    }

    /// `layer-rank` pins a layer; the budget counts it at its rank and chooses the others.
    @Test func pinnedLayersCountInTheBudget() throws {
        let (out, record) = try lowRank(vgg, ["method": "channel", "target-macs": "0.5", "layer-rank": "conv6=4"])
        #expect(out.graph.initializers["conv6.factor1.weight"]?.shape[0] == 4)
        #expect(Double(try out.graph.macsPerSample()) <= 0.5 * Double(try vgg.graph.macsPerSample()))
        #expect(record.changes.contains { $0.hasPrefix("conv6: channel rank 4,") })
    }

    /// The lowest reachable fraction, computed here from the layers' shapes:
    /// lenet5's two convolutions at channel rank 1, the linear layers as they are.
    @Test func anUnreachableTargetNamesTheLowestFraction() throws {
        let report = try lenet5.graph.costReport()
        var lowest = report.totalMACs
        for conv in ["conv1", "conv2"] {
            let w = lenet5.graph.initializers[conv + ".weight"]!.shape
            let outShape = report.nodes.first { $0.name == conv }!.outputShape
            let pixels = outShape[2] * outShape[3]
            lowest += pixels * (w[1] * w[2] * w[3]) + pixels * w[0] - report.macsByNode[conv]!
        }
        let message = parameterErrorMessage { _ = try lowRank(lenet5, ["method": "channel", "target-macs": "0.01"]) }
        #expect(message == String(format: "lowrank: target-macs 0.01 cannot be reached: the lowest reachable fraction of the MACs is %.4f "
                                  + "(every budgeted layer at its smallest rank)", Double(lowest) / Double(report.totalMACs)))
    }

    @Test func badTargetsAreRefused() throws {
        let cases: [([String: String], String)] = [
            (["target-macs": "1.5"], "lowrank: target-macs must be in (0, 1), got 1.5"),
            (["target-macs": "0"], "lowrank: target-macs must be in (0, 1), got 0.0"),
            (["target-latency": "1"], "lowrank: target-latency must be in (0, 1), got 1.0"),
            (["target-macs": "0.5", "rank": "4"], "lowrank: give one of rank, energy, target-macs and target-latency, not rank and target-macs"),
            (["target-macs": "0.5", "target-latency": "0.5"],
             "lowrank: give one of rank, energy, target-macs and target-latency, not target-macs and target-latency"),
            (["rank": "4", "latency-table": "t.json"],
             "lowrank: latency-table holds the measurements of target-latency or require-reduction latency; give it with one of them"),
            (["target-macs": "0.5", "latency-batch": "4"],
             "lowrank: latency-batch is the batch target-latency and require-reduction latency time layers at; give it with one of them"),
            (["target-latency": "0.5", "latency-batch": "0"], "lowrank: latency-batch must be >= 1, got 0"),
            (["method": "cp", "target-macs": "0.5"],
             "lowrank: cp has no cheap per-rank error (every rank is its own ALS run): give rank or layer-rank with cp, not target-macs"),
        ]
        for (raw, expected) in cases {
            var parameters = raw
            if parameters["method"] == nil { parameters["method"] = "svd" }
            #expect(parameterErrorMessage { _ = try lowRankPass(parameters) } == expected, "\(raw)")
        }
    }

    /// The budget's error proxy (dropped squared singular values) is the
    /// squared relative error the factorization itself reports, for the methods
    /// where it is exact.
    @Test(arguments: ["channel", "spatial", "separable"])
    func droppedEnergyIsTheFactorizationsError(method: String) throws {
        let (pass, _) = try lowRankPass(["method": method, "rank": "2"])
        let node = vgg.graph.nodes.first { $0.name == "conv3" }!
        let weight = vgg.graph.initializers[node.inputs[1]]!
        let dropped = try LowRankPass.droppedEnergy(pass.method, weight: weight)[0]
        for r in [1, 2, 5] {
            let f = try pass.factorize(node, in: vgg.graph, rule: pass.budgetRule([r]))
            let error = Double(f.relativeError) * Double(f.relativeError)
            #expect(abs(dropped[r - 1] - error) <= 1e-4 * max(1, error), "\(method) rank \(r): \(dropped[r - 1]) vs \(error)")
        }
    }

    /// The chain shapes the budget costs are the shapes the factorizations build.
    @Test(arguments: ["channel", "spatial", "tucker2", "separable"])
    func chainShapesMatchTheFactorizations(method: String) throws {
        let (pass, _) = try lowRankPass(["method": method, "rank": "3"])
        let node = vgg.graph.nodes.first { $0.name == "conv3" }!
        let weight = vgg.graph.initializers[node.inputs[1]]!
        guard case .conv2d(let attributes) = node.op else { Issue.record("conv3 is not a conv"); return }
        let ranks = method == "tucker2" ? [3, 5] : [3]
        let f = try pass.factorize(node, in: vgg.graph, rule: pass.budgetRule(ranks))
        let shapes = LowRankPass.chainShape(pass.method, shape: weight.shape, attributes: attributes, ranks: ranks)
        #expect(shapes.map(\.op) == f.layers.map(\.op))
        #expect(shapes.map(\.weight) == f.layers.map(\.weight.shape))
        #expect(f.ranks == ranks)
    }

    /// The hull walk skips a candidate above the line between its neighbours,
    /// and the greedy spends the budget on the layer that loses least per cost.
    @Test func greedyFollowsTheLowerHull() {
        func c(_ cost: Double, _ e: Double) -> RankCandidate {
            RankCandidate(ranks: cost == 10 ? [] : [Int(cost)], macs: 0, weights: 0, squaredError: e, cost: cost)
        }
        // Layer a: 10 (dense) -> 8 at 0.5 is above the line 10 -> 6 at 0.2, so the hull skips it.
        let a = BudgetLayer(name: "a", candidates: [c(10, 0), c(8, 0.5), c(6, 0.2), c(2, 0.9)], free: true)
        let b = BudgetLayer(name: "b", candidates: [c(10, 0), c(5, 0.4)], free: true)
        #expect(lowerHull(a.candidates) == [0, 2, 3])
        // Budget 16 of 20: a's step to 6 (0.05 per unit) beats b's (0.08).
        let choice = allocateRanks([a, b], fixedCost: 0, budget: 16)!
        #expect(choice.chosen == [2, 0])
        // Budget 11: a to 6 then b to 5 gives 11 at 0.6.
        #expect(allocateRanks([a, b], fixedCost: 0, budget: 11)!.chosen == [2, 1])
        #expect(allocateRanks([a, b], fixedCost: 0, budget: 6.9) == nil)
    }
}

/// `target-latency`: measured through a stand-in, written, and read back.
@Suite struct LatencyBudgetTests {
    let mlp = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)

    func run(_ raw: [String: String], latency: any LatencyMeasuring = MACsAsLatency()) throws -> (model: Model, record: PassRecord) {
        let (pass, parameters) = try lowRankPass(raw)
        return try pass.run(on: mlp, context: PassContext(seed: 1, latency: latency), parameters: parameters)
    }

    func tempPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("rank-budget-\(UUID().uuidString)-\(name)").path
    }

    @Test func aMeasuredTableIsWrittenAndReadBackToTheSameModel() throws {
        let path = tempPath("table.json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let raw = ["method": "svd", "target-latency": "0.5", "latency-table": path, "round-to": "4"]
        let (first, firstRecord) = try run(raw)
        let table = try LayerLatencyTable.read(path: path)
        #expect(table.method == "svd" && table.batch == 1 && table.threads == 1)
        // fc1 64 -> 300: the dense layer and ranks 4...48 in steps of 4 thinned to 12 (fewer weights than 19,200).
        let denseMs = Double(64 * 300) / 1e6 + 0.001
        #expect(table.entries.first == LayerLatencyTable.Entry(layer: "fc1", ranks: [], ms: denseMs))
        #expect(table.entries.filter { $0.layer == "fc1" }.map(\.ranks).dropFirst().allSatisfy { $0[0] % 4 == 0 && $0[0] * 364 < 19_200 })
        // Read back, nothing is measured: a benchmark that fails proves it.
        let (second, secondRecord) = try run(raw, latency: FailingLatency())
        #expect(first.graph == second.graph)
        #expect(firstRecord.changes == secondRecord.changes)
        #expect(firstRecord.metrics == secondRecord.metrics)
        let before = firstRecord.metrics["estimated-latency-before-ms"]!, after = firstRecord.metrics["estimated-latency-after-ms"]!
        #expect(after <= 0.5 * before)
        #expect(abs(before - table.entries.filter { $0.ranks.isEmpty }.reduce(0) { $0 + $1.ms }) < 1e-12)
    }

    @Test func aTableThatDoesNotFitIsRefused() throws {
        let path = tempPath("table.json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var table = LayerLatencyTable(method: "svd", batch: 1, threads: 1, cpu: nil, kernels: "portable")
        for (layer, full) in [("fc1", 64), ("fc2", 100), ("fc3", 4)] {
            table.entries.append(.init(layer: layer, ranks: [], ms: 1))
            table.entries += (1...full).map { .init(layer: layer, ranks: [$0], ms: Double($0) / 100) }
        }
        let raw = ["method": "svd", "target-latency": "0.5", "latency-table": path]
        func message(_ t: LayerLatencyTable) throws -> String? {
            try t.json().write(toFile: path, atomically: true, encoding: .utf8)
            return parameterErrorMessage { _ = try run(raw, latency: FailingLatency()) }
        }
        #expect(try message(table) == nil)
        var missing = table
        missing.entries.removeAll { $0.layer == "fc2" && $0.ranks == [] }
        #expect(try message(missing) == "lowrank: latency-table '\(path)' has no entry for layer 'fc2' at ranks [] "
                + "([] is the dense layer); delete it to measure again")
        var otherBatch = table
        otherBatch.batch = 8
        #expect(try message(otherBatch) == "lowrank: latency-table '\(path)' was measured for svd at batch 8, 1 thread(s); "
                + "this run needs svd at batch 1, 1 thread(s)")
        var newer = table
        newer.version = 2
        #expect(try message(newer) == "lowrank: latency-table '\(path)': not a latency table: version 2 is not one this build reads (1...1)")
    }
}

/// A benchmark that must not be called.
struct FailingLatency: LatencyMeasuring {
    struct Called: Error {}
    func measure(_ model: Model, batch: Int, threads: Int) throws -> LatencyMeasurement { throw Called() }
}
