import Foundation
import Testing
@testable import Compress

/// `compressor report` end to end: its numbers equal independent oracles (counts and
/// MACs by hand, file sizes from `stat`, accuracy counted here from the logits) and
/// what `info --json` and `eval --json` print for the same models.
@Suite struct ReportCLITests {
    let cli = CLITests()

    /// A temp directory with vgg-small (has BatchNorm), its fold-bn'ed variant,
    /// and a 40-image `.npy` dataset.
    func fixture() throws -> (dir: URL, models: [String], data: String) {
        let dir = try cli.tempDir()
        let a = dir.appendingPathComponent("vgg.bin").path, b = dir.appendingPathComponent("vgg-folded.bin").path
        #expect(try cli.run(["init", "--arch", "vgg-small", "--seed", "4", "-o", a]).status == 0)
        #expect(try cli.run(["fold-bn", a, "-o", b]).status == 0)
        var rng = SeededGenerator(seed: 9)
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let labels = Tensor(shape: [40], int64s: (0..<40).map { Int64($0 % 10) })
        for (name, t) in [("train_images", rng.uniformTensor([10, 1, 28, 28])), ("test_images", rng.uniformTensor([40, 1, 28, 28])),
                          ("train_labels", Tensor(shape: [10], int64s: [Int64](repeating: 0, count: 10))),
                          ("test_labels", labels)] {
            try cli.put(data.appendingPathComponent("\(name).npy").path, Data(NPY.encode(t)))
        }
        return (dir, [a, b], data.path)
    }

    @Test func reportNumbersEqualInfoAndEval() throws {
        let (dir, models, data) = try fixture()
        let out = dir.appendingPathComponent("report").path
        let r = try cli.run(["report"] + models + ["-o", out, "--data", data, "--validation-count", "0",
                                                   "--batch", "1,2", "--repetitions", "2", "--seconds", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try ReportWriter.decode(json: Data(r.stdout.utf8))
        try #require(report.models.map(\.label) == ["vgg", "vgg-folded"])
        // vgg-small on 28x28: 3x3 convs 1->32, 32->32 at 28x28, 32->64, 64->64 at 14x14, 64->128,
        // 128->128 at 7x7, then fc 128->10. Folding keeps the MACs, drops BatchNorm's 4 tensors
        // per channel and gives each conv a bias.
        let convWeights: Int = 9 * (32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128)
        let macs: Int = 9 * (784 * (32 + 32 * 32) + 196 * (32 * 64 + 64 * 64) + 49 * (64 * 128 + 128 * 128)) + 128 * 10
        let channels = 32 + 32 + 64 + 64 + 128 + 128
        #expect(report.models.map(\.parameters) == [convWeights + 4 * channels + 1290, convWeights + channels + 1290])
        #expect(report.models.map(\.macsPerImage) == [macs, macs])
        let (images, labels) = try testSplit(data)
        for (m, path) in zip(report.models, models) {
            let model = try ModelFile.read(path: path)
            #expect(m.fileBytes == (try statSize(path)))
            #expect(m.nonZeroParameters == nonZerosByLoop(model))
            let counted = accuracyByLoop(logits: try Session(model: model).run(images), labels: labels)
            #expect(m.accuracy?.images == 40)
            #expect(m.accuracy?.top1 == counted.top1 && m.accuracy?.top5 == counted.top5, "\(m.label): counted \(counted)")

            let info = try cli.json(try cli.run(["info", path, "--json"]).stdout)
            #expect(m.fileBytes == info["fileBytes"] as? Int)
            #expect(m.parameters == info["parameters"] as? Int)
            #expect(m.nonZeroParameters == info["nonZeros"] as? Int)
            #expect(m.macsPerImage == info["macs"] as? Int)
            #expect(m.tensorBytes == info["weightBytes"] as? Int)
            try expectLayersMatch(m.layers, info: info)

            let eval = try cli.json(try cli.run(["eval", path, "--data", data, "--validation-count", "0", "--json"]).stdout)
            #expect(m.accuracy?.images == eval["images"] as? Int)
            #expect(m.accuracy?.top1 == eval["top1"] as? Double)
            #expect(m.accuracy?.top5 == eval["top5"] as? Double)
        }
        // Folding removes the BatchNorm tensors, so the folded file is smaller.
        #expect(report.models[1].compressionRatio == Double(try statSize(models[0])) / Double(try statSize(models[1])))
        #expect(report.models[1].compressionRatio > 1)
        #expect(report.models[0].layers.contains { $0.op == "BatchNorm" })
        #expect(!report.models[1].layers.contains { $0.op == "BatchNorm" })
        for name in ["report.json", "report.md", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent(name)))
        }
        let html = try String(contentsOfFile: (out as NSString).appendingPathComponent("report.html"), encoding: .utf8)
        #expect(!html.contains("http"))
    }

