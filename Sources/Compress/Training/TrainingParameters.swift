/// Training settings as parameters: the one declaration that `train`,
/// `finetune` and the `finetune` pipeline step are all validated against.
extension TrainingSettings {
    /// Defaults for fine-tuning an already trained model: fewer epochs than
    /// training from scratch.
    public static var fineTuneDefaults: TrainingSettings {
        var s = TrainingSettings()
        s.epochs = 3
        s.learningRate = 0.01
        s.keepsZeroWeights = true
        return s
    }

    /// Every training parameter (kebab-case, as on the command line and in
    /// pipelines) with the values of `TrainingSettings()` as defaults.
    public static var parameterSpecs: [ParameterSpec] { parameterSpecs(defaults: TrainingSettings()) }

    /// Every training parameter, with `defaults` supplying the default values.
    public static func parameterSpecs(defaults d: TrainingSettings) -> [ParameterSpec] {
        [
            ParameterSpec("epochs", .int, default: .int(d.epochs), help: "Epochs to train."),
            ParameterSpec("batch", .int, default: .int(d.batchSize), help: "Images per mini-batch."),
            ParameterSpec("lr", .double, default: decimal(d.learningRate),
                          help: "Base learning rate (peak for one-cycle)."),
            ParameterSpec("optimizer", .choice(OptimizerKind.allCases.map(\.rawValue)),
                          default: .string(d.optimizer.rawValue), help: "Optimizer."),
            ParameterSpec("momentum", .double, default: decimal(d.momentum), help: "SGD momentum."),
            ParameterSpec("nesterov", .bool, default: .bool(d.nesterov), help: "Nesterov momentum for SGD."),
            ParameterSpec("weight-decay", .double, default: decimal(d.weightDecay),
                          help: "Weight decay on weights (L2 for sgd/adam, decoupled for adamw)."),
            ParameterSpec("schedule", .choice(ScheduleKind.allCases.map(\.rawValue)),
                          default: .string(d.schedule.rawValue), help: "Learning-rate schedule."),
            ParameterSpec("step-epochs", .int, default: .int(d.stepEpochs),
                          help: "For schedule step: epochs between decays."),
            ParameterSpec("gamma", .double, default: decimal(d.gamma), help: "For schedule step: decay factor."),
            ParameterSpec("label-smoothing", .double, default: decimal(d.labelSmoothing),
                          help: "Label smoothing for the cross-entropy loss."),
            ParameterSpec("crop-padding", .int, default: .int(d.augmentation.cropPadding),
                          help: "Augmentation: pad by N pixels and crop back at a random offset (0: off)."),
            ParameterSpec("flip", .bool, default: .bool(d.augmentation.horizontalFlip),
                          help: "Augmentation: random horizontal flips."),
            ParameterSpec("keep-zeros", .bool, default: .bool(d.keepsZeroWeights),
                          help: "Keep conv and linear weights that are exactly zero at zero (pruned weights stay pruned)."),
            ParameterSpec("keep-codebooks", .bool, default: .bool(d.keepsCodebooks),
                          help: "Keep codebook-shared weights (from `share`) tied to their centroids and hashed ones (from `hash`) to their buckets; false releases them."),
            ParameterSpec("keep-precisions", .bool, default: .bool(d.keepsPrecisions),
                          help: "Keep int8 and float16 weights (from `quantize`) on their grids, training them quantization-aware through float32 shadow weights (biases of int8 layers on their int32 grids); false trains them in float32 and releases them."),
            .optional("teacher", .string,
                      help: "Knowledge distillation: the teacher model file, or 'input' (the model the pass or pipeline started from); the loss becomes alpha * T^2 * KL(teacher || student, both softened at temperature T) + (1 - alpha) * cross-entropy."),
            ParameterSpec("temperature", .double, default: decimal(d.temperature),
                          help: "Distillation: the temperature T (> 0) both models' outputs are softened at."),
            ParameterSpec("alpha", .double, default: decimal(d.distillationWeight),
                          help: "Distillation: the weight alpha in [0, 1] of the teacher's term; 1 - alpha weighs the labels' cross-entropy."),
            ParameterSpec("teacher-cache", .bool, default: .bool(d.cachesTeacherOutputs),
                          help: "Distillation: compute the teacher's outputs once on the training split instead of on every batch (needs crop-padding 0 and flip false)."),
        ] + MultirateSettings.parameterSpecs(defaults: d.multirate)
    }

    /// Settings from validated parameters (see ``parameterSpecs(defaults:)``);
    /// seed and threads are kept from `defaults`.
    public init(parameters p: PassParameters, defaults: TrainingSettings) {
        self = defaults
        epochs = p.int("epochs")
        batchSize = p.int("batch")
        learningRate = Float(p.double("lr"))
        optimizer = OptimizerKind(rawValue: p.string("optimizer")) ?? defaults.optimizer
        momentum = Float(p.double("momentum"))
        nesterov = p.bool("nesterov")
        weightDecay = Float(p.double("weight-decay"))
        schedule = ScheduleKind(rawValue: p.string("schedule")) ?? defaults.schedule
        stepEpochs = p.int("step-epochs")
        gamma = Float(p.double("gamma"))
        labelSmoothing = Float(p.double("label-smoothing"))
        augmentation.cropPadding = p.int("crop-padding")
        augmentation.horizontalFlip = p.bool("flip")
        keepsZeroWeights = p.bool("keep-zeros")
        keepsCodebooks = p.bool("keep-codebooks")
        keepsPrecisions = p.bool("keep-precisions")
        if let teacher = p.optionalString("teacher") { self.teacher = TeacherSource(teacher) }
        temperature = Float(p.double("temperature"))
        distillationWeight = Float(p.double("alpha"))
        cachesTeacherOutputs = p.bool("teacher-cache")
        multirate = MultirateSettings(parameters: p)
    }

    /// Validates textual values against the training parameters and the
    /// settings' own range checks, collecting every problem into one error.
    public init(validating raw: [String: String], defaults: TrainingSettings,
                name: String = "finetune") throws(ParameterError) {
        let parameters = try PassParameters(validating: raw, against: Self.parameterSpecs(defaults: defaults), pass: name)
        self.init(parameters: parameters, defaults: defaults)
        let problems = self.problems
        guard problems.isEmpty else { throw ParameterError(pass: name, problems: problems) }
    }
}

/// `value` as the decimal it prints as (0.01, not 0.009999999776482582).
private func decimal(_ value: Float) -> ParameterValue {
    .double(Double(String(value)) ?? Double(value))
}
