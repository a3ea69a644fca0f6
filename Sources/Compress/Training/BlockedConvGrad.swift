import Foundation
import SIMDKernels
import SIMDKernelsWide16

/// A trainable dense 2-D convolution (groups 1, dilation 1) on the runtime's
/// direct NCHW8c kernels. Its input and output are each plain NCHW or NCHW8c
/// (`blockedInput`, `blockedOutput`, chosen by the plan): a blocked output is
/// written and its gradient read in place, a blocked input padded from blocks,
/// and the data gradient written straight into a blocked `dX` when this kernel
/// writes it first (`assignsInputGradient`). Per image, over workers:
///
/// - forward: the image padded into a blocked scratch image (`padImage`), the
///   inference conv of the plan's build (`blockedConvolve`, or `wideConvolve`
///   of `SIMDKernels512` / `SIMDKernelsWide16`) with the bias in its epilogue,
///   and the blocked result copied out plain. The filter is packed at every
///   call (into a buffer kept by the kernel), since the optimizer changes the
///   weights between steps.
/// - weight gradient: `dY` reordered to NCHW8c, then
///   `blockedConvWeightGradient` over the padded image into a per-worker
///   packed accumulator; the partials are unpacked and added into
///   `weight.gradient` in worker order (images are fixed shares of workers),
///   so the same inputs and thread count give the same bytes.
/// - data gradient, stride 1 with every padding at most the kernel size - 1
///   and a map that shrinks by at most `directInputGradientExtent`:
///   the same direct conv of `dY` padded by `k - 1 - p` on each side with the
///   filter flipped 180 degrees and its input and output channels swapped
///   (`dX = conv(pad(dY), flip(Wᵀ))`), added into the plain `dX`. Other
///   strides and paddings take the im2col data gradient of
///   ``ConvTrainingKernel``.
/// - bias gradient: the sum of each `dY` plane, as ``ConvTrainingKernel``.
/// - Winograd: the forward of a 3x3 stride-1 conv with at least 8 input
///   channels, and its direct data gradient when the forward has at least 8
///   output channels, run `winogradConvolve` (F(2x2, 3x3), Lavin & Gray 2016:
///   2.25x fewer multiply-adds) on the same padded blocked images instead of the
///   direct conv, its filters transformed at every call like the direct ones.
///   The first conv of a model (1-3 input channels) keeps the direct conv.
///   Measured per image (Zen 4, 1 thread, against the avx512 direct conv) it was
///   faster on every 3x3 shape of vgg-small and resnet20: 1.6-1.8x on 28x28 and
///   14x14 maps with 16-64 channels, 1.3-1.4x on 7x7 maps (a 2x2 tile grid
///   covers 8x8 outputs there, 1.31x the real ones), 1.1x with 8 channels on
///   one side (the transforms weigh more beside short channel sums), so no
///   shape of these models keeps the direct conv for speed. Filters of more
///   than `winogradFilterLimit` floats in the Winograd domain (16·O·C, 4 MiB:
///   more than 256 x 256 channels) do: each image streams the whole transformed
///   filter and its gradient accumulator, and 512 -> 512 channels on a 7x7 map
///   (resnet18's last stage) ran 0.88x (forward) and 0.56x (weight gradient)
///   the direct kernels, where 256 -> 256 ran 1.28x and 1.09x.
///   Convs with a Winograd forward also take the weight gradient by Winograd
///   (`winogradWeightGradient`: per-worker sums in the Winograd domain, mapped
///   back by `addWinogradWeightGradient` in worker order): 1.3-2.0x faster than
///   `blockedConvWeightGradient` on the same shapes (1.1x at 8 -> 16 channels).
///   `COMPRESSOR_WINOGRAD=0` in the environment turns it off (read once per process; for A/B timing).
///
/// Planned for every conv `BlockedConvKernel.supports` when the kernel set is
/// `avx2` or `avx512` (its `DirectConvBuild`); portable plans, grouped and
/// depthwise convs keep ``ConvTrainingKernel``.
final class BlockedConvTrainingKernel: TrainingKernel {
    let attributes: Conv2d
    let weight: ParameterBuffer
    let bias: ParameterBuffer?
    let build: DirectConvBuild
    let outChannels: Int, inChannels: Int, kernelH: Int, kernelW: Int
    /// Input channels per block of the padded image: 8, or C when C < 8 (as the inference kernel of a plain input).
    let inputChannelsPerBlock: Int
    /// Whether the data gradient runs as a direct conv (else by `im2colGradient`).
    let hasDirectInputGradient: Bool
    /// The im2col kernel over the same parameters, for the data gradients a direct conv does not serve.
    let im2colGradient: ConvTrainingKernel
    /// How many rows (and columns) a map may lose to the kernel (`k - 1 - padding`)
    /// for its data gradient to run as a direct conv. That conv computes every
    /// input pixel over all taps, padding included, so `(H·W) / (OH·OW)` times the
    /// forward's multiply-adds: lenet5's 5x5 unpadded conv2 (8x8 outputs of a
    /// 12x12 map, 2.25x) took 27% of its training step that way, where im2col
    /// does the forward's work; a same-padded conv loses nothing.
    static let directInputGradientExtent = 2
    /// The largest filter in the Winograd domain (`winogradFilterCount`, floats) planned as a Winograd conv.
    static let winogradFilterLimit = 1 << 20
    /// Whether Winograd convs may be planned: false when the environment sets `COMPRESSOR_WINOGRAD=0`.
    static let winogradEnabled = ProcessInfo.processInfo.environment["COMPRESSOR_WINOGRAD"] != "0"
    /// Whether the forward conv runs as `winogradConvolve`.
    let hasWinogradForward: Bool
    /// Whether the direct data gradient runs as `winogradConvolve`.
    let hasWinogradInputGradient: Bool

