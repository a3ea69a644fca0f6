extension Architecture {
    /// A small VGG-style network (Simonyan & Zisserman, "Very Deep Convolutional
    /// Networks for Large-Scale Image Recognition", ICLR 2015) with batch norm:
    /// three stages of two 3x3 conv (pad 1, no bias) + BN + ReLU, 32/64/128
    /// wide, each followed by 2x2 max pooling; then global average pooling,
    /// flatten and fc `classes`. About 29.1M MACs on 28x28 inputs.
    static func buildVGGSmall(_ b: inout GraphBuilder, classes: Int) {
        var layer = 0
        for (stage, width) in [32, 64, 128].enumerated() {
            for _ in 0..<2 {
                layer += 1
                b.conv("conv\(layer)", out: b.scaled(width), kernel: 3, padding: 1, bias: false)
                b.batchNorm("bn\(layer)")
                b.add("relu\(layer)", .relu)
            }
            b.add("pool\(stage + 1)", .maxPool(Pool2d(kernel: .square(2))))
        }
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: classes)
    }
}
