/// Where a graph's values sit on activation grids, and the int32 grid a
/// quantized layer's bias takes: the shared facts the quantize pass, the QDQ
/// ONNX export and its import read, so all three agree on what a quantized
/// layer computes.
extension Graph {
    /// Whether `op` passes the grid values of its input on unchanged: it only
    /// selects, moves or copies values (max pooling, flatten, reshape, dropout
    /// at inference), so its output lies on its input's activation grid.
    public static func passesGridValues(_ op: Op) -> Bool {
        switch op {
        case .maxPool, .flatten, .reshape, .dropout, .slice, .channelPermute: true
        default: false
        }
    }

    /// The activation quantizer whose grid `value` lies on: the
    /// `quantizeDequantize` node that outputs it, or the one reached back
    /// through ops that pass grid values on (``passesGridValues(_:)``); nil
    /// when the value is not on an activation grid.
    public func activationGrid(of value: String) -> ActivationQuantization? {
        var current = value
        while let node = producer(of: current) {
            if case .quantizeDequantize(let q) = node.op { return q }
            guard Self.passesGridValues(node.op), let input = node.inputs.first else { return nil }
            current = input
        }
        return nil
    }

    /// The grid of a conv or linear `node`'s bias in a QDQ graph: int32, zero
    /// point 0, one scale per output channel equal to the input activation's
    /// scale times that channel's weight scale (computed in float32), the
    /// convention of ONNX's QLinearConv and of onnxruntime's quantizer, whose
    /// integer kernels add the bias to the int32 accumulator. Nil unless the
    /// node has a bias, its input lies on an activation grid and its weight
    /// has an int8 precision in `precisions`.
    public func biasGrid(of node: Node, precisions: [String: TensorPrecision]) -> QuantizationGrid? {
        switch node.op {
        case .conv2d, .linear: break
        default: return nil
        }
        guard node.inputs.count > 2, !node.inputs[2].isEmpty, let input = activationGrid(of: node.inputs[0]),
              case .int8(let weightGrid)? = precisions[node.inputs[1]],
              let bias = initializers[node.inputs[2]] else { return nil }
        let channels = bias.count
        let weightScales = weightGrid.scales.count == 1
            ? [Float](repeating: weightGrid.scales[0], count: channels) : weightGrid.scales
        guard weightScales.count == channels else { return nil }
        let range = QuantizationGrid.int32BiasRange
        return QuantizationGrid(axis: 0, scales: weightScales.map { input.scale * $0 },
                                zeroPoints: [Int32](repeating: 0, count: channels),
                                qmin: range.lowerBound, qmax: range.upperBound, storageRange: range)
    }
}

extension Graph {
    /// What a QDQ runtime computes `node` in, for reports: `"int8 x uint8"`
    /// (weight x input integers, accumulated in int32) for a conv or linear
    /// layer with an int8 weight whose input lies on an activation grid;
    /// `"float32 (int8 weights)"` or `"float32 (float16 weights)"` when only
    /// the weight is narrow (dequantized, then computed in float); else
    /// `"float32"`. compressor's own runtime computes every layer in float32
    /// on the dequantized values, which is what these runtimes' results equal.
    public func computePrecision(of node: Node, precisions: [String: TensorPrecision]) -> String {
        let weight = node.inputs.count > 1 ? precisions[node.inputs[1]] : nil
        switch (node.op, weight) {
        case (.conv2d, .int8?), (.linear, .int8?):
            guard let input = activationGrid(of: node.inputs[0]) else { return "float32 (int8 weights)" }
            return "int8 x " + (input.signed ? "int8" : "uint8")
        case (_, .float16?): return "float32 (float16 weights)"
        default: return "float32"
        }
    }
}
