/// Quantization-aware training of a parameter stored in a narrow precision:
/// the optimizer updates float32 *shadow* weights, and the values the forward
/// pass reads are the shadow weights rounded onto the parameter's format
/// (fake quantization), so the loss is that of the stored model (Jacob et al.,
/// "Quantization and Training of Neural Networks for Efficient
/// Integer-Arithmetic-Only Inference", CVPR 2018, §3).
///
/// The gradient of the rounded value passes to the shadow weight unchanged
/// (the straight-through estimator, Bengio, Léonard & Courville, 2013) where
/// the shadow weight's integer lies inside the grid's `qmin...qmax`, and is
/// zero where it saturates, as PyTorch's `FakeQuantize` and our activation
/// quantizers do: a shadow weight beyond the grid stops following the loss
/// (weight decay still pulls it back).
///
/// The grid itself (scales, zero points, integer range) stays fixed, so the
/// trained values are exactly the values the forward used, and the stored
/// model is the one validation chose. The integers saturate to `qmin...qmax`,
/// not to the storage type's range, so a symmetric grid never reaches -128
/// and a reduced-range grid stays within -64...64.
public struct ShadowWeights: Sendable, Equatable {
    /// What the shadow weights are rounded to.
    public enum Format: Sendable, Equatable {
        /// A uniform integer grid: an int8 weight's (``TensorPrecision/int8(_:)``)
        /// or the int32 grid of a quantized layer's bias (``Graph/biasGrid(of:precisions:)``).
        case grid(QuantizationGrid)
        /// IEEE half, ties to even, saturating at ±65504.
        case float16
    }

    public var format: Format
    /// The tensor's shape (the grid's channels run along its axis).
    public var shape: [Int]
    /// The float32 weights the optimizer updates.
    public var values: [Float]

    public init(format: Format, shape: [Int], values: [Float]) {
        precondition(shape.elementCount == values.count, "one shadow weight per element")
        self.format = format; self.shape = shape; self.values = values
    }

    /// The largest finite float16.
    static let float16Max: Float = 65504

    /// Writes the shadow weights rounded onto the format into `out`.
    public func materialize(into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count == values.count, "one value per shadow weight")
        values.withUnsafeBufferPointer { w in
            switch format {
            case .float16:
                for i in 0..<w.count {
                    out[i] = min(max(w[i], -Self.float16Max), Self.float16Max).roundedToFloat16
                }
            case .grid(let grid):
                let range = grid.qmin...grid.qmax
                grid.forEachRun(shape: shape) { start, end, scale, zeroPoint in
                    for i in start..<end {
                        out[i] = QuantizationGrid.fakeQuantize(w[i], scale: scale, zeroPoint: zeroPoint, range: range)
                    }
                }
            }
        }
    }

    /// The shadow weights rounded onto the format.
    public var rounded: [Float] {
        var out = [Float](repeating: 0, count: values.count)
        out.withUnsafeMutableBufferPointer { materialize(into: $0) }
        return out
    }

    /// Turns `gradient`, the loss gradient with respect to the rounded
    /// values, into the straight-through gradient of the shadow weights: kept
    /// where a shadow weight is inside the format's range, zeroed where it
    /// saturates.
    public func straightThrough(_ gradient: UnsafeMutableBufferPointer<Float>) {
        precondition(gradient.count == values.count, "one gradient per shadow weight")
        values.withUnsafeBufferPointer { w in
            switch format {
            case .float16:
                for i in 0..<w.count where !(abs(w[i]) <= Self.float16Max) { gradient[i] = 0 }
            case .grid(let grid):
                let (low, high) = (Float(grid.qmin), Float(grid.qmax))
                grid.forEachRun(shape: shape) { start, end, scale, zeroPoint in
                    let z = Float(zeroPoint)
                    for i in start..<end {
                        let q = (w[i] / scale).rounded(.toNearestOrEven) + z
                        if !(q >= low && q <= high) { gradient[i] = 0 }
                    }
                }
            }
        }
    }
}

extension ParameterBuffer {
    /// Trains this parameter through `shadow` (see ``ShadowWeights``) and
    /// writes the rounded shadow weights into its values.
    public func tie(to shadow: ShadowWeights) {
        precondition(shadow.values.count == count, "shadow weights for '\(name)' need \(count) values")
        policy.shadow = shadow
        shadow.materialize(into: values)
    }
}

extension TrainingGraph {
    /// Ties every trainable parameter stored in a narrow precision to shadow
    /// weights (``ShadowWeights``), so training is quantization-aware and
    /// every trained tensor stays in its precision: each tensor named in
    /// `precisions` (int8 grids and float16), and each bias of a conv or
    /// linear layer with an int8 weight that reads an activation grid, on its
    /// int32 grid (``Graph/biasGrid(of:precisions:)``). The shadow weights
    /// start from the parameter's current values (which may be off the grid:
    /// the float32 weights before quantization). Parameters already tied to a
    /// codebook are left alone.
    public func tieQuantizedTensors(_ precisions: [String: TensorPrecision]) {
        var formats: [String: ShadowWeights.Format] = [:]
        for (name, precision) in precisions {
            switch precision {
            case .float16: formats[name] = .float16
            case .int8(let grid): formats[name] = .grid(grid)
            }
        }
        for node in graph.nodes {
            if let grid = graph.biasGrid(of: node, precisions: precisions) { formats[node.inputs[2]] = .grid(grid) }
        }
        for name in formats.keys.sorted() {
            guard let p = parameters[name], p.policy.codebook == nil, p.policy.shadow == nil else { continue }
            p.tie(to: ShadowWeights(format: formats[name]!, shape: p.shape, values: Array(p.values)))
        }
    }

    /// The shadow weights of every tied parameter, by name: what the next
    /// epoch's graph continues from (``loadShadowWeights(_:)``).
    public var shadowWeights: [String: Tensor] {
        var shadows: [String: Tensor] = [:]
        for (name, p) in parameters {
            if let shadow = p.policy.shadow { shadows[name] = Tensor(shape: shadow.shape, floats: shadow.values) }
        }
        return shadows
    }

    /// Loads shadow weights saved by ``shadowWeights`` into the parameters'
    /// values, before ``tieQuantizedTensors(_:)`` ties them; names that are
    /// not parameters, or whose shapes differ, are skipped.
    public func loadShadowWeights(_ shadows: [String: Tensor]) {
        for (name, tensor) in shadows {
            guard let p = parameters[name], p.shape == tensor.shape, p.policy.shadow == nil else { continue }
            p.load(tensor)
        }
    }
}

extension TensorPrecision {
    /// `values`, a tensor of `shape`, rounded to this precision: float16
    /// ties to even, or quantized and dequantized on the int8 grid.
    public func rounding(_ values: [Float], shape: [Int]) -> [Float] {
        switch self {
        case .float16: values.map(\.roundedToFloat16)
        case .int8(let grid): grid.fakeQuantize(values, shape: shape)
        }
    }
}

extension Model {
    /// Rounds every BatchNorm running statistic of `graph` (a training
    /// graph of this model) that has a precision record to that precision:
    /// training-mode forwards move the statistics, which no optimizer (and so
    /// no shadow weight) updates.
    public mutating func roundStatistics(of graph: TrainingGraph) {
        for name in graph.statistics.keys.sorted() {
            guard let precision = metadata.storage.precisions[name], let tensor = self.graph.initializers[name] else {
                continue
            }
            self.graph.initializers[name] = Tensor(shape: tensor.shape, floats: precision.rounding(tensor.floats, shape: tensor.shape))
        }
    }
}
