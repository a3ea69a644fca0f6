extension Architecture {
    /// ResNet-20 (He et al., "Deep Residual Learning for Image Recognition",
    /// CVPR 2016, the CIFAR variant of section 4.2): a 3x3 conv 16 + BN + ReLU
    /// stem, three stages of three basic blocks with 16, 32 and 64 channels,
    /// global average pooling, flatten, fc `classes`.
    ///
    /// A basic block is conv3x3-BN-ReLU-conv3x3-BN, added to its shortcut, then
    /// ReLU. The first block of stages 2 and 3 has stride 2 and a projection
    /// shortcut (1x1 conv stride 2 + BN, the paper's option B); the others use
    /// the identity. Block `j` of stage `i` is named `layer<i>.<j>`.
    static func buildResNet20(_ b: inout GraphBuilder, classes: Int) {
        b.conv("conv1", out: b.scaled(16), kernel: 3, padding: 1, bias: false)
        b.batchNorm("bn1")
        b.add("relu1", .relu)
        for (stage, published) in [16, 32, 64].enumerated() {
            let width = b.scaled(published)
            for block in 0..<3 {
                let prefix = "layer\(stage + 1).\(block)"
                let stride = (stage > 0 && block == 0) ? 2 : 1
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
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: classes)
    }
}
