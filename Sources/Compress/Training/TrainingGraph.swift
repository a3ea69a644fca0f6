import CBLAS

/// A model planned for training on the CPU: forward in training or eval mode,
/// backward into every trainable parameter, over the same graph IR the
/// inference `Session` runs.
///
/// Nothing is folded: BatchNorm trains with batch statistics (eval mode uses
/// its running statistics), dropout draws seeded masks. Trainable
/// parameters are the float initializers that conv and linear layers read as
/// weight and bias and BatchNorm reads as scale and bias; each lives in a
/// ``ParameterBuffer`` that optimizers update in place. Initializers read as
/// data (a constant operand of Add or Mul) are constants without gradient.
///
/// Buffers for every value and its gradient are planned once per batch size
/// and reused; activations are kept from the forward for the backward.
/// Flatten and Reshape alias their input's storage. With the blocked kernel
/// sets, feature maps between kernels that can are kept NCHW8c
/// (`TrainingPlan.chooseBlockedLayouts`), a BatchNorm read only by its ReLU
/// is fused into it unless named in `keptValues`, and the first writer of a
/// gradient assigns it; ``value(named:)``, seeds and outputs are plain NCHW
/// whatever the layout. Kernels split images,
/// channels or rows over `threads` workers (the graph's own `WorkerPool`,
/// whose threads end with it), each calling OpenBLAS with one thread (set process-wide with `openblas_set_num_threads(1)`, as `Session` does).
///
/// Not safe to use from several threads at once.
public final class TrainingGraph {
    /// The model as given; `exportModel()` returns it with the current parameters.
    public let model: Model
    /// Workers each step may be split over (at least 1).
    public let threads: Int
    /// The threads steps are split over.
    private let pool: WorkerPool
    /// Whether `backward` also computes the gradient with respect to the graph input.
    public let computesInputGradient: Bool
    /// The instruction set of the kernels (`portable`: plain Swift and BLAS;
    /// otherwise dense convolutions train on direct NCHW8c kernels,
    /// ``BlockedConvTrainingKernel``); results are reproducible per set and thread count.
    public let kernels: KernelSet
    /// Trainable parameters by initializer name.
    public let parameters: [String: ParameterBuffer]
    /// BatchNorm running means and variances by initializer name (no gradient).
    public let statistics: [String: ParameterBuffer]

    let graph: Graph
    let plan: TrainingPlan
    private let inputNormalization: InputNormalization?
    private let randomness: DropoutRandomness
    private var batchStates: [Int: TrainingBatchState] = [:]
    private var lastForward: TrainingBatchState?
    /// What each batch size's buffers are checked against before they are allocated.
    public let memoryBudget: MemoryBudget
    /// Called before each step's backward with its node's name and whether it
    /// computes parameter gradients (for tests counting what a backward does).
    public var onBackwardStep: ((_ node: String, _ computesParameterGradients: Bool) -> Void)?

    /// Plans `model` for training.
    ///
    /// - Parameters:
    ///   - seed: seeds the dropout masks.
    ///   - threads: workers per step.
    ///   - computesInputGradient: also compute `inputGradient` (for gradient checks, adversarial inputs).
    ///   - kernels: the kernel set (default: the process's, as `Session`).
    ///   - keptValues: values that must stay readable with ``value(named:)`` and
    ///     seedable in ``backward(seeds:scope:)``; other BatchNorm outputs read
    ///     only by a ReLU or ReLU6 may be fused into it and not be stored.
    ///   - memoryBudget: what a step's buffers at each batch size (values,
    ///     gradients, scratch, parameters with their gradients) are checked
    ///     against before they are allocated (default: the process's,
    ///     `--max-memory` in the CLI).
    /// - Throws: `GraphError` for an invalid graph, `RuntimeError` when a layer's
    ///   parameter is not an initializer or the normalization does not fit the input;
    ///   `KernelSetError` when this CPU cannot run `kernels`; `MemoryBudgetExceeded`
    ///   when one image cannot run within `memoryBudget`.
    public convenience init(model: Model, seed: UInt64 = 0, threads: Int = 1, computesInputGradient: Bool = false,
                            kernels: KernelSet = .processDefault, keptValues: Set<String> = [],
                            memoryBudget: MemoryBudget = .processDefault) throws {
        try self.init(model: model, seed: seed, threads: threads, computesInputGradient: computesInputGradient,
                      kernels: kernels, splitsAllWork: false, keptValues: keptValues, memoryBudget: memoryBudget)
    }

