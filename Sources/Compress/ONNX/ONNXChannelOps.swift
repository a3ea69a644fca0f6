/// Slice and Split of computed values, Gather of channels, and the channel
/// shuffle (`Reshape` → `Transpose` → `Reshape`, ShuffleNetV2: Ma et al. 2018),
/// imported as `Op.slice` and `Op.channelPermute`.
extension ImportContext {
    /// `Slice` of a computed value with constant bounds and step 1: one
    /// `slice` node per axis whose range is not the whole axis (none: the
    /// value itself). Negative and out-of-range bounds are resolved as ONNX
    /// defines them.
    mutating func convertSlice(of x: DynamicValue, _ n: ONNXNodeProto, starts: [Int], ends: [Int], axes: [Int],
                               steps: [Int]?) throws(UnsupportedFeature) {
        var ranges: [(axis: Int, range: Range<Int>)] = []
        for (k, axis) in axes.enumerated() {
            let a = try normalizedAxis(axis, rank: x.rank)
            let step = steps?[k] ?? 1
            guard step == 1 else { throw UnsupportedFeature("step \(step) on a computed value (only step 1 is supported)") }
            let picked = sliceIndices(dim: x.shape[a], start: starts[k], end: ends[k], step: 1)
            guard let first = picked.first else {
                throw UnsupportedFeature("the slice \(starts[k])..<\(ends[k]) of axis \(a) (size \(x.shape[a])) is empty")
            }
            // The whole axis; along the batch, a range covering the batch it was
            // imported at is the batch (as a Reshape target equal to it is).
            if picked.count == x.shape[a] { continue }
            if a == 0 && hasBatchAxis(x) { throw UnsupportedFeature("slices the batch dimension") }
            ranges.append((a, first..<(first + picked.count)))
        }
        var current = x
        for (k, r) in ranges.enumerated() {
            let last = k == ranges.count - 1
            current = try emit(.slice(axis: r.axis, start: r.range.lowerBound, end: r.range.upperBound), [current],
                               output: last ? n.outputs[0] : intermediate(n.outputs[0], "axis\(r.axis)"),
                               suffix: ranges.count > 1 ? "axis\(r.axis)" : nil)
        }
        define(n.outputs[0], .dynamic(current))
    }

    /// `Split` of a computed value: each output one `slice` node. Sizes come
    /// from the `split` attribute (before opset 13) or input (from 13), else
    /// from `num_outputs` (opset 18: chunks of ⌈dim / num_outputs⌉, the last
    /// smaller), else equal parts, one per output.
    mutating func convertSplit(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let x = try dynamic(n.inputs[0])
        let axis = try normalizedAxis(try n.int("axis", default: 0), rank: x.rank)
        if axis == 0 && hasBatchAxis(x) { throw UnsupportedFeature("splits the batch dimension") }
        let dim = x.shape[axis]
        let given = opset < 13 ? try n.ints("split") : try optionalConstant(n, 1, "Split sizes")?.ints
        let sizes: [Int]
        if let given {
            sizes = given
        } else if opset >= 18 && n.attributes["num_outputs"] != nil {
            let parts = try n.int("num_outputs", default: 1)
            guard parts >= 1 else { throw UnsupportedFeature("num_outputs \(parts) must be at least 1") }
            let chunk = (dim + parts - 1) / parts
            sizes = (0..<parts).map { min(chunk, dim - $0 * chunk) }
        } else {
            guard dim % n.outputs.count == 0 else {
                throw UnsupportedFeature("axis \(axis) of size \(dim) does not split into \(n.outputs.count) equal parts")
            }
            sizes = Array(repeating: dim / n.outputs.count, count: n.outputs.count)
        }
        guard sizes.count == n.outputs.count, sizes.reduce(0, +) == dim else {
            throw UnsupportedFeature("split sizes \(sizes) do not give \(n.outputs.count) outputs covering axis \(axis) of size \(dim)")
        }
        guard sizes.allSatisfy({ $0 > 0 }) else { throw UnsupportedFeature("split sizes \(sizes) include an empty output") }
        var start = 0
        for (k, (output, size)) in zip(n.outputs, sizes).enumerated() {
            defer { start += size }
            guard !output.isEmpty else { continue }
            if size == dim {
                define(output, .dynamic(x))
                continue
            }
            define(output, .dynamic(try emit(.slice(axis: axis, start: start, end: start + size), [x], output: output,
                                             suffix: "output\(k)")))
        }
    }

