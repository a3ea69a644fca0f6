/// Flatten, Reshape, Pad and ReduceMean.
extension ImportContext {
    /// `Flatten` at `axis` (default 1; negative counts from the end).
    mutating func convertFlatten(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let shape = try valueShape(n.inputs[0])
        var axis = try n.int("axis", default: 1)
        if axis < 0 { axis += shape.count }
        guard axis >= 0 && axis <= shape.count else { throw UnsupportedFeature("axis out of range for rank \(shape.count)") }
        if case .constant(let c) = try value(n.inputs[0]) {
            define(n.outputs[0], .constant(c.reshaped([shape[..<axis].reduce(1, *), shape[axis...].reduce(1, *)])))
            return
        }
        define(n.outputs[0], .dynamic(try emit(.flatten(axis: axis), [try dynamic(n.inputs[0])], output: n.outputs[0])))
    }

    /// `Reshape` to a target known at import time. A target element read
    /// from the batch dimension (or equal to the batch when the input's first
    /// axis is the batch) becomes 0, "copy", so the model takes any batch size.
    mutating func convertReshape(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let target = try constant(n.inputs[1], "the target shape")
        let allowZero = try n.int("allowzero", default: 0) != 0
        let values = target.ints
        if allowZero && values.contains(0) { throw UnsupportedFeature("allowzero=1 with a 0 in the target \(values)") }
        if case .constant(let c) = try value(n.inputs[0]) {
            let probe = Node(name: current, op: .reshape(shape: values), inputs: [n.inputs[0]], output: n.outputs[0])
            guard let shape = try? probe.outputShape(inputShapes: [c.shape]) else {
                throw UnsupportedFeature("cannot reshape constant \(c.shape) to \(values)")
            }
            define(n.outputs[0], .constant(c.reshaped(shape)))
            return
        }
        let x = try dynamic(n.inputs[0])
        let batchAxis = hasBatchAxis(x)
        var shape: [Int] = []
        for (i, v) in values.enumerated() {
            switch target.tag(i) {
            case .batch:
                guard i == 0 && batchAxis else { throw UnsupportedFeature("target \(values) moves the batch dimension to axis \(i)") }
                shape.append(0)
            case .derived: throw UnsupportedFeature("target element \(i) depends on the batch size")
            case .fixed: shape.append(i == 0 && batchAxis && v == x.shape[0] ? 0 : v)
            }
        }
        let probe = Node(name: current, op: .reshape(shape: shape), inputs: [x.name], output: n.outputs[0])
        if batchAxis, let resolved = try? probe.outputShape(inputShapes: [x.shape]), resolved.first != x.shape[0] {
            throw UnsupportedFeature("target \(values) does not keep dimension 0 of \(x.shape) as the batch")
        }
        define(n.outputs[0], .dynamic(try emit(.reshape(shape: shape), [x], output: n.outputs[0])))
    }

    /// `Pad` in constant mode with zeros on the spatial axes of a 4-D value:
    /// kept pending for a following Conv or AveragePool to absorb. Pads are an
    /// attribute before opset 11 and an input from 11 (with `axes` from 18).
    mutating func convertPad(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let mode = try n.string("mode", default: "constant")
        guard mode == "constant" else { throw UnsupportedFeature("\(mode) mode (only constant zero padding is supported)") }
        var pads: [Int], fill: Float = 0, axes: [Int]? = nil
        if opset < 11 {
            pads = try n.ints("pads") ?? []
            fill = try n.float("value", default: 0)
        } else {
            pads = try constant(n.inputs[1], "pads").ints
            if let v = try optionalConstant(n, 2, "the constant value") { fill = v.tensor.floats.first ?? 0 }
            axes = try optionalConstant(n, 3, "axes")?.ints
        }
        let x = try dynamic(n.inputs[0])
        let full = try expandedPads(pads, axes: axes, rank: x.rank)
        if full.allSatisfy({ $0 == 0 }) {
            define(n.outputs[0], .dynamic(x))
            return
        }
        guard fill == 0 else { throw UnsupportedFeature("constant value \(fill) (only 0 is supported)") }
        guard x.rank == 4, full.allSatisfy({ $0 >= 0 }), full[0] == 0, full[1] == 0, full[4] == 0, full[5] == 0 else {
            throw UnsupportedFeature("pads \(full) on a \(x.rank)-D value (only non-negative H/W pads of a 4-D value are supported)")
        }
        let padding = Padding2(top: full[2], left: full[3], bottom: full[6], right: full[7])
        var padded = x
        padded.shape[2] += padding.top + padding.bottom; padded.shape[3] += padding.left + padding.right
        padded.altShape = padded.altShape.map { s in [s[0], s[1], padded.shape[2], padded.shape[3]] }
        define(n.outputs[0], .padded(PendingPad(source: x, padding: padding, node: current, padded: padded)))
    }

    /// `pads` for the listed `axes` spread over all `rank` axes: [begin…, end…].
    private func expandedPads(_ pads: [Int], axes: [Int]?, rank: Int) throws(UnsupportedFeature) -> [Int] {
        var list: [Int] = []
        for a in axes ?? Array(0..<rank) { list.append(try normalizedAxis(a, rank: rank)) }
        guard pads.count == 2 * list.count else { throw UnsupportedFeature("pads \(pads) do not match \(list.count) axes") }
        var full = [Int](repeating: 0, count: 2 * rank)
        for (k, a) in list.enumerated() { full[a] = pads[k]; full[rank + a] = pads[list.count + k] }
        return full
    }

    /// `ReduceMean` over the spatial axes [2, 3] of a 4-D value: GlobalAveragePool
    /// (then Flatten when keepdims=0). Axes are an attribute before opset 18, an input from 18.
    mutating func convertReduceMean(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let given = opset < 18 ? try n.ints("axes") : try optionalConstant(n, 1, "axes")?.ints
        let x = try dynamic(n.inputs[0])
        var axes = Set<Int>()
        for a in given ?? [] { axes.insert(try normalizedAxis(a, rank: x.rank)) }
        guard x.rank == 4, axes == [2, 3] else {
            throw UnsupportedFeature("mean over axes \(given.map { "\($0)" } ?? "all") of a \(x.rank)-D value (only [2, 3] of 4-D is supported)")
        }
        if try n.int("keepdims", default: 1) != 0 {
            define(n.outputs[0], .dynamic(try emit(.globalAvgPool, [x], output: n.outputs[0])))
            return
        }
        let pooled = try emit(.globalAvgPool, [x], output: intermediate(n.outputs[0], "pooled"), suffix: "pool")
        define(n.outputs[0], .dynamic(try emit(.flatten(axis: 1), [pooled], output: n.outputs[0], suffix: "flatten")))
    }
}
