/// Row-major strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in shape.indices.reversed() {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}
