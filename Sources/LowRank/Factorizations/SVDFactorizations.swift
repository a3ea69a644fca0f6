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

extension SVDFactorization {
    /// Depthwise-separable replacement of a `kh x kw` convolution `C -> N`: a
    /// `kh x kw` depthwise convolution with depth multiplier `m` (groups `C`,
    /// `C·m` output channels, output channel `c·m + j` reading input channel `c`,
    /// the original stride, padding and dilation), then a 1x1 convolution
    /// `C·m -> N` carrying the bias. Each input channel's slice `W[:, c, :, :]`,
    /// an `N x (kh·kw)` matrix, becomes its best rank-`m` approximation
    /// `P_c · D_c` (truncated SVD, singular values split as square roots): the
    /// rows of `D_c` are the channel's depthwise filters, the columns of `P_c`
    /// its pointwise weights. Exact at `m = min(N, kh·kw)`. `groups == 1` only.
    ///
    /// `multiplier` chooses `m`: `.rank(m)`; `.energy(e)`, the smallest `m`
    /// keeping the fraction `e` of `Σ s²` summed over every channel's slice
    /// (that is, of `‖W‖²`); `.vbmf`, the largest of the slices' VBMF ranks.
    ///
    /// Howard et al., "MobileNets: Efficient Convolutional Neural Networks for
    /// Mobile Vision Applications", 2017 (https://arxiv.org/abs/1704.04861).
    public static func separable(weight: Tensor, bias: Tensor?, attributes: Conv2d,
                                 multiplier selection: RankSelection) throws(LowRankError) -> Factorization {
        let shape = try ConvShape(weight: weight, bias: bias, attributes: attributes)
        let n = shape.outChannels, c = shape.inChannels, s = shape.spatial
        let full = min(n, s)
        // Slice c as a row-major N x (kh·kw) matrix: S_c[o, t] = W[o, c, t].
        let w = weight.floats
        var svds: [SingularValueDecomposition] = []
        for i in 0..<c {
            svds.append(try SingularValueDecomposition(inputChannelSlice(w, shape: weight.shape, channel: i), rows: n, columns: s))
        }
        let squares = svds.map { $0.allSingularValues.map { Double($0) * Double($0) } }
        let total = squares.reduce(0) { $0 + $1.reduce(0, +) }
        func kept(_ m: Int) -> Double { squares.reduce(0) { $0 + $1[..<m].reduce(0, +) } }
        let m: Int
        switch selection {
        case .rank(let r):
            guard r >= 1, r <= full else { throw .rankOutOfRange(rank: r, fullRank: full) }
            m = r
        case .energy(let e):
            guard e > 0, e <= 1, e.isFinite else { throw .energyOutOfRange(e) }
            let goal = Double(e) * total * (1 - 1e-12)
            m = (1...full).first { kept($0) >= goal } ?? full
        case .vbmf:
            m = max(1, svds.map { vbmfRank(singularValues: $0.allSingularValues, rows: n, columns: s).rank }.max()!)
        }
        // Depthwise [C·m, 1, kh, kw]: row c·m + j is row j of D_c; pointwise
        // [N, C·m, 1, 1]: column c·m + j is column j of P_c.
        var depthwise = [Float](repeating: 0, count: c * m * s)
        var pointwise = [Float](repeating: 0, count: n * c * m)
        for i in 0..<c {
            let (left, right) = try svds[i].truncated(toRank: m).balancedFactors()
            for j in 0..<m {
                for t in 0..<s { depthwise[(i * m + j) * s + t] = right[j * s + t] }
                for o in 0..<n { pointwise[o * c * m + i * m + j] = left[o * m + j] }
            }
        }
        var depthwiseAttributes = attributes
        depthwiseAttributes.groups = c
        let discarded = squares.reduce(0) { $0 + $1[m...].reduce(0, +) }
        let error = total > 0 ? Float((discarded / total).squareRoot()) : 0
        return Factorization(
            layers: [FactorLayer(op: .conv2d(depthwiseAttributes),
                                 weight: Tensor(shape: [c * m, 1, shape.kh, shape.kw], floats: depthwise)),
                     FactorLayer(op: .conv2d(Conv2d()), weight: Tensor(shape: [n, c * m, 1, 1], floats: pointwise), bias: bias)],
            ranks: [m], relativeError: error)
    }

    /// Input channel `channel`'s slice of a convolution weight `w [N, C, kh, kw]`:
    /// the row-major `N x (kh·kw)` matrix `S[o, t] = W[o, channel, t]` that
    /// `separable` approximates at rank m.
    static func inputChannelSlice(_ w: [Float], shape: [Int], channel i: Int) -> [Float] {
        let n = shape[0], c = shape[1], s = shape[2] * shape[3]
        var slice = [Float](repeating: 0, count: n * s)
        for o in 0..<n { for t in 0..<s { slice[o * s + t] = w[(o * c + i) * s + t] } }
        return slice
    }
}
