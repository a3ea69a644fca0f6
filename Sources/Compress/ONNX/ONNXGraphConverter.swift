/// Converts one ONNX graph: declares inputs and initializers, converts the
/// nodes in order (collecting every unsupported one), resolves the outputs
/// and checks the result with `inferShapes`.
struct ONNXGraphConverter {
    let graph: ONNXGraphProto
    var context: ImportContext
    let inputs: [GraphInput]
    var unsupported: [UnsupportedONNXNode] = []

    init(graph: ONNXGraphProto, opset: Int) throws(ONNXImportError) {
        self.graph = graph
        let initializerNames = Set(graph.initializers.map(\.name))
        let declared = graph.inputs.filter { !initializerNames.contains($0.name) }
        guard !declared.isEmpty else { throw .noInputs }
        guard !graph.outputs.isEmpty else { throw .noOutputs }
        var inputs: [GraphInput] = []
        var batch: Int? = nil
        for info in declared {
            let (dim0, sample) = try Self.inputShape(info)
            inputs.append(GraphInput(name: info.name, sampleShape: sample))
            if batch == nil { batch = dim0 ?? 1 }
        }
        self.inputs = inputs
        var readers: [String: Int] = [:]
        for n in graph.nodes { for i in n.inputs where !i.isEmpty { readers[i, default: 0] += 1 } }
        for o in graph.outputs { readers[o.name, default: 0] += 1 }
        let reserved = Set(graph.inputs.map(\.name) + graph.initializers.map(\.name) + graph.nodes.flatMap(\.outputs))
        context = ImportContext(opset: opset, primaryBatch: batch ?? 1, reservedNames: reserved, readers: readers)
        for (name, tensor) in graph.initializers { context.values[name] = .constant(FoldedConstant(tensor)) }
        context.initializerTypes = graph.initializerTypes
        for input in inputs {
            context.irNames.insert(input.name)
            context.values[input.name] = .dynamic(DynamicValue(name: input.name, shape: [context.primaryBatch] + input.sampleShape,
                                                               altShape: [context.altBatch] + input.sampleShape))
        }
    }

    /// Dimension 0 (nil when symbolic) and the static rest of a float graph input.
    static func inputShape(_ info: ONNXValueInfo) throws(ONNXImportError) -> (Int?, [Int]) {
        guard let type = info.elementType, [1, 10, 11].contains(type) else {
            throw .invalidValue(name: info.name, detail: "graph input of element type \(info.elementType.map(String.init) ?? "unknown") (only float inputs are supported)")
        }
        guard let dims = info.dimensions, !dims.isEmpty else {
            throw .invalidValue(name: info.name, detail: "graph input without a declared shape, or a scalar (need [N, ...])")
        }
        var sample: [Int] = []
        for (axis, d) in dims.enumerated().dropFirst() {
            guard case .value(let v) = d, v > 0, v < (1 << 31) else {
                throw .invalidValue(name: info.name, detail: "dimension \(axis) is not a static positive size (only the batch, dimension 0, may be symbolic)")
            }
            sample.append(Int(v))
        }
        if case .value(let v) = dims[0], v > 0, v < (1 << 31) { return (Int(v), sample) }
        return (nil, sample)
    }

    /// The IR graph and the shape of its first output at the primary batch.
    mutating func convert() throws(ONNXImportError) -> (Graph, [Int]?) {
        var nodeNames = Set<String>()
        for (index, node) in graph.nodes.enumerated() {
            var name = node.name.isEmpty ? "\(node.opType)_\(index)" : node.name
            if nodeNames.contains(name) { name = "\(name)_\(index)" }
            nodeNames.insert(name)
            convertNode(node, named: name)
        }
        var outputs: [String] = []
        var firstShape: [Int]? = nil
        for info in graph.outputs {
            guard let (name, shape) = resolveOutput(info.name) else { continue }
            outputs.append(name)
            if firstShape == nil { firstShape = shape }
        }
        guard unsupported.isEmpty else { throw .unsupported(unsupported) }
        let g = removingRedundantReshapes(Graph(inputs: inputs, outputs: outputs, nodes: context.nodes,
                                                initializers: context.initializers))
        do {
            _ = try g.inferShapes()
        } catch {
            throw .invalidGraph(error.description)
        }
        return (g, firstShape)
    }

    /// Converts one node, recording it when unsupported.
    mutating func convertNode(_ node: ONNXNodeProto, named name: String) {
        context.current = name
        let known = ImportContext.supportedOps.contains(node.opType) || node.domain == channelLayerNormDomain
        let failedInput = node.inputs.contains { if case .failed? = context.values[$0] { true } else { false } }
        if failedInput && known {
            for o in node.outputs { context.define(o, .failed) }
            return
        }
        do {
            try context.convert(node)
        } catch {
            unsupported.append(UnsupportedONNXNode(node: error.node ?? name, opType: error.opType ?? node.opType,
                                                   reason: error.reason))
            for o in node.outputs { context.define(o, .failed) }
        }
    }

