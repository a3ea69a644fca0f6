/// Arithmetic and joining of folded constants (normalization constants,
/// shape computations). Integers stay int64; anything else computes in
/// float32. An element computed from a batch-tagged one is `.derived`.
extension ImportContext {
    func foldBinary(_ op: Op, _ a: FoldedConstant, _ b: FoldedConstant) throws(UnsupportedFeature) -> FoldedConstant {
        guard let shape = broadcastShapes(a.shape, b.shape) else {
            throw UnsupportedFeature("constant shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        // The result and the two index lists below, 8 bytes an element each.
        let result = MemoryNeed.TensorSize(name: current, shape: shape, elementSize: 8)
        do {
            try memoryBudget.check(MemoryNeed(purpose: "folding constants", tensors: [result],
                                              extraBytes: multipliedSaturated(result.bytes, 2)))
        } catch {
            throw UnsupportedFeature(error.description)
        }
        let ia = broadcastSources(outShape: shape, inShape: a.shape), ib = broadcastSources(outShape: shape, inShape: b.shape)
        let tags: [BatchTag]? = (a.tags == nil && b.tags == nil) ? nil
            : zip(ia, ib).map { a.tag($0) == .fixed && b.tag($1) == .fixed ? .fixed : .derived }
        if a.tensor.dtype == .int64 && b.tensor.dtype == .int64 {
            let x = a.tensor.int64s, y = b.tensor.int64s
            var out: [Int64] = []
            out.reserveCapacity(ia.count)
            for (i, j) in zip(ia, ib) {
                switch op {
                case .add: out.append(x[i] &+ y[j])
                case .sub: out.append(x[i] &- y[j])
                case .mul: out.append(x[i] &* y[j])
                default:
                    guard y[j] != 0 else { throw UnsupportedFeature("integer division by zero") }
                    out.append(x[i] / y[j])
                }
            }
            return FoldedConstant(Tensor(shape: shape, int64s: out), tags: tags)
        }
        let x = a.tensor.floats, y = b.tensor.floats
        let out: [Float] = zip(ia, ib).map { i, j in
            switch op {
            case .add: x[i] + y[j]
            case .sub: x[i] - y[j]
            case .mul: x[i] * y[j]
            default: x[i] / y[j]
            }
        }
        return FoldedConstant(Tensor(shape: shape, floats: out), tags: tags)
    }

    func foldConcat(_ parts: [FoldedConstant], axis: Int) throws(UnsupportedFeature) -> FoldedConstant {
        let first = parts[0].shape
        guard parts.allSatisfy({ p in p.shape.count == first.count
                && p.shape.indices.allSatisfy { $0 == axis || p.shape[$0] == first[$0] } }) else {
            throw UnsupportedFeature("constant shapes \(parts.map(\.shape)) do not concatenate along axis \(axis)")
        }
        let allInt = parts.allSatisfy { $0.tensor.dtype == .int64 }
        let storage: TensorStorage = allInt ? .int64(parts.flatMap { $0.tensor.int64s } as [Int64])
            : .float32(parts.flatMap { $0.tensor.floats } as [Float])
        let tags = parts.contains { $0.tags != nil } ? parts.flatMap { p in (0..<p.tensor.count).map(p.tag) } : nil
        let joined = FoldedConstant(try! Tensor(shape: [storage.count], storage: storage), tags: tags)
        let outer = first[..<axis].reduce(1, *)
        var offsets: [Int] = []
        var total = 0
        for p in parts { offsets.append(total); total += p.tensor.count }
        var sources: [Int] = []
        sources.reserveCapacity(total)
        for o in 0..<outer {
            for (p, offset) in zip(parts, offsets) {
                let block = p.shape[axis...].reduce(1, *)
                sources.append(contentsOf: (offset + o * block)..<(offset + (o + 1) * block))
            }
        }
        var shape = first
        shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        return joined.gathering(sources, shape: shape)
    }
}
