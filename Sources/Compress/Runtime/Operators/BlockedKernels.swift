import SIMDKernels
import SIMDKernels512
import SIMDKernelsWide16

/// How a planned feature map is stored. The plan chooses it per value; the
/// graph IR and the model file know nothing of it.
enum ValueLayout: Sendable {
    /// Dense row-major (NCHW for feature maps).
    case plain
    /// NCHW8c: `[N][ceil(C/8)][H][W][8]`, channels padded with zeros to whole blocks.
    case blocked
}

extension ValueLayout {
    /// Floats a value of `shape` occupies in this layout.
    func storageCount(_ shape: [Int]) -> Int {
        switch self {
        case .plain: return shape.elementCount
        case .blocked: return shape[0] * blockedChannels(shape[1]) * shape[2...].reduce(1, *)
        }
    }
}

/// `channels` rounded up to whole blocks of 8.
func blockedChannels(_ channels: Int) -> Int { (channels + 7) / 8 * 8 }

extension FusedActivation {
    var clamp: BlockedClamp {
        switch self {
        case .none: .none
        case .relu: .relu
        case .relu6: .relu6
        case .hardSigmoid(let alpha, let beta): .hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: .hardSwish
        case .gelu(let tanhApproximation): tanhApproximation ? .geluTanh : .gelu
        }
    }
}

/// The build of the direct convolution a `BlockedConvKernel` runs.
enum DirectConvBuild: Sendable {
    /// `SIMDKernels.blockedConvolve`: 8-lane vectors, AVX2 and FMA (kernel set `avx2`).
    case avx2
    /// `SIMDKernels512.wideConvolve`: 16 output channels (two blocks) per zmm
    /// register (kernel set `avx512`).
    case avx512
    /// `SIMDKernelsWide16.wideConvolve`: the width-16 source built for AVX2, so
    /// tests run whole models through the `avx512` plan's algorithm on any AVX2 CPU.
    case wide16OnAVX2

    /// The build the plan of `kernels` uses (nil for `portable`, which plans no direct convs).
    init?(_ kernels: KernelSet) {
        switch kernels {
        case .avx512: self = .avx512
        case .avx2: self = .avx2
        case .portable: return nil
        }
    }

    /// Whether filters are packed in pairs of blocks (16 output lanes).
    var isWide: Bool { self != .avx2 }

    /// Output blocks `blocks` and pixels `pixels` of one image by this build's direct conv.
    func convolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                  bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                  clamp: BlockedClamp, blocks: Range<Int>, pixels: Range<Int>) {
        switch self {
        case .avx2:
            blockedConvolve(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                            clamp: clamp, blocks: blocks, pixels: pixels)
        case .avx512:
            SIMDKernels512.wideConvolve(s, input: input, filter: filter, bias: bias, residual: residual,
                                        output: output, clamp: clamp, blocks: blocks, pixels: pixels)
        case .wide16OnAVX2:
            SIMDKernelsWide16.wideConvolve(s, input: input, filter: filter, bias: bias, residual: residual,
                                           output: output, clamp: clamp, blocks: blocks, pixels: pixels)
        }
    }
}

/// A dense convolution as a direct NCHW8c kernel (`SIMDKernels.blockedConvolve`):
/// filters packed at plan time, each image copied into a zero-padded blocked
/// scratch image, then output tiles of 6 pixels x 16 channels accumulated in
/// registers with bias, an optional residual (a fused Add) and the activation
/// in the epilogue (1x1 stride-1 convs: tiles of 3 or 2 blocks over all input
/// channels). Reads a plain or blocked input, writes a blocked output. With
/// the `avx512` build, `SIMDKernels512.wideConvolve` over the same layout
/// (tiles of 7 or 8 pixels x 32 channels, 1x1 stride 1 without window offsets).
struct BlockedConvKernel: Kernel {
    let attributes: Conv2d
    let build: DirectConvBuild
    /// Packed by `packBlockedFilter`, with 16 output lanes for a wide build.
    let filter: [Float]
    /// `outputBlocks * 8` floats (wide builds: whole pairs of blocks), zero in padded channels,
    /// never -0.
    let bias: [Float]
    /// Whether the shape gives the padding rows as zero rows a kernel may skip (finite weights).
    let skipsZeroRows: Bool
    let inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int
    let inputBlocked: Bool
    let hasResidual: Bool
    let activation: FusedActivation
    /// Channels per block of the padded input: 8, or C for a plain input with fewer than 8 channels.
    let channelsPerBlock: Int

