import Foundation
import Testing
@testable import Compress
@testable import Distill

/// The warm-ups of `distill`: FitNets' hint stage and layerwise imitation,
/// on real images with the shipped, trained lenet5 as the teacher.
@Suite struct DistillStagesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let teacherPath = root.appendingPathComponent("models/lenet5.bin").path

    func pass(_ raw: [String: String]) throws -> DistillPass {
        try DistillPass(parameters: PassParameters(validating: raw.merging(["teacher": teacherPath]) { a, _ in a },
                                                   against: DistillPass.parameters, pass: DistillPass.name))
    }

    func prepare(_ pass: DistillPass, student: Model, train: Int = 640) throws -> DistillPreparation {
        let teacher = try ModelLoader.read(path: teacherPath)
        let data = try FashionSubset.splits(train: train, validation: 200)
        return try pass.prepare(student: student, teacher: teacher, data: data, settings: pass.settings, log: { _ in })
    }

    @Test func hintStageLowersTheHintLossAndTrainsOnlyUpToTheHintLayer() throws {
        let student = Architecture.lenet5.build(seed: 2, width: 0.5)
        let p = try pass(["mode": "hint", "hint": "pool2=pool2", "hint-epochs": "2", "epochs": "3", "batch": "32",
                          "lr": "0.05"])
        let prepared = try prepare(p, student: student)
        let (before, after) = (try #require(prepared.metrics["imitation-error-before"]),
                               try #require(prepared.metrics["imitation-error-after"]))
        #expect(after < 0.85 * before, "hint error \(before) -> \(after)")
        #expect(prepared.settings.epochs == 1)
        #expect(prepared.historyParameters == ["mode": "hint", "hint": "pool2=pool2", "hint-epochs": "2", "hint-weight": "0.0",
                                               "hint-pool": "false", "epochs": "3"])
        // Up to the hint layer trained, after it frozen, no adapter in the model.
        let (old, new) = (student.graph.initializers, prepared.student.graph.initializers)
        #expect(new["conv1.weight"] != old["conv1.weight"] && new["conv2.weight"] != old["conv2.weight"])
        #expect(new["fc1.weight"] == old["fc1.weight"] && new["fc2.bias"] == old["fc2.bias"])
        #expect(Set(new.keys) == Set(old.keys) && prepared.student.graph.nodes == student.graph.nodes)
    }

    @Test func jointHintsAddTheirLossToTheKDRun() throws {
        let student = Architecture.lenet5.build(seed: 2, width: 0.5)
        let p = try pass(["mode": "hint", "hint": "relu1=relu1", "hint-epochs": "0", "hint-weight": "0.5", "epochs": "1",
                          "batch": "32"])
        let prepared = try prepare(p, student: student, train: 64)
        #expect(prepared.student == student && prepared.settings.epochs == 1 && prepared.metrics.isEmpty)
        let run = try TrainingRun(model: student, data: try FashionSubset.splits(train: 64, validation: 200),
                                  settings: prepared.settings, passName: "distill", checkpointDirectory: nil,
                                  teacher: try ModelLoader.read(path: teacherPath))
        prepared.configure(run)
        let hook = try #require(run.auxiliaryLoss)
        let graph = try TrainingGraph(model: student)
        let images = try FashionSubset.splits(train: 32, validation: 1).train
        _ = try graph.forward(images.images, training: true)
        let (loss, seeds) = try hook.loss(graph: graph, batch: images, step: 0)
        #expect(loss > 0 && seeds.keys.sorted() == ["relu1"])
    }

    /// Hints beside KD checkpoint their adapters with the KD run: a run
    /// stopped after its first epoch and resumed (its hint stage not run
    /// again) writes the same bytes as one never interrupted.
    @Test func resumedHintRunWritesTheSameModel() throws {
        let student = Architecture.lenet5.build(seed: 2, width: 0.5)
        let p = try pass(["mode": "hint", "hint": "relu1=relu1", "hint-epochs": "1", "hint-weight": "0.5", "epochs": "3",
                          "batch": "32"])
        let teacher = try ModelLoader.read(path: teacherPath)
        let data = try FashionSubset.splits(train: 96, validation: 64)
        func run(directory: String?, resuming: Bool, stopAfterFirstEpoch: Bool = false) throws -> TrainingOutcome {
            let prepared = try p.prepare(student: student, teacher: teacher, data: data, settings: p.settings, log: { _ in },
                                         resumingAfterWarmUp: resuming)
            #expect(resuming == (prepared.student == student))
            let flag = CancellationFlag()
            let run = try TrainingRun(model: prepared.student, data: data, settings: prepared.settings, passName: "distill",
                                      checkpointDirectory: directory, teacher: teacher, cancellation: flag)
            prepared.configure(run)
            if stopAfterFirstEpoch { run.onBestModel = { _ in flag.cancel() } }
            return try run.run(resume: resuming)
        }
        let straight = try run(directory: nil, resuming: false)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hint-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: PassCancelled.self) { try run(directory: dir, resuming: false, stopAfterFirstEpoch: true) }
        #expect(TrainingRun.checkpointExists(in: dir))
        let resumed = try run(directory: dir, resuming: true)
        #expect(resumed.resumedAfterEpoch == 1)
        #expect(try ModelFile.encode(resumed.model) == ModelFile.encode(straight.model))
    }

    /// Each block's error, measured on validation images before and after
    /// the imitation, goes down: with adapters (a student at half width) and
    /// without (the same width, other initial weights).
    @Test(arguments: [0.5, 1.0])
    func layerwiseImitationLowersEveryBlocksError(width: Double) throws {
        let student = Architecture.lenet5.build(seed: 7, width: width)
        let p = try pass(["mode": "layerwise", "imitation-epochs": "2", "epochs": "3", "batch": "32", "lr": "0.05"])
        let prepared = try prepare(p, student: student, train: 960)
        for block in ["pool1", "pool2", "relu1"] {
            let before = try #require(prepared.metrics["imitation-error-before:" + block])
            let after = try #require(prepared.metrics["imitation-error-after:" + block])
            #expect(after < 0.85 * before, "block \(block), width \(width): \(before) -> \(after)")
        }
        #expect(prepared.settings.epochs == 1)
        // The classifier is in no block: untouched.
        #expect(prepared.student.graph.initializers["fc2.weight"] == student.graph.initializers["fc2.weight"])
    }

    /// Joint imitation trains every block on every step: each block's error
    /// goes down, with one line for the whole phase, and it needs no step per
    /// block (2 steps for 3 blocks are refused in sequential order).
    @Test func jointImitationLowersEveryBlocksError() throws {
        let student = Architecture.lenet5.build(seed: 7, width: 0.5)
        let p = try pass(["mode": "layerwise", "imitation": "joint", "imitation-epochs": "2", "epochs": "3", "batch": "32",
                          "lr": "0.05"])
        let prepared = try prepare(p, student: student, train: 960)
        for block in ["pool1", "pool2", "relu1"] {
            let before = try #require(prepared.metrics["imitation-error-before:" + block])
            let after = try #require(prepared.metrics["imitation-error-after:" + block])
            #expect(after < 0.85 * before, "block \(block): \(before) -> \(after)")
        }
        #expect(prepared.changes.first?.hasPrefix("joint imitation of 3 blocks: 60 steps") == true, "\(prepared.changes)")
        #expect(prepared.historyParameters["imitation"] == "joint")
        #expect(prepared.student.graph.initializers["fc2.weight"] == student.graph.initializers["fc2.weight"])
        let short = try pass(["mode": "layerwise", "imitation": "joint", "imitation-epochs": "1", "epochs": "2", "batch": "32"])
        #expect(try prepare(short, student: student, train: 64).changes.first?.hasPrefix("joint imitation of 3 blocks: 2 steps") == true)
        #expect {
            try pass(["mode": "kd", "imitation": "joint"])
        } throws: {
            "\($0)".contains("imitation is for mode layerwise (the mode is kd)")
        }
    }

    /// The pass as a pipeline step runs it: warm-up, KD, one record with the warm-up's lines and metrics.
    @Test func thePassWarmsUpThenDistills() throws {
        let student = Architecture.lenet5.build(seed: 2, width: 0.5)
        let data = try FashionSubset.splits(train: 128, validation: 64)
        let p = try pass(["mode": "layerwise", "imitation-epochs": "1", "epochs": "2", "batch": "32"])
        let outcome = try p.apply(to: student, context: PassContext(seed: 1, data: DataProvider { data }))
        #expect(outcome.changes.contains { $0.hasPrefix("block 3/3 relu1 <- relu1: 2 steps") }, "\(outcome.changes)")
        #expect(outcome.changes.contains { $0.contains("for 2 epochs (1 of KD)") }, "\(outcome.changes)")
        #expect(outcome.metrics["epochs"] == 1 && outcome.metrics["imitation-error-after:pool2"] != nil)
        #expect(outcome.model.graph.initializerNames == student.graph.initializerNames)
    }

    @Test func layerwiseImitationNeedsAStepPerBlock() throws {
        let p = try pass(["mode": "layerwise", "imitation-epochs": "1", "epochs": "2", "batch": "32"])
        #expect {
            try prepare(p, student: Architecture.lenet5.build(seed: 7, width: 0.5), train: 64)
        } throws: {
            "\($0)" == "distill: layerwise imitation has 2 steps (1 epochs of 2) for 3 blocks: every block needs at least one; give more imitation-epochs or training images"
        }
    }

    @Test func blocksOfTheBuiltInArchitectures() throws {
        #expect(try Architecture.lenet300.build(seed: 0).graph.blockOutputs() == ["relu1", "relu2"])
        #expect(try Architecture.lenet5.build(seed: 0).graph.blockOutputs() == ["pool1", "pool2", "relu1"])
        let resnet = ["relu1"] + (1...3).flatMap { s in (0...2).map { "layer\(s).\($0).relu2" } }
        #expect(try Architecture.resnet20.build(seed: 0).graph.blockOutputs() == resnet)
        // A pruned or thinner copy has the same blocks.
        #expect(try Architecture.resnet20.build(seed: 0, width: 0.5).graph.blockOutputs() == resnet)
        let vgg = try Architecture.vggSmall.build(seed: 0).graph.blockOutputs()
        #expect(vgg == ["relu1", "pool1", "relu3", "pool2", "relu5", "pool3"])
        let mobilenet = ["relu1"] + (1...4).flatMap { ["block\($0).relu1", "block\($0).relu2"] }
        #expect(try Architecture.mobilenetSmall.build(seed: 0).graph.blockOutputs() == mobilenet)
    }

    @Test func badPairsAreRefusedNamingWhatIsWrong() throws {
        let teacher = try ModelLoader.read(path: teacherPath)
        let lenet300 = Architecture.lenet300.build(seed: 1)
        #expect {
            try LayerwiseBlocks(student: lenet300, teacher: teacher, pools: false, pass: "distill")
        } throws: {
            "\($0)" == "distill: layerwise imitation needs a teacher and student of the same depth: the teacher has 3 blocks (pool1, pool2, relu1) but the student 2 (relu1, relu2)"
        }
        var problems: [String] = []
        let hints = HintLayers("nope=pool2,pool1=pool2", problems: &problems)
        #expect(problems.isEmpty)
        #expect {
            try hints.matches(student: Architecture.lenet5.build(seed: 1), teacher: teacher, pools: false, pass: "distill")
        } throws: {
            let text = "\($0)"
            return text.contains("hint 'nope=pool2': the student has no layer 'nope' (its layers: conv1, pool1, conv2, pool2, flatten, fc1, relu1, fc2)")
                && text.contains("hint 'pool1=pool2': the student's map is 12x12 and the teacher's 4x4; spatial sizes must match")
        }
        _ = HintLayers("relu1", problems: &problems)
        #expect(problems == ["hint entry 'relu1' must be PATTERN=TEACHER LAYER with the teacher layer naming a layer of the teacher"])
    }

    @Test func modeParametersAreChecked() throws {
        func problems(_ raw: [String: String]) -> String {
            do { _ = try pass(raw); return "" } catch { return "\(error)" }
        }
        #expect(problems(["mode": "hint"]).contains("mode hint needs the layer pairs: give 'hint' (--hint STUDENT=TEACHER)"))
        #expect(problems(["mode": "hint", "hint": "a=b", "hint-epochs": "0"])
            .contains("mode hint needs hint-epochs > 0 (a hint stage) or hint-weight > 0 (hints beside KD)"))
        #expect(problems(["mode": "hint", "hint": "a=b", "hint-epochs": "3", "epochs": "3"])
            .contains("hint-epochs (3) must be fewer than epochs (3): KD trains the remaining epochs"))
        #expect(problems(["mode": "layerwise", "imitation-epochs": "0"]).contains("imitation-epochs must be at least 1, got 0"))
        #expect(problems(["mode": "kd", "hint": "a=b"]).contains("hint is for mode hint (the mode is kd)"))
    }
}
