import Foundation
import Testing
@testable import Compress
import Prune

/// `compressor quantize` end to end, `info` on its output, and a `quantize`
/// pipeline step, on the tiny fixture of `RunCLITests`.
@Suite struct QuantizeCLITests {
    let cli = CLITests()
    let runs = RunCLITests()

    func fileSize(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    @Test func quantizeHelpListsEveryPassParameterAndAnExample() throws {
        let help = try cli.run(["quantize", "--help"]).stdout
        for spec in QuantizePass.parameters {
            #expect(help.contains("--\(spec.name) ") || help.contains("--\(spec.name)\n"), "missing --\(spec.name)")
        }
        #expect(help.contains("compressor quantize model.bin -o model-fp16.bin --format float16"))
    }

    @Test func float16HalvesTheFileAndInfoShowsThePrecision() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["quantize", "model.bin", "-o", "fp16.bin", "--format", "float16", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let metrics = try #require(try cli.json(r.stdout)["metrics"] as? [String: Double])
        #expect(metrics["quantized-tensors"] == 6)
        let ratio = Double(try fileSize(dir + "/model.bin")) / Double(try fileSize(dir + "/fp16.bin"))
        #expect(ratio > 1.95, "\(ratio)")
        let info = try cli.runOK(["info", dir + "/fp16.bin"]).stdout
        #expect(info.contains("precision (stored narrower than float32, computed in float32):"), "\(info)")
        #expect(info.contains("fc1.weight  float16    dense-float16"), "\(info)")
        let json = try cli.json(try cli.runOK(["info", dir + "/fp16.bin", "--json"]).stdout)
        let rows = try #require(json["precisions"] as? [[String: Any]])
        #expect(rows.count == 6 && rows.allSatisfy { $0["precision"] as? String == "float16" })
        // eval reads it; the values are the float16 ones.
        let eval = try runs.run(["eval", "fp16.bin", "--data", "data", "--json"], in: dir)
        #expect(eval.status == 0, "\(eval.stderr)")
        let m = try ModelFile.read(path: dir + "/fp16.bin")
        #expect(m.graph.initializers.values.allSatisfy { $0.floats.allSatisfy { Float(Float16($0)) == $0 } })
    }

    @Test func int8QuantizesWeightsAndActivationsAndInfoShowsTheirParameters() throws {
        let dir = try runs.fixture()
        let r = try runs.run(["quantize", "model.bin", "-o", "int8.bin", "--format", "int8", "--data", "data",
                              "--validation-count", "32", "--calibration-images", "16"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("activation(s) quantized per tensor to uint8, ranges by minmax on 16 validation image(s)"),
                "\(r.stdout)")
        let ratio = Double(try fileSize(dir + "/model.bin")) / Double(try fileSize(dir + "/int8.bin"))
        #expect(ratio > 3.3, "\(ratio)")
        let info = try cli.runOK(["info", dir + "/int8.bin"]).stdout
        #expect(info.contains("int8/per-channel  dense-int8/per-channel"), "\(info)")
        #expect(info.contains("activation quantization (QuantizeLinear + DequantizeLinear, per tensor):"), "\(info)")
        let json = try cli.json(try cli.runOK(["info", dir + "/int8.bin", "--json"]).stdout)
        let rows = try #require(json["precisions"] as? [[String: Any]])
        #expect(rows.allSatisfy { ($0["scales"] as? [Double])?.isEmpty == false && $0["axis"] as? Int == 0 })
        #expect((json["activationQuantizers"] as? [[String: Any]])?.isEmpty == false)
        let eval = try runs.run(["eval", "int8.bin", "--data", "data"], in: dir)
        #expect(eval.status == 0, "\(eval.stderr)")
        // QDQ ONNX, opset 13 by default or the one asked for from 13 on; older opsets: one message, no file.
        let onnx = try runs.run(["convert", "int8.bin", "-o", "int8.onnx"], in: dir)
        #expect(onnx.status == 0 && onnx.stdout.hasPrefix("wrote int8.onnx (ONNX opset 13)"), "\(onnx.stderr)")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/int8.onnx")))
        #expect(bytes.count > 0 && String(decoding: bytes, as: UTF8.self).contains("QuantizeLinear"))
        let newer = try runs.run(["convert", "int8.bin", "-o", "int8-19.onnx", "--opset", "19"], in: dir)
        #expect(newer.status == 0 && newer.stdout.contains("(ONNX opset 19)"), "\(newer.stderr)")
        let old = try runs.run(["convert", "int8.bin", "-o", "int8-12.onnx", "--opset", "12"], in: dir)
        #expect(old.status != 0 && old.stderr.contains("--opset must be 13 to 22, got 12"), "\(old.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/int8-12.onnx"))
    }

    @Test func badInputFailsWithOneMessageAndNoFile() throws {
        let dir = try runs.fixture()
        for args in [[String](), ["--format", "int4"], ["--format", "float16", "--layers", "conv*"],
                     ["--format", "float16", "--verify-batch", "-2"], ["--format", "int8", "--percentile", "40"],
                     ["--format", "int8", "--calibration", "kl"], ["--format", "int8", "--data", "nowhere"]] {
            let r = try runs.run(["quantize", "model.bin", "-o", "out.bin"] + args, in: dir)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.hasPrefix("Error: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"))
        }
    }

    @Test func quantizeStepInAPipeline() throws {
        let dir = try runs.fixture(steps: "steps:\n  - quantize: {format: float16}\n  - eval: {limit: 8}\n")
        let r = try runs.run(["run", "pipeline.yaml"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 1/2 quantize: "), "\(r.stdout)")
        let m = try ModelFile.read(path: dir + "/out/final.bin")
        #expect(m.metadata.storage.precisions.count == 6)
        let bad = try runs.fixture(steps: "steps:\n  - quantize: {format: float8}\n")
        let b = try runs.run(["run", "pipeline.yaml"], in: bad)
        #expect(b.status != 0)
        #expect(!FileManager.default.fileExists(atPath: bad + "/out"))
    }
}
