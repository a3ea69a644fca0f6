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

/// Attributes of a 2-D transposed convolution (ONNX `ConvTranspose`), the
/// adjoint of `Conv2d` with the same stride, padding, dilation and groups:
/// every input pixel scatters its weighted kernel into the output. The
/// weight is `[inChannels, outChannels / groups, kh, kw]`; each output side
/// is `(in - 1)·stride - padBefore - padAfter + dilation·(k - 1) + 1 + outputPadding`.
/// The learned upsampling of encoder-decoder networks (Long, Shelhamer &
/// Darrell, "Fully Convolutional Networks for Semantic Segmentation", 2015).
public struct ConvTranspose2d: Sendable, Hashable {
    public var stride: Size2
    public var padding: Padding2
    public var dilation: Size2
    public var groups: Int
    /// Extra rows and columns added at the bottom and right of the output
    /// (ONNX `output_padding`), smaller than the stride or the dilation.
    public var outputPadding: Size2

    public init(stride: Size2 = .square(1), padding: Padding2 = .zero, dilation: Size2 = .square(1),
                groups: Int = 1, outputPadding: Size2 = .square(0)) {
        self.stride = stride; self.padding = padding; self.dilation = dilation
        self.groups = groups; self.outputPadding = outputPadding
    }

    /// The convolution whose input gradient this op computes: same stride,
    /// padding, dilation and groups, with weight `[C, O/groups, kh, kw]` read as
    /// a conv weight `[outChannels, inChannels/groups, kh, kw]`.
    public var adjointConv: Conv2d { Conv2d(stride: stride, padding: padding, dilation: dilation, groups: groups) }

    /// Output size along one axis.
    public static func outputSize(input: Int, kernel: Int, stride: Int, padBefore: Int, padAfter: Int,
                                  dilation: Int, outputPadding: Int) -> Int {
        (input - 1) * stride - padBefore - padAfter + dilation * (kernel - 1) + 1 + outputPadding
    }
}

/// Attributes of a spatial resize of `[N, C, H, W]` (ONNX `Resize` and
/// `Upsample`): each output pixel maps to a source coordinate through
/// `coordinates`, then takes the nearest input pixel or interpolates the
/// four around it. The scales are what the coordinate mapping divides by;
/// the output size is `size` when the model gave sizes, else floor(input · scale).
public struct Resize2d: Sendable, Hashable {
    /// How an output pixel reads its input.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case nearest
        /// Bilinear over H and W (ONNX `linear` on a 4-D value).
        case linear
    }

    /// How an output coordinate maps to an input coordinate (ONNX
    /// `coordinate_transformation_mode`; raw values are ONNX's names).
    public enum CoordinateTransformation: String, Sendable, Hashable, CaseIterable {
        case halfPixel = "half_pixel"
        case pytorchHalfPixel = "pytorch_half_pixel"
        case alignCorners = "align_corners"
        case asymmetric
        case tfHalfPixelForNN = "tf_half_pixel_for_nn"
        case halfPixelSymmetric = "half_pixel_symmetric"
    }

    /// How a nearest-mode source coordinate rounds to a pixel (ONNX `nearest_mode`).
    public enum NearestRounding: String, Sendable, Hashable, CaseIterable {
        case roundPreferFloor = "round_prefer_floor"
        case roundPreferCeil = "round_prefer_ceil"
        case floor
        case ceil
    }

    public var mode: Mode
    public var coordinates: CoordinateTransformation
    public var nearestRounding: NearestRounding
    /// Output size over input size along H and W, as the coordinate mapping uses it.
    public var scaleH: Float
    public var scaleW: Float
    /// The output's H and W when the model gave them (ONNX `sizes`); nil: floor(input · scale) in Float.
    public var size: Size2?

    public init(mode: Mode, coordinates: CoordinateTransformation = .halfPixel,
                nearestRounding: NearestRounding = .roundPreferFloor, scaleH: Float, scaleW: Float, size: Size2? = nil) {
        self.mode = mode; self.coordinates = coordinates; self.nearestRounding = nearestRounding
        self.scaleH = scaleH; self.scaleW = scaleW; self.size = size
    }

    /// Output H and W for an input of `h x w`.
    public func outputSize(h: Int, w: Int) -> Size2 {
        if let size { return size }
        // Float products truncated, as onnxruntime computes them.
        return Size2(Int((Float(h) * scaleH).rounded(.down)), Int((Float(w) * scaleW).rounded(.down)))
    }
}

