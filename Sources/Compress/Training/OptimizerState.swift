/// Saving and restoring an optimizer's per-parameter state (momentum buffers,
/// moment estimates and step counts), so a resumed run continues exactly.
public protocol StatefulOptimizer: Optimizer {
    /// The state as named tensors: `<slot kind>/<parameter key>` buffers and
    /// `<slot kind>-steps/<parameter key>` step counts.
    func stateTensors() -> [String: Tensor]
    /// Restores state written by `stateTensors()`.
    func loadState(_ tensors: [String: Tensor]) throws
}

extension SGD: StatefulOptimizer {
    public func stateTensors() -> [String: Tensor] { encodeSlots(velocities, kind: "velocity") }
    public func loadState(_ tensors: [String: Tensor]) throws {
        velocities = try decodeSlots(tensors, kind: "velocity")
    }
}

extension Adam: StatefulOptimizer {
    public func stateTensors() -> [String: Tensor] {
        encodeSlots(moments, kind: "moment").merging(encodeSlots(squaredMoments, kind: "squared-moment")) { a, _ in a }
    }
    public func loadState(_ tensors: [String: Tensor]) throws {
        moments = try decodeSlots(tensors, kind: "moment")
        squaredMoments = try decodeSlots(tensors, kind: "squared-moment")
    }
}

/// Optimizer state that does not fit the optimizer it is loaded into.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public var description: String
}

private func encodeSlots(_ slots: [String: OptimizerSlot], kind: String) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (key, slot) in slots {
        out["\(kind)/\(key)"] = Tensor(shape: [slot.buffer.count], floats: Array(slot.buffer))
        out["\(kind)-steps/\(key)"] = Tensor(shape: [1], int64s: [Int64(slot.steps)])
    }
    return out
}

private func decodeSlots(_ tensors: [String: Tensor], kind: String) throws -> [String: OptimizerSlot] {
    var slots: [String: OptimizerSlot] = [:]
    let prefix = "\(kind)/"
    for (name, tensor) in tensors where name.hasPrefix(prefix) {
        let key = String(name.dropFirst(prefix.count))
        guard tensor.dtype == .float32, let steps = tensors["\(kind)-steps/\(key)"]?.int64s.first else {
            throw OptimizerStateError(description: "optimizer state for '\(key)' is incomplete")
        }
        let slot = OptimizerSlot(count: tensor.count)
        tensor.floats.withUnsafeBufferPointer { _ = slot.buffer.initialize(from: $0) }
        slot.steps = Int(steps)
        slots[key] = slot
    }
    return slots
}
