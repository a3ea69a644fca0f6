import Foundation
import Testing
@testable import Compress

/// End-to-end tests that run the built `compressor` binary.
@Suite struct CLITests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let binary: URL = {
        let besideTests = Bundle.main.bundleURL.appendingPathComponent("compressor")
        if FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/compressor")
    }()

    @discardableResult
    func run(_ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    /// `run`, expecting exit status 0 (a setup step whose failure would otherwise show up, if at all, later).
    @discardableResult
    func runOK(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Result {
        let r = try run(args)
        #expect(r.status == 0, "\(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func put(_ path: String, _ data: Data) throws {
        try data.write(to: URL(fileURLWithPath: path))
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func initAndInfoReportParameterCounts() throws {
        let dir = try tempDir()
        let path = dir.appendingPathComponent("lenet5.bin").path
        #expect(try run(["init", "--arch", "lenet5", "--seed", "1", "-o", path]).status == 0)
        let info = try run(["info", path, "--json"])
        #expect(info.status == 0)
        let j = try json(info.stdout)
        #expect(j["parameters"] as? Int == 431_080)
        let layers = try #require(j["layers"] as? [[String: Any]])
        #expect(layers.map { $0["op"] as? String } == ["Conv2d", "MaxPool", "Conv2d", "MaxPool", "Flatten", "Linear", "ReLU", "Linear"])
        // MACs by hand: conv1 24*24*20*25 = 288,000; conv2 8*8*50*20*25 = 1,600,000; fc 800*500 + 500*10 = 405,000.
        #expect(j["macs"] as? Int == 288_000 + 1_600_000 + 405_000)
        let fileBytes = try #require(j["fileBytes"] as? Int)
        #expect(fileBytes == (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
    }

    @Test func sameCommandWritesSameBytes() throws {
        let dir = try tempDir()
        /// Runs `args`, expects success, and returns the bytes of the non-empty file it wrote at `output`.
        func written(_ args: [String], _ output: String) throws -> Data {
            let r = try run(args + ["-o", output])
            #expect(r.status == 0, "\(args): \(r.stderr)")
            let bytes = try #require(FileManager.default.contents(atPath: output), "\(args) wrote no \(output)")
            #expect(!bytes.isEmpty, "\(args) wrote an empty \(output)")
            return bytes
        }
        let a = dir.appendingPathComponent("a.bin").path, b = dir.appendingPathComponent("b.bin").path
        let aBytes = try written(["init", "--arch", "resnet20", "--seed", "7"], a)
        #expect(aBytes == (try written(["init", "--arch", "resnet20", "--seed", "7"], b)))
        // A different seed gives different bytes, so the equality above is about the seed.
        #expect(aBytes != (try written(["init", "--arch", "resnet20", "--seed", "8"], dir.appendingPathComponent("e.bin").path)))
        let c = dir.appendingPathComponent("c.bin").path, d = dir.appendingPathComponent("d.bin").path
        let cBytes = try written(["fold-bn", a], c)
        #expect(cBytes == (try written(["fold-bn", b], d)))
        #expect(cBytes != aBytes)
    }

    @Test func badFilesFailWithOneLine() throws {
        let dir = try tempDir()
        let good = dir.appendingPathComponent("m.bin").path
        try runOK(["init", "--arch", "lenet300", "-o", good])
        let bytes = try #require(FileManager.default.contents(atPath: good))
        let truncated = dir.appendingPathComponent("t.bin").path
        try put(truncated, bytes.prefix(bytes.count / 2))
        var flipped = bytes
        flipped[bytes.count - 10] ^= 0xFF
        let corrupt = dir.appendingPathComponent("c.bin").path
        try put(corrupt, flipped)
        let foreign = dir.appendingPathComponent("f.bin").path
        try put(foreign, Data("hello, world\n".utf8))
        for path in [truncated, corrupt, foreign, dir.appendingPathComponent("missing.bin").path] {
            let out = dir.appendingPathComponent("out.bin").path
            let r = try run(["fold-bn", path, "-o", out])
            #expect(r.status != 0)
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    @Test func passOptionsComeFromTheDeclaration() throws {
        let help = try run(["fold-bn", "--help"])
        #expect(help.status == 0)
        for spec in FoldBatchNormPass.parameters {
            #expect(help.stdout.contains("--\(spec.name)"))
            #expect(help.stdout.contains(spec.help.prefix(30)))
        }
        let dir = try tempDir()
        let m = dir.appendingPathComponent("m.bin").path
        try runOK(["init", "--arch", "lenet5", "-o", m])
        let bad = try run(["fold-bn", m, "-o", dir.appendingPathComponent("o.bin").path, "--verify-batch", "zero"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("verify-batch"))
    }

    @Test func foldBNRemovesBatchNormAndKeepsOutputs() throws {
        let dir = try tempDir()
        let m = dir.appendingPathComponent("vgg.bin").path, o = dir.appendingPathComponent("folded.bin").path
        try runOK(["init", "--arch", "vgg-small", "-o", m])
        let r = try run(["fold-bn", m, "-o", o, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.stdout)
        let metrics = try #require(j["metrics"] as? [String: Double])
        #expect(metrics["folded"] == 6)
        #expect(try #require(metrics["max-abs-diff"]) < 1e-4)
        let folded = try ModelFile.read(path: o)
        #expect(!folded.graph.nodes.contains { $0.op.kind == "BatchNorm" })
    }

    @Test func predictMatchesInProcessSession() throws {
        let dir = try tempDir()
        let m = dir.appendingPathComponent("m.bin").path
        try runOK(["init", "--arch", "mobilenet-small", "--seed", "2", "-o", m])
        var rng = SeededGenerator(seed: 5)
        let x = rng.uniformTensor([3, 1, 28, 28])
        let input = dir.appendingPathComponent("x.npy").path, output = dir.appendingPathComponent("y.npy").path
        try put(input, Data(NPY.encode(x)))
        let r = try run(["predict", m, input, "-o", output])
        #expect(r.status == 0, "\(r.stderr)")
        let y = try NPY.read(path: output)
        let expected = try ReferenceEvaluator.run(model: try ModelFile.read(path: m), input: x)
        #expect(y.shape == [3, 10])
        expectClose(y, expected, tolerance: 1e-4)
        let wrong = dir.appendingPathComponent("w.npy").path
        try put(wrong, Data(NPY.encode(Tensor.zeros([2, 3, 28, 28]))))
        let bad = try run(["predict", m, wrong, "-o", dir.appendingPathComponent("z.npy").path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("shape"))
    }

    @Test func evalCountsCorrectPredictions() throws {
        let dir = try tempDir()
        let m = dir.appendingPathComponent("m.bin").path
        try runOK(["init", "--arch", "lenet300", "--seed", "3", "-o", m])
        let model = try ModelFile.read(path: m)
        // Label each test image with the model's own prediction for the first 30, and with
        // a wrong class for the last 10, so top-1 must be exactly 30/40.
        var rng = SeededGenerator(seed: 11)
        let images = rng.uniformTensor([40, 1, 28, 28])
        let logits = try ReferenceEvaluator.run(model: model, input: images).floats
        var labels: [Int64] = []
        for i in 0..<40 {
            let row = Array(logits[(i * 10)..<(i * 10 + 10)])
            let best = row.indices.max { row[$0] < row[$1] }!
            labels.append(Int64(i < 30 ? best : (best + 1) % 10))
        }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for (name, t) in [("train_images", rng.uniformTensor([20, 1, 28, 28])), ("test_images", images)] {
            try put(data.appendingPathComponent("\(name).npy").path, Data(NPY.encode(t)))
        }
        for (name, l) in [("train_labels", [Int64](repeating: 0, count: 20)), ("test_labels", labels)] {
            try put(data.appendingPathComponent("\(name).npy").path, Data(NPY.encode(Tensor(shape: [l.count], int64s: l))))
        }
        let r = try run(["eval", m, "--data", data.path, "--validation-count", "5", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.stdout)
        #expect(j["images"] as? Int == 40)
        #expect(j["top1"] as? Double == 0.75)
    }

    @Test func benchReportsEveryConfiguration() throws {
        let dir = try tempDir()
        let m = dir.appendingPathComponent("m.bin").path
        try runOK(["init", "--arch", "lenet5", "-o", m])
        let r = try run(["bench", m, "--batch", "1,4", "--repetitions", "3", "--seconds", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let results = try #require(try json(r.stdout)["results"] as? [[String: Any]])
        #expect(results.map { $0["batch"] as? Int } == [1, 4])
        #expect(results.allSatisfy { ($0["medianMs"] as? Double ?? 0) > 0 && ($0["repetitions"] as? Int ?? 0) >= 3 })
        let training = try run(["bench", m, "--train", "--batch", "4", "--repetitions", "2", "--seconds", "0", "--json"])
        #expect(training.status == 0, "\(training.stderr)")
        let trainingJSON = try json(training.stdout)
        #expect(trainingJSON["mode"] as? String == "training-step")
        #expect((trainingJSON["results"] as? [[String: Any]])?.first?["batch"] as? Int == 4)
        // lenet5's 431,080 parameters alone take 12 bytes each (value, gradient, SGD velocity); add the activations.
        let bytes = try #require((trainingJSON["results"] as? [[String: Any]])?.first?["trainingBytes"] as? Int)
        #expect(bytes > 431_080 * 12 && bytes < 431_080 * 12 + 4 * 1_048_576, "\(bytes)")
        let bad = try run(["bench", m, "--batch", "0"])
        #expect(bad.status != 0)
        // A thread count no machine has is one clear error, not a failed pthread_create.
        let tooMany = try run(["bench", m, "--threads", "100000"])
        #expect(tooMany.status != 0 && tooMany.stderr.contains("between 1 and 256"), "\(tooMany.stderr)")
        let evalTooMany = try run(["eval", m, "--threads", "100000"])
        #expect(evalTooMany.status != 0 && evalTooMany.stderr.contains("between 1 and 256"), "\(evalTooMany.stderr)")
    }

    /// `--kernels` picks the kernel set bench times (named in its JSON) and the
    /// set a trained model's history records; a bad or missing set is one clear error.
    @Test func kernelsOptionChoosesAndRecordsTheSet() throws {
        let dir = try tempDir()
        let m = dir.appendingPathComponent("m.bin").path
        try runOK(["init", "--arch", "lenet5", "-o", m])
        for set in KernelSet.supported {
            let r = try runOK(["bench", m, "--batch", "1", "--repetitions", "2", "--seconds", "0", "--kernels", set.rawValue,
                               "--json"])
            #expect(try json(r.stdout)["kernels"] as? String == set.rawValue)
        }
        let auto = try runOK(["bench", m, "--batch", "1", "--repetitions", "2", "--seconds", "0", "--json"])
        #expect(try json(auto.stdout)["kernels"] as? String == KernelSet.best.rawValue)
        let bogus = try run(["bench", m, "--kernels", "sse9"])
        #expect(bogus.status != 0 && bogus.stderr.contains("--kernels must be auto, avx512, avx2, portable"))
        for set in KernelSet.allCases where !set.isSupported {
            let refused = try run(["bench", m, "--kernels", set.rawValue])
            #expect(refused.status != 0 && refused.stderr.contains("lacks"), "\(refused.stderr)")
        }
    }

    /// --sparse compares kernel policies in one run and --layers times every step, on a
    /// model whose fc layers `compressor prune` made 90% sparse.
    @Test func benchComparesSparseKernelsPerLayer() throws {
        let dir = try tempDir()
        let m = dir.appendingPathComponent("m.bin").path, pruned = dir.appendingPathComponent("pruned.bin").path
        try runOK(["init", "--arch", "lenet5", "-o", m])
        let prune = try run(["prune", m, "-o", pruned, "--layer-sparsity", "fc1=0.9,fc2=0.9"])
        #expect(prune.status == 0, "\(prune.stderr)")
        let args = ["bench", pruned, "--sparse", "dense,sparse", "--layers",
                    "--batch", "1,3", "--repetitions", "2", "--seconds", "0"]
        let r = try run(args + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.stdout)
        #expect((j["results"] as? [[String: Any]])?.count == 4)
        let details = try #require(j["details"] as? [[String: Any]])
        try #require(details.map { $0["sparseKernels"] as? String } == ["dense", "dense", "sparse", "sparse"])
        let choices = try #require(details[2]["layerKernels"] as? [[String: Any]])
        try #require(choices.map { $0["node"] as? String } == ["conv1", "conv2", "fc1", "fc2"])
        #expect(choices.allSatisfy { $0["sparse"] as? Bool == true })
        // 40,000 of fc1's 400,000 weights and all of conv1's are left.
        let densities = choices.map { $0["weightDensity"] as? Double ?? -1 }
        #expect(abs(densities[2] - 0.1) < 1e-3 && abs(densities[3] - 0.1) < 1e-3 && densities[0] == 1, "\(densities)")
        let steps = try #require((details[2]["layers"] as? [String: Any])?["steps"] as? [[String: Any]])
        let fc1 = try #require(steps.first { $0["node"] as? String == "fc1" })
        #expect((fc1["kernel"] as? String)?.hasPrefix("sparse-") == true)
        #expect((fc1["medianMs"] as? Double ?? -1) >= 0)
        let denseSteps = (details[0]["layers"] as? [String: Any])?["steps"] as? [[String: Any]] ?? []
        #expect(denseSteps.first { $0["node"] as? String == "fc1" }?["kernel"] as? String == "dense-gemv")

        let text = try run(args)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("sparse  median ms"))
        #expect(text.stdout.contains("batch 3, 1 thread, sparse sparse"))
        #expect(text.stdout.contains("sparse-csr-gemm"))
        #expect(try run(["bench", m, "--sparse", "fast"]).status != 0)
        #expect(try run(["bench", m, "--train", "--layers"]).status != 0)
        // Pooling layers have no weights to prune: refused by name, nothing written.
        let pool = dir.appendingPathComponent("pool.bin").path
        let refused = try run(["prune", m, "-o", pool, "--layer-sparsity", "pool1=0.5"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("'pool1'") && refused.stderr.contains("matches no selected layer"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: pool))
    }
}
