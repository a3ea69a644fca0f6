import Compress

/// A whole-model target of `lowrank` (`target-macs`, `target-latency`): the
/// pass chooses every budgeted layer's ranks so the model meets it.
public enum RankBudgetTarget: Sendable, Equatable {
    /// At most this fraction of the model's MACs (as `Graph.costReport()` counts them).
    case macs(Double)
    /// At most this fraction of the estimated latency: the sum over the
    /// selected layers of each layer's measured time, the dense layer or its
    /// factor chain run alone on the layer's input shape (1 thread).
    /// `LowRankPass.latencyTable` and `latencyBatch` say where the
    /// measurements are read from (or written to) and at what batch.
    case latency(Double)

    /// The parameters `LowRankPass` declares for whole-model targets.
    static let parameters: [ParameterSpec] = [
        .optional("target-macs", .double,
                  help: "Instead of rank/energy: choose every layer's ranks so the model keeps at most this fraction, in (0, 1), of its MACs (least reconstruction error per MAC saved)."),
        .optional("target-latency", .double,
                  help: "Instead of rank/energy: the same for this fraction, in (0, 1), of the selected layers' latency, each candidate's factor chain timed alone (1 thread)."),
        .optional("latency-table", .string,
                  help: "With --target-latency or --require-reduction latency: JSON file of the measured per-layer latencies; read (nothing timed) when it exists, else measured and written there."),
        .optional("latency-batch", .int,
                  help: "With --target-latency or --require-reduction latency: batch size layers and factor chains are timed at (default: 1)."),
    ]

    /// `latency-table` and `latency-batch`, checked: where measured latencies
    /// are read from or written to, and the batch they are timed at. They
    /// serve `target-latency` and `require-reduction latency` alike, and are
    /// refused without either (`measured`: whether one is given).
    static func latencySettings(_ p: PassParameters, measured: Bool, problems: inout [String]) -> (table: String?, batch: Int) {
        if p.has("latency-table") && !measured {
            problems.append("latency-table holds the measurements of target-latency or require-reduction latency; give it with one of them")
        }
        if p.has("latency-batch") && !measured {
            problems.append("latency-batch is the batch target-latency and require-reduction latency time layers at; give it with one of them")
        }
        let batch = p.optionalInt("latency-batch") ?? 1
        if batch < 1 { problems.append("latency-batch must be >= 1, got \(batch)") }
        return (p.optionalString("latency-table"), batch)
    }

    /// The target given, if any, checked; problems are appended to `problems`.
    static func parse(_ p: PassParameters, method: LowRankPass.Method, problems: inout [String]) -> RankBudgetTarget? {
        let rules = ["rank", "energy", "target-macs", "target-latency"].filter { p.has($0) }
        let targets = rules.filter { $0.hasPrefix("target-") }
        guard let name = targets.first else { return nil }
        if rules.count > 1 {
            problems.append("give one of rank, energy, target-macs and target-latency, not \(rules.joined(separator: " and "))")
        }
        let fraction = p.double(name)
        if !(fraction > 0 && fraction < 1) { problems.append("\(name) must be in (0, 1), got \(fraction)") }
        if method == .cp {
            problems.append("cp has no cheap per-rank error (every rank is its own ALS run): give rank or layer-rank with cp, not \(name)")
        }
        guard name == "target-latency" else { return .macs(fraction) }
        return .latency(fraction)
    }

    var isLatency: Bool {
        if case .latency = self { return true }
        return false
    }

    /// The parameter's name, for messages.
    var name: String {
        switch self {
        case .macs: "target-macs"
        case .latency: "target-latency"
        }
    }

    var fraction: Double {
        switch self {
        case .macs(let f), .latency(let f): f
        }
    }
}

/// One rank choice for one layer: its ranks (empty: the layer left dense),
/// what it costs and how much of the weight it loses.
struct RankCandidate: Sendable, Equatable {
    /// `[r]`, `[inputRank, outputRank]` for Tucker-2, or `[]` for the dense layer.
    var ranks: [Int]
    var macs: Int
    var weights: Int
    /// The squared relative reconstruction error `‖W − Ŵ‖² / ‖W‖²`: the
    /// fraction of squared singular values dropped (svd, channel, spatial), or
    /// the HOSVD bound, the sum of both modes' dropped fractions (tucker2).
    var squaredError: Double
    /// What the target counts: MACs, or measured milliseconds.
    var cost: Double = 0

