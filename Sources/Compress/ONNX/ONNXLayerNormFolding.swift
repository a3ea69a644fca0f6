/// ConvNeXt's channels-last LayerNorm and block, folded into channels-first ops
/// before conversion (Liu et al., "A ConvNet for the 2020s", CVPR 2022).
///
/// PyTorch writes a LayerNorm over the channels of an NCHW value as
/// `Transpose perm [0,2,3,1] -> LayerNormalization (axis -1) -> Transpose perm [0,3,1,2]`
/// (torchvision's `LayerNorm2d` in the stem and downsampling layers), and
/// ConvNeXt's block as
/// `Transpose [0,2,3,1] -> LayerNormalization -> MatMul (+Add) -> activation ->
/// MatMul (+Add) [-> Mul by a per-channel layer scale] -> Transpose [0,3,1,2]
/// [-> Mul by a [C,1,1] layer scale]`.
/// `foldingChannelsLastLayerNorms` rewrites these chains, on the ONNX graph,
/// into a LayerNorm over channels (`channelLayerNormOpType` in
/// `channelLayerNormDomain`, which only this rewrite writes) and 1x1 `Conv`s
/// whose weights are the MatMul weights transposed to `[O, I, 1, 1]`; the
/// layer scale multiplies the second conv's weight rows and bias (exact). The
/// activation between the MatMuls (any elementwise subgraph reading the first
/// MatMul's result with scalar constants, e.g. `Relu` or GELU's `Erf` form) is
/// kept node for node: on NCHW it computes the same values.
///
/// A LayerNorm written decomposed over the last axis, as exporters write it
/// below opset 17 (and this project's export does), becomes one
/// `LayerNormalization` first: `ReduceMean (axes [-1]) -> Sub -> Pow 2 (or
/// Mul by itself) -> ReduceMean (axes [-1]) -> Add ε -> Sqrt -> Div -> Mul by
/// the scale [-> Add the bias]`.
///
/// Other chains are left as they are and fail on their `Transpose` or
/// `LayerNormalization`; a `Transpose perm [0,2,3,1]` before a
/// `LayerNormalization` over the last axis whose continuation does not match
/// is refused with a message saying what follows it.
func foldingChannelsLastLayerNorms(_ graph: ONNXGraphProto) -> ONNXGraphProto {
    var graph = graph
    // The rewrite's private domain is not for files: a file's node in it stays unsupported.
    for i in graph.nodes.indices where graph.nodes[i].domain == channelLayerNormDomain {
        graph.nodes[i].domain = "\(channelLayerNormDomain) (in the file)"
    }
    var lifting = ChannelsLastFolding(graph)
    for index in graph.nodes.indices { lifting.liftDecomposedLayerNorm(startingAt: index) }
    let lifted = lifting.result()
    var folding = ChannelsLastFolding(lifted)
    for index in lifted.nodes.indices {
        if let reason = folding.foldChain(startingAt: index) { folding.markUnfoldable(index, because: reason) }
    }
    return folding.result()
}

/// The private domain of the nodes the rewrite writes (a file's nodes in it are renamed away).
let channelLayerNormDomain = "compressor.folded"
/// The op type of a LayerNorm over axis 1 of an NCHW value: inputs x, scale `[C]`, bias `[C]`; attribute epsilon.
let channelLayerNormOpType = "ChannelLayerNormalization"
/// The op type of a channels-last Transpose that starts a chain the rewrite could not fold; attribute reason.
let unfoldableTransposeOpType = "UnfoldableTranspose"

/// The state of one rewrite: the graph's nodes by index, who reads each value,
/// and the replacements decided so far (applied in `result`).
private struct ChannelsLastFolding {
    var graph: ONNXGraphProto
    var producer: [String: Int] = [:]
    var readers: [String: [Int]] = [:]
    let outputs: Set<String>
    var constants: [String: Tensor] = [:]
    /// Node index -> what replaces it (nil: removed).
    var replacements: [Int: ONNXNodeProto?] = [:]
    var names: Set<String>

