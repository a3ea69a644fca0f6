/// A value in the IR (a graph input or a node's output), with its shape at
/// the importer's two probe batch sizes: dimensions that differ between them
/// depend on the batch.
struct DynamicValue {
    var name: String
    var shape: [Int]
    /// The shape at the alternative batch; nil when the graph only works at
    /// the primary batch (e.g. a constant operand with a fixed batch dimension).
    var altShape: [Int]?

    var rank: Int { shape.count }
}

/// A zero `Pad` over the spatial axes that has not been emitted: a following
/// Conv or AveragePool absorbs it into its own padding.
struct PendingPad {
    var source: DynamicValue
    var padding: Padding2
    var node: String
    var padded: DynamicValue
}

/// What the importer knows about an ONNX value.
enum ImportValue {
    case constant(FoldedConstant)
    case dynamic(DynamicValue)
    case padded(PendingPad)
    /// Produced by an unsupported node (already reported).
    case failed
}

/// The state of one import: ONNX values by name, the IR nodes and
/// initializers emitted so far, and the names taken.
struct ImportContext {
    let opset: Int
    let primaryBatch: Int
    let altBatch: Int
    var values: [String: ImportValue] = [:]
    var nodes: [Node] = []
    var initializers: [String: Tensor] = [:]
    /// ONNX and IR value names in use, so generated names never collide.
    var usedNames: Set<String>
    var usedNodeNames: Set<String> = []
    /// Names of IR values: graph inputs, node outputs, initializers.
    var irNames: Set<String> = []
    /// How many nodes (and graph outputs) read each ONNX value.
    let readers: [String: Int]
    /// The IR node name of the ONNX node being converted.
    var current = ""
    /// Element types of initializers as declared (the decoder widens some integer types).
    var initializerTypes: [String: ONNXTensorDecoder.ElementType] = [:]
    /// Outputs of QuantizeLinear nodes, which only a DequantizeLinear may read.
    var quantized: [String: QuantizedValue] = [:]
    /// The int8 grids of constants DequantizeLinear folded, by ONNX name.
    var weightGrids: [String: QuantizationGrid] = [:]
    /// Precision records of IR weights read from such constants.
    var precisions: [String: TensorPrecision] = [:]
    /// What folding constants may allocate: a broadcast of two small constants can be any size.
    var memoryBudget = MemoryBudget.processDefault

    init(opset: Int, primaryBatch: Int, reservedNames: Set<String>, readers: [String: Int]) {
        self.opset = opset; self.primaryBatch = primaryBatch; self.altBatch = primaryBatch + 1
        self.usedNames = reservedNames; self.readers = readers
    }

    // MARK: Reading inputs

    /// The value `name`, or an error when no earlier node or input defines it.
    func value(_ name: String) throws(UnsupportedFeature) -> ImportValue {
        if let q = quantized[name] {
            throw UnsupportedFeature("reads '\(name)', the integer output of QuantizeLinear '\(q.node)': only a DequantizeLinear may read it "
                                     + "(integer ops such as QLinearConv are not supported)")
        }
        guard let v = values[name] else { throw UnsupportedFeature("input '\(name)' is not defined by any earlier node, input or initializer") }
        return v
    }

    /// The constant `name`, or an error naming `role` when it is computed at run time.
    func constant(_ name: String, _ role: String) throws(UnsupportedFeature) -> FoldedConstant {
        guard case .constant(let c) = try value(name) else { throw UnsupportedFeature("\(role) must be a constant") }
        return c
    }

    /// The optional constant input at `index`, nil when absent.
    func optionalConstant(_ n: ONNXNodeProto, _ index: Int, _ role: String) throws(UnsupportedFeature) -> FoldedConstant? {
        guard let name = n.input(index) else { return nil }
        return try constant(name, role)
    }

    /// A computed value; a pending Pad is refused with an error naming the Pad node.
    func dynamic(_ name: String) throws(UnsupportedFeature) -> DynamicValue {
        switch try value(name) {
        case .dynamic(let d): return d
        case .padded(let p): throw unfoldablePad(p)
        case .constant: throw UnsupportedFeature("input '\(name)' is a constant where a computed value is expected")
        case .failed: throw UnsupportedFeature("input '\(name)' comes from an unsupported node")
        }
    }

