/// One ONNX node attribute. Only the kinds the export writes.
enum ONNXAttributeValue: Sendable, Equatable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case string(String)
}

/// An ONNX node before encoding: op type, value names and attributes in a
/// fixed order (so the bytes are deterministic).
struct ONNXNodeSpec: Sendable {
    var name: String
    var opType: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [(name: String, value: ONNXAttributeValue)]

    init(name: String, opType: String, inputs: [String], outputs: [String],
         attributes: [(name: String, value: ONNXAttributeValue)] = []) {
        self.name = name; self.opType = opType; self.inputs = inputs; self.outputs = outputs
        self.attributes = attributes
    }
}

/// Hands out names no value or node of the graph uses yet, for the constants
/// and nodes the export adds (`Reshape` targets, `Clip` bounds, normalization).
struct UniqueNamer {
    private var taken: Set<String>

    init(taken: Set<String>) { self.taken = taken }

    /// `base` if it is free, else `base_1`, `base_2`, ...; the name is then taken.
    mutating func fresh(_ base: String) -> String {
        var candidate = base
        var k = 0
        while taken.contains(candidate) {
            k += 1
            candidate = "\(base)_\(k)"
        }
        taken.insert(candidate)
        return candidate
    }
}

/// Translates IR nodes into ONNX nodes for one opset, collecting the constant
/// initializers the translation needs.
struct ONNXNodeLowering {
    let opset: Int
    /// Shapes of every value at batch 1 (weights give `Conv`'s kernel_shape).
    let shapes: [String: [Int]]
    var namer: UniqueNamer
    /// Constants the translation added, by name.
    private(set) var constants: [String: ONNXTensorData] = [:]
    private var clipBounds: (min: String, max: String)?

    init(opset: Int, shapes: [String: [Int]], namer: UniqueNamer) {
        self.opset = opset; self.shapes = shapes; self.namer = namer
    }

    /// The ONNX node for `node`, reading `inputs` (the node's inputs after
    /// renaming, trailing absent optional inputs dropped).
    mutating func lower(_ node: Node, inputs: [String]) throws(ONNXExportError) -> ONNXNodeSpec {
        func make(_ attributes: [(name: String, value: ONNXAttributeValue)] = [],
                  extraInputs: [String] = []) -> ONNXNodeSpec {
            ONNXNodeSpec(name: node.name, opType: onnxOpType(node.op), inputs: inputs + extraInputs, outputs: [node.output],
                         attributes: attributes)
        }
        switch node.op {
        case .conv2d(let c): return make(convAttributes(c, weight: shapes[node.inputs[1]] ?? []))
        case .linear: return make([("transB", .int(1))])
        case .batchNorm(let epsilon): return make([("epsilon", .float(epsilon))])
        case .layerNorm:
            // `layerNormNodes` writes these as several nodes before lowering reaches them.
            throw .notExportable(node: node.name, reason: "LayerNorm is written by layerNormNodes")
        case .relu: return make()
        case .relu6: return make(extraInputs: clipBoundNames())
        case .leakyRelu(let alpha): return make([("alpha", .float(alpha))])
        case .sigmoid: return make()
        case .tanh: return make()
        case .hardSigmoid(let alpha, let beta): return make([("alpha", .float(alpha)), ("beta", .float(beta))])
        case .hardSwish: return make()
        case .gelu(let tanhApproximation):
            return make(tanhApproximation ? [("approximate", .string("tanh"))] : [])
        case .maxPool(let p):
            return make([("ceil_mode", .int(p.ceilMode ? 1 : 0)), ("dilations", .ints([p.dilation.h, p.dilation.w]))]
                        + windowAttributes(p))
        case .avgPool(let p, let countIncludePad):
            return make(try averagePoolAttributes(p, countIncludePad: countIncludePad, node: node))
        case .globalAvgPool: return make()
        case .flatten(let axis): return make([("axis", .int(axis))])
        case .reshape(let shape): return make(extraInputs: [reshapeTarget(shape, node: node)])
        case .add: return make()
        case .sub: return make()
        case .mul: return make()
        case .div: return make()
        case .concat(let axis): return make([("axis", .int(axis))])
        case .softmax(let axis): return make([("axis", .int(axis))])
        case .slice(let axis, let start, let end):
            return make(extraInputs: [int64Constant([start], "\(node.name).starts"), int64Constant([end], "\(node.name).ends"),
                                      int64Constant([axis], "\(node.name).axes")])
        case .channelPermute(let order):
            return make([("axis", .int(1))], extraInputs: [int64Constant(order, "\(node.name).indices")])
        case .dropout: return make()
        case .resize(let r): return try lowerResize(r, node: node, inputs: inputs)
        case .convTranspose(let c):
            return make([("dilations", .ints([c.dilation.h, c.dilation.w])), ("group", .int(c.groups)),
                         ("kernel_shape", .ints(Array((shapes[node.inputs[1]] ?? []).suffix(2)))),
                         ("output_padding", .ints([c.outputPadding.h, c.outputPadding.w])), ("pads", .ints(pads(c.padding))),
                         ("strides", .ints([c.stride.h, c.stride.w]))])
        case .quantizeDequantize:
            // `ONNXQDQLowering` writes these as QuantizeLinear + DequantizeLinear before lowering reaches them.
            throw .notExportable(node: node.name, reason: "QuantizeDequantize is written only by the QDQ export of a quantized model")
        }
    }

