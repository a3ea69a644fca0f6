/// The QDQ form of an int8 model in an ONNX export: what onnxruntime's graph
/// optimizer turns into integer kernels (QLinearConv, QGemm, QLinearAdd,
/// QLinearAveragePool, ...), and computes as written, node by node, exactly
/// what compressor's fake-quantized runtime computes.
///
/// - A `quantizeDequantize` node becomes `QuantizeLinear` + `DequantizeLinear`
///   (float32 scalar scale, uint8 or int8 scalar zero point).
/// - A tensor with an int8 precision is stored as its integers (INT8, or
///   UINT8 for a uint8 grid) under its own name and read through a
///   `DequantizeLinear` (per channel: `axis` and 1-D scales and zero points).
/// - The bias of a conv or linear layer that `Graph.biasGrid` gives a grid is
///   stored as INT32 integers (zero point 0, scale = input scale x weight
///   scale) and read through a `DequantizeLinear`; onnxruntime's integer
///   kernels add those integers to their int32 accumulators.
/// - Max pooling, flatten and reshape pass grid values on: their outputs get
///   a `QuantizeLinear` + `DequantizeLinear` pair with the grid they inherit
///   (an exact identity on grid values), so every quantized layer reads a
///   `DequantizeLinear` output, as onnxruntime's QDQ selectors require, and
///   onnxruntime runs the pooling on the integers.
///
/// A value on an activation grid read by an op that onnxruntime cannot run on
/// integers (its CPU QDQ rules in `qdq_selector_action_transformer.cc` cover
/// Conv, Gemm, MatMul, Add, Mul, Concat, AveragePool, GlobalAveragePool,
/// LeakyRelu, Sigmoid, Softmax, and drop the pair around MaxPool, Flatten,
/// Reshape and other data movers; a Relu or Clip just before a QuantizeLinear
/// whose range it does not cut is removed) is refused with the node's name.
struct ONNXQDQLowering {
    /// Opset 13 brings per-channel `DequantizeLinear` (`axis`).
    static let minimumOpset = 13

    /// Whether `model` needs the QDQ form: it has activation quantizers or
    /// int8 tensors.
    static func isQuantized(_ model: Model) -> Bool {
        model.graph.nodes.contains { if case .quantizeDequantize = $0.op { true } else { false } }
            || model.metadata.storage.precisions.values.contains { if case .int8 = $0 { true } else { false } }
    }

    let graph: Graph
    /// Int8 grids of the tensors stored as integers.
    private let weightGrids: [String: QuantizationGrid]
    /// Int32 grids of the biases stored as integers.
    private let biasGrids: [String: QuantizationGrid]
    private let readers: [String: [Node]]
    /// Integer tensors, scales and zero points, by name.
    private(set) var constants: [String: ONNXTensorData] = [:]
    /// The integer initializer of each model tensor stored as integers: its
    /// `DequantizeLinear` output takes the tensor's own name, so the import
    /// gives the same initializer names back.
    private var integerNames: [String: String] = [:]

    /// Checks `graph` (topologically sorted) of `model` and collects the
    /// grids of its integer tensors.
    ///
    /// - Throws: `ONNXExportError.notQuantizable` for a node onnxruntime
    ///   cannot run on integers, `.biasOffGrid` for a bias not on its int32
    ///   grid, `.notExportable` for a grid ONNX cannot store.
    init(_ model: Model, graph: Graph, opset: Int) throws(ONNXExportError) {
        guard opset >= Self.minimumOpset else {
            throw .quantizedModelNeedsOpset(opset: opset, minimum: Self.minimumOpset)
        }
        self.graph = graph
        readers = Dictionary(grouping: graph.nodes.flatMap { node in Set(node.inputs).map { ($0, node) } }, by: \.0)
            .mapValues { $0.map(\.1) }
        var weightGrids: [String: QuantizationGrid] = [:]
        for (name, precision) in model.metadata.storage.precisions {
            guard case .int8(let grid) = precision, graph.initializers[name] != nil else { continue }
            guard grid.storageRange == QuantizationGrid.int8Range || grid.storageRange == QuantizationGrid.uint8Range else {
                throw .notExportable(node: name, reason: "its integers range over \(grid.storageRange); ONNX QDQ stores int8 or uint8")
            }
            weightGrids[name] = grid
        }
        self.weightGrids = weightGrids
        var biasGrids: [String: QuantizationGrid] = [:]
        for node in graph.nodes {
            guard let grid = graph.biasGrid(of: node, precisions: model.metadata.storage.precisions) else { continue }
            let name = node.inputs[2]
            let bias = graph.initializers[name]!
            if let off = grid.firstValueOffGrid(bias.floats, shape: bias.shape) {
                throw .biasOffGrid(tensor: name, node: node.name, value: off)
            }
            if let other = biasGrids[name], other != grid {
                throw .notExportable(node: node.name, reason: "its bias '\(name)' is shared with a layer whose int32 grid differs")
            }
            biasGrids[name] = grid
        }
        self.biasGrids = biasGrids
        for node in graph.nodes { try checkQuantizable(node) }
    }

