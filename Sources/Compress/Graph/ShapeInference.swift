extension Graph {
    /// Checks the graph (unique names, defined inputs, arities, acyclic, outputs
    /// defined) and infers every value's shape for a batch of `batch` samples.
    /// Errors name the node and value at fault.
    public func inferShapes(batch: Int = 1) throws(GraphError) -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for input in inputs {
            guard shapes[input.name] == nil else { throw .duplicateValue(input.name) }
            shapes[input.name] = [batch] + input.sampleShape
        }
        for (name, t) in initializers {
            guard shapes[name] == nil else { throw .duplicateValue(name) }
            shapes[name] = t.shape
        }
        var names = Set<String>()
        for node in try topologicallySorted().nodes {
            guard names.insert(node.name).inserted else { throw .duplicateNodeName(node.name) }
            let (lo, hi) = node.op.arity
            guard (lo...hi).contains(node.inputs.count) else {
                let expected = lo == hi ? "\(lo)" : (hi == Int.max ? "at least \(lo)" : "\(lo) to \(hi)")
                throw .wrongInputCount(node: node.name, op: node.op.kind, expected: expected, got: node.inputs.count)
            }
            var inShapes: [[Int]] = []
            for v in node.inputs {
                guard let s = shapes[v] else { throw .undefinedValue(node: node.name, value: v) }
                inShapes.append(s)
            }
            guard shapes[node.output] == nil else { throw .duplicateValue(node.output) }
            shapes[node.output] = try node.outputShape(inputShapes: inShapes)
        }
        for o in outputs where shapes[o] == nil { throw .undefinedOutput(o) }
        return shapes
    }
}

/// Output size of a sliding window along one axis.
@inlinable
public func slidingOutputSize(input: Int, kernel: Int, stride: Int, padBefore: Int, padAfter: Int,
                              dilation: Int = 1, ceilMode: Bool = false) -> Int {
    let effective = dilation * (kernel - 1) + 1
    let span = input + padBefore + padAfter - effective
    if span < 0 { return 0 }
    var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
    // ONNX/PyTorch: the last window must start inside the input or left padding.
    if ceilMode && (out - 1) * stride >= input + padBefore { out -= 1 }
    return out
}

/// Numpy broadcasting of two shapes, or nil when they are incompatible.
public func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

