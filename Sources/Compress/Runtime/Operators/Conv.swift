import CBLAS

/// A 2-D convolution over NCHW feature maps with bias and activation fused
/// into the epilogue. Three strategies, chosen once at plan time:
/// - pointwise (1x1, stride 1, no padding): the image is already the GEMM operand;
/// - depthwise (one input channel per group, any depth multiplier): a direct loop;
/// - otherwise im2col of one image (one group at a time) and `cblas_sgemm`.
struct ConvKernel: Kernel {
    enum Strategy { case pointwise, depthwise, im2col }

    let attributes: Conv2d
    /// `[O, C/groups, kh, kw]`: per group, a row-major `[O/groups, C/groups*kh*kw]` matrix.
    let weight: [Float]
    let bias: [Float]?
    let outChannels: Int, groupChannels: Int, kernelH: Int, kernelW: Int
    let activation: FusedActivation
    let strategy: Strategy
    /// Output channels per input channel of a depthwise conv (1 otherwise).
    let depthwiseMultiplier: Int

    init(attributes a: Conv2d, weight: Tensor, bias: Tensor?, activation: FusedActivation) {
        attributes = a
        self.weight = weight.floats
        self.bias = bias?.floats
        (outChannels, groupChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        self.activation = activation
        let multiplier = a.depthwiseMultiplier(weightShape: weight.shape)
        depthwiseMultiplier = multiplier ?? 1
        if kernelH == 1 && kernelW == 1 && a.stride == .square(1) && a.padding.isZero {
            strategy = .pointwise
        } else if multiplier != nil {
            strategy = .depthwise
        } else {
            strategy = .im2col
        }
    }

    /// Rows of a group's weight matrix: input channels per group times kernel taps.
    var patchLength: Int { groupChannels * kernelH * kernelW }

    /// The sizes `im2col` unfolds one group of an `h x w` image with, for an `oh x ow` output.
    func geometry(h: Int, w: Int, oh: Int, ow: Int) -> ConvGeometry {
        ConvGeometry(attributes: attributes, groupChannels: groupChannels, height: h, width: w,
                     kernelH: kernelH, kernelW: kernelW, outH: oh, outW: ow)
    }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        strategy == .im2col ? patchLength * outputShape[2] * outputShape[3] : 0
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { strategy == .depthwise ? "dense-depthwise" : "dense-gemm" }

    /// Multiply-adds from which one image of an ungrouped GEMM conv runs as
    /// parts of `channelsPerPart` output channels (one GEMM each), which
    /// workers share when there are fewer images than workers (the blocked
    /// convs' threshold, `BlockedConvKernel.splitImageWork`).
    static let splitImageWork = 1_000_000
    /// Output channels per part: fixed, not a share per worker, so the same
    /// BLAS calls (and so the same sums) run on any number of threads.
    static let channelsPerPart = 16

    /// Images go to workers when there are enough of them; a single image
    /// (ungrouped) splits its output channels over the workers instead.
    func run(_ b: StepBinding, _ context: KernelContext) {
        let (n, c, h, w) = (b.inputShapes[0][0], b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let (inImage, outImage) = (c * h * w, outChannels * oh * ow)
        let parts = channelParts(splits: context.splits(outImage * patchLength, threshold: Self.splitImageWork))
        weight.withUnsafeBufferPointer { wp in
            let wBase = wp.baseAddress!
            if n >= context.threads || parts == 1 {
                context.forEachPart(n, workers: context.workers(forWork: n * outImage * patchLength)) { i, worker in
                    convolve(b.inputs[0] + i &* inImage, h: h, w: w, wBase, b.output + i &* outImage, oh: oh, ow: ow,
                             col: context.scratch(forWorker: worker), parts: parts)
                }
                return
            }
            for i in 0..<n {
                convolveSplittingChannels(b.inputs[0] + i &* inImage, h: h, w: w, wBase, b.output + i &* outImage,
                                          oh: oh, ow: ow, context, parts: parts)
            }
        }
    }

    /// Parts one image's GEMM is cut into: 1 for small, grouped or depthwise convs.
    private func channelParts(splits: Bool) -> Int {
        guard strategy != .depthwise && attributes.groups == 1 && splits else { return 1 }
        return (outChannels + Self.channelsPerPart - 1) / Self.channelsPerPart
    }

    /// Output channels of part `part`.
    private func channels(ofPart part: Int, parts: Int) -> Range<Int> {
        parts == 1 ? 0..<outChannels : part * Self.channelsPerPart..<min((part + 1) * Self.channelsPerPart, outChannels)
    }

    /// One image, bias and activation included.
    private func convolve(_ x: UnsafeMutablePointer<Float>, h: Int, w: Int, _ wp: UnsafePointer<Float>,
                          _ y: UnsafeMutablePointer<Float>, oh: Int, ow: Int, col: UnsafeMutablePointer<Float>,
                          parts: Int) {
        switch strategy {
        case .depthwise: depthwise(x, h: h, w: w, wp, y, oh: oh, ow: ow)
        case .pointwise where parts > 1:
            for part in 0..<parts { convolvePart(channels(ofPart: part, parts: parts), x, wp, y, spatial: oh * ow) }
        case .pointwise:
            pointwise(x, spatial: h * w, wp, y)
            epilogue(y, channels: 0..<outChannels, spatial: oh * ow)
        case .im2col where parts > 1:
            im2col(x, geometry(h: h, w: w, oh: oh, ow: ow), col: col, rowStride: oh * ow)
            for part in 0..<parts { convolvePart(channels(ofPart: part, parts: parts), col, wp, y, spatial: oh * ow) }
        case .im2col:
            im2colGEMM(x, h: h, w: w, wp, y, oh: oh, ow: ow, col: col)
            epilogue(y, channels: 0..<outChannels, spatial: oh * ow)
        }
    }

    /// One image of an ungrouped conv, workers taking its parts of output channels.
    private func convolveSplittingChannels(_ x: UnsafeMutablePointer<Float>, h: Int, w: Int, _ wp: UnsafePointer<Float>,
                                           _ y: UnsafeMutablePointer<Float>, oh: Int, ow: Int,
                                           _ context: KernelContext, parts: Int) {
        let spatial = oh * ow, col = context.scratch
        let operand: UnsafeMutablePointer<Float>
        if strategy == .im2col {
            im2col(x, geometry(h: h, w: w, oh: oh, ow: ow), col: col, rowStride: spatial)
            operand = col
        } else {
            operand = x
        }
        context.forEachPart(parts, workers: context.threads) { part, _ in
            convolvePart(channels(ofPart: part, parts: parts), operand, wp, y, spatial: spatial)
        }
    }

    /// Output channels `rows` of one ungrouped image from its GEMM operand (the
    /// image, or its im2col unfolding), bias and activation included.
    private func convolvePart(_ rows: Range<Int>, _ operand: UnsafeMutablePointer<Float>, _ wp: UnsafePointer<Float>,
                              _ y: UnsafeMutablePointer<Float>, spatial: Int) {
        gemm(m: rows.count, n: spatial, k: patchLength, wp + rows.lowerBound &* patchLength, operand,
             y + rows.lowerBound &* spatial)
        epilogue(y, channels: rows, spatial: spatial)
    }

    /// Bias and activation over output channels `channels` of one image.
    private func epilogue(_ y: UnsafeMutablePointer<Float>, channels: Range<Int>, spatial: Int) {
        let start = y + channels.lowerBound &* spatial
        withBias(bias) {
            applyChannelBiasAndActivation(start, channels: channels.count, length: spatial,
                                          bias: $0.map { $0 + channels.lowerBound }, activation)
        }
    }

    /// `y_g = W_g x_g` per group, with the image itself as the `[C/groups, H*W]` operand.
    private func pointwise(_ x: UnsafeMutablePointer<Float>, spatial: Int, _ w: UnsafePointer<Float>,
                           _ y: UnsafeMutablePointer<Float>) {
        let groupOut = outChannels / attributes.groups
        for g in 0..<attributes.groups {
            gemm(m: groupOut, n: spatial, k: groupChannels, w + g &* groupOut &* groupChannels,
                 x + g &* groupChannels &* spatial, y + g &* groupOut &* spatial)
        }
    }

    /// Per group: unfold the group's channels into `col` `[patchLength, OH*OW]`, then `y_g = W_g col`.
    private func im2colGEMM(_ x: UnsafeMutablePointer<Float>, h: Int, w: Int, _ wp: UnsafePointer<Float>,
                            _ y: UnsafeMutablePointer<Float>, oh: Int, ow: Int, col: UnsafeMutablePointer<Float>) {
        let groupOut = outChannels / attributes.groups
        let unfolding = geometry(h: h, w: w, oh: oh, ow: ow)
        for g in 0..<attributes.groups {
            im2col(x + g &* groupChannels &* h &* w, unfolding, col: col, rowStride: oh &* ow)
            gemm(m: groupOut, n: oh * ow, k: patchLength, wp + g &* groupOut &* patchLength,
                 col, y + g &* groupOut &* oh &* ow)
        }
    }

    /// One input channel per group: each output row accumulates `weight * input row`
    /// for every tap, starting from the bias; output channel `c` reads input channel `c / multiplier`.
    private func depthwise(_ x: UnsafeMutablePointer<Float>, h: Int, w: Int, _ wp: UnsafePointer<Float>,
                           _ y: UnsafeMutablePointer<Float>, oh: Int, ow: Int) {
        let a = attributes
        let (sh, sw) = (a.stride.h, a.stride.w)
        let taps = kernelH &* kernelW
        for c in 0..<outChannels {
            let plane = x + (c / depthwiseMultiplier) &* h &* w, out = y + c &* oh &* ow, kernel = wp + c &* taps
            let b = bias?[c] ?? 0
            for oy in 0..<oh {
                let dst = out + oy &* ow
                dst.update(repeating: b, count: ow)
                let yStart = oy &* sh &- a.padding.top
                let (kyLo, kyHi) = validTapRange(start: yStart, step: a.dilation.h, taps: kernelH, limit: h)
                for ky in kyLo..<kyHi {
                    let src = plane + (yStart &+ ky &* a.dilation.h) &* w
                    for kx in 0..<kernelW {
                        let weight = kernel[ky &* kernelW &+ kx]
                        let xOffset = kx &* a.dilation.w &- a.padding.left
                        let (lo, hi) = validTapRange(start: xOffset, step: sw, taps: ow, limit: w)
                        let s = src + xOffset
                        if sw == 1 {
                            for ox in lo..<hi { dst[ox] += weight * s[ox] }
                        } else {
                            for ox in lo..<hi { dst[ox] += weight * s[ox &* sw] }
                        }
                    }
                }
            }
            applyChannelBiasAndActivation(out, channels: 1, length: oh &* ow, bias: nil, activation)
        }
    }
}

/// Row-major `C[m, n] = A[m, k] * B[k, n]` through `cblas_sgemm`, all operands dense.
func gemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
          _ c: UnsafeMutablePointer<Float>) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                1, a, Int32(k), b, Int32(n), 0, c, Int32(n))
}
