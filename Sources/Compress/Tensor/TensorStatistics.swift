extension Tensor {
    /// Elements that are not exactly zero (after widening to float32). The one
    /// place non-zeros are counted: file size, reports, kernel choice and the
    /// pruning passes all use it.
    public var nonZeroCount: Int {
        let values = floats
        return values.withUnsafeBufferPointer { p in
            var count = 0
            for v in p where v != 0 { count &+= 1 }
            return count
        }
    }

    /// Non-zero elements over all elements (1 for an empty tensor).
    public var density: Double {
        count == 0 ? 1 : Double(nonZeroCount) / Double(count)
    }
}
