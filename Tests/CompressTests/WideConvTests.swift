import Testing
@testable import Compress
import SIMDKernels
import SIMDKernels512
import SIMDKernelsWide16

/// The width-16 direct and pointwise convolutions (`wideConvolve`, two NCHW8c
/// blocks per 16-lane vector) against the AVX2 kernel `blockedConvolve` and a
/// plain loop over the padded image, on seeded random inputs, within
/// `1e-4 * (1 + max|expected|)`. Every case runs through the AVX2 twin
/// (SIMDKernelsWide16, the same source compiled without AVX-512), and through
/// SIMDKernels512 where the CPU has AVX-512.
@Suite(.enabled(if: cpuSupportsBlockedKernels)) struct WideConvTests {
    /// One of the two builds of the width-16 source.
    struct Twin: Sendable {
        let name: String
        let convolve: @Sendable (BlockedConvShape, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                 UnsafePointer<Float>?, UnsafeMutablePointer<Float>, BlockedClamp, Range<Int>,
                                 Range<Int>) -> Void
    }

    static let wide16 = Twin(
        name: "SIMDKernelsWide16",
        convolve: { SIMDKernelsWide16.wideConvolve($0, input: $1, filter: $2, bias: $3, residual: $4, output: $5,
                                                   clamp: $6, blocks: $7, pixels: $8) })

    static let avx512 = Twin(
        name: "SIMDKernels512",
        convolve: { SIMDKernels512.wideConvolve($0, input: $1, filter: $2, bias: $3, residual: $4, output: $5,
                                                clamp: $6, blocks: $7, pixels: $8) })

    /// A conv on an already padded image.
    struct Case: CustomStringConvertible, Sendable {
        var inChannels: Int, outChannels: Int
        var paddedHeight: Int, paddedWidth: Int
        var kernel: (Int, Int)
        var stride: (Int, Int) = (1, 1)
        var description: String {
            "\(inChannels) -> \(outChannels), \(kernel.0)x\(kernel.1) stride \(stride.0)x\(stride.1) on \(paddedHeight)x\(paddedWidth)"
        }
        var channelsPerBlock: Int { inChannels < 8 ? inChannels : 8 }
        var outputHeight: Int { (paddedHeight - kernel.0) / stride.0 + 1 }
        var outputWidth: Int { (paddedWidth - kernel.1) / stride.1 + 1 }
        var shape: BlockedConvShape {
            let cs = channelsPerBlock, inBlocks = (inChannels + cs - 1) / cs, outBlocks = (outChannels + 7) / 8
            return BlockedConvShape(inputBlocks: inBlocks, channelsPerBlock: cs, paddedHeight: paddedHeight,
                                    paddedWidth: paddedWidth, kernelHeight: kernel.0, kernelWidth: kernel.1,
                                    strideHeight: stride.0, strideWidth: stride.1, outputBlocks: outBlocks,
                                    outputHeight: outputHeight, outputWidth: outputWidth,
                                    lastBlockChannels: inChannels - (inBlocks - 1) * cs,
                                    lastOutputChannels: outChannels - (outBlocks - 1) * 8)
        }
    }

    /// Every shape class: first layers of 1 and 3 channels, channel counts that are
    /// not a multiple of 8 (a partial last input block, an odd count of output
    /// blocks, a last block of at most 4 channels), a single output pair, strides 1
    /// and 2, kernels 1x1, 3x3, 5x5, 7x7 and non-square, maps smaller than a tile,
    /// maps whose pixel counts take tiles of 7 and of 8 pixels, and 1x1 stride-1 convs
    /// (pointwise tiles) with and without a whole tile of pixels.
    static let cases: [Case] = [
        Case(inChannels: 16, outChannels: 32, paddedHeight: 11, paddedWidth: 11, kernel: (3, 3)),
        Case(inChannels: 64, outChannels: 64, paddedHeight: 9, paddedWidth: 9, kernel: (3, 3)),
        Case(inChannels: 1, outChannels: 16, paddedHeight: 14, paddedWidth: 14, kernel: (3, 3)),
        Case(inChannels: 3, outChannels: 64, paddedHeight: 29, paddedWidth: 29, kernel: (7, 7), stride: (2, 2)),
        Case(inChannels: 3, outChannels: 5, paddedHeight: 9, paddedWidth: 9, kernel: (3, 3)),
        Case(inChannels: 12, outChannels: 20, paddedHeight: 11, paddedWidth: 12, kernel: (3, 3), stride: (2, 2)),
        Case(inChannels: 16, outChannels: 40, paddedHeight: 8, paddedWidth: 9, kernel: (3, 3)),
        Case(inChannels: 13, outChannels: 9, paddedHeight: 9, paddedWidth: 9, kernel: (3, 3)),
        Case(inChannels: 20, outChannels: 50, paddedHeight: 12, paddedWidth: 12, kernel: (5, 5)),
        Case(inChannels: 8, outChannels: 24, paddedHeight: 10, paddedWidth: 9, kernel: (3, 2), stride: (1, 2)),
        Case(inChannels: 20, outChannels: 37, paddedHeight: 11, paddedWidth: 8, kernel: (3, 1)),
        Case(inChannels: 37, outChannels: 20, paddedHeight: 8, paddedWidth: 11, kernel: (1, 3)),
        Case(inChannels: 32, outChannels: 64, paddedHeight: 3, paddedWidth: 3, kernel: (3, 3)),
        Case(inChannels: 24, outChannels: 48, paddedHeight: 10, paddedWidth: 10, kernel: (3, 3)),
        Case(inChannels: 16, outChannels: 32, paddedHeight: 14, paddedWidth: 14, kernel: (1, 1), stride: (2, 2)),
        Case(inChannels: 5, outChannels: 44, paddedHeight: 11, paddedWidth: 11, kernel: (3, 3), stride: (2, 2)),
        // 1x1 stride 1: pointwise tiles (at least 14 pixels), general tiles below that.
        Case(inChannels: 16, outChannels: 40, paddedHeight: 8, paddedWidth: 8, kernel: (1, 1)),
        Case(inChannels: 64, outChannels: 64, paddedHeight: 7, paddedWidth: 7, kernel: (1, 1)),
        Case(inChannels: 12, outChannels: 20, paddedHeight: 7, paddedWidth: 9, kernel: (1, 1)),
        Case(inChannels: 37, outChannels: 48, paddedHeight: 7, paddedWidth: 7, kernel: (1, 1)),
        Case(inChannels: 48, outChannels: 5, paddedHeight: 4, paddedWidth: 5, kernel: (1, 1)),
        Case(inChannels: 24, outChannels: 16, paddedHeight: 3, paddedWidth: 3, kernel: (1, 1)),
        Case(inChannels: 1, outChannels: 12, paddedHeight: 7, paddedWidth: 7, kernel: (1, 1)),
        // Fewer than 8 input channels on 7-pixel tiles: flat tiles for the pairs of pairs
        // (vgg-small's and resnet18's first layers; a lone pair and a lone block left over).
        Case(inChannels: 1, outChannels: 32, paddedHeight: 16, paddedWidth: 16, kernel: (3, 3)),
        Case(inChannels: 3, outChannels: 64, paddedHeight: 35, paddedWidth: 35, kernel: (7, 7), stride: (2, 2)),
        Case(inChannels: 2, outChannels: 44, paddedHeight: 11, paddedWidth: 11, kernel: (5, 5)),
    ]

    /// The epilogues: no activation, the clamps, and the forms applied after the store.
    static let clamps: [(String, BlockedClamp)] = [
        ("none", .none), ("relu", .relu), ("relu6", .relu6), ("hard sigmoid", .hardSigmoid(alpha: 0.2, beta: 0.5)),
        ("hard swish", .hardSwish), ("gelu", .gelu), ("gelu tanh", .geluTanh),
    ]

    /// Random inputs of one case, in both packings.
    struct Inputs {
        let input: [Float], weight: [Float], blockedFilter: [Float], bias: [Float], residual: [Float]

        init(input: [Float], weight: [Float], blockedFilter: [Float], bias: [Float], residual: [Float]) {
            (self.input, self.weight, self.blockedFilter, self.bias, self.residual) = (input, weight, blockedFilter, bias, residual)
        }

        init(_ c: Case, seed: UInt64) {
            var rng = SeededGenerator(seed: seed)
            let s = c.shape
            var input = (0..<s.paddedInputCount).map { _ in Float.random(in: -1...1, using: &rng) }
            // The padded channels of the last input block are zero.
            let cs = s.channelsPerBlock, plane = s.paddedHeight * s.paddedWidth
            for i in 0..<plane {
                for ci in s.lastBlockChannels..<cs { input[((s.inputBlocks - 1) * plane + i) * cs + ci] = 0 }
            }
            self.input = input
            let (kh, kw) = c.kernel
            weight = (0..<c.outChannels * c.inChannels * kh * kw).map { _ in Float.random(in: -0.5...0.5, using: &rng) }
            blockedFilter = weight.withUnsafeBufferPointer {
                packBlockedFilter($0.baseAddress!, outChannels: c.outChannels, inChannels: c.inChannels,
                                  kernelHeight: kh, kernelWidth: kw, channelsPerBlock: cs)
            }
            let padded = (c.outChannels + 15) / 16 * 16
            bias = (0..<padded).map { $0 < c.outChannels ? Float.random(in: -1...1, using: &rng) : 0 }
            residual = (0..<s.outputBlocks * 8 * c.outputHeight * c.outputWidth).map { _ in
                Float.random(in: -1...1, using: &rng)
            }
        }
    }

    /// The conv summed plainly over the padded image (channel `o` of pixel `q` at
    /// `[o / 8][q][o % 8]`), with bias and residual, before the activation.
    static func plainConv(_ c: Case, _ x: Inputs, residual: Bool) -> [Float] {
        let s = c.shape, cs = s.channelsPerBlock, (kh, kw) = c.kernel
        let (oh, ow) = (c.outputHeight, c.outputWidth)
        // Padded channels: zero weights and bias, plus the residual.
        var y = residual ? x.residual : [Float](repeating: 0, count: s.outputBlocks * 8 * oh * ow)
        for o in 0..<c.outChannels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = Double(x.bias[o])
                    for ch in 0..<c.inChannels {
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                let (iy, ix) = (oy * c.stride.0 + ky, ox * c.stride.1 + kx)
                                let xi = ((ch / cs * s.paddedHeight + iy) * s.paddedWidth + ix) * cs + ch % cs
                                sum += Double(x.input[xi]) * Double(x.weight[((o * c.inChannels + ch) * kh + ky) * kw + kx])
                            }
                        }
                    }
                    let at = (o / 8 * oh * ow + oy * ow + ox) * 8 + o % 8
                    y[at] = Float(sum) + y[at]
                }
            }
        }
        return y
    }

    /// Runs `twin` on blocks `blocks` and pixels `pixels` into an output filled
    /// with NaN.
    static func runWide(_ twin: Twin, _ c: Case, _ x: Inputs, residual: Bool, clamp: BlockedClamp,
                        blocks: Range<Int>, pixels: Range<Int>, shape: BlockedConvShape? = nil) -> [Float] {
        let s = shape ?? c.shape, (kh, kw) = c.kernel
        let filter = x.weight.withUnsafeBufferPointer {
            packBlockedFilter($0.baseAddress!, outChannels: c.outChannels, inChannels: c.inChannels, kernelHeight: kh,
                              kernelWidth: kw, channelsPerBlock: s.channelsPerBlock, outputLanes: 16)
        }
        var y = [Float](repeating: .nan, count: x.residual.count)
        x.input.withUnsafeBufferPointer { input in
            filter.withUnsafeBufferPointer { f in
                x.bias.withUnsafeBufferPointer { b in
                    x.residual.withUnsafeBufferPointer { r in
                        y.withUnsafeMutableBufferPointer {
                            twin.convolve(s, input.baseAddress!, f.baseAddress!, b.baseAddress!,
                                          residual ? r.baseAddress! : nil, $0.baseAddress!, clamp, blocks, pixels)
                        }
                    }
                }
            }
        }
        return y
    }

    /// The AVX2 kernel on the whole output.
    static func runBlocked(_ c: Case, _ x: Inputs, residual: Bool, clamp: BlockedClamp) -> [Float] {
        let s = c.shape
        var y = [Float](repeating: .nan, count: x.residual.count)
        x.input.withUnsafeBufferPointer { input in
            x.blockedFilter.withUnsafeBufferPointer { f in
                x.bias.withUnsafeBufferPointer { b in
                    x.residual.withUnsafeBufferPointer { r in
                        y.withUnsafeMutableBufferPointer {
                            blockedConvolve(s, input: input.baseAddress!, filter: f.baseAddress!, bias: b.baseAddress!,
                                            residual: residual ? r.baseAddress! : nil, output: $0.baseAddress!,
                                            clamp: clamp, blocks: 0..<s.outputBlocks,
                                            pixels: 0..<c.outputHeight * c.outputWidth)
                        }
                    }
                }
            }
        }
        return y
    }

    /// Largest difference between `a` and `b` relative to `1 + max|b|`, inf when a NaN differs.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        var worst: Float = 0, scale: Float = 1
        for (u, v) in zip(a, b) {
            if u.isNaN != v.isNaN { return .infinity }
            if !u.isNaN { worst = max(worst, abs(u - v)); scale = max(scale, 1 + abs(v)) }
        }
        return worst / scale
    }

    static let tolerance: Float = 1e-4

    /// Every case and epilogue, with and without a residual, on the whole output:
    /// equal to the AVX2 kernel, and (clamp forms) to the plain sum.
    static func checkWholeOutputs(_ twin: Twin) {
        for (i, c) in cases.enumerated() {
            let x = Inputs(c, seed: UInt64(100 + i))
            let s = c.shape, pixels = 0..<c.outputHeight * c.outputWidth
            for residual in [false, true] {
                let plain = plainConv(c, x, residual: residual)
                for (name, clamp) in clamps {
                    let wide = runWide(twin, c, x, residual: residual, clamp: clamp, blocks: 0..<s.outputBlocks,
                                       pixels: pixels)
                    let blocked = runBlocked(c, x, residual: residual, clamp: clamp)
                    let error = relativeError(wide, blocked)
                    #expect(error <= tolerance, "\(twin.name) \(c), \(name), residual \(residual): \(error) from blockedConvolve")
                    if clamp.form == .clamp {
                        let expected = plain.map { min(max($0, clamp.lower), clamp.upper) }
                        let plainError = relativeError(wide, expected)
                        #expect(plainError <= tolerance, "\(twin.name) \(c), \(name), residual \(residual): \(plainError) from the plain sum")
                    }
                }
            }
        }
    }

    /// Sub-ranges of blocks (odd and even starts and ends) and pixels: the blocks
    /// and pixels in range equal the whole run, every other float is left untouched.
    static func checkSubRanges(_ twin: Twin) {
        for (i, c) in cases.enumerated() {
            let x = Inputs(c, seed: UInt64(200 + i))
            let s = c.shape, plane = c.outputHeight * c.outputWidth
            let whole = runWide(twin, c, x, residual: true, clamp: .relu, blocks: 0..<s.outputBlocks, pixels: 0..<plane)
            var blockRanges = [0..<s.outputBlocks]
            if s.outputBlocks >= 2 { blockRanges += [1..<s.outputBlocks, 0..<s.outputBlocks - 1] }
            if s.outputBlocks >= 3 { blockRanges += [1..<2, 1..<3, 2..<s.outputBlocks] }
            var pixelRanges = [0..<plane, plane / 3..<plane, 0..<plane - plane / 4]
            if plane >= 5 { pixelRanges.append(2..<plane - 2) }
            for blocks in blockRanges {
                for pixels in pixelRanges where !pixels.isEmpty {
                    let part = runWide(twin, c, x, residual: true, clamp: .relu, blocks: blocks, pixels: pixels)
                    var expected = [Float](repeating: .nan, count: whole.count)
                    for b in blocks {
                        for q in pixels {
                            for l in 0..<8 { expected[(b * plane + q) * 8 + l] = whole[(b * plane + q) * 8 + l] }
                        }
                    }
                    // Same kernel, same sums: the values in range are bit-equal to the whole run's.
                    let equal = zip(part, expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
                    #expect(equal, "\(twin.name) \(c): blocks \(blocks), pixels \(pixels)")
                }
            }
        }
    }

    /// Images of fewer than 8 channels (the flat tiles) give the AVX2 kernel's bits: the
    /// same FMAs in the same order (bias, taps, channels).
    static func checkFirstLayerBits(_ twin: Twin) {
        for (i, c) in cases.enumerated() where c.inChannels < 8 {
            let x = Inputs(c, seed: UInt64(400 + i))
            let s = c.shape, pixels = 0..<c.outputHeight * c.outputWidth
            for residual in [false, true] {
                let wide = runWide(twin, c, x, residual: residual, clamp: .relu, blocks: 0..<s.outputBlocks, pixels: pixels)
                let blocked = runBlocked(c, x, residual: residual, clamp: .relu)
                #expect(zip(wide, blocked).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(twin.name) \(c), residual \(residual)")
            }
        }
    }

    /// Zero rows at the top and bottom of the padded image (`zeroRowsTop`, `zeroRowsBottom`):
    /// the tiles that skip their taps give the bits of the tiles that read them, on every
    /// case (strides 1 and 2, kernels up to 7x7, partial blocks, sub-ranges of pixels).
    static func checkZeroRowSkips(_ twin: Twin) {
        for (i, c) in cases.enumerated() where c.kernel.0 > 1 {
            var x = Inputs(c, seed: UInt64(500 + i))
            var s = c.shape
            let top = min(c.kernel.0 - 1, 2), bottom = min(c.kernel.0 - 1, 1)
            s.zeroRowsTop = top; s.zeroRowsBottom = bottom
            var input = x.input
            let rowFloats = s.paddedWidth * s.channelsPerBlock
            for b in 0..<s.inputBlocks {
                for row in Array(0..<top) + Array(s.paddedHeight - bottom..<s.paddedHeight) {
                    let start = (b * s.paddedHeight + row) * rowFloats
                    for k in start..<start + rowFloats { input[k] = 0 }
                }
            }
            x = Inputs(input: input, weight: x.weight, blockedFilter: x.blockedFilter, bias: x.bias, residual: x.residual)
            let plane = c.outputHeight * c.outputWidth
            for pixels in [0..<plane, plane / 3..<plane] where !pixels.isEmpty {
                let reads = runWide(twin, c, x, residual: true, clamp: .relu, blocks: 0..<s.outputBlocks, pixels: pixels)
                let skips = runWide(twin, c, x, residual: true, clamp: .relu, blocks: 0..<s.outputBlocks, pixels: pixels,
                                    shape: s)
                #expect(zip(skips, reads).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(twin.name) \(c), pixels \(pixels)")
            }
        }
    }

    @Test func wide16TwinSkipsZeroRowsBitExactly() { Self.checkZeroRowSkips(Self.wide16) }

    @Test(.enabled(if: cpuSupportsAVX512)) func avx512SkipsZeroRowsBitExactly() { Self.checkZeroRowSkips(Self.avx512) }

    @Test func wide16TwinFirstLayersEqualBlockedBits() { Self.checkFirstLayerBits(Self.wide16) }

    @Test(.enabled(if: cpuSupportsAVX512)) func avx512FirstLayersEqualBlockedBits() {
        Self.checkFirstLayerBits(Self.avx512)
    }

    @Test func wide16TwinMatchesBlockedKernel() { Self.checkWholeOutputs(Self.wide16) }

    @Test func wide16TwinComputesSubRanges() { Self.checkSubRanges(Self.wide16) }

    @Test(.enabled(if: cpuSupportsAVX512)) func avx512MatchesBlockedKernel() {
        Self.checkWholeOutputs(Self.avx512)
    }

    @Test(.enabled(if: cpuSupportsAVX512)) func avx512ComputesSubRanges() { Self.checkSubRanges(Self.avx512) }

    /// The two builds compute the same algorithm: equal outputs up to rounding
    /// (FMA in both, so in practice bit-equal).
    @Test(.enabled(if: cpuSupportsAVX512)) func twinsAgree() {
        for (i, c) in Self.cases.enumerated() {
            let x = Inputs(c, seed: UInt64(300 + i))
            let s = c.shape, pixels = 0..<c.outputHeight * c.outputWidth
            let a = Self.runWide(Self.avx512, c, x, residual: true, clamp: .relu6, blocks: 0..<s.outputBlocks, pixels: pixels)
            let b = Self.runWide(Self.wide16, c, x, residual: true, clamp: .relu6, blocks: 0..<s.outputBlocks, pixels: pixels)
            #expect(Self.relativeError(a, b) <= 1e-6, "\(c)")
        }
    }

    // MARK: Whole models

    /// Built-in models, and copies at widths whose channel counts are not multiples
    /// of 8 or 16 (odd output block counts, partial input blocks).
    static let models: [(String, Model)] = [
        ("vgg-small", Architecture.vggSmall.build(seed: 3, inputShape: [3, 32, 32])),
        ("resnet20", Architecture.resnet20.build(seed: 4, inputShape: [3, 32, 32])),
        ("mobilenet-small", Architecture.mobilenetSmall.build(seed: 5, inputShape: [3, 32, 32])),
        ("resnet20 width 0.7", Architecture.resnet20.build(seed: 6, inputShape: [3, 20, 20], width: 0.7)),
        ("vgg-small width 0.45", Architecture.vggSmall.build(seed: 7, inputShape: [1, 28, 28], width: 0.45)),
    ]

    /// `build`'s outputs against the `avx2` kernels' and the reference evaluator's,
    /// image by image and layer by layer, on 1 and 2 threads.
    static func checkModels(_ build: DirectConvBuild, kernels: KernelSet) throws {
        for (name, model) in models {
            let graph = model.graph
            var rng = SeededGenerator(seed: 11)
            var inputs: [String: Tensor] = [:]
            for input in graph.inputs { inputs[input.name] = rng.gaussianTensor([3] + input.sampleShape) }
            let reference = try ReferenceEvaluator.run(graph, inputs: inputs)
            let avx2 = try Session(model: model, threads: 1, kernels: .avx2).run(inputs: inputs)
            for (imageWise, threads) in [(true, 1), (false, 1), (true, 2)] {
                let session = try Session(model: model, threads: threads, kernels: kernels, imageWise: imageWise,
                                          convBuild: build)
                let wide = try session.run(inputs: inputs)
                for output in graph.outputs {
                    #expect(RuntimeFixtures.isClose(wide[output]!, reference[output]!),
                            "\(build) \(name) image-wise \(imageWise), \(threads) threads: from the reference")
                    #expect(RuntimeFixtures.isClose(wide[output]!, avx2[output]!),
                            "\(build) \(name) image-wise \(imageWise), \(threads) threads: from the avx2 kernels")
                }
            }
        }
    }

    @Test func wide16TwinRunsModels() throws { try Self.checkModels(.wide16OnAVX2, kernels: .avx2) }

    @Test(.enabled(if: cpuSupportsAVX512)) func avx512RunsModels() throws {
        try Self.checkModels(.avx512, kernels: .avx512)
    }

    /// The `avx512` kernel set plans the zmm build of the direct convs.
    @Test(.enabled(if: cpuSupportsAVX512)) func avx512PlansWideConvs() throws {
        let plan = try ExecutionPlan(graph: Self.models[1].1.graph, kernels: .avx512)
        let builds = plan.steps.compactMap { ($0.kernel as? BlockedConvKernel)?.build }
        #expect(!builds.isEmpty && builds.allSatisfy { $0 == .avx512 })
        let avx2 = try ExecutionPlan(graph: Self.models[1].1.graph, kernels: .avx2)
        #expect(avx2.steps.compactMap { ($0.kernel as? BlockedConvKernel)?.build }.allSatisfy { $0 == .avx2 })
    }
}
