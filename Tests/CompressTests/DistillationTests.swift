import Foundation
import Testing
@testable import Compress

/// Knowledge distillation in the training engine (Hinton et al. 2015) and
/// students built at a width multiplier.
@Suite struct DistillationTests {
    // MARK: The loss

    /// `log softmax(z / T)` of one row, written out plainly.
    func logSoftmax(_ z: [Double], _ t: Double) -> [Double] {
        let scaled = z.map { $0 / t }
        let total = scaled.map(exp).reduce(0, +)
        return scaled.map { $0 - log(total) }
    }

    /// The KD objective by hand: α T² KL(p ‖ q) + (1 - α) CE, averaged over rows.
    func handLoss(student: [[Double]], teacher: [[Double]], labels: [Int], t: Double, alpha: Double) -> Double {
        var total = 0.0
        for (row, (s, u)) in zip(student, teacher).enumerated() {
            let (logQ, logP) = (logSoftmax(s, t), logSoftmax(u, t))
            let kl = zip(logP, logQ).reduce(0) { $0 + exp($1.0) * ($1.0 - $1.1) }
            let ce = -logSoftmax(s, 1)[labels[row]]
            total += alpha * t * t * kl + (1 - alpha) * ce
        }
        return total / Double(student.count)
    }

    let student: [[Double]] = [[1.0, -0.5, 2.0], [0.3, 0.8, -1.2]]
    let teacher: [[Double]] = [[2.5, 0.1, 0.4], [-0.7, 1.9, 0.2]]
    let labels: [Int] = [2, 1]

    func tensor(_ rows: [[Double]]) -> Tensor {
        Tensor(shape: [rows.count, rows[0].count], floats: rows.flatMap { $0.map(Float.init) })
    }

    @Test func lossMatchesHandComputationWithTemperatureSquared() {
        for (t, alpha) in [(1.0, 0.5), (4.0, 0.9), (4.0, 1.0), (20.0, 0.3)] {
            let (loss, _) = Loss.knowledgeDistillation(student: tensor(student), teacher: tensor(teacher),
                                                       labels: labels.map(Int32.init), temperature: Float(t),
                                                       alpha: Float(alpha))
            let expected = handLoss(student: student, teacher: teacher, labels: labels, t: t, alpha: alpha)
            #expect(abs(Double(loss) - expected) < 1e-5 * max(1, expected), "T=\(t) alpha=\(alpha)")
        }
        // The T² factor: the pure distillation term at T=4 is 16 times the unscaled KL.
        let (kd, _) = Loss.knowledgeDistillation(student: tensor(student), teacher: tensor(teacher),
                                                 labels: labels.map(Int32.init), temperature: 4, alpha: 1)
        let unscaled = handLoss(student: student, teacher: teacher, labels: labels, t: 4, alpha: 1) / 16
        #expect(abs(Double(kd) - 16 * unscaled) < 1e-5)
        #expect(abs(unscaled - 0.043_600_11) < 1e-6)  // KL(p ‖ q) at T=4, averaged over the two rows (computed in Python)
    }

    @Test func gradientMatchesFiniteDifferences() {
        let (t, alpha) = (3.0, 0.7)
        let (_, gradient) = Loss.knowledgeDistillation(student: tensor(student), teacher: tensor(teacher),
                                                       labels: labels.map(Int32.init), temperature: Float(t),
                                                       alpha: Float(alpha))
        let h = 1e-5
        for row in 0..<2 {
            for j in 0..<3 {
                var (up, down) = (student, student)
                up[row][j] += h
                down[row][j] -= h
                let numeric = (handLoss(student: up, teacher: teacher, labels: labels, t: t, alpha: alpha)
                    - handLoss(student: down, teacher: teacher, labels: labels, t: t, alpha: alpha)) / (2 * h)
                #expect(abs(Double(gradient.floats[row * 3 + j]) - numeric) < 1e-5, "[\(row), \(j)]")
            }
        }
    }

    @Test func alphaZeroIsCrossEntropy() {
        let ce = Loss.softmaxCrossEntropy(logits: tensor(student), labels: labels.map(Int32.init), labelSmoothing: 0.1)
        let kd = Loss.knowledgeDistillation(student: tensor(student), teacher: tensor(teacher),
                                            labels: labels.map(Int32.init), temperature: 4, alpha: 0, labelSmoothing: 0.1)
        #expect(kd.loss == ce.loss)
        #expect(kd.gradient.floats == ce.gradient.floats)
    }

    // MARK: Training with a teacher

    /// The quadrant task of `TrainingRunTests`: 1x8x8 images, 4 classes.
    func data() -> DatasetSplits {
        let run = TrainingRunTests()
        return DatasetSplits(train: run.quadrants(256, seed: 1), validation: run.quadrants(64, seed: 2),
                             test: run.quadrants(128, seed: 3), classNames: ["0", "1", "2", "3"])
    }

