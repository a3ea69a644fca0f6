import Compress
import Foundation

/// How `quantize` chooses each activation's range from calibration images.
public enum CalibrationMethod: String, Sendable, CaseIterable {
    /// The smallest and largest value seen.
    case minmax
    /// The values at the `percentile`-th percentile from each end of a
    /// histogram of the values seen, so rare outliers do not stretch the grid
    /// (as onnxruntime's percentile calibrator does).
    case percentile
    /// The clipping threshold whose quantized histogram is closest to the
    /// values' own in Kullback-Leibler divergence (Migacz, "8-bit Inference
    /// with TensorRT", GTC 2017).
    case entropy
}

/// The activation storage type of `quantize --format int8`.
public enum ActivationType: String, Sendable, CaseIterable {
    /// uint8, asymmetric: onnxruntime's usual QDQ form on x86.
    case uint8
    /// int8, asymmetric.
    case int8
    /// Activations stay float32 (weight-only quantization).
    case none
}

/// The values of `graph` to quantize, in node order: the graph's first input
/// and, for every conv, linear, add and average pool, its output or that of
/// the ReLU/ReLU6 that alone reads it (onnxruntime's quantizer fuses that
/// activation into the layer). Graph outputs (logits) stay float32, and so do
/// the values max pooling, flatten and reshape pass on: they hold the grid
/// values of their input already.
func activationQuantizationPoints(in graph: Graph) -> [String] {
    var points: [String] = graph.inputs.first.map { [$0.name] } ?? []
    let consumers = Dictionary(grouping: graph.nodes.flatMap { node in node.inputs.map { ($0, node) } }, by: \.0)
        .mapValues { $0.map(\.1) }
    for node in graph.nodes {
        switch node.op {
        case .conv2d, .linear, .add, .avgPool, .globalAvgPool: break
        default: continue
        }
        var value = node.output
        if let readers = consumers[value], readers.count == 1, readers[0].op == .relu || readers[0].op == .relu6 {
            value = readers[0].output
        }
        if !graph.outputs.contains(value) && !points.contains(value) { points.append(value) }
    }
    return points
}

/// Running statistics of one value over the calibration images.
struct ValueRange {
    var lower = Float.infinity
    var upper = -Float.infinity

    mutating func add(_ values: [Float]) {
        for v in values where v.isFinite { lower = min(lower, v); upper = max(upper, v) }
    }
}

/// A histogram of one value over `[lower, upper]` with `bins` equal bins.
struct ValueHistogram {
    let lower: Float
    let upper: Float
    var counts: [Int]

    init(_ range: ValueRange, bins: Int = 2048) {
        (lower, upper) = range.lower <= range.upper ? (range.lower, range.upper) : (0, 0)
        counts = [Int](repeating: 0, count: bins)
    }

    mutating func add(_ values: [Float]) {
        let width = (upper - lower) / Float(counts.count)
        guard width > 0 else { counts[0] += values.count; return }
        for v in values where v.isFinite {
            counts[min(counts.count - 1, max(0, Int((v - lower) / width)))] += 1
        }
    }

    /// The range keeping all but a fraction `(100 - percentile) / 100` of
    /// the values at each end (bin edges: the lower edge of the first bin
    /// kept, the upper edge of the last).
    func range(percentile: Double) -> (lower: Float, upper: Float) {
        let total = counts.reduce(0, +)
        guard total > 0 else { return (0, 0) }
        let cut = Double(total) * (100 - percentile) / 100
        let width = (upper - lower) / Float(counts.count)
        var (seen, first) = (0, 0)
        while first < counts.count - 1, Double(seen + counts[first]) <= cut { seen += counts[first]; first += 1 }
        (seen) = 0
        var last = counts.count - 1
        while last > first, Double(seen + counts[last]) <= cut { seen += counts[last]; last -= 1 }
        return (lower + Float(first) * width, lower + Float(last + 1) * width)
    }
}

/// A histogram of one value's magnitudes over `[0, bound]` with `bins` equal bins.
struct MagnitudeHistogram {
    let bound: Float
    var counts: [Int]

    init(_ range: ValueRange, bins: Int = 2048) {
        bound = range.lower <= range.upper ? max(abs(range.lower), abs(range.upper)) : 0
        counts = [Int](repeating: 0, count: bins)
    }

    mutating func add(_ values: [Float]) {
        let width = bound / Float(counts.count)
        guard width > 0 else { counts[0] += values.count; return }
        for v in values where v.isFinite { counts[min(counts.count - 1, Int(abs(v) / width))] += 1 }
    }

    /// The threshold `t` (a bin edge) minimizing KL(P || Q), where P is the
    /// histogram cut at `t` with the clipped counts added to its last bin and
    /// Q is the cut histogram (without them) merged into `levels` equal
    /// groups, each group's mass spread evenly over its non-empty bins. At
    /// least `levels` bins.
    ///
    /// The first bin's count is replaced by the second's first, as NVIDIA's
    /// TensorRT calibration tools do: after a ReLU most values are exactly
    /// zero, and that spike, smeared over the first group's bins by Q, would
    /// otherwise dominate the divergence and push the threshold down to the
    /// shortest cut (measured: 2 to 6 points of top-1 lost on VGG-small and
    /// ResNet-20). Zero is exact on every grid, so its count says nothing
    /// about where to clip.
    func entropyThreshold(levels: Int) -> Float {
        let n = counts.count
        guard bound > 0, n > levels else { return bound }
        let width = bound / Float(n)
        var counts = self.counts
        if n > 1 { counts[0] = counts[1] }
        var suffix = [Int](repeating: 0, count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) { suffix[i] = suffix[i + 1] + counts[i] }
        var (best, bestDivergence) = (n, Double.infinity)
        for cut in levels...n {
            var p = counts[0..<cut].map(Double.init)
            p[cut - 1] += Double(suffix[cut])
            var q = [Double](repeating: 0, count: cut)
            for g in 0..<levels {
                let (start, end) = (g * cut / levels, (g + 1) * cut / levels)
                let nonEmpty = (start..<end).filter { counts[$0] > 0 }.count
                guard nonEmpty > 0 else { continue }
                // Q is built from the cut histogram without the clipped mass, so clipping costs divergence.
                let mass = (start..<end).reduce(0.0) { $0 + Double(counts[$1]) } / Double(nonEmpty)
                for i in start..<end where counts[i] > 0 { q[i] = mass }
            }
            let (pTotal, qTotal) = (p.reduce(0, +), q.reduce(0, +))
            guard pTotal > 0, qTotal > 0 else { continue }
            var divergence = 0.0
            for i in 0..<cut where p[i] > 0 {
                let (pi, qi) = (p[i] / pTotal, max(q[i] / qTotal, 1e-12))
                divergence += pi * log(pi / qi)
            }
            if divergence < bestDivergence { (best, bestDivergence) = (cut, divergence) }
        }
        return Float(best) * width
    }
}

