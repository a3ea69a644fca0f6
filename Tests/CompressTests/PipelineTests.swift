import Foundation
import Testing
@testable import Compress

/// A tiny model and dataset on disk, and pipeline files that use them.
struct PipelineFixture {
    let directory: String

    /// Writes `model.bin` (LeNet-300 on 1x8x8 images, 4 classes) and `data/`
    /// (quadrant images as .npy: 160 training, 64 test) into a new temporary directory.
    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try ModelFile.write(Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4), to: directory + "/model.bin")
        try Self.writeSplit("train", count: 160, seed: 1, to: directory + "/data")
        try Self.writeSplit("test", count: 64, seed: 3, to: directory + "/data")
    }

    /// Images whose class is the bright quadrant of a 1x8x8 image.
    static func writeSplit(_ prefix: String, count n: Int, seed: UInt64, to directory: String) throws {
        var rng = SeededGenerator(seed: seed)
        var pixels = [Float](repeating: 0, count: n * 64)
        var labels: [Int64] = []
        for i in 0..<n {
            let q = Int(rng.next() % 4)
            labels.append(Int64(q))
            for p in 0..<64 where (p / 8 / 4) * 2 + (p % 8) / 4 == q { pixels[i * 64 + p] = 0.8 }
            for p in 0..<64 { pixels[i * 64 + p] += 0.2 * rng.nextUniform() }
        }
        try NPY.write(Tensor(shape: [n, 1, 8, 8], floats: pixels), path: "\(directory)/\(prefix)_images.npy")
        try NPY.write(Tensor(shape: [n], int64s: labels), path: "\(directory)/\(prefix)_labels.npy")
    }

    static let steps = """
        steps:
          - fold-bn:
              verify-batch: 2
          - finetune:
              epochs: 2
              batch: 32
              lr: 0.05
          - eval
        """

    /// Writes a pipeline file into the fixture directory and returns its path.
    func write(_ body: String = steps, name: String = "pipeline.yaml", output: String = "out/final.bin") throws -> String {
        let text = """
            model: model.bin
            data: data
            output: \(output)
            seed: 3
            validation-count: 32

            """ + body + "\n"
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func plan(_ path: String, overrides: PipelineOverrides = PipelineOverrides()) throws -> PipelinePlan {
        try Pipeline.plan(file: path, overrides: overrides, registry: PassRegistry(PassRegistry.corePasses))
    }

    func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
}

@Suite struct PipelineTests {
    let registry = PassRegistry(PassRegistry.corePasses)

    // MARK: Parsing

