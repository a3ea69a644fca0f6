import Compress

/// How `quantize --format int8` lays its weight grids.
public enum WeightGranularity: String, Sendable, CaseIterable {
    /// One scale and zero point per output channel (axis 0 of a conv or linear weight).
    case perChannel = "per-channel"
    /// One scale and zero point for the whole tensor.
    case perTensor = "per-tensor"
}

/// The integer range int8 weights use, as onnxruntime's quantization tools
/// choose it: -127...127 symmetric (so the grid is symmetric about zero),
/// -128...127 asymmetric, and with `reduceRange` -64...64 (7 bits, for
/// machines whose int8 dot products saturate intermediate sums).
public func int8WeightRange(symmetric: Bool, reduceRange: Bool) -> (qmin: Int32, qmax: Int32) {
    if reduceRange { return (-64, 64) }
    return symmetric ? (-127, 127) : (-128, 127)
}

/// `values`, a conv or linear weight of `shape`, quantized to int8 on a grid
/// fitted to their range: the grid, and the values dequantized from it
/// (what DequantizeLinear of the stored integers gives).
public func int8QuantizedWeight(_ values: [Float], shape: [Int], granularity: WeightGranularity, symmetric: Bool,
                                reduceRange: Bool) -> (grid: QuantizationGrid, values: [Float]) {
    let (qmin, qmax) = int8WeightRange(symmetric: symmetric, reduceRange: reduceRange)
    let grid = QuantizationGrid.fitted(to: values, shape: shape, axis: granularity == .perChannel ? 0 : nil,
                                       qmin: qmin, qmax: qmax, symmetric: symmetric)
    return (grid, grid.fakeQuantize(values, shape: shape))
}
