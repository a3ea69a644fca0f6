import Foundation

/// One node compiled for training: its kernel and the value ids it reads and writes.
struct TrainingStep {
    var node: String
    var kernel: any TrainingKernel
    var inputs: [Int]
    var output: Int
}

/// The batch-independent part of a `TrainingGraph`: values numbered in graph
/// order, where each one's storage comes from, and the compiled steps.
struct TrainingPlan {
    var ids: [String: Int]
    var names: [String]
    var sources: [ValueSource]
    var needsGradient: [Bool]
    var constants: [FloatBuffer]
    var steps: [TrainingStep]
    var inputID: Int
    var outputIDs: [Int]
    /// Per value: whether it (and its gradient) is stored NCHW8c (`chooseBlockedLayouts`), else plain NCHW.
    var blocked: [Bool] = []
    /// Per value: whether it is computed inside a fused kernel and never stored
    /// (a BatchNorm or Add output fused into the ReLU that reads it, `fuseActivations`).
    var fused: [Bool] = []
    /// Per value (a storage root): the step whose backward writes its gradient
    /// first and assigns it rather than adding (`chooseAssigningWriters`); that
    /// gradient is not zeroed before a backward. Nil: zeroed, every writer adds.
    var assigningStep: [Int?] = []

    /// The value whose storage `id` shares, following aliases.
    func root(_ id: Int) -> Int {
        if case .alias(let of) = sources[id] { return root(of) }
        return id
    }
}

/// Numbers values, creates parameter buffers and compiles nodes into training kernels.
struct TrainingPlanBuilder {
    let graph: Graph
    let randomness: DropoutRandomness
    /// The kernel set dense convolutions train on (direct blocked kernels unless `portable`).
    let kernels: KernelSet
    /// Whether values between kernels that can are kept NCHW8c (`TrainingPlan.chooseBlockedLayouts`),
    /// activations fused and first-written gradients assigned.
    let blockedLayouts: Bool
    /// False when the environment sets `COMPRESSOR_BLOCKED_LAYOUTS=0`: every value plain, nothing
    /// fused, every gradient zeroed and added (the plan before blocked layouts, for comparisons).
    static let blockedLayoutsEnabled = ProcessInfo.processInfo.environment["COMPRESSOR_BLOCKED_LAYOUTS"] != "0"
    /// Values that must stay readable by name (not fused away).
    let keptValues: Set<String>
    var parameters: [String: ParameterBuffer] = [:]
    var statistics: [String: ParameterBuffer] = [:]
    private var plan = TrainingPlan(ids: [:], names: [], sources: [], needsGradient: [], constants: [], steps: [],
                                    inputID: 0, outputIDs: [])

    init(graph: Graph, randomness: DropoutRandomness, kernels: KernelSet, blockedLayouts: Bool = true,
         keptValues: Set<String> = []) {
        self.graph = graph
        self.randomness = randomness
        self.kernels = kernels
        self.blockedLayouts = blockedLayouts
        self.keptValues = keptValues
    }

    mutating func build(inputNeedsGradient: Bool) throws -> TrainingPlan {
        for (k, input) in graph.inputs.enumerated() {
            _ = add(input.name, .graphInput, needsGradient: k == 0 && inputNeedsGradient)
        }
        plan.inputID = plan.ids[graph.inputs[0].name]!
        for node in graph.nodes {
            switch node.op {
            case .flatten, .reshape:
                let source = id(of: node.inputs[0])
                _ = add(node.output, .alias(of: source), needsGradient: plan.needsGradient[source])
            default:
                let kernel = try makeKernel(node)
                let dataInputs = node.op.readsWeights ? [node.inputs[0]] : node.inputs
                let inputs = dataInputs.map { id(of: $0) }
                let output = add(node.output, .computed, needsGradient: true)
                plan.steps.append(TrainingStep(node: node.name, kernel: kernel, inputs: inputs, output: output))
            }
        }
        plan.outputIDs = graph.outputs.map { id(of: $0) }
        plan.blocked = [Bool](repeating: false, count: plan.names.count)
        plan.fused = plan.blocked
        plan.assigningStep = [Int?](repeating: nil, count: plan.names.count)
        if blockedLayouts && Self.blockedLayoutsEnabled && kernels != .portable {
            let byName = try graph.inferShapes(batch: 1)
            plan.chooseBlockedLayouts(shapes: plan.names.map { byName[$0]! })
            plan.fuseActivations(keeping: Set(keptValues.compactMap { plan.ids[$0] }))
            plan.chooseAssigningWriters()
        }
        return plan
    }