    /// `Resize` with an empty roi and the scales `[1, 1, h, w]` as a float
    /// initializer. A resize to given sizes writes the scales when onnxruntime's
    /// float product `input · scale` truncates to those sizes (the scale it
    /// maps coordinates with is then the same float), else sizes with
    /// `axes = [2, 3]`, which needs opset 18.
    private mutating func lowerResize(_ r: Resize2d, node: Node, inputs: [String]) throws(ONNXExportError) -> ONNXNodeSpec {
        var attributes: [(name: String, value: ONNXAttributeValue)] = [
            ("coordinate_transformation_mode", .string(r.coordinates.rawValue)), ("mode", .string(r.mode.rawValue)),
        ]
        if r.mode == .nearest { attributes.append(("nearest_mode", .string(r.nearestRounding.rawValue))) }
        var extra: [String] = [""]
        let x = shapes[node.inputs[0]] ?? []
        let out = x.count == 4 ? r.outputSize(h: x[2], w: x[3]) : Size2(0, 0)
        let (scaleH, scaleW) = x.count == 4 ? r.mappingScales(h: x[2], w: x[3]) : (r.scaleH, r.scaleW)
        if r.size == nil || (Int(Float(x[2]) * scaleH) == out.h && Int(Float(x[3]) * scaleW) == out.w) {
            let name = namer.fresh("\(node.name).scales")
            constants[name] = ONNXTensorData(shape: [4], values: .float([1, 1, scaleH, scaleW]))
            extra.append(name)
        } else {
            guard opset >= 18 else {
                throw .requiresNewerOpset(node: node.name, minimum: 18,
                                          reason: "Resize to \(out) is written as sizes on axes [2, 3], which needs opset 18")
            }
            let name = namer.fresh("\(node.name).sizes")
            constants[name] = ONNXTensorData(shape: [2], values: .int64([Int64(out.h), Int64(out.w)]))
            extra += ["", name]
            attributes.insert(("axes", .ints([2, 3])), at: 0)
        }
        return ONNXNodeSpec(name: node.name, opType: "Resize", inputs: inputs + extra, outputs: [node.output],
                            attributes: attributes)
    }

    private func convAttributes(_ c: Conv2d, weight: [Int]) -> [(name: String, value: ONNXAttributeValue)] {
        [("dilations", .ints([c.dilation.h, c.dilation.w])), ("group", .int(c.groups)),
         ("kernel_shape", .ints(Array(weight.suffix(2)))), ("pads", .ints(pads(c.padding))),
         ("strides", .ints([c.stride.h, c.stride.w]))]
    }

    /// kernel_shape, pads and strides of a pooling window.
    private func windowAttributes(_ p: Pool2d) -> [(name: String, value: ONNXAttributeValue)] {
        [("kernel_shape", .ints([p.kernel.h, p.kernel.w])), ("pads", .ints(pads(p.padding))),
         ("strides", .ints([p.stride.h, p.stride.w]))]
    }

    /// `AveragePool` has `dilations` only from opset 19: a dilated window
    /// needs that opset, an undilated one omits the attribute.
    private func averagePoolAttributes(_ p: Pool2d, countIncludePad: Bool, node: Node) throws(ONNXExportError)
        -> [(name: String, value: ONNXAttributeValue)] {
        var attributes: [(name: String, value: ONNXAttributeValue)] = [
            ("ceil_mode", .int(p.ceilMode ? 1 : 0)), ("count_include_pad", .int(countIncludePad ? 1 : 0)),
        ]
        if p.dilation != .square(1) {
            guard opset >= 19 else {
                throw .requiresNewerOpset(node: node.name, minimum: 19,
                                          reason: "AveragePool has dilations (\(p.dilation)) only from opset 19")
            }
            attributes.append(("dilations", .ints([p.dilation.h, p.dilation.w])))
        }
        return attributes + windowAttributes(p)
    }

