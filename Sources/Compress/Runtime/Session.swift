import CBLAS

/// A model planned for fast CPU inference.
///
/// Planning happens once, in `init`: BatchNorm is folded into the conv or
/// linear layer before it (`foldingBatchNorm`), a ReLU/ReLU6 that is a layer's
/// only reader is fused into its epilogue with the bias, nodes no output
/// depends on are dropped, and every remaining node is compiled into a kernel
/// with its weights prepared. Buffers are planned per batch size on first use
/// and cached: a run allocates only the tensors it returns.
///
/// Layout: with the `avx2` or `avx512` kernel set (`KernelSet`), dense convolutions run as direct
/// kernels over channel-blocked NCHW8c feature maps (`BlockedConvKernel`),
/// and pools, ReLUs and Adds reading them stay in that layout; an Add of a
/// conv output and another feature map, with the ReLU after it, is fused into
/// the conv's epilogue. Other ops read plain NCHW, and the plan inserts a
/// layout conversion where a value crosses between the two. Inputs and outputs
/// are always plain; the IR and the model file do not know about layouts.
///
/// Threads: the session owns a `WorkerPool` of `threads - 1` persistent
/// threads (they poll briefly after each step, then sleep, and end with the
/// session), and the runtime splits work itself over them and the calling
/// thread: images (a batch that runs image by image gives each worker its
/// own images), or, below one image per worker, one image's output channel
/// blocks or pixel tiles, depthwise blocks, pooling planes, channel blocks
/// of layout conversions, runs of an Add or activation, and parts of a
/// linear layer's features or rows. Each kernel states from how much work
/// it splits (a few hundred thousand multiply-adds for convs, 32K floats for
/// memory-bound steps); smaller steps stay on the calling thread. A split
/// never changes the order of a floating-point sum: 1 and 2 threads give the
/// same bytes. Each worker calls OpenBLAS single-threaded, so the session
/// sets OpenBLAS to one thread with `openblas_set_num_threads(1)`, which is
/// **process-global** (it is checked again before each run). Measured on
/// LeNet-5 at batch 64, letting OpenBLAS thread its per-image GEMMs gave no
/// speed-up, and its spinning workers made the runtime's own parallel loops
/// 3x slower. A session is not safe to use from several threads at once.
///
/// Pruned layers: a conv or linear layer whose weights are mostly zero can run
/// a sparse kernel (`SparseLinearKernel`, `SparseConvKernel`) instead; with the
/// default `SparseKernelPolicy.auto` the plan times both on the layer's batch-1
/// shapes and keeps the faster. `layerKernels` says what each layer runs.
public final class Session {
    /// The model as given (before folding and fusion).
    public let model: Model
    /// Workers each step may be split over (at least 1).
    public let threads: Int
    /// The session's `threads - 1` helper threads, ended with the session.
    let pool: WorkerPool
    private let plan: ExecutionPlan
    private var batchPlans: [Int: PreparedBatch] = [:]
    /// Run batches above 1 image by image (`ImageWisePlan`) when the graph allows it.
    private let imageWise: Bool
    /// What every batch size's plan is checked against before it allocates.
    public let memoryBudget: MemoryBudget
    /// The model's normalization, one mean and std per channel.
    private let inputNormalization: InputNormalization?

    /// Plans `model` for inference with `threads` threads and the `kernels`
    /// instruction set (default: `KernelSet.processDefault`, the best this CPU
    /// runs unless the CLI's `--kernels` chose another); `sparseKernels` says
    /// which conv and linear layers run sparse kernels. Each batch size's
    /// buffers are checked against `memoryBudget` (default: the process's,
    /// `--max-memory` in the CLI) before they are allocated, and one image's
    /// needs (`Model.inferenceMemoryNeed(batch:)`) before anything is planned.
    ///
    /// - Throws: `GraphError` when the graph is invalid, `RuntimeError` when a
    ///   conv, linear or BatchNorm parameter is not an initializer or the
    ///   normalization does not match the input's channels, `KernelSetError`
    ///   when this CPU cannot run `kernels`, `MemoryBudgetExceeded` when one
    ///   image cannot run within `memoryBudget`.
    public convenience init(model: Model, threads: Int = 1, kernels: KernelSet = .processDefault,
                            sparseKernels: SparseKernelPolicy = .auto, memoryBudget: MemoryBudget = .processDefault) throws {
        try self.init(model: model, threads: threads, kernels: kernels, imageWise: true, sparseKernels: sparseKernels,
                      memoryBudget: memoryBudget)
    }

