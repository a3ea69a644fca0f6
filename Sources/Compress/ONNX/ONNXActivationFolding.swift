/// Folds activations that exporters write as several elementwise nodes back
/// into the one node the importer converts, before conversion:
///
/// - GELU (Hendrycks & Gimpel 2016) as PyTorch writes it below opset 20,
///   `x * 0.5 * (1 + Erf(x / √2))`: `Div(x, √2)` (or `Mul(x, 1/√2)`) → `Erf`
///   → `Add(1)`, then the product of x, 0.5 and that sum in any of the three
///   groupings (`(x · s) · 0.5`, `(x · 0.5) · s`, `x · (s · 0.5)`; `· 0.5` may
///   be `/ 2`), operands in either order → `Gelu`; the same with
///   `Tanh(√(2/π)·(x + 0.044715·x³))` (x³ as `Pow(x, 3)` or `x·x·x`) for
///   `Erf` → `Gelu` with approximate="tanh".
/// - The hard swish and hard sigmoid of MobileNetV3 and GhostNet (Howard et al.
///   2019) written out: `Clip(x + 3, 0, 6)` (PyTorch's `relu6(x + 3)`) then
///   `/ 6` (or `· 1/6`) → `HardSigmoid(alpha 1/6, beta 1/2)`; that times x, in
///   either grouping (`x · (clip / 6)` or `(x · clip) / 6`) → `HardSwish`;
///   `Clip(alpha·x + beta, 0, 1)` (`x · alpha` or `x / d`, then `+ beta`) →
///   `HardSigmoid(alpha, beta)`, times x with alpha 1/6 and beta 1/2 → `HardSwish`;
///   and `x · HardSigmoid(x; 1/6, 1/2)` (PyTorch's hardswish below opset 14) → `HardSwish`.
///
/// Every intermediate value must have the pattern's node as its only reader
/// and be no graph output; constants are scalar initializers or `Constant`
/// nodes, matched within 1e-6 relative. Anything else is left alone (a lone
/// `Erf` is then reported as unsupported).
func foldingDecomposedActivations(_ graph: ONNXGraphProto, opset: Int) -> ONNXGraphProto {
    var folding = ActivationFolding(graph, opset: opset)
    folding.foldGELUs()
    folding.foldHardSwishes()
    var g = graph
    g.nodes = folding.nodes.compactMap { $0 }
    return g
}

private struct ActivationFolding {
    /// The graph's nodes; a folded pattern leaves nil where its inner nodes were.
    var nodes: [ONNXNodeProto?]
    let opset: Int
    /// Values holding one float: single-element initializers and `Constant` outputs.
    let scalars: [String: Float]
    /// Reader count of each value (graph outputs count as readers).
    let readers: [String: Int]
    /// Index of the node writing each value.
    let producers: [String: Int]

    init(_ graph: ONNXGraphProto, opset: Int) {
        nodes = graph.nodes
        self.opset = opset
        var scalars: [String: Float] = [:]
        for (name, t) in graph.initializers where t.count == 1 && [.float32, .float16].contains(t.dtype) {
            scalars[name] = t.floats[0]
        }
        var readers: [String: Int] = [:], producers: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() {
            for input in n.inputs where !input.isEmpty { readers[input, default: 0] += 1 }
            for output in n.outputs { producers[output] = i }
            guard n.opType == "Constant", n.domain.isEmpty, let output = n.outputs.first else { continue }
            switch n.attributes["value"] ?? n.attributes["value_float"] {
            case .tensor(let t)? where t.count == 1 && [.float32, .float16].contains(t.dtype): scalars[output] = t.floats[0]
            case .float(let f)?: scalars[output] = f
            default: break
            }
        }
        for o in graph.outputs { readers[o.name, default: 0] += 1 }
        self.scalars = scalars; self.readers = readers; self.producers = producers
    }

    // MARK: Matching

    /// The node at `index` when it is a live default-domain node of `opType`.
    func node(_ index: Int?, _ opType: String) -> ONNXNodeProto? {
        guard let index, let n = nodes[index], n.opType == opType, n.domain.isEmpty || n.domain == "ai.onnx" else { return nil }
        return n
    }

    /// The index of the only node reading `value` (no graph output), else nil.
    func soleReader(of value: String) -> Int? {
        guard readers[value] == 1 else { return nil }
        return nodes.indices.first { nodes[$0]?.inputs.contains(value) == true }
    }

    /// True when `value` is a scalar constant within 1e-6 relative of `target`.
    func isScalar(_ value: String, _ target: Float) -> Bool {
        guard let v = scalars[value] else { return false }
        return abs(v - target) <= 1e-6 * abs(target)
    }

    /// For a binary node with one operand `known`, the other operand.
    func other(_ n: ONNXNodeProto, than known: String) -> String? {
        guard n.inputs.count == 2 else { return nil }
        if n.inputs[0] == known { return n.inputs[1] }
        if n.inputs[1] == known { return n.inputs[0] }
        return nil
    }

