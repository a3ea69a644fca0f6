import Foundation

/// Multirate training (Vlaar & Leimkuhler, "Multirate Training of Neural
/// Networks", ICML 2022, arXiv:2106.10771): the parameters are split into a
/// fast and a slow group; fast parameters are updated every step with step
/// size `h`, slow ones every `k` steps with the paper's scaled step size
/// `h_S = k · h` (their Figure 1), through the run's own optimizer rule
/// (momentum and moments of a slow parameter advance on its updates only).
///
/// The saving is real work not done: on the `k - 1` steps between slow
/// updates the backward pass is scoped to the fast parameters
/// (``BackwardScope``), so it stops below the lowest fast layer and computes
/// no weight gradient of a slow layer. With the last layers fast, as the
/// paper does for transfer learning, that skips most of the backward.
///
/// Not implemented: the paper's linear-drift variant (slow parameters moving
/// by their momentum on the steps in between) and more than two rates.
public struct MultirateSettings: Sendable, Equatable {
    /// `k`: slow parameters are updated every `period` steps; 1 is plain training.
    public var period = 1
    /// Node-name patterns (comma-separated, shell-style) of the slow layers; empty when not given.
    public var slowLayers = ""
    /// The last `fastLast` conv and linear layers (and the layers after the
    /// first of them) are fast, every earlier layer slow; 0 when not given.
    public var fastLast = 0

    public init() {}

    /// Whether training is multirate (`period > 1`).
    public var isEnabled: Bool { period > 1 }

    /// Every problem with these settings that does not need the model.
    public var problems: [String] {
        var p: [String] = []
        if period < 1 { p.append("multirate must be at least 1 (1 is plain training), got \(period)") }
        if !slowLayers.isEmpty && fastLast != 0 { p.append("slow and fast-last both choose the slow layers: give one") }
        if fastLast < 0 { p.append("fast-last must be at least 1, got \(fastLast)") }
        if period > 1 && slowLayers.isEmpty && fastLast == 0 {
            p.append("multirate \(period) needs the slow layers: slow PATTERNS or fast-last N")
        }
        return p
    }

    /// The settings as text for the model history and checkpoint checks (empty for plain training).
    public var descriptions: [String: String] {
        guard isEnabled else { return [:] }
        var d = ["multirate": String(period)]
        if !slowLayers.isEmpty { d["slow"] = slowLayers }
        if fastLast != 0 { d["fast-last"] = String(fastLast) }
        return d
    }

    /// A pass's fine-tune group giving multirate options (`overrides`, by
    /// training parameter name) with no epoch to fine-tune: one problem, named with `prefix`.
    static func problems(fineTuneOverrides overrides: [String: String], epochs: Int, prefix: String) -> [String] {
        let given = ["multirate", "slow", "fast-last"].filter { overrides[$0] != nil && !($0 == "multirate" && overrides[$0] == "1") }
        guard epochs == 0, !given.isEmpty else { return [] }
        return ["\(given.map { prefix + $0 }.joined(separator: ", ")) without fine-tuning: give \(prefix)epochs N > 0"]
    }

    /// The multirate parameters (`multirate`, `slow`, `fast-last`) of the training parameters.
    static func parameterSpecs(defaults d: MultirateSettings) -> [ParameterSpec] {
        [
            ParameterSpec("multirate", .int, default: .int(d.period),
                          help: "Multirate training (Vlaar & Leimkuhler 2022): update the slow layers every k steps with k times the step size, the fast ones every step; 1 is plain training."),
            .optional("slow", .string, help: "For multirate: the slow layers, as node-name patterns ('conv*,bn*')."),
            .optional("fast-last", .int,
                      help: "For multirate: the last N conv/linear layers (and the layers after the first of them) are fast, the rest slow."),
        ]
    }

    init(parameters p: PassParameters) {
        period = p.int("multirate")
        slowLayers = p.optionalString("slow") ?? ""
        fastLast = p.optionalInt("fast-last") ?? 0
    }

