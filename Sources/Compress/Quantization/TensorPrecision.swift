/// How one initializer is stored when narrower than float32, recorded in
/// `StorageOptions.precisions` so every later step keeps the choice.
///
/// In memory the tensor stays float32, holding exactly the values the file
/// stores widened back: a float16 widened, or an integer on the grid
/// dequantized (`QuantizationGrid.dequantize`). Kernels therefore compute in
/// float32 what a runtime computes from the stored values.
public enum TensorPrecision: Sendable, Equatable {
    /// IEEE 754 binary16.
    case float16
    /// Integers on a uniform grid, stored as int8.
    case int8(QuantizationGrid)

    /// A short name for `info` and records: "float16", "int8/per-channel".
    public var name: String {
        switch self {
        case .float16: "float16"
        case .int8(let grid): "int8/" + (grid.axis == nil ? "per-tensor" : "per-channel")
        }
    }

    /// Why `values` of a tensor of `shape` cannot be stored in this precision
    /// exactly (nil when they can): the first value off the format.
    public func problem(values: [Float], shape: [Int]) -> String? {
        switch self {
        case .float16:
            guard let bad = values.first(where: { Float(Float16($0)).bitPattern != $0.bitPattern }) else { return nil }
            return "holds \(bad), which float16 does not represent exactly"
        case .int8(let grid):
            if let problem = grid.problem(shape: shape) { return problem }
            return grid.firstValueOffGrid(values, shape: shape).map { "holds \($0), which is not on its int8 grid" }
        }
    }
}

extension Float {
    /// The nearest float16, ties to even, widened back (infinite beyond ±65504).
    @inlinable public var roundedToFloat16: Float { Float(Float16(self)) }
}