    /// `splitsAllWork` splits every step over the threads however small (for tests);
    /// `blockedLayouts` false keeps every value plain NCHW (for tests and comparisons).
    init(model: Model, seed: UInt64, threads: Int, computesInputGradient: Bool, kernels: KernelSet,
         splitsAllWork: Bool, blockedLayouts: Bool = true, keptValues: Set<String> = [],
         memoryBudget: MemoryBudget = .processDefault) throws {
        try model.checkInferenceMemory(batch: 1, budget: memoryBudget)
        self.memoryBudget = memoryBudget
        self.model = model
        self.kernels = try kernels.checkedSupported()
        self.threads = max(1, threads)
        pool = WorkerPool(threads: self.threads, splitsAllWork: splitsAllWork)
        self.computesInputGradient = computesInputGradient
        graph = try model.graph.topologicallySorted()
        _ = try graph.inferShapes(batch: 1)
        _ = try model.firstInputName()
        randomness = DropoutRandomness(seed: seed)
        var builder = TrainingPlanBuilder(graph: graph, randomness: randomness, kernels: self.kernels,
                                          blockedLayouts: blockedLayouts, keptValues: keptValues)
        plan = try builder.build(inputNeedsGradient: computesInputGradient)
        parameters = builder.parameters
        statistics = builder.statistics
        if let normalization = model.metadata.normalization {
            inputNormalization = try normalization.perChannel(channels: model.inputShape.first ?? 1)
        } else {
            inputNormalization = nil
        }
        openblas_set_num_threads(1)
    }

    /// Parameter names in a stable (sorted) order.
    public var parameterNames: [String] { parameters.keys.sorted() }

    /// When true, dropout layers reuse the mask of their last training forward
    /// instead of drawing a new one (for gradient checks).
    public var freezesDropoutMasks: Bool {
        get { randomness.freezesMasks }
        set { randomness.freezesMasks = newValue }
    }

