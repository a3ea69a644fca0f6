/// One dimension of a value's declared shape.
enum ONNXDimension: Sendable, Equatable {
    case value(Int)
    /// A symbolic dimension, e.g. the batch `N`.
    case param(String)
    /// Neither known nor named.
    case unknown
}

/// A graph input or output: name, element type and shape.
struct ONNXValueInfoSpec: Sendable, Equatable {
    var name: String
    var dataType: ONNXDataType
    var dims: [ONNXDimension]
}

/// Everything an ONNX file of a model holds, in the order it is written.
/// Building it does all the checking and translation; encoding it only
/// copies into protobuf messages.
struct ONNXModelSpec {
    /// The symbolic batch dimension of inputs and outputs.
    static let batchParameter = "N"

    var opset: Int
    var graphName: String
    var nodes: [ONNXNodeSpec] = []
    /// Sorted by name.
    var initializers: [(name: String, tensor: ONNXTensorData)] = []
    var inputs: [ONNXValueInfoSpec] = []
    var outputs: [ONNXValueInfoSpec] = []
    var metadata: [(key: String, value: String)] = []

    var irVersion: Int { ONNXExporter.irVersion(forOpset: opset) }

    init(_ model: Model, opset: Int) throws(ONNXExportError) {
        guard ONNXExporter.supportedOpsets.contains(opset) else { throw .unsupportedOpset(opset) }
        self.opset = opset
        graphName = model.metadata.architecture ?? "compressor"
        let graph: Graph
        let shapes: (one: [String: [Int]], two: [String: [Int]])
        do {
            graph = try model.graph.topologicallySorted()
            shapes = (try graph.inferShapes(batch: 1), try graph.inferShapes(batch: 2))
        } catch {
            throw .invalidGraph(error)
        }
        var namer = UniqueNamer(taken: Self.names(in: graph))
        let qdq = ONNXQDQLowering.isQuantized(model) ? try ONNXQDQLowering(model, graph: graph, opset: opset) : nil
        let renamed = try addNormalization(model, graph: graph, namer: &namer)
        try addNodes(graph, shapes: shapes.one, renamed: renamed, namer: namer, qdq: qdq)
        inputs = graph.inputs.map { input in
            ONNXValueInfoSpec(name: input.name, dataType: .float,
                              dims: [.param(Self.batchParameter)] + input.sampleShape.map { .value($0) })
        }
        outputs = graph.outputs.map { name in
            ONNXValueInfoSpec(name: name, dataType: initializerType(name) ?? .float,
                              dims: Self.dimensions(shapes.one[name]!, atBatch2: shapes.two[name]!))
        }
        metadata = Self.metadataProps(model.metadata)
    }

    /// Every value and node name of `graph`, which added names must avoid.
    private static func names(in graph: Graph) -> Set<String> {
        var names = Set(graph.inputs.map(\.name)).union(graph.initializers.keys).union(graph.outputs)
        for node in graph.nodes {
            names.insert(node.name)
            names.insert(node.output)
            names.formUnion(node.inputs)
        }
        return names
    }

    /// Adds `(x - mean) / std` on the first input as constants and a `Sub` and
    /// a `Div` node; returns the renaming that makes later nodes read the result.
    private mutating func addNormalization(_ model: Model, graph: Graph, namer: inout UniqueNamer)
        throws(ONNXExportError) -> [String: String] {
        guard let n = model.metadata.normalization, let input = graph.inputs.first else { return [:] }
        let channels = input.sampleShape.first ?? 1
        guard n.mean.count == n.std.count, n.mean.count == channels || n.mean.count == 1 else {
            throw .normalizationMismatch(channels: channels, mean: n.mean.count, std: n.std.count)
        }
        let shape = input.sampleShape.isEmpty ? [] : [channels] + Array(repeating: 1, count: input.sampleShape.count - 1)
        func perChannel(_ v: [Float]) -> ONNXTensorData {
            ONNXTensorData(shape: shape, values: .float(v.count == 1 ? Array(repeating: v[0], count: shape.elementCount) : v))
        }
        let mean = namer.fresh("compressor.normalization.mean"), std = namer.fresh("compressor.normalization.std")
        let centered = namer.fresh("\(input.name).centered"), normalized = namer.fresh("\(input.name).normalized")
        initializers += [(mean, perChannel(n.mean)), (std, perChannel(n.std))]
        nodes.append(ONNXNodeSpec(name: namer.fresh("compressor.normalize.sub"), opType: "Sub",
                                  inputs: [input.name, mean], outputs: [centered]))
        nodes.append(ONNXNodeSpec(name: namer.fresh("compressor.normalize.div"), opType: "Div",
                                  inputs: [centered, std], outputs: [normalized]))
        return [input.name: normalized]
    }

