import Foundation
import Testing
@testable import Compress
import Prune

/// Options generated from parameter declarations (a pass's own, the fine-tune
/// group, the training options), end to end on the tiny fixture of `RunCLITests`.
@Suite struct GeneratedOptionsCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    @Test func passHelpListsTheFineTuneGroupWithItsPrefix() throws {
        let help = try cli.run(["prune", "--help"]).stdout
        #expect(help.contains("FINE-TUNING OPTIONS:"))
        for spec in TrainingSettings.parameterSpecs {
            #expect(help.contains("--finetune-\(spec.name) "), "missing --finetune-\(spec.name)")
        }
        #expect(!help.contains("--finetune-settings"))
        #expect(try cli.run(["fold-bn", "--help"]).stdout.contains("--verify-batch <integer>"))
    }

    @Test func trainHelpListsEveryTrainingParameterWithTrainDefaults() throws {
        let help = try cli.run(["train", "--help"]).stdout
        for spec in TrainingSettings.parameterSpecs {
            #expect(help.contains("--\(spec.name) "), "missing --\(spec.name)")
        }
        #expect(help.contains("Epochs to train. (default: \(TrainingSettings().epochs))"))
        let fineTune = try cli.run(["finetune", "--help"]).stdout
        #expect(fineTune.contains("Epochs to train. (default: \(TrainingSettings.fineTuneDefaults.epochs))"))
    }

    /// `--finetune-NAME` reaches the fine-tuning run: its history entry holds
    /// the settings it ran with, and the pass's entry the options as given.
    @Test func fineTuneOptionsReachTheTrainer() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["prune", "model.bin", "-o", "p.bin", "--sparsity", "0.5", "--finetune-epochs", "1",
                              "--finetune-batch", "16", "--finetune-flip", "--finetune-lr=0.02",
                              "--finetune-nesterov", "false", "--data", "data", "--validation-count", "32"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let history = try ModelFile.read(path: dir + "/p.bin").metadata.history
        let fineTune = try #require(history.first { $0.pass == "finetune" })
        #expect(fineTune.parameters["batch"] == "16")
        #expect(fineTune.parameters["flip"] == "true")
        #expect(fineTune.parameters["lr"] == "0.02")
        #expect(fineTune.parameters["nesterov"] == "false")
        #expect(fineTune.parameters["epochs"] == "1")
        let prune = try #require(history.last)
        #expect(prune.pass == "prune")
        #expect(prune.parameters["finetune-flip"] == "true" && prune.parameters["finetune-batch"] == "16")
    }

    /// Where the model and the options stand, and `--name value` or `--name=value`, change nothing.
    @Test func optionOrderAndSpellingDoNotChangeTheOutput() throws {
        let dir = try runs.fixture()
        let a = try runs.run(["prune", "model.bin", "-o", "a.bin", "--sparsity", "0.5", "--scope", "global"], in: dir)
        let b = try runs.run(["prune", "--sparsity=0.5", "--scope", "global", "-o", "b.bin", "model.bin"], in: dir)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let (x, y) = (try Data(contentsOf: URL(fileURLWithPath: dir + "/a.bin")),
                      try Data(contentsOf: URL(fileURLWithPath: dir + "/b.bin")))
        #expect(!x.isEmpty && x == y)
    }

    @Test func usageErrorsNameTheOptionAndWriteNothing() throws {
        let dir = try runs.fixture()
        let cases: [([String], String)] = [
            (["prune", "model.bin", "-o", "out.bin", "--sparsty", "0.5"], "unknown option '--sparsty' (did you mean '--sparsity'?)"),
            (["prune", "model.bin", "-o", "out.bin", "--sparsity"], "missing value for '--sparsity <number>'"),
            (["prune", "model.bin", "-o", "out.bin", "--sparsity", "0.5", "--lr", "0.1"],
             "unknown option '--lr' (did you mean '--finetune-lr'?)"),
            (["prune", "model.bin", "other.bin", "-o", "out.bin", "--sparsity", "0.5"], "one input model, got 'model.bin', 'other.bin'"),
            (["prune", "-o", "out.bin", "--sparsity", "0.5"], "missing the input model"),
            (["finetune", "model.bin", "-o", "out.bin", "--epochs", "two"], "option '--epochs' must be integer, got 'two'"),
            (["train", "--arch", "lenet300", "-o", "out.bin", "--finetune-lr", "0.1"], "unknown option '--finetune-lr'"),
        ]
        for (args, message) in cases {
            let r = try runs.run(args, in: dir)
            #expect(r.status == 64, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("Error: \(message)"), "\(args): \(r.stderr)")
            #expect(r.stderr.contains("Usage: compressor \(args[0]) "), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"))
        }
    }

    @Test func trueFalseOptionsTakeAValueOrStandAlone() throws {
        let dir = try runs.fixture()
        for (args, flip) in [(["--flip"], "true"), (["--flip", "false"], "false"), (["--flip=true"], "true")] {
            let r = try runs.run(["finetune", "model.bin", "-o", "f.bin", "--epochs", "1", "--batch", "16",
                                  "--data", "data", "--validation-count", "32"] + args, in: dir)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            let entry = try #require(try ModelFile.read(path: dir + "/f.bin").metadata.history.last)
            #expect(entry.parameters["flip"] == flip, "\(args)")
        }
    }
}