    /// Output lanes of a packed filter vector: 8, or 16 for the width-16 builds.
    private let lanes: Int
    /// The forward filter, packed again at every forward (the weights change between steps).
    private let forwardFilter: FloatBuffer
    /// The data-gradient filter (flipped, channels swapped), packed at every backward that needs it.
    private let inputGradientFilter: FloatBuffer
    /// The bias as the forward conv's epilogue reads it (whole blocks or block pairs, zero past `outChannels`).
    private let paddedBias: FloatBuffer
    /// Zeros for the data-gradient conv's epilogue.
    private let zeroBias: FloatBuffer
    /// Whether the input (and its gradient) is NCHW8c, set by the planner (`useLayouts`).
    fileprivate(set) var blockedInput = false
    /// Whether the output (and its gradient) is NCHW8c, set by the planner.
    fileprivate(set) var blockedOutput = false
    /// Plain copies for the im2col data gradient of a blocked output or input (whole batch, kept between steps).
    private var plainOutputGradient: FloatBuffer?, plainInputGradient: FloatBuffer?
    /// The forward filter in the Winograd domain (`packWinogradFilter`), packed at every forward.
    private let winogradForwardFilter: FloatBuffer
    /// The data-gradient filter in the Winograd domain, packed at every backward that needs it.
    private let winogradInputGradientFilter: FloatBuffer