    /// Runs the graph on a batch of images and keeps what `backward` needs.
    ///
    /// - Parameters:
    ///   - input: `[N] + model.inputShape` pixels in [0, 1]; the model's normalization is applied here, as `Session.run` does.
    ///   - training: batch statistics and dropout (true), or running statistics and identity dropout (false).
    /// - Returns: the graph's first output, e.g. logits `[N, classes]`.
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let name = try model.firstInputName()
        let batch = try graph.validatedBatchSize(of: [name: input])
        let state = try batchState(for: batch)
        copy(input, to: state.values[plan.inputID])
        let context = state.context(pool: pool)
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
        for (step, binding) in zip(plan.steps, state.bindings) { step.kernel.forward(binding, training: training, context) }
        lastForward = state
        return state.tensor(plan.outputIDs[0])
    }

    /// Backpropagates `gradOutput` (the loss gradient with respect to the
    /// first graph output) through the last forward, adding into every
    /// parameter's gradient.
    ///
    /// With a `scope` (from ``backwardScope(updating:)``), only the gradients
    /// of the scope's parameters are computed, and the walk stops below the
    /// lowest layer that has one.
    public func backward(_ gradOutput: Tensor, scope: BackwardScope? = nil) throws {
        try backward(seeds: [graph.outputs[0]: gradOutput], scope: scope)
    }

    /// Backpropagates loss gradients given for any values of the last forward
    /// (graph outputs or intermediate feature maps, e.g. for hint losses).
    /// Parameter gradients accumulate until `zeroGradients()`.
    public func backward(seeds: [String: Tensor], scope: BackwardScope? = nil) throws {
        guard let state = lastForward else { throw TrainingError.backwardBeforeForward }
        let context = state.context(pool: pool)
        // A scoped backward skips steps, so the first writer of a gradient may not run: every writer adds.
        let assigning = scope == nil
        state.zeroValueGradients(context, assigning: assigning)
        var bindings = scope?.bindings(state.bindings) ?? state.bindings
        if !assigning { for s in bindings.indices { bindings[s].assignsInputGradient = false } }
        for (name, gradient) in seeds {
            guard let id = plan.ids[name], !plan.fused[id], let destination = state.gradients[id] else {
                throw TrainingError.noGradient(value: name)
            }
            guard gradient.shape == state.shapes[id] else {
                throw TrainingError.gradientShape(value: name, expected: state.shapes[id], got: gradient.shape)
            }
            if assigning, let s = state.assigningStep[id], bindings[s].assignsInputGradient {
                // A seeded gradient is written before its first writer runs: zero it, and that writer adds.
                destination.update(repeating: 0, count: gradient.count)
                bindings[s].assignsInputGradient = false
            }
            gradient.floats.withUnsafeBufferPointer { g in
                if state.blocked[id] {
                    addPlainToBlocked(g.baseAddress!, shape: gradient.shape, into: destination)
                } else {
                    accumulate(g.baseAddress!, into: destination, count: g.count)
                }
            }
        }
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
        for s in (scope?.steps ?? Array(plan.steps.indices)).reversed() {
            onBackwardStep?(plan.steps[s].node, bindings[s].computesParameterGradients)
            plan.steps[s].kernel.backward(bindings[s], context)
        }
    }

    /// Bytes a step at batch `batch` works in: every value and value gradient,
    /// the workers' scratch, and every parameter with its gradient and running
    /// statistic (planned once per batch size and reused by every step).
    public func stepBytes(batch: Int) throws -> Int {
        try batchState(for: batch).bytes + parameterFloats * MemoryLayout<Float>.size
    }

    /// Floats of every parameter with its gradient and every running statistic.
    private var parameterFloats: Int {
        parameters.values.reduce(0) { $0 + 2 * $1.count } + statistics.values.reduce(0) { $0 + $1.count }
    }

    /// Sets every parameter's accumulated gradient to zero.
    public func zeroGradients() {
        for p in parameters.values { p.zeroGradient() }
    }

    /// The accumulated gradients by parameter name (copies; optimizers use the buffers).
    public var gradients: [String: Tensor] { parameters.mapValues(\.gradientTensor) }

    /// The gradient with respect to the graph input after `backward`
    /// (before normalization is undone: with respect to the normalized input),
    /// when `computesInputGradient`.
    public var inputGradient: Tensor? {
        guard let state = lastForward, let pointer = state.gradients[plan.inputID] else { return nil }
        let shape = state.shapes[plan.inputID]
        return Tensor(shape: shape, floats: Array(UnsafeBufferPointer(start: pointer, count: shape.elementCount)))
    }

    /// A value of the last forward by name (a feature map, an output), or nil
    /// (also for a BatchNorm output fused into its activation: name it in `keptValues`).
    public func value(named name: String) -> Tensor? {
        guard let state = lastForward, let id = plan.ids[name], !plan.fused[id] else { return nil }
        return state.tensor(id)
    }

    /// The model with the current parameters and running statistics written
    /// back into its initializers; graph and metadata are unchanged.
    public func exportModel() -> Model {
        var exported = model
        for (name, buffer) in parameters.merging(statistics, uniquingKeysWith: { a, _ in a }) {
            exported.graph.initializers[name] = buffer.tensor
        }
        return exported
    }

    /// Frees the buffers planned for every batch size (they are rebuilt on demand).
    public func releaseBatchBuffers() {
        batchStates.removeAll()
        lastForward = nil
    }

    private func batchState(for batch: Int) throws -> TrainingBatchState {
        if let cached = batchStates[batch] { return cached }
        let state = try TrainingBatchState(plan, graph: graph, batch: batch, threads: threads, budget: memoryBudget,
                                           parameterFloats: parameterFloats)
        batchStates[batch] = state
        return state
    }

    /// Copies `input` into the graph input buffer, applying the normalization per channel.
    private func copy(_ input: Tensor, to destination: UnsafeMutablePointer<Float>) {
        copyNormalizing(input, to: destination, normalization: inputNormalization)
    }
}

/// A misuse of a `TrainingGraph`, naming the value at fault.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case backwardBeforeForward
    case noGradient(value: String)
    case gradientShape(value: String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case .backwardBeforeForward: "backward needs a forward first"
        case .noGradient(let v): "value '\(v)' has no gradient (unknown, a constant, or the input without computesInputGradient)"
        case .gradientShape(let v, let e, let g): "gradient for '\(v)' must have shape \(e), got \(g)"
        }
    }
}
