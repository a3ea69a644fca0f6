/// A slow, obviously correct evaluator: plain loops over arrays, accumulating
/// in `Double`, one function per op. Every fast kernel is checked against it.
///
/// Values are computed in graph order and kept by name until the end; nothing
/// is fused, folded or reused.
public enum ReferenceEvaluator {
    /// Evaluates `graph` on `inputs` (by graph input name, each `[N] + sampleShape`)
    /// and returns every graph output by name. No normalization is applied.
    ///
    /// - Throws: `RuntimeError` for missing, non-float or wrongly shaped inputs;
    ///   `GraphError` when the graph itself is invalid.
    public static func run(_ graph: Graph, inputs: [String: Tensor]) throws -> [String: Tensor] {
        let batch = try graph.validatedBatchSize(of: inputs)
        _ = try graph.inferShapes(batch: batch)
        var values: [String: Tensor] = graph.initializers.mapValues { $0.asFloat32() }
        for input in graph.inputs { values[input.name] = inputs[input.name]?.asFloat32() }
        for node in try graph.topologicallySorted().nodes {
            let args = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            values[node.output] = evaluate(node, args)
        }
        var outputs: [String: Tensor] = [:]
        for name in graph.outputs { outputs[name] = values[name] }
        return outputs
    }

    /// Normalizes `input` (pixels in [0, 1], `[N] + model.inputShape`) with the
    /// model's normalization, evaluates the graph and returns its first output.
    public static func run(model: Model, input: Tensor) throws -> Tensor {
        let name = try model.firstInputName()
        var x = input
        if let normalization = model.metadata.normalization, input.dtype == .float32 || input.dtype == .float16 {
            x = try normalize(input.asFloat32(), normalization)
        }
        let outputs = try run(model.graph, inputs: [name: x])
        return outputs[model.graph.outputs[0]]!
    }

    /// `(x - mean[c]) / std[c]` for channel `c` = axis 1.
    static func normalize(_ x: Tensor, _ n: Normalization) throws -> Tensor {
        let channels = x.rank >= 2 ? x.shape[1] : 1
        _ = try n.perChannel(channels: channels)
        let inner = x.rank >= 2 ? x.shape[2...].reduce(1, *) : 1
        var out = x.floats
        for i in out.indices {
            let c = (i / inner) % channels
            let mean = n.mean.count == 1 ? n.mean[0] : n.mean[c]
            let std = n.std.count == 1 ? n.std[0] : n.std[c]
            out[i] = (out[i] - mean) / std
        }
        return Tensor(shape: x.shape, floats: out)
    }

    /// One node on already-validated arguments (`nil` for an absent optional input).
    static func evaluate(_ node: Node, _ args: [Tensor?]) -> Tensor {
        let x = args[0]!
        switch node.op {
        case .conv2d(let a): return conv2d(x, weight: args[1]!, bias: args.count > 2 ? args[2] : nil, a)
        case .linear: return linear(x, weight: args[1]!, bias: args.count > 2 ? args[2] : nil)
        case .batchNorm(let eps):
            return batchNorm(x, scale: args[1]!, bias: args[2]!, mean: args[3]!, variance: args[4]!, epsilon: eps)
        case .layerNorm(let eps): return layerNorm(x, scale: args[1]!, bias: args.count > 2 ? args[2] : nil, epsilon: eps)
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh, .dropout: return unary(node.op, x)
        case .hardSigmoid, .hardSwish, .gelu: return unary(node.op, x)
        case .quantizeDequantize(let q): return quantizeDequantize(x, q)
        case .resize(let r): return resize(x, r)
        case .convTranspose(let a): return convTranspose(x, weight: args[1]!, bias: args.count > 2 ? args[2] : nil, a)
        case .maxPool(let p): return maxPool(x, p)
        case .avgPool(let p, let countIncludePad): return avgPool(x, p, countIncludePad: countIncludePad)
        case .globalAvgPool: return globalAvgPool(x)
        case .flatten(let axis): return flatten(x, axis: axis)
        case .reshape(let shape): return reshape(x, to: shape)
        case .add, .sub, .mul, .div: return binary(node.op, x, args[1]!)
        case .concat(let axis): return concat(args.map { $0! }, axis: axis)
        case .softmax(let axis): return softmax(x, axis: axis)
        case .slice(let axis, let start, let end): return slice(x, axis: axis, range: start..<end)
        case .channelPermute(let order): return permuteChannels(x, order: order)
        }
    }
}
