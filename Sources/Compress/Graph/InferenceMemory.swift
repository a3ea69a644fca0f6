/// What running a model needs in memory at least, from its graph's shapes
/// alone, so work that cannot fit the `MemoryBudget` is refused with
/// `MemoryBudgetExceeded` before anything is planned or allocated. The
/// runtime's plans check their exact buffers again (`BatchPlan`).
extension Model {
    /// The least memory running this model on `batch` images needs: its
    /// weights as float32, the caller's copies of the graph inputs and outputs,
    /// and the node whose inputs and output together are largest (they are in
    /// memory together). Nothing is allocated.
    ///
    /// - Throws: `GraphError` when the shapes cannot be inferred.
    public func inferenceMemoryNeed(batch: Int) throws -> MemoryNeed {
        let shapes = try graph.inferShapes(batch: batch)
        func size(_ name: String) -> MemoryNeed.TensorSize? {
            shapes[name].map { MemoryNeed.TensorSize(name: name, shape: $0) }
        }
        let weights = graph.initializers.keys.sorted().compactMap(size)
        let caller = (graph.inputs.map(\.name) + graph.outputs).compactMap(size)
        var largestNode: [MemoryNeed.TensorSize] = []
        var largestNodeBytes = 0
        for node in graph.nodes {
            let values = Set(node.inputs.filter { graph.initializers[$0] == nil } + [node.output]).sorted().compactMap(size)
            let bytes = MemoryNeed(purpose: "", tensors: values).bytes
            if bytes > largestNodeBytes { (largestNode, largestNodeBytes) = (values, bytes) }
        }
        return MemoryNeed(purpose: "inference at batch \(batch)", tensors: weights + caller + largestNode)
    }

    /// Throws `MemoryBudgetExceeded` when running this model on `batch`
    /// images cannot fit `budget` (`inferenceMemoryNeed(batch:)`, a lower
    /// bound: what passes here may still be refused when a batch is planned),
    /// `GraphError` when the shapes cannot be inferred.
    public func checkInferenceMemory(batch: Int = 1, budget: MemoryBudget = .processDefault) throws {
        try budget.check(inferenceMemoryNeed(batch: batch))
    }
}
