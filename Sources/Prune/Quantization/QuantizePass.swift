import Compress

/// The storage formats of `quantize`.
public enum QuantizationFormat: String, Sendable, CaseIterable {
    /// IEEE 754 binary16 weights, computed in float32.
    case float16
    /// int8 weights on a uniform grid (per output channel or per tensor).
    case int8
}

/// `quantize`: stores weights in fewer bits. Quantization is weight sharing on
/// a uniform grid: every weight is replaced by the nearest value of the
/// format, the model keeps computing in float32 on those values, and the
/// tensor's precision is recorded in `ModelMetadata.storage.precisions`, so
/// the file stores the narrow values and every later step keeps them.
///
/// - `float16`: every float32 initializer of the selected layers is rounded
///   to the nearest IEEE half (ties to even) and stored as DenseFloat16
///   (Micikevicius et al., "Mixed Precision Training", ICLR 2018, use the
///   same rounding for their weight copies).
/// - `int8`: each selected conv and linear weight is quantized on a uniform
///   grid fitted to its range, per output channel or per tensor, symmetric
///   or not (Krishnamoorthi, "Quantizing deep convolutional networks for
///   efficient inference: A whitepaper", 2018, §2), with onnxruntime's
///   QuantizeLinear rounding (half to even) and saturation; it is stored as
///   DenseInt8 with its scales and zero points. Biases and BatchNorm
///   parameters stay float32. Unless `activations none`, the graph input and
///   every conv, linear, add and average-pool output (after its ReLU) but the
///   logits get a `quantizeDequantize` node: per tensor, uint8 or int8,
///   asymmetric, its range calibrated on validation images by min/max or
///   percentiles, so the model computes what onnxruntime's QDQ graph does.
///
/// With `finetune-epochs N` the quantized model is then fine-tuned
/// quantization-aware (``fineTuneQuantized(_:from:changes:metrics:context:)``).
public struct QuantizePass: Pass {
    public static let name = "quantize"
    public static let summary = "Quantize: float16 weights, or int8 weights per channel with calibrated uint8/int8 activations (QDQ); computed in float32."
    public static let parameters: [ParameterSpec] = [
        ParameterSpec("format", .choice(QuantizationFormat.allCases.map(\.rawValue)), default: nil,
                      help: "Storage format: float16 (IEEE half weights) or int8 (conv/linear weights on a uniform grid); both compute in float32."),
        ParameterSpec("fold-bn", .bool, default: .bool(true),
                      help: "Fold BatchNorm into the preceding conv/linear layer first, so the folded weights are quantized (false: quantize the BatchNorm parameters too)."),
        ParameterSpec("layers", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of the layers to quantize (default: all)."),
        ParameterSpec("exclude", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of layers to leave in float32."),
        ParameterSpec("weights", .choice(WeightGranularity.allCases.map(\.rawValue)), default: .string("per-channel"),
                      help: "int8: one scale per output channel, or one per tensor."),
        ParameterSpec("symmetric", .bool, default: .bool(true),
                      help: "int8: weights on a grid symmetric about zero (zero point 0, integers -127..127); false: asymmetric -128..127."),
        ParameterSpec("reduce-range", .bool, default: .bool(false),
                      help: "int8: 7-bit weights (-64..64, onnxruntime's reduce_range) for CPUs whose int8 products saturate."),
        ParameterSpec("activations", .choice(ActivationType.allCases.map(\.rawValue)), default: .string("uint8"),
                      help: "int8: activations per tensor as uint8 (asymmetric, onnxruntime's usual QDQ form on x86), int8, or none (weights only)."),
        ParameterSpec("calibration", .choice(CalibrationMethod.allCases.map(\.rawValue)), default: .string("minmax"),
                      help: "int8: activation ranges from the calibration images' minimum and maximum, percentiles, or the KL-divergence (entropy) threshold."),
        ParameterSpec("percentile", .double, default: .double(99.999),
                      help: "int8 with calibration percentile: the percentile kept at each end of each activation's histogram."),
        CalibrationImages.parameterSpec(help: "int8: validation images the activation ranges are calibrated on."),
        ParameterSpec("verify-batch", .int, default: .int(4),
                      help: "Seeded random images run through the model before and after, to record the largest output change (0: none)."),
    ] + FineTuneParameters.specs(epochsHelp:
        "Quantization-aware fine-tuning epochs after quantizing (and calibrating): float32 shadow weights, the forward on their rounding, straight-through gradients; grids and activation ranges fixed (default: 0).")

    public let format: QuantizationFormat
    public let foldBatchNorm: Bool
    public let selection: LayerSelection
    public let verifyBatch: Int
    public let granularity: WeightGranularity
    public let symmetric: Bool
    public let reduceRange: Bool
    public let activations: ActivationType
    public let calibration: CalibrationMethod
    public let percentile: Double
    public let calibrationImages: Int
    public let fineTuneEpochs: Int
    /// Fine-tuning settings by training parameter name (`lr`, `flip`, ...).
    public let fineTuneOverrides: [String: String]

    public init(parameters p: PassParameters) throws {
        var problems: [String] = []
        format = QuantizationFormat(rawValue: p.string("format"))!
        foldBatchNorm = p.bool("fold-bn")
        selection = LayerSelection(include: p.string("layers"), exclude: p.string("exclude"))
        verifyBatch = p.int("verify-batch")
        if verifyBatch < 0 { problems.append("verify-batch must be at least 0, got \(verifyBatch)") }
        granularity = WeightGranularity(rawValue: p.string("weights"))!
        symmetric = p.bool("symmetric")
        reduceRange = p.bool("reduce-range")
        activations = ActivationType(rawValue: p.string("activations"))!
        calibration = CalibrationMethod(rawValue: p.string("calibration"))!
        percentile = p.double("percentile")
        calibrationImages = p.int("calibration-images")
        if !(percentile > 50 && percentile <= 100) { problems.append("percentile must be in (50, 100], got \(percentile)") }
        if calibrationImages < 1 { problems.append("calibration-images must be at least 1, got \(calibrationImages)") }
        let fineTune = FineTuneParameters.request(p)
        fineTuneEpochs = fineTune.epochs ?? 0
        fineTuneOverrides = fineTune.overrides
        problems += FineTuneParameters.problems(fineTune, keeping: "keep-precisions", undoes: "the quantization")
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        var current = model
        var changes: [String] = []
        var metrics: [String: Double] = [:]
        if foldBatchNorm {
            let (graph, folded) = foldingBatchNorm(model.graph)
            current.graph = graph
            changes.append(folded.isEmpty ? "no BatchNorm follows a conv or linear layer; nothing folded"
                           : "folded \(folded.count) BatchNorm node(s) first: \(folded.joined(separator: ", "))")
            metrics["folded-bn"] = Double(folded.count)
        }
        let unrounded = current
        switch format {
        case .float16: try roundToFloat16(&current, changes: &changes, metrics: &metrics, context: context)
        case .int8: try quantizeInt8Weights(&current, changes: &changes, metrics: &metrics, context: context)
        }
        if fineTuneEpochs > 0 {
            try fineTuneQuantized(&current, from: unrounded, changes: &changes, metrics: &metrics, context: context)
        }
        let (before, after) = (try ModelFile.encode(model).count, try ModelFile.encode(current).count)
        metrics["file-bytes-before"] = Double(before)
        metrics["file-bytes-after"] = Double(after)
        changes.append(String(format: "file %d -> %d bytes (%.2fx smaller)", before, after, Double(before) / Double(after)))
        if verifyBatch > 0 {
            try model.checkInferenceMemory(batch: verifyBatch)
            var rng = context.generator(for: Self.name)
            let input = rng.uniformTensor([verifyBatch] + model.inputShape, in: 0...1)
            let reference = try Session(model: model, threads: context.threads).run(input)
            let quantized = try Session(model: current, threads: context.threads).run(input)
            metrics["max-abs-diff"] = Double(zip(reference.floats, quantized.floats).map { abs($0 - $1) }.max() ?? 0)
        }
        return PassOutcome(model: current, changes: changes, metrics: metrics)
    }

    /// Every float32 initializer of the selected layers rounded to float16.
    func roundToFloat16(_ current: inout Model, changes: inout [String], metrics: inout [String: Double],
                        context: PassContext) throws {
        let tensors = try selectedTensors(in: current.graph)
        var (count, maxChange) = (0, Float(0))
        for name in tensors {
            try context.checkCancellation()
            let tensor = current.graph.initializers[name]!
            let values = tensor.floats
            let rounded = values.map(\.roundedToFloat16)
            if let i = rounded.indices.first(where: { rounded[$0].isInfinite && values[$0].isFinite }) {
                throw ParameterError(pass: Self.name, problems: [
                    "tensor '\(name)' holds \(values[i]), beyond float16's range (±65504)"])
            }
            maxChange = zip(values, rounded).reduce(maxChange) { max($0, abs($1.0 - $1.1)) }
            current.graph.initializers[name] = Tensor(shape: tensor.shape, floats: rounded)
            current.metadata.storage.precisions[name] = .float16
            count += values.count
        }
        changes.append(String(format: "%d tensor(s), %d values rounded to float16 (largest change %.3g)",
                              tensors.count, count, maxChange))
        metrics["quantized-tensors"] = Double(tensors.count)
        metrics["quantized-values"] = Double(count)
        metrics["max-weight-change"] = Double(maxChange)
    }

    /// Each selected conv and linear weight quantized to int8.
    func quantizeInt8Weights(_ current: inout Model, changes: inout [String], metrics: inout [String: Double],
                             context: PassContext) throws {
        let layers = try selection.layers(in: current.graph, pass: Self.name)
        let (qmin, qmax) = int8WeightRange(symmetric: symmetric, reduceRange: reduceRange)
        var (count, errorSum) = (0, 0.0)
        for layer in layers {
            try context.checkCancellation()
            let tensor = current.graph.initializers[layer.weight]!
            let values = tensor.floats
            let (grid, quantized) = int8QuantizedWeight(values, shape: tensor.shape, granularity: granularity,
                                                        symmetric: symmetric, reduceRange: reduceRange)
            let error = zip(values, quantized).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
            current.graph.initializers[layer.weight] = Tensor(shape: tensor.shape, floats: quantized)
            current.metadata.storage.precisions[layer.weight] = .int8(grid)
            current.metadata.storage.sharedTensors.removeAll { $0 == layer.weight }
            count += values.count
            errorSum += error
            changes.append(String(format: "%@: %d scale(s) %.4g..%.4g, mean |w - q| %.4g", layer.node, grid.scales.count,
                                  grid.scales.min()!, grid.scales.max()!, error / Double(max(values.count, 1))))
        }
        changes.append("\(layers.count) weight(s), \(count) values on int8 grids (\(granularity.rawValue), "
                       + "\(symmetric ? "symmetric" : "asymmetric"), integers \(qmin)...\(qmax))")
        metrics["quantized-tensors"] = Double(layers.count)
        metrics["quantized-values"] = Double(count)
        metrics["mean-abs-error"] = count == 0 ? 0 : errorSum / Double(count)
        guard activations != .none else { return }
        let calibrationSet = try CalibrationImages.firstValidation(calibrationImages, for: current, context: context,
                                                                   pass: Self.name, purpose: "int8 activation calibration")
        let points = activationQuantizationPoints(in: current.graph)
        let quantizers = try calibratedActivations(current, points: points, images: calibrationSet.images, method: calibration,
                                                   percentile: percentile, type: activations, context: context)
        current.graph = insertingActivationQuantizers(current.graph, quantizers)
        let biases = roundingBiasesToInt32Grids(&current)
        if !biases.isEmpty {
            changes.append("\(biases.count) bias(es) rounded onto their int32 grids (scale = input scale x weight scale), "
                           + "as QLinearConv and onnxruntime's integer kernels add them: \(biases.joined(separator: ", "))")
        }
        metrics["int32-biases"] = Double(biases.count)
        changes.append("\(points.count) activation(s) quantized per tensor to \(activations.rawValue), ranges by "
                       + "\(calibration == .percentile ? "the \(percentile) percentile" : calibration.rawValue) on "
                       + "\(calibrationSet.images.shape[0]) validation image(s)")
        metrics["quantized-activations"] = Double(points.count)
        metrics["calibration-images"] = Double(calibrationSet.images.shape[0])
        // The split calibration read, whole: what to choose calibration settings on.
        let validation = try Evaluation.accuracy(of: current, on: try context.data.splits().validation,
                                                 threads: context.threads).top1
        metrics["validation-accuracy"] = validation
        changes.append(String(format: "validation top-1 %.2f%%", validation * 100))
    }

    /// Quantization-aware fine-tuning of `current`, the quantized model
    /// (Jacob et al., "Quantization and Training of Neural Networks for
    /// Efficient Integer-Arithmetic-Only Inference", CVPR 2018): the trainer
    /// keeps every recorded tensor in its precision (``ShadowWeights``), its
    /// float32 shadow weights starting from `unrounded` (the model before
    /// rounding, BatchNorm folded), so the forward pass starts from exactly
    /// the quantized model; grids and activation quantizers stay as
    /// calibrated. The trained model replaces `current` only when its
    /// validation accuracy beats the quantized model's: the choice among the
    /// epochs, the quantized model counting as epoch 0, is made on validation.
    func fineTuneQuantized(_ current: inout Model, from unrounded: Model, changes: inout [String],
                           metrics: inout [String: Double], context: PassContext) throws {
        let before = try metrics["validation-accuracy"]
            ?? Evaluation.accuracy(of: current, on: try context.data.splits().validation, threads: context.threads).top1
        var start = current
        for (name, tensor) in unrounded.graph.initializers where start.graph.initializers[name]?.shape == tensor.shape {
            start.graph.initializers[name] = tensor
        }
        var tuned = try context.fineTune(start, epochs: fineTuneEpochs, overrides: fineTuneOverrides, pass: Self.name)
        _ = roundingBiasesToInt32Grids(&tuned)
        for (name, precision) in tuned.metadata.storage.precisions {
            let tensor = tuned.graph.initializers[name]!
            if let problem = precision.problem(values: tensor.floats, shape: tensor.shape) {
                throw ParameterError(pass: Self.name, problems: ["after fine-tuning, tensor '\(name)' \(problem)"])
            }
        }
        let entry = tuned.metadata.history.last
        let after = entry?.metrics["validation-accuracy"] ?? 0
        metrics["validation-accuracy-before-finetune"] = before
        metrics["finetune-best-epoch"] = entry?.metrics["best-epoch"] ?? 0
        if after > before {
            current = tuned
            metrics["validation-accuracy"] = after
            changes.append(String(format: "quantization-aware fine-tuning, %d epoch(s), weights on their grids: "
                                  + "validation %.2f%% -> %.2f%% (epoch %d kept)", fineTuneEpochs, before * 100, after * 100,
                                  Int(metrics["finetune-best-epoch"]!)))
        } else {
            metrics["validation-accuracy"] = before
            changes.append(String(format: "quantization-aware fine-tuning, %d epoch(s): best validation %.2f%% is not above "
                                  + "the quantized model's %.2f%%; the quantized model is kept", fineTuneEpochs, after * 100,
                                  before * 100))
        }
    }

    /// The float32 initializers of the selected nodes, sorted; every layer
    /// pattern must match a node that reads one.
    func selectedTensors(in graph: Graph) throws(ParameterError) -> [String] {
        let weighted = graph.nodes.filter { node in
            node.inputs.contains { graph.initializers[$0]?.dtype == .float32 }
        }
        let unmatched = (selection.include + selection.exclude).filter { p in !weighted.contains { globMatches(p, $0.name) } }
        guard unmatched.isEmpty else {
            throw ParameterError(pass: Self.name, problems: unmatched.map {
                "layer pattern '\($0)' matches no layer with weights (layers: \(weighted.map(\.name).joined(separator: ", ")))"
            })
        }
        let names = weighted.filter { selection.contains($0.name) }
            .flatMap { node in node.inputs.filter { graph.initializers[$0]?.dtype == .float32 } }
        guard !names.isEmpty else { throw ParameterError(pass: Self.name, problems: ["no layer with weights is selected"]) }
        return Array(Set(names)).sorted()
    }

    /// Every bias of a layer with an int8 weight that reads an activation
    /// grid, replaced by its value on the int32 grid `Graph.biasGrid` gives
    /// (what a QDQ graph's DequantizeLinear of the int32 bias yields); returns
    /// the bias names.
    func roundingBiasesToInt32Grids(_ model: inout Model) -> [String] {
        var rounded: [String] = []
        for node in model.graph.nodes {
            guard let grid = model.graph.biasGrid(of: node, precisions: model.metadata.storage.precisions) else { continue }
            let name = node.inputs[2]
            let bias = model.graph.initializers[name]!
            model.graph.initializers[name] = Tensor(shape: bias.shape, floats: grid.fakeQuantize(bias.floats, shape: bias.shape))
            rounded.append(name)
        }
        return rounded
    }
}