    /// The index of the node reading `value` (its only reader) that multiplies
    /// it by `factor` (either operand order) or divides it by `1 / factor`.
    func scaling(_ value: String, by factor: Float) -> Int? {
        guard let r = soleReader(of: value) else { return nil }
        if let m = node(r, "Mul"), let c = other(m, than: value), isScalar(c, factor) { return r }
        if let d = node(r, "Div"), d.inputs.count == 2, d.inputs[0] == value, isScalar(d.inputs[1], 1 / factor) { return r }
        return nil
    }

    /// The index of the node reading `value` (its only reader) that multiplies it by `x`, either order.
    func product(_ value: String, with x: String) -> Int? {
        guard let r = soleReader(of: value), let m = node(r, "Mul"), other(m, than: value) == x else { return nil }
        return r
    }

    /// Replaces the node at `last` with `opType(x)` writing its output, and
    /// removes the other nodes of the pattern.
    mutating func replace(_ inner: [Int], last: Int, opType: String, x: String,
                          attributes: [String: ONNXAttribute] = [:]) {
        let final = nodes[last]!
        for i in inner { nodes[i] = nil }
        nodes[last] = ONNXNodeProto(name: final.name, opType: opType, domain: "", inputs: [x],
                                    outputs: [final.outputs[0]], attributes: attributes)
    }

    // MARK: GELU

    mutating func foldGELUs() {
        for e in nodes.indices {
            if let erf = node(e, "Erf"), erf.inputs.count == 1, let t = producers[erf.inputs[0]],
               readers[erf.inputs[0]] == 1, let (x, divide) = geluArgument(t) {
                foldGELUTail(x: x, core: e, inner: [divide, e], attributes: [:])
            } else if let tanh = node(e, "Tanh"), tanh.inputs.count == 1, let (x, inner) = tanhArgument(tanh.inputs[0]) {
                foldGELUTail(x: x, core: e, inner: inner + [e], attributes: ["approximate": .string("tanh")])
            }
        }
    }

    /// Given `core` (the Erf or Tanh of GELU's argument of x) and the nodes
    /// computing it (`inner`), folds `Add(core, 1)` times x and 0.5 into one `Gelu`.
    mutating func foldGELUTail(x: String, core: Int, inner: [Int], attributes: [String: ONNXAttribute]) {
        let coreOutput = nodes[core]!.outputs[0]
        guard let a = soleReader(of: coreOutput), let add = node(a, "Add"),
              let one = other(add, than: coreOutput), isScalar(one, 1) else { return }
        let sum = add.outputs[0]
        guard let r = soleReader(of: sum), let m = node(r, "Mul"), let factor = other(m, than: sum) else { return }
        if factor == x, let last = scaling(m.outputs[0], by: 0.5) {
            // (x · s) · 0.5
            replace(inner + [a, r], last: last, opType: "Gelu", x: x, attributes: attributes)
        } else if isScalar(factor, 0.5), let last = product(m.outputs[0], with: x) {
            // x · (s · 0.5)
            replace(inner + [a, r], last: last, opType: "Gelu", x: x, attributes: attributes)
        } else if let h = producers[factor], readers[factor] == 1, let half = node(h, "Mul"),
                  let scaled = other(half, than: x), isScalar(scaled, 0.5) {
            // (x · 0.5) · s
            replace(inner + [h, a], last: r, opType: "Gelu", x: x, attributes: attributes)
        }
    }

