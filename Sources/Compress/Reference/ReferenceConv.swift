extension ReferenceEvaluator {
    /// Direct 2-D convolution: for every output element, the sum over its
    /// group's input channels and kernel taps that land inside the input
    /// (taps in the zero padding add nothing).
    static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ a: Conv2d) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let og = o / a.groups
        let oh = slidingOutputSize(input: h, kernel: kh, stride: a.stride.h, padBefore: a.padding.top,
                                   padAfter: a.padding.bottom, dilation: a.dilation.h)
        let ow = slidingOutputSize(input: w, kernel: kw, stride: a.stride.w, padBefore: a.padding.left,
                                   padAfter: a.padding.right, dilation: a.dilation.w)
        let xs = x.floats, ws = weight.floats, bs = bias?.floats
        var out = [Float](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n {
            for oc in 0..<o {
                let group = oc / og
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = Double(bs?[oc] ?? 0)
                        for ic in 0..<cg {
                            let inChannel = group * cg + ic
                            for ky in 0..<kh {
                                let iy = oy * a.stride.h - a.padding.top + ky * a.dilation.h
                                guard iy >= 0, iy < h else { continue }
                                for kx in 0..<kw {
                                    let ix = ox * a.stride.w - a.padding.left + kx * a.dilation.w
                                    guard ix >= 0, ix < w else { continue }
                                    let xv = xs[((b * c + inChannel) * h + iy) * w + ix]
                                    let wv = ws[((oc * cg + ic) * kh + ky) * kw + kx]
                                    sum += Double(xv) * Double(wv)
                                }
                            }
                        }
                        out[((b * o + oc) * oh + oy) * ow + ox] = Float(sum)
                    }
                }
            }
        }
        return Tensor(shape: [n, o, oh, ow], floats: out)
    }

    /// `y = x Wᵀ + b` for x `[N, in]`, W `[out, in]`.
    static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let (n, features) = (x.shape[0], x.shape[1])
        let outFeatures = weight.shape[0]
        let xs = x.floats, ws = weight.floats, bs = bias?.floats
        var out = [Float](repeating: 0, count: n * outFeatures)
        for b in 0..<n {
            for j in 0..<outFeatures {
                var sum = Double(bs?[j] ?? 0)
                for i in 0..<features { sum += Double(xs[b * features + i]) * Double(ws[j * features + i]) }
                out[b * outFeatures + j] = Float(sum)
            }
        }
        return Tensor(shape: [n, outFeatures], floats: out)
    }

    /// Inference batch normalization with running statistics, channel = axis 1:
    /// `(x - mean) / sqrt(variance + epsilon) * scale + bias`.
    static func batchNorm(_ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor,
                          epsilon: Float) -> Tensor {
        let channels = x.shape[1]
        let inner = x.shape[2...].reduce(1, *)
        let (g, b, m, v) = (scale.floats, bias.floats, mean.floats, variance.floats)
        var out = x.floats
        for i in out.indices {
            let c = (i / inner) % channels
            let normalized = (Double(out[i]) - Double(m[c])) / (Double(v[c]) + Double(epsilon)).squareRoot()
            out[i] = Float(normalized * Double(g[c]) + Double(b[c]))
        }
        return Tensor(shape: x.shape, floats: out)
    }
}