    init(_ graph: ONNXGraphProto) {
        self.graph = graph
        outputs = Set(graph.outputs.map(\.name))
        for (name, t) in graph.initializers { constants[name] = t }
        for (i, n) in graph.nodes.enumerated() {
            for o in n.outputs where !o.isEmpty { producer[o] = i }
            for v in n.inputs where !v.isEmpty { readers[v, default: []].append(i) }
            if n.opType == "Constant", n.domain.isEmpty, n.inputs.isEmpty, case .tensor(let t)? = n.attributes["value"],
               let o = n.outputs.first {
                constants[o] = t
            }
        }
        names = Set(graph.initializers.map(\.name) + graph.inputs.map(\.name) + graph.nodes.flatMap(\.outputs))
    }

    /// Replaces Transpose node `index` by a node the converter refuses with `reason`.
    mutating func markUnfoldable(_ index: Int, because reason: String) {
        var n = graph.nodes[index]
        (n.domain, n.opType) = (channelLayerNormDomain, unfoldableTransposeOpType)
        n.attributes = ["reason": .string("a Transpose perm [0,2,3,1] is supported only before ConvNeXt's channels-last "
                                          + "LayerNorm or block, and here \(reason)")]
        replacements[index] = n
    }

    /// The rewritten graph.
    func result() -> ONNXGraphProto {
        var g = graph
        g.nodes = []
        for (i, n) in graph.nodes.enumerated() {
            if let replacement = replacements[i] {
                if let replacement { g.nodes.append(replacement) }
            } else {
                g.nodes.append(n)
            }
        }
        return g
    }

    /// The node that alone reads `value`, when exactly one node does and it is not a graph output.
    private func soleReader(_ value: String) -> Int? {
        guard !outputs.contains(value), let r = readers[value], r.count == 1, replacements[r[0]] == nil else { return nil }
        return r[0]
    }

    private func isTranspose(_ n: ONNXNodeProto, _ perm: [Int64]) -> Bool {
        guard n.opType == "Transpose", n.domain.isEmpty, case .ints(let p)? = n.attributes["perm"] else { return false }
        return p == perm
    }

    /// A float constant `[count]`, or one whose dimensions are 1 except one of
    /// `count` at the position `trailing` ones from the end (0: last).
    private func vector(_ name: String, count: Int, trailing: Int = 0) -> [Float]? {
        guard let t = constants[name], t.shape.elementCount == count, t.dtype != .int64 else { return nil }
        let s = t.shape
        if s == [count] && trailing == 0 { return t.floats }
        guard s.count > trailing, s[s.count - 1 - trailing] == count,
              s.enumerated().allSatisfy({ $0.offset == s.count - 1 - trailing || $0.element == 1 }) else { return nil }
        return t.floats
    }

    private mutating func freshName(_ base: String) -> String {
        var candidate = base, k = 0
        while names.contains(candidate) { k += 1; candidate = "\(base)_\(k)" }
        names.insert(candidate)
        return candidate
    }

    private mutating func addInitializer(_ base: String, _ t: Tensor) -> String {
        let name = freshName(base)
        graph.initializers.append((name: name, tensor: t))
        constants[name] = t
        return name
    }

    /// `MatMul` by a constant `[rows, columns]` matrix reading `value`, with
    /// an optional `Add` of a constant `[columns]` bias: (matrix, bias, last
    /// node index, the indices used, result value).
    private func linear(reading value: String, at index: Int) -> (w: Tensor, b: [Float]?, nodes: [Int], output: String)? {
        let m = graph.nodes[index]
        guard m.opType == "MatMul", m.domain.isEmpty, m.inputs.count == 2, m.inputs[0] == value,
              let w = constants[m.inputs[1]], w.rank == 2, w.dtype != .int64, let out = m.outputs.first else { return nil }
        if let a = soleReader(out), graph.nodes[a].opType == "Add", graph.nodes[a].inputs.count == 2,
           let other = graph.nodes[a].inputs.first(where: { $0 != out }), graph.nodes[a].inputs.contains(out),
           let bias = vector(other, count: w.shape[1]) {
            return (w, bias, [index, a], graph.nodes[a].outputs[0])
        }
        return (w, nil, [index], out)
    }

