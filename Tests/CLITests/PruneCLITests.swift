import Foundation
import Testing
@testable import Compress
import Prune

/// `compressor prune` and `compressor sensitivity` end to end on the tiny fixture of `RunCLITests`.
@Suite struct PruneCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    @Test func pruneHelpListsEveryPassParameter() throws {
        let help = try cli.run(["prune", "--help"]).stdout
        for spec in PrunePass.parameters {
            #expect(help.contains("--\(spec.name) ") || help.contains("--\(spec.name)\n"), "missing --\(spec.name)")
        }
    }

    @Test func weightPruningWritesASmallerSparseFile() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["prune", "model.bin", "-o", "pruned.bin", "--sparsity", "0.9", "--scope", "global",
                              "--schedule", "iterative", "--steps", "2", "--finetune-epochs", "1",
                              "--finetune-batch", "16", "--data", "data", "--validation-count", "32", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try cli.json(r.stdout)
        let metrics = try #require(json["metrics"] as? [String: Double])
        #expect(abs(metrics["selected-sparsity"]! - 0.9) < 1e-3)
        let original = try FileManager.default.attributesOfItem(atPath: dir + "/model.bin")[.size] as! Int
        let pruned = try FileManager.default.attributesOfItem(atPath: dir + "/pruned.bin")[.size] as! Int
        #expect(pruned * 4 < original, "pruned \(pruned) bytes, original \(original)")
        #expect(metrics["file-bytes-after"]! < metrics["file-bytes-before"]! / 4)
        let m = try ModelFile.read(path: dir + "/pruned.bin")
        let info = try cli.json(try cli.run(["info", dir + "/pruned.bin", "--json"]).stdout)
        #expect(info["nonZeros"] as? Int == m.graph.nonZeroParameterCount)
    }

    @Test func badAmountsFailWithOneMessageAndNoFile() throws {
        let dir = try runs.fixture()
        for args in [["--sparsity", "0.5", "--threshold-std", "1"], ["--target-macs", "0.5"], [],
                     ["--sparsity", "0.5", "--layers", "nope*"]] {
            let r = try runs.run(["prune", "model.bin", "-o", "out.bin"] + args, in: dir)
            #expect(r.status != 0)
            #expect(r.stderr.hasPrefix("Error: prune: "), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"))
        }
    }

    @Test func sensitivityWritesTableChartAndFeedsPrune() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["sensitivity", "model.bin", "-o", "sens", "--sparsities", "0,0.5,0.9",
                              "--data", "data", "--validation-count", "32"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try SensitivityReport.read(path: dir + "/sens/sensitivity.json")
        #expect(report.layers.map(\.layer) == ["fc1", "fc2", "fc3"])
        #expect(report.sparsities == [0, 0.5, 0.9])
        #expect(report.measuredOn == "validation split (32 images)")
        let html = try String(contentsOfFile: dir + "/sens/sensitivity.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("fc2"))
        let p = try runs.run(["prune", "model.bin", "-o", "p.bin", "--sensitivity", "sens/sensitivity.json",
                              "--max-accuracy-drop", "100", "--data", "data", "--validation-count", "32"], in: dir)
        #expect(p.status == 0, "\(p.stderr)")
        // Any drop allowed: every layer takes the largest sparsity tried.
        let m = try ModelFile.read(path: dir + "/p.bin")
        let fc1 = m.graph.initializers["fc1.weight"]!.floats
        #expect(fc1.filter { $0 == 0 }.count == Int((0.9 * Double(fc1.count)).rounded()))
        let rep = try runs.run(["report", "model.bin", "p.bin", "-o", "rep", "--sensitivity", "sens/sensitivity.json",
                                "--data", "data", "--validation-count", "32", "--batch", "1", "--repetitions", "1",
                                "--seconds", "0"], in: dir)
        #expect(rep.status == 0, "\(rep.stderr)")
        let page = try String(contentsOfFile: dir + "/rep/report.html", encoding: .utf8)
        #expect(page.contains("<h2>Sensitivity</h2>"))
    }
}