    /// `Gather` of a computed value along axis 1 with constant 1-D indices: a
    /// permutation of the channels is `channelPermute`, a run of consecutive
    /// channels a `slice`.
    mutating func convertChannelGather(of x: DynamicValue, _ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let axis = try normalizedAxis(try n.int("axis", default: 0), rank: x.rank)
        let indices = try constant(n.inputs[1], "Gather indices of a computed value")
        let channels = x.rank >= 2 ? x.shape[1] : 0
        var picked: [Int] = []
        for i in indices.ints {
            guard i >= -channels && i < channels else { throw UnsupportedFeature("index \(i) out of range for \(channels) channels") }
            picked.append(i < 0 ? i + channels : i)
        }
        guard axis == 1, indices.shape.count == 1, let first = picked.first else {
            throw UnsupportedFeature("Gather of a computed value is supported only along axis 1 with 1-D constant indices "
                                     + "(a permutation or a run of the channels); got axis \(axis), indices \(indices.shape)")
        }
        if picked == Array(0..<channels) {
            define(n.outputs[0], .dynamic(x))
        } else if picked.count == channels && Set(picked).count == channels {
            define(n.outputs[0], .dynamic(try emit(.channelPermute(order: picked), [x], output: n.outputs[0])))
        } else if picked == Array(first..<(first + picked.count)) {
            define(n.outputs[0], .dynamic(try emit(.slice(axis: 1, start: first, end: first + picked.count), [x], output: n.outputs[0])))
        } else {
            throw UnsupportedFeature("Gather of channels \(picked) is neither a permutation nor a run of the \(channels) channels")
        }
    }

    /// `Transpose` of the channel shuffle: perm [0, 2, 1, 3, 4] of `[N, G, C/G, H, W]`
    /// made by a Reshape of `[N, C, H, W]`. The transposed value is written as
    /// a `channelPermute` of the 4-D source (output channel `j·G + g` is input
    /// channel `g·C/G + j`) reshaped to `[N, C/G, G, H, W]`; the Reshape back to
    /// `[N, C, H, W]` then cancels that reshape (`removingRedundantReshapes`).
    /// Any other Transpose is refused.
    mutating func convertTranspose(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let x = try dynamic(n.inputs[0])
        let perm = try n.ints("perm") ?? Array((0..<x.rank).reversed())
        let shuffle = "Transpose is supported only as the channel shuffle Reshape [N, G, C/G, H, W] -> Transpose "
            + "perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]"
        guard perm == [0, 2, 1, 3, 4], x.rank == 5, hasBatchAxis(x),
              let reshape = nodes.last(where: { $0.output == x.name }), case .reshape = reshape.op,
              let source = computedValue(named: reshape.inputs[0]), source.rank == 4, source.shape[0] == x.shape[0],
              source.shape[1] == x.shape[1] * x.shape[2], Array(source.shape[2...]) == Array(x.shape[3...]) else {
            throw UnsupportedFeature("\(shuffle); got perm \(perm) of \(x.shape)")
        }
        let (groups, perGroup) = (x.shape[1], x.shape[2])
        let order = (0..<(groups * perGroup)).map { i in (i % groups) * perGroup + i / groups }
        let permuted = try emit(.channelPermute(order: order), [source], output: intermediate(n.outputs[0], "shuffled"),
                                suffix: "permute")
        define(n.outputs[0], .dynamic(try emit(.reshape(shape: [0, perGroup, groups, x.shape[3], x.shape[4]]), [permuted],
                                               output: n.outputs[0], suffix: "reshape")))
    }

    /// The computed value whose IR name is `name`, with its shapes.
    private func computedValue(named name: String) -> DynamicValue? {
        for case .dynamic(let d) in values.values where d.name == name { return d }
        return nil
    }
}

/// `graph` without the Reshape pairs that give back their first input's shape
/// at every batch size (the two Reshapes of an imported channel shuffle around
/// its permutation), and without Reshapes nothing reads.
func removingRedundantReshapes(_ graph: Graph) -> Graph {
    guard let one = try? graph.inferShapes(batch: 1), let two = try? graph.inferShapes(batch: 2) else { return graph }
    var readers: [String: Int] = [:]
    for node in graph.nodes { for input in node.inputs { readers[input, default: 0] += 1 } }
    for output in graph.outputs { readers[output, default: 0] += 1 }
    let producers = Dictionary(graph.nodes.map { ($0.output, $0) }, uniquingKeysWith: { first, _ in first })
    var replacement: [String: String] = [:]
    var removed = Set<String>()
    for node in graph.nodes {
        guard case .reshape = node.op, !graph.outputs.contains(node.output),
              let inner = producers[node.inputs[0]], case .reshape = inner.op, !removed.contains(inner.name),
              readers[inner.output] == 1, one[node.output] == one[inner.inputs[0]], two[node.output] == two[inner.inputs[0]]
        else { continue }
        replacement[node.output] = replacement[inner.inputs[0]] ?? inner.inputs[0]
        removed.formUnion([node.name, inner.name])
    }
    var result = graph
    result.nodes = graph.nodes.filter { !removed.contains($0.name) }.map { node in
        var rewired = node
        rewired.inputs = node.inputs.map { replacement[$0] ?? $0 }
        return rewired
    }
    while true {
        var read = Set(result.outputs)
        for node in result.nodes { read.formUnion(node.inputs) }
        let dead = result.nodes.filter { if case .reshape = $0.op { !read.contains($0.output) } else { false } }
        if dead.isEmpty { return result }
        let deadNames = Set(dead.map(\.name))
        result.nodes.removeAll { deadNames.contains($0.name) }
    }
}
