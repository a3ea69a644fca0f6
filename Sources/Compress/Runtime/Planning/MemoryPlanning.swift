/// The exact buffers of one batch size's plan, checked by `BatchPlan` and
/// `ImageWisePlan` against the `MemoryBudget` before they allocate (the
/// graph-level lower bound, `Model.inferenceMemoryNeed(batch:)`, is checked
/// by `Session.init` before anything is planned).
extension ExecutionPlan {
    /// Bytes of the weights the plan's kernels hold, as float32, and the largest of them.
    var weights: (bytes: Int, largest: MemoryNeed.TensorSize?) {
        let sizes = graph.initializers.map { name, tensor in
            MemoryNeed.TensorSize(name: name, shape: tensor.shape)
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
            MemoryNeed.TensorSize(name: shapeNames[id], shape: shapes[id])
        }
        let caller = Set(inputIDs + outputIDs).sorted().map { values[$0] }
        let weights = self.weights
        var need = MemoryNeed(purpose: purpose, tensors: caller,
                              extraBytes: addingSaturated(weights.bytes, multipliedSaturated(plannedFloats, 4)))
        need.largest = (values + [weights.largest].compactMap { $0 }).max { $0.bytes < $1.bytes }
        return need
    }
}
