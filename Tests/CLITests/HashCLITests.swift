import Foundation
import Testing
@testable import Compress
import Prune

/// `compressor hash` end to end, `info` and `convert` on hashed models, and a
/// `hash` pipeline step, on the tiny fixture of `RunCLITests`.
@Suite struct HashCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    func fileSize(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    @Test func hashHelpListsEveryPassParameter() throws {
        let help = try cli.run(["hash", "--help"]).stdout
        for spec in HashPass.parameters {
            #expect(help.contains("--\(spec.name) ") || help.contains("--\(spec.name)\n"), "missing --\(spec.name)")
        }
        #expect(help.contains("compressor hash lenet300.bin -o hashed.bin --compression 8"))
    }

    @Test func hashWithFineTuningWritesASmallerFileThatStaysHashed() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["hash", "model.bin", "-o", "hashed.bin", "--compression", "8", "--finetune-epochs", "1",
                              "--finetune-batch", "16", "--data", "data", "--validation-count", "32", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try cli.json(r.stdout)
        let metrics = try #require(json["metrics"] as? [String: Double])
        #expect(metrics["hashed-layers"] == 3)
        #expect(metrics["buckets"] == Double(2_400 + 3_750 + 50))
        let m = try ModelFile.read(path: dir + "/hashed.bin")
        #expect(m.metadata.storage.hashedTensors.keys.sorted() == ["fc1.weight", "fc2.weight", "fc3.weight"])
        #expect(m.metadata.history.map(\.pass).suffix(2) == ["finetune", "hash"])
        let dense = try fileSize(dir + "/model.bin"), hashed = try fileSize(dir + "/hashed.bin")
        #expect(Double(hashed) < Double(dense) / 6, "\(hashed) vs \(dense)")

        let info = try runs.run(["info", "hashed.bin"], in: dir)
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("hashed weights (HashedNets"), "\(info.stdout)")
        #expect(info.stdout.contains("fc1.weight"))
        #expect(info.stdout.contains("8.00x"))
        // 64x300 + 300x100 + 100x4 weights as 2,400 + 3,750 + 50 buckets, and 404 biases.
        #expect(info.stdout.contains("6,604 stored: hashed tensors as their buckets"), "\(info.stdout)")
        let infoJSON = try cli.json(try runs.run(["info", "hashed.bin", "--json"], in: dir).stdout)
        let tensors = try #require(infoJSON["hashedTensors"] as? [[String: Any]])
        #expect(tensors.count == 3)
        #expect(infoJSON["storedParameters"] as? Int == 6_604)
        #expect(tensors.first?["tensor"] as? String == "fc1.weight")
        #expect(tensors.first?["buckets"] as? Int == 2_400)
        #expect(tensors.first?["encoding"] as? String == "hashed-float32")
        let bits = try #require(tensors.first?["bitsPerWeight"] as? Double)
        #expect(bits > 4 && bits < 4.1, "\(bits)")

        let convert = try runs.run(["convert", "hashed.bin", "-o", "hashed.onnx"], in: dir)
        #expect(convert.status == 0, "\(convert.stderr)")
        #expect(convert.stdout.contains("note: 3 hashed tensor(s) (fc1.weight, fc2.weight, fc3.weight) written as their virtual weights in plain float32"),
                "\(convert.stdout)")
    }

    @Test func badInputFailsWithOneMessageAndNoFile() throws {
        let dir = try runs.fixture()
        for args in [["--compression", "1"], ["--compression", "0"], ["--layers", "conv*"], ["--exclude", "fc*"],
                     ["--init", "zeros"]] {
            let r = try runs.run(["hash", "model.bin", "-o", "out.bin"] + args, in: dir)
            #expect(r.status != 0)
            #expect(r.stderr.hasPrefix("Error: "), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count <= 2, "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"))
        }
        let r = try runs.run(["hash", "model.bin", "-o", "out.bin", "--compression", "0.5"], in: dir)
        #expect(r.stderr == "Error: hash: compression must be greater than 1, got 0.5\n")
        // Pruning a hashed model without leaving the hashed layers out is refused.
        #expect(try runs.run(["hash", "model.bin", "-o", "hashed.bin", "--layers", "fc2"], in: dir).status == 0)
        let p = try runs.run(["prune", "hashed.bin", "-o", "pruned.bin", "--sparsity", "0.5"], in: dir)
        #expect(p.status != 0)
        #expect(p.stderr.contains("layer 'fc2' is hashed"), "\(p.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/pruned.bin"))
    }

    @Test func hashStepInAPipeline() throws {
        let dir = try runs.fixture(steps: "steps:\n  - hash: {compression: 4, layers: 'fc1,fc2'}\n  - eval: {limit: 8}\n")
        let r = try runs.run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 1/2 hash: "), "\(r.stdout)")
        let m = try ModelFile.read(path: dir + "/out/final.steps/01-hash.bin")
        #expect(m.metadata.storage.hashedTensors.mapValues(\.buckets) == ["fc1.weight": 4_800, "fc2.weight": 7_500])
    }
}