    // MARK: Lowering

    /// The initializer written for the model tensor `name` when it is stored
    /// as integers (nil for a float tensor).
    func integerInitializer(_ name: String, _ tensor: Tensor) -> ONNXTensorData? {
        if let grid = biasGrids[name] {
            return ONNXTensorData(shape: tensor.shape, values: .int32(grid.quantize(tensor.floats, shape: tensor.shape)))
        }
        if let grid = weightGrids[name] { return Self.integers(grid.quantize(tensor.floats, shape: tensor.shape),
                                                              shape: tensor.shape, grid: grid) }
        return nil
    }

    /// `DequantizeLinear` nodes for the integer tensors `node` reads (among
    /// its ONNX `inputs`) that no earlier node read; each outputs the
    /// tensor's own name, so `inputs` read the dequantized values unchanged.
    mutating func dequantizeTensors(readBy node: Node, inputs: [String], namer: inout UniqueNamer) -> [ONNXNodeSpec] {
        var nodes: [ONNXNodeSpec] = []
        for (i, name) in node.inputs.enumerated() where i < inputs.count {
            guard let grid = biasGrids[name] ?? weightGrids[name], integerNames[name] == nil else { continue }
            let integers = namer.fresh("\(name).quantized")
            let (scale, zeroPoint) = addParameters(of: grid, for: name, namer: &namer)
            nodes.append(ONNXNodeSpec(name: namer.fresh("\(name).DequantizeLinear"), opType: "DequantizeLinear",
                                      inputs: [integers, scale, zeroPoint], outputs: [name],
                                      attributes: grid.axis.map { [("axis", .int($0))] } ?? []))
            integerNames[name] = integers
        }
        return nodes
    }

    /// The name of the integer initializer written for the model tensor
    /// `name` (its `DequantizeLinear` outputs `name` itself).
    func integerName(of name: String) -> String { integerNames[name] ?? name }

    /// `QuantizeLinear` + `DequantizeLinear` for the quantizer `q` named
    /// `name`, reading `input` and writing `output`; the `DequantizeLinear`
    /// node is named `dequantizeNodeName` when given (the IR quantizer's own
    /// name, which no ONNX node takes otherwise).
    mutating func quantizeDequantize(_ q: ActivationQuantization, name: String, input: String, output: String,
                                     dequantizeNodeName: String?, namer: inout UniqueNamer) -> [ONNXNodeSpec] {
        let scale = namer.fresh("\(name).scale"), zeroPoint = namer.fresh("\(name).zero_point")
        constants[scale] = .scalar(q.scale)
        constants[zeroPoint] = q.signed
            ? ONNXTensorData(shape: [], values: .int8([Int8(q.zeroPoint)]))
            : ONNXTensorData(shape: [], values: .uint8([UInt8(q.zeroPoint)]))
        let integers = namer.fresh("\(input).\(q.signed ? "int8" : "uint8")")
        return [
            ONNXNodeSpec(name: namer.fresh("\(name).QuantizeLinear"), opType: "QuantizeLinear",
                         inputs: [input, scale, zeroPoint], outputs: [integers]),
            ONNXNodeSpec(name: dequantizeNodeName ?? namer.fresh("\(name).DequantizeLinear"), opType: "DequantizeLinear",
                         inputs: [integers, scale, zeroPoint], outputs: [output]),
        ]
    }

    /// When `node` passes grid values on to readers that are ONNX nodes,
    /// the quantizer its output inherits, to re-quantize it with (exactly,
    /// so onnxruntime sees a `DequantizeLinear` before each quantized layer).
    func inheritedQuantizer(after node: Node) -> ActivationQuantization? {
        switch node.op {
        case .maxPool, .flatten, .reshape: break
        default: return nil
        }
        guard !graph.outputs.contains(node.output), readers[node.output] != nil else { return nil }
        return graph.activationGrid(of: node.output)
    }

    // MARK: Checks

