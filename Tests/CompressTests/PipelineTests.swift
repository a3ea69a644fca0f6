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
