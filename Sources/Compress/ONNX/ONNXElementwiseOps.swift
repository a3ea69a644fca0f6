/// Activations, arithmetic, Concat, Softmax and the ops that vanish at
/// inference (Identity, Dropout).
extension ImportContext {
    /// Relu, LeakyRelu, Sigmoid, Tanh.
    mutating func convertUnary(_ n: ONNXNodeProto, _ op: Op) throws(UnsupportedFeature) {
        define(n.outputs[0], .dynamic(try emit(op, [try dynamic(n.inputs[0])], output: n.outputs[0])))
    }

    /// `Clip` to [0, 6] (ReLU6) or [0, ∞) (ReLU); min/max are attributes before opset 11, inputs from 11.
    mutating func convertClip(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        var low: Float = -.greatestFiniteMagnitude, high: Float = .greatestFiniteMagnitude
        if opset < 11 {
            low = try n.float("min", default: low); high = try n.float("max", default: high)
        } else {
            if let c = try optionalConstant(n, 1, "Clip min") { low = c.tensor.floats.first ?? low }
            if let c = try optionalConstant(n, 2, "Clip max") { high = c.tensor.floats.first ?? high }
        }
        let op: Op
        switch (low, high) {
        case (0, 6): op = .relu6
        case (0, let h) where h >= .greatestFiniteMagnitude: op = .relu
        default:
            let describe = { (v: Float) in abs(v) >= .greatestFiniteMagnitude ? "none" : "\(v)" }
            throw UnsupportedFeature("Clip(min=\(describe(low)), max=\(describe(high))): only min 0 with max 6 or no max is supported")
        }
        try convertUnary(n, op)
    }

    /// `HardSigmoid` (alpha, beta), `HardSwish`, `Gelu` (approximate "none" or "tanh").
    mutating func convertSmoothActivation(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let op: Op
        switch n.opType {
        case "HardSigmoid":
            try n.onlyAttributes(["alpha", "beta"])
            op = .hardSigmoid(alpha: try n.float("alpha", default: 0.2), beta: try n.float("beta", default: 0.5))
        case "HardSwish":
            try n.onlyAttributes([])
            op = .hardSwish
        default:
            try n.onlyAttributes(["approximate"])
            switch try n.string("approximate", default: "none") {
            case "none": op = .gelu(tanhApproximation: false)
            case "tanh": op = .gelu(tanhApproximation: true)
            case let other: throw UnsupportedFeature("Gelu approximate=\"\(other)\" (only \"none\" and \"tanh\" exist)")
            }
        }
        try convertUnary(n, op)
    }

    /// Add, Sub, Mul, Div: folded when both operands are constant; an Add of
    /// a constant bias to a bias-free Linear (from MatMul or Gemm) becomes its bias.
    mutating func convertBinary(_ n: ONNXNodeProto, _ op: Op) throws(UnsupportedFeature) {
        let a = try value(n.inputs[0]), b = try value(n.inputs[1])
        if case .constant(let x) = a, case .constant(let y) = b {
            define(n.outputs[0], .constant(try foldBinary(op, x, y)))
            return
        }
        if op == .add, try fuseBias(n, a, b) { return }
        let operands = [try operand(n.inputs[0]), try operand(n.inputs[1])]
        define(n.outputs[0], .dynamic(try emit(op, operands, output: n.outputs[0])))
    }

    /// Turns `Add(linear(x, W), c)` (either order) with `c` of shape [out] or
    /// [1, out] into `linear(x, W, c)` when the Linear's output has no other reader.
    private mutating func fuseBias(_ n: ONNXNodeProto, _ a: ImportValue, _ b: ImportValue) throws(UnsupportedFeature) -> Bool {
        let (dynamicIndex, bias): (Int, FoldedConstant)
        switch (a, b) {
        case (.dynamic, .constant(let c)): (dynamicIndex, bias) = (0, c)
        case (.constant(let c), .dynamic): (dynamicIndex, bias) = (1, c)
        default: return false
        }
        guard case .dynamic(let d) = dynamicIndex == 0 ? a : b, d.name == n.inputs[dynamicIndex],
              hasSingleReader(d.name),
              let index = nodes.lastIndex(where: { $0.output == d.name }), nodes[index].op == .linear,
              nodes[index].inputs.count == 2, bias.tags == nil, let width = d.shape.last,
              bias.shape == [width] || bias.shape == [1, width] else { return false }
        let biasName = materialize(n.inputs[1 - dynamicIndex], try! bias.tensor.asFloat32().reshaped([width]))
        nodes[index].inputs.append(biasName)
        nodes[index].output = n.outputs[0]
        usedNames.insert(n.outputs[0]); irNames.insert(n.outputs[0])
        define(n.outputs[0], .dynamic(DynamicValue(name: n.outputs[0], shape: d.shape, altShape: d.altShape)))
        return true
    }

    /// `Concat`: folded when every input is constant.
    mutating func convertConcat(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let inputs = n.inputs.filter { !$0.isEmpty }
        var constants: [FoldedConstant] = []
        for name in inputs { if case .constant(let c) = try value(name) { constants.append(c) } }
        let rank = try valueShape(inputs[0]).count
        let axis = try normalizedAxis(try n.int("axis", default: 0), rank: rank)
        if constants.count == inputs.count {
            define(n.outputs[0], .constant(try foldConcat(constants, axis: axis)))
            return
        }
        var operands: [DynamicValue] = []
        for name in inputs { operands.append(try operand(name)) }
        define(n.outputs[0], .dynamic(try emit(.concat(axis: axis), operands, output: n.outputs[0])))
    }

    /// `Softmax`. From opset 13 it works along `axis` (default -1). Before, it
    /// flattens the input to 2-D at `axis` (default 1) and normalizes each row:
    /// the same along the last axis; otherwise imported as Flatten, Softmax, Reshape.
    mutating func convertSoftmax(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let x = try dynamic(n.inputs[0])
        let axis = try normalizedAxis(try n.int("axis", default: opset < 13 ? 1 : -1), rank: x.rank)
        if opset >= 13 || axis == x.rank - 1 {
            define(n.outputs[0], .dynamic(try emit(.softmax(axis: axis), [x], output: n.outputs[0])))
            return
        }
        let flat = try emit(.flatten(axis: axis), [x], output: intermediate(n.outputs[0], "flat"), suffix: "flatten")
        let normalized = try emit(.softmax(axis: 1), [flat], output: intermediate(n.outputs[0], "softmax"), suffix: "softmax")
        let back = try emit(.reshape(shape: [-1] + x.shape.dropFirst()), [normalized], output: n.outputs[0], suffix: "reshape")
        define(n.outputs[0], .dynamic(back))
    }

    /// `Identity`: readers are rewired to its input.
    mutating func convertIdentity(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        define(n.outputs[0], try value(n.inputs[0]))
    }

    /// `Dropout` at inference is the identity; training mode and a used mask are unsupported.
    mutating func convertDropout(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        if opset >= 12, let training = try optionalConstant(n, 2, "Dropout training_mode"), training.ints.first != 0 {
            throw UnsupportedFeature("training mode")
        }
        if n.outputs.count > 1, !n.outputs[1].isEmpty, readers[n.outputs[1], default: 0] > 0 {
            throw UnsupportedFeature("the mask output is used")
        }
        try convertIdentity(n)
    }
}
