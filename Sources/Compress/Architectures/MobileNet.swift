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

extension Architecture {
    /// MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and
    /// Linear Bottlenecks", CVPR 2018, Table 2): a 3x3 conv 32 stride 2 (pad 1)
    /// + BN + ReLU6 stem, seventeen inverted residual bottlenecks, a 1x1 conv
    /// 1280 + BN + ReLU6, global average pooling, flatten, fc `classes`.
    /// 3,504,872 parameters and 300.8M MACs on 3x224x224 inputs with 1000
    /// classes. Like the other built-ins it has no dropout layer (the identity
    /// at inference; torchvision's classifier drops 20% in training), and
    /// `width` scales every hidden layer, the last 1x1 conv included (the paper
    /// keeps that one at 1280 below width 1).
    ///
    /// Bottleneck `k` (1 to 17) with expansion `t`, stride `s` and `c` output
    /// channels: `block<k>.expand` (1x1 to `t·in` channels, absent when `t` is
    /// 1), `.bn1`, `.relu1`, `.dw` (3x3 depthwise, stride `s`, pad 1),
    /// `.bn2`, `.relu2`, `.project` (1x1 to `c`), `.bn3` with no activation
    /// (the linear bottleneck), and `.add` of the block's input when `s` is 1
    /// and the channel counts are equal. Convolutions before BN have no bias.
    static func buildMobileNetV2(_ b: inout GraphBuilder, classes: Int) {
        b.conv("conv1", out: b.scaled(32), kernel: 3, stride: 2, padding: 1, bias: false)
        b.batchNorm("bn1")
        b.add("relu1", .relu6)
        // Table 2: (expansion t, output channels c, repeats n, first stride s).
        let table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var k = 0
        for (expansion, published, repeats, firstStride) in table {
            for r in 0..<repeats {
                k += 1
                invertedResidual(&b, prefix: "block\(k)", expansion: expansion, out: b.scaled(published),
                                 stride: r == 0 ? firstStride : 1)
            }
        }
        b.conv("conv2", out: b.scaled(1280), kernel: 1, bias: false)
        b.batchNorm("bn2")
        b.add("relu2", .relu6)
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: classes)
    }

    /// One inverted residual bottleneck of ``buildMobileNetV2(_:classes:)``.
    private static func invertedResidual(_ b: inout GraphBuilder, prefix: String, expansion: Int, out: Int, stride: Int) {
        let input = b.current
        let channels = b.shape()[1]
        let hidden = channels * expansion
        if expansion != 1 {
            b.conv("\(prefix).expand", out: hidden, kernel: 1, bias: false)
            b.batchNorm("\(prefix).bn1")
            b.add("\(prefix).relu1", .relu6)
        }
        b.conv("\(prefix).dw", out: hidden, kernel: 3, stride: stride, padding: 1, groups: hidden, bias: false)
        b.batchNorm("\(prefix).bn2")
        b.add("\(prefix).relu2", .relu6)
        b.conv("\(prefix).project", out: out, kernel: 1, bias: false)
        let projected = b.batchNorm("\(prefix).bn3")
        if stride == 1 && channels == out {
            b.add("\(prefix).add", .add, inputs: [input, projected])
        }
    }
}