    /// For `value` = √(2/π)·(x + 0.044715·x³), with x³ as `Pow(x, 3)` or
    /// `Mul(Mul(x, x), x)`, every intermediate read once: x and the nodes computing it.
    func tanhArgument(_ value: String) -> (String, [Int])? {
        guard readers[value] == 1, let u = producers[value], let scale = node(u, "Mul"), scale.inputs.count == 2 else { return nil }
        let c = Float((2 / Double.pi).squareRoot())
        let sum: String
        if isScalar(scale.inputs[1], c) { sum = scale.inputs[0] } else if isScalar(scale.inputs[0], c) { sum = scale.inputs[1] } else { return nil }
        guard readers[sum] == 1, let s = producers[sum], let add = node(s, "Add"), add.inputs.count == 2 else { return nil }
        for (x, cubic) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
            guard readers[cubic] == 1, let k = producers[cubic], let times = node(k, "Mul"), times.inputs.count == 2 else { continue }
            let cube: String
            if isScalar(times.inputs[1], 0.044715) { cube = times.inputs[0] } else if isScalar(times.inputs[0], 0.044715) { cube = times.inputs[1] } else { continue }
            guard readers[cube] == 1, let p = producers[cube] else { continue }
            if let pow = node(p, "Pow"), pow.inputs.count == 2, pow.inputs[0] == x, isScalar(pow.inputs[1], 3) {
                return (x, [p, k, s, u])
            }
            if let outer = node(p, "Mul"), let square = other(outer, than: x), readers[square] == 1,
               let q = producers[square], let inner = node(q, "Mul"), inner.inputs == [x, x] {
                return (x, [q, p, k, s, u])
            }
        }
        return nil
    }

    /// For the node at `index` computing x/√2 (`Div(x, √2)` or `Mul(x, 1/√2)`), x and the index.
    func geluArgument(_ index: Int) -> (String, Int)? {
        if let d = node(index, "Div"), d.inputs.count == 2, isScalar(d.inputs[1], Float(2).squareRoot()) {
            return (d.inputs[0], index)
        }
        if let m = node(index, "Mul"), m.inputs.count == 2 {
            let inverse = 1 / Float(2).squareRoot()
            if isScalar(m.inputs[1], inverse) { return (m.inputs[0], index) }
            if isScalar(m.inputs[0], inverse) { return (m.inputs[1], index) }
        }
        return nil
    }

    // MARK: Hard swish and hard sigmoid

    mutating func foldHardSwishes() {
        for a in nodes.indices {
            guard let add = node(a, "Add"), add.inputs.count == 2 else { continue }
            let x: String
            if isScalar(add.inputs[1], 3) { x = add.inputs[0] } else if isScalar(add.inputs[0], 3) { x = add.inputs[1] } else { continue }
            guard let c = soleReader(of: add.outputs[0]), let clip = node(c, "Clip"), clipBounds(clip).map({ $0 == (0, 6) }) == true else { continue }
            let clipped = clip.outputs[0]
            if let g = scaling(clipped, by: 1 / 6) {
                if let last = product(nodes[g]!.outputs[0], with: x) {
                    // x · (clip / 6)
                    replace([a, c, g], last: last, opType: "HardSwish", x: x)
                } else {
                    // clip / 6
                    replace([a, c], last: g, opType: "HardSigmoid", x: x,
                            attributes: ["alpha": .float(1 / 6), "beta": .float(0.5)])
                }
            } else if let m = product(clipped, with: x), let last = scaling(nodes[m]!.outputs[0], by: 1 / 6) {
                // (x · clip) / 6
                replace([a, c, m], last: last, opType: "HardSwish", x: x)
            }
        }
        for c in nodes.indices {
            guard let clip = node(c, "Clip"), clipBounds(clip).map({ $0 == (0, 1) }) == true, let (x, alpha, beta, inner) = affineArgument(clip.inputs[0])
            else { continue }
            if abs(alpha - 1 / 6) <= 1e-6, abs(beta - 0.5) <= 1e-6, let last = product(clip.outputs[0], with: x) {
                // x · Clip(x/6 + 1/2, 0, 1)
                replace(inner + [c], last: last, opType: "HardSwish", x: x)
            } else {
                // Clip(alpha·x + beta, 0, 1)
                replace(inner, last: c, opType: "HardSigmoid", x: x, attributes: ["alpha": .float(alpha), "beta": .float(beta)])
            }
        }
        for h in nodes.indices {
            guard let hs = node(h, "HardSigmoid"), hs.inputs.count == 1,
                  (try? hs.float("alpha", default: 0.2)).map({ abs($0 - 1 / 6) <= 1e-6 }) == true,
                  (try? hs.float("beta", default: 0.5)) == 0.5,
                  let last = product(hs.outputs[0], with: hs.inputs[0]) else { continue }
            // x · HardSigmoid(x; 1/6, 1/2)
            replace([h], last: last, opType: "HardSwish", x: hs.inputs[0])
        }
    }

    /// A `Clip`'s constant bounds (attributes before opset 11, inputs from 11;
    /// an absent bound is infinite), nil when a bound is not a scalar constant.
    func clipBounds(_ clip: ONNXNodeProto) -> (Float, Float)? {
        if opset < 11 {
            guard let low = try? clip.float("min", default: -.infinity), let high = try? clip.float("max", default: .infinity)
            else { return nil }
            return (low, high)
        }
        var bounds: (Float, Float) = (-.infinity, .infinity)
        if let low = clip.input(1) { guard let v = scalars[low] else { return nil }; bounds.0 = v }
        if let high = clip.input(2) { guard let v = scalars[high] else { return nil }; bounds.1 = v }
        return bounds
    }

    /// For `value` = alpha·x + beta written as `Add(Mul(x, alpha), beta)` or
    /// `Add(Div(x, d), beta)` (operands of Add and Mul in either order, the
    /// intermediate read once, `value` read once): x, alpha, beta and the two nodes.
    func affineArgument(_ value: String) -> (String, Float, Float, [Int])? {
        guard readers[value] == 1, let a = producers[value], let add = node(a, "Add"), add.inputs.count == 2 else { return nil }
        for (scaled, offset) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
            guard let beta = scalars[offset], readers[scaled] == 1, let m = producers[scaled] else { continue }
            if let mul = node(m, "Mul"), mul.inputs.count == 2 {
                if let alpha = scalars[mul.inputs[1]], scalars[mul.inputs[0]] == nil { return (mul.inputs[0], alpha, beta, [m, a]) }
                if let alpha = scalars[mul.inputs[0]], scalars[mul.inputs[1]] == nil { return (mul.inputs[1], alpha, beta, [m, a]) }
            }
            if let div = node(m, "Div"), div.inputs.count == 2, let d = scalars[div.inputs[1]], d != 0, scalars[div.inputs[0]] == nil {
                return (div.inputs[0], 1 / d, beta, [m, a])
            }
        }
        return nil
    }
}
