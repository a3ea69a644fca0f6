/// How an element of a folded constant relates to the batch size, which is
/// unknown at import time: shape chains (`Shape(x)[0]`) read it.
enum BatchTag: Sendable, Equatable {
    /// Independent of the batch size.
    case fixed
    /// Equal to the batch size.
    case batch
    /// Computed from the batch size (e.g. `N * C`).
    case derived
}

/// A value the importer computed at import time: an initializer, a `Constant`
/// node, or a subgraph over constants and static shapes, folded. `tags`
/// marks elements that came from the batch dimension (nil: none did).
struct FoldedConstant {
    var tensor: Tensor
    var tags: [BatchTag]?

    init(_ tensor: Tensor, tags: [BatchTag]? = nil) {
        self.tensor = tensor
        self.tags = tags.flatMap { $0.allSatisfy { $0 == .fixed } ? nil : $0 }
    }

    var shape: [Int] { tensor.shape }

    func tag(_ i: Int) -> BatchTag { tags?[i] ?? .fixed }

    /// The elements as Ints (shape values, axes, indices).
    var ints: [Int] { tensor.int64s.map { Int(clamping: $0) } }

    /// Element `i` of the result is element `sources[i]` of `self`.
    func gathering(_ sources: [Int], shape: [Int]) -> FoldedConstant {
        FoldedConstant(try! Tensor(shape: shape, storage: tensor.storage.gathering(sources)),
                       tags: tags.map { t in sources.map { t[$0] } })
    }

    /// The same elements under `shape`.
    func reshaped(_ shape: [Int]) -> FoldedConstant {
        FoldedConstant(try! Tensor(shape: shape, storage: tensor.storage), tags: tags)
    }
}

extension TensorStorage {
    /// Element `i` of the result is element `sources[i]` of `self`.
    func gathering(_ sources: [Int]) -> TensorStorage {
        switch self {
        case .float32(let v): .float32(sources.map { v[$0] })
        case .float16(let v): .float16(sources.map { v[$0] })
        case .int8(let v): .int8(sources.map { v[$0] })
        case .uint8(let v): .uint8(sources.map { v[$0] })
        case .int64(let v): .int64(sources.map { v[$0] })
        }
    }
}

/// Flat indices into a tensor of `shape` of every element of the cartesian
/// product of `picks` (one list of indices per axis), in row-major order.
func selectedIndices(shape: [Int], picks: [[Int]]) -> [Int] {
    let strides = contiguousStrides(shape)
    var out = [0]
    for (axis, indices) in picks.enumerated() {
        out = out.flatMap { base in indices.map { base + $0 * strides[axis] } }
    }
    return out
}

/// For each element of a tensor of `outShape`, the flat index of the element of
/// a tensor of `inShape` that numpy broadcasting reads.
func broadcastSources(outShape: [Int], inShape: [Int]) -> [Int] {
    let padded = [Int](repeating: 1, count: outShape.count - inShape.count) + inShape
    let picks = zip(outShape, padded).map { out, d in d == 1 ? [Int](repeating: 0, count: out) : Array(0..<out) }
    return selectedIndices(shape: padded, picks: picks)
}