/// The closed set of operations a graph can hold. Ops are data: attributes are
/// associated values; weights are node inputs that name initializers.
///
/// Input conventions (ONNX's, so import and export stay one-to-one):
/// - `conv2d`: x `[N,C,H,W]`, weight `[O, C/groups, kh, kw]`, optional bias `[O]`.
/// - `linear`: x `[N, in]`, weight `[out, in]`, optional bias `[out]` (y = x Wᵀ + b).
/// - `convTranspose`: x `[N,C,H,W]`, weight `[C, O/groups, kh, kw]`, optional bias `[O]`.
/// - `batchNorm`: x `[N,C,...]`, scale, bias, running mean, running variance, each `[C]`.
/// - `layerNorm`: x `[N,C,...]`, scale `[C]`, optional bias `[C]`.
/// - binary elementwise ops broadcast numpy-style.
public enum Op: Sendable, Hashable {
    case conv2d(Conv2d)
    case linear
    case batchNorm(epsilon: Float)
    /// Layer normalization over the channels (axis 1) at each position:
    /// `y = (x - mean) / sqrt(var + epsilon) * scale[c] + bias[c]`, with the mean
    /// and the biased variance taken over the C values of one sample at one
    /// position, as ConvNeXt's channels-first LayerNorm (Liu et al. 2022,
    /// "A ConvNet for the 2020s"; Ba et al. 2016, "Layer Normalization").
    /// On `[N, F]` it is an ordinary LayerNorm over the features.
    case layerNorm(epsilon: Float)
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
    /// Elements `start ..< end` along `axis`, which is not the batch axis 0
    /// (step 1; the range is normalized: `0 <= start < end <= dim`). One output of an ONNX `Split`, or a `Slice`
    /// with constant bounds; ShuffleNetV2 (Ma et al. 2018) splits its channels in two.
    case slice(axis: Int, start: Int, end: Int)
    /// Reorders the channels (axis 1): output channel `i` is input channel
    /// `order[i]`; `order` is a permutation of `0 ..< C`. The channel shuffle of
    /// ShuffleNet (Ma et al. 2018) with `g` groups of `C/g` is
    /// `order[i] = (i % g)·(C/g) + i / g`.
    case channelPermute(order: [Int])
    case softmax(axis: Int)
    /// Identity at inference; training draws a seeded mask.
    case dropout(ratio: Float)
    /// ONNX QuantizeLinear then DequantizeLinear, per tensor: the value on an
    /// 8-bit grid, in float32 (`ActivationQuantization`).
    case quantizeDequantize(ActivationQuantization)
    /// Nearest or bilinear spatial resize of `[N, C, H, W]`; channels pass through.
    case resize(Resize2d)
    /// x `[N, C, H, W]`, weight `[C, O/groups, kh, kw]`, optional bias `[O]`.
    case convTranspose(ConvTranspose2d)

    /// The name used in tables, files and error messages.
    public var kind: String {
        switch self {
        case .conv2d: "Conv2d"
        case .linear: "Linear"
        case .batchNorm: "BatchNorm"
        case .layerNorm: "LayerNorm"
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
        case .slice: "Slice"
        case .channelPermute: "ChannelPermute"
        case .softmax: "Softmax"
        case .dropout: "Dropout"
        case .quantizeDequantize: "QuantizeDequantize"
        case .resize: "Resize"
        case .convTranspose: "ConvTranspose"
        }
    }

    /// Inputs the op accepts: (required, maximum).
    public var arity: (min: Int, max: Int) {
        switch self {
        case .conv2d, .linear, .convTranspose: (2, 3)
        case .batchNorm: (5, 5)
        case .layerNorm: (2, 3)
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

extension Resize2d {
    /// The input coordinate output index `x` maps to along an axis of
    /// `inputLength` resized to `outputLength` by `scale`, in Float as
    /// onnxruntime computes it (nearest rounding then matches it at ties).
    @inlinable
    public func sourceCoordinate(_ x: Int, inputLength: Int, outputLength: Int, scale: Float) -> Float {
        let xf = Float(x)
        switch coordinates {
        case .halfPixel: return (xf + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return outputLength > 1 ? (xf + 0.5) / scale - 0.5 : 0
        case .alignCorners:
            return outputLength == 1 ? 0 : xf * Float(inputLength - 1) / Float(outputLength - 1)
        case .asymmetric: return xf / scale
        case .tfHalfPixelForNN: return (xf + 0.5) / scale
        case .halfPixelSymmetric:
            let adjustment = Float(outputLength) / (scale * Float(inputLength))
            let offset = Float(inputLength) / 2 * (1 - adjustment)
            return offset + (xf + 0.5) / scale - 0.5
        }
    }

    /// The input pixel a nearest-mode source coordinate reads, clamped into `0..<inputLength`.
    @inlinable
    public func nearestIndex(_ coordinate: Float, inputLength: Int) -> Int {
        let rounded: Float
        switch nearestRounding {
        case .roundPreferFloor:
            rounded = coordinate == coordinate.rounded(.down) + 0.5 ? coordinate.rounded(.down) : coordinate.rounded()
        case .roundPreferCeil: rounded = coordinate.rounded()
        case .floor: rounded = coordinate.rounded(.down)
        case .ceil: rounded = coordinate.rounded(.up)
        }
        guard rounded.isFinite else { return 0 }
        return min(max(Int(rounded), 0), inputLength - 1)
    }

    /// For bilinear mode: the two input pixels around a source coordinate
    /// (clamped into the input) and the weight of the second.
    @inlinable
    public func linearNeighbours(_ coordinate: Float, inputLength: Int) -> (Int, Int, Float) {
        let c = min(max(coordinate, 0), Float(inputLength - 1))
        let low = min(Int(c), inputLength - 1)
        let high = min(low + 1, inputLength - 1)
        return (low, high, low == high ? 0 : c - Float(low))
    }

    /// The scale the coordinate mapping divides by along H and W for an input of
    /// `h x w`: the stored scales, or output over input when sizes were given (ONNX).
    public func mappingScales(h: Int, w: Int) -> (Float, Float) {
        guard let size else { return (scaleH, scaleW) }
        return (Float(size.h) / Float(h), Float(size.w) / Float(w))
    }
}