extension Node {
    /// The shape this node writes, given its inputs' shapes.
    public func outputShape(inputShapes s: [[Int]]) throws(GraphError) -> [Int] {
        func mismatch(_ i: Int, _ detail: String) -> GraphError {
            .shapeMismatch(node: name, value: inputs[i], detail: detail)
        }
        switch op {
        case .conv2d(let a):
            let x = s[0], w = s[1]
            guard x.count == 4 else { throw mismatch(0, "Conv2d needs a 4-D input [N,C,H,W], got \(x)") }
            guard w.count == 4 else { throw mismatch(1, "Conv2d weight must be 4-D [O,C/groups,kh,kw], got \(w)") }
            guard a.groups >= 1, x[1] % a.groups == 0, w[0] % a.groups == 0 else {
                throw .invalidAttribute(node: name, detail: "groups \(a.groups) must divide input channels \(x[1]) and output channels \(w[0])")
            }
            guard w[1] * a.groups == x[1] else {
                throw mismatch(1, "weight \(w) expects \(w[1] * a.groups) input channels (groups \(a.groups)), input has \(x[1])")
            }
            guard a.stride.h >= 1, a.stride.w >= 1, a.dilation.h >= 1, a.dilation.w >= 1,
                  min(a.padding.top, a.padding.left, a.padding.bottom, a.padding.right) >= 0 else {
                throw .invalidAttribute(node: name, detail: "strides and dilations must be >= 1 and pads >= 0")
            }
            if s.count == 3 && s[2] != [w[0]] { throw mismatch(2, "bias must be [\(w[0])], got \(s[2])") }
            let oh = slidingOutputSize(input: x[2], kernel: w[2], stride: a.stride.h, padBefore: a.padding.top,
                                       padAfter: a.padding.bottom, dilation: a.dilation.h)
            let ow = slidingOutputSize(input: x[3], kernel: w[3], stride: a.stride.w, padBefore: a.padding.left,
                                       padAfter: a.padding.right, dilation: a.dilation.w)
            guard oh > 0, ow > 0 else { throw mismatch(0, "input \(x) is smaller than the \(w[2])x\(w[3]) kernel") }
            return [x[0], w[0], oh, ow]
        case .convTranspose(let a):
            let x = s[0], w = s[1]
            guard x.count == 4 else { throw mismatch(0, "ConvTranspose needs a 4-D input [N,C,H,W], got \(x)") }
            guard w.count == 4 else { throw mismatch(1, "ConvTranspose weight must be 4-D [C,O/groups,kh,kw], got \(w)") }
            guard a.groups >= 1, x[1] % a.groups == 0 else {
                throw .invalidAttribute(node: name, detail: "groups \(a.groups) must divide input channels \(x[1])")
            }
            guard w[0] == x[1] else { throw mismatch(1, "weight \(w) expects \(w[0]) input channels, input has \(x[1])") }
            guard a.stride.h >= 1, a.stride.w >= 1, a.dilation.h >= 1, a.dilation.w >= 1,
                  min(a.padding.top, a.padding.left, a.padding.bottom, a.padding.right) >= 0,
                  a.outputPadding.h >= 0, a.outputPadding.w >= 0,
                  a.outputPadding.h < max(a.stride.h, a.dilation.h), a.outputPadding.w < max(a.stride.w, a.dilation.w) else {
                throw .invalidAttribute(node: name, detail: "strides and dilations must be >= 1, pads >= 0, and output padding "
                                        + "\(a.outputPadding) >= 0 and below the stride or the dilation")
            }
            let o = w[1] * a.groups
            if s.count == 3 && s[2] != [o] { throw mismatch(2, "bias must be [\(o)], got \(s[2])") }
            let oh = ConvTranspose2d.outputSize(input: x[2], kernel: w[2], stride: a.stride.h, padBefore: a.padding.top,
                                                padAfter: a.padding.bottom, dilation: a.dilation.h, outputPadding: a.outputPadding.h)
            let ow = ConvTranspose2d.outputSize(input: x[3], kernel: w[3], stride: a.stride.w, padBefore: a.padding.left,
                                                padAfter: a.padding.right, dilation: a.dilation.w, outputPadding: a.outputPadding.w)
            guard oh > 0, ow > 0 else { throw mismatch(0, "padding \(a.padding) leaves no output for input \(x) and weight \(w)") }
            return [x[0], o, oh, ow]
        case .resize(let r):
            let x = s[0]
            guard x.count == 4 else { throw mismatch(0, "Resize needs a 4-D input [N,C,H,W], got \(x)") }
            guard r.scaleH > 0, r.scaleW > 0, r.scaleH.isFinite, r.scaleW.isFinite else {
                throw .invalidAttribute(node: name, detail: "scales \(r.scaleH), \(r.scaleW) must be positive")
            }
            let out = r.outputSize(h: x[2], w: x[3])
            guard out.h > 0, out.w > 0 else { throw mismatch(0, "resizing \(x) by \(r.scaleH)x\(r.scaleW) leaves no pixels") }
            return [x[0], x[1], out.h, out.w]
        case .linear:
            let x = s[0], w = s[1]
            guard x.count == 2 else { throw mismatch(0, "Linear needs a 2-D input [N,features], got \(x)") }
            guard w.count == 2, w[1] == x[1] else { throw mismatch(1, "weight must be [out, \(x[1])], got \(w)") }
            if s.count == 3 && s[2] != [w[0]] { throw mismatch(2, "bias must be [\(w[0])], got \(s[2])") }
            return [x[0], w[0]]
        case .batchNorm:
            let x = s[0]
            guard x.count >= 2 else { throw mismatch(0, "BatchNorm needs [N,C,...], got \(x)") }
            for i in 1..<5 where s[i] != [x[1]] { throw mismatch(i, "must be [\(x[1])], got \(s[i])") }
            return x
        case .layerNorm(let epsilon):
            let x = s[0]
            guard x.count >= 2 else { throw mismatch(0, "LayerNorm needs [N,C,...], got \(x)") }
            guard epsilon >= 0, epsilon.isFinite else { throw .invalidAttribute(node: name, detail: "epsilon \(epsilon) must be finite and >= 0") }
            for i in 1..<s.count where s[i] != [x[1]] { throw mismatch(i, "must be [\(x[1])], got \(s[i])") }
            return x
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh, .dropout:
            return s[0]
        case .hardSigmoid(let alpha, let beta):
            guard alpha.isFinite, beta.isFinite else {
                throw .invalidAttribute(node: name, detail: "HardSigmoid alpha \(alpha) and beta \(beta) must be finite")
            }
            return s[0]
        case .hardSwish, .gelu:
            return s[0]
        case .quantizeDequantize(let q):
            if let problem = q.problem { throw .invalidAttribute(node: name, detail: problem) }
            return s[0]
        case .maxPool(let p), .avgPool(let p, _):
            let x = s[0]
            guard x.count == 4 else { throw mismatch(0, "pooling needs a 4-D input, got \(x)") }
            guard p.kernel.h >= 1, p.kernel.w >= 1, p.stride.h >= 1, p.stride.w >= 1 else {
                throw .invalidAttribute(node: name, detail: "kernel and stride must be >= 1")
            }
            let oh = slidingOutputSize(input: x[2], kernel: p.kernel.h, stride: p.stride.h, padBefore: p.padding.top,
                                       padAfter: p.padding.bottom, dilation: p.dilation.h, ceilMode: p.ceilMode)
            let ow = slidingOutputSize(input: x[3], kernel: p.kernel.w, stride: p.stride.w, padBefore: p.padding.left,
                                       padAfter: p.padding.right, dilation: p.dilation.w, ceilMode: p.ceilMode)
            guard oh > 0, ow > 0 else { throw mismatch(0, "input \(x) is smaller than the \(p.kernel) window") }
            return [x[0], x[1], oh, ow]
        case .globalAvgPool:
            guard s[0].count >= 3 else { throw mismatch(0, "GlobalAvgPool needs [N,C,H,W], got \(s[0])") }
            return [s[0][0], s[0][1]] + [Int](repeating: 1, count: s[0].count - 2)
        case .flatten(let axis):
            let x = s[0]
            let a = axis < 0 ? axis + x.count : axis
            guard a >= 0, a <= x.count else { throw .invalidAttribute(node: name, detail: "flatten axis \(axis) out of range for \(x)") }
            return [x[..<a].reduce(1, *), x[a...].reduce(1, *)]
        case .reshape(let target):
            let x = s[0]
            var out = target
            var inferred: Int? = nil
            for (i, d) in target.enumerated() {
                if d == 0 {
                    guard i < x.count else { throw .invalidAttribute(node: name, detail: "reshape 0 at axis \(i) beyond input rank") }
                    out[i] = x[i]
                } else if d == -1 {
                    guard inferred == nil else { throw .invalidAttribute(node: name, detail: "reshape has more than one -1") }
                    inferred = i
                } else if d < -1 {
                    throw .invalidAttribute(node: name, detail: "reshape dimension \(d) is invalid")
                }
            }
            let known = out.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            let total = x.reduce(1, *)
            if let i = inferred {
                guard known > 0, total % known == 0 else { throw mismatch(0, "cannot reshape \(x) to \(target)") }
                out[i] = total / known
            }
            guard out.reduce(1, *) == total else { throw mismatch(0, "cannot reshape \(x) (\(total) elements) to \(target)") }
            return out
        case .add, .sub, .mul, .div:
            guard let out = broadcastShapes(s[0], s[1]) else {
                throw mismatch(1, "shape \(s[1]) does not broadcast with \(s[0])")
            }
            return out
        case .concat(let axis):
            let first = s[0]
            let a = axis < 0 ? axis + first.count : axis
            guard a >= 0, a < first.count else { throw .invalidAttribute(node: name, detail: "concat axis \(axis) out of range for \(first)") }
            var out = first
            for i in 1..<s.count {
                guard s[i].count == first.count,
                      (0..<first.count).allSatisfy({ $0 == a || s[i][$0] == first[$0] }) else {
                    throw mismatch(i, "shape \(s[i]) does not match \(first) outside axis \(a)")
                }
                out[a] += s[i][a]
            }
            return out
        case .slice(let axis, let start, let end):
            let x = s[0]
            let a = axis < 0 ? axis + x.count : axis
            guard a >= 0, a < x.count else { throw .invalidAttribute(node: name, detail: "slice axis \(axis) out of range for \(x)") }
            guard a > 0 else { throw .invalidAttribute(node: name, detail: "slice along axis 0, the batch, is not supported") }
            guard start >= 0, start < end, end <= x[a] else {
                throw .invalidAttribute(node: name, detail: "slice \(start)..<\(end) is empty or outside 0..<\(x[a]) along axis \(a)")
            }
            var out = x
            out[a] = end - start
            return out
        case .channelPermute(let order):
            let x = s[0]
            guard x.count >= 2 else { throw mismatch(0, "ChannelPermute needs [N,C,...], got \(x)") }
            guard order.count == x[1], Set(order).count == order.count, order.allSatisfy({ (0..<x[1]).contains($0) }) else {
                throw .invalidAttribute(node: name, detail: "channel order \(order) is not a permutation of 0..<\(x[1])")
            }
            return x
        case .softmax(let axis):
            let a = axis < 0 ? axis + s[0].count : axis
            guard a >= 0, a < s[0].count else { throw .invalidAttribute(node: name, detail: "softmax axis \(axis) out of range for \(s[0])") }
            return s[0]
        }
    }
}