    /// Throws when `node` reads a value on an activation grid and onnxruntime
    /// would run it on floats (or not fuse its group into an integer kernel).
    private func checkQuantizable(_ node: Node) throws(ONNXExportError) {
        let data = node.inputs.filter { !$0.isEmpty && graph.initializers[$0] == nil }
        let onGrid = data.filter { graph.activationGrid(of: $0) != nil }
        guard !onGrid.isEmpty else { return }
        let op = onnxOpType(node.op)
        func refuse(_ why: String) -> ONNXExportError { .notQuantizable(node: node.name, op: op, reason: why) }
        switch node.op {
        case .quantizeDequantize, .dropout, .maxPool, .flatten, .reshape, .slice, .channelPermute:
            return
        case .linear:
            // QGemm: the output may stay float32 (the logits).
            return
        case .conv2d, .avgPool, .globalAvgPool, .leakyRelu, .sigmoid, .softmax:
            if let why = requantizationProblem(node) { throw refuse(why) }
        case .add, .mul, .concat:
            let constants = node.inputs.filter { graph.initializers[$0] != nil && weightGrids[$0] == nil }
            if let float = data.first(where: { graph.activationGrid(of: $0) == nil }) ?? constants.first {
                throw refuse("its input '\(float)' is not quantized, and onnxruntime's integer \(op) needs every input quantized")
            }
            if let why = requantizationProblem(node) { throw refuse(why) }
        case .resize, .convTranspose:
            throw refuse("the QDQ export does not write an integer \(op); quantize with --activations none for int8 weights only")
        case .relu, .relu6:
            throw refuse("onnxruntime has no integer \(op); it removes one only right before the QuantizeLinear of the "
                         + "layer it follows, and here it reads a quantized value")
        case .layerNorm:
            throw refuse("onnxruntime has no integer LayerNormalization; quantize with --activations none for int8 weights only")
        case .batchNorm:
            throw refuse("onnxruntime has no integer BatchNormalization; fold BatchNorm into the convs first "
                         + "(quantize --fold-bn true)")
        case .tanh, .sub, .div, .hardSigmoid, .hardSwish, .gelu:
            throw refuse("onnxruntime has no integer \(op) (its QDQ rules cover Conv, Gemm, MatMul, Add, Mul, Concat, "
                         + "AveragePool, GlobalAveragePool, LeakyRelu, Sigmoid, Softmax, MaxPool, Flatten, Reshape); "
                         + "quantize with --activations none for int8 weights only")
        }
    }

    /// Why onnxruntime would not fuse `node` with a `QuantizeLinear` of its
    /// output (nil when it would): its output must be read only by
    /// quantizers, possibly through one Relu/Clip the quantizer makes
    /// redundant, and must not be a graph output.
    private func requantizationProblem(_ node: Node) -> String? {
        let notQuantized = "its output is not quantized"
        var value = node.output
        var users = readers[value] ?? []
        if users.count == 1, !graph.outputs.contains(value), let activation = users.first,
           activation.op == .relu || activation.op == .relu6 {
            let next = readers[activation.output] ?? []
            guard next.count == 1, case .quantizeDequantize(let q) = next[0].op,
                  !graph.outputs.contains(activation.output) else {
                return "\(notQuantized) after '\(activation.name)' (\(onnxOpType(activation.op)))"
            }
            guard Self.quantizerMakesRedundant(q, activation.op) else {
                return "the quantizer '\(next[0].name)' after '\(activation.name)' does not clip at the activation's "
                    + "bounds (zero point \(q.zeroPoint), scale \(q.scale)), so onnxruntime keeps it in float32"
            }
            value = activation.output
            users = next
        }
        if graph.outputs.contains(value) { return "\(notQuantized): it is a graph output" }
        guard !users.isEmpty else { return notQuantized }
        if let other = users.first(where: { if case .quantizeDequantize = $0.op { false } else { true } }) {
            return "\(notQuantized) before '\(other.name)' (\(onnxOpType(other.op)))"
        }
        return nil
    }

    /// Whether quantizing with `q` makes a preceding `activation` (ReLU or
    /// ReLU6) an identity, as onnxruntime's `IsClipMadeRedundantByQ` decides:
    /// the zero point is the lowest integer, and for ReLU6 the largest
    /// integer stands for at most 6.
    static func quantizerMakesRedundant(_ q: ActivationQuantization, _ activation: Op) -> Bool {
        guard q.zeroPoint == q.range.lowerBound else { return false }
        if activation == .relu6 { return q.scale * Float(q.range.upperBound - q.zeroPoint) <= 6 + Float.ulpOfOne }
        return true
    }

    // MARK: Tensors

    /// Scale and zero-point initializers of `grid` for tensor `name`:
    /// scalars for one scale, 1-D for one per channel.
    private mutating func addParameters(of grid: QuantizationGrid, for name: String, namer: inout UniqueNamer) -> (scale: String, zeroPoint: String) {
        let scale = namer.fresh("\(name).scale"), zeroPoint = namer.fresh("\(name).zero_point")
        let shape = grid.axis == nil ? [] : [grid.scales.count]
        constants[scale] = ONNXTensorData(shape: shape, values: .float(grid.scales))
        constants[zeroPoint] = Self.integers(grid.zeroPoints, shape: shape, grid: grid)
        return (scale, zeroPoint)
    }

    /// `values` as the integer type of `grid`'s storage: INT32 for an int32
    /// grid, UINT8 for uint8, INT8 otherwise.
    private static func integers(_ values: [Int32], shape: [Int], grid: QuantizationGrid) -> ONNXTensorData {
        switch grid.storageRange {
        case QuantizationGrid.uint8Range: ONNXTensorData(shape: shape, values: .uint8(values.map { UInt8($0) }))
        case QuantizationGrid.int8Range: ONNXTensorData(shape: shape, values: .int8(values.map { Int8($0) }))
        default: ONNXTensorData(shape: shape, values: .int32(values))
        }
    }
}