    /// The test split of the fixture's data, read back from its files.
    func testSplit(_ data: String) throws -> (Tensor, [Int]) {
        let images = try NPY.read(path: data + "/test_images.npy")
        let labels = try NPY.read(path: data + "/test_labels.npy")
        return (images, labels.int64s.map(Int.init))
    }

    /// Each report layer has the parameters, non-zeros and MACs `info` lists, and its bytes sum `info`'s by encoding.
    func expectLayersMatch(_ layers: [LayerReport], info: [String: Any]) throws {
        let infoLayers = try #require(info["layers"] as? [[String: Any]])
        let withTensors = infoLayers.filter { ($0["parameters"] as? Int ?? 0) > 0 }
        #expect(layers.map(\.name) == withTensors.map { $0["name"] as? String })
        for (l, i) in zip(layers, withTensors) {
            #expect(l.parameters == i["parameters"] as? Int)
            #expect(l.nonZeros == i["nonZeros"] as? Int)
            #expect(l.macs == i["macs"] as? Int)
            #expect(l.bytes == (i["bytes"] as? [String: Int])?.values.reduce(0, +))
        }
    }

    /// `--validation`: every model is also measured on the validation split, the last
    /// `--validation-count` training images, as `train` and `finetune` hold them out.
    @Test func validationFlagMeasuresTheHeldOutTrainingImages() throws {
        let (dir, models, data) = try fixture()
        let out = dir.appendingPathComponent("v").path
        let quick = ["--batch", "1", "--repetitions", "2", "--seconds", "0"]
        let r = try cli.run(["report"] + models + ["-o", out, "--data", data, "--validation-count", "4", "--validation",
                                                   "--json"] + quick)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try ReportWriter.decode(json: Data(r.stdout.utf8))
        #expect(report.settings.validationImages == 4 && report.settings.testImages == 40)
        // The split is the last four training images of the files.
        let train = try NPY.read(path: data + "/train_images.npy")
        let split = try DatasetLoader.load(directory: data, validationCount: 4).validation
        #expect(split.images.floats == Array(train.floats.suffix(4 * 784)))
        for (m, path) in zip(report.models, models) {
            let counted = accuracyByLoop(logits: try Session(model: try ModelFile.read(path: path)).run(split.images),
                                         labels: split.labels.map(Int.init))
            let v = try #require(m.validationAccuracy)
            #expect(v.images == 4 && v.top1 == counted.top1 && v.top5 == counted.top5, "\(m.label)")
            #expect(m.accuracy?.images == 40)
        }
        let markdown = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(markdown.contains("validation top-1") && markdown.contains("| validation images | 4 |"))
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(html.components(separatedBy: "data-series=\"validation top-1\"").count - 1 == 2)

        let text = try cli.run(["report", models[0], "-o", out, "--data", data, "--validation-count", "4",
                                "--validation"] + quick)
        #expect(text.status == 0 && text.stdout.contains("val top-1"), "\(text.stderr)")
        let none = try cli.run(["report", models[0], "-o", out, "--data", data, "--validation-count", "0",
                                "--validation"] + quick)
        #expect(none.status != 0 && none.stderr.contains("--validation-count"), "\(none.stderr)")
    }

    @Test func textSummaryAndClearErrors() throws {
        let (dir, models, data) = try fixture()
        let out = dir.appendingPathComponent("r").path
        let ok = try cli.run(["report", models[0], "-o", out, "--data", data, "--limit", "8", "--batch", "1",
                              "--repetitions", "2", "--seconds", "0"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("vgg") && ok.stdout.contains("wrote"))

        let missing = dir.appendingPathComponent("missing.bin").path
        let noModel = try cli.run(["report", models[0], missing, "-o", out, "--data", data])
        #expect(noModel.status != 0)
        #expect(noModel.stderr.contains(missing))

        let noData = try cli.run(["report", models[0], "-o", out, "--data", dir.appendingPathComponent("nodata").path])
        #expect(noData.status != 0)
        #expect(noData.stderr.contains("nodata"))

        let badBatch = try cli.run(["report", models[0], "-o", out, "--data", data, "--batch", "0"])
        #expect(badBatch.status != 0)
        #expect(badBatch.stderr.contains("--batch"))
    }
}
