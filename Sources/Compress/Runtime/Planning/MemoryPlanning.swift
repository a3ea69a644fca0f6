/// The exact buffers of one batch size's plan, checked by `BatchPlan` and
/// `ImageWisePlan` against the `MemoryBudget` before they allocate (the
/// graph-level lower bound, `Model.inferenceMemoryNeed(batch:)`, is checked
/// by `Session.init` before anything is planned).
extension ExecutionPlan {
    /// Bytes of the weights the plan's kernels hold, as float32, and the largest of them.
    var weights: (bytes: Int, largest: MemoryNeed.TensorSize?) {
        let sizes = graph.initializers.map { name, tensor in
            MemoryNeed.TensorSize(name: name, shape: tensor.shape, bytes: MemoryNeed.bytes(elements: tensor.shape, elementSize: 4))
        }
        let need = MemoryNeed(purpose: "", tensors: sizes)
        return (need.bytes, need.largest)
    }

    /// What running `batch` images with this plan needs: the weights,
    /// `plannedFloats` floats of buffers (arenas, scratch, staging), and the
    /// caller's copies of the inputs and outputs at `shapes` (batch-sized);
    /// the largest tensor among the values and weights.
    func memoryNeed(batch: Int, shapes: [[Int]], plannedFloats: Int, purpose: String) -> MemoryNeed {
        let values = valueNames.indices.map { id in
            MemoryNeed.TensorSize(name: shapeNames[id], shape: shapes[id],
                                  bytes: MemoryNeed.bytes(elements: shapes[id], elementSize: 4))
        }
        let caller = Set(inputIDs + outputIDs).sorted().map { values[$0] }
        let weights = self.weights
        let planned = MemoryNeed.TensorSize(name: "", shape: [], bytes: MemoryNeed.bytes(elements: [plannedFloats], elementSize: 4))
        var need = MemoryNeed(purpose: purpose, tensors: caller + [planned], extraBytes: weights.bytes)
        need.largest = (values + [weights.largest].compactMap { $0 }).max { $0.bytes < $1.bytes }
        return need
    }
}
