import Compress

/// Weight counts of one layer after pruning.
public struct LayerSparsity: Sendable, Equatable {
    public var layer: String
    public var weights: Int
    public var nonZero: Int
    public var sparsity: Double { weights == 0 ? 0 : 1 - Double(nonZero) / Double(weights) }
}

/// Zeroes the smallest-magnitude weights of `layers` (Han et al. 2015) to
/// `target`: a fraction per layer, one fraction over all of `layers` ranked
/// in one list, or a threshold per layer.
///
/// Ranking is by `|w|`, ties broken by position, so results are deterministic;
/// weights that are already zero rank first, so pruning to a higher
/// sparsity never revives a pruned weight. Returns the new graph and each
/// layer's counts.
///
/// - Throws: `PruningTargetNotApplicable` for a MAC fraction, which only
///   channel pruning can meet.
public func magnitudePruned(_ graph: Graph, layers: [PrunableLayer],
                            target: PruningTarget) throws(PruningTargetNotApplicable) -> (Graph, [LayerSparsity]) {
    var g = graph
    let weights = layers.map { graph.initializers[$0.weight]!.floats }
    let pruned: [[Float]]
    switch target {
    case .global(let s):
        pruned = globallyPruned(weights, sparsity: s)
    case .perLayer(let byLayer):
        pruned = zip(layers, weights).map { layer, w in
            byLayer[layer.node].map { prunedSmallest(w, count: prunedCount($0, of: w.count)) } ?? w
        }
    case .thresholds(let byLayer):
        pruned = zip(layers, weights).map { layer, w in
            byLayer[layer.node].map { t in w.map { abs($0) < t ? 0 : $0 } } ?? w
        }
    case .macFraction:
        throw PruningTargetNotApplicable(target: target, granularity: .weight)
    }
    var counts: [LayerSparsity] = []
    for (layer, w) in zip(layers, pruned) {
        let tensor = Tensor(shape: graph.initializers[layer.weight]!.shape, floats: w)
        g.initializers[layer.weight] = tensor
        counts.append(LayerSparsity(layer: layer.node, weights: tensor.count, nonZero: tensor.nonZeroCount))
    }
    return (g, counts)
}

/// Han et al. 2015's threshold rule as per-layer thresholds for
/// `PruningTarget.thresholds`: `k · σ`, σ the standard deviation of the
/// layer's non-zero weights in `graph`.
public func standardDeviationThresholds(_ k: Double, layers: [PrunableLayer], in graph: Graph) -> [String: Float] {
    Dictionary(uniqueKeysWithValues: layers.map { layer in
        (layer.node, Float(k) * nonZeroStandardDeviation(graph.initializers[layer.weight]!.floats))
    })
}

/// Weights removed at sparsity `s` of `n`.
func prunedCount(_ s: Double, of n: Int) -> Int { min(n, max(0, Int((s * Double(n)).rounded()))) }

/// `w` with its `count` smallest-magnitude entries set to zero.
func prunedSmallest(_ w: [Float], count: Int) -> [Float] {
    guard count > 0 else { return w }
    let order = w.indices.sorted { a, b in
        let (x, y) = (abs(w[a]), abs(w[b]))
        return x != y ? x < y : a < b
    }
    var result = w
    for i in order.prefix(count) { result[i] = 0 }
    return result
}

/// Ranks every weight of every layer in one list and zeroes the smallest
/// `sparsity` fraction of the total.
func globallyPruned(_ weights: [[Float]], sparsity: Double) -> [[Float]] {
    var entries: [(magnitude: Float, layer: Int, index: Int)] = []
    entries.reserveCapacity(weights.reduce(0) { $0 + $1.count })
    for (l, w) in weights.enumerated() {
        for (i, v) in w.enumerated() { entries.append((abs(v), l, i)) }
    }
    let count = prunedCount(sparsity, of: entries.count)
    entries.sort { a, b in
        if a.magnitude != b.magnitude { return a.magnitude < b.magnitude }
        return a.layer != b.layer ? a.layer < b.layer : a.index < b.index
    }
    var result = weights
    for e in entries.prefix(count) { result[e.layer][e.index] = 0 }
    return result
}

/// Standard deviation of the non-zero entries (0 when there are none).
func nonZeroStandardDeviation(_ w: [Float]) -> Float {
    let kept = w.filter { $0 != 0 }.map(Double.init)
    guard !kept.isEmpty else { return 0 }
    let mean = kept.reduce(0, +) / Double(kept.count)
    let variance = kept.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(kept.count)
    return Float(variance.squareRoot())
}

/// Fraction of zero weights over `layers` together.
public func weightSparsity(_ graph: Graph, layers: [PrunableLayer]) -> Double {
    var (total, nonZero) = (0, 0)
    for layer in layers {
        let w = graph.initializers[layer.weight]!
        total += w.count
        nonZero += w.nonZeroCount
    }
    return total == 0 ? 0 : Double(total - nonZero) / Double(total)
}
