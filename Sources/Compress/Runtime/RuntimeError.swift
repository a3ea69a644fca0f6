/// A problem with the values handed to an evaluator, or a graph the fast
/// runtime cannot plan. Messages name the input or node at fault.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// A graph input was not supplied.
    case missingInput(name: String, supplied: [String])
    /// An input's shape is not `[N] + sampleShape`.
    case wrongInputShape(name: String, expectedSample: [Int], got: [Int])
    /// An input holds integers where the graph needs floats.
    case notFloat(name: String, dtype: DType)
    /// Inputs disagree on the batch size.
    case inconsistentBatch(name: String, expected: Int, got: Int)
    /// The model's normalization has the wrong number of channels for its input.
    case normalizationMismatch(channels: Int, mean: Int, std: Int)
    /// The graph has no input to feed a single tensor to, or no output to return.
    case noGraphInputOrOutput
    /// The fast runtime needs a constant (initializer) where the graph has a computed value.
    case unsupported(node: String, detail: String)

    public var description: String {
        switch self {
        case .missingInput(let n, let s):
            "graph input '\(n)' was not supplied (supplied: \(s.sorted().joined(separator: ", ")))"
        case .wrongInputShape(let n, let e, let g):
            "input '\(n)' must have shape [\((["N"] + e.map(String.init)).joined(separator: ", "))] (a batch of \(e)), got \(g)"
        case .notFloat(let n, let d): "input '\(n)' must be float32 or float16, got \(d.rawValue)"
        case .inconsistentBatch(let n, let e, let g): "input '\(n)' has batch size \(g), other inputs have \(e)"
        case .normalizationMismatch(let c, let m, let s):
            "normalization has \(m) means and \(s) stds for an input with \(c) channels"
        case .noGraphInputOrOutput: "the graph needs at least one input and one output"
        case .unsupported(let n, let d): "node '\(n)': \(d)"
        }
    }
}