    /// Rewrites the chain whose first `Transpose` is node `index`, if it matches.
    /// Returns why not when the Transpose feeds a `LayerNormalization` over its
    /// last axis but what follows is not a chain this rewrite knows.
    mutating func foldChain(startingAt index: Int) -> String? {
        let t1 = graph.nodes[index]
        guard replacements[index] == nil, isTranspose(t1, [0, 2, 3, 1]), t1.inputs.count == 1,
              let lnIndex = soleReader(t1.outputs[0]) else { return nil }
        let ln = graph.nodes[lnIndex]
        guard ln.opType == "LayerNormalization", ln.domain.isEmpty, ln.inputs.count >= 2,
              (try? ln.int("axis", default: -1)).map({ $0 == -1 || $0 == 3 }) == true,
              (try? ln.onlyAttributes(["axis", "epsilon", "stash_type"])) != nil,
              ln.outputs.dropFirst().allSatisfy({ $0.isEmpty || (readers[$0] == nil && !outputs.contains($0)) }),
              let scale = constants[ln.inputs[1]], scale.rank == 1, scale.dtype != .int64,
              let epsilon = try? ln.float("epsilon", default: 1e-5) else { return nil }
        let channels = scale.shape[0]
        var bias: [Float]? = nil
        if let b = ln.input(2) {
            guard let v = vector(b, count: channels) else { return nil }
            bias = v
        }
        guard let next = soleReader(ln.outputs[0]) else {
            return "the LayerNormalization '\(ln.name)' after it has several readers or is a graph output"
        }
        let scaleName = ln.inputs[1]
        let biasName = bias.map { _ in ln.inputs[2] }
        func layerNorm(output: String) -> ONNXNodeProto {
            ONNXNodeProto(name: ln.name, opType: channelLayerNormOpType, domain: channelLayerNormDomain,
                          inputs: [t1.inputs[0], scaleName] + (biasName.map { [$0] } ?? []), outputs: [output],
                          attributes: ["epsilon": .float(epsilon)])
        }
        // Transpose -> LayerNormalization -> Transpose.
        if isTranspose(graph.nodes[next], [0, 3, 1, 2]) {
            replacements[index] = .some(nil)
            replacements[lnIndex] = .some(nil)
            replacements[next] = layerNorm(output: graph.nodes[next].outputs[0])
            return nil
        }
        // The block: LayerNormalization -> MatMul (+Add) -> activation -> MatMul (+Add) [-> Mul] -> Transpose [-> Mul].
        guard let first = linear(reading: ln.outputs[0], at: next), first.w.shape[0] == channels else {
            return "the LayerNormalization '\(ln.name)' after it is followed neither by Transpose perm [0,3,1,2] nor by a MatMul "
                + "by a constant [\(channels), H] matrix (ConvNeXt's block)"
        }
        guard let exitReader = elementwiseSubgraph(from: first.output)?.exit else {
            return "in the ConvNeXt block after it, the values after the first MatMul are not one elementwise activation "
                + "that only a second MatMul reads"
        }
        let hidden = first.w.shape[1]
        let input2 = graph.nodes[exitReader].inputs[0]
        guard let second = linear(reading: input2, at: exitReader), second.w.shape[0] == hidden else {
            return "in the ConvNeXt block after it, the second MatMul's weight is not a constant [\(hidden), C] matrix"
        }
        let outChannels = second.w.shape[1]
        var used = [index, lnIndex] + first.nodes + second.nodes
        var layerScale = [Float](repeating: 1, count: outChannels)
        var value = second.output
        if let m = soleReader(value), graph.nodes[m].opType == "Mul", graph.nodes[m].inputs.count == 2,
           let other = graph.nodes[m].inputs.first(where: { $0 != value }), graph.nodes[m].inputs.contains(value),
           let gamma = vector(other, count: outChannels) {
            layerScale = gamma
            used.append(m)
            value = graph.nodes[m].outputs[0]
        }
        guard let t2 = soleReader(value), isTranspose(graph.nodes[t2], [0, 3, 1, 2]) else {
            return "the ConvNeXt block after it does not end in Transpose perm [0,3,1,2] (after an optional per-channel Mul)"
        }
        used.append(t2)
        var output = graph.nodes[t2].outputs[0]
        if layerScale.allSatisfy({ $0 == 1 }), let m = soleReader(output), graph.nodes[m].opType == "Mul",
           graph.nodes[m].inputs.count == 2, let other = graph.nodes[m].inputs.first(where: { $0 != output }),
           graph.nodes[m].inputs.contains(output), let gamma = vector(other, count: outChannels, trailing: 2) {
            layerScale = gamma
            used.append(m)
            output = graph.nodes[m].outputs[0]
        }
        // Conv weights: w1[h, c] = W1[c, h]; w2[o, h] = gamma[o] * W2[h, o]; b2[o] = gamma[o] * B2[o].
        let (w1, w2) = (first.w.floats, second.w.floats)
        var conv1 = [Float](repeating: 0, count: hidden * channels)
        for c in 0..<channels { for h in 0..<hidden { conv1[h * channels + c] = w1[c * hidden + h] } }
        var conv2 = [Float](repeating: 0, count: outChannels * hidden)
        for h in 0..<hidden { for o in 0..<outChannels { conv2[o * hidden + h] = layerScale[o] * w2[h * outChannels + o] } }
        let base1 = graph.nodes[first.nodes[0]].name.isEmpty ? "pointwise1" : graph.nodes[first.nodes[0]].name
        let base2 = graph.nodes[second.nodes[0]].name.isEmpty ? "pointwise2" : graph.nodes[second.nodes[0]].name
        var inputs1 = [addInitializer("\(base1).weight", Tensor(shape: [hidden, channels, 1, 1], floats: conv1))]
        if let b = first.b { inputs1.append(addInitializer("\(base1).bias", Tensor(shape: [hidden], floats: b))) }
        var inputs2 = [addInitializer("\(base2).weight", Tensor(shape: [outChannels, hidden, 1, 1], floats: conv2))]
        if let b = second.b {
            let scaled = (0..<outChannels).map { layerScale[$0] * b[$0] }
            inputs2.append(addInitializer("\(base2).bias", Tensor(shape: [outChannels], floats: scaled)))
        }
        let normalized = freshName("\(ln.outputs[0]).channels_first")
        for i in used { replacements[i] = .some(nil) }
        replacements[lnIndex] = layerNorm(output: normalized)
        replacements[first.nodes.last!] = ONNXNodeProto(
            name: base1, opType: "Conv", domain: "", inputs: [normalized] + inputs1, outputs: [first.output], attributes: [:])
        // The activation's nodes stay; the second conv replaces the chain's last node.
        replacements[used.last!] = ONNXNodeProto(
            name: base2, opType: "Conv", domain: "", inputs: [input2] + inputs2, outputs: [output], attributes: [:])
        return nil
    }