/// The per-tensor quantizer of each of `points` (values of `model`'s
/// graph), from the ranges they take on `images` (`[N] + inputShape`
/// pixels in [0, 1]), run through the runtime in batches of 64.
func calibratedActivations(_ model: Model, points: [String], images: Tensor, method: CalibrationMethod,
                           percentile: Double, type: ActivationType, context: PassContext) throws
    -> [String: ActivationQuantization] {
    var probe = model
    let inputName = model.graph.inputs.first?.name
    probe.graph.outputs = points.filter { $0 != inputName }
    let session = try Session(model: probe, threads: context.threads)
    let count = images.shape[0]
    let batches = stride(from: 0, to: count, by: 64).map { $0..<min($0 + 64, count) }

    /// Each point's values on one batch (the graph input as the model normalizes it).
    func values(_ batch: Range<Int>) throws -> [String: [Float]] {
        let x = images.samples(batch)
        var out = try session.run(inputs: [inputName!: x], normalizing: true).mapValues(\.floats)
        if let inputName, points.contains(inputName) { out[inputName] = normalized(x, model.metadata.normalization) }
        return out
    }

    var ranges = [String: ValueRange](uniqueKeysWithValues: points.map { ($0, ValueRange()) })
    for batch in batches {
        try context.checkCancellation()
        for (name, v) in try values(batch) { ranges[name]!.add(v) }
    }
    var bounds = ranges.mapValues { ($0.lower <= $0.upper ? ($0.lower, $0.upper) : (0, 0)) }
    if method == .percentile {
        var histograms = ranges.mapValues { ValueHistogram($0) }
        for batch in batches {
            try context.checkCancellation()
            for (name, v) in try values(batch) { histograms[name]!.add(v) }
        }
        bounds = histograms.mapValues { $0.range(percentile: percentile) }
    }
    if method == .entropy {
        var histograms = ranges.mapValues { MagnitudeHistogram($0) }
        for batch in batches {
            try context.checkCancellation()
            for (name, v) in try values(batch) { histograms[name]!.add(v) }
        }
        // Only non-negative values (after a ReLU) are clipped: on signed ones
        // (the normalized input, a conv without ReLU) the threshold of the
        // magnitudes clipped far too much in our measurements, so they keep
        // their min/max.
        for (name, histogram) in histograms where ranges[name]!.lower >= 0 {
            bounds[name] = (0, min(max(ranges[name]!.upper, 0), histogram.entropyThreshold(levels: 256)))
        }
    }
    let signed = type == .int8
    let (qmin, qmax): (Int32, Int32) = signed ? (-128, 127) : (0, 255)
    return bounds.mapValues { b in
        let (scale, zeroPoint) = QuantizationGrid.scaleAndZeroPoint(lower: b.0, upper: b.1, qmin: qmin, qmax: qmax,
                                                                    symmetric: false)
        return ActivationQuantization(scale: scale, zeroPoint: zeroPoint, signed: signed)
    }
}

/// `x` (`[N, C, ...]` pixels) with the per-channel normalization applied, as
/// `(x - mean) / std`.
private func normalized(_ x: Tensor, _ normalization: Normalization?) -> [Float] {
    guard let normalization, x.rank >= 2 else { return x.floats }
    let (channels, inner) = (x.shape[1], x.shape[2...].reduce(1, *))
    var values = x.floats
    for i in values.indices {
        let c = (i / inner) % channels
        values[i] = (values[i] - normalization.mean[c]) / normalization.std[c]
    }
    return values
}

/// `graph` with a `quantizeDequantize` node after each value of
/// `quantizers`: the node `<producer or input>.quantize` reads the value and
/// every former reader reads the quantized value `<value>.quantized` instead.
func insertingActivationQuantizers(_ graph: Graph, _ quantizers: [String: ActivationQuantization]) -> Graph {
    var g = graph
    var nodes: [Node] = []
    let inputNodes = g.inputs.compactMap { input in
        quantizers[input.name].map { q in
            Node(name: input.name + ".quantize", op: .quantizeDequantize(q), inputs: [input.name], output: input.name + ".quantized")
        }
    }
    nodes += inputNodes
    for node in g.nodes {
        var n = node
        n.inputs = n.inputs.map { quantizers[$0] != nil ? $0 + ".quantized" : $0 }
        nodes.append(n)
        if let q = quantizers[node.output] {
            nodes.append(Node(name: node.name + ".quantize", op: .quantizeDequantize(q), inputs: [node.output],
                              output: node.output + ".quantized"))
        }
    }
    g.nodes = nodes
    return g
}
