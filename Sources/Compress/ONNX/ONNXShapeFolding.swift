/// Folding at import time: `Constant` nodes and the shape-computation chains
/// older exporters emit around `Reshape` (`Shape`, `Gather`, `Unsqueeze`,
/// `Squeeze`, `Slice`, `Concat`, `Cast`, arithmetic) become constants, given the
/// static input shapes. Elements read from the batch dimension keep a
/// `BatchTag`, so a `Reshape` target can copy the batch instead of fixing it.
extension ImportContext {
    /// `Constant`: value, value_float(s), value_int(s).
    mutating func convertConstant(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let tensor: Tensor
        switch (n.attributes.keys.first, n.attributes.values.first) {
        case ("value"?, .tensor(let t)?): tensor = t
        case ("value_float"?, .float(let f)?): tensor = Tensor(shape: [], floats: [f])
        case ("value_floats"?, .floats(let v)?): tensor = Tensor(shape: [v.count], floats: v)
        case ("value_int"?, .int(let i)?): tensor = Tensor(shape: [], int64s: [i])
        case ("value_ints"?, .ints(let v)?): tensor = Tensor(shape: [v.count], int64s: v)
        default:
            throw UnsupportedFeature("only value, value_float(s) and value_int(s) are supported, got \(n.attributes.keys.sorted())")
        }
        define(n.outputs[0], .constant(FoldedConstant(tensor)))
    }

    /// `Shape` of any value with a static shape; the batch dimension is tagged.
    mutating func convertShape(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let (shape, tags): ([Int], [BatchTag])
        switch try value(n.inputs[0]) {
        case .constant(let c): (shape, tags) = (c.shape, c.shape.map { _ in .fixed })
        case .dynamic(let d): (shape, tags) = (d.shape, batchTags(d))
        case .padded(let p): (shape, tags) = (p.padded.shape, batchTags(p.padded))
        case .failed: throw UnsupportedFeature("input comes from an unsupported node")
        }
        let rank = shape.count
        func clampAxis(_ a: Int) -> Int { min(max(a < 0 ? a + rank : a, 0), rank) }
        let start = clampAxis(try n.int("start", default: 0)), end = clampAxis(try n.int("end", default: rank))
        let range = start..<max(start, end)
        define(n.outputs[0], .constant(FoldedConstant(Tensor(shape: [range.count], int64s: shape[range].map { Int64($0) }),
                                                      tags: Array(tags[range]))))
    }

    /// `Gather` of constant data with constant indices (of channels: `convertChannelGather`).
    mutating func convertGather(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        if case .dynamic(let x) = try value(n.inputs[0]) { return try convertChannelGather(of: x, n) }
        let data = try constant(n.inputs[0], "Gather data")
        let indices = try constant(n.inputs[1], "Gather indices")
        let axis = try normalizedAxis(try n.int("axis", default: 0), rank: data.shape.count)
        let dim = data.shape[axis]
        var picked: [Int] = []
        for i in indices.ints {
            guard i >= -dim && i < dim else { throw UnsupportedFeature("index \(i) out of range for dimension \(dim)") }
            picked.append(i < 0 ? i + dim : i)
        }
        var picks = data.shape.map { Array(0..<$0) }
        picks[axis] = picked
        let shape = Array(data.shape[..<axis]) + indices.shape + Array(data.shape[(axis + 1)...])
        define(n.outputs[0], .constant(data.gathering(selectedIndices(shape: data.shape, picks: picks), shape: shape)))
    }

    /// `Slice` of a constant (starts/ends/axes attributes before opset 10, inputs from 10);
    /// of a computed value: `convertSlice(of:)`.
    mutating func convertSlice(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let starts: [Int], ends: [Int], axesGiven: [Int]?, steps: [Int]?
        if opset < 10 {
            starts = try n.ints("starts") ?? []; ends = try n.ints("ends") ?? []
            axesGiven = try n.ints("axes"); steps = nil
        } else {
            starts = try constant(n.inputs[1], "Slice starts").ints
            ends = try constant(n.inputs[2], "Slice ends").ints
            axesGiven = try optionalConstant(n, 3, "Slice axes")?.ints
            steps = try optionalConstant(n, 4, "Slice steps")?.ints
        }
        let axes = axesGiven ?? Array(0..<starts.count)
        guard starts.count == ends.count, axes.count == starts.count, steps.map({ $0.count == starts.count }) ?? true else {
            throw UnsupportedFeature("starts, ends, axes and steps differ in length")
        }
        guard case .constant = try value(n.inputs[0]) else {
            return try convertSlice(of: try dynamic(n.inputs[0]), n, starts: starts, ends: ends, axes: axes, steps: steps)
        }
        let data = try constant(n.inputs[0], "Slice data")
        var picks = data.shape.map { Array(0..<$0) }
        for (k, axis) in axes.enumerated() {
            let a = try normalizedAxis(axis, rank: data.shape.count)
            let step = steps?[k] ?? 1
            guard step != 0 else { throw UnsupportedFeature("step 0") }
            picks[a] = sliceIndices(dim: data.shape[a], start: starts[k], end: ends[k], step: step)
        }
        define(n.outputs[0], .constant(data.gathering(selectedIndices(shape: data.shape, picks: picks), shape: picks.map(\.count))))
    }

