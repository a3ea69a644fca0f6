import Foundation
import Testing
@testable import Compress

/// The shipped reference models: `compressor eval` reproduces the test accuracy
/// that each model's history and models/README.md state.
@Suite struct ReferenceModelTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let dataInstalled = FileManager.default.fileExists(atPath: DatasetLoader.defaultDirectory)

    /// Every shipped model; each evaluates all 10,000 test images in a few seconds, debug build included.
    static let models = ["lenet300", "lenet5", "vgg-small", "resnet20"]

    @Test(.enabled(if: dataInstalled), arguments: models)
    func evalReproducesStatedAccuracy(_ name: String) throws {
        let path = Self.root.appendingPathComponent("models/\(name).bin").path
        let model = try ModelFile.read(path: path)
        let training = try #require(model.metadata.history.last { $0.pass == "train" })
        let stated = try #require(training.metrics["test-accuracy"])
        // The accuracy is reproducible with the kernel set that measured it (histories
        // written before kernel sets were recorded were measured with the AVX2 kernels).
        let kernels = try #require(KernelSet(rawValue: training.parameters["kernels"] ?? "avx2"))
        try #require(kernels.isSupported, "this CPU cannot run the \(kernels) kernels that measured \(name)")
        let test = try DatasetLoader.load(splits: [.test]).test
        let measured = try Evaluation.accuracy(of: model, on: test, threads: 2, kernels: kernels).top1
        #expect(measured == stated)
        // The README's table states the same number, as a percentage with two decimals.
        let readme = try String(contentsOf: Self.root.appendingPathComponent("models/README.md"), encoding: .utf8)
        let row = try #require(readme.split(separator: "\n").first { $0.hasPrefix("| `\(name).bin`") })
        #expect(row.contains(String(format: "%.2f%%", stated * 100)))
        #expect(training.parameters["arch"] == name)
    }
}
