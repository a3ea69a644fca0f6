/// Numbers values as they are met, chooses their layouts and compiles nodes
/// into steps, adding layout conversions where a reader needs the other layout.
struct ValueTable {
    let graph: Graph
    /// Batch-1 shapes by value name.
    let shapes: [String: [Int]]
    /// Feature maps may be NCHW8c (every set but `portable`).
    let blocked: Bool
    /// The build of dense direct convolutions (nil with `portable`).
    let convBuild: DirectConvBuild?
    /// Conv node name -> the value its epilogue adds.
    let residuals: [String: String]
    let selector: SparseKernelSelector
    var ids: [String: Int] = [:]
    var names: [String] = []
    var shapeNames: [String] = []
    var layouts: [ValueLayout] = []
    var sources: [ValueSource] = []
    var constants: [FloatBuffer] = []
    var steps: [PlannedStep] = []
    /// Value id -> id of its copy in the other layout.
    var copies: [Int: Int] = [:]
    var layerKernels: [LayerKernelChoice] = []

    /// - Parameter convBuild: replaces the direct conv build of `kernels` (tests
    ///   run the `avx512` algorithm through `wide16OnAVX2`).
    init(graph: Graph, shapes: [String: [Int]], kernels: KernelSet, residuals: [String: String],
         selector: SparseKernelSelector, convBuild: DirectConvBuild? = nil) {
        (self.graph, self.shapes, self.residuals, self.selector) = (graph, shapes, residuals, selector)
        blocked = kernels != .portable
        self.convBuild = blocked ? convBuild ?? DirectConvBuild(kernels) : nil
    }

    mutating func add(_ name: String, _ source: ValueSource, layout: ValueLayout = .plain) -> Int {
        ids[name] = names.count
        return append(name, source, layout: layout, shapeName: name)
    }

    private mutating func append(_ name: String, _ source: ValueSource, layout: ValueLayout, shapeName: String) -> Int {
        names.append(name)
        shapeNames.append(shapeName)
        layouts.append(layout)
        sources.append(source)
        return names.count - 1
    }

    /// The id of a value already met, or of an initializer read as data (copied once).
    mutating func id(of name: String) -> Int {
        if let id = ids[name] { return id }
        let values = graph.initializers[name]!.floats
        let buffer = FloatBuffer(count: values.count)
        buffer.pointer.update(from: values, count: values.count)
        constants.append(buffer)
        return add(name, .constant(index: constants.count - 1))
    }

    /// `id` in plain layout: itself, or a copy converted once.
    mutating func plain(_ id: Int) -> Int { converted(id, to: .plain) }

    /// `id` in blocked layout: itself, or a copy converted once.
    mutating func blockedValue(_ id: Int) -> Int { converted(id, to: .blocked) }

    private mutating func converted(_ id: Int, to layout: ValueLayout) -> Int {
        if layouts[id] == layout { return id }
        if let copy = copies[id] { return copy }
        let name = names[id] + (layout == .blocked ? "#nchw8c" : "#nchw")
        let copy = append(name, .computed, layout: layout, shapeName: shapeNames[id])
        steps.append(PlannedStep(node: name, kernel: ReorderKernel(toBlocked: layout == .blocked), inputs: [id], output: copy))
        copies[id] = copy
        return copy
    }

    private func isBlocked(_ name: String) -> Bool { ids[name].map { layouts[$0] == .blocked } ?? false }

    /// Whether `activation` leaves the padded channels of the blocked value
    /// `output` zero: it maps 0 to 0, or `output`'s channels fill whole blocks.
    private func keepsPaddingZero(_ activation: FusedActivation, _ output: String) -> Bool {
        activation.keepsZero || (shapes[output].map { $0.count >= 2 && $0[1] % 8 == 0 } ?? false)
    }