    private mutating func add(_ name: String, _ source: ValueSource, needsGradient: Bool) -> Int {
        plan.ids[name] = plan.names.count
        plan.names.append(name)
        plan.sources.append(source)
        plan.needsGradient.append(needsGradient)
        return plan.names.count - 1
    }

    /// The id of a value already met, or of an initializer read as data (a constant, copied once).
    private mutating func id(of name: String) -> Int {
        if let id = plan.ids[name] { return id }
        let values = graph.initializers[name]!.floats
        let buffer = FloatBuffer(count: values.count)
        buffer.pointer.update(from: values, count: values.count)
        plan.constants.append(buffer)
        return add(name, .constant(index: plan.constants.count - 1), needsGradient: false)
    }

    private mutating func makeKernel(_ node: Node) throws(RuntimeError) -> any TrainingKernel {
        func input(_ k: Int) -> String? { k < node.inputs.count && !node.inputs[k].isEmpty ? node.inputs[k] : nil }
        switch node.op {
        case .conv2d(let a):
            let weight = try parameter(input(1)!, .weight, node)
            let bias = try input(2).map { name throws(RuntimeError) in try parameter(name, .bias, node) }
            if let build = DirectConvBuild(kernels), BlockedConvKernel.supports(a, weightShape: weight.shape) {
                return BlockedConvTrainingKernel(attributes: a, weight: weight, bias: bias, build: build)
            }
            return ConvTrainingKernel(attributes: a, weight: weight, bias: bias, kernels: kernels)
        case .convTranspose(let a):
            return ConvTransposeTrainingKernel(attributes: a, weight: try parameter(input(1)!, .weight, node),
                                               bias: try input(2).map { name throws(RuntimeError) in try parameter(name, .bias, node) })
        case .resize(let r): return ResizeTrainingKernel(attributes: r)
        case .linear:
            return LinearTrainingKernel(weight: try parameter(input(1)!, .weight, node),
                                        bias: try input(2).map { name throws(RuntimeError) in try parameter(name, .bias, node) })
        case .batchNorm(let epsilon):
            return BatchNormTrainingKernel(
                scale: try parameter(input(1)!, .normScale, node), bias: try parameter(input(2)!, .normBias, node),
                runningMean: try statistic(input(3)!, .runningMean, node),
                runningVariance: try statistic(input(4)!, .runningVariance, node), epsilon: epsilon)
        case .layerNorm(let epsilon):
            return LayerNormTrainingKernel(
                scale: try parameter(input(1)!, .normScale, node),
                bias: try input(2).map { name throws(RuntimeError) in try parameter(name, .normBias, node) }, epsilon: epsilon)
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh: return ActivationTrainingKernel(op: node.op)
        case .hardSigmoid, .hardSwish, .gelu: return ActivationTrainingKernel(op: node.op)
        case .dropout(let ratio): return DropoutTrainingKernel(ratio: ratio, randomness: randomness)
        case .quantizeDequantize(let q): return QuantizeDequantizeTrainingKernel(quantization: q)
        case .maxPool(let p): return PoolTrainingKernel(pool: p, isMax: true)
        case .avgPool(let p, let countIncludePad): return PoolTrainingKernel(pool: p, isMax: false, countIncludePad: countIncludePad)
        case .globalAvgPool: return GlobalAveragePoolTrainingKernel()
        case .add, .sub, .mul, .div: return BinaryTrainingKernel(op: node.op)
        case .concat(let axis): return ConcatTrainingKernel(axis: axis)
        case .softmax(let axis): return SoftmaxTrainingKernel(axis: axis)
        case .slice(let axis, let start, let end): return SliceTrainingKernel(axis: axis, range: start..<end)
        case .channelPermute(let order): return ChannelPermuteTrainingKernel(order: order)
        case .flatten, .reshape: preconditionFailure("\(node.op.kind) is planned as an alias")
        }
    }

