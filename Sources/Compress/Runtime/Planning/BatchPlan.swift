/// The memory and bindings of an `ExecutionPlan` for one batch size: every
/// value's shape, one arena holding all graph inputs and computed values, and
/// the scratch the kernels need. Built once per batch size and reused.
///
/// Values share arena slots when their lifetimes do not overlap: a slot is
/// taken when a step writes a value and given back after the last step that
/// reads the value (or anything aliasing it). Graph outputs are never given back.
final class BatchPlan {
    let shapes: [[Int]]
    let pointers: [UnsafeMutablePointer<Float>]
    let bindings: [StepBinding]
    let arena: FloatBuffer
    /// `threads` regions of `scratchPerWorker` floats.
    let scratch: FloatBuffer
    let scratchPerWorker: Int

    /// Plans `batch` images on `threads` workers. With a `budget`, what the
    /// plan needs (`ExecutionPlan.memoryNeed`: weights, arena, scratch, the
    /// caller's inputs and outputs) is checked before anything is allocated
    /// (`ImageWisePlan` checks for its batch-1 workers itself).
    ///
    /// - Throws: `GraphError` when shapes cannot be inferred,
    ///   `MemoryBudgetExceeded` when the plan does not fit `budget`.
    init(_ plan: ExecutionPlan, batch: Int, threads: Int, budget: MemoryBudget?) throws {
        let byName = try plan.graph.inferShapes(batch: batch)
        let shapes = plan.shapeNames.map { byName[$0]! }
        self.shapes = shapes
        let (offsets, arenaCount) = BatchPlan.assignSlots(plan, shapes: shapes)
        scratchPerWorker = BatchPlan.scratchPerWorker(plan, shapes: shapes)
        if let budget {
            try budget.check(plan.memoryNeed(batch: batch, shapes: shapes,
                                             plannedFloats: BatchPlan.plannedFloats(arenaCount, scratchPerWorker, threads),
                                             purpose: "inference at batch \(batch)"))
        }
        arena = FloatBuffer(count: arenaCount)
        pointers = plan.valueNames.indices.map { [arena] id in
            let root = plan.root(id)
            if case .constant(let index) = plan.sources[root] { return plan.constants[index].pointer }
            return arena.pointer + offsets[root]
        }
        bindings = plan.steps.map { [pointers, shapes] step in
            StepBinding(inputs: step.inputs.map { pointers[$0] }, inputShapes: step.inputs.map { shapes[$0] },
                        output: pointers[step.output], outputShape: shapes[step.output])
        }
        scratch = FloatBuffer(count: scratchPerWorker * threads)
    }

    /// Floats of scratch the largest step needs per worker at `shapes`.
    static func scratchPerWorker(_ plan: ExecutionPlan, shapes: [[Int]]) -> Int {
        plan.steps.map { step in
            step.kernel.scratchCount(inputShapes: step.inputs.map { shapes[$0] }, outputShape: shapes[step.output])
        }.max() ?? 0
    }

    /// Floats a plan allocates: its arena and every worker's scratch (saturating).
    static func plannedFloats(_ arenaCount: Int, _ scratchPerWorker: Int, _ threads: Int) -> Int {
        addingSaturated(arenaCount, multipliedSaturated(scratchPerWorker, threads))
    }

    /// Floats of the arena of `plan` at `shapes` (no allocation).
    static func arenaCount(_ plan: ExecutionPlan, shapes: [[Int]]) -> Int { assignSlots(plan, shapes: shapes).count }

    /// Arena offsets (in floats, 64-byte aligned) of every root value that
    /// needs arena storage, and the arena size, by greedy best-fit reuse of freed slots.
    private static func assignSlots(_ plan: ExecutionPlan, shapes: [[Int]]) -> (offsets: [Int], count: Int) {
        var lastRead = [Int](repeating: -1, count: shapes.count)
        for (i, step) in plan.steps.enumerated() { for v in step.inputs { lastRead[plan.root(v)] = i } }
        for v in plan.outputIDs { lastRead[plan.root(v)] = Int.max }
        var slots = SlotAllocator()
        var slotOf = [Int](repeating: -1, count: shapes.count)
        let storage = shapes.indices.map { plan.layouts[$0].storageCount(shapes[$0]) }
        for v in plan.inputIDs { slotOf[v] = slots.take(storage[v]) }
        for (i, step) in plan.steps.enumerated() {
            slotOf[step.output] = slots.take(storage[step.output])
            for v in Set(step.inputs.map(plan.root) + [step.output]) where lastRead[v] <= i && slotOf[v] >= 0 {
                slots.give(slotOf[v])
            }
        }
        let slotOffsets = slots.offsets()
        return (slotOf.map { $0 >= 0 ? slotOffsets[$0] : 0 }, slots.totalCount)
    }
}

/// Slots of floats that can be taken, given back and taken again; a slot
/// grows to the largest value it ever holds.
private struct SlotAllocator {
    var sizes: [Int] = []
    var free: [Int] = []

    /// A free slot that fits (the smallest), else the largest free one grown, else a new slot.
    mutating func take(_ count: Int) -> Int {
        let fitting = free.filter { sizes[$0] >= count }.min { sizes[$0] < sizes[$1] }
        if let slot = fitting ?? free.max(by: { sizes[$0] < sizes[$1] }) {
            free.removeAll { $0 == slot }
            sizes[slot] = max(sizes[slot], count)
            return slot
        }
        sizes.append(count)
        return sizes.count - 1
    }

    mutating func give(_ slot: Int) { if !free.contains(slot) { free.append(slot) } }

    /// Start of each slot, each rounded up to 16 floats (64 bytes).
    func offsets() -> [Int] {
        var result: [Int] = []
        var next = 0
        for size in sizes {
            result.append(next)
            next += (size + 15) / 16 * 16
        }
        return result
    }

    var totalCount: Int { sizes.reduce(0) { $0 + ($1 + 15) / 16 * 16 } }
}
