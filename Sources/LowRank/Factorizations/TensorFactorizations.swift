import Compress

/// Factorizations from tensor decompositions of a convolution kernel.
public enum TensorFactorization {
    /// Tucker-2 (see `tucker2(_:inputRank:outputRank:iterations:)`) as layers: a 1x1
    /// convolution `C -> inputRank`, the `kh x kw` core convolution
    /// `inputRank -> outputRank` with the original stride, padding and dilation,
    /// and a 1x1 convolution `outputRank -> N` carrying the bias. `groups == 1` only.
    public static func tucker2(weight: Tensor, bias: Tensor?, attributes: Conv2d,
                               inputRank: Int, outputRank: Int, iterations: Int = 3) throws(LowRankError) -> Factorization {
        let shape = try ConvShape(weight: weight, bias: bias, attributes: attributes)
        let f = try LowRank.tucker2(weight, inputRank: inputRank, outputRank: outputRank, iterations: iterations)
        let c = shape.inChannels, n = shape.outChannels
        return Factorization(
            layers: [FactorLayer(op: .conv2d(Conv2d()),
                                 weight: Tensor(shape: [inputRank, c, 1, 1], floats: transposed(f.inputFactor, rows: c, columns: inputRank))),
                     FactorLayer(op: .conv2d(attributes),
                                 weight: Tensor(shape: [outputRank, inputRank, shape.kh, shape.kw], floats: f.core)),
                     FactorLayer(op: .conv2d(Conv2d()), weight: Tensor(shape: [n, outputRank, 1, 1], floats: f.outputFactor),
                                 bias: bias)],
            ranks: [inputRank, outputRank], relativeError: f.relativeError)
    }
}

extension TensorFactorization {
    /// CP at `rank` (see `cpALS(_:rank:maxIterations:tolerance:seed:)`) as layers: a
    /// 1x1 convolution `C -> R`, a `kh x 1` depthwise convolution with the vertical
    /// stride, padding and dilation, a `1 x kw` depthwise convolution with the
    /// horizontal ones, and a 1x1 convolution `R -> N` carrying the CP weights and
    /// the bias. `groups == 1` only.
    public static func cp(weight: Tensor, bias: Tensor?, attributes: Conv2d, rank: Int,
                          maxIterations: Int = 500, seed: UInt64 = 0) throws(LowRankError) -> Factorization {
        let shape = try ConvShape(weight: weight, bias: bias, attributes: attributes)
        let f = try cpALS(weight, rank: rank, maxIterations: maxIterations, seed: seed)
        let n = shape.outChannels, c = shape.inChannels, kh = shape.kh, kw = shape.kw
        var last = f.output
        for o in 0..<n { for r in 0..<rank { last[o * rank + r] *= f.weights[r] } }
        var vertical = attributes.vertical
        vertical.groups = rank
        var horizontal = attributes.horizontal
        horizontal.groups = rank
        return Factorization(
            layers: [FactorLayer(op: .conv2d(Conv2d()), weight: Tensor(shape: [rank, c, 1, 1], floats: transposed(f.input, rows: c, columns: rank))),
                     FactorLayer(op: .conv2d(vertical), weight: Tensor(shape: [rank, 1, kh, 1], floats: transposed(f.vertical, rows: kh, columns: rank))),
                     FactorLayer(op: .conv2d(horizontal), weight: Tensor(shape: [rank, 1, 1, kw], floats: transposed(f.horizontal, rows: kw, columns: rank))),
                     FactorLayer(op: .conv2d(Conv2d()), weight: Tensor(shape: [n, rank, 1, 1], floats: last), bias: bias)],
            ranks: [rank], relativeError: f.relativeError)
    }
}
