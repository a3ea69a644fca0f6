import Foundation

/// Which optimizer a training run uses.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd
    case adam
    case adamw
}

/// Which learning-rate schedule a training run uses.
public enum ScheduleKind: String, CaseIterable, Sendable, Codable {
    case constant
    /// Multiply by `gamma` every `stepEpochs` epochs.
    case step
    /// Cosine annealing to zero over the run.
    case cosine
    /// Linear warm-up then cosine annealing (one-cycle).
    case onecycle
}

/// Everything that determines a training run: same settings and data, same bytes.
public struct TrainingSettings: Sendable, Equatable {
    public var epochs = 10
    public var batchSize = 64
    /// Base (peak, for one-cycle) learning rate.
    public var learningRate: Float = 0.01
    public var optimizer = OptimizerKind.sgd
    /// SGD momentum (ignored by Adam).
    public var momentum: Float = 0.9
    public var nesterov = true
    /// L2 (SGD, Adam) or decoupled (AdamW) weight decay on weights; biases and BatchNorm parameters are not decayed.
    public var weightDecay: Float = 5e-4
    public var schedule = ScheduleKind.cosine
    /// For `.step`: epochs between decays, and the factor.
    public var stepEpochs = 10
    public var gamma: Float = 0.1
    /// For `.onecycle`: fraction of the run spent warming up.
    public var warmupFraction: Float = 0.3
    public var labelSmoothing: Float = 0
    public var augmentation = Augmentation.none
    /// Conv and linear weights that are exactly zero stay zero (a mask per
    /// weight tensor, taken from the model each epoch starts from), so
    /// fine-tuning a pruned model keeps its sparsity.
    public var keepsZeroWeights = false
    /// Initializers the model lists as codebook-shared
    /// (`ModelMetadata.storage.sharedTensors`) stay tied to a codebook of
    /// their values each epoch starts from: each centroid moves by its
    /// members' summed gradient and zeros stay zero (Han et al., "Deep
    /// Compression", ICLR 2016); hashed initializers (`storage.hashedTensors`)
    /// stay tied to their buckets, each moving by its members' signed summed
    /// gradient (HashedNets, Chen et al., ICML 2015). When false the ties are
    /// released and the trained tensors leave `sharedTensors` and `hashedTensors`.
    public var keepsCodebooks = true
    /// Initializers stored in a narrow precision (`storage.precisions`: int8
    /// grids, float16) stay in it: each trains through float32 shadow weights
    /// whose rounding onto its fixed grid the forward pass reads (see
    /// ``ShadowWeights``), and so does each bias of an int8 layer on its
    /// int32 grid, so the trained model is stored as it was validated
    /// (quantization-aware training). When false the trained tensors leave
    /// `precisions` and train in float32.
    public var keepsPrecisions = true
    /// Multirate training: slow layers updated every k steps (see ``MultirateSettings``).
    public var multirate = MultirateSettings()
    /// Knowledge distillation (Hinton et al. 2015, ``Loss/knowledgeDistillation(student:teacher:labels:temperature:alpha:labelSmoothing:)``):
    /// the teacher whose temperature-softened outputs the student also
    /// matches; nil trains on the labels alone.
    public var teacher: TeacherSource?
    /// The distillation temperature `T`, softening both models' outputs.
    /// 4 is a common choice on small image tasks; Hinton et al. used up to 20 on MNIST.
    public var temperature: Float = 4
    /// `α`: the weight of the distillation term; `1 - α` weighs the
    /// cross-entropy with the labels.
    public var distillationWeight: Float = 0.9
    /// The teacher's outputs are computed once, on the un-augmented training
    /// split, instead of on every batch (only without augmentation, where the
    /// two are the same images).
    public var cachesTeacherOutputs = false
    public var seed: UInt64 = 0
    public var threads = 1

    public init() {}

