import Foundation
import Testing
@testable import Compress

extension CLITests {
    @Test func convertWritesTheFormatTheExtensionNames() throws {
        let dir = try tempDir()
        let bin = dir.appendingPathComponent("m.bin").path, onnx = dir.appendingPathComponent("m.onnx").path
        #expect(try run(["init", "--arch", "mobilenet-small", "-o", bin]).status == 0)
        let converted = try run(["convert", bin, "-o", onnx, "--json"])
        #expect(converted.status == 0)
        let report = try json(converted.stdout)
        #expect(report["format"] as? String == "onnx" && report["opset"] as? Int == 13)
        let model = try ModelFile.read(path: bin)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: onnx))
        #expect(Array(bytes) == (try ONNXExporter.encode(model)))
        #expect(report["bytes"] as? Int == bytes.count)

        let copy = dir.appendingPathComponent("copy.bin").path
        #expect(try run(["convert", bin, "-o", copy]).stdout.hasPrefix("wrote \(copy) (native)"))
        #expect(try ModelFile.read(path: copy) == model)
        #expect(try run(["convert", bin, "-o", bin]).status == 0)
        #expect(try ModelFile.read(path: bin) == model)
    }

    @Test func convertRefusesBadOpsets() throws {
        let dir = try tempDir()
        let bin = dir.appendingPathComponent("m.bin").path
        #expect(try run(["init", "--arch", "lenet300", "-o", bin]).status == 0)
        let native = try run(["convert", bin, "-o", dir.appendingPathComponent("x.bin").path, "--opset", "13"])
        #expect(native.status != 0 && native.stderr.contains("--opset applies to ONNX output only"))
        let old = try run(["convert", bin, "-o", dir.appendingPathComponent("x.onnx").path, "--opset", "9"])
        #expect(old.status != 0 && old.stderr.contains("--opset must be 13 to 22"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.onnx").path))
    }
}
