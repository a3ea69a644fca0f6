/// Which kernels run the conv and linear layers of a pruned model.
public enum SparseKernelPolicy: String, Sendable, CaseIterable, Codable {
    /// For each layer whose weight density is at most `SparseKernelSelector.densityLimit`,
    /// time the dense and the sparse kernel on the layer's batch-1 shapes and keep
    /// the faster. Denser layers (every layer of an unpruned model) stay dense
    /// without being timed.
    case auto
    /// Dense kernels for every layer.
    case dense
    /// Sparse kernels for every conv and linear layer, whatever its density.
    case sparse
}

/// The kernel a plan chose for one conv or linear layer, and why.
public struct LayerKernelChoice: Sendable, Equatable, Codable {
    /// The node name.
    public var node: String
    /// "Conv2d" or "Linear".
    public var op: String
    /// Whether the layer runs a sparse kernel.
    public var sparse: Bool
    /// The kernel at batch 1: "dense-blocked", "dense-gemv", "sparse-sliced-gemv", "sparse-csr-gemm", ...
    public var kernel: String
    /// Non-zero weights over all weights (the bias not counted).
    public var weightDensity: Double
    /// With `.auto`, the fastest of a few batch-1 runs of each candidate
    /// (`RunTimer.kernelChoice`), in microseconds.
    public var denseMicroseconds: Double?
    public var sparseMicroseconds: Double?
}

/// Seconds one batch-1 run of a candidate kernel takes on a layer's shapes,
/// as the sparse-kernel choice measures it: `SparseKernelSelector.measuredTiming`
/// runs the kernel, tests pass stand-ins that decide which candidate is faster.
typealias KernelTiming = (_ kernel: any Kernel, _ inputShapes: [[Int]], _ outputShape: [Int]) -> Double

/// Decides, per conv or linear layer, between its dense and its sparse kernel:
/// the plan asks `considers(density:)` first, so dense layers cost nothing,
/// then `choose` for the candidates.
struct SparseKernelSelector {
    /// Above this weight density `.auto` does not try the sparse kernel: a
    /// sparse product does several times the work per multiply-add of a dense one.
    static let densityLimit = 0.5

    let policy: SparseKernelPolicy
    /// The threads the timed runs may use (the session's).
    let pool: WorkerPool
    /// With `.sparse`, only these layers go sparse (tests mixing dense and sparse layers).
    var onlyNodes: Set<String>? = nil
    /// How `.auto` times each candidate.
    let timing: KernelTiming

    /// `timing` nil: `measuredTiming(pool:)`.
    init(policy: SparseKernelPolicy, pool: WorkerPool, onlyNodes: Set<String>? = nil, timing: KernelTiming? = nil) {
        (self.policy, self.pool, self.onlyNodes) = (policy, pool, onlyNodes)
        self.timing = timing ?? Self.measuredTiming(pool: pool)
    }

    func considers(_ node: String, density: Double) -> Bool {
        switch policy {
        case .dense: false
        case .sparse: onlyNodes?.contains(node) ?? true
        case .auto: density <= Self.densityLimit
        }
    }

    /// Whether `sparse` should replace `dense` (both computing one step with these
    /// batch-1 shapes), and the times `timing` gave them, with `.auto`.
    func choose(dense: any Kernel, sparse: any Kernel, inputShapes: [[Int]], outputShape: [Int])
        -> (sparse: Bool, denseMicroseconds: Double?, sparseMicroseconds: Double?) {
        guard policy == .auto else { return (policy == .sparse, nil, nil) }
        let denseTime = timing(dense, inputShapes, outputShape), sparseTime = timing(sparse, inputShapes, outputShape)
        return (sparseTime < denseTime, denseTime * 1e6, sparseTime * 1e6)
    }

    /// The real timing: the fastest run of the kernel on seeded buffers
    /// (`KernelBench`), timed by `RunTimer.kernelChoice`.
    static func measuredTiming(pool: WorkerPool) -> KernelTiming {
        { kernel, inputShapes, outputShape in
            KernelBench(inputShapes: inputShapes, outputShape: outputShape, pool: pool).fastestRun(kernel)
        }
    }
}

/// Buffers for running one step's kernel on its own, filled with seeded values.
private struct KernelBench {
    let inputShapes: [[Int]]
    let outputShape: [Int]
    let pool: WorkerPool

    /// The fastest run by `RunTimer.kernelChoice`, in seconds.
    func fastestRun(_ kernel: any Kernel) -> Double {
        // Room for either layout: a blocked value pads its channels to whole blocks.
        func storage(_ shape: [Int]) -> Int {
            max(shape.elementCount, shape.count == 4 ? ValueLayout.blocked.storageCount(shape) : 0)
        }
        var rng = SeededGenerator(seed: 1)
        let inputs = inputShapes.map { shape in
            let buffer = FloatBuffer(count: storage(shape))
            for i in 0..<buffer.count { buffer.pointer[i] = Float.random(in: -1...1, using: &rng) }
            return buffer
        }
        let output = FloatBuffer(count: storage(outputShape))
        let perWorker = kernel.scratchCount(inputShapes: inputShapes, outputShape: outputShape)
        let scratch = FloatBuffer(count: perWorker * pool.threads)
        let binding = StepBinding(inputs: inputs.map(\.pointer), inputShapes: inputShapes, output: output.pointer,
                                  outputShape: outputShape)
        let context = KernelContext(scratch: scratch.pointer, scratchPerWorker: perWorker, pool: pool)
        let times = RunTimer.kernelChoice.time { kernel.run(binding, context) }
        return withExtendedLifetime((inputs, output, scratch)) { times.fastestMs / 1000 }
    }
}

extension ValueTable {
    /// The sparse kernel to run conv or linear `node` instead of `dense`, if the
    /// selector prefers it, with the choice recorded either way. A sparse kernel
    /// reads and writes plain values (and the residual a blocked conv would have added).
    mutating func sparseReplacement(_ node: Node, dense: any Kernel, _ parameters: [Tensor?], density: Double,
                                    activation: FusedActivation) -> (any Kernel)? {
        let weight = parameters[0]!
        let inputShapes = [shapes[node.inputs[0]]!] + (residuals[node.name].map { [shapes[$0]!] } ?? [])
        let outputShape = shapes[node.output]!
        var choice = LayerKernelChoice(node: node.name, op: node.op.kind, sparse: false,
                                       kernel: dense.label(inputShapes: inputShapes, outputShape: outputShape),
                                       weightDensity: density)
        defer { layerKernels.append(choice) }
        guard selector.considers(node.name, density: density) else { return nil }
        let sparse: any Kernel
        switch node.op {
        case .conv2d(let a):
            sparse = SparseConvKernel(attributes: a, weight: weight, bias: parameters[1], activation: activation,
                                      hasResidual: residuals[node.name] != nil, vectorized: blocked)
        default:
            sparse = SparseLinearKernel(weight: weight, bias: parameters[1], activation: activation, vectorized: blocked)
        }
        let decision = selector.choose(dense: dense, sparse: sparse, inputShapes: inputShapes, outputShape: outputShape)
        (choice.denseMicroseconds, choice.sparseMicroseconds) = (decision.denseMicroseconds, decision.sparseMicroseconds)
        guard decision.sparse else { return nil }
        choice.sparse = true
        choice.kernel = sparse.label(inputShapes: inputShapes, outputShape: outputShape)
        return sparse
    }
}