    /// Every problem with these settings, empty when they are usable.
    public var problems: [String] {
        var p: [String] = []
        if epochs < 1 { p.append("epochs must be at least 1, got \(epochs)") }
        if batchSize < 2 { p.append("batch size must be at least 2 (BatchNorm needs batch statistics), got \(batchSize)") }
        if !(learningRate > 0 && learningRate.isFinite) { p.append("learning rate must be positive, got \(learningRate)") }
        if !(0..<1).contains(momentum) { p.append("momentum must be in [0, 1), got \(momentum)") }
        if nesterov && momentum == 0 && optimizer == .sgd { p.append("Nesterov momentum needs momentum > 0") }
        if !(weightDecay >= 0) { p.append("weight decay must be >= 0, got \(weightDecay)") }
        if stepEpochs < 1 { p.append("step epochs must be at least 1, got \(stepEpochs)") }
        if !(gamma > 0 && gamma <= 1) { p.append("gamma must be in (0, 1], got \(gamma)") }
        if !(warmupFraction > 0 && warmupFraction < 1) { p.append("warm-up fraction must be in (0, 1), got \(warmupFraction)") }
        if !(0..<1).contains(labelSmoothing) { p.append("label smoothing must be in [0, 1), got \(labelSmoothing)") }
        if augmentation.cropPadding < 0 { p.append("crop padding must be >= 0, got \(augmentation.cropPadding)") }
        if threads < 1 { p.append("threads must be at least 1, got \(threads)") }
        p += distillationProblems
        return p + multirate.problems
    }

    /// A fresh optimizer for these settings.
    public func makeOptimizer() -> any StatefulOptimizer {
        switch optimizer {
        case .sgd: SGD(momentum: momentum, nesterov: nesterov && momentum > 0, weightDecay: weightDecay)
        case .adam: Adam(weightDecay: weightDecay)
        case .adamw: Adam.adamW(weightDecay: weightDecay)
        }
    }

    /// The learning-rate schedule over a run of `stepsPerEpoch × epochs` steps.
    public func makeSchedule(stepsPerEpoch: Int) -> LRSchedule {
        let total = max(1, stepsPerEpoch * epochs)
        switch schedule {
        case .constant: return .constant(learningRate)
        case .step: return .step(base: learningRate, stepSize: max(1, stepsPerEpoch * stepEpochs), gamma: gamma)
        case .cosine: return .cosine(base: learningRate, floor: 0, totalSteps: total)
        case .onecycle: return .oneCycle(peak: learningRate, totalSteps: total, warmupFraction: warmupFraction)
        }
    }

    /// The settings as text, for the model history and checkpoint checks.
    public var descriptions: [String: String] {
        var d: [String: String] = [
            "epochs": String(epochs), "batch": String(batchSize), "lr": String(learningRate),
            "optimizer": optimizer.rawValue, "weight-decay": String(weightDecay), "schedule": schedule.rawValue,
            "label-smoothing": String(labelSmoothing), "crop-padding": String(augmentation.cropPadding),
            "flip": String(augmentation.horizontalFlip), "seed": String(seed),
        ]
        if optimizer == .sgd { d["momentum"] = String(momentum); d["nesterov"] = String(nesterov) }
        if schedule == .step { d["step-epochs"] = String(stepEpochs); d["gamma"] = String(gamma) }
        if schedule == .onecycle { d["warmup"] = String(warmupFraction) }
        if keepsZeroWeights { d["keep-zeros"] = "true" }
        if !keepsCodebooks { d["keep-codebooks"] = "false" }
        if !keepsPrecisions { d["keep-precisions"] = "false" }
        if let teacher {
            d["teacher"] = teacher.description
            d["temperature"] = String(temperature)
            d["alpha"] = String(distillationWeight)
            if cachesTeacherOutputs { d["teacher-cache"] = "true" }
        }
        return d.merging(multirate.descriptions) { $1 }
    }
}

extension TrainingSettings {
    /// The problems of the distillation settings (part of ``problems``).
    var distillationProblems: [String] {
        var p: [String] = []
        if case .file(let path) = teacher {
            if path.isEmpty { p.append("teacher must name a model file or be 'input'") }
            else if !FileManager.default.fileExists(atPath: path) { p.append("teacher model \(path) does not exist") }
        }
        if !(temperature > 0 && temperature.isFinite) { p.append("temperature must be positive, got \(temperature)") }
        if !(0...1).contains(distillationWeight) { p.append("alpha must be in [0, 1], got \(distillationWeight)") }
        if cachesTeacherOutputs && teacher == nil { p.append("teacher-cache needs a teacher") }
        if cachesTeacherOutputs && !augmentation.isIdentity {
            p.append("teacher-cache needs crop-padding 0 and flip false: the cached outputs are the teacher's on the un-augmented images")
        }
        return p
    }
}
