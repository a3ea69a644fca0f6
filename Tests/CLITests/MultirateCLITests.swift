import Foundation
import Testing
@testable import Compress

/// `--multirate` with `--slow`/`--fast-last`, `--classes` and `--new-head` end to end.
@Suite struct MultirateCLITests {
    let cli = CLITests()

    /// The noisy 10-class 28x28 fixture of `TrainCLITests` and an initialized lenet5.
    func setUp() throws -> (data: String, model: String, dir: String) {
        let (dir, _, _) = try TrainCLITests().fixture()
        let model = dir + "/lenet5.bin"
        try cli.runOK(["init", "--arch", "lenet5", "-o", model, "--seed", "1"])
        return (dir + "/data", model, dir)
    }

    @Test func finetuneReportsFullAndFastStepTimes() throws {
        let (data, model, dir) = try setUp()
        let out = dir + "/mr.bin"
        let r = try cli.runOK(["finetune", model, "-o", out, "--data", data, "--validation-count", "40", "--epochs", "1",
                               "--batch", "16", "--lr", "0.001", "--multirate", "3", "--fast-last", "1", "--json"])
        let epochs = try #require(try cli.json(r.stdout)["epochs"] as? [[String: Any]])
        let steps = try #require(epochs.first?["steps"] as? [String: Any])
        // 80 training images, batch 16: 5 steps, of which 0 and 3 are full.
        #expect(steps["fullSteps"] as? Int == 2 && steps["fastSteps"] as? Int == 3, "\(steps)")
        let entry = try #require(try ModelFile.read(path: out).metadata.history.last)
        #expect(entry.parameters["multirate"] == "3" && entry.parameters["fast-last"] == "1")
        let text = try cli.runOK(["finetune", model, "-o", out, "--data", data, "--validation-count", "40", "--epochs", "1",
                                  "--batch", "16", "--lr", "0.001", "--multirate", "2", "--slow", "conv*"])
        #expect(text.stdout.contains(" ms full, ") && text.stdout.contains(" ms fast"), "\(text.stdout)")
    }

    @Test func passFineTuningTakesTheMultirateOptions() throws {
        let (data, model, dir) = try setUp()
        let out = dir + "/pruned.bin"
        try cli.runOK(["prune", model, "-o", out, "--sparsity", "0.5", "--data", data, "--validation-count", "40",
                       "--finetune-epochs", "1", "--finetune-batch", "16", "--finetune-lr", "0.001",
                       "--finetune-multirate", "2", "--finetune-slow", "conv*"])
        let fineTune = try #require(try ModelFile.read(path: out).metadata.history.last { $0.pass == "finetune" })
        #expect(fineTune.parameters["multirate"] == "2" && fineTune.parameters["slow"] == "conv*")
    }

    @Test func transferToANewHeadOnASubsetOfClasses() throws {
        let (data, model, dir) = try setUp()
        let out = dir + "/head.bin"
        try cli.runOK(["finetune", model, "-o", out, "--data", data, "--validation-count", "40", "--epochs", "1",
                       "--batch", "8", "--lr", "0.001", "--classes", "5-9", "--new-head"])
        let headed = try ModelFile.read(path: out)
        #expect(headed.graph.initializers["fc2.weight"]?.shape == [5, 500])
        #expect(headed.metadata.classNames.count == 5)
        #expect(headed.metadata.history.last?.parameters["classes"] == "5-9")
        let eval = try cli.runOK(["eval", out, "--data", data, "--classes", "5-9", "--json"])
        let images = try #require(try cli.json(eval.stdout)["images"] as? Int)
        let all = try cli.json(try cli.runOK(["eval", model, "--data", data, "--json"]).stdout)["images"] as? Int
        #expect(images > 0 && images < all!, "the subset is part of the 40 test images")
    }

    @Test func badInputGetsOneClearMessage() throws {
        let (data, model, dir) = try setUp()
        let out = dir + "/bad.bin"
        let base = ["finetune", model, "-o", out, "--data", data, "--validation-count", "40", "--epochs", "1", "--batch", "16"]
        let cases: [([String], String)] = [
            (["--multirate", "0"], "multirate must be at least 1 (1 is plain training), got 0"),
            (["--multirate", "2"], "multirate 2 needs the slow layers: slow PATTERNS or fast-last N"),
            (["--multirate", "2", "--slow", "conv*", "--fast-last", "1"], "slow and fast-last both choose the slow layers: give one"),
            (["--multirate", "2", "--slow", "bn*"], "slow pattern 'bn*' matches no layer (layers: conv1, conv2, fc1, fc2)"),
            (["--multirate", "2", "--fast-last", "4"],
             "fast-last must be between 1 and 3: the model has 4 conv and linear layers (conv1, conv2, fc1, fc2)"),
            (["--new-head"], "--new-head needs --classes (the new head's classes)"),
            (["--classes", "4-2"], "--classes entry '4-2' must be a class N or a range N-M with N <= M (class 0 is the first)"),
            (["--classes", "5-12"], "--classes: classes 10, 11, 12 not in the dataset, whose classes are 0-9"),
        ]
        for (extra, message) in cases {
            let r = try cli.run(base + extra)
            #expect(r.status != 0 && r.stderr.contains(message), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        let prune = try cli.run(["prune", model, "-o", out, "--sparsity", "0.5", "--finetune-multirate", "2", "--finetune-fast-last", "1"])
        #expect(prune.status != 0 && prune.stderr.contains(
            "finetune-multirate, finetune-fast-last without fine-tuning: give finetune-epochs N > 0"), "\(prune.stderr)")
        let small = dir + "/small.bin"
        try cli.runOK(["finetune", model, "-o", small, "--data", data, "--validation-count", "40", "--epochs", "1",
                       "--batch", "8", "--lr", "0.001", "--classes", "0-2", "--new-head"])
        let tooFew = try cli.run(["eval", small, "--data", data, "--classes", "0-4"])
        #expect(tooFew.status != 0 && tooFew.stderr.contains(
            "--classes keeps 5 classes but the model has 3 outputs; give it a new head with --new-head"), "\(tooFew.stderr)")
    }
}
