import Foundation
import Testing
@testable import Compress
import LowRank

/// `compressor lowrank` end to end, and a `lowrank` pipeline step, on the tiny fixture of `RunCLITests`.
@Suite struct LowRankCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    @Test func lowrankHelpListsEveryPassParameter() throws {
        let help = try cli.run(["lowrank", "--help"]).stdout
        for spec in LowRankPass.parameters {
            #expect(help.contains("--\(spec.name) ") || help.contains("--\(spec.name)\n"), "missing --\(spec.name)")
        }
        #expect(help.contains("compressor lowrank models/lenet300.bin"))
    }

    /// Factorizes fc1 and fc2 of the fixture's LeNet-300 and fine-tunes in one
    /// run; the file holds the factor layers and its history the pass.
    @Test func lowrankWithFineTuningWritesTheFactorLayers() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["lowrank", "model.bin", "-o", "lr.bin", "--method", "svd", "--layer-rank", "fc1=8,fc2=6",
                              "--exclude", "fc3", "--finetune-epochs", "1", "--finetune-batch", "16", "--data", "data",
                              "--validation-count", "32", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try cli.json(r.stdout)
        let metrics = try #require(json["metrics"] as? [String: Double])
        #expect(metrics["factorized-layers"] == 2)
        #expect(metrics["params-before"] == Double(64 * 300 + 300 + 300 * 100 + 100 + 100 * 4 + 4))
        #expect(metrics["params-after"] == Double(8 * 64 + 300 * 8 + 300 + 6 * 300 + 100 * 6 + 100 + 100 * 4 + 4))
        let changes = try #require(json["changes"] as? [String])
        #expect(changes.first?.hasPrefix("fc1: svd rank 8, 19200 -> 2912 weights (6.59x)") == true, "\(changes)")
        #expect(changes.last?.hasPrefix("fine-tuned 1 epoch(s): validation ") == true, "\(changes)")
        let m = try ModelFile.read(path: dir + "/lr.bin")
        #expect(m.graph.initializers["fc1.factor1.weight"]?.shape == [8, 64])
        #expect(m.graph.initializers["fc2.factor2.weight"]?.shape == [100, 6])
        #expect(m.graph.initializers["fc1.weight"] == nil)
        #expect(m.metadata.history.map(\.pass).suffix(2) == ["finetune", "lowrank"])
        let e = try runs.run(["eval", "lr.bin", "--data", "data", "--json"], in: dir)
        #expect(e.status == 0, "\(e.stderr)")
    }

    @Test func badInputFailsWithOneMessageAndNoFile() throws {
        let dir = try runs.fixture()
        let cases: [([String], String)] = [
            (["--rank", "0"], "Error: lowrank: rank must be >= 1, got 0\n"),
            (["--rank", "5", "--layers", "fc3"],
             "Error: lowrank: layer 'fc3': rank 5 is out of range: it must be between 1 and the full rank 4\n"),
            (["--energy", "1.5"], "Error: lowrank: energy must be in (0, 1], got 1.5\n"),
            (["--energy", "0"], "Error: lowrank: energy must be in (0, 1], got 0.0\n"),
            (["--rank", "4", "--energy", "0.5"], "Error: lowrank: give rank or energy, not both\n"),
            (["--rank", "4", "--layers", "conv*"],
             "Error: lowrank: layer pattern 'conv*' matches no conv or linear layer (layers: fc1, fc2, fc3)\n"),
            (["--rank", "4", "--method", "tucker2", "--layers", "fc1"],
             "Error: lowrank: tucker2 applies to convolutions; 'fc1' is a Linear\n"),
            (["--method", "qr", "--rank", "4"], ""),
        ]
        for (args, expected) in cases {
            let r = try runs.run(["lowrank", "model.bin", "-o", "out.bin"] + args, in: dir)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.hasPrefix("Error: "), "\(args): \(r.stderr)")
            if !expected.isEmpty { #expect(r.stderr == expected, "\(args)") }
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"), "\(args)")
        }
    }

    /// The fixture's directory with a small vgg-small (8x8 inputs, 4 classes) as `vgg.bin`.
    func convFixture() throws -> String {
        let dir = try runs.fixture()
        try ModelFile.write(Architecture.vggSmall.build(seed: 3, inputShape: [1, 8, 8], classes: 4), to: dir + "/vgg.bin")
        return dir
    }

    /// Separable at depth multiplier 2 on two layers, fine-tuned one epoch: the
    /// trainer runs the depthwise factor (groups = C, 2C outputs) forward and
    /// backward, and the file holds the factors.
    @Test func separableWithFineTuningWritesTheFactors() throws {
        let dir = try convFixture()
        let r = try runs.run(["lowrank", "vgg.bin", "-o", "sep.bin", "--method", "separable", "--rank", "2",
                              "--layers", "conv4,conv6", "--finetune-epochs", "1", "--finetune-batch", "16", "--data", "data",
                              "--validation-count", "32", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try cli.json(r.stdout)
        let metrics = try #require(json["metrics"] as? [String: Double])
        #expect(metrics["factorized-layers"] == 2)
        let changes = try #require(json["changes"] as? [String])
        #expect(changes.first?.hasPrefix("conv4: separable rank 2, 36864 -> 9344 weights (3.95x)") == true, "\(changes)")
        let m = try ModelFile.read(path: dir + "/sep.bin")
        #expect(m.graph.initializers["conv4.factor1.weight"]?.shape == [128, 1, 3, 3])
        #expect(m.graph.initializers["conv4.factor2.weight"]?.shape == [64, 128, 1, 1])
        #expect(m.graph.initializers["conv6.factor1.weight"]?.shape == [256, 1, 3, 3])
        #expect(m.metadata.history.map(\.pass).suffix(2) == ["finetune", "lowrank"])
        let before = try ModelFile.read(path: dir + "/vgg.bin")
        let e = try runs.run(["eval", "sep.bin", "--data", "data", "--json"], in: dir)
        #expect(e.status == 0, "\(e.stderr)")
        #expect(before.graph.initializers["conv4.weight"] != nil)
    }

    @Test func badConvInputFailsWithOneMessageAndNoFile() throws {
        let dir = try convFixture()
        let cases: [([String], String)] = [
            (["--method", "separable", "--rank", "0"], "Error: lowrank: rank must be >= 1, got 0\n"),
            (["--method", "separable", "--rank", "10", "--layers", "conv3"],
             "Error: lowrank: layer 'conv3': rank 10 is out of range: it must be between 1 and the full rank 9\n"),
            (["--method", "separable", "--layer-rank", "conv3=2x2"],
             "Error: lowrank: layer-rank entry 'conv3=2x2': INPUTxOUTPUT ranks are for tucker2 only; separable takes one rank\n"),
            (["--method", "tucker2", "--layer-rank", "conv3=33x8"],
             "Error: lowrank: layer 'conv3': rank 33 is out of range: it must be between 1 and the full rank 32\n"),
            (["--method", "cp", "--rank-selection", "vbmf"],
             "Error: lowrank: rank-selection vbmf needs singular values, and cp has none: give rank or layer-rank\n"),
            (["--method", "tucker2", "--rank-selection", "vbmf", "--energy", "0.9"],
             "Error: lowrank: rank-selection vbmf chooses the ranks: give layer-rank to override it for some layers, not rank, energy or a target\n"),
        ]
        for (args, expected) in cases {
            let r = try runs.run(["lowrank", "vgg.bin", "-o", "out.bin"] + args, in: dir)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr == expected, "\(args)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"), "\(args)")
        }
    }

    @Test func lowrankStepInAPipeline() throws {
        let dir = try runs.fixture(steps: "steps:\n  - lowrank: {method: svd, rank: 8, exclude: fc3}\n  - eval: {limit: 8}\n")
        let plan = try Pipeline.plan(file: dir + "/pipeline.yaml", overrides: PipelineOverrides(),
                                     registry: PassRegistry(PassRegistry.corePasses + LowRankLibrary.passes))
        #expect(plan.steps.count == 2)
        let r = try runs.run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 1/2 lowrank: "), "\(r.stdout)")
        let m = try ModelFile.read(path: dir + "/out/final.steps/01-lowrank.bin")
        #expect(m.graph.initializers["fc1.factor1.weight"]?.shape == [8, 64])
        #expect(m.graph.initializers["fc2.factor1.weight"]?.shape == [8, 300])
        #expect(m.graph.initializers["fc3.weight"]?.shape == [4, 100])
        let bad = try runs.fixture(steps: "steps:\n  - lowrank: {method: svd, energy: 2}\n")
        let b = try runs.run(["run", "pipeline.yaml"], in: bad)
        #expect(b.status != 0)
        #expect(b.stderr.contains("energy must be in (0, 1], got 2.0"), "\(b.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bad + "/out"))
    }

    /// `--target-macs`: the written model keeps at most the fraction of the MACs; bad targets fail with one message.
    @Test func targetMACsMeetsTheTargetAndBadTargetsFail() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["lowrank", "model.bin", "-o", "lr.bin", "--method", "svd", "--target-macs", "0.3", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let metrics = try #require(try cli.json(r.stdout)["metrics"] as? [String: Double])
        let before = try #require(metrics["macs-before"]), after = try #require(metrics["macs-after"])
        #expect(before == Double(64 * 300 + 300 * 100 + 100 * 4))
        #expect(after <= 0.3 * before && after > 0.25 * before, "\(after) of \(before)")
        #expect(try ModelFile.read(path: dir + "/lr.bin").graph.macsPerSample() == Int(after))
        let cases: [([String], String)] = [
            (["--target-macs", "1"], "Error: lowrank: target-macs must be in (0, 1), got 1.0\n"),
            (["--target-macs", "0.5", "--energy", "0.9"],
             "Error: lowrank: give one of rank, energy, target-macs and target-latency, not energy and target-macs\n"),
            (["--rank", "4", "--latency-table", "t.json"],
             "Error: lowrank: latency-table holds the measurements of target-latency or require-reduction latency; give it with one of them\n"),
            (["--target-macs", "0.001"],
             "Error: lowrank: target-macs 0.001 cannot be reached: the lowest reachable fraction of the MACs is 0.0175 "
                + "(every budgeted layer at its smallest rank)\n"),
        ]
        for (args, expected) in cases {
            let bad = try runs.run(["lowrank", "model.bin", "-o", "out.bin", "--method", "svd"] + args, in: dir)
            #expect(bad.status != 0, "\(args)")
            #expect(bad.stderr == expected, "\(args)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"), "\(args)")
        }
    }

    /// `--target-latency` with a table written by hand: nothing is timed, two
    /// runs write the same bytes, and the record lists the estimates; a table
    /// lacking an entry fails with one message and no output.
    @Test func targetLatencyFromAHandWrittenTableIsReproducible() throws {
        let dir = try runs.fixture()
        // ms: the dense layer in x out / 10^4, rank r: r (in + out) / 10^4 + 0.5 (one more layer to run).
        var entries: [String] = []
        for (layer, n, m) in [("fc1", 64, 300), ("fc2", 300, 100), ("fc3", 100, 4)] {
            entries.append(#"{"layer": "\#(layer)", "ranks": [], "ms": \#(Double(n * m) / 1e4)}"#)
            for r in 1...min(n, m) {
                entries.append(#"{"layer": "\#(layer)", "ranks": [\#(r)], "ms": \#(Double(r * (n + m)) / 1e4 + 0.5)}"#)
            }
        }
        func table(_ entries: [String]) -> String {
            #"{"format": "compressor lowrank latency table", "version": 1, "method": "svd", "batch": 1, "threads": 1, "#
                + #""kernels": "hand-written", "entries": [\#(entries.joined(separator: ", "))]}"#
        }
        try table(entries).write(toFile: dir + "/table.json", atomically: true, encoding: .utf8)
        let args = ["--method", "svd", "--target-latency", "0.4", "--latency-table", "table.json", "--json"]
        let a = try runs.run(["lowrank", "model.bin", "-o", "a.bin"] + args, in: dir)
        let b = try runs.run(["lowrank", "model.bin", "-o", "b.bin"] + args, in: dir)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/a.bin")) == Data(contentsOf: URL(fileURLWithPath: dir + "/b.bin")))
        let json = try cli.json(a.stdout)
        let metrics = try #require(json["metrics"] as? [String: Double])
        let before: Double = Double(64 * 300 + 300 * 100 + 100 * 4) / 1e4
        #expect(abs(metrics["estimated-latency-before-ms"]! - before) < 1e-9)
        #expect(metrics["estimated-latency-after-ms"]! <= 0.4 * before)
        let changes = try #require(json["changes"] as? [String])
        #expect(changes[0].hasPrefix("target-latency 0.4: estimated latency (the sum over the 3 budgeted layers, each timed alone, batch 1, 1 thread;"),
                "\(changes)")
        #expect(changes[0].hasSuffix("latencies from the table table.json"), "\(changes)")
        // fc3 (4 x 100) saves nothing at any rank: its factors cost 0.5 ms more than the 0.04 ms layer.
        #expect(changes.contains("fc3: budget ranks dense, estimated 0.0400 -> 0.0400 ms"), "\(changes)")
        // require-reduction latency: the budget drops every chain slower than
        // its dense layer; fc3, pinned at rank 2, is left dense and says why.
        let p = try runs.run(["lowrank", "model.bin", "-o", "p.bin", "--layer-rank", "fc3=2", "--require-reduction", "latency"] + args,
                             in: dir)
        #expect(p.status == 0, "\(p.stderr)")
        let pinned = try #require(try cli.json(p.stdout)["changes"] as? [String])
        #expect(pinned.contains("fc3: skipped: svd at rank 2 would not run faster: 0.5208 ms as factors, 0.0400 ms dense "
                                + "(each timed alone, batch 1, 1 thread; latencies from the table table.json)"), "\(pinned)")
        #expect(pinned.contains { $0.hasPrefix("fc1: svd rank ") } && pinned.contains { $0.hasPrefix("fc2: svd rank ") }, "\(pinned)")
        let free = try runs.run(["lowrank", "model.bin", "-o", "f.bin", "--require-reduction", "latency"] + args, in: dir)
        #expect(free.status == 0, "\(free.stderr)")
        let freeChanges = try #require(try cli.json(free.stdout)["changes"] as? [String])
        #expect(freeChanges.contains("fc3: skipped: svd at any rank (fastest: 1) would not run faster: 0.5104 ms as factors, "
                                     + "0.0400 ms dense (each timed alone, batch 1, 1 thread; latencies from the table table.json)"),
                "\(freeChanges)")
        try table(entries.filter { !$0.contains(#""fc2", "ranks": [46]"#) }).write(toFile: dir + "/table.json", atomically: true, encoding: .utf8)
        let c = try runs.run(["lowrank", "model.bin", "-o", "c.bin"] + args, in: dir)
        #expect(c.status != 0)
        #expect(c.stderr == "Error: lowrank: latency-table 'table.json' has no entry for layer 'fc2' at ranks [46] "
                + "([] is the dense layer); delete it to measure again\n", "\(c.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/c.bin"))
    }

    /// `--require-reduction latency` with a hand-written table: fc2's factor
    /// chain is slower than the dense layer, so fc2 is left as it is with a
    /// record line giving both times, fc1 is factorized, and two runs write
    /// the same bytes; without a table the run times the layers and writes one
    /// the next run reads.
    @Test func requireReductionLatencyLeavesASlowerLayerDense() throws {
        let dir = try runs.fixture()
        let entries = [#"{"layer": "fc1", "ranks": [], "ms": 1.0}"#, #"{"layer": "fc1", "ranks": [8], "ms": 0.3}"#,
                       #"{"layer": "fc2", "ranks": [], "ms": 0.2}"#, #"{"layer": "fc2", "ranks": [6], "ms": 0.5}"#]
        try (#"{"format": "compressor lowrank latency table", "version": 1, "method": "svd", "batch": 1, "threads": 1, "#
             + #""kernels": "hand-written", "entries": [\#(entries.joined(separator: ", "))]}"#)
            .write(toFile: dir + "/table.json", atomically: true, encoding: .utf8)
        let args = ["--method", "svd", "--layer-rank", "fc1=8,fc2=6", "--exclude", "fc3", "--require-reduction", "latency", "--json"]
        let a = try runs.run(["lowrank", "model.bin", "-o", "a.bin", "--latency-table", "table.json"] + args, in: dir)
        let b = try runs.run(["lowrank", "model.bin", "-o", "b.bin", "--latency-table", "table.json"] + args, in: dir)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/a.bin")) == Data(contentsOf: URL(fileURLWithPath: dir + "/b.bin")))
        let json = try cli.json(a.stdout)
        let changes = try #require(json["changes"] as? [String])
        #expect(changes.first?.hasPrefix("fc1: svd rank 8, 19200 -> 2912 weights") == true, "\(changes)")
        #expect(changes.contains("fc2: skipped: svd at rank 6 would not run faster: 0.5000 ms as factors, 0.2000 ms dense "
                                 + "(each timed alone, batch 1, 1 thread; latencies from the table table.json)"), "\(changes)")
        let metrics = try #require(json["metrics"] as? [String: Double])
        #expect(metrics["factorized-layers"] == 1)
        let m = try ModelFile.read(path: dir + "/a.bin")
        #expect(m.graph.initializers["fc1.factor1.weight"]?.shape == [8, 64])
        #expect(m.graph.initializers["fc2.weight"]?.shape == [100, 300])

        // No table: measured and written, then read by the next run.
        let c = try runs.run(["lowrank", "model.bin", "-o", "c.bin", "--latency-table", "measured.json"] + args, in: dir)
        #expect(c.status == 0, "\(c.stderr)")
        let written = try LayerLatencyTable.read(path: dir + "/measured.json")
        #expect(written.entries.map(\.layer) == ["fc1", "fc1", "fc2", "fc2"])
        #expect(written.entries.map(\.ranks) == [[], [8], [], [6]])
        let d = try runs.run(["lowrank", "model.bin", "-o", "d.bin", "--latency-table", "measured.json"] + args, in: dir)
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/c.bin")) == Data(contentsOf: URL(fileURLWithPath: dir + "/d.bin")))
    }

    @Test func badRequireReductionValuesFailWithOneMessageAndNoFile() throws {
        let dir = try runs.fixture()
        try (#"{"format": "compressor lowrank latency table", "version": 1, "method": "svd", "batch": 1, "threads": 1, "#
             + #""kernels": "hand-written", "entries": []}"#).write(toFile: dir + "/table.json", atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--require-reduction", "true"],
             "Error: lowrank: parameter 'require-reduction' must be counts|latency|none, got 'true'\n"),
            (["--require-reduction", "counts", "--latency-batch", "2"],
             "Error: lowrank: latency-batch is the batch target-latency and require-reduction latency time layers at; give it with one of them\n"),
            (["--require-reduction", "latency", "--latency-batch", "0"], "Error: lowrank: latency-batch must be >= 1, got 0\n"),
            (["--require-reduction", "latency", "--latency-table", "table.json", "--latency-batch", "4"],
             "Error: lowrank: latency-table 'table.json' was measured for svd at batch 1, 1 thread(s); this run needs svd at batch 4, 1 thread(s)\n"),
            (["--require-reduction", "latency", "--latency-table", "table.json"],
             "Error: lowrank: latency-table 'table.json' has no entry for layer 'fc1' at ranks [] ([] is the dense layer); delete it to measure again\n"),
        ]
        for (args, expected) in cases {
            let r = try runs.run(["lowrank", "model.bin", "-o", "out.bin", "--method", "svd", "--layer-rank", "fc1=8"] + args, in: dir)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr == expected, "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"), "\(args)")
        }
    }
}