    var isDense: Bool { ranks.isEmpty }
    var rankText: String { isDense ? "dense" : ranks.map(String.init).joined(separator: "x") }
}

/// A layer the budget accounts for: its candidates, the dense layer first.
/// A pinned layer (`layer-rank`) or one left as it is has one more candidate
/// at most, fixed.
struct BudgetLayer: Sendable {
    var name: String
    var candidates: [RankCandidate]
    /// Whether the budget may choose among the candidates (false: the last is fixed).
    var free: Bool
}

/// The budget's choice: the candidate index of every budget layer.
struct RankBudgetChoice {
    var layers: [BudgetLayer]
    var chosen: [Int]

    var cost: Double { zip(layers, chosen).reduce(0) { $0 + $1.0.candidates[$1.1].cost } }
    var squaredError: Double { zip(layers, chosen).reduce(0) { $0 + $1.0.candidates[$1.1].squaredError } }
}

/// Greedy rank allocation under a cost budget.
///
/// The proxy for accuracy is the sum over layers of the squared relative
/// reconstruction error (each layer counts alike, whatever its weights' scale,
/// which BatchNorm makes arbitrary). Each free layer's candidates are reduced
/// to the lower convex hull of (cost, error) walked from the dense layer
/// towards the cheapest candidate, so along it every step costs more error
/// per unit of cost saved than the one before. Starting with every free layer
/// dense, the step of smallest error increase per cost saved among all layers
/// is taken until the total cost is within `budget` (the classic greedy of
/// bit allocation, Shoham and Gersho 1988, optimal on the hulls). The slack the
/// last step leaves is then spent: each layer in turn moves to its
/// lowest-error candidate that keeps the total within the budget.
///
/// - Returns: nil when even the cheapest candidate of every layer exceeds `budget`.
func allocateRanks(_ layers: [BudgetLayer], fixedCost: Double, budget: Double) -> RankBudgetChoice? {
    var chosen = layers.map { $0.free ? 0 : $0.candidates.count - 1 }
    let hulls = layers.map { $0.free ? lowerHull($0.candidates) : [$0.candidates.count - 1] }
    var position = [Int](repeating: 0, count: layers.count)
    var total = fixedCost + zip(layers, chosen).reduce(0) { $0 + $1.0.candidates[$1.1].cost }
    while total > budget {
        var best: (layer: Int, slope: Double)?
        for (l, hull) in hulls.enumerated() where position[l] + 1 < hull.count {
            let a = layers[l].candidates[hull[position[l]]], b = layers[l].candidates[hull[position[l] + 1]]
            let slope = (b.squaredError - a.squaredError) / (a.cost - b.cost)
            if best == nil || slope < best!.slope { best = (l, slope) }
        }
        guard let (l, _) = best else { return nil }
        let before = layers[l].candidates[chosen[l]].cost
        position[l] += 1
        chosen[l] = hulls[l][position[l]]
        total += layers[l].candidates[chosen[l]].cost - before
    }
    for (l, layer) in layers.enumerated() where layer.free {
        let others = total - layer.candidates[chosen[l]].cost
        var pick = chosen[l]
        for (i, c) in layer.candidates.enumerated()
        where others + c.cost <= budget && c.squaredError < layer.candidates[pick].squaredError {
            pick = i
        }
        total = others + layer.candidates[pick].cost
        chosen[l] = pick
    }
    return RankBudgetChoice(layers: layers, chosen: chosen)
}

/// Indices of the lower convex hull of the candidates' (cost, squared error),
/// from the first (the dense layer) to the cheapest: from each vertex, the
/// next is the cheaper candidate of least error increase per cost saved
/// (ties: the cheaper).
func lowerHull(_ candidates: [RankCandidate]) -> [Int] {
    var hull = [0]
    while true {
        let current = candidates[hull.last!]
        var next: (index: Int, slope: Double)?
        for (i, c) in candidates.enumerated() where c.cost < current.cost {
            let slope = (c.squaredError - current.squaredError) / (current.cost - c.cost)
            if next == nil || slope < next!.slope || (slope == next!.slope && c.cost < candidates[next!.index].cost) {
                next = (i, slope)
            }
        }
        guard let next else { return hull }
        hull.append(next.index)
    }
}

