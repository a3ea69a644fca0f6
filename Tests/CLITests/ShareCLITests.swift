import Foundation
import Testing
@testable import Compress
import Prune

/// `compressor share` end to end, and a `share` pipeline step, on the tiny fixture of `RunCLITests`.
@Suite struct ShareCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    func distinctNonZeros(_ t: Tensor) -> Int { Set(t.floats.filter { $0 != 0 }).count }

    @Test func shareHelpListsEveryPassParameter() throws {
        let help = try cli.run(["share", "--help"]).stdout
        for spec in SharePass.parameters {
            #expect(help.contains("--\(spec.name) ") || help.contains("--\(spec.name)\n"), "missing --\(spec.name)")
        }
        #expect(help.contains("--finetune-keep-codebooks"))
    }

    /// Shares and fine-tunes in one run; the file (float32 until codebook
    /// storage lands) holds at most 2^bits distinct values per layer.
    @Test func shareWithFineTuningWritesAtMostTwoToTheBitsValuesPerLayer() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["share", "model.bin", "-o", "shared.bin", "--fc-bits", "3", "--layer-bits", "fc3=2",
                              "--finetune-epochs", "1", "--finetune-batch", "16", "--data", "data",
                              "--validation-count", "32", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try cli.json(r.stdout)
        let metrics = try #require(json["metrics"] as? [String: Double])
        #expect(metrics["shared-layers"] == 3)
        #expect(metrics["distinct-values"].map { Int($0) } == 8 + 8 + 4)
        let changes = try #require(json["changes"] as? [String])
        #expect(changes.first?.hasPrefix("fc1: 8 clusters (3 bits), 8 distinct values") == true)
        #expect(changes.last?.hasPrefix("fine-tuned 1 epoch(s), centroids tied") == true)
        let input = try ModelFile.read(path: dir + "/model.bin"), m = try ModelFile.read(path: dir + "/shared.bin")
        for (name, limit) in [("fc1.weight", 8), ("fc2.weight", 8), ("fc3.weight", 4)] {
            let w = try #require(m.graph.initializers[name])
            #expect(distinctNonZeros(w) <= limit && distinctNonZeros(w) >= limit - 1, "\(name): \(distinctNonZeros(w))")
            #expect(distinctNonZeros(try #require(input.graph.initializers[name])) > 100)
        }
        #expect(m.metadata.history.map(\.pass).suffix(2) == ["finetune", "share"])
    }

    @Test func badInputFailsWithOneMessageAndNoFile() throws {
        let dir = try runs.fixture()
        for args in [["--fc-bits", "9"], ["--layer-bits", "conv*=4"], ["--exclude", "fc*"], ["--init", "kmeans++"]] {
            let r = try runs.run(["share", "model.bin", "-o", "out.bin"] + args, in: dir)
            #expect(r.status != 0)
            #expect(r.stderr.hasPrefix("Error: "), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"))
        }
        let r = try runs.run(["share", "model.bin", "-o", "out.bin", "--fc-bits", "0"], in: dir)
        #expect(r.stderr == "Error: share: fc-bits must be in 1...8, got 0\n")
    }

    @Test func shareStepInAPipeline() throws {
        let dir = try runs.fixture(steps: "steps:\n  - prune: {sparsity: 0.5}\n  - share: {fc-bits: 4}\n  - eval: {limit: 8}\n")
        let plan = try Pipeline.plan(file: dir + "/pipeline.yaml", overrides: PipelineOverrides(),
                                     registry: PassRegistry(PassRegistry.corePasses + PruneLibrary.passes))
        #expect(plan.steps.count == 3)
        let r = try runs.run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 2/3 share: "), "\(r.stdout)")
        let m = try ModelFile.read(path: dir + "/out/final.steps/02-share.bin")
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            let w = try #require(m.graph.initializers[name])
            // Pruned to half, so 2^4 - 1 centroids for the survivors.
            #expect(distinctNonZeros(w) == 15, "\(name)")
            #expect(w.floats.filter { $0 == 0 }.count == w.count / 2, "\(name)")
        }
        let bad = try runs.fixture(steps: "steps:\n  - share: {fc-bits: 9}\n")
        let b = try runs.run(["run", "pipeline.yaml"], in: bad)
        #expect(b.status != 0)
        #expect(b.stderr.contains("fc-bits must be in 1...8, got 9"), "\(b.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bad + "/out"))
    }
}