    /// The constant axes of a ReduceMean (attribute before opset 18, input from 18) when they are [-1] and keepdims is 1.
    private func reducesLastAxis(_ n: ONNXNodeProto) -> Bool {
        guard n.opType == "ReduceMean", n.domain.isEmpty, (try? n.int("keepdims", default: 1)) == 1 else { return false }
        if case .ints(let axes)? = n.attributes["axes"] { return axes == [-1] }
        guard let name = n.input(1), let axes = constants[name], axes.dtype == .int64 else { return false }
        return axes.int64s == [-1]
    }

    /// The index of the node reading `value` alone, when it has op type `opType`.
    private func soleReader(_ value: String, _ opType: String) -> Int? {
        guard let r = soleReader(value), graph.nodes[r].opType == opType, graph.nodes[r].domain.isEmpty else { return nil }
        return r
    }

    /// The other input of binary node `n` that reads `value`, when it is a constant.
    private func otherConstant(_ n: Int, _ value: String) -> String? {
        let inputs = graph.nodes[n].inputs
        guard inputs.count == 2, inputs.contains(value), let other = inputs.first(where: { $0 != value }),
              constants[other] != nil else { return nil }
        return other
    }

    /// `name` when it holds a `[C]` initializer, else a new `[C]` initializer of `values`.
    private mutating func vectorInitializer(_ name: String, _ values: [Float]) -> String {
        if constants[name]?.shape == [values.count], graph.initializers.contains(where: { $0.name == name }) { return name }
        return addInitializer("\(name).vector", Tensor(shape: [values.count], floats: values))
    }