    /// Registers `node`'s output and appends its step (after any layout conversions
    /// it needs), unless it only renames its input.
    mutating func add(_ node: Node, activation: FusedActivation) throws(RuntimeError) {
        let x = node.inputs.first ?? ""
        switch node.op {
        case .flatten, .reshape, .dropout:
            _ = add(node.output, .alias(of: plain(id(of: x))))
        case .conv2d(let a) where blocked && shapes[x]?.count == 4 && keepsPaddingZero(activation, node.output)
            && graph.initializers[node.inputs[1]].map({ BlockedConvKernel.supports(a, weightShape: $0.shape) }) == true:
            let parameters = try constantParameters(of: node)
            let input = id(of: x)
            let residual = residuals[node.name]
            let kernel = BlockedConvKernel(attributes: a, weight: parameters[0]!, bias: parameters[1], activation: activation,
                                           inputBlocked: layouts[input] == .blocked, hasResidual: residual != nil,
                                           build: convBuild!)
            let density = parameters[0]!.density
            if let sparse = sparseReplacement(node, dense: kernel, parameters, density: density, activation: activation) {
                append(node, sparse, ([x] + (residual.map { [$0] } ?? [])).map { plain(id(of: $0)) }, .plain,
                       density: density)
                return
            }
            var inputs = [input]
            if let residual { inputs.append(blockedValue(id(of: residual))) }
            append(node, kernel, inputs, .blocked, density: density)
        case .conv2d(let a) where blocked && shapes[x]?.count == 4 && keepsPaddingZero(activation, node.output)
            && graph.initializers[node.inputs[1]].map({ BlockedDepthwiseConvKernel.supports(a, weightShape: $0.shape) }) == true:
            let parameters = try constantParameters(of: node)
            let input = id(of: x)
            let kernel = BlockedDepthwiseConvKernel(attributes: a, weight: parameters[0]!, bias: parameters[1],
                                                    activation: activation, inputBlocked: layouts[input] == .blocked)
            let density = parameters[0]!.density
            if let sparse = sparseReplacement(node, dense: kernel, parameters, density: density, activation: activation) {
                append(node, sparse, [plain(input)], .plain, density: density)
                return
            }
            append(node, kernel, [input], .blocked, density: density)
        case .maxPool(let p) where isBlocked(x):
            append(node, BlockedPoolKernel(pool: p, reduction: .max), [id(of: x)], .blocked)
        case .avgPool(let p, let countIncludePad) where isBlocked(x):
            append(node, BlockedPoolKernel(pool: p, reduction: .average(countIncludePad: countIncludePad)), [id(of: x)], .blocked)
        case .globalAvgPool where isBlocked(x):
            append(node, BlockedGlobalAveragePoolKernel(), [id(of: x)], .plain)
        case .layerNorm(let eps) where isBlocked(x) && shapes[x]?.count == 4:
            let parameters = try constantParameters(of: node)
            append(node, BlockedLayerNormKernel(scale: parameters[0]!, bias: parameters[1], epsilon: eps), [id(of: x)], .blocked)
        case .relu where isBlocked(x):
            append(node, BlockedActivationKernel(activation: .relu), [id(of: x)], .blocked)
        case .relu6 where isBlocked(x):
            append(node, BlockedActivationKernel(activation: .relu6), [id(of: x)], .blocked)
        case .hardSigmoid where isBlocked(x) && keepsPaddingZero(FusedActivation(node.op)!, node.output),
             .hardSwish where isBlocked(x), .gelu where isBlocked(x):
            append(node, BlockedActivationKernel(activation: FusedActivation(node.op)!), [id(of: x)], .blocked)
        case .quantizeDequantize(let q) where isBlocked(x):
            // Elementwise, and zero stays zero: padded channels keep their zeros.
            append(node, QuantizeDequantizeKernel(quantization: q, layout: .blocked), [id(of: x)], .blocked)
        case .slice(let axis, let start, let end) where isBlocked(x) && (axis == 1 || axis == 1 - shapes[x]!.count)
            && BlockedChannelSliceKernel.supports(start..<end):
            append(node, BlockedChannelSliceKernel(range: start..<end), [id(of: x)], .blocked)
        case .channelPermute(let order) where isBlocked(x):
            append(node, ChannelPermuteKernel(order: order, layout: .blocked), [id(of: x)], .blocked)
        case .add where node.inputs.contains(where: isBlocked) && shapes[node.inputs[0]] == shapes[node.inputs[1]]:
            let inputs = node.inputs.map { blockedValue(id(of: $0)) }
            append(node, BlockedAddKernel(), inputs, .blocked)
        default:
            var kernel = try makeKernel(node, activation: activation)
            var density: Double?
            switch node.op {
            case .conv2d, .linear:
                let parameters = try constantParameters(of: node)
                let weightDensity = parameters[0]!.density
                density = weightDensity
                if let sparse = sparseReplacement(node, dense: kernel, parameters, density: weightDensity,
                                                  activation: activation) {
                    kernel = sparse
                }
            default: break
            }
            let dataInputs = node.op.readsWeights ? [x] : node.inputs
            append(node, kernel, dataInputs.map { plain(id(of: $0)) }, .plain, density: density)
        }
    }

