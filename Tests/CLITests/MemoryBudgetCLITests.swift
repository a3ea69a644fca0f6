import Foundation
import Testing
@testable import Compress

/// `--max-memory`: work that does not fit the memory budget gets one message
/// naming the largest tensor and exit status 1, never an allocation abort.
@Suite struct MemoryBudgetCLITests {
    let cli = CLITests()

    /// Writes `data/` with NumPy splits of `images` 1 x `side` x `side` images of 4 classes into `dir`.
    func writeData(_ dir: String, side: Int, images: Int = 32) throws {
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        for split in ["train", "test"] {
            let labels = (0..<images).map { Int64($0 % 4) }
            let pixels = (0..<(images * side * side)).map { Float($0 % 7) / 7 }
            try NPY.write(Tensor(shape: [images, 1, side, side], floats: pixels), path: "\(dir)/data/\(split)_images.npy")
            try NPY.write(Tensor(shape: [images], int64s: labels), path: "\(dir)/data/\(split)_labels.npy")
        }
    }

    /// The reproduction: an ONNX model (conv 3->4, global average
    /// pool, flatten, linear) whose input is 3 x 60000 x 60000, refused by every
    /// command that would run it with the same one-line message, before any
    /// data is read (the data here is 1x8x8, which would be refused too, later)
    /// and before anything is written.
    @Test func hugeInputIsRefusedByEveryCommandThatRunsIt() throws {
        let dir = try cli.tempDir().path
        var b = GraphBuilder(sampleShape: [3, 60000, 60000], seed: 0)
        b.conv("conv", out: 4, kernel: 3, padding: 1)
        b.add("pool", .globalAvgPool)
        b.add("flat", .flatten(axis: 1))
        b.linear("fc", out: 10)
        try ONNXExporter.write(b.model(architecture: .lenet5, seed: 0, classes: 10), to: dir + "/huge.onnx")
        try writeData(dir, side: 8)
        try NPY.write(Tensor(shape: [1, 3, 8, 8], floats: [Float](repeating: 0.5, count: 192)), path: dir + "/x.npy")
        try "model: huge.onnx\ndata: data\noutput: out/final.bin\nsteps:\n  - eval\n"
            .write(toFile: dir + "/pipeline.yaml", atomically: true, encoding: .utf8)

        let huge = dir + "/huge.onnx"
        let refusal = "inference at batch 1 needs 134.1 GiB of memory (largest tensor: 'conv' 1x4x60000x60000, 53.6 GiB), "
            + "more than the memory budget of 8.0 GiB (--max-memory 8GiB); raise it with --max-memory if the machine has the memory"
        let budget = ["--max-memory", "8GiB"]
        let commands: [(args: [String], message: String)] = [
            (["bench", huge, "--batch", "1"], "Error: \(huge): \(refusal)"),
            (["eval", huge, "--data", dir + "/data"], "Error: \(huge): \(refusal)"),
            (["predict", huge, dir + "/x.npy", "-o", dir + "/y.npy"], "Error: \(huge): \(refusal)"),
            (["finetune", huge, "--data", dir + "/data", "--epochs", "1", "-o", dir + "/tuned.bin"], "Error: \(huge): \(refusal)"),
            (["report", huge, "--data", dir + "/data", "-o", dir + "/report"], "Error: \(huge): \(refusal)"),
            (["run", dir + "/pipeline.yaml"], "Error: \(dir)/pipeline.yaml: input model \(huge): \(refusal)"),
        ]
        for (args, message) in commands {
            let r = try cli.run(args + budget)
            #expect(r.status == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr == message + "\n", "\(args[0])")
            #expect(!r.stderr.contains("Fatal error"))
        }
        for written in ["y.npy", "tuned.bin", "report", "out"] {
            #expect(!FileManager.default.fileExists(atPath: dir + "/" + written), "\(written) was written")
        }
        // Commands that only read the file still work on it.
        #expect(try cli.run(["info", huge]).status == 0)
    }