    /// Rewrites a decomposed LayerNorm whose first ReduceMean is node `index` into one `LayerNormalization`.
    mutating func liftDecomposedLayerNorm(startingAt index: Int) {
        let nodes = graph.nodes
        guard replacements[index] == nil, reducesLastAxis(nodes[index]), let x = nodes[index].inputs.first,
              let sub = soleReader(nodes[index].outputs[0], "Sub"), nodes[sub].inputs == [x, nodes[index].outputs[0]],
              !outputs.contains(nodes[sub].outputs[0]) else { return }
        let d = nodes[sub].outputs[0]
        let readersOfD = Set(readers[d] ?? [])
        guard readersOfD.count == 2, let square = readersOfD.first(where: { ["Pow", "Mul"].contains(nodes[$0].opType) }),
              let divide = readersOfD.first(where: { nodes[$0].opType == "Div" }) else { return }
        if nodes[square].opType == "Pow" {
            guard nodes[square].inputs.first == d, nodes[square].inputs.count == 2, let e = constants[nodes[square].inputs[1]],
                  e.dtype != .int64, e.shape.elementCount == 1, e.floats == [2] else { return }
        } else {
            guard nodes[square].inputs == [d, d] else { return }
        }
        guard let variance = soleReader(nodes[square].outputs[0], "ReduceMean"), reducesLastAxis(nodes[variance]),
              let shift = soleReader(nodes[variance].outputs[0], "Add"),
              let epsilonName = otherConstant(shift, nodes[variance].outputs[0]), let epsilon = constants[epsilonName],
              epsilon.shape.elementCount == 1, epsilon.dtype != .int64,
              let root = soleReader(nodes[shift].outputs[0], "Sqrt"), nodes[divide].inputs == [d, nodes[root].outputs[0]],
              let scaled = soleReader(nodes[divide].outputs[0], "Mul"),
              let scaleName = otherConstant(scaled, nodes[divide].outputs[0]), let channels = constants[scaleName]?.shape.last,
              let scale = vector(scaleName, count: channels) else { return }
        var used = [index, sub, square, variance, shift, root, divide, scaled]
        var output = nodes[scaled].outputs[0]
        var inputs = [x, vectorInitializer(scaleName, scale)]
        if let add = soleReader(output, "Add"), let biasName = otherConstant(add, output),
           let bias = vector(biasName, count: channels) {
            inputs.append(vectorInitializer(biasName, bias))
            used.append(add)
            output = nodes[add].outputs[0]
        }
        let name = nodes[divide].name.isEmpty ? output : nodes[divide].name
        for i in used { replacements[i] = .some(nil) }
        replacements[used.max()!] = ONNXNodeProto(name: name, opType: "LayerNormalization", domain: "", inputs: inputs,
                                                  outputs: [output],
                                                  attributes: ["axis": .int(-1), "epsilon": .float(epsilon.floats[0])])
    }

    /// Ops computing each element from the same element of their inputs.
    private static let elementwise: Set<String> = [
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu",
        "Softplus", "Identity", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt",
    ]

