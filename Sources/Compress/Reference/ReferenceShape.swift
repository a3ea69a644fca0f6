extension ReferenceEvaluator {
    /// The same elements as a 2-D tensor `[prod(dims before axis), prod(dims from axis)]`.
    static func flatten(_ x: Tensor, axis: Int) -> Tensor {
        let a = axis < 0 ? axis + x.rank : axis
        return Tensor(shape: [x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)], floats: x.floats)
    }

    /// The same elements under `target` (0 copies the input's dimension, one -1 is inferred).
    static func reshape(_ x: Tensor, to target: [Int]) -> Tensor {
        var shape = target
        for (i, d) in target.enumerated() where d == 0 { shape[i] = x.shape[i] }
        if let i = shape.firstIndex(of: -1) {
            shape[i] = x.count / shape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
        }
        return Tensor(shape: shape, floats: x.floats)
    }

    /// Joins tensors along `axis`: for every index before the axis, the
    /// inputs' blocks are laid end to end in input order.
    static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        let a = axis < 0 ? axis + xs[0].rank : axis
        let outer = xs[0].shape[..<a].reduce(1, *)
        var shape = xs[0].shape
        shape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        var out: [Float] = []
        out.reserveCapacity(shape.elementCount)
        let values = xs.map(\.floats)
        for o in 0..<outer {
            for (t, v) in zip(xs, values) {
                let block = t.shape[a...].reduce(1, *)
                out.append(contentsOf: v[(o * block)..<((o + 1) * block)])
            }
        }
        return Tensor(shape: shape, floats: out)
    }

    /// The elements at `range` along `axis`: for every index before the axis,
    /// the rows `range` of the input's block.
    static func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        let a = axis < 0 ? axis + x.rank : axis
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        let values = x.floats
        var out: [Float] = []
        for o in 0..<outer {
            for k in range {
                let start = (o * x.shape[a] + k) * inner
                out.append(contentsOf: values[start..<(start + inner)])
            }
        }
        var shape = x.shape
        shape[a] = range.count
        return Tensor(shape: shape, floats: out)
    }

    /// Channel `i` of the output is channel `order[i]` of the input.
    static func permuteChannels(_ x: Tensor, order: [Int]) -> Tensor {
        let channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
        let values = x.floats
        var out: [Float] = []
        for n in 0..<x.shape[0] {
            for c in order {
                let start = (n * channels + c) * inner
                out.append(contentsOf: values[start..<(start + inner)])
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
