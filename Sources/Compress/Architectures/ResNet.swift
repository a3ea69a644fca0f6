extension Architecture {
    /// ResNet-20 (He et al., "Deep Residual Learning for Image Recognition",
    /// CVPR 2016, the CIFAR variant of section 4.2): a 3x3 conv 16 + BN + ReLU
    /// stem, three stages of three basic blocks with 16, 32 and 64 channels,
    /// global average pooling, flatten, fc `classes`.
    ///
    /// Blocks are ``basicBlock(_:prefix:width:stride:)``; the first block of
    /// stages 2 and 3 has stride 2 and a projection shortcut.
    static func buildResNet20(_ b: inout GraphBuilder, classes: Int) {
        b.conv("conv1", out: b.scaled(16), kernel: 3, padding: 1, bias: false)
        b.batchNorm("bn1")
        b.add("relu1", .relu)
        residualStages(&b, widths: [16, 32, 64], blocks: 3)
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: classes)
    }

    /// ResNet-18 (He et al., "Deep Residual Learning for Image Recognition",
    /// CVPR 2016, the ImageNet network of Table 1): a 7x7 conv 64 stride 2
    /// (pad 3) + BN + ReLU stem, 3x3 max pooling stride 2 (pad 1), four stages
    /// of two basic blocks with 64, 128, 256 and 512 channels, global average
    /// pooling, flatten, fc `classes`. 11,689,512 parameters and 1.81G MACs
    /// on 3x224x224 inputs with 1000 classes.
    ///
    /// Blocks are ``basicBlock(_:prefix:width:stride:)``; the first block of
    /// stages 2 to 4 has stride 2 and a projection shortcut.
    static func buildResNet18(_ b: inout GraphBuilder, classes: Int) {
        b.conv("conv1", out: b.scaled(64), kernel: 7, stride: 2, padding: 3, bias: false)
        b.batchNorm("bn1")
        b.add("relu1", .relu)
        b.add("pool1", .maxPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1))))
        residualStages(&b, widths: [64, 128, 256, 512], blocks: 2)
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: classes)
    }

    /// Stages of `blocks` basic blocks, one stage per entry of `widths` (as
    /// published, before ``GraphBuilder/scaled(_:)``); the first block of every
    /// stage but the first has stride 2. Block `j` of stage `i` is `layer<i>.<j>`.
    private static func residualStages(_ b: inout GraphBuilder, widths: [Int], blocks: Int) {
        for (stage, published) in widths.enumerated() {
            for block in 0..<blocks {
                basicBlock(&b, prefix: "layer\(stage + 1).\(block)", width: b.scaled(published),
                           stride: (stage > 0 && block == 0) ? 2 : 1)
            }
        }
    }

    /// A basic residual block: conv3x3 (stride `stride`, pad 1) - BN - ReLU -
    /// conv3x3 - BN, added to its shortcut, then ReLU. The shortcut is the
    /// identity, or a projection (1x1 conv with stride `stride` + BN, the
    /// paper's option B) when the stride or the channel count changes. Nodes
    /// `<prefix>.conv1`, `.bn1`, `.relu1`, `.conv2`, `.bn2`, `.shortcut.conv`,
    /// `.shortcut.bn`, `.add`, `.relu2`.
    private static func basicBlock(_ b: inout GraphBuilder, prefix: String, width: Int, stride: Int) {
        let input = b.current
        b.conv("\(prefix).conv1", out: width, kernel: 3, stride: stride, padding: 1, bias: false)
        b.batchNorm("\(prefix).bn1")
        b.add("\(prefix).relu1", .relu)
        b.conv("\(prefix).conv2", out: width, kernel: 3, padding: 1, bias: false)
        let residual = b.batchNorm("\(prefix).bn2")
        var shortcut = input
        if stride != 1 || b.shape(of: input)[1] != width {
            b.conv("\(prefix).shortcut.conv", out: width, kernel: 1, stride: stride, bias: false, from: input)
            shortcut = b.batchNorm("\(prefix).shortcut.bn")
        }
        b.add("\(prefix).add", .add, inputs: [residual, shortcut])
        b.add("\(prefix).relu2", .relu)
    }
}
