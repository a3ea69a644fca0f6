/// Folds inference-time batch normalization into the convolution, transposed
/// convolution or linear layer that feeds it.
///
/// A BatchNorm `y = (x - mean) / sqrt(var + eps) * scale + bias` whose input
/// `x = W * in + b` comes from a `conv2d`, `convTranspose` or `linear` with no
/// other consumer is the same layer with `W' = W * s` (each weight scaled by its
/// output channel's `s`: axis 0, or axis 1 per group for `convTranspose`) and
/// `b' = (b - mean) * s + bias`, where `s = scale / sqrt(var + eps)`. The layer
/// gets a bias if it had none, takes over the BatchNorm's output name, and the
/// BatchNorm node is removed, so consumers and graph outputs are untouched.
/// BatchNorm parameters no other node reads are dropped.
///
/// A BatchNorm is left alone when its layer's output is also read elsewhere
/// (or is a graph output), when any parameter is not an initializer, or when
/// the layer's weight or bias initializer is shared with another node.
///
/// Ioffe & Szegedy, "Batch Normalization", 2015 (inference form, section 3.1).
///
/// - Returns: the new graph and the names of the BatchNorm nodes folded, in graph order.
public func foldingBatchNorm(_ graph: Graph) -> (graph: Graph, folded: [String]) {
    var g = graph
    var folded: [String] = []
    for bn in graph.nodes {
        guard case .batchNorm(let epsilon) = bn.op, g.foldBatchNorm(bn, epsilon: epsilon) else { continue }
        folded.append(bn.name)
    }
    return (g, folded)
}

extension Graph {
    /// Folds `bn` into its producer in place; false (graph untouched) when not foldable.
    fileprivate mutating func foldBatchNorm(_ bn: Node, epsilon: Float) -> Bool {
        guard bn.inputs.count == 5,
              let layerIndex = nodes.firstIndex(where: { $0.output == bn.inputs[0] }),
              let plan = batchNormFoldPlan(layer: nodes[layerIndex], bn: bn) else { return false }
        var layer = nodes[layerIndex]
        let (weight, bias) = foldedParameters(plan.weight, plan.bias, channels: plan.channels, bn: bn, epsilon: epsilon,
                                              outputChannel: Self.outputChannel(of: layer.op, weightShape: plan.weight.shape))
        let biasName = plan.biasName ?? unusedName(base: layer.name + ".bias")
        initializers[layer.inputs[1]] = weight
        initializers[biasName] = bias
        layer.inputs = [layer.inputs[0], layer.inputs[1], biasName]
        layer.output = bn.output
        nodes[layerIndex] = layer
        nodes.removeAll { $0.name == bn.name }
        for name in bn.inputs[1...] where readerCount(of: name) == 0 && !outputs.contains(name) {
            initializers[name] = nil
        }
        return true
    }

    /// What folding `bn` into `layer` needs, or nil when it must not be folded.
    private func batchNormFoldPlan(layer: Node, bn: Node) -> (weight: Tensor, bias: Tensor?, biasName: String?, channels: Int)? {
        switch layer.op {
        case .conv2d, .linear, .convTranspose: break
        default: return nil
        }
        guard readerCount(of: layer.output) == 1, !outputs.contains(layer.output),
              bn.inputs[1...].allSatisfy({ initializers[$0] != nil }),
              let weight = initializers[layer.inputs[1]], isPrivate(layer.inputs[1]), weight.rank >= 2 else { return nil }
        var channels = weight.shape[0]
        if case .convTranspose(let a) = layer.op { channels = weight.shape[1] * a.groups }
        guard bn.inputs[1...].allSatisfy({ initializers[$0]!.count == channels }) else { return nil }
        guard layer.inputs.count == 3, !layer.inputs[2].isEmpty else { return (weight, nil, nil, channels) }
        let biasName = layer.inputs[2]
        guard let bias = initializers[biasName], isPrivate(biasName), bias.count == channels else { return nil }
        return (weight, bias, biasName, channels)
    }

    /// The output channel weight element `i` belongs to: its row (axis 0) for conv2d and
    /// linear; for convTranspose `[C, O/groups, kh, kw]`, group of its input channel
    /// times `O/groups` plus its index on axis 1.
    private static func outputChannel(of op: Op, weightShape: [Int]) -> (Int) -> Int {
        let rowLength = weightShape.dropFirst().reduce(1, *)
        guard case .convTranspose(let a) = op else { return { $0 / rowLength } }
        let (groupOut, taps) = (weightShape[1], weightShape[2...].reduce(1, *))
        let groupIn = weightShape[0] / a.groups
        return { i in (i / rowLength / groupIn) * groupOut + (i / taps) % groupOut }
    }

    /// `W * s` by output channel and `(b - mean) * s + beta`, computed in Double.
    private func foldedParameters(_ weight: Tensor, _ bias: Tensor?, channels: Int, bn: Node, epsilon: Float,
                                  outputChannel: (Int) -> Int) -> (Tensor, Tensor) {
        let (scale, beta, mean, variance) = (initializers[bn.inputs[1]]!.floats, initializers[bn.inputs[2]]!.floats,
                                             initializers[bn.inputs[3]]!.floats, initializers[bn.inputs[4]]!.floats)
        let oldBias = bias?.floats ?? [Float](repeating: 0, count: channels)
        let s = (0..<channels).map { c in Double(scale[c]) / (Double(variance[c]) + Double(epsilon)).squareRoot() }
        var w = weight.floats
        for i in w.indices { w[i] = Float(Double(w[i]) * s[outputChannel(i)]) }
        let b = (0..<channels).map { c in Float((Double(oldBias[c]) - Double(mean[c])) * s[c] + Double(beta[c])) }
        return (Tensor(shape: weight.shape, floats: w), Tensor(shape: [channels], floats: b))
    }

    /// Number of node inputs that read `value`.
    private func readerCount(of value: String) -> Int {
        nodes.reduce(0) { $0 + $1.inputs.filter { $0 == value }.count }
    }

    /// True when exactly one node input reads the initializer and it is no graph output.
    private func isPrivate(_ initializer: String) -> Bool {
        readerCount(of: initializer) == 1 && !outputs.contains(initializer)
    }

    /// `base`, or `base.1`, `base.2`, ... : the first name no value in the graph uses.
    private func unusedName(base: String) -> String {
        let taken = Set(initializers.keys).union(nodes.map(\.output)).union(inputs.map(\.name))
        var name = base
        var suffix = 1
        while taken.contains(name) {
            name = "\(base).\(suffix)"
            suffix += 1
        }
        return name
    }
}
