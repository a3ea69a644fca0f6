extension ReferenceEvaluator {
    /// Output height and width of a pooling window over `x` `[N,C,H,W]`.
    private static func pooledSize(_ x: Tensor, _ p: Pool2d) -> (Int, Int) {
        (slidingOutputSize(input: x.shape[2], kernel: p.kernel.h, stride: p.stride.h, padBefore: p.padding.top,
                           padAfter: p.padding.bottom, dilation: p.dilation.h, ceilMode: p.ceilMode),
         slidingOutputSize(input: x.shape[3], kernel: p.kernel.w, stride: p.stride.w, padBefore: p.padding.left,
                           padAfter: p.padding.right, dilation: p.dilation.w, ceilMode: p.ceilMode))
    }

    /// Calls `body(iy, ix)` for every tap of the window at output (oy, ox)
    /// that lies inside the padded input. Taps that ceil mode puts past the
    /// bottom or right padding are skipped; `body` checks for the real input.
    private static func forEachTap(_ p: Pool2d, oy: Int, ox: Int, h: Int, w: Int,
                                   _ body: (_ iy: Int, _ ix: Int) -> Void) {
        for ky in 0..<p.kernel.h {
            let iy = oy * p.stride.h - p.padding.top + ky * p.dilation.h
            guard iy < h + p.padding.bottom else { continue }
            for kx in 0..<p.kernel.w {
                let ix = ox * p.stride.w - p.padding.left + kx * p.dilation.w
                guard ix < w + p.padding.right else { continue }
                body(iy, ix)
            }
        }
    }

    /// Maximum over each window; padding counts as -infinity.
    static func maxPool(_ x: Tensor, _ p: Pool2d) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = pooledSize(x, p)
        let xs = x.floats
        var out = [Float](repeating: 0, count: n * c * oh * ow)
        for plane in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = -Float.infinity
                    forEachTap(p, oy: oy, ox: ox, h: h, w: w) { iy, ix in
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { return }
                        best = max(best, xs[(plane * h + iy) * w + ix])
                    }
                    out[(plane * oh + oy) * ow + ox] = best
                }
            }
        }
        return Tensor(shape: [n, c, oh, ow], floats: out)
    }

    /// Mean over each window. The divisor counts the taps inside the input, or
    /// with `countIncludePad` the taps inside the padded input (never taps that
    /// ceil mode puts past the padding). A window with no taps gives 0.
    static func avgPool(_ x: Tensor, _ p: Pool2d, countIncludePad: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = pooledSize(x, p)
        let xs = x.floats
        var out = [Float](repeating: 0, count: n * c * oh * ow)
        for plane in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = 0.0, count = 0
                    forEachTap(p, oy: oy, ox: ox, h: h, w: w) { iy, ix in
                        let inside = iy >= 0 && iy < h && ix >= 0 && ix < w
                        if inside { sum += Double(xs[(plane * h + iy) * w + ix]) }
                        if inside || countIncludePad { count += 1 }
                    }
                    out[(plane * oh + oy) * ow + ox] = count == 0 ? 0 : Float(sum / Double(count))
                }
            }
        }
        return Tensor(shape: [n, c, oh, ow], floats: out)
    }

    /// Mean over every axis after the channel axis; keeps them as size 1.
    static func globalAvgPool(_ x: Tensor) -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.shape[2...].reduce(1, *)
        let xs = x.floats
        var out = [Float](repeating: 0, count: n * c)
        for plane in 0..<(n * c) {
            var sum = 0.0
            for i in 0..<inner { sum += Double(xs[plane * inner + i]) }
            out[plane] = Float(sum / Double(inner))
        }
        return Tensor(shape: [n, c] + [Int](repeating: 1, count: x.rank - 2), floats: out)
    }
}