extension LowRankPass {
    /// The fraction of squared singular values dropped at each rank
    /// `1...fullRank` (index `r - 1`) of the matrix the method factors, per
    /// mode for Tucker-2 (`[input, output]`).
    static func droppedEnergy(_ method: Method, weight: Tensor) throws(LowRankError) -> [[Double]] {
        func dropped(_ m: [Float], rows: Int, columns: Int) throws(LowRankError) -> [Double] {
            let squares = try singularValues(of: m, rows: rows, columns: columns).map { Double($0) * Double($0) }
            let total = squares.reduce(0, +)
            var kept = 0.0
            return squares.map { kept += $0; return total > 0 ? max(0, 1 - kept / total) : 0 }
        }
        let s = weight.shape, w = weight.floats
        switch method {
        case .svd: return [try dropped(w, rows: s[0], columns: s[1])]
        case .channel: return [try dropped(w, rows: s[0], columns: s[1] * s[2] * s[3])]
        case .spatial: return [try dropped(SVDFactorization.spatialMatrix(weight), rows: s[1] * s[2], columns: s[3] * s[0])]
        case .tucker2:
            return [try dropped(unfold(w, dims: s, mode: 1), rows: s[1], columns: s[0] * s[2] * s[3]),
                    try dropped(w, rows: s[0], columns: s[1] * s[2] * s[3])]
        case .separable:
            // Every input channel's N x (kh·kw) slice, their spectra pooled.
            let n = s[0], c = s[1], area = s[2] * s[3]
            var squares = [Double](repeating: 0, count: min(n, area))
            for i in 0..<c {
                let slice = SVDFactorization.inputChannelSlice(w, shape: s, channel: i)
                for (k, value) in try singularValues(of: slice, rows: n, columns: area).enumerated() { squares[k] += Double(value) * Double(value) }
            }
            let total = squares.reduce(0, +)
            var kept = 0.0
            return [squares.map { kept += $0; return total > 0 ? max(0, 1 - kept / total) : 0 }]
        case .cp: preconditionFailure("RankBudgetTarget.parse refuses cp")
        }
    }

    /// The layers (op, weight shape) of `method`'s factor chain at `ranks`
    /// for a layer of weight `shape` and `attributes`, as the factorizations
    /// build them (`SVDFactorization`, `TensorFactorization`).
    static func chainShape(_ method: Method, shape: [Int], attributes: Conv2d, ranks: [Int]) -> [(op: Op, weight: [Int])] {
        let r = ranks[0]
        switch method {
        case .svd: return [(.linear, [r, shape[1]]), (.linear, [shape[0], r])]
        case .channel:
            return [(.conv2d(attributes), [r, shape[1], shape[2], shape[3]]), (.conv2d(Conv2d()), [shape[0], r, 1, 1])]
        case .spatial:
            return [(.conv2d(attributes.vertical), [r, shape[1], shape[2], 1]),
                    (.conv2d(attributes.horizontal), [shape[0], r, 1, shape[3]])]
        case .tucker2:
            return [(.conv2d(Conv2d()), [r, shape[1], 1, 1]), (.conv2d(attributes), [ranks[1], r, shape[2], shape[3]]),
                    (.conv2d(Conv2d()), [shape[0], ranks[1], 1, 1])]
        case .separable:
            var depthwise = attributes
            depthwise.groups = shape[1]
            return [(.conv2d(depthwise), [shape[1] * r, 1, shape[2], shape[3]]), (.conv2d(Conv2d()), [shape[0], shape[1] * r, 1, 1])]
        case .cp:
            var vertical = attributes.vertical, horizontal = attributes.horizontal
            vertical.groups = r
            horizontal.groups = r
            return [(.conv2d(Conv2d()), [r, shape[1], 1, 1]), (.conv2d(vertical), [r, 1, shape[2], 1]),
                    (.conv2d(horizontal), [r, 1, 1, shape[3]]), (.conv2d(Conv2d()), [shape[0], r, 1, 1])]
        }
    }

    /// MACs (`NodeCost.macs`) and weights of a chain of `layers` on an input of `inputShape` (batch 1).
    static func chainCost(_ layers: [(op: Op, weight: [Int])], inputShape: [Int]) throws(GraphError) -> (macs: Int, weights: Int) {
        var shape = inputShape, macs = 0, weights = 0
        for layer in layers {
            let node = Node(name: "factor", op: layer.op, inputs: ["x", "w"], output: "y")
            let out = try node.outputShape(inputShapes: [shape, layer.weight])
            macs += NodeCost.macs(of: layer.op, outputShape: out, weightShape: layer.weight)
            weights += layer.weight.reduce(1, *)
            shape = out
        }
        return (macs, weights)
    }

