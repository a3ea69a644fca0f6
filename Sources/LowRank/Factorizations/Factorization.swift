import Compress

/// One layer of a factor chain: the op it becomes, its weight and optional bias,
/// in the graph's conventions (`linear` weight `[out, in]`; `conv2d` weight
/// `[out, in / groups, kh, kw]`). Turning a chain into graph nodes is a separate step.
public struct FactorLayer: Sendable {
    public var op: Op
    public var weight: Tensor
    public var bias: Tensor?

    public init(op: Op, weight: Tensor, bias: Tensor? = nil) {
        self.op = op; self.weight = weight; self.bias = bias
    }
}

/// The result of factorizing one layer: the chain of layers that replaces it,
/// applied in order, the ranks chosen and the relative reconstruction error of
/// the weight, `‖W − Ŵ‖_F / ‖W‖_F`.
public struct Factorization: Sendable {
    public var layers: [FactorLayer]
    public var ranks: [Int]
    public var relativeError: Float

    public init(layers: [FactorLayer], ranks: [Int], relativeError: Float) {
        self.layers = layers; self.ranks = ranks; self.relativeError = relativeError
    }
}

/// A convolution weight's sizes, checked: `[N, C, kh, kw]`, float, finite, and
/// the attributes `groups == 1`.
struct ConvShape {
    let outChannels: Int, inChannels: Int, kh: Int, kw: Int
    var spatial: Int { kh * kw }

    init(weight: Tensor, bias: Tensor?, attributes: Conv2d) throws(LowRankError) {
        guard attributes.groups == 1 else { throw .groupedConvolution(groups: attributes.groups) }
        guard weight.rank == 4, weight.shape.allSatisfy({ $0 > 0 }) else {
            throw .badShape(what: "convolution weight", shape: weight.shape, expected: "[N, C, kh, kw]")
        }
        outChannels = weight.shape[0]; inChannels = weight.shape[1]; kh = weight.shape[2]; kw = weight.shape[3]
        try checkBias(bias, count: outChannels)
        guard allFinite(weight.floats) else { throw .nonFiniteInput(what: "convolution weight") }
    }
}

func checkBias(_ bias: Tensor?, count: Int) throws(LowRankError) {
    if let bias, bias.count != count {
        throw .badShape(what: "bias", shape: bias.shape, expected: "[\(count)]")
    }
}

extension Conv2d {
    /// The vertical half: stride, padding and dilation along height only.
    var vertical: Conv2d {
        Conv2d(stride: Size2(stride.h, 1), padding: Padding2(top: padding.top, left: 0, bottom: padding.bottom, right: 0),
               dilation: Size2(dilation.h, 1))
    }

    /// The horizontal half: stride, padding and dilation along width only.
    var horizontal: Conv2d {
        Conv2d(stride: Size2(1, stride.w), padding: Padding2(top: 0, left: padding.left, bottom: 0, right: padding.right),
               dilation: Size2(1, dilation.w))
    }
}