    /// The trainable buffer of initializer `name` (shared when several nodes read it).
    private mutating func parameter(_ name: String, _ role: ParameterRole, _ node: Node) throws(RuntimeError) -> ParameterBuffer {
        if let existing = parameters[name] { return existing }
        let buffer = ParameterBuffer(name: name, role: role, tensor: try initializer(name, node))
        parameters[name] = buffer
        return buffer
    }

    /// The running-statistic buffer of initializer `name`.
    private mutating func statistic(_ name: String, _ role: ParameterRole, _ node: Node) throws(RuntimeError) -> ParameterBuffer {
        if let existing = statistics[name] { return existing }
        let buffer = ParameterBuffer(name: name, role: role, tensor: try initializer(name, node))
        statistics[name] = buffer
        return buffer
    }

    private func initializer(_ name: String, _ node: Node) throws(RuntimeError) -> Tensor {
        guard let t = graph.initializers[name], t.dtype != .int64 else {
            throw .unsupported(node: node.name, detail: "\(node.op.kind) parameter '\(name)' must be a float initializer to train")
        }
        return t
    }
}

/// The memory of a `TrainingPlan` for one batch size: every value and every
/// gradient (one arena, gradients contiguous so one fill zeroes them),
/// step bindings and per-worker scratch. Built once per batch size.
final class TrainingBatchState {
    let shapes: [[Int]]
    let values: [UnsafeMutablePointer<Float>]
    let gradients: [UnsafeMutablePointer<Float>?]
    private(set) var bindings: [TrainingBinding]
    private let arena: FloatBuffer
    private let gradientRegion: Range<Int>
    /// The parts of `gradientRegion` (arena offsets) a backward that assigns
    /// first-written gradients must zero: every gradient without an assigning step.
    private let unassignedGradientRanges: [Range<Int>]
    /// Per value: its plan's `assigningStep` (of its root).
    let assigningStep: [Int?]
    private let scratch: FloatBuffer
    private let scratchPerWorker: Int