    /// Candidate ranks of one mode of full rank `full`: the multiples of
    /// `round-to` below it and `full` itself, thinned to at most `limit`
    /// evenly spaced values (the smallest and `full` always kept).
    func candidateRanks(full: Int, limit: Int? = nil) -> [Int] {
        var ranks = Array(stride(from: roundTo, to: full, by: roundTo)) + [full]
        if let limit, ranks.count > limit {
            let step = Double(ranks.count - 1) / Double(limit - 1)
            ranks = (0..<limit).map { ranks[Int((Double($0) * step).rounded())] }
        }
        return ranks
    }

    /// `rank` rounded up to a multiple of `round-to`, capped at `full`, as `factorize` rounds it.
    func roundedRank(_ rank: Int, full: Int) -> Int { min(full, (rank + roundTo - 1) / roundTo * roundTo) }

    /// At most this many candidate ranks per mode are timed for `target-latency`.
    static let latencyCandidatesPerMode = 12

    /// The candidates of `node` (dense first). A free layer gets every rank
    /// (`candidateRanks`; for Tucker-2 every pair of them, or with `latency` only
    /// pairs at the same position in both modes' lists); a pinned one
    /// (`pinnedRanks`, a `layer-rank` entry's) its one rank choice. With `require-reduction` counts or latency, candidates with
    /// no fewer weights or MACs than the layer are dropped.
    func budgetCandidates(_ node: Node, in graph: Graph, inputShape: [Int], pinnedRanks: [Int]?,
                          latency: Bool) throws -> [RankCandidate] {
        let weight = graph.initializers[node.inputs[1]]!
        var attributes = Conv2d()
        if case .conv2d(let a) = node.op { attributes = a }
        let full = Self.fullRanks(method, shape: weight.shape)
        let dense = try Self.chainCost([(node.op, weight.shape)], inputShape: inputShape)
        let dropped = try Self.droppedEnergy(method, weight: weight)
        var rankLists: [[Int]]
        if let pinnedRanks {
            rankLists = [pinnedRanks.count == full.count ? zip(pinnedRanks, full).map { roundedRank($0, full: $1) }
                                                         : full.map { roundedRank(min(pinnedRanks[0], $0), full: $0) }]
        } else if method == .tucker2 {
            let limit = latency ? Self.latencyCandidatesPerMode : nil
            let inputs = candidateRanks(full: full[0], limit: limit), outputs = candidateRanks(full: full[1], limit: limit)
            if latency {
                // The same position in both lists: the two ranks shrink together.
                let count = max(inputs.count, outputs.count)
                rankLists = (0..<count).map { k in
                    [inputs[k * (inputs.count - 1) / max(count - 1, 1)], outputs[k * (outputs.count - 1) / max(count - 1, 1)]]
                }
            } else {
                rankLists = inputs.flatMap { r1 in outputs.map { [r1, $0] } }
            }
        } else {
            rankLists = candidateRanks(full: full[0], limit: latency ? Self.latencyCandidatesPerMode : nil).map { [$0] }
        }
        var candidates = [RankCandidate(ranks: [], macs: dense.macs, weights: dense.weights, squaredError: 0)]
        for ranks in rankLists {
            let cost = try Self.chainCost(Self.chainShape(method, shape: weight.shape, attributes: attributes, ranks: ranks),
                                          inputShape: inputShape)
            if requireReduction != .none && (cost.weights >= dense.weights || cost.macs >= dense.macs) { continue }
            let error = zip(ranks, dropped).reduce(0.0) { $0 + $1.1[$1.0 - 1] }
            candidates.append(RankCandidate(ranks: ranks, macs: cost.macs, weights: cost.weights, squaredError: min(error, 1)))
        }
        return candidates
    }
}

