import Foundation
import Testing
@testable import Compress

/// `compressor train` end to end on a tiny 28x28 dataset with noisy labels.
@Suite struct TrainCLITests {
    let cli = CLITests()

    /// `data/` with 120 training and 40 test images: an image of class k lights rows
    /// 3k..3k+2 of a dim, noisy 28x28 image, except that 30% light a random class's
    /// rows instead, so accuracy stays below 1 and differs between the splits.
    /// The last 40 training images are the validation split.
    func fixture() throws -> (dir: String, test: (images: Tensor, labels: [Int]), validation: (images: Tensor, labels: [Int])) {
        let dir = try cli.tempDir().path
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        var splits: [String: (Tensor, [Int])] = [:]
        for (split, n) in [("train", 120), ("test", 40)] {
            var rng = SeededGenerator(seed: UInt64(n))
            let labels = (0..<n).map { _ in Int(rng.next() % 10) }
            let shown = labels.map { rng.nextUniform() < 0.3 ? Int(rng.next() % 10) : $0 }
            let pixels = (0..<(n * 784)).map { i in
                0.2 * rng.nextUniform() + ((i % 784) / 28 / 3 == shown[i / 784] ? 0.7 : 0)
            }
            let images = Tensor(shape: [n, 1, 28, 28], floats: pixels)
            try NPY.write(images, path: "\(dir)/data/\(split)_images.npy")
            try NPY.write(Tensor(shape: [n], int64s: labels.map(Int64.init)), path: "\(dir)/data/\(split)_labels.npy")
            splits[split] = (images, labels)
        }
        let (train, trainLabels) = splits["train"]!
        let validation = Tensor(shape: [40, 1, 28, 28], floats: Array(train.floats[(80 * 784)...]))
        return (dir, (splits["test"]!.0, splits["test"]!.1), (validation, Array(trainLabels[80...])))
    }

    @Test func trainWritesTheBestEpochAndReportsIt() throws {
        let (dir, test, validation) = try fixture()
        let output = dir + "/trained.bin"
        let r = try cli.run(["train", "--arch", "lenet300", "-o", output, "--data", dir + "/data", "--validation-count", "40",
                             "--epochs", "3", "--batch", "16", "--lr", "0.05", "--seed", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let model = try ModelFile.read(path: output)
        #expect(model.metadata.architecture == "lenet300")
        #expect(model.metadata.history.last?.pass == "train")
        // The kernel set of the accuracies it states (auto: the best this CPU runs).
        #expect(model.metadata.history.last?.parameters["kernels"] == KernelSet.best.rawValue)
        #expect(!FileManager.default.fileExists(atPath: output + ".ckpt"), "the checkpoint is removed after a full run")
        // Training moved the weights away from the seed's initialization.
        let initial = Architecture.lenet300.build(seed: 3)
        #expect(model.graph.initializers["fc1.weight"] != nil)
        #expect(model.graph.initializers["fc1.weight"] != initial.graph.initializers["fc1.weight"])

        let j = try cli.json(r.stdout)
        #expect(j["output"] as? String == output)
        let epochs = try #require(j["epochs"] as? [[String: Any]])
        #expect(epochs.map { $0["epoch"] as? Int } == [1, 2, 3])
        let accuracies = epochs.map { $0["validationAccuracy"] as? Double ?? -1 }
        #expect(accuracies.allSatisfy { (0...1).contains($0) }, "\(accuracies)")
        #expect(epochs.allSatisfy { ($0["learningRate"] as? Double ?? 0) > 0 && ($0["trainLoss"] as? Double)?.isFinite == true })
        let best = try #require(j["bestEpoch"] as? Int)
        try #require((1...3).contains(best), "best epoch \(best) of 3")
        let bestAccuracy = try #require(j["validationAccuracy"] as? Double)
        #expect(bestAccuracy == accuracies.max() && bestAccuracy == accuracies[best - 1], "best \(best), \(accuracies)")
        // 70% of the images show their class's band: three epochs learn well above chance (0.1).
        #expect(bestAccuracy >= 0.4, "\(accuracies)")

        // The file holds the best epoch's model: its accuracies, counted here, are the reported ones.
        let onValidation = try accuracyByLoop(model, images: validation.images, labels: validation.labels)
        #expect(onValidation.top1 == bestAccuracy)
        let onTest = try accuracyByLoop(model, images: test.images, labels: test.labels)
        #expect(j["testAccuracy"] as? Double == onTest.top1)
    }

    /// `train --width` trains the architecture `init --width` builds: the same
    /// layer shapes, and the width in the history.
    @Test func trainAtAWidthTrainsTheInitArchitecture() throws {
        let (dir, _, _) = try fixture()
        let output = dir + "/narrow.bin"
        let r = try cli.run(["train", "--arch", "lenet300", "--width", "0.5", "-o", output, "--data", dir + "/data",
                             "--validation-count", "40", "--epochs", "1", "--batch", "16", "--seed", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        let model = try ModelFile.read(path: output)
        let built = Architecture.lenet300.build(seed: 3, width: 0.5)
        #expect(model.graph.initializers.mapValues(\.shape) == built.graph.initializers.mapValues(\.shape))
        #expect(model.graph.initializers["fc1.weight"]?.shape == [150, 784])
        #expect(model.metadata.history.last?.parameters["width"] == "0.5")
        let bad = try cli.run(["train", "--arch", "lenet300", "--width", "0", "-o", dir + "/bad.bin",
                               "--data", dir + "/data", "--validation-count", "40"])
        #expect(bad.status != 0 && bad.stderr.contains("--width must be positive"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad.bin"))
    }
}
