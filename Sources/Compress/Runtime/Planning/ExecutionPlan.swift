import SIMDKernels

/// Where a planned value's elements live.
enum ValueSource {
    /// Copied in from the caller before each run.
    case graphInput
    /// An initializer read as data (not as a weight), copied once into `ExecutionPlan.constants[index]`.
    case constant(index: Int)
    /// Written by a step.
    case computed
    /// The same elements as another value under another shape (Flatten, Reshape, Dropout): no copy.
    case alias(of: Int)
}

/// One kernel call: which values it reads (data only; weights live in the kernel) and writes.
struct PlannedStep {
    var node: String
    var kernel: any Kernel
    var inputs: [Int]
    var output: Int
    /// Non-zero weights over all weights, for conv and linear layers.
    var weightDensity: Double? = nil
}

/// The batch-independent part of a session's plan: the graph after BatchNorm
/// folding, activation fusion and dead-node removal (`GraphRewrites.swift`),
/// its values numbered and one compiled kernel per remaining computing node,
/// in topological order (`ValueTable`), sparse kernels where
/// `SparseKernelSelector` prefers them.
struct ExecutionPlan {
    /// The rewritten graph; per-batch shapes are inferred from it.
    let graph: Graph
    let valueNames: [String]
    /// The graph value whose shape each value has (a layout copy has its original's).
    let shapeNames: [String]
    let layouts: [ValueLayout]
    let sources: [ValueSource]
    let steps: [PlannedStep]
    let constants: [FloatBuffer]
    let inputIDs: [Int]
    let outputIDs: [Int]
    let foldedBatchNorms: [String]
    let fusedActivations: [String]
    /// Add nodes fused into a convolution's epilogue as a residual.
    let fusedResidualAdds: [String]
    /// The kernel chosen for each conv and linear layer, in plan order.
    let layerKernels: [LayerKernelChoice]
    /// The instruction set the kernels were chosen for.
    let kernels: KernelSet
    /// Images never interact, so a batch may run image by image (`ImageWisePlan`).
    private(set) var isImageWise = false

    /// - Parameters:
    ///   - kernels: the instruction set of the kernels (`KernelSet`): with
    ///     `avx512` or `avx2`, dense convolutions run as NCHW8c direct kernels
    ///     (and pools, ReLUs and Adds on their outputs in that layout) and
    ///     sparse kernels use AVX2; with `portable` everything is plain NCHW
    ///     and plain Swift or BLAS. Throws `KernelSetError` when the CPU lacks the set.
    ///   - sparseKernels: which conv and linear layers run sparse kernels
    ///     (`SparseKernelSelector`); `pool` is what timed choices run on.
    ///   - sparseNodes: with `.sparse`, only these layers go sparse.
    ///   - kernelTiming: how `.auto` times candidates (nil: by running them).
    ///   - convBuild: replaces the direct conv build `kernels` implies (tests: `wide16OnAVX2`).
    init(graph original: Graph, kernels: KernelSet = .best, sparseKernels: SparseKernelPolicy = .auto,
         pool: WorkerPool = WorkerPool(threads: 1), sparseNodes: Set<String>? = nil, kernelTiming: KernelTiming? = nil,
         convBuild: DirectConvBuild? = nil) throws {
        let (folded, foldedNames) = foldingBatchNorm(original)
        let (fused, activations, fusedNames) = try folded.topologicallySorted().fusingActivations()
        var rewritten = fused.removingUnusedNodes()
        self.kernels = try kernels.checkedSupported()
        let blocked = kernels != .portable
        var (allActivations, residuals, addNames, moreActivations) = (activations, [String: String](), [String](), [String]())
        if blocked {
            (rewritten, allActivations, residuals, addNames, moreActivations) =
                try rewritten.fusingResidualAdds(activations) { node in
                    guard case .conv2d(let a) = node.op, let weight = rewritten.initializers[node.inputs[1]] else { return false }
                    return BlockedConvKernel.supports(a, weightShape: weight.shape)
                }
        }
        graph = rewritten
        let shapes = try graph.inferShapes(batch: 1)
        foldedBatchNorms = foldedNames
        fusedActivations = fusedNames + moreActivations
        fusedResidualAdds = addNames
        let selector = SparseKernelSelector(policy: sparseKernels, pool: pool, onlyNodes: sparseNodes,
                                            timing: kernelTiming)
        var builder = ValueTable(graph: graph, shapes: shapes, kernels: kernels, residuals: residuals, selector: selector,
                                 convBuild: convBuild)
        for input in graph.inputs { _ = builder.add(input.name, .graphInput) }
        for node in graph.nodes {
            try builder.add(node, activation: allActivations[node.name] ?? .none)
        }
        inputIDs = graph.inputs.map { builder.ids[$0.name]! }
        outputIDs = graph.outputs.map { builder.plain(builder.id(of: $0)) }
        (valueNames, shapeNames, layouts, sources, constants) =
            (builder.names, builder.shapeNames, builder.layouts, builder.sources, builder.constants)
        steps = builder.steps
        layerKernels = builder.layerKernels
        isImageWise = computesIsImageWise()
    }

    /// The value whose storage `id` shares, following aliases.
    func root(_ id: Int) -> Int {
        if case .alias(let of) = sources[id] { return root(of) }
        return id
    }
}