    /// `Unsqueeze` (axes attribute before opset 13, input from 13).
    mutating func convertUnsqueeze(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let axesList = opset < 13 ? try n.ints("axes") : try optionalConstant(n, 1, "Unsqueeze axes")?.ints
        guard let axesList else { throw UnsupportedFeature("axes missing") }
        let input = try valueShape(n.inputs[0])
        let rank = input.count + axesList.count
        var axes = Set<Int>()
        for a in axesList { axes.insert(try normalizedAxis(a, rank: rank)) }
        var rest = input.makeIterator()
        let shape = (0..<rank).map { axes.contains($0) ? 1 : rest.next()! }
        try defineReshaped(n, to: shape, keepsBatch: !axes.contains(0))
    }

    /// `Squeeze` (axes attribute before opset 13, input from 13; none: every 1).
    mutating func convertSqueeze(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let given = opset < 13 ? try n.ints("axes") : try optionalConstant(n, 1, "Squeeze axes")?.ints
        let input = try valueShape(n.inputs[0])
        var axes = Set<Int>()
        if let given {
            for a in given { axes.insert(try normalizedAxis(a, rank: input.count)) }
        } else {
            let batchAxis = (try? dynamic(n.inputs[0])).map(hasBatchAxis) ?? false
            axes = Set(input.indices.filter { input[$0] == 1 && !($0 == 0 && batchAxis) })
        }
        guard axes.allSatisfy({ input[$0] == 1 }) else { throw UnsupportedFeature("squeezes a dimension that is not 1") }
        try defineReshaped(n, to: input.indices.filter { !axes.contains($0) }.map { input[$0] }, keepsBatch: !axes.contains(0))
    }

    /// `Cast` of a constant to a float or integer type; of a float value to float: nothing.
    mutating func convertCast(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let to = try n.int("to", default: 0)
        let toFloat = [1, 10, 11].contains(to), toInt = [6, 7, 9].contains(to)
        guard toFloat || toInt else { throw UnsupportedFeature("cast to element type \(to) not supported") }
        switch try value(n.inputs[0]) {
        case .constant(let c):
            let t = toFloat ? c.tensor.asFloat32()
                : Tensor(shape: c.shape, int64s: c.tensor.int64s.map { to == 9 ? ($0 != 0 ? 1 : 0) : $0 })
            define(n.outputs[0], .constant(FoldedConstant(t, tags: c.tags)))
        case .dynamic(let d) where toFloat: define(n.outputs[0], .dynamic(d))
        default: throw UnsupportedFeature("cast of a computed value to an integer type")
        }
    }

    // MARK: Helpers

    /// The static shape of any value.
    func valueShape(_ name: String) throws(UnsupportedFeature) -> [Int] {
        switch try value(name) {
        case .constant(let c): return c.shape
        case .dynamic(let d): return d.shape
        case .padded(let p): throw unfoldablePad(p)
        case .failed: throw UnsupportedFeature("input '\(name)' comes from an unsupported node")
        }
    }

    /// Defines the node's output as its input under `shape`: a folded constant,
    /// or a Reshape that copies the batch dimension when `keepsBatch`.
    mutating func defineReshaped(_ n: ONNXNodeProto, to shape: [Int], keepsBatch: Bool) throws(UnsupportedFeature) {
        if case .constant(let c) = try value(n.inputs[0]) {
            define(n.outputs[0], .constant(c.reshaped(shape)))
            return
        }
        let d = try dynamic(n.inputs[0])
        var target = shape
        if hasBatchAxis(d) {
            guard keepsBatch else { throw UnsupportedFeature("moves the batch axis") }
            target[0] = 0
        }
        define(n.outputs[0], .dynamic(try emit(.reshape(shape: target), [d], output: n.outputs[0])))
    }

    /// `axis` in 0..<rank (negative counts from the end).
    func normalizedAxis(_ axis: Int, rank: Int) throws(UnsupportedFeature) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else { throw UnsupportedFeature("axis \(axis) out of range for rank \(rank)") }
        return a
    }
}

/// The indices ONNX `Slice` takes along one axis of length `dim`.
func sliceIndices(dim: Int, start: Int, end: Int, step: Int) -> [Int] {
    var s = start < 0 ? start + dim : start, e = end < 0 ? end + dim : end
    if step > 0 {
        s = min(max(s, 0), dim); e = min(max(e, 0), dim)
        return Array(stride(from: s, to: e, by: step))
    }
    s = min(max(s, 0), dim - 1); e = min(max(e, -1), dim - 1)
    return Array(stride(from: s, to: e, by: step))
}