    func settings(epochs: Int, teacher: TeacherSource? = nil, alpha: Float = 0.9) -> TrainingSettings {
        var s = TrainingSettings()
        s.epochs = epochs
        s.batchSize = 32
        s.learningRate = 0.05
        s.seed = 4
        s.teacher = teacher
        s.distillationWeight = alpha
        return s
    }

    func freshStudent() -> Model { Architecture.lenet300.build(seed: 7, inputShape: [1, 8, 8], classes: 4, width: 0.1) }

    /// A lenet300 trained on the quadrants for two epochs.
    func trainedTeacher() throws -> Model {
        let teacher = Architecture.lenet300.build(seed: 2, inputShape: [1, 8, 8], classes: 4)
        return try TrainingRun(model: teacher, data: data(), settings: settings(epochs: 2), passName: "train",
                               checkpointDirectory: nil).run(resume: false).model
    }

    @Test func alphaZeroTrainsAsWithoutTeacher() throws {
        let teacher = try trainedTeacher()
        let plain = try TrainingRun(model: freshStudent(), data: data(), settings: settings(epochs: 1), passName: "train",
                                    checkpointDirectory: nil).run(resume: false).model
        let distilled = try TrainingRun(model: freshStudent(), data: data(),
                                        settings: settings(epochs: 1, teacher: .input, alpha: 0),
                                        passName: "train", checkpointDirectory: nil, teacher: teacher).run(resume: false).model
        #expect(distilled.graph == plain.graph)
        #expect(distilled.metadata.history.last?.parameters["alpha"] == "0.0")
        #expect(distilled.metadata.history.last?.parameters["teacher"] == "input")
        #expect(plain.metadata.history.last?.parameters["teacher"] == nil)
    }

    @Test func distillationRaisesAgreementWithTheTeacher() throws {
        let d = data()
        let teacher = try trainedTeacher()
        let start = freshStudent()
        let before = try Evaluation.agreement(of: start, with: teacher, on: d.test)
        let outcome = try TrainingRun(model: start, data: d, settings: settings(epochs: 4, teacher: .input),
                                      passName: "distill", checkpointDirectory: nil, teacher: teacher).run(resume: false)
        let after = try Evaluation.agreement(of: outcome.model, with: teacher, on: d.test)
        // Measured: 0.461 before, 1.0 after.
        #expect(before < 0.6)
        #expect(after >= 0.95)
    }

    @Test func cachedTeacherOutputsTrainTheSameModel() throws {
        let teacher = try trainedTeacher()
        var cached = settings(epochs: 1, teacher: .input)
        cached.cachesTeacherOutputs = true
        let a = try TrainingRun(model: freshStudent(), data: data(), settings: settings(epochs: 1, teacher: .input),
                                passName: "train", checkpointDirectory: nil, teacher: teacher).run(resume: false).model
        let b = try TrainingRun(model: freshStudent(), data: data(), settings: cached,
                                passName: "train", checkpointDirectory: nil, teacher: teacher).run(resume: false).model
        #expect(a.graph == b.graph)
    }