    /// ONNX's pads order for two spatial axes: [x1_begin, x2_begin, x1_end, x2_end].
    private func pads(_ p: Padding2) -> [Int] { [p.top, p.left, p.bottom, p.right] }

    /// The scalar `Clip` bounds 0 and 6, one pair shared by every ReLU6.
    private mutating func clipBoundNames() -> [String] {
        if let b = clipBounds { return [b.min, b.max] }
        let b = (min: namer.fresh("relu6.min"), max: namer.fresh("relu6.max"))
        constants[b.min] = .scalar(0)
        constants[b.max] = .scalar(6)
        clipBounds = b
        return [b.min, b.max]
    }

    /// An INT64 initializer holding `shape`, named after the node.
    private mutating func reshapeTarget(_ shape: [Int], node: Node) -> String {
        int64Constant(shape, "\(node.name).shape")
    }

    /// A 1-D INT64 initializer holding `values`, named `base` (or a fresh variant).
    private mutating func int64Constant(_ values: [Int], _ base: String) -> String {
        let name = namer.fresh(base)
        constants[name] = ONNXTensorData(shape: [values.count], values: .int64(values.map { Int64($0) }))
        return name
    }
}

/// The ONNX op type `op` is written as: the one mapping the export lowers
/// nodes with and names them by in its messages.
func onnxOpType(_ op: Op) -> String {
    switch op {
    case .conv2d: "Conv"
    case .linear: "Gemm"
    case .batchNorm: "BatchNormalization"
    case .layerNorm: "LayerNormalization"
    case .relu: "Relu"
    case .relu6: "Clip"
    case .leakyRelu: "LeakyRelu"
    case .sigmoid: "Sigmoid"
    case .tanh: "Tanh"
    case .hardSigmoid: "HardSigmoid"
    case .hardSwish: "HardSwish"
    case .gelu: "Gelu"
    case .maxPool: "MaxPool"
    case .avgPool: "AveragePool"
    case .globalAvgPool: "GlobalAveragePool"
    case .flatten: "Flatten"
    case .reshape: "Reshape"
    case .add: "Add"
    case .sub: "Sub"
    case .mul: "Mul"
    case .div: "Div"
    case .concat: "Concat"
    case .softmax: "Softmax"
    case .slice: "Slice"
    case .channelPermute: "Gather"
    case .dropout: "Identity"
    case .quantizeDequantize: "QuantizeLinear"
    case .resize: "Resize"
    case .convTranspose: "ConvTranspose"
    }
}

extension ONNXNodeLowering {
    /// A LayerNorm over channels (axis 1), which ONNX's `LayerNormalization`
    /// can only take over the last axes: the channels are moved last by a
    /// `Transpose`, normalized over axis -1, and moved back. From opset 17 the
    /// middle is one `LayerNormalization`; below 17 it is the decomposition
    /// `ReduceMean`, `Sub`, `Mul`, `ReduceMean`, `Add` ε, `Sqrt`, `Div`, `Mul`
    /// by the scale, `Add` of the bias. A `[N, F]` value needs no `Transpose`.
    mutating func layerNormNodes(_ node: Node, inputs: [String], epsilon: Float) -> [ONNXNodeSpec] {
        let rank = shapes[node.inputs[0]]?.count ?? 2
        var nodes: [ONNXNodeSpec] = []
        var x = inputs[0]
        let output = rank > 2 ? namer.fresh("\(node.output).channels_last") : node.output
        func add(_ suffix: String, _ opType: String, _ inputs: [String], _ output: String? = nil,
                 _ attributes: [(name: String, value: ONNXAttributeValue)] = []) -> String {
            let out = output ?? namer.fresh("\(node.output).\(suffix)")
            nodes.append(ONNXNodeSpec(name: namer.fresh("\(node.name).\(suffix)"), opType: opType, inputs: inputs,
                                      outputs: [out], attributes: attributes))
            return out
        }
        if rank > 2 {
            x = add("to_channels_last", "Transpose", [x], nil, [("perm", .ints([0] + Array(2..<rank) + [1]))])
        }
        if opset >= 17 {
            nodes.append(ONNXNodeSpec(name: node.name, opType: "LayerNormalization", inputs: [x] + inputs.dropFirst(),
                                      outputs: [output], attributes: [("axis", .int(-1)), ("epsilon", .float(epsilon))]))
        } else {
            let lastAxis: [(name: String, value: ONNXAttributeValue)] = [("axes", .ints([-1])), ("keepdims", .int(1))]
            let mean = add("mean", "ReduceMean", [x], nil, lastAxis)
            let centered = add("centered", "Sub", [x, mean])
            let squared = add("squared", "Mul", [centered, centered])
            let variance = add("variance", "ReduceMean", [squared], nil, lastAxis)
            let epsilonName = namer.fresh("\(node.name).epsilon")
            constants[epsilonName] = .scalar(epsilon)
            let shifted = add("variance_epsilon", "Add", [variance, epsilonName])
            let deviation = add("deviation", "Sqrt", [shifted])
            let normalized = add("normalized", "Div", [centered, deviation])
            let hasBias = inputs.count > 2
            _ = add("scaled", "Mul", [normalized, inputs[1]], hasBias ? nil : output)
            if hasBias { _ = add("shifted", "Add", [nodes.last!.outputs[0], inputs[2]], output) }
        }
        if rank > 2 {
            _ = add("to_channels_first", "Transpose", [output], node.output,
                    [("perm", .ints([0, rank - 1] + Array(1..<(rank - 1))))])
        }
        return nodes
    }
}

