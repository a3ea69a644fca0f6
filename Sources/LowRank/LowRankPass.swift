import Compress
import Foundation

/// `lowrank`: replaces each selected conv or linear layer by the chain of
/// smaller layers of its low-rank factorization (`SVDFactorization`,
/// `TensorFactorization`), then optionally fine-tunes.
///
/// The chain's nodes are named `<layer>.factor1`, `<layer>.factor2`, ..., their
/// weights `<layer>.factorK.weight`; the last factor carries the layer's bias
/// and writes the layer's output value, so whatever read it (BatchNorm, ReLU,
/// a residual Add) reads the chain's output unchanged. A layer is left as it
/// is, and the record says why, when its factorization would not reduce both
/// its weights and its MACs (unless `require-reduction` is none), or, with
/// `require-reduction latency`, would not run faster as measured, when its
/// weight is sparse, shared, hashed or stored at a reduced precision
/// (factorizing would make it dense float32 again), when another node reads
/// its weight, or when only `layer-rank` is given and no entry matches it.
/// With `target-macs` or `target-latency` the ranks are chosen for the whole
/// model (`chooseRanks`, `allocateRanks`), which may also leave a layer dense.
public struct LowRankPass: Pass {
    public static let name = "lowrank"
    public static let summary = "Factorize conv/linear layers into chains of smaller layers (truncated SVD, channel/spatial SVD, Tucker-2, CP, depthwise-separable), optionally fine-tuning."

    /// How a layer is factorized.
    public enum Method: String, CaseIterable, Sendable {
        /// Linear layers: `n -> r -> m` (Denton et al. 2014).
        case svd
        /// Convolutions: `kh x kw` conv `C -> r`, then 1x1 `r -> N` (Zhang et al. 2016).
        case channel
        /// Convolutions: `kh x 1` conv `C -> r`, then `1 x kw` `r -> N` (Jaderberg et al. 2014).
        case spatial
        /// Convolutions: 1x1 `C -> r1`, `kh x kw` `r1 -> r2`, 1x1 `r2 -> N` (Kim et al. 2016).
        case tucker2
        /// Convolutions: 1x1 `C -> R`, depthwise `kh x 1`, depthwise `1 x kw`, 1x1 `R -> N` (Lebedev et al. 2015).
        case cp
        /// Convolutions: `kh x kw` depthwise with depth multiplier `m` (`C -> C·m`), then 1x1 `C·m -> N`,
        /// from each input channel's rank-`m` SVD (Howard et al. 2017; `SVDFactorization.separable`).
        case separable

        /// Whether the method factorizes convolutions (otherwise linear layers).
        public var factorizesConvolutions: Bool { self != .svd }
    }

    /// How ranks are chosen where no `layer-rank` entry gives them.
    public enum RankSelectionMode: String, CaseIterable, Sendable {
        /// `rank` or `energy`.
        case explicit
        /// Empirical VBMF of the matrix the method factorizes (tucker2: of both
        /// channel-mode unfoldings, `vbmfTucker2Ranks`; separable: the largest of
        /// the channel slices' ranks), as Kim et al. 2016 choose Tucker-2 ranks
        /// ("Compression of Deep Convolutional Neural Networks for Fast and Low
        /// Power Mobile Applications", ICLR 2016, https://arxiv.org/abs/1511.06530).
        case vbmf
    }

    /// One layer's rank rule: a selection (rank, energy or VBMF), or Tucker-2's
    /// input and output ranks from a `layer-rank` entry `AxB`.
    enum LayerRankRule: Equatable {
        case selection(RankSelection)
        case tucker2(input: Int, output: Int)
    }

    /// When a layer whose factorization would not reduce its cost is left dense (`require-reduction`).
    public enum ReductionRequirement: String, CaseIterable, Sendable {
        /// The factors must have fewer weights and fewer MACs than the layer.
        case counts
        /// As `counts`, and the factor chain, timed alone on the layer's input
        /// shape as `target-latency` times candidates (`setLatencies`), must be
        /// faster than the dense layer timed the same way.
        case latency
        /// Factorize whatever the cost.
        case none
    }

    /// A weight with at least this fraction of exact zeros counts as sparse.
    public static let sparseZeroFraction = 0.1