    /// The slow layers of `graph` (conv, linear and BatchNorm nodes reading a
    /// float initializer, in graph order), or an error naming what is wrong:
    /// a pattern that matches no such layer, `fast-last` out of range, or
    /// every layer slow.
    public func slowNodes(in graph: Graph, pass: String) throws(ParameterError) -> [String] {
        let layers = parameterizedLayers(in: graph)
        let names = layers.map(\.name)
        let slow: [String]
        if fastLast > 0 {
            let weighted = layers.filter { $0.op.readsWeights }
            guard fastLast < weighted.count else {
                throw ParameterError(pass: pass, problems: [
                    "fast-last must be between 1 and \(weighted.count - 1): the model has \(weighted.count) conv and linear layers (\(weighted.map(\.name).joined(separator: ", ")))",
                ])
            }
            let firstFast = names.firstIndex(of: weighted[weighted.count - fastLast].name)!
            slow = Array(names[..<firstFast])
        } else {
            let selection = LayerSelection(include: slowLayers, exclude: "")
            let unmatched = selection.include.filter { pattern in !names.contains { globMatches(pattern, $0) } }
            guard unmatched.isEmpty else {
                throw ParameterError(pass: pass, problems: unmatched.map {
                    "slow pattern '\($0)' matches no layer (layers: \(names.joined(separator: ", ")))"
                })
            }
            slow = names.filter(selection.contains)
        }
        guard slow.count < names.count else {
            throw ParameterError(pass: pass, problems: ["every layer is slow: nothing would train between the slow updates"])
        }
        return slow
    }

    /// Conv, linear and BatchNorm nodes whose parameters are float initializers, in graph order.
    private func parameterizedLayers(in graph: Graph) -> [Node] {
        graph.nodes.filter { node in
            switch node.op {
            case .conv2d, .linear, .batchNorm: node.inputs.count > 1 && graph.initializers[node.inputs[1]] != nil
            default: false
            }
        }
    }
}

/// The steps of one multirate run: which are full (every `period`-th,
/// counting from the first step of the run) and how each is done.
public final class MultirateTrainer {
    public let period: Int
    /// The slow layers' node names.
    public let slowNodes: Set<String>
    private var fast: [ParameterBuffer] = []
    private var slow: [ParameterBuffer] = []
    private var scope: BackwardScope?

    /// A trainer updating the parameters of `slowNodes` every `period` steps.
    public init(period: Int, slowNodes: [String]) {
        precondition(period >= 1, "multirate period must be at least 1")
        self.period = period
        self.slowNodes = Set(slowNodes)
    }

    /// Splits `graph`'s parameters into fast and slow and plans the scoped
    /// backward of the fast-only steps (call for each epoch's fresh graph).
    public func prepare(_ graph: TrainingGraph) {
        let slowNames = Set(graph.model.graph.nodes.filter { slowNodes.contains($0.name) }.flatMap { $0.inputs.dropFirst() })
        let all = graph.parameterNames.map { graph.parameters[$0]! }
        slow = all.filter { slowNames.contains($0.name) }
        fast = all.filter { !slowNames.contains($0.name) }
        scope = graph.backwardScope(updating: Set(fast.map(\.name)))
    }

    /// Whether step `step` (counted over the run from 0) updates the slow parameters too.
    public func isFullStep(_ step: Int) -> Bool { step % period == 0 }

    /// The backward and update of step `step` after its forward: on a full
    /// step every gradient, the fast parameters moved with `learningRate` and
    /// the slow ones with `period · learningRate`; on the others the scoped
    /// backward and the fast parameters only.
    public func backwardAndUpdate(_ graph: TrainingGraph, gradient: Tensor, optimizer: any Optimizer,
                                  learningRate: Float, step: Int) throws {
        try backwardAndUpdate(graph, seeds: [graph.model.graph.outputs[0]: gradient], optimizer: optimizer,
                              learningRate: learningRate, step: step)
    }

    /// `backwardAndUpdate` with loss gradients seeded at any values of the last
    /// forward (the output's, and an auxiliary loss's such as a hint's).
    public func backwardAndUpdate(_ graph: TrainingGraph, seeds: [String: Tensor], optimizer: any Optimizer,
                                  learningRate: Float, step: Int) throws {
        precondition(scope != nil, "prepare(_:) the graph first")
        if isFullStep(step) {
            try graph.backward(seeds: seeds)
            optimizer.step(fast, learningRate: learningRate)
            optimizer.step(slow, learningRate: learningRate * Float(period))
        } else {
            try graph.backward(seeds: seeds, scope: scope)
            optimizer.step(fast, learningRate: learningRate)
        }
    }
}