    /// `imageWise: false` runs every batch layer by layer over all images.
    /// `sparseNodes` limits `.sparse` to these layers; `kernelTiming` replaces
    /// the timing of `.auto`'s candidates (tests decide which is faster);
    /// `convBuild` replaces the direct conv build of `kernels` (tests run the
    /// `avx512` algorithm on any AVX2 CPU with `wide16OnAVX2`); `splitsAllWork`
    /// splits every step kernels can split, whatever its size.
    init(model: Model, threads: Int, kernels: KernelSet, imageWise: Bool = true,
         sparseKernels: SparseKernelPolicy = .auto, sparseNodes: Set<String>? = nil,
         kernelTiming: KernelTiming? = nil, convBuild: DirectConvBuild? = nil, splitsAllWork: Bool = false,
         memoryBudget: MemoryBudget = .processDefault) throws {
        // Before planning: `.auto` times kernels on batch-1 buffers.
        try model.checkInferenceMemory(batch: 1, budget: memoryBudget)
        self.memoryBudget = memoryBudget
        self.model = model
        self.threads = max(1, threads)
        pool = WorkerPool(threads: self.threads, splitsAllWork: splitsAllWork)
        // Before planning: `.auto` times BLAS-backed kernels.
        openblas_set_num_threads(1)
        plan = try ExecutionPlan(graph: model.graph, kernels: kernels, sparseKernels: sparseKernels,
                                 pool: pool, sparseNodes: sparseNodes, kernelTiming: kernelTiming, convBuild: convBuild)
        self.imageWise = imageWise
        if let normalization = model.metadata.normalization {
            inputNormalization = try normalization.perChannel(channels: model.inputShape.first ?? 1)
        } else {
            inputNormalization = nil
        }
    }

    /// The instruction set this session's kernels use.
    public var kernels: KernelSet { plan.kernels }

    /// Names of the BatchNorm nodes folded into the layer before them.
    public var foldedBatchNorms: [String] { plan.foldedBatchNorms }

    /// Names of the activation nodes fused into the layer before them.
    public var fusedActivations: [String] { plan.fusedActivations }

    /// Names of the Add nodes fused into a convolution as its residual.
    public var fusedResidualAdds: [String] { plan.fusedResidualAdds }

    /// The kernel each conv and linear layer runs (dense or sparse), its weight
    /// density and, for choices timed by `.auto`, both candidates' times.
    public var layerKernels: [LayerKernelChoice] { plan.layerKernels }

    /// Classifies a batch of images.
    ///
    /// - Parameter input: `[N] + model.inputShape` float pixels in [0, 1]; the
    ///   model's normalization is applied here.
    /// - Returns: the graph's first output, e.g. logits `[N, classes]`.
    /// - Throws: `MemoryBudgetExceeded` when a batch size not run before
    ///   needs more than `memoryBudget` (see `prepare(batch:)`).
    public func run(_ input: Tensor) throws -> Tensor {
        let name = try model.firstInputName()
        let batch = try plan.graph.validatedBatchSize(of: [name: input])
        let batchPlan = try plan(for: batch)
        copy(input, to: batchPlan.pointer(plan.inputIDs[0]), normalization: inputNormalization)
        execute(batchPlan)
        return tensor(plan.outputIDs[0], in: batchPlan)
    }

    /// Evaluates the graph on named inputs (each `[N] + sampleShape`) and
    /// returns every graph output by name. Values go to the graph as given,
    /// unless `normalizing` asks for the model's normalization on the first input.
    public func run(inputs: [String: Tensor], normalizing: Bool = false) throws -> [String: Tensor] {
        let batch = try plan.graph.validatedBatchSize(of: inputs)
        let batchPlan = try plan(for: batch)
        for (k, (id, input)) in zip(plan.inputIDs, plan.graph.inputs).enumerated() {
            copy(inputs[input.name]!, to: batchPlan.pointer(id), normalization: normalizing && k == 0 ? inputNormalization : nil)
        }
        execute(batchPlan)
        var outputs: [String: Tensor] = [:]
        for (id, name) in zip(plan.outputIDs, plan.graph.outputs) { outputs[name] = tensor(id, in: batchPlan) }
        return outputs
    }

    /// Every planned step at `input`'s batch size, in plan order, each ready to
    /// run on its own, after one full run on `input` has filled every value
    /// (how `profileSteps` times them). A batch that runs image by image gives
    /// one worker's single-image steps, with `scale` the images each worker runs.
    func stepRuns(on input: Tensor) throws -> StepRuns {
        _ = try run(input)
        let batch = input.shape[0]
        let prepared = try plan(for: batch)
        let (batchPlan, pool, scale, execution): (BatchPlan, WorkerPool, Double, String)
        switch prepared {
        case .layerWise(let p): (batchPlan, pool, scale, execution) = (p, self.pool, 1, "layer-wise")
        case .imageWise(let p):
            let perWorker = (batch + p.workers.count - 1) / p.workers.count
            (batchPlan, pool, scale, execution) = (p.workers[0], p.serial, Double(perWorker), "image-wise")
        }
        let context = KernelContext(scratch: batchPlan.scratch.pointer, scratchPerWorker: batchPlan.scratchPerWorker,
                                    pool: pool)
        let steps = zip(plan.steps, batchPlan.bindings).map { step, binding in
            StepRun(node: step.node, kernel: step.kernel.label(inputShapes: binding.inputShapes, outputShape: binding.outputShape),
                    weightDensity: step.weightDensity) { step.kernel.run(binding, context) }
        }
        return StepRuns(batch: batch, execution: execution, scale: scale, steps: steps, buffers: prepared)
    }