/// What a whole-model target decided, for `LowRankPass.apply`.
struct RankBudgetOutcome {
    /// The chosen ranks of every budgeted layer that is factorized.
    var ranks: [String: [Int]] = [:]
    /// Budgeted layers the choice leaves dense.
    var keptDense: Set<String> = []
    /// Why a layer of `keptDense` is (`require-reduction latency`: no factor
    /// chain it could have is faster than the layer), by layer.
    var slowerThanDense: [String: String] = [:]
    /// Record lines: the target, the cost before and after, per-layer estimates.
    var changes: [String] = []
    var metrics: [String: Double] = [:]
}

extension LowRankPass {
    /// Chooses the ranks of the free layers among `layers` (those no
    /// `layer-rank` entry pins and `reasonToSkip` keeps) so `model` meets
    /// `target` (`allocateRanks`); pinned layers count at their given rank.
    /// Throws one message when the target cannot be reached, naming the
    /// lowest reachable fraction.
    func chooseRanks(for layers: [PrunableLayer], in model: Model, target: RankBudgetTarget,
                     context: PassContext) throws -> RankBudgetOutcome {
        let graph = model.graph
        let shapes = try graph.inferShapes(batch: 1)
        let measured = target.isLatency || requireReduction == .latency
        var budgetLayers: [BudgetLayer] = [], nodes: [Node] = [], inputShapes: [[Int]] = []
        for layer in layers where reasonToSkip(layer, in: model) == nil {
            let node = graph.nodes[graph.nodeIndex(named: layer.node)!]
            let pinned = layerRanks.first { globMatches($0.pattern, layer.node) }?.ranks
            let inputShape = shapes[node.inputs[0]]!
            let candidates = try budgetCandidates(node, in: graph, inputShape: inputShape, pinnedRanks: pinned, latency: measured)
            budgetLayers.append(BudgetLayer(name: layer.node, candidates: candidates, free: pinned == nil))
            nodes.append(node)
            inputShapes.append(inputShape)
        }
        var outcome = RankBudgetOutcome()
        var source = ""
        if measured {
            source = try setLatencies(&budgetLayers, nodes: nodes, inputShapes: inputShapes, graph: graph, batch: latencyBatch,
                                      tablePath: latencyTable, context: context)
            if requireReduction == .latency { leaveOutSlowerChains(&budgetLayers, source: source, outcome: &outcome) }
        }
        let total: Double, fixedCost: Double, costName: String
        switch target {
        case .macs:
            for l in budgetLayers.indices {
                for c in budgetLayers[l].candidates.indices { budgetLayers[l].candidates[c].cost = Double(budgetLayers[l].candidates[c].macs) }
            }
            total = Double(try graph.costReport().totalMACs)
            fixedCost = total - budgetLayers.reduce(0) { $0 + $1.candidates[0].cost }
            costName = "MACs"
        case .latency:
            total = budgetLayers.reduce(0) { $0 + $1.candidates[0].cost }
            fixedCost = 0
            costName = "estimated latency"
        }
        guard let choice = allocateRanks(budgetLayers, fixedCost: fixedCost, budget: target.fraction * total) else {
            let lowest = fixedCost + budgetLayers.reduce(0) { sum, layer in
                sum + (layer.free ? layer.candidates.map(\.cost).min()! : layer.candidates.last!.cost)
            }
            throw ParameterError(pass: Self.name, problems: [String(
                format: "%@ %g cannot be reached: the lowest reachable fraction of the %@ is %.4f (every budgeted layer at its smallest rank)",
                target.name, target.fraction, costName, total > 0 ? lowest / total : 0)])
        }
        let after = fixedCost + choice.cost
        for (layer, index) in zip(choice.layers, choice.chosen) where layer.free {
            let candidate = layer.candidates[index]
            if candidate.isDense { outcome.keptDense.insert(layer.name) } else { outcome.ranks[layer.name] = candidate.ranks }
        }
        switch target {
        case .macs:
            outcome.changes.append(String(
                format: "target-macs %g: MACs %.0f -> %.0f (%.4f of the model), sum of squared relative errors %.4f over %d budgeted layer(s)",
                target.fraction, total, after, after / total, choice.squaredError, budgetLayers.count))
        case .latency:
            outcome.changes.append(String(
                format: "target-latency %g: estimated latency (the sum over the %d budgeted layers, each timed alone, batch %d, 1 thread; "
                    + "other ops not counted) %.4f -> %.4f ms (%.4f), sum of squared relative errors %.4f; latencies %@",
                target.fraction, budgetLayers.count, latencyBatch, total, after, total > 0 ? after / total : 0, choice.squaredError, source))
            for (layer, index) in zip(choice.layers, choice.chosen) {
                outcome.changes.append(String(format: "%@: %@ ranks %@, estimated %.4f -> %.4f ms", layer.name,
                                              layer.free ? "budget" : "layer-rank", layer.candidates[index].rankText,
                                              layer.candidates[0].cost, layer.candidates[index].cost))
            }
            outcome.metrics["estimated-latency-before-ms"] = total
            outcome.metrics["estimated-latency-after-ms"] = after
        }
        outcome.metrics["budget-squared-error"] = choice.squaredError
        return outcome
    }

