/// The built-in CNN architectures: five sized for 28x28 grayscale images such
/// as Fashion-MNIST, two ImageNet-shaped (3x224x224, 1000 classes), all built
/// for any input shape by shape arithmetic (``defaultInputShape``,
/// ``defaultClasses``).
///
/// Every architecture is a `Model` over the graph IR with readable node names
/// (`conv1`, `bn1`, `relu1`, `pool1`, `fc1`; ResNet's `layer2.0.conv1`,
/// `layer2.0.shortcut.conv`), weights named `<node>.weight` and `<node>.bias`,
/// and batch-norm statistics `<node>.scale/.bias/.mean/.var`.
///
/// Initialization, fixed by `seed`: convolution and linear weights are He
/// normal in fan-in mode, N(0, 2/fan_in) (He et al., "Delving Deep into
/// Rectifiers", ICCV 2015); biases are zero; batch norm starts at scale 1,
/// bias 0, mean 0, variance 1, epsilon 1e-5.
public enum Architecture: String, CaseIterable, Sendable {
    /// LeNet-300-100: three fully connected layers, 784-300-100-10 with ReLU.
    case lenet300
    /// Caffe's LeNet-5: two 5x5 convolutions with max pooling, then fc 500 and fc 10.
    case lenet5
    /// A small VGG: three pairs of 3x3 conv + BN + ReLU (32, 64, 128 wide) with max pooling.
    case vggSmall = "vgg-small"
    /// ResNet-20: three stages of three basic residual blocks, 16/32/64 channels.
    case resnet20
    /// A small MobileNet: depthwise-separable blocks up to 128 channels, ReLU6.
    case mobilenetSmall = "mobilenet-small"
    /// ResNet-18 for ImageNet: a 7x7 stem, four stages of two basic blocks, 64 to 512 channels.
    case resnet18
    /// MobileNetV2 for ImageNet: inverted residual bottlenecks with linear projections, ReLU6.
    case mobilenetv2

    /// One sample's shape `[C, H, W]` when `build` is not given one: 1x28x28
    /// (Fashion-MNIST) for the small architectures, 3x224x224 (ImageNet) for
    /// `resnet18` and `mobilenetv2`.
    public var defaultInputShape: [Int] {
        switch self {
        case .lenet300, .lenet5, .vggSmall, .resnet20, .mobilenetSmall: [1, 28, 28]
        case .resnet18, .mobilenetv2: [3, 224, 224]
        }
    }

    /// The number of classes when `build` is not given one: 10 (Fashion-MNIST)
    /// for the small architectures, 1000 (ImageNet) for `resnet18` and `mobilenetv2`.
    public var defaultClasses: Int {
        switch self {
        case .lenet300, .lenet5, .vggSmall, .resnet20, .mobilenetSmall: 10
        case .resnet18, .mobilenetv2: 1000
        }
    }

    /// Fashion-MNIST's pixel mean over the training set, for pixels in [0, 1].
    public static let fashionMNISTMean: Float = 0.2860
    /// Fashion-MNIST's pixel standard deviation over the training set.
    public static let fashionMNISTStd: Float = 0.3530
    /// ImageNet's per-channel (R, G, B) pixel mean, for pixels in [0, 1], as torchvision normalizes.
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    /// ImageNet's per-channel (R, G, B) pixel standard deviation, as torchvision normalizes.
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    /// A one-line description for listings.
    public var summary: String {
        switch self {
        case .lenet300: "LeNet-300-100, fully connected 300-100 with ReLU (LeCun et al. 1998)"
        case .lenet5: "LeNet-5 as in Caffe: conv 20, conv 50, fc 500 (LeCun et al. 1998)"
        case .vggSmall: "VGG-style 3x3 conv + BN + ReLU, 32-64-128 (Simonyan & Zisserman 2015)"
        case .resnet20: "ResNet-20, basic blocks 16-32-64 (He et al. 2016)"
        case .mobilenetSmall: "MobileNet-style depthwise-separable convs to 128 (Howard et al. 2017)"
        case .resnet18: "ResNet-18 for 3x224x224 ImageNet images, basic blocks 64-128-256-512 (He et al. 2016)"
        case .mobilenetv2: "MobileNetV2 for 3x224x224 ImageNet images, inverted residuals, ReLU6 (Sandler et al. 2018)"
        }
    }

