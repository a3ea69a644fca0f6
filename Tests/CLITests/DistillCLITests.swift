import Foundation
import Testing
@testable import Compress

/// `compressor distill`, `init --width` and the teacher options of fine-tuning, end to end.
@Suite struct DistillCLITests {
    let cli = CLITests()

    /// The tiny dataset of `TrainCLITests` (120 training images, the last 40 of them validation), a
    /// lenet300 teacher and a lenet300 student at width 0.25.
    func fixture() throws -> (dir: String, teacher: String, student: String) {
        let dir = try TrainCLITests().fixture().dir
        let (teacher, student) = (dir + "/teacher.bin", dir + "/student.bin")
        try cli.runOK(["init", "--arch", "lenet300", "-o", teacher, "--seed", "1"])
        try cli.runOK(["init", "--arch", "lenet300", "--width", "0.25", "-o", student, "--seed", "2"])
        return (dir, teacher, student)
    }

    func dataOptions(_ dir: String) -> [String] {
        ["--data", dir + "/data", "--validation-count", "40", "--batch", "16", "--epochs", "1"]
    }

    @Test func initWidthBuildsAThinnerStudent() throws {
        let dir = try cli.tempDir().path
        let r = try cli.runOK(["init", "--arch", "vgg-small", "--width", "0.5", "-o", dir + "/half.bin", "--json"])
        let j = try cli.json(r.stdout)
        #expect(j["width"] as? Double == 0.5)
        let half = try ModelFile.read(path: dir + "/half.bin")
        #expect(half.graph.initializers["conv1.weight"]?.shape == [16, 1, 3, 3])
        #expect(half.metadata.history.first?.parameters["width"] == "0.5")
        #expect(j["parameters"] as? Int == half.graph.parameterCount)

        let bad = try cli.run(["init", "--arch", "vgg-small", "--width", "0", "-o", dir + "/zero.bin"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--width must be positive, got 0.0"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/zero.bin"))
    }

    @Test func distillTrainsTheStudentAndRecordsHow() throws {
        let (dir, teacher, student) = try fixture()
        let output = dir + "/distilled.bin"
        let r = try cli.run(["distill", "--teacher", teacher, "--student", student, "-o", output, "--mode", "kd",
                             "--temperature", "2", "--alpha", "0.5", "--seed", "3", "--json"] + dataOptions(dir))
        #expect(r.status == 0, "\(r.stderr)")
        let model = try ModelFile.read(path: output)
        let entry = try #require(model.metadata.history.last)
        #expect(entry.pass == "distill")
        #expect(entry.parameters["mode"] == "kd")
        #expect(entry.parameters["teacher"] == teacher)
        #expect(entry.parameters["temperature"] == "2.0")
        #expect(entry.parameters["alpha"] == "0.5")
        #expect(try cli.json(r.stdout)["bestEpoch"] as? Int == 1)
        #expect(model.graph.initializers["fc1.weight"]?.shape == [75, 784])
        #expect(model.graph.initializers["fc1.weight"] != (try ModelFile.read(path: student)).graph.initializers["fc1.weight"])
    }

    /// `args` fails with status != 0, `message` on stderr, and `output` not written.
    func expectRefused(_ args: [String], _ message: String, output: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try cli.run(args)
        #expect(r.status != 0, sourceLocation: sourceLocation)
        #expect(r.stderr.contains(message), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.components(separatedBy: "Error:").count == 2, "one message: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: output), sourceLocation: sourceLocation)
    }