    /// Whether a conv with these attributes and weight shape runs as a blocked kernel on this CPU.
    static func supports(_ a: Conv2d, weightShape: [Int]) -> Bool {
        cpuSupportsBlockedKernels && weightShape.count == 4 && a.groups == 1 && a.dilation == .square(1)
    }

    init(attributes a: Conv2d, weight: Tensor, bias: Tensor?, activation: FusedActivation,
         inputBlocked: Bool, hasResidual: Bool, build: DirectConvBuild) {
        attributes = a
        self.build = build
        (outChannels, inChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        self.activation = activation
        self.inputBlocked = inputBlocked
        self.hasResidual = hasResidual
        channelsPerBlock = inputBlocked || inChannels >= 8 ? 8 : inChannels
        let (o, c, kh, kw, cs) = (outChannels, inChannels, kernelH, kernelW, channelsPerBlock)
        filter = weight.floats.withUnsafeBufferPointer {
            packBlockedFilter($0.baseAddress!, outChannels: o, inChannels: c, kernelHeight: kh, kernelWidth: kw,
                              channelsPerBlock: cs, outputLanes: build.isWide ? 16 : 8)
        }
        let biasCount = build.isWide ? SIMDKernelsWide16.wideBiasCount(outChannels: o) : blockedChannels(o)
        var padded = [Float](repeating: 0, count: biasCount)
        // -0 as +0: no accumulator is then ever -0, so the taps of zero padding rows add
        // nothing and the width-16 tiles may skip them (finite weights; see `zeroRowsTop`).
        if let bias { padded.replaceSubrange(0..<outChannels, with: bias.floats.map { $0 == 0 ? 0 : $0 }) }
        self.bias = padded
        skipsZeroRows = weight.floats.allSatisfy { $0.isFinite }
    }

    /// A blocked input without padding is read in place.
    private var readsInputInPlace: Bool { inputBlocked && attributes.padding.isZero }

    private func shape(h: Int, w: Int, oh: Int, ow: Int) -> BlockedConvShape {
        let p = attributes.padding
        let inputBlocks = (inChannels + channelsPerBlock - 1) / channelsPerBlock
        var s = BlockedConvShape(
            inputBlocks: inputBlocks, channelsPerBlock: channelsPerBlock,
            paddedHeight: h + p.top + p.bottom, paddedWidth: w + p.left + p.right,
            kernelHeight: kernelH, kernelWidth: kernelW, strideHeight: attributes.stride.h, strideWidth: attributes.stride.w,
            outputBlocks: blockedChannels(outChannels) / 8, outputHeight: oh, outputWidth: ow,
            lastBlockChannels: inChannels - (inputBlocks - 1) * channelsPerBlock,
            lastOutputChannels: outChannels - (blockedChannels(outChannels) / 8 - 1) * 8)
        if skipsZeroRows { (s.zeroRowsTop, s.zeroRowsBottom) = (p.top, p.bottom) }
        return s
    }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        readsInputInPlace ? 0
            : shape(h: inputShapes[0][2], w: inputShapes[0][3], oh: outputShape[2], ow: outputShape[3]).paddedInputCount
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { "dense-blocked" }

    /// Images go to workers when there are at least as many as workers; otherwise
    /// each image of at least `splitImageWork` multiply-adds is split (`ImageSplit`).
    func run(_ b: StepBinding, _ context: KernelContext) {
        let (n, c, h, w) = (b.inputShapes[0][0], b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let s = shape(h: h, w: w, oh: oh, ow: ow)
        let inImage = (inputBlocked ? blockedChannels(c) : c) * h * w
        let outImage = s.outputBlocks * 8 * oh * ow
        let imageWork = outChannels * c * kernelH * kernelW * oh * ow
        let residual = hasResidual ? UnsafePointer(b.inputs[1]) : nil
        filter.withUnsafeBufferPointer { fp in
            bias.withUnsafeBufferPointer { bp in
                let (f, bias) = (fp.baseAddress!, bp.baseAddress!)
                let image = { (i: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> in
                    self.padded(b.inputs[0] + i &* inImage, c: c, h: h, w: w, scratch)
                }
                if n >= context.threads {
                    context.forEachPart(n, workers: context.workers(forWork: n * imageWork)) { i, worker in
                        let x = image(i, context.scratch(forWorker: worker))
                        convolve(s, input: x, filter: f, bias: bias, residual: residual.map { $0 + i &* outImage },
                                 output: b.output + i &* outImage, blocks: 0..<s.outputBlocks, pixels: 0..<oh &* ow)
                    }
                    return
                }
                let workers = context.workers(forWork: imageWork, threshold: Self.splitImageWork)
                guard workers > 1 else {
                    for i in 0..<n {
                        convolve(s, input: image(i, context.scratch), filter: f, bias: bias,
                                 residual: residual.map { $0 + i &* outImage }, output: b.output + i &* outImage,
                                 blocks: 0..<s.outputBlocks, pixels: 0..<oh &* ow)
                    }
                    return
                }
                let split = ImageSplit(s, build: build, workers: workers)
                for i in 0..<n {
                    // A split by blocks reads the whole image: padded once, before the parts.
                    let whole = split.bands ? nil : image(i, context.scratch)
                    context.forEachPart(split.parts, workers: workers) { part, worker in
                        let (blocks, pixels) = split.ranges(part)
                        let x = whole ?? self.paddedRows(b.inputs[0] + i &* inImage, c: c, h: h, w: w, s, pixels: pixels,
                                                         context.scratch(forWorker: worker))
                        convolve(s, input: x, filter: f, bias: bias, residual: residual.map { $0 + i &* outImage },
                                 output: b.output + i &* outImage, blocks: blocks, pixels: pixels)
                    }
                }
            }
        }
    }

    /// How one image's conv is cut into parts for `workers` workers: with fewer
    /// than two pairs of output blocks per worker, into bands of output rows
    /// (whole tiles of the build: 6 pixels for AVX2, 7 or 8 for the width-16
    /// builds), one per worker, each padding only the input rows it reads on its
    /// own thread, so the padding is split too and a band of the next step reads
    /// mostly what this core wrote (resnet20 at batch 1 on 2 threads: 0.44 ->
    /// 0.37 ms); else into up to `partsPerWorker` ranges of pairs of blocks per
    /// worker over the whole image, padded once before the parts. A part keeps
    /// the tiles of the whole image, so the split changes no result.
    struct ImageSplit {
        let bands: Bool
        let parts: Int
        let pairs: Int, tile: Int, tiles: Int, blocks: Int, pixels: Int

        init(_ s: BlockedConvShape, build: DirectConvBuild, workers: Int) {
            (blocks, pixels) = (s.outputBlocks, s.outputHeight * s.outputWidth)
            pairs = (blocks + 1) / 2
            tile = build.isWide ? SIMDKernelsWide16.wideTilePixels(pixelCount: pixels) : 6
            tiles = (pixels + tile - 1) / tile
            bands = tiles >= workers && pairs < 2 * workers
            parts = bands ? workers : min(pairs, BlockedConvKernel.partsPerWorker * workers)
        }

        /// The output blocks and pixels of part `part`.
        func ranges(_ part: Int) -> (blocks: Range<Int>, pixels: Range<Int>) {
            if bands {
                let t = chunk(tiles, parts: parts, part)
                return (0..<blocks, tile * t.lowerBound..<min(tile * t.upperBound, pixels))
            }
            let p = chunk(pairs, parts: parts, part)
            return (2 * p.lowerBound..<min(2 * p.upperBound, blocks), 0..<pixels)
        }
    }

    /// The input rows the output pixels `pixels` read, as `blockedConvolve` reads
    /// them: in place, or those rows padded into `scratch` (laid out as the whole padded image).
    private func paddedRows(_ x: UnsafeMutablePointer<Float>, c: Int, h: Int, w: Int, _ s: BlockedConvShape,
                            pixels: Range<Int>, _ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        if readsInputInPlace { return UnsafePointer(x) }
        let (first, last) = (pixels.lowerBound / s.outputWidth, (pixels.upperBound - 1) / s.outputWidth)
        let p = attributes.padding
        padImage(x, blocked: inputBlocked, channels: c, h: h, w: w, top: p.top, left: p.left, bottom: p.bottom,
                 right: p.right, channelsPerBlock: channelsPerBlock,
                 rows: first * s.strideHeight..<last * s.strideHeight + s.kernelHeight, scratch)
        return UnsafePointer(scratch)
    }

    /// Output blocks `blocks` and pixels `pixels` of one image by this kernel's build.
    private func convolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                          output: UnsafeMutablePointer<Float>, blocks: Range<Int>, pixels: Range<Int>) {
        build.convolve(s, input: input, filter: filter, bias: bias, residual: residual, output: output,
                       clamp: activation.clamp, blocks: blocks, pixels: pixels)
    }

    /// Multiply-adds from which one image's conv is split over workers (about
    /// 25 us on one core). Measured with the worker pool at batch 1 on 2 cores
    /// (Zen 4, `bench --layers`): MobileNetV2's 1x1 and 3x3 convs of 0.04-0.4 ms
    /// ran in 0.50-0.56x the one-thread time. Steps of 5-15 us (mobilenet-small's
    /// pointwise convs, 0.4-0.7M multiply-adds) also ran in 0.6x on their own,
    /// but split inside a whole run they made it 6% slower (the next step reads
    /// the other core's half of the output), hence 1M.
    static let splitImageWork = 1_000_000
    /// Parts per worker of a split image: threads claim them one by one, so a
    /// thread that starts late (another process had its core) leaves its parts
    /// to the others; each part keeps whole tiles.
    static let partsPerWorker = 4

    /// The image as `blockedConvolve` reads it: in place, or copied into `scratch` with its padding.
    private func padded(_ x: UnsafeMutablePointer<Float>, c: Int, h: Int, w: Int,
                        _ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        if readsInputInPlace { return UnsafePointer(x) }
        let p = attributes.padding
        padImage(x, blocked: inputBlocked, channels: c, h: h, w: w, top: p.top, left: p.left, bottom: p.bottom,
                 right: p.right, channelsPerBlock: channelsPerBlock, scratch)
        return UnsafePointer(scratch)
    }
}

/// A depthwise convolution (one input channel per group, any depth multiplier)
/// as a direct NCHW8c kernel (`SIMDKernels.blockedDepthwiseConvolve`): a blocked
/// input of multiplier 1 is read in place (taps in the padding skipped); other
/// inputs are copied into a zero-padded scratch image laid out like the output's
/// channels; then rows of 8 channels x 4-8 pixels with bias and activation in the epilogue.
/// Reads a plain or blocked input, writes a blocked output, so a depthwise factor
/// between blocked convs needs no layout conversion.
struct BlockedDepthwiseConvKernel: Kernel {
    let attributes: Conv2d
    let filter: [Float]
    /// `outputBlocks * 8` floats, zero in padded channels.
    let bias: [Float]
    let inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int
    let multiplier: Int
    let inputBlocked: Bool
    let activation: FusedActivation

    /// Whether a conv with these attributes and weight shape runs as a blocked depthwise kernel on this CPU.
    static func supports(_ a: Conv2d, weightShape: [Int]) -> Bool {
        cpuSupportsBlockedKernels && a.depthwiseMultiplier(weightShape: weightShape) != nil && a.dilation == .square(1)
    }

    init(attributes a: Conv2d, weight: Tensor, bias: Tensor?, activation: FusedActivation, inputBlocked: Bool) {
        attributes = a
        (outChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[2], weight.shape[3])
        inChannels = a.groups
        multiplier = a.depthwiseMultiplier(weightShape: weight.shape)!
        self.activation = activation
        self.inputBlocked = inputBlocked
        let (o, kh, kw) = (outChannels, kernelH, kernelW)
        filter = weight.floats.withUnsafeBufferPointer {
            packBlockedDepthwiseFilter($0.baseAddress!, outChannels: o, kernelHeight: kh, kernelWidth: kw)
        }
        var padded = [Float](repeating: 0, count: blockedChannels(outChannels))
        if let bias { padded.replaceSubrange(0..<outChannels, with: bias.floats) }
        self.bias = padded
    }

    private func shape(h: Int, w: Int, oh: Int, ow: Int) -> BlockedConvShape {
        let p = attributes.padding, blocks = blockedChannels(outChannels) / 8
        return BlockedConvShape(
            inputBlocks: blocks, channelsPerBlock: 8, paddedHeight: h + p.top + p.bottom, paddedWidth: w + p.left + p.right,
            kernelHeight: kernelH, kernelWidth: kernelW, strideHeight: attributes.stride.h, strideWidth: attributes.stride.w,
            outputBlocks: blocks, outputHeight: oh, outputWidth: ow)
    }

    /// A blocked input of multiplier 1 is read in place, its padding skipped
    /// by the kernel; other inputs are copied into the padded scratch image.
    private var readsInputInPlace: Bool { inputBlocked && multiplier == 1 }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        readsInputInPlace ? 0
            : shape(h: inputShapes[0][2], w: inputShapes[0][3], oh: outputShape[2], ow: outputShape[3]).paddedInputCount
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { "dense-blocked-depthwise" }

    /// Images go to workers; below one image per worker, each image's output
    /// blocks are split (from `splitImageWork` multiply-adds).
    func run(_ b: StepBinding, _ context: KernelContext) {
        let (n, c, h, w) = (b.inputShapes[0][0], b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let s = shape(h: h, w: w, oh: oh, ow: ow)
        let inImage = (inputBlocked ? blockedChannels(c) : c) * h * w
        let outImage = s.outputBlocks * 8 * oh * ow
        let imageWork = outChannels * kernelH * kernelW * oh * ow
        filter.withUnsafeBufferPointer { fp in
            bias.withUnsafeBufferPointer { bp in
                let (f, bias) = (fp.baseAddress!, bp.baseAddress!)
                let p = attributes.padding
                // Image `i` as the kernel reads it: in place, or padded into `scratch`.
                let image = { (i: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> in
                    if self.readsInputInPlace { return UnsafePointer(b.inputs[0] + i &* inImage) }
                    padDepthwiseImage(b.inputs[0] + i &* inImage, blocked: self.inputBlocked, inChannels: c,
                                      multiplier: self.multiplier, h: h, w: w, top: p.top, left: p.left,
                                      bottom: p.bottom, right: p.right, scratch)
                    return UnsafePointer(scratch)
                }
                let (ih, iw, top, left) = readsInputInPlace ? (h, w, p.top, p.left) : (s.paddedHeight, s.paddedWidth, 0, 0)
                if n >= context.threads {
                    context.forEachPart(n, workers: context.workers(forWork: n * imageWork)) { i, worker in
                        let x = image(i, context.scratch(forWorker: worker))
                        blockedDepthwiseConvolve(s, input: x, height: ih, width: iw, top: top, left: left, filter: f,
                                                 bias: bias, output: b.output + i &* outImage,
                                                 clamp: activation.clamp, blocks: 0..<s.outputBlocks)
                    }
                    return
                }
                let workers = context.workers(forWork: imageWork, threshold: Self.splitImageWork)
                let parts = min(s.outputBlocks, BlockedConvKernel.partsPerWorker * workers)
                for i in 0..<n {
                    let x = image(i, context.scratch)
                    context.forEachPart(workers > 1 ? parts : 1, workers: workers) { part, _ in
                        blockedDepthwiseConvolve(s, input: x, height: ih, width: iw, top: top, left: left, filter: f,
                                                 bias: bias, output: b.output + i &* outImage, clamp: activation.clamp,
                                                 blocks: workers > 1 ? chunk(s.outputBlocks, parts: parts, part)
                                                     : 0..<s.outputBlocks)
                    }
                }
            }
        }
    }
}

extension BlockedDepthwiseConvKernel {
    /// Multiply-adds from which one image's depthwise conv is split over workers
    /// (about 10 us on one core; measured as `BlockedConvKernel.splitImageWork`:
    /// MobileNetV2's depthwise steps of 26-85 us ran in 0.51-0.60x the time).
    static let splitImageWork = 100_000
}

/// Converts a feature map between the plain and the blocked layout (at plan
/// boundaries, where an op without a blocked kernel reads a blocked value or the reverse).
struct ReorderKernel: Kernel {
    let toBlocked: Bool

    /// Blocks of 8 channels (of every image) go to workers: a block sits at the
    /// same offset, 8 planes in, in both layouts.
    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, c, plane) = (shape[0], shape[1], shape[2...].reduce(1, *))
        let blocks = blockedChannels(c) / 8
        let blockedImage = blocks * 8 * plane
        let workers = context.workers(forWork: n * blockedImage, threshold: elementwiseSplitCount)
        context.forEachPart(n * blocks, workers: workers) { unit, _ in
            let (i, block) = unit.quotientAndRemainder(dividingBy: blocks)
            let live = min(8, c &- block &* 8), start = block &* 8 &* plane
            if toBlocked {
                plainToBlocked(b.inputs[0] + i &* c &* plane + start, channels: live, plane: plane,
                               b.output + i &* blockedImage + start)
            } else {
                blockedToPlain(b.inputs[0] + i &* blockedImage + start, channels: live, plane: plane,
                               b.output + i &* c &* plane + start)
            }
        }
    }
}

/// Max or average pooling of a blocked feature map, written blocked.
struct BlockedPoolKernel: Kernel {
    let pool: Pool2d
    let reduction: PoolKernel.Reduction

    func run(_ b: StepBinding, _ context: KernelContext) {
        let (n, c, h, w) = (b.inputShapes[0][0], b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let planes = n * blockedChannels(c) / 8
        let (average, countIncludePad): (Bool, Bool)
        switch reduction {
        case .max: (average, countIncludePad) = (false, false)
        case .average(let include): (average, countIncludePad) = (true, include)
        }
        let p = pool
        let work = planes * 8 * oh * ow * p.kernel.h * p.kernel.w
        context.forEachPart(planes, workers: context.workers(forWork: work, threshold: elementwiseSplitCount)) { plane, _ in
            blockedPool(b.inputs[0] + plane &* h &* w &* 8, blocks: 1, h: h, w: w, b.output + plane &* oh &* ow &* 8,
                        oh: oh, ow: ow, kernel: (p.kernel.h, p.kernel.w), stride: (p.stride.h, p.stride.w),
                        padding: (p.padding.top, p.padding.left, p.padding.bottom, p.padding.right),
                        dilation: (p.dilation.h, p.dilation.w), average: average, countIncludePad: countIncludePad)
        }
    }
}

/// Global average pooling of a blocked feature map, written plain `[N, C, 1, 1]`.
struct BlockedGlobalAveragePoolKernel: Kernel {
    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, c, plane) = (shape[0], shape[1], shape[2...].reduce(1, *))
        for i in 0..<n {
            blockedGlobalAveragePool(b.inputs[0] + i &* blockedChannels(c) &* plane, channels: c, plane: plane,
                                     b.output + i &* c)
        }
    }
}

/// ReLU or ReLU6 on a blocked value.
struct BlockedActivationKernel: Kernel {
    let activation: FusedActivation