    /// The IR value for graph output `name` and its shape; nil (recorded) when unusable.
    mutating func resolveOutput(_ name: String) -> (String, [Int])? {
        if let q = context.quantized[name] {
            unsupported.append(UnsupportedONNXNode(node: q.node, opType: "QuantizeLinear",
                                                   reason: "its integer output '\(name)' is a graph output (only a DequantizeLinear may read it)"))
            return nil
        }
        switch context.values[name] {
        case .dynamic(let d)?: return (d.name, d.shape)
        case .constant(let c)? where c.tags == nil: return (context.materialize(name, c.tensor), c.shape)
        case .padded(let p)?:
            context.current = "graph output '\(name)'"
            let error = context.unfoldablePad(p)
            if !unsupported.contains(where: { $0.node == p.node }) {
                unsupported.append(UnsupportedONNXNode(node: p.node, opType: "Pad", reason: error.reason))
            }
            return nil
        case .failed?: return nil
        default:
            unsupported.append(UnsupportedONNXNode(node: "graph output '\(name)'", opType: "output",
                                                   reason: "not produced by any node, input or initializer"))
            return nil
        }
    }
}

extension ImportContext {
    /// ONNX op types the importer converts.
    static let supportedOps: Set<String> = [
        "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip",
        "HardSigmoid", "HardSwish", "Gelu",
        "LayerNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Add", "Sub", "Mul", "Div",
        "Concat", "Pad", "ReduceMean", "Softmax", "Dropout", "Identity", "Constant",
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Slice", "Cast", "QuantizeLinear", "DequantizeLinear",
        "Split", "Transpose",
        "Resize", "Upsample", "ConvTranspose",
    ]

    /// Inputs each op needs at least (absent ones are 1).
    private func requiredInputs(_ opType: String) -> Int {
        switch opType {
        case "Constant": 0
        case "BatchNormalization": 5
        case "LayerNormalization": 2
        case "Slice": opset < 10 ? 1 : 3
        case "Pad": opset < 11 ? 1 : 2
        case "Conv", "Gemm", "MatMul", "Reshape", "Gather", "Add", "Sub", "Mul", "Div", "QuantizeLinear", "DequantizeLinear": 2
        case "ConvTranspose", "Upsample": 2
        case "Resize": opset < 11 ? 2 : 1
        default: 1
        }
    }

    /// Converts `n` by op type.
    mutating func convert(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        if n.domain == channelLayerNormDomain { return try convertChannelLayerNorm(n) }
        guard n.domain.isEmpty || n.domain == "ai.onnx" else { throw UnsupportedFeature("operator domain '\(n.domain)' not supported") }
        if n.opType == "Erf" {
            throw UnsupportedFeature("Erf is supported only inside GELU written as x * 0.5 * (1 + Erf(x / sqrt(2)))")
        }
        guard Self.supportedOps.contains(n.opType) else { throw UnsupportedFeature("op type not supported") }
        let required = requiredInputs(n.opType)
        guard n.inputs.prefix(required).filter({ !$0.isEmpty }).count == required, !n.outputs.isEmpty else {
            throw UnsupportedFeature("needs \(required) inputs and an output, has \(n.inputs.count) and \(n.outputs.count)")
        }
        switch n.opType {
        case "Conv": try convertConv(n)
        case "Gemm": try convertGemm(n)
        case "MatMul": try convertMatMul(n)
        case "BatchNormalization": try convertBatchNorm(n)
        case "LayerNormalization": try convertLayerNormalization(n)
        case "Relu": try convertUnary(n, .relu)
        case "LeakyRelu": try convertUnary(n, .leakyRelu(alpha: try n.float("alpha", default: 0.01)))
        case "Sigmoid": try convertUnary(n, .sigmoid)
        case "Tanh": try convertUnary(n, .tanh)
        case "Clip": try convertClip(n)
        case "HardSigmoid", "HardSwish", "Gelu": try convertSmoothActivation(n)
        case "MaxPool": try convertPool(n, average: false)
        case "AveragePool": try convertPool(n, average: true)
        case "GlobalAveragePool": try convertGlobalAveragePool(n)
        case "Flatten": try convertFlatten(n)
        case "Reshape": try convertReshape(n)
        case "Add": try convertBinary(n, .add)
        case "Sub": try convertBinary(n, .sub)
        case "Mul": try convertBinary(n, .mul)
        case "Div": try convertBinary(n, .div)
        case "Concat": try convertConcat(n)
        case "Pad": try convertPad(n)
        case "ReduceMean": try convertReduceMean(n)
        case "Softmax": try convertSoftmax(n)
        case "Dropout": try convertDropout(n)
        case "Identity": try convertIdentity(n)
        case "Constant": try convertConstant(n)
        case "Shape": try convertShape(n)
        case "Gather": try convertGather(n)
        case "Unsqueeze": try convertUnsqueeze(n)
        case "Squeeze": try convertSqueeze(n)
        case "Slice": try convertSlice(n)
        case "Split": try convertSplit(n)
        case "Transpose": try convertTranspose(n)
        case "QuantizeLinear": try convertQuantizeLinear(n)
        case "DequantizeLinear": try convertDequantizeLinear(n)
        case "Resize": try convertResize(n)
        case "Upsample": try convertUpsample(n)
        case "ConvTranspose": try convertConvTranspose(n)
        default: try convertCast(n)
        }
    }
}
