/// A backward pass restricted to the gradients of some parameters: the steps
/// it runs, and for each the input gradients it passes on and whether it
/// computes its own parameter gradients.
///
/// A step runs when it updates one of the parameters or when some step below
/// it does (its input gradient is needed there); every other step, in
/// particular every layer below the lowest one with an updated parameter, is
/// skipped. A running step passes a gradient only to inputs whose producer
/// runs, so the lowest updated layer computes its weight gradient and no
/// input gradient, and a layer above it whose parameters are not updated
/// computes its input gradient and no weight gradient. This is what makes the
/// fast-only steps of multirate training (``MultirateTrainer``) cheaper than
/// full ones.
///
/// Built for one `TrainingGraph` by ``TrainingGraph/backwardScope(updating:)``.
public final class BackwardScope {
    /// The parameters whose gradients the scoped backward computes.
    public let parameters: Set<String>
    /// Indices of the plan's steps that run, in graph order.
    let steps: [Int]
    /// Per plan step: which inputs receive a gradient (empty for a step that does not run).
    private let passesGradient: [[Bool]]
    /// Per plan step: whether it computes its parameter gradients.
    private let computesParameterGradients: [Bool]
    /// The node names of the steps that run, in graph order.
    public let nodes: [String]

    init(plan: TrainingPlan, graph: Graph, updating parameters: Set<String>) {
        self.parameters = parameters
        let nodes = Dictionary(graph.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var producer = [Int?](repeating: nil, count: plan.names.count)
        var runs = [Bool](repeating: false, count: plan.steps.count)
        var passes = [[Bool]](repeating: [], count: plan.steps.count)
        var updates = [Bool](repeating: false, count: plan.steps.count)
        for (s, step) in plan.steps.enumerated() {
            let needed = step.inputs.map { id -> Bool in
                let root = plan.root(id)
                if let p = producer[root] { return runs[p] }
                return plan.needsGradient[root]
            }
            updates[s] = nodes[step.node]?.inputs.dropFirst().contains { parameters.contains($0) } ?? false
            runs[s] = updates[s] || needed.contains(true)
            passes[s] = needed
            producer[plan.root(step.output)] = s
        }
        steps = runs.indices.filter { runs[$0] }
        passesGradient = passes
        computesParameterGradients = updates
        self.nodes = steps.map { plan.steps[$0].node }
    }

    /// `full` (a batch state's bindings, one per plan step) with input
    /// gradients and parameter gradients switched off where this scope does not need them.
    func bindings(_ full: [TrainingBinding]) -> [TrainingBinding] {
        var scoped = full
        for s in steps {
            scoped[s].computesParameterGradients = computesParameterGradients[s]
            for (k, passes) in passesGradient[s].enumerated() where !passes { scoped[s].inputGradients[k] = nil }
        }
        return scoped
    }
}

extension TrainingGraph {
    /// A scope for `backward(_:scope:)` that computes the gradients of
    /// `parameters` (names from ``parameters``) and nothing it can avoid.
    public func backwardScope(updating parameters: Set<String>) -> BackwardScope {
        BackwardScope(plan: plan, graph: graph, updating: parameters)
    }
}
