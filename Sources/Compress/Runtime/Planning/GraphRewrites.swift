// The graph rewrites planning applies before compiling kernels: activation
// fusion, residual-add fusion (blocked kernels only) and dead-node removal.
// Each returns a new graph; the fusions also say what they moved where.

extension Graph {
    /// Moves each activation (`FusedActivation`) that is the only reader of a conv2d or linear
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
            guard let activation = FusedActivation(node.op) else { continue }
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
    /// output), and an activation mapping 0 to 0 that is then the Add's only reader with it.
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
            guard let activation = FusedActivation(nodes[next].op), activation.keepsZero else { continue }
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
        case .conv2d, .linear, .convTranspose: true
        default: false
        }
    }
}
