import Compress

/// Factorizations read off one truncated SVD: linear layers, and the channel and
/// spatial decompositions of convolutions.
public enum SVDFactorization {
    /// A linear layer `W [m, n]` (ONNX Gemm with transB = 1: `y = x Wᵀ + b`) as
    /// two linears `n -> r -> m`: first `√s·Vᵀ [r, n]`, then `U·√s [m, r]` with the bias.
    ///
    /// Denton et al., "Exploiting Linear Structure Within Convolutional Networks
    /// for Efficient Evaluation", NeurIPS 2014 (https://arxiv.org/abs/1404.0736).
    public static func linear(weight: Tensor, bias: Tensor?, rank selection: RankSelection) throws(LowRankError) -> Factorization {
        guard weight.rank == 2, weight.shape.allSatisfy({ $0 > 0 }) else {
            throw .badShape(what: "linear weight", shape: weight.shape, expected: "[out, in]")
        }
        let m = weight.shape[0], n = weight.shape[1]
        try checkBias(bias, count: m)
        let svd = try SingularValueDecomposition(weight.floats, rows: m, columns: n).truncated(selection)
        let r = svd.rank
        let (left, right) = svd.balancedFactors()
        return Factorization(
            layers: [FactorLayer(op: .linear, weight: Tensor(shape: [r, n], floats: right)),
                     FactorLayer(op: .linear, weight: Tensor(shape: [m, r], floats: left), bias: bias)],
            ranks: [r], relativeError: svd.relativeTruncationError)
    }

    /// Channel decomposition of a `kh x kw` convolution `C -> N`: a `kh x kw`
    /// convolution `C -> r` with the original stride, padding and dilation, then a
    /// 1x1 convolution `r -> N` carrying the bias; from the SVD of the weight as an
    /// `N x (C·kh·kw)` matrix. `groups == 1` only.
    ///
    /// Zhang et al., "Accelerating Very Deep Convolutional Networks for
    /// Classification and Detection", TPAMI 2016 (https://arxiv.org/abs/1505.06798).
    public static func channel(weight: Tensor, bias: Tensor?, attributes: Conv2d,
                               rank selection: RankSelection) throws(LowRankError) -> Factorization {
        let shape = try ConvShape(weight: weight, bias: bias, attributes: attributes)
        let n = shape.outChannels, patch = shape.inChannels * shape.spatial
        let svd = try SingularValueDecomposition(weight.floats, rows: n, columns: patch).truncated(selection)
        let r = svd.rank
        let (left, right) = svd.balancedFactors()
        return Factorization(
            layers: [FactorLayer(op: .conv2d(attributes),
                                 weight: Tensor(shape: [r, shape.inChannels, shape.kh, shape.kw], floats: right)),
                     FactorLayer(op: .conv2d(Conv2d()), weight: Tensor(shape: [n, r, 1, 1], floats: left), bias: bias)],
            ranks: [r], relativeError: svd.relativeTruncationError)
    }

    /// Spatially separable decomposition (scheme 2) of a `kh x kw` convolution
    /// `C -> N`: a `kh x 1` convolution `C -> r` with the vertical stride, padding
    /// and dilation, then a `1 x kw` convolution `r -> N` with the horizontal ones
    /// and the bias; from the SVD of the kernel reshaped to `(C·kh) x (kw·N)`.
    /// `groups == 1` only.
    ///
    /// Jaderberg, Vedaldi and Zisserman, "Speeding up Convolutional Neural Networks
    /// with Low Rank Expansions", BMVC 2014 (https://arxiv.org/abs/1405.3866).
    public static func spatial(weight: Tensor, bias: Tensor?, attributes: Conv2d,
                               rank selection: RankSelection) throws(LowRankError) -> Factorization {
        let shape = try ConvShape(weight: weight, bias: bias, attributes: attributes)
        let n = shape.outChannels, c = shape.inChannels, kh = shape.kh, kw = shape.kw
        let rows = c * kh, columns = kw * n
        let svd = try SingularValueDecomposition(spatialMatrix(weight), rows: rows, columns: columns).truncated(selection)
        let r = svd.rank
        let (left, right) = svd.balancedFactors()
        // vertical [r, C, kh, 1]: V[k, c, y] = left[(c, y), k]
        var vertical = [Float](repeating: 0, count: r * rows)
        for k in 0..<r { for row in 0..<rows { vertical[k * rows + row] = left[row * r + k] } }
        // horizontal [N, r, 1, kw]: H[n, k, x] = right[k, (x, n)]
        var horizontal = [Float](repeating: 0, count: n * r * kw)
        for o in 0..<n { for k in 0..<r { for x in 0..<kw {
            horizontal[(o * r + k) * kw + x] = right[k * columns + x * n + o]
        } } }
        return Factorization(
            layers: [FactorLayer(op: .conv2d(attributes.vertical), weight: Tensor(shape: [r, c, kh, 1], floats: vertical)),
                     FactorLayer(op: .conv2d(attributes.horizontal), weight: Tensor(shape: [n, r, 1, kw], floats: horizontal),
                                 bias: bias)],
            ranks: [r], relativeError: svd.relativeTruncationError)
    }

    /// The kernel `W [N, C, kh, kw]` reshaped to the `(C·kh) x (kw·N)` matrix
    /// the spatial decomposition factors: `M[(c, y), (x, n)] = W[n, c, y, x]`.
    static func spatialMatrix(_ weight: Tensor) -> [Float] {
        let n = weight.shape[0], c = weight.shape[1], kh = weight.shape[2], kw = weight.shape[3]
        let columns = kw * n
        var m = [Float](repeating: 0, count: weight.count)
        weight.floats.withUnsafeBufferPointer { pw in
            m.withUnsafeMutableBufferPointer { pm in
                for o in 0..<n { for i in 0..<c { for y in 0..<kh { for x in 0..<kw {
                    pm[(i &* kh &+ y) &* columns &+ x &* n &+ o] = pw[((o &* c &+ i) &* kh &+ y) &* kw &+ x]
                } } } }
            }
        }
        return m
    }
}
