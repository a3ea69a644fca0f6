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
}

/// The batch-independent part of a session's plan: the graph after BatchNorm
/// folding, activation fusion and dead-node removal, its values numbered,
/// and one compiled kernel per remaining computing node, in topological order.
struct ExecutionPlan {
    /// The rewritten graph; per-batch shapes are inferred from it.
    let graph: Graph
    let valueNames: [String]
    let sources: [ValueSource]
    let steps: [PlannedStep]
    let constants: [FloatBuffer]
    let inputIDs: [Int]
    let outputIDs: [Int]
    let foldedBatchNorms: [String]
    let fusedActivations: [String]

    init(graph original: Graph) throws {
        let (folded, foldedNames) = foldingBatchNorm(original)
        let (fused, activations, fusedNames) = try folded.topologicallySorted().fusingActivations()
        graph = fused.removingUnusedNodes()
        _ = try graph.inferShapes(batch: 1)
        foldedBatchNorms = foldedNames
        fusedActivations = fusedNames
        var builder = ValueTable(graph: graph)
        var steps: [PlannedStep] = []
        for input in graph.inputs { _ = builder.add(input.name, .graphInput) }
        for node in graph.nodes {
            if let step = try builder.add(node, activation: activations[node.name] ?? .none) { steps.append(step) }
        }
        inputIDs = graph.inputs.map { builder.ids[$0.name]! }
        outputIDs = graph.outputs.map { builder.id(of: $0) }
        (valueNames, sources, constants) = (builder.names, builder.sources, builder.constants)
        self.steps = steps
    }

    /// The value whose storage `id` shares, following aliases.
    func root(_ id: Int) -> Int {
        if case .alias(let of) = sources[id] { return root(of) }
        return id
    }
}

/// Numbers values as they are met and compiles nodes into steps.
private struct ValueTable {
    let graph: Graph
    var ids: [String: Int] = [:]
    var names: [String] = []
    var sources: [ValueSource] = []
    var constants: [FloatBuffer] = []

    init(graph: Graph) { self.graph = graph }

    mutating func add(_ name: String, _ source: ValueSource) -> Int {
        ids[name] = names.count
        names.append(name)
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

    /// Registers `node`'s output; returns its step unless it only renames its input.
    mutating func add(_ node: Node, activation: FusedActivation) throws(RuntimeError) -> PlannedStep? {
        switch node.op {
        case .flatten, .reshape, .dropout:
            _ = add(node.output, .alias(of: id(of: node.inputs[0])))
            return nil
        default:
            let kernel = try makeKernel(node, activation: activation)
            let dataInputs = node.op.readsWeights ? [node.inputs[0]] : node.inputs
            let inputs = dataInputs.map { id(of: $0) }
            return PlannedStep(node: node.name, kernel: kernel, inputs: inputs, output: add(node.output, .computed))
        }
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

extension Op {
    /// Ops with a bias-and-activation epilogue in the runtime.
    var acceptsFusedActivation: Bool {
        switch self {
        case .conv2d, .linear: true
        default: false
        }
    }
}