    init(attributes: Conv2d, weight: ParameterBuffer, bias: ParameterBuffer?, build: DirectConvBuild) {
        self.attributes = attributes
        self.weight = weight
        self.bias = bias
        self.build = build
        (outChannels, inChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        inputChannelsPerBlock = inChannels >= 8 ? 8 : inChannels
        let p = attributes.padding
        hasDirectInputGradient = attributes.stride == .square(1) && p.top < kernelH && p.bottom < kernelH
            && p.left < kernelW && p.right < kernelW
            && kernelH - 1 - p.top - p.bottom <= Self.directInputGradientExtent
            && kernelW - 1 - p.left - p.right <= Self.directInputGradientExtent
        let winograd = Self.winogradEnabled && kernelH == 3 && kernelW == 3 && attributes.stride == .square(1)
            && winogradFilterCount(outputs: outChannels, inputs: inChannels) <= Self.winogradFilterLimit
        hasWinogradForward = winograd && inChannels >= 8
        hasWinogradInputGradient = winograd && hasDirectInputGradient && outChannels >= 8
        winogradForwardFilter = FloatBuffer(count: hasWinogradForward
                                                ? winogradFilterCount(outputs: outChannels, inputs: inChannels) : 0)
        winogradInputGradientFilter = FloatBuffer(count: hasWinogradInputGradient
                                                      ? winogradFilterCount(outputs: inChannels, inputs: outChannels) : 0)
        im2colGradient = ConvTrainingKernel(attributes: attributes, weight: weight, bias: bias, kernels: .portable)
        lanes = build.isWide ? 16 : 8
        let taps = kernelH * kernelW
        let inputBlocks = (inChannels + inputChannelsPerBlock - 1) / inputChannelsPerBlock
        forwardFilter = FloatBuffer(count: hasWinogradForward
                                    ? 0 : (outChannels + lanes - 1) / lanes * lanes * inputBlocks * inputChannelsPerBlock * taps)
        func biasCount(_ channels: Int) -> Int {
            build.isWide ? SIMDKernelsWide16.wideBiasCount(outChannels: channels) : blockedChannels(channels)
        }
        paddedBias = FloatBuffer(count: biasCount(outChannels))
        paddedBias.pointer.update(repeating: 0, count: paddedBias.count)
        zeroBias = FloatBuffer(count: biasCount(inChannels))
        zeroBias.pointer.update(repeating: 0, count: zeroBias.count)
        inputGradientFilter = FloatBuffer(count: hasDirectInputGradient && !hasWinogradInputGradient
                                              ? (inChannels + lanes - 1) / lanes * lanes * blockedChannels(outChannels) * taps : 0)
    }

    private func forwardShape(h: Int, w: Int, oh: Int, ow: Int) -> BlockedConvShape {
        let p = attributes.padding, cs = inputChannelsPerBlock
        let inputBlocks = (inChannels + cs - 1) / cs
        let outputBlocks = blockedChannels(outChannels) / 8
        return BlockedConvShape(
            inputBlocks: inputBlocks, channelsPerBlock: cs, paddedHeight: h + p.top + p.bottom,
            paddedWidth: w + p.left + p.right, kernelHeight: kernelH, kernelWidth: kernelW,
            strideHeight: attributes.stride.h, strideWidth: attributes.stride.w, outputBlocks: outputBlocks,
            outputHeight: oh, outputWidth: ow, lastBlockChannels: inChannels - (inputBlocks - 1) * cs,
            lastOutputChannels: outChannels - (outputBlocks - 1) * 8)
    }

    /// The data-gradient conv: `dY` (blocked, 8 channels per block) padded by `k - 1 - p`, output `dX` blocked.
    private func inputGradientShape(h: Int, w: Int, oh: Int, ow: Int) -> BlockedConvShape {
        let p = attributes.padding
        let inputBlocks = blockedChannels(outChannels) / 8, outputBlocks = blockedChannels(inChannels) / 8
        return BlockedConvShape(
            inputBlocks: inputBlocks, channelsPerBlock: 8,
            paddedHeight: oh + 2 * (kernelH - 1) - p.top - p.bottom, paddedWidth: ow + 2 * (kernelW - 1) - p.left - p.right,
            kernelHeight: kernelH, kernelWidth: kernelW, strideHeight: 1, strideWidth: 1, outputBlocks: outputBlocks,
            outputHeight: h, outputWidth: w, lastBlockChannels: outChannels - (inputBlocks - 1) * 8,
            lastOutputChannels: inChannels - (outputBlocks - 1) * 8)
    }

    /// Offsets (floats, 64-byte aligned) of one worker's scratch regions.
    private struct ScratchLayout {
        var blockedOutput: Int, paddedOutputGradient: Int, blockedInputGradient: Int
        var weightGradient: Int, biasGradient: Int, winograd: Int, total: Int
    }

    private func scratchLayout(h: Int, w: Int, oh: Int, ow: Int) -> ScratchLayout {
        func aligned(_ n: Int) -> Int { (n + 15) / 16 * 16 }
        let f = forwardShape(h: h, w: w, oh: oh, ow: ow)
        var next = aligned(f.paddedInputCount)
        let blockedOutput = next
        next += aligned(blockedChannels(outChannels) * oh * ow)
        var paddedOutputGradient = next, blockedInputGradient = next
        if hasDirectInputGradient {
            let d = inputGradientShape(h: h, w: w, oh: oh, ow: ow)
            next += aligned(d.paddedInputCount)
            blockedInputGradient = next
            next += aligned(blockedChannels(inChannels) * h * w)
        } else {
            paddedOutputGradient = next
        }
        let weightGradient = next
        next += aligned(hasWinogradForward ? winogradFilterCount(outputs: outChannels, inputs: inChannels)
                                           : f.outputBlocks * f.filterBlockCount)
        let biasGradient = next
        next += aligned(outChannels)
        let winograd = next
        if hasWinogradForward {
            next = max(next, winograd + aligned(max(winogradScratchCount(f), winogradWeightGradientScratchCount(f))))
        }
        if hasWinogradInputGradient {
            next = max(next, winograd + aligned(winogradScratchCount(inputGradientShape(h: h, w: w, oh: oh, ow: ow))))
        }
        return ScratchLayout(blockedOutput: blockedOutput, paddedOutputGradient: paddedOutputGradient,
                             blockedInputGradient: blockedInputGradient, weightGradient: weightGradient,
                             biasGradient: biasGradient, winograd: winograd, total: next)
    }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int {
        let s = inputShapes[0]
        let own = scratchLayout(h: s[2], w: s[3], oh: outputShape[2], ow: outputShape[3]).total
        return max(own, im2colGradient.scratchCount(inputShapes: inputShapes, outputShape: outputShape))
    }

    private func workers(_ b: TrainingBinding, _ context: KernelContext) -> Int {
        let n = b.inputShapes[0][0]
        let work = n * outChannels * inChannels * kernelH * kernelW * b.outputShape[2] * b.outputShape[3]
        return min(n, context.workers(forWork: work))
    }

    /// Packs `weight` into `filter` as `packBlockedFilter` does, for the forward
    /// conv (`transposed` false) or for the data-gradient conv (`transposed`:
    /// `W'[c][o][ky][kx] = W[o][c][kh-1-ky][kw-1-kx]`, input channels 8 per block).
    private func pack(into filter: FloatBuffer, transposed: Bool) {
        let (o, c, kh, kw) = (outChannels, inChannels, kernelH, kernelW)
        let (outputs, inputs) = transposed ? (c, o) : (o, c)
        let cs = transposed ? 8 : inputChannelsPerBlock
        let (outBlocks, inBlocks) = ((outputs + lanes - 1) / lanes, (inputs + cs - 1) / cs)
        let w = UnsafePointer(weight.values.baseAddress!)
        var dst = filter.pointer
        for ob in 0..<outBlocks {
            for cb in 0..<inBlocks {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        for ci in 0..<cs {
                            let input = cb &* cs &+ ci
                            for oi in 0..<lanes {
                                let output = ob &* lanes &+ oi
                                var value: Float = 0
                                if output < outputs && input < inputs {
                                    let index = transposed
                                        ? ((input &* c &+ output) &* kh &+ (kh &- 1 &- ky)) &* kw &+ (kw &- 1 &- kx)
                                        : ((output &* c &+ input) &* kh &+ ky) &* kw &+ kx
                                    value = w[index]
                                }
                                dst.pointee = value
                                dst += 1
                            }
                        }
                    }
                }
            }
        }
    }

    private func convolve(_ s: BlockedConvShape, input: UnsafePointer<Float>, filter: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        build.convolve(s, input: input, filter: filter, bias: bias, residual: nil, output: output, clamp: .none,
                       blocks: 0..<s.outputBlocks, pixels: 0..<s.outputHeight &* s.outputWidth)
    }

    /// Image `x` (plain or blocked, as the input value) copied into `scratch` as the forward conv reads it.
    private func padInput(_ x: UnsafePointer<Float>, h: Int, w: Int, _ scratch: UnsafeMutablePointer<Float>) {
        let p = attributes.padding
        padImage(x, blocked: blockedInput, channels: inChannels, h: h, w: w, top: p.top, left: p.left, bottom: p.bottom,
                 right: p.right, channelsPerBlock: inputChannelsPerBlock, scratch)
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let (n, h, w) = (b.inputShapes[0][0], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let s = forwardShape(h: h, w: w, oh: oh, ow: ow)
        let layout = scratchLayout(h: h, w: w, oh: oh, ow: ow)
        let (inImage, outImage) = (inChannels &* h &* w, outChannels &* oh &* ow)
        let winograd = hasWinogradForward
        if winograd {
            packWinogradFilter(weight.values.baseAddress!, outChannels: outChannels, inChannels: inChannels,
                               transposed: false, into: winogradForwardFilter.pointer)
        } else {
            pack(into: forwardFilter, transposed: false)
        }
        if let bias { paddedBias.pointer.update(from: bias.values.baseAddress!, count: outChannels) }
        let f = UnsafePointer(winograd ? winogradForwardFilter.pointer : forwardFilter.pointer)
        let bias = UnsafePointer(paddedBias.pointer)
        context.forEachIndex(n, workers: workers(b, context)) { i, worker in
            let scratch = context.scratch(forWorker: worker)
            padInput(b.inputs[0] + i &* inImage, h: h, w: w, scratch)
            let y = blockedOutput ? b.output + i &* outImage : scratch + layout.blockedOutput
            if winograd {
                winogradConvolve(s, input: scratch, filter: f, bias: bias, output: y, scratch: scratch + layout.winograd)
            } else {
                convolve(s, input: scratch, filter: f, bias: bias, output: y)
            }
            if !blockedOutput { blockedToPlain(y, channels: outChannels, plane: oh &* ow, b.output + i &* outImage) }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let (n, h, w) = (b.inputShapes[0][0], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let s = forwardShape(h: h, w: w, oh: oh, ow: ow)
        let d = inputGradientShape(h: h, w: w, oh: oh, ow: ow)
        let layout = scratchLayout(h: h, w: w, oh: oh, ow: ow)
        let (inImage, outImage, plane) = (inChannels &* h &* w, outChannels &* oh &* ow, oh &* ow)
        let dX = hasDirectInputGradient ? b.inputGradients[0] : nil
        let parameters = b.computesParameterGradients
        guard parameters || dX != nil else {
            if b.inputGradients[0] != nil { im2colInputGradient(b, context) }
            return
        }
        let workers = workers(b, context)
        if parameters {
            for worker in 0..<workers {
                (context.scratch(forWorker: worker) + layout.weightGradient)
                    .update(repeating: 0, count: layout.winograd - layout.weightGradient)
            }
        }
        let winograd = hasWinogradInputGradient
        if dX != nil {
            if winograd {
                packWinogradFilter(weight.values.baseAddress!, outChannels: outChannels, inChannels: inChannels,
                                   transposed: true, into: winogradInputGradientFilter.pointer)
            } else {
                pack(into: inputGradientFilter, transposed: true)
            }
        }
        let f = UnsafePointer(winograd ? winogradInputGradientFilter.pointer : inputGradientFilter.pointer)
        let zeroBias = UnsafePointer(zeroBias.pointer)
        let p = attributes.padding
        context.forEachIndex(n, workers: workers) { i, worker in
            let scratch = context.scratch(forWorker: worker)
            let dY = b.outputGradient + i &* outImage
            let blockedDY = blockedOutput ? dY : scratch + layout.blockedOutput
            if !blockedOutput { plainToBlocked(dY, channels: outChannels, plane: plane, blockedDY) }
            if parameters {
                padInput(b.inputs[0] + i &* inImage, h: h, w: w, scratch)
                if hasWinogradForward {
                    winogradWeightGradient(s, input: scratch, outputGradient: blockedDY,
                                           gradient: scratch + layout.weightGradient, scratch: scratch + layout.winograd)
                } else {
                    blockedConvWeightGradient(s, input: scratch, outputGradient: blockedDY,
                                              gradient: scratch + layout.weightGradient)
                }
                if bias != nil {
                    if blockedOutput {
                        addBlockedPlaneSums(dY, channels: outChannels, plane: plane, into: scratch + layout.biasGradient)
                    } else {
                        addPlaneSums(dY, channels: outChannels, plane: plane, into: scratch + layout.biasGradient)
                    }
                }
            }
            guard let dX else { return }
            let padded = scratch + layout.paddedOutputGradient
            padImage(blockedDY, blocked: true, channels: outChannels, h: oh, w: ow, top: kernelH - 1 - p.top,
                     left: kernelW - 1 - p.left, bottom: kernelH - 1 - p.bottom, right: kernelW - 1 - p.right,
                     channelsPerBlock: 8, padded)
            let assignsInPlace = b.assignsInputGradient && blockedInput
            let blockedDX = assignsInPlace ? dX + i &* inImage : scratch + layout.blockedInputGradient
            if winograd {
                winogradConvolve(d, input: padded, filter: f, bias: zeroBias, output: blockedDX,
                                 scratch: scratch + layout.winograd)
            } else {
                convolve(d, input: padded, filter: f, bias: zeroBias, output: blockedDX)
            }
            if assignsInPlace { return }
            if blockedInput {
                addVectors(dX + i &* inImage, blockedDX, dX + i &* inImage, count: inImage)
            } else if b.assignsInputGradient {
                blockedToPlain(blockedDX, channels: inChannels, plane: h &* w, dX + i &* inImage)
            } else {
                addBlockedToPlain(blockedDX, channels: inChannels, plane: h &* w, dX + i &* inImage)
            }
        }
        if parameters {
            for worker in 0..<workers {
                let partial = context.scratch(forWorker: worker) + layout.weightGradient
                if hasWinogradForward {
                    addWinogradWeightGradient(partial, outChannels: outChannels, inChannels: inChannels,
                                              into: weight.gradient.baseAddress!)
                } else {
                    addUnpacked(partial, s, into: weight.gradient.baseAddress!)
                }
                if let bias {
                    accumulate(context.scratch(forWorker: worker) + layout.biasGradient,
                               into: bias.gradient.baseAddress!, count: outChannels)
                }
            }
        }
        if dX == nil && b.inputGradients[0] != nil { im2colInputGradient(b, context) }
    }

    /// The data gradient by `im2colGradient` (plain NCHW), through plain copies
    /// of a blocked `dY` and `dX`.
    private func im2colInputGradient(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dX = b.inputGradients[0] else { return }
        var plain = b
        plain.computesParameterGradients = false
        func buffer(_ kept: inout FloatBuffer?, _ count: Int) -> UnsafeMutablePointer<Float> {
            if kept?.count != count { kept = FloatBuffer(count: count) }
            return kept!.pointer
        }
        if blockedOutput {
            let (n, plane) = (b.outputShape[0], b.outputShape[2] &* b.outputShape[3])
            let dY = buffer(&plainOutputGradient, b.outputShape.elementCount)
            for i in 0..<n {
                blockedToPlain(b.outputGradient + i &* outChannels &* plane, channels: outChannels, plane: plane,
                               dY + i &* outChannels &* plane)
            }
            plain.outputGradient = dY
        }
        if blockedInput {
            let plainDX = buffer(&plainInputGradient, b.inputShapes[0].elementCount)
            plainDX.update(repeating: 0, count: b.inputShapes[0].elementCount)
            plain.inputGradients[0] = plainDX
        }
        im2colGradient.backward(plain, context)
        if blockedInput { addPlainToBlocked(plain.inputGradients[0]!, shape: b.inputShapes[0], into: dX) }
    }

    /// A weight gradient packed as `blockedConvWeightGradient` writes it, added into the plain `[O, C, kh, kw]` gradient.
    private func addUnpacked(_ packed: UnsafePointer<Float>, _ s: BlockedConvShape, into g: UnsafeMutablePointer<Float>) {
        let cs = s.channelsPerBlock, taps = kernelH &* kernelW
        for o in 0..<outChannels {
            let (ob, oi) = o.quotientAndRemainder(dividingBy: 8)
            for c in 0..<inChannels {
                let (cb, ci) = c.quotientAndRemainder(dividingBy: cs)
                let offset: Int = ob &* s.filterBlockCount &+ (cb &* taps &* cs &+ ci) &* 8 &+ oi
                let source = packed + offset
                let target = g + (o &* inChannels &+ c) &* taps
                for t in 0..<taps { target[t] += source[t &* cs &* 8] }
            }
        }
    }
}

extension BlockedConvTrainingKernel: BlockedLayoutTrainingKernel {
    var layoutRule: TrainingLayoutRule { .independent }
    var canAssignInputGradient: Bool { hasDirectInputGradient }
    func useLayouts(inputs: [Bool], output: Bool) { (blockedInput, blockedOutput) = (inputs[0], output) }
}
