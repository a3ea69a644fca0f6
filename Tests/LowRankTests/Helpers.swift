import Compress
import Testing
@testable import LowRank

/// Runs one layer (`op`, weight, bias) on `x` through `ReferenceEvaluator`.
func runLayer(_ op: Op, weight: Tensor, bias: Tensor?, on x: Tensor) throws -> Tensor {
    try runChain([FactorLayer(op: op, weight: weight, bias: bias)], on: x)
}

/// Runs a chain of factor layers on `x` through `ReferenceEvaluator`, as a graph
/// of one node per layer.
func runChain(_ layers: [FactorLayer], on x: Tensor) throws -> Tensor {
    var nodes: [Node] = []
    var initializers: [String: Tensor] = [:]
    var previous = "x"
    for (i, layer) in layers.enumerated() {
        let name = "f\(i)"
        initializers["\(name).weight"] = layer.weight
        var inputs = [previous, "\(name).weight"]
        if let bias = layer.bias { initializers["\(name).bias"] = bias; inputs.append("\(name).bias") }
        nodes.append(Node(name: name, op: layer.op, inputs: inputs, output: name))
        previous = name
    }
    let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: Array(x.shape.dropFirst()))], outputs: [previous],
                      nodes: nodes, initializers: initializers)
    return try ReferenceEvaluator.run(graph, inputs: ["x": x])[previous]!
}

/// `max |a − b|` over all elements; `.infinity` when the shapes differ.
func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    return zip(a.floats, b.floats).map { abs($0 - $1) }.max() ?? 0
}

/// `‖a − b‖ / ‖a‖`.
func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    let diff = zip(a.floats, b.floats).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    let norm = a.floats.reduce(0.0) { $0 + Double($1) * Double($1) }
    return Float((diff / norm).squareRoot())
}

/// `true` when each value is at most the previous one plus `slack`.
func isNonIncreasing(_ values: [Float], slack: Float = 1e-5) -> Bool {
    zip(values, values.dropFirst()).allSatisfy { $1 <= $0 + slack }
}

/// Expects `body` to throw exactly `expected`.
func expectError<T>(_ expected: LowRankError, _ body: () throws -> T,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try body()
        Issue.record("expected \(expected), got a result", sourceLocation: sourceLocation)
    } catch let error as LowRankError {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

/// A convolution case: weight shape and attributes.
struct ConvCase: CustomStringConvertible, Sendable {
    var out: Int, channels: Int, kh: Int, kw: Int
    var attributes: Conv2d
    var inputSize: (h: Int, w: Int) = (7, 6)
    var description: String { "\(out)x\(channels)x\(kh)x\(kw) stride \(attributes.stride) pad \(attributes.padding)" }

    /// A seeded weight, bias and input batch of this case, and the original
    /// conv's output on it (the reference a factor chain is compared with).
    func fixture(seed: UInt64) throws -> (weight: Tensor, bias: Tensor, x: Tensor, original: Tensor) {
        var rng = SeededGenerator(seed: seed)
        let weight = rng.gaussianTensor([out, channels, kh, kw], std: 0.5)
        let bias = rng.gaussianTensor([out], std: 0.5)
        let x = rng.gaussianTensor([2, channels, inputSize.h, inputSize.w])
        return (weight, bias, x, try runLayer(.conv2d(attributes), weight: weight, bias: bias, on: x))
    }

    static let all: [ConvCase] = [
        ConvCase(out: 6, channels: 3, kh: 3, kw: 3, attributes: Conv2d(padding: .same(1))),
        ConvCase(out: 5, channels: 4, kh: 3, kw: 2, attributes: Conv2d(stride: .square(2), padding: .same(1))),
        ConvCase(out: 4, channels: 3, kh: 2, kw: 3,
                 attributes: Conv2d(stride: Size2(2, 1), padding: Padding2(top: 1, left: 0, bottom: 0, right: 1),
                                    dilation: Size2(1, 2))),
    ]
}
