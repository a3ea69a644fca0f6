import Foundation
import Testing
@testable import Compress
import Prune
import LowRank

/// End-to-end tests of `compressor run` on a tiny model and dataset.
@Suite struct RunCLITests {
    let cli = CLITests()

    /// A directory with `model.bin` (LeNet-300 on 1x8x8 images, 4 classes),
    /// `data/` (.npy, 96 training and 32 test images) and `pipeline.yaml`.
    func fixture(steps: String = Self.steps) throws -> String {
        let dir = try cli.tempDir().path
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try ModelFile.write(Architecture.lenet300.build(seed: 1, inputShape: [1, 8, 8], classes: 4), to: dir + "/model.bin")
        for (split, n) in [("train", 96), ("test", 32)] {
            var rng = SeededGenerator(seed: UInt64(n))
            let labels = (0..<n).map { _ in Int64(rng.next() % 4) }
            let pixels = (0..<(n * 64)).map { i in Float(Int(labels[i / 64]) == (i % 64) / 16 ? 0.9 : 0.1) }
            try NPY.write(Tensor(shape: [n, 1, 8, 8], floats: pixels), path: "\(dir)/data/\(split)_images.npy")
            try NPY.write(Tensor(shape: [n], int64s: labels), path: "\(dir)/data/\(split)_labels.npy")
        }
        let text = "model: model.bin\ndata: data\noutput: out/final.bin\nseed: 5\nvalidation-count: 32\n" + steps
        try text.write(toFile: dir + "/pipeline.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    static let steps = """
        steps:
          - fold-bn
          - finetune: {epochs: 1, batch: 16, lr: 0.05}
          - eval: {limit: 20}

        """

    func run(_ args: [String], in directory: String) throws -> CLITests.Result {
        let p = Process()
        p.executableURL = CLITests.binary
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLITests.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                               stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func finetuneHelpListsEveryTrainingParameter() throws {
        let help = try cli.run(["finetune", "--help"]).stdout
        for spec in TrainingSettings.parameterSpecs {
            #expect(help.contains("--\(spec.name) ") || help.contains("--\(spec.name)\n"), "missing --\(spec.name)")
        }
    }

    @Test func runsAPipelineAndPrintsOneLinePerStep() throws {
        let dir = try fixture()
        let r = try run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("step ") }.map { $0.split(separator: ":")[0] }
                == ["step 1/3 fold-bn", "step 2/3 finetune", "step 3/3 eval"])
        #expect(lines.contains { $0.hasPrefix("step 3/3 eval: top-1 ") && $0.contains("(20 test images") })
        #expect(lines.contains { $0.hasPrefix("wrote \(dir)/out/final.bin: ") })
        // Without a report directory in the file, the report goes beside the output.
        #expect(FileManager.default.fileExists(atPath: dir + "/out/final-report/report.html"))
        let eval = try cli.run(["eval", dir + "/out/final.bin", "--data", dir + "/data", "--validation-count", "32",
                                "--limit", "20", "--json"])
        let top1 = try #require(try cli.json(eval.stdout)["top1"] as? Double)
        #expect(lines.contains { $0.contains(String(format: "top-1 %.2f%%", top1 * 100)) })
    }

    @Test func runWritesTheReportWithTheSameNumbersAsEval() throws {
        let dir = try fixture()
        let r = try run(["run", "pipeline.yaml", "--report", "rep"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        for file in ["report.json", "report.md", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/rep/\(file)"))
        }
        let report = try cli.json(String(contentsOfFile: dir + "/rep/report.json", encoding: .utf8))
        let models = try #require(report["models"] as? [[String: Any]])
        #expect(models.map { $0["label"] as? String } == ["input", "01-fold-bn", "02-finetune"])
        let eval = try cli.run(["eval", dir + "/out/final.bin", "--data", dir + "/data", "--validation-count", "32", "--json"])
        let top1 = try #require(try cli.json(eval.stdout)["top1"] as? Double)
        let last = try #require(models.last)
        #expect((last["accuracy"] as? [String: Any])?["top1"] as? Double == top1)
    }

    /// The pipeline report shows the input and every stage's model, not only the
    /// input and output: Deep Compression's prune, share and huffman here, each
    /// with its weights' bits and (asked for in `report:`) validation accuracy.
    @Test func pipelineReportShowsEveryStage() throws {
        let steps = """
            steps:
              - prune: {sparsity: 0.8, scope: global}
              - eval: {limit: 8}
              - share: {fc-bits: 3}
              - huffman
              - eval

            report:
              directory: rep
              batches: [1]
              validation: true

            """
        let dir = try fixture(steps: steps)
        let r = try run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try ReportWriter.decode(json: Data(contentsOf: URL(fileURLWithPath: dir + "/rep/report.json")))
        let labels = ["input", "01-prune", "03-share", "04-huffman"]
        #expect(report.models.map(\.label) == labels)
        #expect(report.models.dropFirst().map(\.path)
                == ["01-prune", "03-share", "04-huffman"].map { "\(dir)/out/final.steps/\($0).bin" })
        #expect(report.settings.validationImages == 32)
        for m in report.models {
            let v = try #require(m.validationAccuracy, "\(m.label)")
            #expect(v.images == 32 && (0...1).contains(v.top1))
        }
        // Sharing makes codebooks; Huffman coding then says what each weight would take without it.
        #expect(report.models[2].layers.allSatisfy { $0.encoding.contains("codebook/") && $0.withoutHuffman == nil })
        #expect(report.models[3].layers.allSatisfy { $0.withoutHuffman != nil })
        let markdown = try String(contentsOfFile: dir + "/rep/report.md", encoding: .utf8)
        let html = try String(contentsOfFile: dir + "/rep/report.html", encoding: .utf8)
        for label in labels {
            #expect(markdown.contains("| \(label) | ") && markdown.contains("### \(label)"), "\(label)")
            #expect(html.contains("<h3>\(label)</h3>"), "\(label)")
        }
        #expect(html.components(separatedBy: "data-series=\"test top-1\"").count - 1 == labels.count)
    }

    /// A `prune` step inside a pipeline: the step's model has half of every conv/linear
    /// weight zeroed (counted here, not taken from the pass's report), the smallest by magnitude.
    @Test func pruneStepPrunesTheStepModel() throws {
        let dir = try fixture(steps: "steps:\n  - prune: {sparsity: 0.5}\n  - eval: {limit: 8}\n")
        let r = try run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 1/2 prune: "), "\(r.stdout)")
        let input = try ModelFile.read(path: dir + "/model.bin")
        let step = try ModelFile.read(path: dir + "/out/final.steps/01-prune.bin")
        let weightLayers = step.graph.nodes.filter { node in
            switch node.op { case .conv2d, .linear: true; default: false }
        }
        #expect(weightLayers.map(\.name) == ["fc1", "fc2", "fc3"])
        for node in weightLayers {
            let before = try #require(input.graph.initializers[node.inputs[1]]), after = try #require(step.graph.initializers[node.inputs[1]])
            #expect(after.shape == before.shape)
            #expect(zerosByLoop(before) == 0, "\(node.name) had zeros before pruning")
            #expect(zerosByLoop(after) == before.count / 2, "\(node.name): \(zerosByLoop(after)) of \(after.count) zero")
            // Every zeroed weight was no larger than every kept one, and the kept ones are unchanged.
            let old = before.floats, new = after.floats
            let largestZeroed = old.indices.filter { new[$0] == 0 }.map { abs(old[$0]) }.max() ?? 0
            let smallestKept = old.indices.filter { new[$0] != 0 }.map { abs(old[$0]) }.min() ?? 0
            #expect(largestZeroed <= smallestKept, "\(node.name)")
            #expect(old.indices.allSatisfy { new[$0] == 0 || new[$0] == old[$0] }, "\(node.name)")
        }
        // The eval step changes nothing: the output is the pruned model.
        #expect(FileManager.default.contents(atPath: dir + "/out/final.bin") == FileManager.default.contents(atPath: dir + "/out/final.steps/01-prune.bin"))
    }

    @Test func commandLineOverridesAndJSON() throws {
        let dir = try fixture()
        let sub = dir + "/sub"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/model.bin", toPath: sub + "/other.bin")
        let r = try run(["run", "../pipeline.yaml", "--model", "other.bin", "-o", "mine.bin", "--json"], in: sub)
        #expect(r.status == 0, "\(r.stderr)")
        let j = try cli.json(r.stdout)
        #expect(j["input"] as? String == sub + "/other.bin")
        #expect(j["output"] as? String == sub + "/mine.bin")
        #expect(j["stepsDirectory"] as? String == sub + "/mine.steps")
        #expect((j["steps"] as? [[String: Any]])?.count == 3)
        #expect(FileManager.default.fileExists(atPath: sub + "/mine.bin"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func badPipelineFailsWithEveryProblemAndWritesNothing() throws {
        let dir = try fixture(steps: "steps:\n  - fold-bn: {verify: perhaps}\n  - squash\n  - finetune: {lr: -1}\n")
        let r = try run(["run", "pipeline.yaml", "--model", "gone.bin"], in: dir)
        #expect(r.status != 0)
        #expect(r.stderr.contains("4 problems"))
        for text in ["input model \(dir)/gone.bin does not exist", "step 1 (fold-bn, line 7): parameter 'verify'",
                     "step 2 (line 8): unknown step 'squash'", "step 3 (finetune, line 9): learning rate must be positive"] {
            #expect(r.stderr.contains(text), "\(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func resumeRunsOnlyTheUnfinishedStepsAndWritesTheSameBytes() throws {
        let dir = try fixture()
        #expect(try run(["run", "pipeline.yaml"], in: dir).status == 0)
        let output = dir + "/out/final.bin", state = dir + "/out/final.steps/state.json"
        let straight = try #require(FileManager.default.contents(atPath: output))
        // Make it look as if the run stopped after step 1: the manifest lists one step, no output.
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state))) as? [String: Any])
        manifest["steps"] = Array(try #require(manifest["steps"] as? [Any]).prefix(1))
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: state))
        try FileManager.default.removeItem(atPath: output)
        let r = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 1/3 fold-bn: finished in an earlier run"))
        #expect(r.stdout.contains("step 2/3 finetune: fine-tuned 1 epoch;"))
        #expect(FileManager.default.contents(atPath: output) == straight)
    }

    @Test func resumeRefusesAChangedPipeline() throws {
        let dir = try fixture()
        #expect(try run(["run", "pipeline.yaml"], in: dir).status == 0)
        let changed = try String(contentsOfFile: dir + "/pipeline.yaml", encoding: .utf8).replacingOccurrences(of: "seed: 5", with: "seed: 6")
        try changed.write(toFile: dir + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let r = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(r.status != 0)
        #expect(r.stderr.contains("the pipeline or its inputs changed") && r.stderr.contains("was 'seed 5 threads 1', now 'seed 6 threads 1'"))
    }

    @Test func resumeReusesTheStepsBeforeTheFirstChangedOne() throws {
        let dir = try fixture()
        #expect(try run(["run", "pipeline.yaml"], in: dir).status == 0)
        let finetuned = try Data(contentsOf: URL(fileURLWithPath: dir + "/out/final.steps/02-finetune.bin"))
        let changed = try String(contentsOfFile: dir + "/pipeline.yaml", encoding: .utf8)
            .replacingOccurrences(of: "eval: {limit: 20}", with: "eval: {limit: 10}")
        try changed.write(toFile: dir + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let r = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 3 changed since that run; reusing steps 1-2, rerunning from step 3"))
        #expect(r.stdout.contains("step 1/3 fold-bn: finished in an earlier run"))
        #expect(r.stdout.contains("step 2/3 finetune: finished in an earlier run"))
        #expect(r.stdout.contains("(10 test images"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out/final.steps/02-finetune.bin")) == finetuned)
        // The manifest now describes the changed pipeline: resuming again reruns nothing.
        let again = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(again.status == 0)
        #expect(again.stdout.contains("step 3/3 eval: finished in an earlier run"))
    }

    /// Flips the last byte of the file at `path`.
    func flipLastByte(_ path: String) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    @Test func resumeRefusesChangedDataWithExitOne() throws {
        let dir = try fixture()
        #expect(try run(["run", "pipeline.yaml"], in: dir).status == 0)
        let state = try Data(contentsOf: URL(fileURLWithPath: dir + "/out/final.steps/state.json"))
        try flipLastByte(dir + "/data/test_images.npy")
        let r = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("""
            cannot resume from \(dir)/out/final.steps: the data changed since that run \
            (test_images.npy: content differs); run without --resume to start over
            """), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out/final.steps/state.json")) == state)
    }

    @Test func resumeRefusesATamperedStepFileUntilAskedToRerunIt() throws {
        let dir = try fixture()
        #expect(try run(["run", "pipeline.yaml"], in: dir).status == 0)
        let output = dir + "/out/final.bin", file = dir + "/out/final.steps/01-fold-bn.bin"
        let straight = try Data(contentsOf: URL(fileURLWithPath: output))
        try flipLastByte(file)
        let r = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("step 1 (fold-bn) file \(file) was modified after that run"), "\(r.stderr)")
        #expect(r.stderr.contains("run with --rerun-from 1 to rerun from that step, or without --resume to start over"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == straight)
        let rerun = try run(["run", "pipeline.yaml", "--rerun-from", "1"], in: dir)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stdout.contains("rerunning every step as asked (--rerun-from 1)"))
        #expect(!rerun.stdout.contains("finished in an earlier run"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == straight)
        let again = try run(["run", "pipeline.yaml", "--resume"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("step 1/3 fold-bn: finished in an earlier run"))
    }

    @Test func rerunFromIsExplainedAndChecked() throws {
        let help = try cli.run(["run", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("--rerun-from <N> Like --resume, but rerun step N and every later step"), "\(help)")
        #expect(help.contains("the data files' content") && help.contains("--rerun-from N, or a run without --resume"))
        let dir = try fixture()
        let zero = try run(["run", "pipeline.yaml", "--rerun-from", "0"], in: dir)
        #expect(zero.status == 64 && zero.stderr.contains("--rerun-from must be at least 1"))
        let past = try run(["run", "pipeline.yaml", "--rerun-from", "4"], in: dir)
        #expect(past.status == 1 && past.stderr.contains("cannot rerun from step 4: the pipeline has steps 1 to 3"))
    }

    /// Every shipped example parses and validates (its model and data exist, its steps and parameters are known).
    @Test func examplePipelinesValidate() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("pipelines").path
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.contains("fold-bn-finetune.yaml"))
        for file in files {
            let path = directory + "/" + file
            // A reference model still training (see models/README.md) is stood in for by an
            // untrained model of the same architecture, so the steps are still validated.
            var overrides = PipelineOverrides()
            let pipeline = try Pipeline.read(path: path)
            if let model = pipeline.model, !FileManager.default.fileExists(atPath: model) {
                let name = URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
                let arch = try #require(Architecture(rawValue: name), "\(file) names a missing model that is no architecture")
                let standIn = try cli.tempDir().appendingPathComponent("\(name).bin").path
                try ModelFile.write(arch.build(seed: 0), to: standIn)
                overrides.model = standIn
            }
            let registry = PassRegistry(PassRegistry.corePasses + PruneLibrary.passes + LowRankLibrary.passes)
            let plan = try Pipeline.plan(file: path, overrides: overrides, registry: registry)
            #expect(!plan.steps.isEmpty)
            #expect(plan.output.hasPrefix(root.path + "/out/"))
        }
    }
}