    /// The elementwise nodes reading `start` (and each other, and scalar
    /// constants) up to one `MatMul`: their indices and that MatMul's index.
    /// Nil when anything else reads them or no single MatMul ends them.
    private func elementwiseSubgraph(from start: String) -> (nodes: [Int], exit: Int?)? {
        var inside: Set<String> = [start]
        var nodes: [Int] = []
        var exit: Int? = nil
        var frontier = [start]
        while let value = frontier.popLast() {
            guard !outputs.contains(value) else { return nil }
            for r in readers[value] ?? [] where !nodes.contains(r) && r != exit {
                let n = graph.nodes[r]
                guard replacements[r] == nil, n.domain.isEmpty else { return nil }
                if n.opType == "MatMul" && n.inputs.first == value {
                    guard exit == nil else { return nil }
                    exit = r
                    continue
                }
                guard Self.elementwise.contains(n.opType), n.outputs.count == 1 else { return nil }
                for i in n.inputs where !i.isEmpty && !inside.contains(i) {
                    // A scalar constant, or a value inside the subgraph met later.
                    if let c = constants[i], c.shape.elementCount == 1, c.rank <= 4 { continue }
                    if let p = producer[i], Self.elementwise.contains(graph.nodes[p].opType) { continue }
                    return nil
                }
                nodes.append(r)
                inside.insert(n.outputs[0])
                frontier.append(n.outputs[0])
            }
        }
        // Every non-constant input of the subgraph's nodes must come from inside it.
        for r in nodes {
            for i in graph.nodes[r].inputs where !i.isEmpty && !inside.contains(i) && constants[i] == nil { return nil }
        }
        return (nodes, exit)
    }
}

extension ImportContext {
    /// `LayerNormalization` over the features of a `[N, F]` value (axis 1 or
    /// -1); the stash outputs Mean and InvStdDev must be unused. Over the
    /// channels of an NCHW value it is imported only as ConvNeXt's
    /// channels-last chain (`foldingChannelsLastLayerNorms`).
    mutating func convertLayerNormalization(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        try n.onlyAttributes(["axis", "epsilon", "stash_type"])
        if n.outputs.dropFirst().contains(where: { !$0.isEmpty && readers[$0, default: 0] > 0 }) {
            throw UnsupportedFeature("the Mean and InvStdDev outputs (training statistics) are used")
        }
        let x = try dynamic(n.inputs[0])
        let axis = try n.int("axis", default: -1)
        guard x.rank == 2, axis == 1 || axis == -1 else {
            throw UnsupportedFeature("axis \(axis) of a \(x.rank)-D value: supported are the features of a 2-D value, and the "
                                     + "channels of an NCHW value as Transpose perm [0,2,3,1] -> LayerNormalization (axis -1) -> "
                                     + "Transpose perm [0,3,1,2] or ConvNeXt's block between such Transposes")
        }
        try emitLayerNorm(n, x, epsilon: try n.float("epsilon", default: 1e-5))
    }

    /// The LayerNorm over the channels of an NCHW value that `foldingChannelsLastLayerNorms` wrote,
    /// or the channels-last Transpose it could not fold (refused with its reason).
    mutating func convertChannelLayerNorm(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        if n.opType == unfoldableTransposeOpType {
            throw UnsupportedFeature((try? n.string("reason", default: "")) ?? "", opType: "Transpose")
        }
        do throws(UnsupportedFeature) {
            let x = try dynamic(n.inputs[0])
            guard x.rank == 4 else { throw UnsupportedFeature("a channels-last LayerNormalization of a \(x.rank)-D value (needs NCHW)") }
            try emitLayerNorm(n, x, epsilon: try n.float("epsilon", default: 1e-5))
        } catch {
            // Errors name the op the file holds.
            throw UnsupportedFeature(error.reason, node: error.node, opType: error.opType ?? "LayerNormalization")
        }
    }

    private mutating func emitLayerNorm(_ n: ONNXNodeProto, _ x: DynamicValue, epsilon: Float) throws(UnsupportedFeature) {
        var inputs = [x]
        for (i, role) in [(1, "scale"), (2, "bias")] {
            guard let name = n.input(i) else { continue }
            let c = try constant(name, "the \(role)")
            guard c.shape == [x.shape[1]] else { throw UnsupportedFeature("\(role) of shape \(c.shape) (needs [\(x.shape[1])])") }
            inputs.append(DynamicValue(name: materialize(name, c.tensor), shape: c.shape, altShape: c.shape))
        }
        define(n.outputs[0], .dynamic(try emit(.layerNorm(epsilon: epsilon), inputs, output: n.outputs[0])))
    }
}