    /// Plans `batch` images on `threads` workers after checking what a step
    /// needs against `budget`: the arena, every worker's scratch,
    /// `parameterFloats` (parameters, their gradients, running statistics) and
    /// the caller's copies of the input and output.
    ///
    /// - Throws: `GraphError` when shapes cannot be inferred,
    ///   `MemoryBudgetExceeded` when the step does not fit `budget`.
    init(_ plan: TrainingPlan, graph: Graph, batch: Int, threads: Int, budget: MemoryBudget = .processDefault,
         parameterFloats: Int = 0) throws {
        let byName = try graph.inferShapes(batch: batch)
        let shapes = plan.names.map { byName[$0]! }
        self.shapes = shapes
        blocked = plan.names.indices.map { plan.blocked[plan.root($0)] }
        var valueOffsets = [Int](repeating: -1, count: shapes.count)
        var gradientOffsets = [Int](repeating: -1, count: shapes.count)
        var next = 0
        func reserve(_ count: Int) -> Int {
            defer { next = addingSaturated(next, multipliedSaturated((count + 15) / 16, 16)) }
            return next
        }
        for id in shapes.indices where plan.root(id) == id {
            if case .constant = plan.sources[id] { continue }
            valueOffsets[id] = reserve(shapes[id].elementCount)
        }
        let gradientStart = next
        for id in shapes.indices where plan.root(id) == id && plan.needsGradient[id] {
            gradientOffsets[id] = reserve(shapes[id].elementCount)
        }
        gradientRegion = gradientStart..<next
        var ranges: [Range<Int>] = []
        for id in shapes.indices where gradientOffsets[id] >= 0 && plan.assigningStep[id] == nil {
            let range = gradientOffsets[id]..<(gradientOffsets[id] + (shapes[id].elementCount + 15) / 16 * 16)
            if let last = ranges.last, last.upperBound == range.lowerBound {
                ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
            } else {
                ranges.append(range)
            }
        }
        unassignedGradientRanges = ranges
        assigningStep = shapes.indices.map { plan.assigningStep[plan.root($0)] }
        scratchPerWorker = plan.steps.map { step in
            step.kernel.scratchCount(inputShapes: step.inputs.map { shapes[$0] }, outputShape: shapes[step.output])
        }.max() ?? 0
        let sizes = shapes.indices.map { id in
            MemoryNeed.TensorSize(name: plan.names[id], shape: shapes[id])
        }
        let planned = [next, multipliedSaturated(scratchPerWorker, threads), parameterFloats].reduce(0, addingSaturated)
        var need = MemoryNeed(purpose: "a training step at batch \(batch)",
                              tensors: [sizes[plan.inputID]] + plan.outputIDs.map { sizes[$0] },
                              extraBytes: multipliedSaturated(planned, 4))
        let parameters = graph.initializers.map { name, tensor in
            MemoryNeed.TensorSize(name: name, shape: tensor.shape)
        }
        need.largest = (sizes + parameters).max { $0.bytes < $1.bytes }
        try budget.check(need)
        let arena = FloatBuffer(count: next)
        self.arena = arena
        values = shapes.indices.map { id in
            let root = plan.root(id)
            if case .constant(let index) = plan.sources[root] { return plan.constants[index].pointer }
            return arena.pointer + valueOffsets[root]
        }
        gradients = shapes.indices.map { id in
            let offset = gradientOffsets[plan.root(id)]
            return offset >= 0 ? arena.pointer + offset : nil
        }
        var bindings = plan.steps.map { [values, gradients] step in
            TrainingBinding(inputs: step.inputs.map { values[$0] }, inputShapes: step.inputs.map { shapes[$0] },
                            inputGradients: step.inputs.map { gradients[$0] }, output: values[step.output],
                            outputShape: shapes[step.output], outputGradient: gradients[step.output]!)
        }
        for (s, step) in plan.steps.enumerated() where step.inputs.first.map({ plan.assigningStep[plan.root($0)] == s }) ?? false {
            bindings[s].assignsInputGradient = true
        }
        self.bindings = bindings
        scratch = FloatBuffer(count: scratchPerWorker * threads)
    }

    /// Bytes of the arena (every value and value gradient) and the workers' scratch.
    var bytes: Int { (arena.count + scratch.count) &* MemoryLayout<Float>.size }

    func context(pool: WorkerPool) -> KernelContext {
        KernelContext(scratch: scratch.pointer, scratchPerWorker: scratchPerWorker, pool: pool)
    }

    /// Zeroes the gradients of all values (not of parameters), split over the
    /// workers; with `assigning`, only those no step assigns (the bindings' `assignsInputGradient`).
    func zeroValueGradients(_ context: KernelContext, assigning: Bool) {
        for region in assigning ? unassignedGradientRanges : [gradientRegion] {
            let start = arena.pointer + region.lowerBound
            forEachElementRange(region.count, context) { r in (start + r.lowerBound).update(repeating: 0, count: r.count) }
        }
    }

    /// Per value: whether it is stored NCHW8c (the plan's `blocked`).
    let blocked: [Bool]

    /// Value `id`, plain NCHW whatever its layout.
    func tensor(_ id: Int) -> Tensor {
        let shape = shapes[id]
        if blocked[id] { return blockedToPlainTensor(values[id], shape: shape) }
        return Tensor(shape: shape, floats: Array(UnsafeBufferPointer(start: values[id], count: shape.elementCount)))
    }
}