extension ONNXNodeLowering {
    /// The ONNX nodes for an activation the target opset lacks, written with
    /// older ops, or nil when `lower` writes `node` as one node:
    /// `HardSwish` (opset 14) below 14 is `x * HardSigmoid(x; 1/6, 1/2)`;
    /// `Gelu` (opset 20) below 20 is `x * (1 + Erf(x / √2)) * 0.5` in the
    /// order PyTorch's exporter writes it (the importer folds it back), or
    /// for the tanh form `x * (1 + Tanh(√(2/π) (x + 0.044715 x³))) * 0.5`.
    mutating func decomposedActivation(_ node: Node, inputs: [String]) -> [ONNXNodeSpec]? {
        let x = inputs[0]
        var nodes: [ONNXNodeSpec] = []
        /// Appends `opType(operands)` as a node named after `node` and returns its output
        /// (`node.output` for the last step).
        func step(_ opType: String, _ operands: [String], _ what: String, last: Bool = false,
                  attributes: [(name: String, value: ONNXAttributeValue)] = []) -> String {
            let output = last ? node.output : namer.fresh("\(node.output).\(what)")
            nodes.append(ONNXNodeSpec(name: last ? node.name : namer.fresh("\(node.name).\(what)"), opType: opType,
                                      inputs: operands, outputs: [output], attributes: attributes))
            return output
        }
        switch node.op {
        case .hardSwish where opset < 14:
            let gate = step("HardSigmoid", [x], "gate", attributes: [("alpha", .float(1 / 6)), ("beta", .float(0.5))])
            _ = step("Mul", [x, gate], "mul", last: true)
        case .gelu(tanhApproximation: false) where opset < 20:
            let scaled = step("Div", [x, scalarConstant(Float(2).squareRoot(), "gelu.sqrt2")], "div")
            let erf = step("Erf", [scaled], "erf")
            let shifted = step("Add", [erf, scalarConstant(1, "gelu.one")], "add")
            let product = step("Mul", [x, shifted], "mul")
            _ = step("Mul", [product, scalarConstant(0.5, "gelu.half")], "half", last: true)
        case .gelu(tanhApproximation: true) where opset < 20:
            let square = step("Mul", [x, x], "square")
            let cube = step("Mul", [square, x], "cube")
            let cubic = step("Mul", [cube, scalarConstant(0.044715, "gelu.cubic")], "cubic")
            let inner = step("Add", [x, cubic], "inner")
            let scaled = step("Mul", [inner, scalarConstant((2 / Float.pi).squareRoot(), "gelu.sqrt2overpi")], "scaled")
            let tanh = step("Tanh", [scaled], "tanh")
            let shifted = step("Add", [tanh, scalarConstant(1, "gelu.one")], "add")
            let product = step("Mul", [x, shifted], "mul")
            _ = step("Mul", [product, scalarConstant(0.5, "gelu.half")], "half", last: true)
        default:
            return nil
        }
        return nodes
    }

    /// A float scalar initializer holding `value`, named `name` (or a fresh
    /// variant when the graph uses that name), shared by every node that needs it.
    private mutating func scalarConstant(_ value: Float, _ name: String) -> String {
        if let existing = constants.keys.sorted().first(where: {
            ($0 == name || $0.hasPrefix(name + "_")) && constants[$0] == .scalar(value)
        }) { return existing }
        let fresh = namer.fresh(name)
        constants[fresh] = .scalar(value)
        return fresh
    }
}