    func run(_ b: StepBinding, _ context: KernelContext) {
        let count = ValueLayout.blocked.storageCount(b.outputShape)
        let workers = context.workers(forWork: count, threshold: elementwiseSplitCount)
        context.forEachPart(workers, workers: workers) { part, _ in
            let range = vectorChunk(count, parts: workers, part)
            blockedClamp(b.inputs[0] + range.lowerBound, b.output + range.lowerBound, count: range.count,
                         clamp: activation.clamp)
        }
    }
}

/// Elementwise Add of two equally shaped blocked values (padded channels stay 0).
struct BlockedAddKernel: Kernel {
    func run(_ b: StepBinding, _ context: KernelContext) {
        let count = ValueLayout.blocked.storageCount(b.outputShape)
        let workers = context.workers(forWork: count, threshold: elementwiseSplitCount)
        context.forEachPart(workers, workers: workers) { part, _ in
            let r = vectorChunk(count, parts: workers, part)
            blockedAdd(b.inputs[0] + r.lowerBound, b.inputs[1] + r.lowerBound, b.output + r.lowerBound,
                       count: r.count, clamp: .none)
        }
    }
}

/// Floats (or comparisons) from which a memory-bound step (reorder, pool,
/// activation, Add) is split over workers: 128 KB read, several microseconds
/// on one core, a few times what a call of the pool costs its caller.
let elementwiseSplitCount = 32_768

/// Part `part` of `0..<count` cut into `parts` ranges that start on whole
/// 64-byte lines (16 floats), so workers share no cache line.
func vectorChunk(_ count: Int, parts: Int, _ part: Int) -> Range<Int> {
    let lines = (count + 15) / 16
    let r = chunk(lines, parts: parts, part)
    return min(16 * r.lowerBound, count)..<min(16 * r.upperBound, count)
}
