/// Two spatial extents, height first.
public struct Size2: Sendable, Hashable, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public static func square(_ n: Int) -> Size2 { Size2(n, n) }
    public var description: String { h == w ? "\(h)" : "\(h)x\(w)" }
}

/// Zero padding around a feature map: ONNX order is (top, left, bottom, right).
public struct Padding2: Sendable, Hashable, CustomStringConvertible {
    public var top: Int
    public var left: Int
    public var bottom: Int
    public var right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    public static func same(_ n: Int) -> Padding2 { Padding2(top: n, left: n, bottom: n, right: n) }
    public static let zero = Padding2.same(0)
    public var isZero: Bool { self == .zero }
    public var description: String {
        (top == bottom && left == right && top == left) ? "\(top)" : "\(top),\(left),\(bottom),\(right)"
    }
}

/// Attributes of a 2-D convolution. The kernel size is the weight's shape,
/// `[outChannels, inChannels / groups, kh, kw]`, so passes that reshape weights
/// never leave a stale attribute behind.
public struct Conv2d: Sendable, Hashable {
    public var stride: Size2
    public var padding: Padding2
    public var dilation: Size2
    public var groups: Int

    public init(stride: Size2 = .square(1), padding: Padding2 = .zero,
                dilation: Size2 = .square(1), groups: Int = 1) {
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
    }
}

extension Conv2d {
    /// Output channels per input channel when this is a depthwise convolution
    /// (one input channel per group, `groups > 1`) with weight `[O, 1, kh, kw]`:
    /// output channel `o` reads input channel `o / multiplier` (ONNX semantics).
    /// Nil for any other convolution.
    public func depthwiseMultiplier(weightShape: [Int]) -> Int? {
        guard groups > 1, weightShape.count == 4, weightShape[1] == 1, weightShape[0] % groups == 0 else { return nil }
        return weightShape[0] / groups
    }
}

/// Attributes of a 2-D max or average pooling window.
public struct Pool2d: Sendable, Hashable {
    public var kernel: Size2
    public var stride: Size2
    public var padding: Padding2
    public var dilation: Size2
    /// Output size rounds up instead of down (ONNX `ceil_mode`).
    public var ceilMode: Bool

    public init(kernel: Size2, stride: Size2? = nil, padding: Padding2 = .zero,
                dilation: Size2 = .square(1), ceilMode: Bool = false) {
        self.kernel = kernel; self.stride = stride ?? kernel; self.padding = padding
        self.dilation = dilation; self.ceilMode = ceilMode
    }
}

/// The closed set of operations a graph can hold. Ops are data: attributes are
/// associated values; weights are node inputs that name initializers.
///
/// Input conventions (ONNX's, so import and export stay one-to-one):
/// - `conv2d`: x `[N,C,H,W]`, weight `[O, C/groups, kh, kw]`, optional bias `[O]`.
/// - `linear`: x `[N, in]`, weight `[out, in]`, optional bias `[out]` (y = x Wᵀ + b).
/// - `batchNorm`: x `[N,C,...]`, scale, bias, running mean, running variance, each `[C]`.
/// - binary elementwise ops broadcast numpy-style.
public enum Op: Sendable, Hashable {
    case conv2d(Conv2d)
    case linear
    case batchNorm(epsilon: Float)
    case relu
    /// min(max(x, 0), 6), as MobileNet uses it.
    case relu6
    case leakyRelu(alpha: Float)
    case sigmoid
    case tanh
    /// max(0, min(1, alpha·x + beta)): ONNX HardSigmoid (defaults alpha 0.2,
    /// beta 0.5; PyTorch's `nn.Hardsigmoid` is alpha 1/6, beta 0.5), the gate
    /// of MobileNetV3's squeeze-and-excitation (Howard et al. 2019).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x · max(0, min(1, x/6 + 1/2)): MobileNetV3's activation (Howard et al. 2019).
    case hardSwish
    /// x · Φ(x), Φ the standard normal CDF: x · (1 + erf(x/√2)) / 2 (Hendrycks &
    /// Gimpel 2016); with `tanhApproximation`, x · (1 + tanh(√(2/π)(x + 0.044715x³))) / 2
    /// (ONNX Gelu's approximate="tanh").
    case gelu(tanhApproximation: Bool)
    case maxPool(Pool2d)
    case avgPool(Pool2d, countIncludePad: Bool)
    case globalAvgPool
    /// Collapses dimensions from `axis` on into one: `[N, C, H, W]` → `[N, C·H·W]` for axis 1.
    case flatten(axis: Int)
    /// ONNX semantics: 0 copies the input's dimension, one -1 is inferred.
    case reshape(shape: [Int])
    case add
    case sub
    case mul
    case div
    case concat(axis: Int)
    case softmax(axis: Int)
    /// Identity at inference; training draws a seeded mask.
    case dropout(ratio: Float)
    /// ONNX QuantizeLinear then DequantizeLinear, per tensor: the value on an
    /// 8-bit grid, in float32 (`ActivationQuantization`).
    case quantizeDequantize(ActivationQuantization)

    /// The name used in tables, files and error messages.
    public var kind: String {
        switch self {
        case .conv2d: "Conv2d"
        case .linear: "Linear"
        case .batchNorm: "BatchNorm"
        case .relu: "ReLU"
        case .relu6: "ReLU6"
        case .leakyRelu: "LeakyReLU"
        case .sigmoid: "Sigmoid"
        case .tanh: "Tanh"
        case .hardSigmoid: "HardSigmoid"
        case .hardSwish: "HardSwish"
        case .gelu: "GELU"
        case .maxPool: "MaxPool"
        case .avgPool: "AvgPool"
        case .globalAvgPool: "GlobalAvgPool"
        case .flatten: "Flatten"
        case .reshape: "Reshape"
        case .add: "Add"
        case .sub: "Sub"
        case .mul: "Mul"
        case .div: "Div"
        case .concat: "Concat"
        case .softmax: "Softmax"
        case .dropout: "Dropout"
        case .quantizeDequantize: "QuantizeDequantize"
        }
    }

    /// Inputs the op accepts: (required, maximum).
    public var arity: (min: Int, max: Int) {
        switch self {
        case .conv2d, .linear: (2, 3)
        case .batchNorm: (5, 5)
        case .add, .sub, .mul, .div: (2, 2)
        case .concat: (1, Int.max)
        default: (1, 1)
        }
    }

    /// True for the ops applied element by element to a single input.
    public var isUnaryElementwise: Bool {
        switch self {
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh, .dropout: true
        case .hardSigmoid, .hardSwish, .gelu: true
        default: false
        }
    }
}