    /// Translates the graph's nodes and adds every initializer, sorted by name;
    /// `qdq` (for a quantized model) adds the QuantizeLinear/DequantizeLinear
    /// nodes and stores int8 weights and int32 biases as integers.
    private mutating func addNodes(_ graph: Graph, shapes: [String: [Int]], renamed: [String: String],
                                   namer: UniqueNamer, qdq: ONNXQDQLowering?) throws(ONNXExportError) {
        var lowering = ONNXNodeLowering(opset: opset, shapes: shapes, namer: namer)
        var (qdq, renamed) = (qdq, renamed)
        var readByOp = Set<String>()
        for node in graph.nodes {
            var inputs = node.inputs.map { renamed[$0] ?? $0 }
            // ONNX marks an absent optional input with "", and trailing ones may be left out.
            while inputs.last == "" { inputs.removeLast() }
            readByOp.formUnion(node.inputs)
            if qdq != nil {
                nodes += qdq!.dequantizeTensors(readBy: node, inputs: inputs, namer: &lowering.namer)
                if case .quantizeDequantize(let q) = node.op {
                    // The DequantizeLinear keeps the quantizer's name, so the import gives it back.
                    nodes += qdq!.quantizeDequantize(q, name: node.name, input: inputs[0], output: node.output,
                                                     dequantizeNodeName: node.name, namer: &lowering.namer)
                    continue
                }
            }
            if case .layerNorm(let epsilon) = node.op {
                nodes += lowering.layerNormNodes(node, inputs: inputs, epsilon: epsilon)
            } else if let decomposed = lowering.decomposedActivation(node, inputs: inputs) {
                nodes += decomposed
            } else {
                nodes.append(try lowering.lower(node, inputs: inputs))
            }
            if let q = qdq?.inheritedQuantizer(after: node) {
                let requantized = lowering.namer.fresh("\(node.output).requantized")
                nodes += qdq!.quantizeDequantize(q, name: "\(node.name).requantize", input: node.output,
                                                 output: requantized, dequantizeNodeName: nil, namer: &lowering.namer)
                renamed[node.output] = requantized
            }
        }
        for (name, t) in graph.initializers {
            if let qdq, let integers = qdq.integerInitializer(name, t) {
                initializers.append((qdq.integerName(of: name), integers))
            } else {
                initializers.append((name, .initializer(t, readByOp: readByOp.contains(name))))
            }
        }
        initializers += lowering.constants.map { ($0.key, $0.value) }
        initializers += (qdq?.constants ?? [:]).map { ($0.key, $0.value) }
        initializers.sort { $0.name < $1.name }
    }

    private func initializerType(_ name: String) -> ONNXDataType? {
        initializers.first { $0.name == name }?.tensor.dataType
    }

    /// A value's dimensions from its shapes at batch 1 and 2: those that
    /// follow the batch are `N`, those that change otherwise are unknown.
    static func dimensions(_ one: [Int], atBatch2 two: [Int]) -> [ONNXDimension] {
        guard one.count == two.count else { return one.map { _ in .unknown } }
        return zip(one, two).map { a, b in
            if a == b { return .value(a) }
            return (a == 1 && b == 2) ? .param(batchParameter) : .unknown
        }
    }

    /// Architecture and class names, when present, under `ONNXExporter`'s keys.
    static func metadataProps(_ m: ModelMetadata) -> [(key: String, value: String)] {
        var props: [(key: String, value: String)] = []
        if let a = m.architecture { props.append((ONNXExporter.architectureKey, a)) }
        if !m.classNames.isEmpty { props.append((ONNXExporter.classNamesKey, m.classNames.joined(separator: "\n"))) }
        return props
    }
}