    /// `require-reduction latency`: drops from each of `layers` (latencies
    /// set) the factor chains not faster than the dense layer. A layer left
    /// with the dense layer alone, where it had chains, is put in
    /// `outcome.keptDense` with a record line giving the times.
    func leaveOutSlowerChains(_ layers: inout [BudgetLayer], source: String, outcome: inout RankBudgetOutcome) {
        for l in layers.indices {
            let dense = layers[l].candidates[0]
            let chains = layers[l].candidates.dropFirst()
            let faster = chains.filter { $0.cost < dense.cost }
            guard faster.count < chains.count else { continue }
            layers[l].candidates = [dense] + faster
            guard faster.isEmpty else { continue }
            outcome.keptDense.insert(layers[l].name)
            let fastest = chains.min { $0.cost < $1.cost }!
            outcome.slowerThanDense[layers[l].name] = notFasterReason(
                ranks: layers[l].free ? "any rank (fastest: \(fastest.rankText))" : "rank \(fastest.rankText)",
                chainMs: fastest.cost, denseMs: dense.cost, source: source)
        }
    }

    /// The record line's end for a layer left dense because its factor chain
    /// did not run faster than the layer, both timed alone.
    func notFasterReason(ranks: String, chainMs: Double, denseMs: Double, source: String) -> String {
        String(format: "%@ at %@ would not run faster: %.4f ms as factors, %.4f ms dense (each timed alone, batch %d, 1 thread; latencies %@)",
               method.rawValue, ranks, chainMs, denseMs, latencyBatch, source)
    }

    /// `require-reduction latency` without a target: times each planned
    /// factor chain and its dense layer alone, as `target-latency` times
    /// candidates (`setLatencies`, the same table), and turns the plans whose
    /// chain is not faster into skips giving both times.
    func checkMeasuredLatency(_ plans: inout [(layer: String, decision: LayerDecision)], graph: Graph,
                              context: PassContext) throws {
        let shapes = try graph.inferShapes(batch: 1)
        var indices: [Int] = [], timed: [BudgetLayer] = [], nodes: [Node] = [], inputShapes: [[Int]] = []
        for (i, entry) in plans.enumerated() {
            guard case .factorize(let plan) = entry.decision else { continue }
            indices.append(i)
            nodes.append(plan.node)
            inputShapes.append(shapes[plan.node.inputs[0]]!)
            timed.append(BudgetLayer(name: entry.layer, candidates: [
                RankCandidate(ranks: [], macs: plan.macsBefore, weights: plan.weightCount, squaredError: 0),
                RankCandidate(ranks: plan.factorization.ranks, macs: plan.macsAfter, weights: plan.factorCount,
                              squaredError: Double(plan.factorization.relativeError * plan.factorization.relativeError)),
            ], free: false))
        }
        guard !timed.isEmpty else { return }
        let source = try setLatencies(&timed, nodes: nodes, inputShapes: inputShapes, graph: graph, batch: latencyBatch,
                                      tablePath: latencyTable, context: context)
        for (i, layer) in zip(indices, timed) {
            let dense = layer.candidates[0], chain = layer.candidates[1]
            guard chain.cost >= dense.cost else { continue }
            plans[i].decision = .skip(notFasterReason(ranks: "rank \(chain.rankText)", chainMs: chain.cost,
                                                       denseMs: dense.cost, source: source))
        }
    }

    /// The rule that factorizes a layer at exactly a candidate's `ranks`
    /// (already multiples of `round-to` or full), per mode for Tucker-2.
    func budgetRule(_ ranks: [Int]) -> LayerRankRule {
        ranks.count == 2 ? .tucker2(input: ranks[0], output: ranks[1]) : .selection(.rank(ranks[0]))
    }
}