    @Test func refusesMismatchedTeachersAndBadSettings() throws {
        let otherClasses = Architecture.lenet300.build(seed: 1, inputShape: [1, 8, 8], classes: 5)
        #expect(throws: ParameterError(pass: "distill", problems: ["the teacher has 5 classes but the student 4"])) {
            try TrainingRun(model: freshStudent(), data: data(), settings: settings(epochs: 1, teacher: .input),
                            passName: "distill", checkpointDirectory: nil, teacher: otherClasses)
        }
        let otherInput = Architecture.lenet300.build(seed: 1, inputShape: [1, 9, 9], classes: 4)
        #expect(throws: ParameterError(pass: "distill", problems: ["the teacher takes inputs [1, 9, 9] but the student [1, 8, 8]"])) {
            try TrainingRun(model: freshStudent(), data: data(), settings: settings(epochs: 1, teacher: .input),
                            passName: "distill", checkpointDirectory: nil, teacher: otherInput)
        }
        #expect(throws: ParameterError(pass: "finetune", problems: [
            "temperature must be positive, got 0.0", "alpha must be in [0, 1], got 1.5",
            "teacher-cache needs crop-padding 0 and flip false: the cached outputs are the teacher's on the un-augmented images",
        ])) {
            try TrainingSettings(validating: ["teacher": "input", "temperature": "0", "alpha": "1.5", "teacher-cache": "true",
                                              "flip": "true"], defaults: .fineTuneDefaults)
        }
        #expect(throws: ParameterError(pass: "finetune", problems: ["teacher model /nonexistent/teacher.bin does not exist"])) {
            try TrainingSettings(validating: ["teacher": "/nonexistent/teacher.bin"], defaults: .fineTuneDefaults)
        }
    }

    /// Fine-tunes `freshStudent()` for a pass whose input is `passInput`, with `overrides`.
    func fineTuned(passInput: Model?, overrides: [String: String]) throws -> Model {
        let d = data()
        var s = TrainingSettings.fineTuneDefaults
        s.batchSize = 32
        let context = PassContext(seed: 4, data: DataProvider { d }, trainer: FineTuner(settings: s), passInput: passInput)
        return try context.fineTune(freshStudent(), epochs: 1, overrides: overrides, pass: "test")
    }

    @Test func teacherInputIsThePassInput() throws {
        let teacher = try trainedTeacher()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("teacher-\(UUID().uuidString).bin").path
        try ModelFile.write(teacher, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try fineTuned(passInput: nil, overrides: ["teacher": path])
        let fromInput = try fineTuned(passInput: teacher, overrides: ["teacher": "input"])
        let fromOther = try fineTuned(passInput: freshStudent(), overrides: ["teacher": "input"])
        #expect(fromInput.graph == fromFile.graph)
        #expect(fromOther.graph != fromFile.graph)
        #expect(throws: ParameterError.self) { try fineTuned(passInput: nil, overrides: ["teacher": "input"]) }

        // `Pass.run` makes the pass's input the context's `passInput`.
        struct InputCheck: Pass {
            static let name = "input-check"
            static let summary = ""
            static let parameters: [ParameterSpec] = []
            init(parameters: PassParameters) {}
            func apply(to model: Model, context: PassContext) throws -> PassOutcome {
                PassOutcome(model: model, changes: [], metrics: ["same": context.passInput == model ? 1 : 0])
            }
        }
        let p = try PassParameters(validating: [:], against: [], pass: "input-check")
        #expect(try InputCheck(parameters: p).run(on: teacher, context: PassContext(), parameters: p).record.metrics["same"] == 1)
    }

    // MARK: Students by width

    @Test func widthRoundsChannelCounts() {
        // Multiples of 8 stay multiples of 8 (halves up, at least 8); others round to the nearest integer (at least 1).
        #expect(Architecture.scaledChannels(32, width: 0.5) == 16)
        #expect(Architecture.scaledChannels(16, width: 0.75) == 16)  // 12 is 1.5 eighths: up to 16
        #expect(Architecture.scaledChannels(128, width: 0.3) == 40)  // 38.4 -> 40
        #expect(Architecture.scaledChannels(16, width: 0.1) == 8)
        #expect(Architecture.scaledChannels(64, width: 2) == 128)
        #expect(Architecture.scaledChannels(20, width: 0.5) == 10)
        #expect(Architecture.scaledChannels(50, width: 0.5) == 25)
        #expect(Architecture.scaledChannels(500, width: 0.25) == 125)
        #expect(Architecture.scaledChannels(50, width: 0.01) == 1)
        #expect(Architecture.scaledChannels(100, width: 0.125) == 13)  // 12.5 -> 13
    }

    @Test func widthOneIsTheArchitectureAsPublished() {
        for arch in Architecture.allCases {
            #expect(arch.build(seed: 3, width: 1) == arch.build(seed: 3), "\(arch)")
        }
    }

    @Test func halfWidthStudentsHaveScaledLayers() throws {
        func outChannels(_ model: Model, _ weight: String) -> Int? { model.graph.initializers[weight]?.shape[0] }
        let vgg = Architecture.vggSmall.build(seed: 0, width: 0.5)
        #expect((1...6).map { outChannels(vgg, "conv\($0).weight") } == [16, 16, 32, 32, 64, 64])
        #expect(vgg.graph.initializers["fc.weight"]?.shape == [10, 64])
        #expect(vgg.metadata.history.first?.parameters["width"] == "0.5")
        let lenet = Architecture.lenet5.build(seed: 0, width: 0.5)
        #expect(["conv1", "conv2", "fc1", "fc2"].map { outChannels(lenet, "\($0).weight") } == [10, 25, 250, 10])
        let resnet = Architecture.resnet20.build(seed: 0, width: 0.5)
        #expect(["conv1", "layer1.0.conv1", "layer2.0.shortcut.conv", "layer3.2.conv2"].map { outChannels(resnet, "\($0).weight") }
                == [8, 8, 16, 32])
        let mobile = Architecture.mobilenetSmall.build(seed: 0, width: 0.5)
        #expect(mobile.graph.initializers["block4.dw.weight"]?.shape == [64, 1, 3, 3])
        for arch in Architecture.allCases {
            let full = arch.build(seed: 0), half = arch.build(seed: 0, width: 0.5)
            _ = try half.graph.inferShapes(batch: 2)
            #expect(half.graph.parameterCount < full.graph.parameterCount, "\(arch)")
        }
    }
}