    private mutating func append(_ node: Node, _ kernel: any Kernel, _ inputs: [Int], _ layout: ValueLayout,
                                 density: Double? = nil) {
        let output = add(node.output, .computed, layout: layout)
        steps.append(PlannedStep(node: node.name, kernel: kernel, inputs: inputs, output: output, weightDensity: density))
    }

    private func makeKernel(_ node: Node, activation: FusedActivation) throws(RuntimeError) -> any Kernel {
        let parameters = try constantParameters(of: node)
        switch node.op {
        case .conv2d(let a):
            return ConvKernel(attributes: a, weight: parameters[0]!, bias: parameters[1], activation: activation)
        case .linear: return LinearKernel(weight: parameters[0]!, bias: parameters[1], activation: activation)
        case .convTranspose(let a):
            return ConvTransposeKernel(attributes: a, weight: parameters[0]!, bias: parameters[1], activation: activation)
        case .resize(let r): return ResizeKernel(attributes: r)
        case .batchNorm(let eps):
            return BatchNormKernel(scale: parameters[0]!, bias: parameters[1]!, mean: parameters[2]!,
                                   variance: parameters[3]!, epsilon: eps)
        case .layerNorm(let eps): return LayerNormKernel(scale: parameters[0]!, bias: parameters[1], epsilon: eps)
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh, .dropout: return UnaryKernel(op: node.op)
        case .hardSigmoid, .hardSwish, .gelu: return UnaryKernel(op: node.op)
        case .quantizeDequantize(let q): return QuantizeDequantizeKernel(quantization: q, layout: .plain)
        case .maxPool(let p): return PoolKernel(pool: p, reduction: .max)
        case .avgPool(let p, let countIncludePad): return PoolKernel(pool: p, reduction: .average(countIncludePad: countIncludePad))
        case .globalAvgPool: return GlobalAveragePoolKernel()
        case .add, .sub, .mul, .div: return BinaryKernel(op: node.op)
        case .concat(let axis): return ConcatKernel(axis: axis)
        case .softmax(let axis): return SoftmaxKernel(axis: axis)
        case .slice(let axis, let start, let end): return SliceKernel(axis: axis, range: start..<end)
        case .channelPermute(let order): return ChannelPermuteKernel(order: order, layout: .plain)
        case .flatten, .reshape: preconditionFailure("\(node.op.kind) is planned as an alias")
        }
    }

    /// The initializers behind a weight-reading node's inputs after the first (nil for an absent bias).
    private func constantParameters(of node: Node) throws(RuntimeError) -> [Tensor?] {
        guard node.op.readsWeights else { return [] }
        var parameters: [Tensor?] = []
        for name in node.inputs.dropFirst() {
            if name.isEmpty { parameters.append(nil); continue }
            guard let t = graph.initializers[name] else {
                throw .unsupported(node: node.name, detail: "\(node.op.kind) parameter '\(name)' must be an initializer")
            }
            parameters.append(t)
        }
        return parameters + [nil]
    }
}

extension Op {
    /// Ops whose inputs after the first are parameters the kernel prepares once.
    var readsWeights: Bool {
        switch self {
        case .conv2d, .linear, .batchNorm, .layerNorm, .convTranspose: true
        default: false
        }
    }
}