    /// A budget LeNet-5's weights and one image fit but a batch does not: the
    /// refusal comes from the planners (inference plan, training step), not
    /// from the check before loading.
    @Test func plannersRefuseABatchThatDoesNotFit() throws {
        let dir = try cli.tempDir().path
        try ModelFile.write(Architecture.lenet5.build(seed: 1, classes: 4), to: dir + "/lenet5.bin")
        try writeData(dir, side: 28)
        let model = dir + "/lenet5.bin"
        let budget = ["--max-memory", "4MB"]
        let tail = "more than the memory budget of 3.8 MiB (--max-memory 4MB); raise it with --max-memory if the machine has the memory\n"

        let bench = try cli.run(["bench", model, "--batch", "1,64", "--repetitions", "1", "--seconds", "0"] + budget)
        #expect(bench.status == 1)
        #expect(bench.stderr.hasPrefix("Error: \(model): inference at batch 64 needs "), "\(bench.stderr)")
        #expect(bench.stderr.contains("(largest tensor: 'conv1' 64x20x24x24, 2.8 MiB)"))
        #expect(bench.stderr.hasSuffix(tail))
        #expect(try cli.run(["bench", model, "--batch", "1", "--repetitions", "1", "--seconds", "0"] + budget).status == 0)

        let eval = try cli.run(["eval", model, "--data", dir + "/data", "--batch", "32"] + budget)
        #expect(eval.status == 1)
        #expect(eval.stderr.hasPrefix("Error: \(model): inference at batch 32 needs "), "\(eval.stderr)")
        // At batch 32 the largest tensor is a weight.
        #expect(eval.stderr.contains("(largest tensor: 'fc1.weight' 500x800, 1.5 MiB)"))
        #expect(eval.stderr.hasSuffix(tail))
        #expect(try cli.run(["eval", model, "--data", dir + "/data", "--batch", "1"] + budget).status == 0)

        let report = try cli.run(["report", model, "--data", dir + "/data", "--batch", "64", "--repetitions", "1",
                                  "--seconds", "0", "-o", dir + "/report"] + budget)
        #expect(report.status == 1)
        #expect(report.stderr.hasPrefix("Error: \(model): inference at batch 64 needs "), "\(report.stderr)")
        #expect(report.stderr.hasSuffix(tail))
        #expect(!FileManager.default.fileExists(atPath: dir + "/report"))

        let output = dir + "/tuned.bin"
        let finetune = try cli.run(["finetune", model, "--data", dir + "/data", "--validation-count", "8", "--epochs", "1",
                                    "--batch", "16", "-o", output] + budget)
        #expect(finetune.status == 1)
        #expect(finetune.stderr.hasPrefix("Error: \(model): a training step at batch 16 needs "), "\(finetune.stderr)")
        #expect(finetune.stderr.contains("(largest tensor: 'fc1.weight' 500x800, 1.5 MiB)"))
        #expect(finetune.stderr.hasSuffix(tail))
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func maxMemoryParseErrorsAreUsageErrors() throws {
        let dir = try cli.tempDir().path
        try ModelFile.write(Architecture.lenet5.build(seed: 1, classes: 4), to: dir + "/lenet5.bin")
        for bad in ["12XB", "0", "150%", "lots"] {
            let r = try cli.run(["bench", dir + "/lenet5.bin", "--max-memory", bad])
            #expect(r.status == 64, "\(bad)")
            #expect(r.stderr.hasPrefix("Error: --max-memory: '\(bad)' is not a memory size: give bytes or a number with a unit "
                                       + "(512MB, 1.5GB, 2GiB, 2G) or a share of memory (50%)\n"), "\(r.stderr)")
        }
        let help = try cli.run(["eval", "--help"]).stdout
        #expect(help.contains("--max-memory <size>"))
        #expect(help.contains("Default: 75% of"))
    }
}
