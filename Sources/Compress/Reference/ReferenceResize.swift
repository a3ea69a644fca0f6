extension ReferenceEvaluator {
    /// Resize: every output pixel maps to a source coordinate per axis, then
    /// takes the nearest input pixel or the bilinear mix of the four around it.
    static func resize(_ x: Tensor, _ r: Resize2d) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = r.outputSize(h: h, w: w)
        let (scaleH, scaleW) = r.mappingScales(h: h, w: w)
        let xs = x.floats
        var y = [Float](repeating: 0, count: n * c * out.h * out.w)
        for plane in 0..<(n * c) {
            for oy in 0..<out.h {
                let sy = r.sourceCoordinate(oy, inputLength: h, outputLength: out.h, scale: scaleH)
                for ox in 0..<out.w {
                    let sx = r.sourceCoordinate(ox, inputLength: w, outputLength: out.w, scale: scaleW)
                    let value: Double
                    switch r.mode {
                    case .nearest:
                        let iy = r.nearestIndex(sy, inputLength: h), ix = r.nearestIndex(sx, inputLength: w)
                        value = Double(xs[(plane * h + iy) * w + ix])
                    case .linear:
                        let (y0, y1, fy) = r.linearNeighbours(sy, inputLength: h)
                        let (x0, x1, fx) = r.linearNeighbours(sx, inputLength: w)
                        func at(_ iy: Int, _ ix: Int) -> Double { Double(xs[(plane * h + iy) * w + ix]) }
                        let (wy, wx) = (Double(fy), Double(fx))
                        value = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1))
                            + wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1))
                    }
                    y[(plane * out.h + oy) * out.w + ox] = Float(value)
                }
            }
        }
        return Tensor(shape: [n, c, out.h, out.w], floats: y)
    }

    /// Transposed convolution by direct scatter: every input pixel adds its
    /// value times each kernel tap into the output pixel that tap lands on
    /// (taps landing in the cropped padding add nothing).
    static func convTranspose(_ x: Tensor, weight: Tensor, bias: Tensor?, _ a: ConvTranspose2d) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (og, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
        let o = og * a.groups, cg = c / a.groups
        let oh = ConvTranspose2d.outputSize(input: h, kernel: kh, stride: a.stride.h, padBefore: a.padding.top,
                                            padAfter: a.padding.bottom, dilation: a.dilation.h, outputPadding: a.outputPadding.h)
        let ow = ConvTranspose2d.outputSize(input: w, kernel: kw, stride: a.stride.w, padBefore: a.padding.left,
                                            padAfter: a.padding.right, dilation: a.dilation.w, outputPadding: a.outputPadding.w)
        let xs = x.floats, ws = weight.floats
        var sums = [Double](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n {
            for ic in 0..<c {
                let group = ic / cg
                for iy in 0..<h {
                    for ix in 0..<w {
                        let xv = Double(xs[((b * c + ic) * h + iy) * w + ix])
                        for j in 0..<og {
                            let oc = group * og + j
                            for ky in 0..<kh {
                                let y = iy * a.stride.h - a.padding.top + ky * a.dilation.h
                                guard y >= 0, y < oh else { continue }
                                for kx in 0..<kw {
                                    let xo = ix * a.stride.w - a.padding.left + kx * a.dilation.w
                                    guard xo >= 0, xo < ow else { continue }
                                    sums[((b * o + oc) * oh + y) * ow + xo] += xv * Double(ws[((ic * og + j) * kh + ky) * kw + kx])
                                }
                            }
                        }
                    }
                }
            }
        }
        if let bs = bias?.floats {
            for i in sums.indices { sums[i] += Double(bs[(i / (oh * ow)) % o]) }
        }
        return Tensor(shape: [n, o, oh, ow], floats: sums.map { Float($0) })
    }
}
