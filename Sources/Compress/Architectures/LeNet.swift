extension Architecture {
    /// LeNet-300-100 (LeCun et al., "Gradient-Based Learning Applied to Document
    /// Recognition", 1998), the fully connected baseline of Han et al.,
    /// "Deep Compression", 2016: flatten, fc 300, ReLU, fc 100, ReLU, fc `classes`.
    /// 266,610 parameters on 28x28 inputs.
    static func buildLeNet300(_ b: inout GraphBuilder, classes: Int) {
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc1", out: b.scaled(300))
        b.add("relu1", .relu)
        b.linear("fc2", out: b.scaled(100))
        b.add("relu2", .relu)
        b.linear("fc3", out: classes)
    }

    /// LeNet-5 as Caffe's MNIST example defines it, the convolutional baseline of
    /// "Deep Compression" (LeCun et al. 1998; Han et al. 2016): conv 20@5x5,
    /// max pool 2, conv 50@5x5, max pool 2, flatten, fc 500, ReLU, fc `classes`.
    /// As in Caffe, the convolutions have no nonlinearity after them.
    /// 431,080 parameters on 28x28 inputs.
    static func buildLeNet5(_ b: inout GraphBuilder, classes: Int) {
        b.conv("conv1", out: b.scaled(20), kernel: 5)
        b.add("pool1", .maxPool(Pool2d(kernel: .square(2))))
        b.conv("conv2", out: b.scaled(50), kernel: 5)
        b.add("pool2", .maxPool(Pool2d(kernel: .square(2))))
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc1", out: b.scaled(500))
        b.add("relu1", .relu)
        b.linear("fc2", out: classes)
    }
}
