extension ReferenceEvaluator {
    /// LayerNorm over the channels (axis 1) at each position: the mean and the
    /// biased variance of the C values `x[n, :, p]`, in `Double`, then
    /// `(x - mean) / sqrt(var + epsilon) * scale[c] + bias[c]` (Ba et al. 2016).
    static func layerNorm(_ x: Tensor, scale: Tensor, bias: Tensor?, epsilon: Float) -> Tensor {
        let (batch, channels) = (x.shape[0], x.shape[1])
        let inner = x.shape[2...].reduce(1, *)
        let (xs, g, b) = (x.floats, scale.floats, bias?.floats)
        var out = xs
        for n in 0..<batch {
            for p in 0..<inner {
                let offsets = (0..<channels).map { (n * channels + $0) * inner + p }
                let mean = offsets.reduce(0.0) { $0 + Double(xs[$1]) } / Double(channels)
                let variance = offsets.reduce(0.0) { $0 + (Double(xs[$1]) - mean) * (Double(xs[$1]) - mean) } / Double(channels)
                let inverseDeviation = 1 / (variance + Double(epsilon)).squareRoot()
                for (c, offset) in offsets.enumerated() {
                    let normalized = (Double(xs[offset]) - mean) * inverseDeviation
                    out[offset] = Float(normalized * Double(g[c]) + Double(b?[c] ?? 0))
                }
            }
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