    public static let parameters: [ParameterSpec] = [
        ParameterSpec("method", .choice(Method.allCases.map(\.rawValue)), default: .string("svd"),
                      help: "svd (linear layers), channel, spatial, tucker2, cp or separable (convolutions with groups = 1)."),
        .optional("rank", .int,
                  help: "Rank of every selected layer (tucker2: both channel ranks, each capped at its mode's full rank; separable: the depth multiplier)."),
        .optional("energy", .double,
                  help: "Instead of rank: the smallest rank keeping this fraction, in (0, 1], of the squared singular values (not for cp)."),
        .optional("layer-rank", .string,
                  help: "Per-layer ranks overriding rank/energy/rank-selection, e.g. 'conv3=16,fc*=8' (patterns allowed; first match wins; tucker2 also INPUTxOUTPUT, e.g. conv3=16x24)."),
        ParameterSpec("rank-selection", .choice(RankSelectionMode.allCases.map(\.rawValue)), default: .string("explicit"),
                      help: "explicit (rank, energy or layer-rank) or vbmf (ranks estimated by empirical VBMF; not for cp; layer-rank entries still override)."),
        ParameterSpec("layers", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of the layers to factorize (default: every layer the method applies to)."),
        ParameterSpec("exclude", .string, default: .string(""),
                      help: "Comma-separated node-name patterns of layers to leave alone."),
        ParameterSpec("round-to", .int, default: .int(1),
                      help: "Round each rank up to a multiple of this (e.g. 8 for the blocked kernels), capped at the full rank."),
        ParameterSpec("require-reduction", .choice(ReductionRequirement.allCases.map(\.rawValue)), default: .string("counts"),
                      help: "Leave a layer as it is when its factors would not have fewer weights and MACs (counts), or also would not run faster, each timed alone (latency; see latency-table); none factorizes it anyway."),
    ] + RankBudgetTarget.parameters + FineTuneParameters.specs(epochsHelp: "Fine-tuning epochs after factorizing, training every factor (default: 0).")

    public let method: Method
    public let rank: Int?
    public let energy: Float?
    /// `layer-rank` as pattern/ranks pairs, in the order given: one rank, or
    /// Tucker-2's input and output ranks (`AxB`).
    public let layerRanks: [(pattern: String, ranks: [Int])]
    public let rankSelection: RankSelectionMode
    /// `target-macs` or `target-latency`: ranks chosen for the whole model (`chooseRanks`).
    public let target: RankBudgetTarget?
    public let selection: LayerSelection
    public let roundTo: Int
    public let requireReduction: ReductionRequirement
    /// `latency-table` and `latency-batch`, for `target-latency` and `require-reduction latency`.
    public let latencyTable: String?
    public let latencyBatch: Int
    public let fineTuneEpochs: Int
    /// Fine-tuning settings by training parameter name (`lr`, `flip`, ...).
    public let fineTuneOverrides: [String: String]

    public init(parameters p: PassParameters) throws {
        var problems: [String] = []
        method = Method(rawValue: p.string("method"))!
        rank = p.optionalInt("rank")
        energy = p.optionalDouble("energy").map(Float.init)
        if let rank, rank < 1 { problems.append("rank must be >= 1, got \(rank)") }
        if let e = p.optionalDouble("energy"), !(e > 0 && e <= 1) {
            problems.append("energy must be in (0, 1], got \(e)")
        }
        if rank != nil && energy != nil { problems.append("give rank or energy, not both") }
        layerRanks = p.optionalString("layer-rank").map { text in
            parsePerLayerValues(text, parameter: "layer-rank", valueName: "rank",
                                requirement: ">= 1 (tucker2 also INPUTxOUTPUT, e.g. 16x24)", problems: &problems) { value in
                let ranks = value.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
                return (1...2).contains(ranks.count) && ranks.allSatisfy { $0 >= 1 } ? ranks : nil
            }.map { (pattern: $0.pattern, ranks: $0.value) }
        } ?? []
        if method != .tucker2, let entry = layerRanks.first(where: { $0.ranks.count > 1 }) {
            problems.append("layer-rank entry '\(entry.pattern)=\(entry.ranks.map(String.init).joined(separator: "x"))': "
                            + "INPUTxOUTPUT ranks are for tucker2 only; \(method.rawValue) takes one rank")
        }
        requireReduction = ReductionRequirement(rawValue: p.string("require-reduction"))!
        (latencyTable, latencyBatch) = RankBudgetTarget.latencySettings(
            p, measured: p.has("target-latency") || requireReduction == .latency, problems: &problems)
        target = RankBudgetTarget.parse(p, method: method, problems: &problems)
        rankSelection = RankSelectionMode(rawValue: p.string("rank-selection"))!
        switch rankSelection {
        case .explicit:
            if rank == nil && energy == nil && p.optionalString("layer-rank") == nil && target == nil {
                problems.append("give rank, energy, target-macs, target-latency or layer-rank")
            }
        case .vbmf:
            if rank != nil || energy != nil || target != nil {
                problems.append("rank-selection vbmf chooses the ranks: give layer-rank to override it for some layers, not rank, energy or a target")
            }
            if method == .cp {
                problems.append("rank-selection vbmf needs singular values, and cp has none: give rank or layer-rank")
            }
        }
        if method == .cp && energy != nil {
            problems.append("cp has no singular values to keep a fraction of: give rank or layer-rank, not energy")
        }
        selection = LayerSelection(include: p.string("layers"), exclude: p.string("exclude"))
        roundTo = p.int("round-to")
        if roundTo < 1 { problems.append("round-to must be >= 1, got \(roundTo)") }
        let fineTune = FineTuneParameters.request(p)
        fineTuneEpochs = fineTune.epochs ?? 0
        fineTuneOverrides = fineTune.overrides
        problems += FineTuneParameters.problems(fineTune)
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
    }

    /// The selected layers: every pattern must match a conv or linear layer;
    /// without `layers`, every layer the method applies to; with it, a matched
    /// layer the method does not apply to is an error naming it.
    func selectedLayers(in graph: Graph) throws(ParameterError) -> (layers: [PrunableLayer], notes: [String]) {
        let chosen = try selection.layers(in: graph, pass: Self.name)
        var layers: [PrunableLayer] = [], notes: [String] = [], problems: [String] = []
        let kind = method.factorizesConvolutions ? "convolutions" : "linear layers"
        for layer in chosen {
            let node = graph.nodes[graph.nodeIndex(named: layer.node)!]
            if layer.isConv != method.factorizesConvolutions {
                if !selection.include.isEmpty {
                    problems.append("\(method.rawValue) applies to \(kind); '\(layer.node)' is a \(node.op.kind)")
                }
                continue
            }
            if case .conv2d(let a) = node.op, a.groups != 1 {
                let text = "'\(layer.node)' is a grouped convolution (groups = \(a.groups)); \(method.rawValue) needs groups = 1"
                if selection.include.isEmpty { notes.append("\(layer.node): skipped: grouped convolution (groups = \(a.groups))") } else { problems.append(text) }
                continue
            }
            // A 1x1 kernel has nothing to separate: its depthwise factor would only scale channels.
            if method == .separable, let w = graph.initializers[layer.weight], w.rank == 4, w.shape[2] * w.shape[3] == 1 {
                let text = "'\(layer.node)' is a 1x1 convolution; separable needs a kernel larger than 1x1"
                if selection.include.isEmpty { notes.append("\(layer.node): skipped: 1x1 convolution; separable needs a larger kernel") } else { problems.append(text) }
                continue
            }
            layers.append(layer)
        }
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
        guard !layers.isEmpty else {
            throw ParameterError(pass: Self.name, problems: [
                "no selected layer is one \(method.rawValue) applies to (\(kind)); selected: \(chosen.map(\.node).joined(separator: ", "))"])
        }
        let unmatched = unmatchedPatternProblems(layerRanks.map(\.pattern), parameter: "layer-rank", layers: layers)
        guard unmatched.isEmpty else { throw ParameterError(pass: Self.name, problems: unmatched) }
        return (layers, notes)
    }

    /// The rank rule of `layer`: its first `layer-rank` entry, else `rank`, else
    /// `energy`, else VBMF when `rank-selection` is vbmf.
    func rankRule(for layer: PrunableLayer) -> LayerRankRule? {
        if let entry = layerRanks.first(where: { globMatches($0.pattern, layer.node) }) {
            return entry.ranks.count == 2 ? .tucker2(input: entry.ranks[0], output: entry.ranks[1]) : .selection(.rank(entry.ranks[0]))
        }
        if let rank { return .selection(.rank(rank)) }
        if let energy { return .selection(.energy(energy)) }
        return rankSelection == .vbmf ? .selection(.vbmf) : nil
    }

    /// Why `layer` is left dense, or nil when it may be factorized.
    func reasonToSkip(_ layer: PrunableLayer, in model: Model) -> String? {
        let storage = model.metadata.storage
        if storage.sharedTensors.contains(layer.weight) { return "its weight is shared (k-means codebook); factorizing would undo that" }
        if storage.hashedTensors[layer.weight] != nil { return "its weight is hashed (HashedNets); factorizing would undo that" }
        if let precision = storage.precisions[layer.weight] {
            return "its weight is stored at precision \(precision); factorizing would make it float32 again"
        }
        let weight = model.graph.initializers[layer.weight]!
        let zeros = weight.count - weight.nonZeroCount
        if Double(zeros) >= Self.sparseZeroFraction * Double(weight.count) {
            return String(format: "its weight is sparse (%.1f%% zeros); factorizing would make it dense", 100 * Double(zeros) / Double(weight.count))
        }
        let readers = model.graph.consumers(of: layer.weight).map(\.name).filter { $0 != layer.node }
        if !readers.isEmpty { return "its weight is also read by \(readers.joined(separator: ", "))" }
        return nil
    }

    /// A layer `apply` will factorize, once the measured check (if any) passes.
    struct PlannedFactorization {
        var node: Node
        var factorization: Factorization
        var weightCount: Int, factorCount: Int
        var macsBefore: Int, macsAfter: Int
        var rankText: String { factorization.ranks.map(String.init).joined(separator: "x") }
    }

    /// What `apply` does with one selected layer.
    enum LayerDecision {
        /// Left as it is, for this reason (the record line's end).
        case skip(String)
        case factorize(PlannedFactorization)
    }

    public func apply(to model: Model, context: PassContext) throws -> PassOutcome {
        let (layers, notes) = try selectedLayers(in: model.graph)
        let budget = try target.map { try chooseRanks(for: layers, in: model, target: $0, context: context) }
        var current = model
        var changes = notes + (budget?.changes ?? [])
        var problems: [String] = []
        var factorized = 0, skipped = notes.count
        var layerParamsBefore = 0, layerParamsAfter = 0
        var maxError: Float = 0
        // Each layer's decision: a record line (skipped) or a factorization.
        // Factorizing one layer does not change another's weights or input
        // shape, so all are decided on the original graph, then measured
        // together (one table), then applied.
        var plans: [(layer: String, decision: LayerDecision)] = []
        let costs = try model.graph.costReport()
        for layer in layers {
            try context.checkCancellation()
            if let reason = reasonToSkip(layer, in: model) {
                plans.append((layer.node, .skip(reason)))
                continue
            }
            if let budget, budget.keptDense.contains(layer.node) {
                plans.append((layer.node, .skip(budget.slowerThanDense[layer.node] ?? "left dense by the \(target!.name) choice")))
                continue
            }
            guard let rule = budget?.ranks[layer.node].map(budgetRule) ?? rankRule(for: layer) else {
                plans.append((layer.node, .skip("no layer-rank entry matches it, and neither rank nor energy is given")))
                continue
            }
            let node = model.graph.nodes[model.graph.nodeIndex(named: layer.node)!]
            let factorization: Factorization
            do {
                factorization = try factorize(node, in: model.graph, rule: rule)
            } catch {
                problems.append("layer '\(layer.node)': \(error)")
                continue
            }
            let candidate = try replacing(node, with: factorization.layers, in: model.graph)
            // The layer's own weights and MACs before, its factors' after.
            let factorNames = Set((1...factorization.layers.count).map { "\(layer.node).factor\($0)" })
            let plan = PlannedFactorization(
                node: node, factorization: factorization,
                weightCount: model.graph.initializers[layer.weight]!.count,
                factorCount: factorization.layers.reduce(0) { $0 + $1.weight.count },
                macsBefore: costs.macsByNode[layer.node] ?? 0,
                macsAfter: try candidate.costReport().nodes.filter { factorNames.contains($0.name) }.reduce(0) { $0 + $1.macs })
            if requireReduction != .none && (plan.factorCount >= plan.weightCount || plan.macsAfter >= plan.macsBefore) {
                plans.append((layer.node, .skip(
                    "\(method.rawValue) at rank \(plan.rankText) would not reduce weights and MACs "
                        + "(weights \(plan.weightCount) -> \(plan.factorCount), MACs \(plan.macsBefore) -> \(plan.macsAfter))")))
                continue
            }
            plans.append((layer.node, .factorize(plan)))
        }
        guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
        // With a target the budget has already timed every candidate and left
        // the slower ones out (`chooseRanks`).
        if requireReduction == .latency && target == nil {
            try checkMeasuredLatency(&plans, graph: model.graph, context: context)
        }
        for (name, decision) in plans {
            guard case .factorize(let plan) = decision else {
                if case .skip(let reason) = decision { changes.append("\(name): skipped: \(reason)") }
                skipped += 1
                continue
            }
            current.graph = try replacing(plan.node, with: plan.factorization.layers, in: current.graph)
            factorized += 1
            layerParamsBefore += plan.weightCount
            layerParamsAfter += plan.factorCount
            maxError = max(maxError, plan.factorization.relativeError)
            changes.append(String(format: "%@: %@ rank %@, %d -> %d weights (%.2fx), MACs %d -> %d, relative error %.4f",
                                  name, method.rawValue, plan.rankText, plan.weightCount, plan.factorCount,
                                  Double(plan.weightCount) / Double(max(plan.factorCount, 1)),
                                  plan.macsBefore, plan.macsAfter, plan.factorization.relativeError))
        }
        var metrics: [String: Double] = (budget?.metrics ?? [:]).merging([
            "factorized-layers": Double(factorized),
            "skipped-layers": Double(skipped),
            "factorized-weights-before": Double(layerParamsBefore),
            "factorized-weights-after": Double(layerParamsAfter),
            "max-relative-error": Double(maxError),
        ]) { $1 }
        if fineTuneEpochs > 0 {
            current = try context.fineTune(current, epochs: fineTuneEpochs, overrides: fineTuneOverrides, pass: Self.name)
            let validation = current.metadata.history.last?.metrics["validation-accuracy"] ?? 0
            metrics["validation-accuracy"] = validation
            changes.append(String(format: "fine-tuned %d epoch(s): validation %.2f%%", fineTuneEpochs, validation * 100))
        }
        return PassOutcome(model: current, changes: changes, metrics: metrics)
    }

    /// The factorization of `node` by the pass's method under `rule`, with
    /// ranks rounded up to `round-to` (capped at the full rank).
    func factorize(_ node: Node, in graph: Graph, rule layerRule: LayerRankRule) throws(LowRankError) -> Factorization {
        let weight = graph.initializers[node.inputs[1]]!
        let bias = node.inputs.count > 2 ? graph.initializers[node.inputs[2]] : nil
        if node.inputs.count > 2 && bias == nil {
            throw .badShape(what: "bias '\(node.inputs[2])' (not an initializer)", shape: [], expected: "an initializer")
        }
        var attributes = Conv2d()
        if case .conv2d(let a) = node.op { attributes = a }
        let full = Self.fullRanks(method, shape: weight.shape)
        func roundedUp(_ r: Int, cap: Int) -> Int { min(cap, (r + roundTo - 1) / roundTo * roundTo) }

        if case .tucker2(let input, let output) = layerRule {
            // init refuses AxB for other methods.
            guard weight.rank == 4 else {
                throw .badShape(what: "convolution weight", shape: weight.shape, expected: "[N, C, kh, kw]")
            }
            for (r, cap) in zip([input, output], full) where r > cap { throw .rankOutOfRange(rank: r, fullRank: cap) }
            return try TensorFactorization.tucker2(weight: weight, bias: bias, attributes: attributes,
                                                   inputRank: roundedUp(input, cap: full[0]), outputRank: roundedUp(output, cap: full[1]))
        }
        guard case .selection(let rule) = layerRule else { preconditionFailure("handled above") }

        switch method {
        case .svd, .channel, .spatial, .separable:
            func run(_ selection: RankSelection) throws(LowRankError) -> Factorization {
                switch method {
                case .svd: try SVDFactorization.linear(weight: weight, bias: bias, rank: selection)
                case .channel: try SVDFactorization.channel(weight: weight, bias: bias, attributes: attributes, rank: selection)
                case .separable: try SVDFactorization.separable(weight: weight, bias: bias, attributes: attributes, multiplier: selection)
                default: try SVDFactorization.spatial(weight: weight, bias: bias, attributes: attributes, rank: selection)
                }
            }
            let first = try run(rule)
            let r = roundedUp(first.ranks[0], cap: full[0])
            return r == first.ranks[0] ? first : try run(.rank(r))
        case .tucker2:
            guard weight.rank == 4 else {
                throw .badShape(what: "convolution weight", shape: weight.shape, expected: "[N, C, kh, kw]")
            }
            var ranks: [Int]
            switch rule {
            case .rank(let r):
                let largest = full.max()!
                guard r >= 1, r <= largest else { throw .rankOutOfRange(rank: r, fullRank: largest) }
                ranks = full.map { min(r, $0) }
            case .energy(let e):
                let dims = weight.shape, w = weight.floats
                let n = dims[0], c = dims[1], s = dims[2] * dims[3]
                ranks = [try SingularValueDecomposition(unfold(w, dims: dims, mode: 1), rows: c, columns: n * s).rank(keepingEnergy: e),
                         try SingularValueDecomposition(w, rows: n, columns: c * s).rank(keepingEnergy: e)]
            case .vbmf:
                let estimate = try vbmfTucker2Ranks(weight.floats, shape: weight.shape)
                ranks = [estimate.input, estimate.output]
            }
            ranks = zip(ranks, full).map { roundedUp($0, cap: $1) }
            return try TensorFactorization.tucker2(weight: weight, bias: bias, attributes: attributes,
                                                   inputRank: ranks[0], outputRank: ranks[1])
        case .cp:
            guard case .rank(let r) = rule else { preconditionFailure("LowRankPass.init refuses energy and vbmf for cp") }
            let rounded = r >= 1 && r <= full[0] ? roundedUp(r, cap: full[0]) : r
            return try TensorFactorization.cp(weight: weight, bias: bias, attributes: attributes, rank: rounded)
        }
    }

    /// The largest ranks `method` allows for a weight of `shape`: one rank, or
    /// the input and output ranks of Tucker-2.
    static func fullRanks(_ method: Method, shape: [Int]) -> [Int] {
        switch method {
        case .svd:
            return [shape.count == 2 ? min(shape[0], shape[1]) : 0]
        case .channel, .spatial, .tucker2, .cp, .separable:
            guard shape.count == 4 else { return method == .tucker2 ? [0, 0] : [0] }
            let n = shape[0], c = shape[1], kh = shape[2], kw = shape[3], s = kh * kw
            switch method {
            case .channel: return [min(n, c * s)]
            case .spatial: return [min(c * kh, kw * n)]
            case .tucker2: return [min(c, n * s), min(n, c * s)]
            case .separable: return [min(n, s)]
            default: return [shape.reduce(1, *) / shape.max()!]
            }
        }
    }

    /// `graph` with `node` replaced by `chain`: nodes `<node>.factorK` writing
    /// values of the same names, weights `<node>.factorK.weight`; the last
    /// factor reads the node's bias and writes the node's output value. The
    /// node's weight initializer is removed.
    func replacing(_ node: Node, with chain: [FactorLayer], in graph: Graph) throws(ParameterError) -> Graph {
        var g = graph
        let index = g.nodeIndex(named: node.name)!
        var taken = Set(g.nodes.map(\.name)).union(g.nodes.map(\.output)).union(g.initializers.keys).union(g.inputs.map(\.name))
        var nodes: [Node] = []
        var previous = node.inputs[0]
        for (k, layer) in chain.enumerated() {
            let name = "\(node.name).factor\(k + 1)", weightName = name + ".weight"
            let isLast = k == chain.count - 1
            for n in [name, weightName] where taken.contains(n) {
                throw ParameterError(pass: Self.name, problems: ["cannot factorize '\(node.name)': the name '\(n)' is already used"])
            }
            taken.formUnion([name, weightName])
            var inputs = [previous, weightName]
            if isLast && node.inputs.count > 2 { inputs.append(node.inputs[2]) }
            g.initializers[weightName] = layer.weight
            let output = isLast ? node.output : name
            nodes.append(Node(name: name, op: layer.op, inputs: inputs, output: output))
            previous = output
        }
        g.nodes.replaceSubrange(index...index, with: nodes)
        g.initializers[node.inputs[1]] = nil
        return g
    }
}