    /// Plans the buffers of `batch` images now, before the caller builds a
    /// batch to run: throws `MemoryBudgetExceeded` when they, the weights and
    /// the caller's batch-sized inputs and outputs do not fit `memoryBudget`.
    /// (`run` plans on first use of a batch size anyway; the plan is cached.)
    public func prepare(batch: Int) throws {
        _ = try plan(for: batch)
    }

    /// Keeps OpenBLAS single-threaded (the runtime threads itself); the setting
    /// is process-global, so it is checked before each run.
    static func useSingleThreadedBLAS() {
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    private func plan(for batch: Int) throws -> PreparedBatch {
        if let cached = batchPlans[batch] { return cached }
        let prepared: PreparedBatch = imageWise && batch > 1 && plan.isImageWise
            ? .imageWise(try ImageWisePlan(plan, batch: batch, threads: threads, budget: memoryBudget))
            : .layerWise(try BatchPlan(plan, batch: batch, threads: threads, budget: memoryBudget))
        batchPlans[batch] = prepared
        return prepared
    }

    private func execute(_ prepared: PreparedBatch) {
        Self.useSingleThreadedBLAS()
        switch prepared {
        case .imageWise(let p): p.execute(plan, pool: pool)
        case .layerWise(let batchPlan):
            let context = KernelContext(scratch: batchPlan.scratch.pointer, scratchPerWorker: batchPlan.scratchPerWorker,
                                        pool: pool)
            for (step, binding) in zip(plan.steps, batchPlan.bindings) { step.kernel.run(binding, context) }
        }
    }

    private func copy(_ input: Tensor, to destination: UnsafeMutablePointer<Float>, normalization: InputNormalization?) {
        copyNormalizing(input, to: destination, normalization: normalization)
    }

    private func tensor(_ id: Int, in prepared: PreparedBatch) -> Tensor {
        let shape = prepared.shape(id)
        return Tensor(shape: shape, floats: Array(UnsafeBufferPointer(start: prepared.pointer(id), count: shape.elementCount)))
    }
}

/// The planned steps of one batch size, each runnable on its own (`Session.stepRuns(on:)`).
struct StepRuns {
    let batch: Int
    /// "layer-wise" (each step over the whole batch) or "image-wise" (one worker's single-image steps).
    let execution: String
    /// One run of a step times this is its share of a batch: the images each worker runs, image-wise.
    let scale: Double
    let steps: [StepRun]
    /// The buffers the steps read and write, kept alive with them.
    fileprivate let buffers: PreparedBatch
}

/// One planned step bound to its buffers.
struct StepRun {
    /// The node, or a layout conversion named after the value it converts ("x#nchw8c").
    let node: String
    /// The kernel's label at this batch size.
    let kernel: String
    let weightDensity: Double?
    /// Runs the step's kernel once.
    let run: () -> Void
}

/// A batch size's buffers: all images layer by layer, or image by image.
fileprivate enum PreparedBatch {
    case layerWise(BatchPlan)
    case imageWise(ImageWisePlan)

    /// Storage of a graph input or output for the whole batch.
    func pointer(_ id: Int) -> UnsafeMutablePointer<Float> {
        switch self {
        case .layerWise(let p): p.pointers[id]
        case .imageWise(let p): p.pointer(id)
        }
    }

    func shape(_ id: Int) -> [Int] {
        switch self {
        case .layerWise(let p): p.shapes[id]
        case .imageWise(let p): p.shapes[id]
        }
    }
}

/// Copies `input` into runtime storage, applying `(x - mean[c]) / std[c]` per
/// channel (axis 1) if given: the model's input normalization, shared by the
/// inference session and the training graph.
func copyNormalizing(_ input: Tensor, to destination: UnsafeMutablePointer<Float>, normalization: InputNormalization?) {
    let values = input.floats
    guard let normalization else {
        destination.update(from: values, count: values.count)
        return
    }
    let channels = normalization.mean.count
    let inner = input.rank >= 2 ? input.shape[2...].reduce(1, *) : 1
    values.withUnsafeBufferPointer { src in
        for plane in 0..<(values.count / max(inner, 1)) {
            let (m, s) = (normalization.mean[plane % channels], normalization.std[plane % channels])
            let x = src.baseAddress! + plane &* inner, y = destination + plane &* inner
            for i in 0..<inner { y[i] = (x[i] - m) / s }
        }
    }
}