    /// The error for a Pad that cannot fold into the node reading it.
    func unfoldablePad(_ p: PendingPad) -> UnsupportedFeature {
        UnsupportedFeature("a Pad is only supported when it feeds a Conv or an AveragePool with count_include_pad=1 "
                           + "(here it feeds '\(current)')", node: p.node, opType: "Pad")
    }

    /// An IR operand for `name`: a computed value, or a constant added as an initializer.
    mutating func operand(_ name: String) throws(UnsupportedFeature) -> DynamicValue {
        if case .constant(let c) = try value(name) {
            guard c.tags == nil else { throw UnsupportedFeature("operand '\(name)' depends on the batch size") }
            let irName = materialize(name, c.tensor)
            return DynamicValue(name: irName, shape: c.shape, altShape: c.shape)
        }
        return try dynamic(name)
    }

    // MARK: Writing

    /// Adds `tensor` as an initializer under `preferred` (or a unique variant) and returns its name.
    mutating func materialize(_ preferred: String, _ tensor: Tensor) -> String {
        if initializers[preferred] == tensor { return preferred }
        let name = irNames.contains(preferred) ? uniqueName(preferred) : preferred
        irNames.insert(name)
        usedNames.insert(name)
        initializers[name] = tensor
        return name
    }

    /// `base`, or `base` with a numeric suffix, unused so far.
    mutating func uniqueName(_ base: String) -> String {
        var candidate = base
        var i = 1
        while usedNames.contains(candidate) { candidate = "\(base)_\(i)"; i += 1 }
        usedNames.insert(candidate)
        return candidate
    }

    /// Appends an IR node for the current ONNX node, writing the IR value
    /// `output`, and returns that value with its shapes.
    @discardableResult
    mutating func emit(_ op: Op, _ inputs: [DynamicValue], output: String, suffix: String? = nil) throws(UnsupportedFeature) -> DynamicValue {
        var nodeName = suffix.map { "\(current)/\($0)" } ?? current
        if usedNodeNames.contains(nodeName) {
            var i = 1
            while usedNodeNames.contains("\(nodeName)_\(i)") { i += 1 }
            nodeName = "\(nodeName)_\(i)"
        }
        usedNodeNames.insert(nodeName)
        usedNames.insert(output)
        irNames.insert(output)
        let node = Node(name: nodeName, op: op, inputs: inputs.map(\.name), output: output)
        let shape: [Int]
        do {
            shape = try node.outputShape(inputShapes: inputs.map(\.shape))
        } catch {
            throw UnsupportedFeature("invalid for its inputs: \(error.description)")
        }
        var alt: [Int]? = nil
        let altInputs = inputs.compactMap(\.altShape)
        if altInputs.count == inputs.count { alt = try? node.outputShape(inputShapes: altInputs) }
        nodes.append(node)
        return DynamicValue(name: output, shape: shape, altShape: alt)
    }

    /// Defines ONNX value `name`.
    mutating func define(_ name: String, _ value: ImportValue) {
        if !name.isEmpty { values[name] = value }
    }

    /// A name for an intermediate IR value derived from ONNX value `base`.
    mutating func intermediate(_ base: String, _ what: String) -> String { uniqueName("\(base)/\(what)") }

    /// Per-dimension batch tags of a computed value.
    func batchTags(_ v: DynamicValue) -> [BatchTag] {
        guard let alt = v.altShape, alt.count == v.shape.count else { return v.shape.map { _ in .fixed } }
        return zip(v.shape, alt).map { p, a in
            p == a ? .fixed : (p == primaryBatch && a == altBatch ? .batch : .derived)
        }
    }

    /// True when dimension 0 of `v` is the batch.
    func hasBatchAxis(_ v: DynamicValue) -> Bool { batchTags(v).first == .batch }

    /// True when the ONNX value `name` has exactly one reader and is no graph output.
    func hasSingleReader(_ name: String) -> Bool { readers[name] == 1 }
}
