/// A batch run one image at a time: each worker owns a batch-1 `BatchPlan`
/// and pushes its share of the images through the whole graph, so every
/// feature map stays in the core's cache (a batch-64 feature map of a 28x28
/// CNN is megabytes; one image's is tens of kilobytes) and workers never
/// wait for each other between layers. Inputs are staged and outputs
/// collected in batch-sized buffers.
///
/// Only for graphs where images do not interact (`ExecutionPlan.isImageWise`).
final class ImageWisePlan {
    let batch: Int
    /// Batch-`batch` shapes of every value.
    let shapes: [[Int]]
    /// Batch-sized storage of the graph inputs and outputs, by value id.
    let buffers: [Int: FloatBuffer]
    let workers: [BatchPlan]
    /// What each worker's steps run on: one thread, its own.
    let serial = WorkerPool(threads: 1)
    /// The graph inputs and outputs: value id, batch storage and floats per image.
    private let inputs: [(id: Int, storage: UnsafeMutablePointer<Float>, count: Int)]
    private let outputs: [(id: Int, storage: UnsafeMutablePointer<Float>, count: Int)]

    /// Plans `batch` images over `min(threads, batch)` workers, after checking
    /// what it needs against `budget`: the weights, the batch-sized input and
    /// output buffers and the caller's copies of them, and every worker's
    /// batch-1 arena and scratch.
    ///
    /// - Throws: `GraphError` when shapes cannot be inferred,
    ///   `MemoryBudgetExceeded` when the plan does not fit `budget`.
    init(_ plan: ExecutionPlan, batch: Int, threads: Int, budget: MemoryBudget) throws {
        self.batch = batch
        let byName = try plan.graph.inferShapes(batch: batch)
        let shapes = plan.shapeNames.map { byName[$0]! }
        self.shapes = shapes
        let workerCount = max(1, min(threads, batch))
        let one = try plan.graph.inferShapes(batch: 1)
        let oneShapes = plan.shapeNames.map { one[$0]! }
        let perWorker = BatchPlan.plannedFloats(BatchPlan.arenaCount(plan, shapes: oneShapes),
                                                BatchPlan.scratchPerWorker(plan, shapes: oneShapes), 1)
        // Floats of the batch-sized buffers the images are staged in and collected from.
        let staging = Set(plan.inputIDs + plan.outputIDs).reduce(0) { total, id in
            addingSaturated(total, MemoryNeed.bytes(elements: shapes[id], elementSize: 1))
        }
        try budget.check(plan.memoryNeed(batch: batch, shapes: shapes,
                                         plannedFloats: addingSaturated(multipliedSaturated(perWorker, workerCount), staging),
                                         purpose: "inference at batch \(batch)"))
        var buffers: [Int: FloatBuffer] = [:]
        for id in plan.inputIDs + plan.outputIDs where buffers[id] == nil {
            buffers[id] = FloatBuffer(count: shapes[id].elementCount)
        }
        self.buffers = buffers
        let staged = { (id: Int) in (id: id, storage: buffers[id]!.pointer, count: shapes[id].elementCount / batch) }
        inputs = plan.inputIDs.map(staged)
        outputs = plan.outputIDs.map(staged)
        workers = try (0..<workerCount).map { _ in try BatchPlan(plan, batch: 1, threads: 1, budget: nil) }
    }

    /// Where value `id` (a graph input or output) lives for the whole batch.
    func pointer(_ id: Int) -> UnsafeMutablePointer<Float> { buffers[id]!.pointer }

    /// Runs every image on `pool` (each thread claims the next image and runs it on its own plan):
    /// copy its inputs in, run the steps, copy its outputs out.
    func execute(_ plan: ExecutionPlan, pool: WorkerPool) {
        pool.forEachPart(batch, workers: workers.count) { image, worker in
            let local = self.workers[worker]
            for input in inputs {
                local.pointers[input.id].update(from: input.storage + image &* input.count, count: input.count)
            }
            let context = KernelContext(scratch: local.scratch.pointer, scratchPerWorker: local.scratchPerWorker,
                                        pool: serial)
            for (step, binding) in zip(plan.steps, local.bindings) { step.kernel.run(binding, context) }
            for output in outputs {
                (output.storage + image &* output.count).update(from: local.pointers[output.id], count: output.count)
            }
        }
    }
}

extension ExecutionPlan {
    /// Whether a batch should run image by image: every image's outputs depend
    /// on that image's inputs alone (every value keeps the batch as its
    /// leading axis, checked on the inferred shapes at batch 1 and 2, and no
    /// op reduces or concatenates along it), and no linear layer is so large
    /// (over 64K weights) that reading its weights once per image would cost
    /// more than the batch GEMM that reads them once (LeNet-5's 800x500 layer).
    func computesIsImageWise() -> Bool {
        for node in graph.nodes where node.op == .linear {
            if (graph.initializers[node.inputs[1]]?.shape.elementCount ?? 0) > 65_536 { return false }
        }
        guard let one = try? graph.inferShapes(batch: 1), let two = try? graph.inferShapes(batch: 2) else { return false }
        for (name, shape) in one {
            guard let other = two[name] else { return false }
            if graph.initializers[name] != nil { continue }
            guard shape.first == 1, other == [2] + shape.dropFirst() else { return false }
        }
        for node in graph.nodes {
            let rank = one[node.output]?.count ?? 0
            switch node.op {
            case .softmax(let axis), .concat(let axis):
                if (axis < 0 ? axis + rank : axis) == 0 { return false }
            default: break
            }
        }
        return true
    }
}
