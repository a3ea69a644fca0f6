extension Architecture {
    /// A small MobileNet (Howard et al., "MobileNets: Efficient Convolutional
    /// Neural Networks for Mobile Vision Applications", 2017): a 3x3 conv 16
    /// (pad 1) + BN + ReLU6 stem, then four depthwise-separable blocks to 32
    /// (stride 2), 64, 128 (stride 2) and 128 channels, global average pooling,
    /// flatten, fc `classes`.
    ///
    /// Block `k` is `block<k>.dw` (3x3 depthwise, pad 1, groups = channels),
    /// `block<k>.bn1`, `block<k>.relu1`, then `block<k>.pw` (1x1), `block<k>.bn2`,
    /// `block<k>.relu2`. Convolutions before BN have no bias.
    static func buildMobileNetSmall(_ b: inout GraphBuilder, classes: Int) {
        b.conv("conv1", out: b.scaled(16), kernel: 3, padding: 1, bias: false)
        b.batchNorm("bn1")
        b.add("relu1", .relu6)
        for (k, (width, stride)) in [(32, 2), (64, 1), (128, 2), (128, 1)].enumerated() {
            let prefix = "block\(k + 1)"
            let channels = b.shape()[1]
            b.conv("\(prefix).dw", out: channels, kernel: 3, stride: stride, padding: 1, groups: channels, bias: false)
            b.batchNorm("\(prefix).bn1")
            b.add("\(prefix).relu1", .relu6)
            b.conv("\(prefix).pw", out: b.scaled(width), kernel: 1, bias: false)
            b.batchNorm("\(prefix).bn2")
            b.add("\(prefix).relu2", .relu6)
        }
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: classes)
    }
}