    @Test func badInputIsRefusedWithOneMessage() throws {
        let (dir, teacher, student) = try fixture()
        let output = dir + "/out.bin"
        let common = ["-o", output] + dataOptions(dir)
        try ModelFile.write(Architecture.lenet300.build(seed: 1, classes: 5), to: dir + "/five.bin")
        try ModelFile.write(Architecture.lenet300.build(seed: 1, inputShape: [1, 14, 14]), to: dir + "/small.bin")

        try expectRefused(["distill", "--teacher", dir + "/none.bin", "--student", student] + common,
                          "teacher model \(dir)/none.bin does not exist", output: output)
        try expectRefused(["distill", "--teacher", dir + "/five.bin", "--student", student] + common,
                          "the teacher has 5 classes but the student 10", output: output)
        try expectRefused(["distill", "--teacher", dir + "/small.bin", "--student", student] + common,
                          "the teacher takes inputs [1, 14, 14] but the student [1, 28, 28]", output: output)
        try expectRefused(["distill", "--teacher", teacher, "--student", student, "--temperature", "0"] + common,
                          "temperature must be positive, got 0.0", output: output)
        try expectRefused(["distill", "--teacher", teacher, "--student", student, "--alpha", "1.5"] + common,
                          "alpha must be in [0, 1], got 1.5", output: output)
        try expectRefused(["distill", "--student", student] + common, "missing the teacher", output: output)
        try expectRefused(["distill", "--teacher", teacher, "--student", student, "--mode", "hint"] + common,
                          "must be kd", output: output)
        // The fine-tune option group: refused before pruning starts.
        try expectRefused(["prune", student, "--sparsity", "0.5", "--finetune-epochs", "1",
                           "--finetune-teacher", dir + "/none.bin", "-o", output, "--data", dir + "/data"],
                          "teacher model \(dir)/none.bin does not exist", output: output)
        try expectRefused(["finetune", student, "--teacher", dir + "/five.bin"] + common,
                          "the teacher has 5 classes but the student 10", output: output)
    }

    @Test func fineTuningDistillsFromTheInputModel() throws {
        let (dir, teacher, _) = try fixture()
        let output = dir + "/pruned.bin"
        try cli.runOK(["prune", teacher, "-o", output, "--sparsity", "0.5", "--finetune-epochs", "1",
                       "--finetune-teacher", "input", "--finetune-batch", "16", "--finetune-temperature", "3",
                       "--data", dir + "/data", "--validation-count", "40"])
        let history = try ModelFile.read(path: output).metadata.history
        let fineTune = try #require(history.last { $0.pass == "finetune" })
        #expect(fineTune.parameters["teacher"] == "input")
        #expect(fineTune.parameters["temperature"] == "3.0")
        #expect(history.last?.pass == "prune")
        #expect(history.last?.parameters["finetune-teacher"] == "input")
    }

    @Test func pipelineDistillStepAndTeacherInput() throws {
        let (dir, _, student) = try fixture()
        try FileManager.default.copyItem(atPath: student, toPath: dir + "/start.bin")
        let yaml = """
        model: start.bin
        data: data
        output: out/final.bin
        validation-count: 40
        steps:
          - distill: {teacher: teacher.bin, batch: 16, temperature: 2}
          - prune: {sparsity: 0.5, finetune-epochs: 1, finetune-batch: 16, finetune-teacher: input}
          - finetune: {epochs: 1, batch: 16, teacher: input, alpha: 0.5}
        report:
          limit: 10
          batches: [1]
        """
        try cli.put(dir + "/kd.yaml", Data(yaml.utf8))
        // --max-epochs also caps the distill step's default 10 epochs.
        let r = try cli.run(["run", dir + "/kd.yaml", "--max-epochs", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let history = try ModelFile.read(path: dir + "/out/final.bin").metadata.history
        #expect(history.map(\.pass).suffix(4) == ["distill", "finetune", "prune", "finetune"])
        let distill = try #require(history.first { $0.pass == "distill" })
        #expect(distill.parameters["teacher"] == dir + "/teacher.bin")
        #expect(distill.parameters["temperature"] == "2.0")
        #expect(distill.metrics["teacher-agreement-after"] != nil)
        #expect(distill.parameters["epochs"] == "1" && distill.metrics["epochs"] == 1)
        #expect(history.last?.parameters["teacher"] == "input")
        #expect(history.last?.parameters["alpha"] == "0.5")

        try cli.put(dir + "/bad.yaml", Data(yaml.replacingOccurrences(of: "teacher: teacher.bin", with: "teacher: gone.bin").utf8))
        let bad = try cli.run(["run", dir + "/bad.yaml", "-o", dir + "/bad.bin"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("teacher model \(dir)/gone.bin does not exist"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad.bin"))

        // A teacher that cannot teach the input model is refused before the first step.
        try ModelFile.write(Architecture.lenet300.build(seed: 1, classes: 5), to: dir + "/five.bin")
        try cli.put(dir + "/five.yaml", Data(yaml.replacingOccurrences(of: "teacher: teacher.bin", with: "teacher: five.bin").utf8))
        let five = try cli.run(["run", dir + "/five.yaml", "-o", dir + "/five-out.bin"])
        #expect(five.status != 0)
        #expect(five.stderr.contains("step 1 (distill, line 6): teacher \(dir)/five.bin: the teacher has 5 classes but the student 10"),
                "\(five.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/five-out.steps"))
    }
}