    @Test func parsesAValidFile() throws {
        let yaml = """
            model: models/in.bin
            output: /tmp/out.bin
            seed: 7
            threads: 2
            steps:
              - fold-bn: {verify: false}
              - finetune:
                  epochs: 1
                  weight-decay: 1e-4
              - eval:
                  limit: 100
              - eval
            report:
              directory: report
              batches: [1, 8]
              limit: 50
              validation: yes
            """
        let p = try Pipeline.parse(yaml: yaml, baseDirectory: "/work/recipes")
        #expect(p.model == "/work/recipes/models/in.bin")
        #expect(p.output == "/tmp/out.bin")
        #expect(p.data == nil)
        #expect(p.seed == 7 && p.threads == 2)
        #expect(p.steps.map(\.name) == ["fold-bn", "finetune", "eval", "eval"])
        #expect(p.steps[0].parameters == ["verify": "false"])
        #expect(p.steps[1].parameters == ["epochs": "1", "weight-decay": "1e-4"])
        #expect(p.steps[1].line == 7)
        #expect(p.report == {
            var r = PipelineReportSettings(directory: "/work/recipes/report")
            r.batches = [1, 8]; r.limit = 50; r.validation = true
            return r
        }())
    }

    @Test func rejectsUnknownKeysAndWrongTypesWithLines() {
        let yaml = """
            model: in.bin
            modle: typo.bin
            seed: -1
            threads: [1, 2]
            steps:
              - fold-bn:
                  verify: [true]
              - {a: 1, b: 2}
            report:
              colour: blue
              validation: maybe
            """
        #expect {
            try Pipeline.parse(yaml: yaml, baseDirectory: "/")
        } throws: { error in
            let problems = (error as? PipelineError)?.problems ?? []
            return problems == [
                "line 2: unknown key 'modle' in the pipeline (allowed: model, data, output, seed, threads, validation-count, steps, report)",
                "line 3: 'seed' must be an integer >= 0, got '-1'",
                "line 4: 'threads' must be an integer >= 1, got a list",
                "line 7: step 1 (fold-bn): parameter 'verify' must be a single value",
                "line 8: step 2 must be a step name, or one step name mapped to its parameters (`- fold-bn: {verify: true}`)",
                "line 10: unknown key 'colour' in report (allowed: directory, batches, threads, limit, validation)",
                "line 11: 'report.validation' must be true or false, got 'maybe'",
            ]
        }
    }

    @Test func rejectsTextThatIsNotYAMLOrNotAMapping() {
        #expect(throws: PipelineError.self) { try Pipeline.parse(yaml: "steps: [unclosed", baseDirectory: "/") }
        #expect(throws: PipelineError(problems: ["the file must be a mapping with keys model, data, output, seed, threads, validation-count, steps, report"])) {
            try Pipeline.parse(yaml: "- just a list", baseDirectory: "/")
        }
    }

    // MARK: Validation

    @Test func reportValidationNeedsAValidationSplit() throws {
        let f = try PipelineFixture()
        var p = try Pipeline.parse(yaml: "model: model.bin\ndata: data\noutput: out.bin\nvalidation-count: 0\n"
                                       + PipelineFixture.steps + "\nreport:\n  validation: true\n",
                                   baseDirectory: f.directory)
        #expect(throws: PipelineError(problems: ["report.validation needs a validation split: 'validation-count' must be at least 1"])) {
            try p.validate(registry: registry)
        }
        p.validationCount = 8
        #expect(try p.validate(registry: registry).pipeline.report?.validation == true)
    }

    @Test func validationListsEveryProblemAndRunsNothing() throws {
        let f = try PipelineFixture()
        let path = try f.write("""
            steps:
              - fold-bn:
                  verify: maybe
                  colour: red
              - prune-everything
              - finetune:
                  epochs: 0
              - finetune:
                  optimizer: rmsprop
              - eval:
                  limit: -1
            """, output: "out/never.bin")
        let overrides = PipelineOverrides(model: f.directory + "/missing.bin")
        #expect {
            try f.plan(path, overrides: overrides)
        } throws: { error in
            let problems = (error as? PipelineError)?.problems ?? []
            return problems == [
                "input model \(f.directory)/missing.bin does not exist",
                "step 1 (fold-bn, line 7): unknown parameter 'colour' (fold-bn takes: verify, verify-batch)",
                "step 1 (fold-bn, line 7): parameter 'verify' must be true/false, got 'maybe'",
                "step 2 (line 10): unknown step 'prune-everything' (known: eval, finetune, fold-bn)",
                "step 3 (finetune, line 11): epochs must be at least 1, got 0",
                "step 4 (finetune, line 13): parameter 'optimizer' must be sgd|adam|adamw, got 'rmsprop'",
                "step 5 (eval, line 15): parameter 'limit' must be >= 0, got -1",
            ]
        }
        #expect(!FileManager.default.fileExists(atPath: f.directory + "/out"))
    }

    @Test func missingDataDirectoryAndOutputAreProblems() throws {
        let yaml = "model: model.bin\ndata: nowhere\nsteps: [eval]\n"
        let f = try PipelineFixture()
        let p = try Pipeline.parse(yaml: yaml, baseDirectory: f.directory)
        #expect(throws: PipelineError(problems: ["no output: set 'output:' in the file or pass -o",
                                                 "data directory \(f.directory)/nowhere does not exist"])) {
            try p.validate(registry: registry)
        }
    }

    @Test func commandLineValuesOverrideTheFile() throws {
        let f = try PipelineFixture()
        let p = try Pipeline.read(path: try f.write())
        #expect(p.output == f.directory + "/out/final.bin")
        let o = p.applying(PipelineOverrides(model: "/elsewhere/m.bin", output: "/elsewhere/o.bin", reportDirectory: "/r"))
        #expect(o.model == "/elsewhere/m.bin" && o.output == "/elsewhere/o.bin" && o.report?.directory == "/r")
        #expect(o.steps == p.steps && o.seed == p.seed)
        #expect(p.applying(PipelineOverrides()) == p)
    }

    @Test func trainingParametersAreDeclaredOnce() throws {
        let s = try TrainingSettings(validating: ["epochs": "2", "lr": "0.1", "flip": "true", "optimizer": "adam"],
                                     defaults: .fineTuneDefaults)
        #expect(s.epochs == 2 && s.learningRate == 0.1 && s.augmentation.horizontalFlip && s.optimizer == .adam)
        #expect(s.batchSize == TrainingSettings.fineTuneDefaults.batchSize)
        #expect(throws: ParameterError(pass: "finetune", problems: ["batch size must be at least 2 (BatchNorm needs batch statistics), got 1",
                                                                    "gamma must be in (0, 1], got 2.0"])) {
            try TrainingSettings(validating: ["batch": "1", "gamma": "2"], defaults: .fineTuneDefaults)
        }
        #expect(TrainingSettings.parameterSpecs.map(\.name) == [
            "epochs", "batch", "lr", "optimizer", "momentum", "nesterov", "weight-decay", "schedule", "step-epochs",
            "gamma", "label-smoothing", "crop-padding", "flip", "keep-zeros", "keep-codebooks", "keep-precisions",
            "teacher", "temperature", "alpha", "teacher-cache", "multirate", "slow", "fast-last",
        ])
    }

    // MARK: Running

    @Test func runsEveryStepAndRecordsAccuracy() throws {
        let f = try PipelineFixture()
        let plan = try f.plan(try f.write())
        var seen: [String] = []
        let runner = PipelineRunner(plan: plan)
        runner.onStep = { seen.append($0.name) }
        let summary = try runner.run(resume: false)
        #expect(seen == ["fold-bn", "finetune", "eval"])
        let model = try ModelFile.read(path: summary.output)
        #expect(model.metadata.history.map(\.pass) == ["init", "fold-bn", "finetune"])
        let steps = summary.stepsDirectory
        #expect(summary.steps.map(\.file) == [steps + "/01-fold-bn.bin", steps + "/02-finetune.bin", nil])
        #expect(f.bytes(steps + "/02-finetune.bin") == f.bytes(summary.output))
        let test = try DatasetLoader.load(directory: f.directory + "/data", validationCount: 32).test
        #expect(summary.finalAccuracy == (try Evaluation.accuracy(of: model, on: test)))
        #expect(summary.steps[2].metrics["top1"] == summary.finalAccuracy?.top1)
        #expect(!FileManager.default.fileExists(atPath: steps + "/02-finetune.ckpt"))
    }

    @Test func sameInputsWriteTheSameBytes() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        let a = try PipelineRunner(plan: try f.plan(path)).run(resume: false).output
        let other = PipelineOverrides(output: f.directory + "/again/final.bin")
        let b = try PipelineRunner(plan: try f.plan(path, overrides: other)).run(resume: false).output
        #expect(a != b)
        #expect(f.bytes(a) != nil && f.bytes(a) == f.bytes(b))
    }

    @Test func stepSeedsDeriveFromPipelineSeedAndStepNumber() {
        let seeds = (1...4).map { PipelineRunner.seed(pipelineSeed: 3, step: $0) }
        #expect(Set(seeds).count == 4)
        #expect(seeds == (1...4).map { PipelineRunner.seed(pipelineSeed: 3, step: $0) })
        #expect(PipelineRunner.seed(pipelineSeed: 4, step: 1) != seeds[0])
    }

    @Test func resumesAfterAnInterruptionBetweenSteps() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        let straight = try PipelineRunner(plan: try f.plan(path, overrides: PipelineOverrides(output: f.directory + "/straight.bin")))
            .run(resume: false)
        let first = PipelineRunner(plan: try f.plan(path))
        first.onStep = { if $0.number == 1 { first.cancellation.cancel() } }
        #expect(throws: PassCancelled.self) { try first.run(resume: false) }
        #expect(!FileManager.default.fileExists(atPath: f.directory + "/out/final.bin"))
        let resumed = try PipelineRunner(plan: try f.plan(path)).run(resume: true)
        #expect(resumed.steps.map(\.resumed) == [true, false, false])
        #expect(f.bytes(resumed.output) == f.bytes(straight.output))
    }

    @Test func resumesAnInterruptedFineTuneMidStep() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        let straight = try PipelineRunner(plan: try f.plan(path, overrides: PipelineOverrides(output: f.directory + "/straight.bin")))
            .run(resume: false)
        let first = PipelineRunner(plan: try f.plan(path))
        first.log = { line in if line.hasPrefix("epoch 1/") { first.cancellation.cancel() } }
        #expect(throws: PassCancelled.self) { try first.run(resume: false) }
        #expect(FileManager.default.fileExists(atPath: f.directory + "/out/final.steps/02-finetune.ckpt/state.json"))
        let resumed = try PipelineRunner(plan: try f.plan(path)).run(resume: true)
        #expect(resumed.steps[1].changes.contains("resumed after epoch 1"))
        #expect(f.bytes(resumed.output) == f.bytes(straight.output))
    }

    @Test func resumeRerunsFromTheFirstChangedStep() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        _ = try PipelineRunner(plan: try f.plan(path)).run(resume: false)
        _ = try f.write(PipelineFixture.steps.replacingOccurrences(of: "epochs: 2", with: "epochs: 3"))
        let runner = PipelineRunner(plan: try f.plan(path))
        var lines: [String] = []
        runner.log = { lines.append($0) }
        let resumed = try runner.run(resume: true)
        #expect(lines.contains("step 2 changed since that run; reusing steps 1-1, rerunning from step 2"))
        #expect(resumed.steps[0].resumed && !resumed.steps[1].resumed)
        #expect(resumed.steps[1].parameters["epochs"] == "3")
    }

    @Test func refusesToResumeWhenTheRunItselfChanged() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        let first = PipelineRunner(plan: try f.plan(path))
        first.onStep = { _ in first.cancellation.cancel() }
        #expect(throws: PassCancelled.self) { try first.run(resume: false) }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("seed: "))
        let reseeded = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("seed: ") ? "seed: 4242" : String($0) }.joined(separator: "\n")
        try reseeded.write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try PipelineRunner(plan: try f.plan(path)).run(resume: true)
        } throws: { error in
            let text = String(describing: error)
            return error is PipelineResumeError && text.contains("changed") && text.contains("seed 4242")
                && text.contains("without --resume")
        }
        // Without --resume it starts over.
        #expect(try PipelineRunner(plan: try f.plan(path)).run(resume: false).steps.allSatisfy { !$0.resumed })
    }

    // MARK: Resume checks: data content, step files, manifest format

    /// Runs the pipeline at `path` and stops it (as Ctrl-C does) when step
    /// `step` finished or, with nil, after the fine-tune step's first epoch.
    func runUntil(step: Int?, _ f: PipelineFixture, _ path: String) throws {
        let first = PipelineRunner(plan: try f.plan(path))
        if let step {
            first.onStep = { if $0.number == step { first.cancellation.cancel() } }
        } else {
            first.log = { line in if line.hasPrefix("epoch 1/") { first.cancellation.cancel() } }
        }
        #expect(throws: PassCancelled.self) { try first.run(resume: false) }
    }

    /// Resumes the pipeline at `path` (from step `rerunFrom` when given); returns the summary and the lines it logged.
    func resumeLogging(_ f: PipelineFixture, _ path: String, rerunFrom: Int? = nil) throws -> (PipelineSummary, [String]) {
        let runner = PipelineRunner(plan: try f.plan(path))
        var lines: [String] = []
        runner.log = { lines.append($0) }
        let summary = try runner.run(resume: true, rerunFrom: rerunFrom)
        return (summary, lines)
    }

    /// The message `run(resume: true)` (or with `rerunFrom`) refuses with; nil when it does not throw a `PipelineResumeError`.
    func refusal(_ f: PipelineFixture, _ path: String, rerunFrom: Int? = nil) throws -> String? {
        do {
            _ = try PipelineRunner(plan: try f.plan(path)).run(resume: true, rerunFrom: rerunFrom)
            return nil
        } catch let error as PipelineResumeError {
            return error.description
        }
    }

    @Test func manifestRecordsEveryDataFileAndStepFile() throws {
        let f = try PipelineFixture()
        let summary = try PipelineRunner(plan: try f.plan(try f.write())).run(resume: false)
        let manifest = try #require(try PipelineManifest.load(from: summary.stepsDirectory))
        #expect(manifest.formatVersion == 2)
        #expect(manifest.dataFiles.keys.sorted() == ["test_images.npy", "test_labels.npy", "train_images.npy", "train_labels.npy"])
        let trainImages = try #require(f.bytes(f.directory + "/data/train_images.npy"))
        #expect(manifest.dataFiles["train_images.npy"] == FileFingerprint(of: Array(trainImages)))
        #expect(manifest.dataFiles["train_images.npy"]?.bytes == trainImages.count)
        #expect(manifest.steps.map(\.result.file) == summary.steps.map(\.file))
        for step in manifest.steps {
            let expected = try step.result.file.map { FileFingerprint(of: Array(try #require(f.bytes($0)))) }
            #expect(step.file == expected, "step \(step.result.number)")
        }
        #expect(manifest.steps[2].file == nil)
    }

    @Test func datasetFilesAreWhatTheLoaderReads() throws {
        let f = try PipelineFixture()
        let data = f.directory + "/data"
        #expect(try DatasetLoader.files(directory: data)
                == ["train_images", "train_labels", "test_images", "test_labels"].map { "\(data)/\($0).npy" })
        // IDX files come first when both are there; classes.txt is read too.
        let idx = f.directory + "/idx"
        try FileManager.default.createDirectory(atPath: idx, withIntermediateDirectories: true)
        let names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz"]
        for name in names + ["train_images.npy", "train_labels.npy", "classes.txt"] {
            try Data().write(to: URL(fileURLWithPath: idx + "/" + name))
        }
        #expect(try DatasetLoader.files(directory: idx) == (names + ["classes.txt"]).map { idx + "/" + $0 })
        #expect(throws: DataError.datasetNotFound(directory: f.directory + "/none", detail: "the directory does not exist")) {
            try DatasetLoader.files(directory: f.directory + "/none")
        }
    }

    @Test func resumeRefusesDataChangedAtTheSamePath() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        try runUntil(step: 1, f, path)
        let state = f.directory + "/out/final.steps/state.json"
        let stateBefore = try #require(f.bytes(state))
        // Same path, same shape and size, other pixels.
        try PipelineFixture.writeSplit("train", count: 160, seed: 99, to: f.directory + "/data")
        #expect(try refusal(f, path) == """
            cannot resume from \(f.directory)/out/final.steps: the data changed since that run \
            (train_images.npy: content differs; train_labels.npy: content differs); run without --resume to start over
            """)
        // Nor does --rerun-from reuse anything on changed data; nothing was written.
        #expect(try refusal(f, path, rerunFrom: 2)?.contains("the data changed since that run") == true)
        #expect(f.bytes(state) == stateBefore)
        #expect(!FileManager.default.fileExists(atPath: f.directory + "/out/final.bin"))
        // A data file the loader now reads and did not then (classes.txt) is a change too.
        try PipelineFixture.writeSplit("train", count: 160, seed: 1, to: f.directory + "/data")
        try "a\nb\nc\nd\n".write(toFile: f.directory + "/data/classes.txt", atomically: true, encoding: .utf8)
        #expect(try refusal(f, path)?.contains("(classes.txt: new)") == true)
        try FileManager.default.removeItem(atPath: f.directory + "/data/classes.txt")
        // Back to the same bytes: it resumes.
        let resumed = try PipelineRunner(plan: try f.plan(path)).run(resume: true)
        #expect(resumed.steps.map(\.resumed) == [true, false, false])
    }

    @Test func resumeRefusesChangedIDXDataNamingTheFile() throws {
        let f = try PipelineFixture()
        // The fixture's data as gzipped IDX (uint8 pixels), as Fashion-MNIST ships.
        let idx = f.directory + "/idx"
        try FileManager.default.createDirectory(atPath: idx, withIntermediateDirectories: true)
        func writeIDX(brighten: UInt8) throws {
            let all = try DatasetLoader.load(directory: f.directory + "/data", validationCount: 0)
            for (prefix, images) in [("train", all.train), ("t10k", all.test)] {
                let pixels = images.images.floats.map { UInt8(($0 * 200).rounded()) &+ brighten }
                try IDX.write(try Tensor(shape: [images.count, 8, 8], storage: .uint8(pixels)),
                              path: "\(idx)/\(prefix)-images-idx3-ubyte.gz", gzip: true)
                try IDX.write(try Tensor(shape: [images.count], storage: .uint8(images.labels.map { UInt8($0) })),
                              path: "\(idx)/\(prefix)-labels-idx1-ubyte.gz", gzip: true)
            }
        }
        try writeIDX(brighten: 0)
        let path = try f.write().replacingOccurrences(of: "pipeline.yaml", with: "idx.yaml")
        let text = try String(contentsOfFile: f.directory + "/pipeline.yaml", encoding: .utf8)
            .replacingOccurrences(of: "data: data", with: "data: idx")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try runUntil(step: 1, f, path)
        try writeIDX(brighten: 1)
        let message = try #require(try refusal(f, path))
        #expect(message.hasPrefix("cannot resume from \(f.directory)/out/final.steps: the data changed since that run (t10k-images-idx3-ubyte.gz: "))
        #expect(message.contains("; train-images-idx3-ubyte.gz: ") && !message.contains("labels"))
        #expect(message.hasSuffix("); run without --resume to start over"))
    }

    @Test func resumeRefusesATamperedStepFileAndRerunsItWhenAsked() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        let straight = try PipelineRunner(plan: try f.plan(path, overrides: PipelineOverrides(output: f.directory + "/straight.bin")))
            .run(resume: false)
        try runUntil(step: 2, f, path)
        let steps = f.directory + "/out/final.steps"
        let file = steps + "/02-finetune.bin"
        let original = try #require(f.bytes(file))
        var tampered = original
        tampered[tampered.count - 1] ^= 1
        try tampered.write(to: URL(fileURLWithPath: file))
        let state = try #require(f.bytes(steps + "/state.json"))
        #expect(try refusal(f, path) == """
            cannot resume from \(steps): step 2 (finetune) file \(file) was modified after that run \
            (its content differs from the hash state.json recorded); run with --rerun-from 2 to rerun from that step, \
            or without --resume to start over
            """)
        #expect(f.bytes(file) == tampered && f.bytes(steps + "/state.json") == state)
        try (original + [0]).write(to: URL(fileURLWithPath: file))
        #expect(try refusal(f, path)?.contains("file \(file) was modified after that run (\(original.count) bytes then, \(original.count + 1) now)") == true)
        // Rerunning from step 3 would reuse the tampered file: refused too.
        #expect(try refusal(f, path, rerunFrom: 3)?.contains("step 2 (finetune) file") == true)
        // Asked to, it reuses step 1 and reruns steps 2 and 3: the same bytes as a run never stopped.
        let (rerun, lines) = try resumeLogging(f, path, rerunFrom: 2)
        #expect(lines.first == "rerunning from step 2 as asked; reusing steps 1-1 after checking their files")
        #expect(rerun.steps.map(\.resumed) == [true, false, false])
        #expect(f.bytes(file) == original)
        #expect(f.bytes(rerun.output) == f.bytes(straight.output))
        // The manifest holds the rerun file's hash again: a plain resume reuses everything.
        #expect(try PipelineRunner(plan: try f.plan(path)).run(resume: true).steps.allSatisfy(\.resumed))
    }

    @Test func resumeRefusesAMissingStepFile() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        try runUntil(step: 2, f, path)
        let file = f.directory + "/out/final.steps/01-fold-bn.bin"
        try FileManager.default.removeItem(atPath: file)
        #expect(try refusal(f, path) == """
            cannot resume from \(f.directory)/out/final.steps: step 1 (fold-bn) file \(file) is missing; \
            run with --rerun-from 1 to rerun from that step, or without --resume to start over
            """)
        // A step rerun anyway because it changed is not checked: only the reused ones are.
        _ = try f.write(PipelineFixture.steps.replacingOccurrences(of: "verify-batch: 2", with: "verify-batch: 3"))
        let resumed = try PipelineRunner(plan: try f.plan(path)).run(resume: true)
        #expect(resumed.steps.allSatisfy { !$0.resumed })
        #expect(FileManager.default.fileExists(atPath: file))
    }

    @Test func aChangedFineTuneStepDoesNotResumeItsOldCheckpoint() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        try runUntil(step: nil, f, path)
        let checkpoint = f.directory + "/out/final.steps/02-finetune.ckpt"
        #expect(FileManager.default.fileExists(atPath: checkpoint))
        _ = try f.write(PipelineFixture.steps.replacingOccurrences(of: "lr: 0.05", with: "lr: 0.04"))
        let (resumed, lines) = try resumeLogging(f, path)
        #expect(lines.first == "step 2 (finetune) starts over, changed since its checkpoint: removed \(checkpoint)")
        #expect(resumed.steps.map(\.resumed) == [true, false, false])
        #expect(!resumed.steps[1].changes.contains("resumed after epoch 1"))
        let fresh = try PipelineRunner(plan: try f.plan(path, overrides: PipelineOverrides(output: f.directory + "/fresh.bin")))
            .run(resume: false)
        #expect(f.bytes(resumed.output) == f.bytes(fresh.output))
    }

    @Test func rerunFromTheFirstUnfinishedStepDropsItsCheckpoint() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        try runUntil(step: nil, f, path)
        let (rerun, lines) = try resumeLogging(f, path, rerunFrom: 2)
        #expect(lines.prefix(2) == ["rerunning from step 2 as asked; reusing steps 1-1 after checking their files",
                                    "step 2 (finetune) starts over, as asked: removed \(f.directory)/out/final.steps/02-finetune.ckpt"])
        #expect(rerun.steps.map(\.resumed) == [true, false, false])
        #expect(!rerun.steps[1].changes.contains("resumed after epoch 1"))
    }

    @Test func rerunFromOutsideThePipelineIsRefused() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        #expect(try refusal(f, path, rerunFrom: 4) == "cannot rerun from step 4: the pipeline has steps 1 to 3")
        #expect(try refusal(f, path, rerunFrom: 0) == "cannot rerun from step 0: the pipeline has steps 1 to 3")
        #expect(!FileManager.default.fileExists(atPath: f.directory + "/out"))
    }

    @Test func resumeRefusesAManifestOfAnotherFormat() throws {
        let f = try PipelineFixture()
        let path = try f.write()
        try runUntil(step: 1, f, path)
        let steps = f.directory + "/out/final.steps"
        let url = URL(fileURLWithPath: steps + "/state.json")
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        // As an older compressor wrote it: format 1, no data files, steps without file hashes.
        manifest["formatVersion"] = 1
        manifest["dataFiles"] = nil
        manifest["steps"] = try #require(manifest["steps"] as? [[String: Any]]).map { $0["result"]! }
        try JSONSerialization.data(withJSONObject: manifest).write(to: url)
        #expect(try refusal(f, path) == """
            cannot resume from \(steps): an older compressor wrote it (format 1) without the data's content and \
            step file hashes, so its finished steps cannot be checked; run without --resume to start over
            """)
        manifest["formatVersion"] = 3
        try JSONSerialization.data(withJSONObject: manifest).write(to: url)
        #expect(try refusal(f, path)?.contains("a newer compressor wrote it (format 3; this one reads format 2)") == true)
        // Without --resume it starts over.
        #expect(try PipelineRunner(plan: try f.plan(path)).run(resume: false).steps.allSatisfy { !$0.resumed })
    }

    @Test func resumeWithNothingToResumeRunsEverything() throws {
        let f = try PipelineFixture()
        let summary = try PipelineRunner(plan: try f.plan(try f.write())).run(resume: true)
        #expect(summary.steps.allSatisfy { !$0.resumed })
    }

    @Test func reportHookGetsTheInputAndEveryStepModel() throws {
        let f = try PipelineFixture()
        let path = try f.write(PipelineFixture.steps + "\nreport:\n  directory: rep\n")
        let runner = PipelineRunner(plan: try f.plan(path))
        var received: [(label: String, path: String)] = []
        var directory = ""
        runner.writeReport = { models, dir in received = models; directory = dir }
        let summary = try runner.run(resume: false)
        #expect(received.map(\.label) == ["input", "01-fold-bn", "02-finetune"])
        #expect(received.map(\.path) == [f.directory + "/model.bin"] + summary.steps.compactMap(\.file))
        #expect(directory == f.directory + "/rep" && summary.reportDirectory == directory)
    }
}
