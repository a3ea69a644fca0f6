import Compress

extension Graph {
    /// The trainable-looking initializers (every initializer a node reads) of
    /// the nodes `values` depend on, those nodes included: the part of the
    /// network up to these values that FitNets' first stage trains.
    func parametersUpstream(of values: [String]) -> Set<String> {
        var seen = Set<String>()
        var pending = values
        var parameters = Set<String>()
        while let value = pending.popLast() {
            guard seen.insert(value).inserted, let node = producer(of: value) else { continue }
            for input in node.inputs where !input.isEmpty {
                if initializers[input] != nil { parameters.insert(input) } else { pending.append(input) }
            }
        }
        return parameters
    }

    /// The values every path from the input to the outputs passes through
    /// (where the network is one value wide), in order: with the nodes in
    /// topological order, a node's output is a cut point when, just after the
    /// node, it is the only input-dependent value still to be read.
    func cutPoints() throws -> [String] {
        let sorted = try topologicallySorted()
        let input = sorted.inputs.first?.name ?? ""
        var lastUse: [String: Int] = [:]
        for (i, node) in sorted.nodes.enumerated() { for value in node.inputs { lastUse[value] = i } }
        for output in sorted.outputs { lastUse[output] = Int.max }
        var dependent: Set<String> = [input]
        var live: Set<String> = [input]
        var points: [String] = []
        for (i, node) in sorted.nodes.enumerated() where node.inputs.contains(where: dependent.contains) {
            dependent.insert(node.output)
            live = live.filter { (lastUse[$0] ?? -1) > i }
            if (lastUse[node.output] ?? -1) > i { live.insert(node.output) }
            if live == [node.output] { points.append(node.output) }
        }
        return points
    }

    /// The outputs of the network's blocks, in order, for layerwise imitation.
    ///
    /// A block ends at the cut point (``cutPoints()``) a conv or linear layer
    /// reads, when at least one conv or linear layer came since the previous
    /// block's end; a cut point that only feeds flatten, reshape or global
    /// average pooling stands for its input when that is a cut point too, so
    /// a block's output is a feature map where there is one. The last layer
    /// (the classifier) ends no block. For the built-in architectures:
    /// `relu1`, `relu2` of `lenet300`; `pool1`, `pool2`, `relu1` of `lenet5`;
    /// `relu1`, `pool1`, `relu3`, `pool2`, `relu5`, `pool3` of `vgg-small`;
    /// the stem's `relu1` and every residual block's `layerI.J.relu2` of
    /// `resnet20`; `relu1` and each block's `relu1` and `relu2` of `mobilenet-small`.
    func blockOutputs() throws -> [String] {
        let sorted = try topologicallySorted()
        let points = try cutPoints()
        let position = Dictionary(uniqueKeysWithValues: points.enumerated().map { ($1, $0) })
        var blocks: [String] = []
        var pendingLayer = false
        for node in sorted.nodes {
            switch node.op {
            case .conv2d, .linear: break
            default: continue
            }
            var value = node.inputs[0]
            while let producer = sorted.producer(of: value), Self.standsForItsInput(producer.op),
                  position[producer.inputs[0]] != nil {
                value = producer.inputs[0]
            }
            if pendingLayer, let p = position[value], p > blocks.last.flatMap({ position[$0] }) ?? -1 {
                blocks.append(value)
            }
            pendingLayer = true
        }
        return blocks
    }

    /// Ops that only reshape or summarize a feature map, so a block ending in
    /// them is taken to end at their input.
    private static func standsForItsInput(_ op: Op) -> Bool {
        switch op {
        case .flatten, .reshape, .globalAvgPool: true
        default: false
        }
    }
}
