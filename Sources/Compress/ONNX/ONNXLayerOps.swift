/// Conv, Gemm, MatMul, BatchNormalization and pooling.
extension ImportContext {
    /// The data input of a window op: a computed value, or the value under a
    /// pending Pad with that Pad's padding (which the op absorbs).
    func windowInput(_ name: String) throws(UnsupportedFeature) -> (source: DynamicValue, extra: Padding2, shape: [Int]) {
        if case .padded(let p) = try value(name) { return (p.source, p.padding, p.padded.shape) }
        let d = try dynamic(name)
        guard d.rank == 4 else { throw UnsupportedFeature("\(d.rank)-D input \(d.shape) (only 4-D [N,C,H,W] is supported)") }
        return (d, .zero, d.shape)
    }

    /// `Conv` with a constant 4-D weight and optional constant bias.
    mutating func convertConv(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        try n.onlyAttributes(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        let (x, extra, shape) = try windowInput(n.inputs[0])
        let w = try constant(n.inputs[1], "the weight")
        guard w.shape.count == 4 else { throw UnsupportedFeature("weight \(w.shape) is not 4-D") }
        if let k = try n.ints("kernel_shape"), k != Array(w.shape[2...]) {
            throw UnsupportedFeature("kernel_shape \(k) does not match weight \(w.shape)")
        }
        let window = try n.windowAttributes(kernel: Size2(w.shape[2], w.shape[3]), input: Size2(shape[2], shape[3]))
        let attributes = Conv2d(stride: window.stride, padding: window.padding + extra, dilation: window.dilation,
                                groups: try n.int("group", default: 1))
        var inputs = [x, try operand(n.inputs[1])]
        recordWeightPrecision(of: n.inputs[1], as: inputs[1].name)
        if let b = n.input(2) { inputs.append(try operand(b)) }
        define(n.outputs[0], .dynamic(try emit(.conv2d(attributes), inputs, output: n.outputs[0])))
    }

    /// `Gemm`, `alpha·A'·B' + beta·C`, as a Linear with weight `alpha·B'ᵀ` and bias
    /// `beta·C` (or a following Add when C varies along the rows).
    mutating func convertGemm(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        try n.onlyAttributes(["alpha", "beta", "transA", "transB"])
        let alpha = try n.float("alpha", default: 1), beta = try n.float("beta", default: 1)
        if case .constant = try value(n.inputs[0]) { throw UnsupportedFeature("a constant A with a computed B") }
        let a = try dynamic(n.inputs[0])
        guard try n.int("transA", default: 0) == 0 else { throw UnsupportedFeature("transA=1 with a non-constant A") }
        guard a.rank == 2 else { throw UnsupportedFeature("A must be 2-D, got \(a.shape)") }
        let b = try constant(n.inputs[1], "B")
        guard b.shape.count == 2 else { throw UnsupportedFeature("B must be 2-D, got \(b.shape)") }
        let transB = try n.int("transB", default: 0) != 0
        var weight = transB ? b.tensor : transposed(b.tensor)
        if alpha != 1 { weight = Tensor(shape: weight.shape, floats: weight.floats.map { $0 * alpha }) }
        let weightName = weight == b.tensor ? n.inputs[1] : uniqueName("\(current)/weight")
        let linear = [a, DynamicValue(name: materialize(weightName, weight), shape: weight.shape, altShape: weight.shape)]
        // alpha ≠ 1 scales the weight off its integer grid: it stays float32.
        if alpha == 1 { recordWeightPrecision(of: n.inputs[1], as: linear[1].name, transposed: !transB) }
        let out = weight.shape[0]
        guard let c = try optionalConstant(n, 2, "C"), beta != 0 else {
            define(n.outputs[0], .dynamic(try emit(.linear, linear, output: n.outputs[0])))
            return
        }
        let scaled = Tensor(shape: c.shape, floats: c.tensor.floats.map { $0 * beta })
        if c.tensor.count == 1 || c.shape == [out] || c.shape == [1, out] {
            let bias = c.tensor.count == 1 ? Tensor.filled([out], with: scaled.floats[0]) : try! scaled.reshaped([out])
            let biasName = bias == c.tensor ? n.inputs[2] : uniqueName("\(current)/bias")
            let inputs = linear + [DynamicValue(name: materialize(biasName, bias), shape: [out], altShape: [out])]
            define(n.outputs[0], .dynamic(try emit(.linear, inputs, output: n.outputs[0])))
            return
        }
        let product = try emit(.linear, linear, output: intermediate(n.outputs[0], "product"), suffix: "linear")
        let cName = materialize(scaled == c.tensor ? n.inputs[2] : uniqueName("\(current)/c"), scaled)
        let cValue = DynamicValue(name: cName, shape: c.shape, altShape: c.shape)
        define(n.outputs[0], .dynamic(try emit(.add, [product, cValue], output: n.outputs[0], suffix: "add_c")))
    }

    /// `MatMul` of a 2-D computed value by a constant 2-D matrix: a Linear without bias
    /// (an Add of a constant bias that follows becomes its bias).
    mutating func convertMatMul(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let a = try dynamic(n.inputs[0])
        guard a.rank == 2 else { throw UnsupportedFeature("\(a.rank)-D left operand (only 2-D is supported)") }
        let b = try constant(n.inputs[1], "the right operand")
        guard b.shape.count == 2 else { throw UnsupportedFeature("\(b.shape.count)-D right operand (only 2-D is supported)") }
        let weight = transposed(b.tensor)
        let w = DynamicValue(name: materialize(uniqueName("\(current)/weight"), weight), shape: weight.shape, altShape: weight.shape)
        recordWeightPrecision(of: n.inputs[1], as: w.name, transposed: true)
        define(n.outputs[0], .dynamic(try emit(.linear, [a, w], output: n.outputs[0])))
    }

    /// `BatchNormalization` in inference mode with constant parameters.
    mutating func convertBatchNorm(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        try n.onlyAttributes(["epsilon", "momentum", "training_mode", "spatial"])
        guard try n.int("training_mode", default: 0) == 0 else { throw UnsupportedFeature("training mode") }
        guard try n.int("spatial", default: 1) == 1 else { throw UnsupportedFeature("spatial=0") }
        if n.outputs.dropFirst().contains(where: { !$0.isEmpty && readers[$0, default: 0] > 0 }) {
            throw UnsupportedFeature("training outputs (running or saved statistics) are used")
        }
        var inputs = [try dynamic(n.inputs[0])]
        for (i, role) in ["scale", "bias", "mean", "variance"].enumerated() {
            let c = try constant(n.inputs[i + 1], "the \(role)")
            inputs.append(DynamicValue(name: materialize(n.inputs[i + 1], c.tensor), shape: c.shape, altShape: c.shape))
        }
        let epsilon = try n.float("epsilon", default: 1e-5)
        define(n.outputs[0], .dynamic(try emit(.batchNorm(epsilon: epsilon), inputs, output: n.outputs[0])))
    }

    /// `MaxPool` (the Indices output unsupported when used) and `AveragePool`
    /// (which absorbs a preceding zero Pad).
    mutating func convertPool(_ n: ONNXNodeProto, average: Bool) throws(UnsupportedFeature) {
        try n.onlyAttributes(["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides",
                              average ? "count_include_pad" : "storage_order"])
        if !average, n.outputs.count > 1, !n.outputs[1].isEmpty, readers[n.outputs[1], default: 0] > 0 {
            throw UnsupportedFeature("the Indices output is used")
        }
        let (x, extra, shape) = average ? try windowInput(n.inputs[0]) : try windowInput(try dynamicName(n.inputs[0]))
        guard let k = try n.ints("kernel_shape"), k.count == 2 else { throw UnsupportedFeature("kernel_shape must have 2 values") }
        let kernel = Size2(k[0], k[1])
        let window = try n.windowAttributes(kernel: kernel, input: Size2(shape[2], shape[3]))
        let ceilMode = try n.int("ceil_mode", default: 0) != 0
        var countIncludePad = try n.int("count_include_pad", default: 0) != 0
        if !extra.isZero {
            guard !ceilMode, countIncludePad || window.padding.isZero else { throw unfoldablePadHere(n.inputs[0]) }
            countIncludePad = true
        }
        let pool = Pool2d(kernel: kernel, stride: window.stride, padding: window.padding + extra,
                          dilation: window.dilation, ceilMode: ceilMode)
        let op: Op = average ? .avgPool(pool, countIncludePad: countIncludePad) : .maxPool(pool)
        define(n.outputs[0], .dynamic(try emit(op, [x], output: n.outputs[0])))
    }

    /// `GlobalAveragePool`.
    mutating func convertGlobalAveragePool(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        let x = try dynamic(n.inputs[0])
        guard x.rank == 4 else { throw UnsupportedFeature("\(x.rank)-D input (only 4-D is supported)") }
        define(n.outputs[0], .dynamic(try emit(.globalAvgPool, [x], output: n.outputs[0])))
    }

    /// `name` after checking it is a computed value (a pending Pad is refused).
    private func dynamicName(_ name: String) throws(UnsupportedFeature) -> String {
        _ = try dynamic(name)
        return name
    }

    private func unfoldablePadHere(_ name: String) -> UnsupportedFeature {
        if case .padded(let p)? = values[name] { return unfoldablePad(p) }
        return UnsupportedFeature("cannot absorb the padding of its input")
    }
}

/// The transpose of a 2-D tensor, as float32.
func transposed(_ t: Tensor) -> Tensor {
    let (rows, cols) = (t.shape[0], t.shape[1])
    let v = t.floats
    var out = [Float](repeating: 0, count: v.count)
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = v[r * cols + c] } }
    return Tensor(shape: [cols, rows], floats: out)
}