    /// Builds the architecture with freshly initialized weights.
    ///
    /// The model's metadata names the architecture, carries a normalization
    /// (``normalization(channels:)``), class names (Fashion-MNIST's when
    /// `classes` is 10, else "0" to "K-1"), and one `init` history entry with
    /// the seed and parameter and MAC counts.
    ///
    /// - Parameters:
    ///   - seed: seeds every weight; the same seed gives the same model.
    ///   - inputShape: one sample's shape `[C, H, W]`; nil is ``defaultInputShape``.
    ///   - classes: number of outputs of the final layer; nil is ``defaultClasses``.
    ///   - width: the width multiplier of every hidden layer's channels
    ///     (``scaledChannels(_:width:)``); 1 is the architecture as published,
    ///     0.5 a thinner student for distillation. The history's `init`
    ///     entry records it when it is not 1.
    /// - Precondition: `inputShape` is `[C, H, W]` and large enough for the
    ///   architecture's pooling (16x16 for `lenet5`, 8x8 for the others with
    ///   pooling, 1x1 for `resnet18` and `mobilenetv2`); `width` is positive and finite.
    public func build(seed: UInt64, inputShape: [Int]? = nil, classes: Int? = nil, width: Double = 1) -> Model {
        let inputShape = inputShape ?? defaultInputShape, classes = classes ?? defaultClasses
        precondition(inputShape.count == 3 && inputShape.allSatisfy { $0 > 0 },
                     "input shape must be [C, H, W] with positive sizes, got \(inputShape)")
        precondition(classes >= 1, "classes must be positive, got \(classes)")
        precondition(width > 0 && width.isFinite, "width must be positive, got \(width)")
        var b = GraphBuilder(sampleShape: inputShape, seed: seed, width: width)
        switch self {
        case .lenet300: Self.buildLeNet300(&b, classes: classes)
        case .lenet5: Self.buildLeNet5(&b, classes: classes)
        case .vggSmall: Self.buildVGGSmall(&b, classes: classes)
        case .resnet20: Self.buildResNet20(&b, classes: classes)
        case .mobilenetSmall: Self.buildMobileNetSmall(&b, classes: classes)
        case .resnet18: Self.buildResNet18(&b, classes: classes)
        case .mobilenetv2: Self.buildMobileNetV2(&b, classes: classes)
        }
        return b.model(architecture: self, seed: seed, classes: classes)
    }
}

extension Architecture {
    /// The input normalization a built model's metadata carries for `channels`
    /// input channels: ImageNet's per-channel mean and standard deviation for
    /// `resnet18` and `mobilenetv2` on 3 channels, else Fashion-MNIST's
    /// (mean 0.2860, std 0.3530) repeated per channel.
    public func normalization(channels: Int) -> Normalization {
        if defaultInputShape[0] == 3 && channels == 3 {
            return Normalization(mean: Self.imageNetMean, std: Self.imageNetStd)
        }
        return Normalization(mean: Array(repeating: Self.fashionMNISTMean, count: channels),
                             std: Array(repeating: Self.fashionMNISTStd, count: channels))
    }

    /// A hidden layer's channel count `channels` at width multiplier `width`:
    /// `channels × width` rounded to the nearest multiple of 8 when
    /// `channels` is one (halves up, at least 8), else to the nearest integer
    /// (halves up, at least 1). Width 1 leaves every count as it is.
    public static func scaledChannels(_ channels: Int, width: Double) -> Int {
        let exact = Double(channels) * width
        if channels % 8 == 0 { return max(8, Int((exact / 8).rounded()) * 8) }
        return max(1, Int(exact.rounded()))
    }
}
