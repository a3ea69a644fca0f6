import Kernels

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
/// folding, activation fusion and dead-node removal, its values numbered,
/// and one compiled kernel per remaining computing node, in topological order.
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
    /// Images never interact, so a batch may run image by image (`ImageWisePlan`).
    private(set) var isImageWise = false

    /// - Parameters:
    ///   - blockedKernels: plan dense convolutions as NCHW8c direct kernels
    ///     (and pools, ReLUs and Adds on their outputs in that layout), and
    ///     sparse kernels with AVX2; only honoured when the CPU supports them.
    ///     Otherwise everything is plain NCHW and plain Swift or BLAS.
    ///   - sparseKernels: which conv and linear layers run sparse kernels
    ///     (`SparseKernelSelector`); `threads` is what timed choices may use.
    ///   - sparseNodes: with `.sparse`, only these layers go sparse.
    init(graph original: Graph, blockedKernels: Bool = true, sparseKernels: SparseKernelPolicy = .auto,
         threads: Int = 1, sparseNodes: Set<String>? = nil) throws {
        let (folded, foldedNames) = foldingBatchNorm(original)
        let (fused, activations, fusedNames) = try folded.topologicallySorted().fusingActivations()
        var rewritten = fused.removingUnusedNodes()
        let blocked = blockedKernels && cpuSupportsBlockedKernels
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
        let selector = SparseKernelSelector(policy: sparseKernels, threads: threads, onlyNodes: sparseNodes)
        var builder = ValueTable(graph: graph, shapes: shapes, blocked: blocked, residuals: residuals, selector: selector)
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

/// Numbers values as they are met, chooses their layouts and compiles nodes
/// into steps, adding layout conversions where a reader needs the other layout.
private struct ValueTable {
    let graph: Graph
    /// Batch-1 shapes by value name.
    let shapes: [String: [Int]]
    let blocked: Bool
    /// Conv node name -> the value its epilogue adds.
    let residuals: [String: String]
    let selector: SparseKernelSelector
    var ids: [String: Int] = [:]
    var names: [String] = []
    var shapeNames: [String] = []
    var layouts: [ValueLayout] = []
    var sources: [ValueSource] = []
    var constants: [FloatBuffer] = []
    var steps: [PlannedStep] = []
    /// Value id -> id of its copy in the other layout.
    var copies: [Int: Int] = [:]
    var layerKernels: [LayerKernelChoice] = []

    init(graph: Graph, shapes: [String: [Int]], blocked: Bool, residuals: [String: String], selector: SparseKernelSelector) {
        (self.graph, self.shapes, self.blocked, self.residuals, self.selector) = (graph, shapes, blocked, residuals, selector)
    }

    mutating func add(_ name: String, _ source: ValueSource, layout: ValueLayout = .plain) -> Int {
        ids[name] = names.count
        return append(name, source, layout: layout, shapeName: name)
    }

    private mutating func append(_ name: String, _ source: ValueSource, layout: ValueLayout, shapeName: String) -> Int {
        names.append(name)
        shapeNames.append(shapeName)
        layouts.append(layout)
        sources.append(source)
        return names.count - 1
    }

    /// The id of a value already met, or of an initializer read as data (copied once).
    mutating func id(of name: String) -> Int {
        if let id = ids[name] { return id }
        let values = graph.initializers[name]!.floats
        let buffer = FloatBuffer(count: values.count)
        buffer.pointer.update(from: values, count: values.count)
        constants.append(buffer)
        return add(name, .constant(index: constants.count - 1))
    }

    /// `id` in plain layout: itself, or a copy converted once.
    mutating func plain(_ id: Int) -> Int { converted(id, to: .plain) }

    /// `id` in blocked layout: itself, or a copy converted once.
    mutating func blockedValue(_ id: Int) -> Int { converted(id, to: .blocked) }

    private mutating func converted(_ id: Int, to layout: ValueLayout) -> Int {
        if layouts[id] == layout { return id }
        if let copy = copies[id] { return copy }
        let name = names[id] + (layout == .blocked ? "#nchw8c" : "#nchw")
        let copy = append(name, .computed, layout: layout, shapeName: shapeNames[id])
        steps.append(PlannedStep(node: name, kernel: ReorderKernel(toBlocked: layout == .blocked), inputs: [id], output: copy))
        copies[id] = copy
        return copy
    }

    private func isBlocked(_ name: String) -> Bool { ids[name].map { layouts[$0] == .blocked } ?? false }

    /// Registers `node`'s output and appends its step (after any layout conversions
    /// it needs), unless it only renames its input.
    mutating func add(_ node: Node, activation: FusedActivation) throws(RuntimeError) {
        let x = node.inputs.first ?? ""
        switch node.op {
        case .flatten, .reshape, .dropout:
            _ = add(node.output, .alias(of: plain(id(of: x))))
        case .conv2d(let a) where blocked && shapes[x]?.count == 4
            && graph.initializers[node.inputs[1]].map({ BlockedConvKernel.supports(a, weightShape: $0.shape) }) == true:
            let parameters = try constantParameters(of: node)
            let input = id(of: x)
            let residual = residuals[node.name]
            let kernel = BlockedConvKernel(attributes: a, weight: parameters[0]!, bias: parameters[1], activation: activation,
                                           inputBlocked: layouts[input] == .blocked, hasResidual: residual != nil)
            let density = parameters[0]!.density
            if let sparse = sparseReplacement(node, dense: kernel, parameters, density: density, activation: activation) {
                append(node, sparse, ([x] + (residual.map { [$0] } ?? [])).map { plain(id(of: $0)) }, .plain,
                       density: density)
                return
            }
            var inputs = [input]
            if let residual { inputs.append(blockedValue(id(of: residual))) }
            append(node, kernel, inputs, .blocked, density: density)
        case .maxPool(let p) where isBlocked(x):
            append(node, BlockedPoolKernel(pool: p, reduction: .max), [id(of: x)], .blocked)
        case .avgPool(let p, let countIncludePad) where isBlocked(x):
            append(node, BlockedPoolKernel(pool: p, reduction: .average(countIncludePad: countIncludePad)), [id(of: x)], .blocked)
        case .globalAvgPool where isBlocked(x):
            append(node, BlockedGlobalAveragePoolKernel(), [id(of: x)], .plain)
        case .relu where isBlocked(x):
            append(node, BlockedActivationKernel(activation: .relu), [id(of: x)], .blocked)
        case .relu6 where isBlocked(x):
            append(node, BlockedActivationKernel(activation: .relu6), [id(of: x)], .blocked)
        case .add where node.inputs.contains(where: isBlocked) && shapes[node.inputs[0]] == shapes[node.inputs[1]]:
            let inputs = node.inputs.map { blockedValue(id(of: $0)) }
            append(node, BlockedAddKernel(), inputs, .blocked)
        default:
            var kernel = try makeKernel(node, activation: activation)
            var density: Double?
            switch node.op {
            case .conv2d, .linear:
                let parameters = try constantParameters(of: node)
                let weightDensity = parameters[0]!.density
                density = weightDensity
                if let sparse = sparseReplacement(node, dense: kernel, parameters, density: weightDensity,
                                                  activation: activation) {
                    kernel = sparse
                }
            default: break
            }
            let dataInputs = node.op.readsWeights ? [x] : node.inputs
            append(node, kernel, dataInputs.map { plain(id(of: $0)) }, .plain, density: density)
        }
    }

    private mutating func append(_ node: Node, _ kernel: any Kernel, _ inputs: [Int], _ layout: ValueLayout,
                                 density: Double? = nil) {
        let output = add(node.output, .computed, layout: layout)
        steps.append(PlannedStep(node: node.name, kernel: kernel, inputs: inputs, output: output, weightDensity: density))
    }

    /// The sparse kernel to run conv or linear `node` instead of `dense`, if the
    /// selector prefers it, with the choice recorded either way. A sparse kernel
    /// reads and writes plain values (and the residual a blocked conv would have added).
    private mutating func sparseReplacement(_ node: Node, dense: any Kernel, _ parameters: [Tensor?], density: Double,
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

    private func makeKernel(_ node: Node, activation: FusedActivation) throws(RuntimeError) -> any Kernel {
        let parameters = try constantParameters(of: node)
        switch node.op {
        case .conv2d(let a):
            return ConvKernel(attributes: a, weight: parameters[0]!, bias: parameters[1], activation: activation)
        case .linear: return LinearKernel(weight: parameters[0]!, bias: parameters[1], activation: activation)
        case .batchNorm(let eps):
            return BatchNormKernel(scale: parameters[0]!, bias: parameters[1]!, mean: parameters[2]!,
                                   variance: parameters[3]!, epsilon: eps)
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh, .dropout: return UnaryKernel(op: node.op)
        case .maxPool(let p): return PoolKernel(pool: p, reduction: .max)
        case .avgPool(let p, let countIncludePad): return PoolKernel(pool: p, reduction: .average(countIncludePad: countIncludePad))
        case .globalAvgPool: return GlobalAveragePoolKernel()
        case .add, .sub, .mul, .div: return BinaryKernel(op: node.op)
        case .concat(let axis): return ConcatKernel(axis: axis)
        case .softmax(let axis): return SoftmaxKernel(axis: axis)
        case .flatten, .reshape: preconditionFailure("\(node.op.kind) is planned as an alias")
        }
    }

    /// The initializers behind a weight-reading node's inputs after the first (nil for an absent bias).
    private func constantParameters(of node: Node) throws(RuntimeError) -> [Tensor?] {
        guard node.op.readsWeights else { return [] }
        var parameters: [Tensor?] = []
        for name in node.inputs.dropFirst() {
            if name.isEmpty { parameters.append(nil); continue }
            guard let t = graph.initializers[name] else {
                throw .unsupported(node: node.name, detail: "\(node.op.kind) parameter '\(name)' must be an initializer")
            }
            parameters.append(t)
        }
        return parameters + [nil]
    }
}

extension Op {
    /// Ops whose inputs after the first are parameters the kernel prepares once.
    var readsWeights: Bool {
        switch self {
        case .conv2d, .linear, .batchNorm: true
        default: false
        }
    }
}

extension Graph {
    /// Moves each ReLU/ReLU6 that is the only reader of a conv2d or linear
    /// output (not itself a graph output) into that layer: the layer writes
    /// the activation's output and the activation node goes.
    /// Returns the layers' activations by node name and the removed nodes' names.
    func fusingActivations() -> (Graph, [String: FusedActivation], [String]) {
        var readers: [String: Int] = [:]
        for node in nodes { for v in node.inputs { readers[v, default: 0] += 1 } }
        let producers = Dictionary(nodes.map { ($0.output, $0.name) }, uniquingKeysWith: { a, _ in a })
        var activations: [String: FusedActivation] = [:]
        var renamed: [String: String] = [:]
        var removed: [String] = []
        for node in nodes {
            let activation: FusedActivation
            switch node.op {
            case .relu: activation = .relu
            case .relu6: activation = .relu6
            default: continue
            }
            guard let layerName = producers[node.inputs[0]], readers[node.inputs[0]] == 1,
                  !outputs.contains(node.inputs[0]), let layer = nodes.first(where: { $0.name == layerName }),
                  layer.op.acceptsFusedActivation, activations[layerName] == nil else { continue }
            activations[layerName] = activation
            renamed[layerName] = node.output
            removed.append(node.name)
        }
        var g = self
        g.nodes = nodes.compactMap { node in
            if removed.contains(node.name) { return nil }
            var n = node
            if let output = renamed[node.name] { n.output = output }
            return n
        }
        return (g, activations, removed)
    }

    /// Drops nodes whose output no graph output depends on.
    func removingUnusedNodes() -> Graph {
        var needed = Set(outputs)
        var kept: [Node] = []
        for node in nodes.reversed() where needed.contains(node.output) {
            kept.append(node)
            needed.formUnion(node.inputs)
        }
        var g = self
        g.nodes = kept.reversed()
        return g
    }
}

extension Graph {
    /// Moves each Add of two equally shaped feature maps, one of which is the
    /// only reader of a convolution that `fusable` accepts, into that
    /// convolution's epilogue as a residual (the conv then writes the Add's
    /// output), and a ReLU/ReLU6 that is then the Add's only reader with it.
    /// When both inputs qualify, the conv later in the (topological) node order
    /// takes the Add, so the residual it reads is computed before it runs.
    ///
    /// Returns the graph, activations by layer name (`activations` updated),
    /// the residual each conv adds by conv name, and the removed Add and
    /// activation nodes' names. The residual is no input of the conv node:
    /// the graph serves shape inference only from here on.
    func fusingResidualAdds(_ activations: [String: FusedActivation], fusable: (Node) -> Bool) throws
        -> (Graph, [String: FusedActivation], [String: String], [String], [String]) {
        let shapes = try inferShapes(batch: 1)
        var readers: [String: Int] = [:]
        for node in nodes { for v in node.inputs { readers[v, default: 0] += 1 } }
        for v in outputs { readers[v, default: 0] += 1 }
        let inputNames = Set(inputs.map(\.name))
        var nodes = self.nodes
        var activations = activations
        var residuals: [String: String] = [:]
        var removed: Set<String> = []
        var (addNames, activationNames): ([String], [String]) = ([], [])
        func producer(_ value: String) -> Int? { nodes.indices.first { !removed.contains(nodes[$0].name) && nodes[$0].output == value } }
        for addIndex in nodes.indices {
            let add = nodes[addIndex]
            guard add.op == .add, add.inputs.count == 2, let shape = shapes[add.inputs[0]], shape.count == 4,
                  shapes[add.inputs[1]] == shape else { continue }
            // (conv index, residual value) for each input a conv could take, the latest conv first.
            let candidates = [(0, 1), (1, 0)].compactMap { (k, other) -> (Int, String)? in
                guard let p = producer(add.inputs[k]), case .conv2d = nodes[p].op, fusable(nodes[p]),
                      activations[nodes[p].name] == nil, residuals[nodes[p].name] == nil,
                      readers[add.inputs[k]] == 1, !outputs.contains(add.inputs[k]) else { return nil }
                let residual = add.inputs[other]
                let ready = inputNames.contains(residual) || (producer(residual).map { $0 < p } ?? false)
                return ready ? (p, residual) : nil
            }.sorted { $0.0 > $1.0 }
            guard let (conv, residual) = candidates.first else { continue }
            residuals[nodes[conv].name] = residual
            nodes[conv].output = add.output
            removed.insert(add.name)
            addNames.append(add.name)
            guard readers[add.output] == 1, !outputs.contains(add.output),
                  let next = nodes.indices.first(where: { !removed.contains(nodes[$0].name) && nodes[$0].inputs.contains(add.output) })
            else { continue }
            let activation: FusedActivation
            switch nodes[next].op {
            case .relu: activation = .relu
            case .relu6: activation = .relu6
            default: continue
            }
            activations[nodes[conv].name] = activation
            nodes[conv].output = nodes[next].output
            removed.insert(nodes[next].name)
            activationNames.append(nodes[next].name)
        }
        var g = self
        g.nodes = nodes.filter { !removed.contains($0.name) }
        return (g, activations, residuals, addNames, activationNames)
    }
}

extension Op {
    /// Ops with a bias-and-activation epilogue in the runtime.
    var acceptsFusedActivation: Bool {
        switch self {
        case .conv2d, .linear: true
        default: false
        }
    }
}
