import Testing
@testable import Compress
import SIMDKernels

/// One shape of a 3x3 stride-1 conv for the Winograd kernel: channels, map, padding.
struct WinogradCase: Sendable, CustomTestStringConvertible {
    var inChannels: Int, outChannels: Int
    var height: Int, width: Int
    var padding: Int

    var testDescription: String { "\(inChannels) -> \(outChannels), \(height)x\(width) padding \(padding)" }
    var outH: Int { height + 2 * padding - 2 }
    var outW: Int { width + 2 * padding - 2 }
}

/// `winogradConvolve` (Winograd F(2x2, 3x3), `SIMDKernels/Winograd3x3.swift`)
/// against a plain conv summed in Double, for its forward filter and its
/// data-gradient filter (flipped, channels swapped), and its weight gradient
/// (`SIMDKernels/WinogradWeightGrad.swift`); the training conv with
/// Winograd on against the im2col kernel and over threads.
@Suite struct WinogradConvTests {
    typealias F = RuntimeFixtures

    static let cases: [WinogradCase] = [
        WinogradCase(inChannels: 8, outChannels: 8, height: 1, width: 1, padding: 1),
        WinogradCase(inChannels: 13, outChannels: 16, height: 2, width: 3, padding: 1),
        WinogradCase(inChannels: 16, outChannels: 13, height: 7, width: 7, padding: 1),
        WinogradCase(inChannels: 32, outChannels: 64, height: 14, width: 14, padding: 1),
        WinogradCase(inChannels: 64, outChannels: 32, height: 28, width: 28, padding: 1),
        WinogradCase(inChannels: 64, outChannels: 64, height: 7, width: 7, padding: 1),
        WinogradCase(inChannels: 16, outChannels: 8, height: 5, width: 9, padding: 1),
        WinogradCase(inChannels: 13, outChannels: 13, height: 5, width: 9, padding: 0),
        WinogradCase(inChannels: 8, outChannels: 24, height: 3, width: 3, padding: 0),
        WinogradCase(inChannels: 32, outChannels: 16, height: 28, width: 28, padding: 0),
        WinogradCase(inChannels: 16, outChannels: 40, height: 14, width: 14, padding: 1),
    ]

    /// The blocked conv shape of case `c` (8 channels per block).
    static func shape(_ c: WinogradCase) -> BlockedConvShape {
        let inputBlocks = (c.inChannels + 7) / 8, outputBlocks = (c.outChannels + 7) / 8
        return BlockedConvShape(
            inputBlocks: inputBlocks, channelsPerBlock: 8, paddedHeight: c.height + 2 * c.padding,
            paddedWidth: c.width + 2 * c.padding, kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
            outputBlocks: outputBlocks, outputHeight: c.outH, outputWidth: c.outW,
            lastBlockChannels: c.inChannels - (inputBlocks - 1) * 8,
            lastOutputChannels: c.outChannels - (outputBlocks - 1) * 8)
    }

    /// Runs `winogradConvolve` on image `x` (`[C][H][W]`) with the filter packed from
    /// `weight` (`[O][C][3][3]`, or `[C][O][3][3]` when `transposed`), NaN-filled
    /// scratch and output; returns the blocked output.
    static func winograd(_ c: WinogradCase, x: [Float], weight: [Float], bias: [Float], transposed: Bool) -> [Float] {
        let s = shape(c)
        var padded = [Float](repeating: .nan, count: s.paddedInputCount)
        padImage(x, blocked: false, channels: c.inChannels, h: c.height, w: c.width, top: c.padding, left: c.padding,
                 bottom: c.padding, right: c.padding, channelsPerBlock: 8, &padded)
        var filter = [Float](repeating: .nan, count: winogradFilterCount(outputs: c.outChannels, inputs: c.inChannels))
        let (o, ci) = transposed ? (c.inChannels, c.outChannels) : (c.outChannels, c.inChannels)
        packWinogradFilter(weight, outChannels: o, inChannels: ci, transposed: transposed, into: &filter)
        var paddedBias = [Float](repeating: 0, count: s.outputBlocks * 8)
        for i in 0..<c.outChannels { paddedBias[i] = bias[i] }
        var scratch = [Float](repeating: .nan, count: winogradScratchCount(s))
        var output = [Float](repeating: .nan, count: s.outputBlocks * 8 * c.outH * c.outW)
        winogradConvolve(s, input: padded, filter: filter, bias: paddedBias, output: &output, scratch: &scratch)
        return output
    }

    /// Checks blocked `output` against `bias + Σ x·g` in Double, `g(o, c, ky, kx)` the
    /// conv's weights: within `2e-6 · (Σ|x·g| + |bias|) + 1e-6` per value; padded output lanes 0.
    static func expectMatches(_ c: WinogradCase, output: [Float], x: [Float], bias: [Float],
                              _ g: (Int, Int, Int, Int) -> Float) {
        let (oh, ow) = (c.outH, c.outW)
        var worst = 0.0
        for o in 0..<(c.outChannels + 7) / 8 * 8 {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let got = Double(output[((o / 8 * oh + oy) * ow + ox) * 8 + o % 8])
                    guard o < c.outChannels else {
                        #expect(got == 0, "padded lane \(o) at (\(oy), \(ox)): \(got)")
                        continue
                    }
                    var sum = Double(bias[o]), magnitude = abs(Double(bias[o]))
                    for ch in 0..<c.inChannels {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let (iy, ix) = (oy + ky - c.padding, ox + kx - c.padding)
                                guard iy >= 0 && iy < c.height && ix >= 0 && ix < c.width else { continue }
                                let term = Double(x[(ch * c.height + iy) * c.width + ix]) * Double(g(o, ch, ky, kx))
                                sum += term
                                magnitude += abs(term)
                            }
                        }
                    }
                    let error = abs(got - sum)
                    worst = max(worst, error / (magnitude + 1e-30))
                    #expect(error <= 2e-6 * magnitude + 1e-6, "o \(o) (\(oy), \(ox)): got \(got), expected \(sum)")
                }
            }
        }
        #expect(worst.isFinite)
    }

    /// The forward filter: `winogradConvolve` equals the conv with bias.
    @Test(arguments: cases) func matchesReference(_ c: WinogradCase) {
        let x = F.weights([c.inChannels, c.height, c.width], seed: 1, std: 1).floats
        let w = F.weights([c.outChannels, c.inChannels, 3, 3], seed: 2).floats
        let bias = F.weights([c.outChannels], seed: 3).floats
        let output = Self.winograd(c, x: x, weight: w, bias: bias, transposed: false)
        Self.expectMatches(c, output: output, x: x, bias: bias) { o, ch, ky, kx in
            w[((o * c.inChannels + ch) * 3 + ky) * 3 + kx]
        }
    }

    /// The data-gradient filter: a `[C'][O'][3][3]` weight (here `c.outChannels`
    /// forward inputs, `c.inChannels` forward outputs) packed `transposed` convolves
    /// like the flipped, channel-swapped filter, in Double and as the direct conv.
    @Test(arguments: cases) func dataGradientFilterMatchesFlippedConv(_ c: WinogradCase) {
        let x = F.weights([c.inChannels, c.height, c.width], seed: 4, std: 1).floats
        // The forward weight: outputs c.inChannels, inputs c.outChannels.
        let w = F.weights([c.inChannels, c.outChannels, 3, 3], seed: 5).floats
        let zero = [Float](repeating: 0, count: c.outChannels)
        let output = Self.winograd(c, x: x, weight: w, bias: zero, transposed: true)
        func flipped(_ o: Int, _ ch: Int, _ ky: Int, _ kx: Int) -> Float {
            w[((ch * c.outChannels + o) * 3 + 2 - ky) * 3 + 2 - kx]
        }
        Self.expectMatches(c, output: output, x: x, bias: zero, flipped)

        var explicit = [Float](repeating: 0, count: c.outChannels * c.inChannels * 9)
        for o in 0..<c.outChannels {
            for ch in 0..<c.inChannels {
                for k in 0..<9 { explicit[(o * c.inChannels + ch) * 9 + k] = flipped(o, ch, k / 3, k % 3) }
            }
        }
        let s = Self.shape(c)
        var padded = [Float](repeating: .nan, count: s.paddedInputCount)
        padImage(x, blocked: false, channels: c.inChannels, h: c.height, w: c.width, top: c.padding, left: c.padding,
                 bottom: c.padding, right: c.padding, channelsPerBlock: 8, &padded)
        let filter = packBlockedFilter(explicit, outChannels: c.outChannels, inChannels: c.inChannels, kernelHeight: 3,
                                       kernelWidth: 3, channelsPerBlock: 8)
        let zeroBias = [Float](repeating: 0, count: s.outputBlocks * 8)
        var direct = [Float](repeating: .nan, count: output.count)
        blockedConvolve(s, input: padded, filter: filter, bias: zeroBias, residual: nil, output: &direct, clamp: .none,
                        blocks: 0..<s.outputBlocks, pixels: 0..<c.outH * c.outW)
        let scale = 1 + Double(direct.map(abs).max() ?? 0)
        let difference = zip(output, direct).map { abs(Double($0) - Double($1)) }.max() ?? 0
        #expect(difference / scale <= 1e-5)
    }

    /// The weight gradient: `winogradWeightGradient` summed into a zeroed Winograd-domain
    /// accumulator, then `addWinogradWeightGradient`, adds `Σ x·dY` to every real weight
    /// of a seeded plain gradient within `1e-5 · Σ|x·dY| + 1e-5 · |initial| + 1e-6` of a
    /// Double sum, leaving the accumulator's padded-channel rows as they were.
    @Test(arguments: cases) func weightGradientMatchesReference(_ c: WinogradCase) {
        let s = Self.shape(c)
        let x = F.weights([c.inChannels, c.height, c.width], seed: 6, std: 1).floats
        let dY = F.weights([c.outChannels, c.outH, c.outW], seed: 7, std: 1).floats
        var padded = [Float](repeating: .nan, count: s.paddedInputCount)
        padImage(x, blocked: false, channels: c.inChannels, h: c.height, w: c.width, top: c.padding, left: c.padding,
                 bottom: c.padding, right: c.padding, channelsPerBlock: 8, &padded)
        var blockedDY = [Float](repeating: .nan, count: s.outputBlocks * 8 * c.outH * c.outW)
        plainToBlocked(dY, channels: c.outChannels, plane: c.outH * c.outW, &blockedDY)
        let rows = s.inputBlocks * 8
        var packed = [Float](repeating: 0, count: winogradFilterCount(outputs: c.outChannels, inputs: c.inChannels))
        for (i, _) in packed.enumerated() where (i / 8) % rows >= c.inChannels { packed[i] = 7 }
        var scratch = [Float](repeating: .nan, count: winogradWeightGradientScratchCount(s))
        winogradWeightGradient(s, input: padded, outputGradient: blockedDY, gradient: &packed, scratch: &scratch)
        for (i, value) in packed.enumerated() where (i / 8) % rows >= c.inChannels {
            #expect(value == 7, "padded row \((i / 8) % rows) changed")
        }
        let initial = F.weights([c.outChannels, c.inChannels, 3, 3], seed: 8).floats
        var gradient = initial
        addWinogradWeightGradient(packed, outChannels: c.outChannels, inChannels: c.inChannels, into: &gradient)
        for o in 0..<c.outChannels {
            for ch in 0..<c.inChannels {
                for k in 0..<9 {
                    let (ky, kx) = (k / 3, k % 3)
                    var sum = 0.0, magnitude = 0.0
                    for oy in 0..<c.outH {
                        for ox in 0..<c.outW {
                            let (iy, ix) = (oy + ky - c.padding, ox + kx - c.padding)
                            guard iy >= 0 && iy < c.height && ix >= 0 && ix < c.width else { continue }
                            let term = Double(x[(ch * c.height + iy) * c.width + ix]) * Double(dY[(o * c.outH + oy) * c.outW + ox])
                            sum += term
                            magnitude += abs(term)
                        }
                    }
                    let index = (o * c.inChannels + ch) * 9 + k
                    let error = abs(Double(gradient[index]) - Double(initial[index]) - sum)
                    #expect(error <= 1e-5 * magnitude + 1e-5 * abs(Double(initial[index])) + 1e-6,
                            "o \(o) c \(ch) tap \(k): got \(Double(gradient[index]) - Double(initial[index])), expected \(sum)")
                }
            }
        }
    }

    /// Shapes the kernel serves and refuses.
    @Test func applies() {
        #expect(winogradApplies(Self.shape(WinogradCase(inChannels: 8, outChannels: 3, height: 5, width: 5, padding: 1))))
        var s = Self.shape(WinogradCase(inChannels: 16, outChannels: 16, height: 5, width: 5, padding: 1))
        s.strideHeight = 2
        #expect(!winogradApplies(s))
        s = Self.shape(WinogradCase(inChannels: 16, outChannels: 16, height: 5, width: 5, padding: 1))
        s.outputHeight = 4
        #expect(!winogradApplies(s))
        s = BlockedConvShape(inputBlocks: 1, channelsPerBlock: 3, paddedHeight: 7, paddedWidth: 7, kernelHeight: 3,
                             kernelWidth: 3, strideHeight: 1, strideWidth: 1, outputBlocks: 1, outputHeight: 5,
                             outputWidth: 5)
        #expect(!winogradApplies(s))
    }

    // MARK: the training conv

    /// Training conv cases that take Winograd for the forward and the weight gradient
    /// (3x3 stride 1, at least 8 input channels), most also for the data gradient.
    static let trainingCases: [TrainingConvCase] = [
        TrainingConvCase(inChannels: 13, outChannels: 16, kernel: .square(3), attributes: Conv2d(padding: .same(1)),
                         height: 7, width: 7),
        TrainingConvCase(inChannels: 16, outChannels: 13, kernel: .square(3), attributes: Conv2d(), height: 9, width: 6,
                         hasBias: false),
        TrainingConvCase(inChannels: 32, outChannels: 32, kernel: .square(3), attributes: Conv2d(padding: .same(1)),
                         height: 14, width: 14),
        TrainingConvCase(inChannels: 8, outChannels: 12, kernel: .square(3),
                         attributes: Conv2d(padding: Padding2(top: 1, left: 0, bottom: 2, right: 1)), height: 6, width: 7),
        // Padding 3: a Winograd forward and weight gradient, the im2col data gradient.
        TrainingConvCase(inChannels: 16, outChannels: 8, kernel: .square(3), attributes: Conv2d(padding: .same(3)),
                         height: 5, width: 5),
    ]

    /// Which convs plan Winograd: 3x3 stride 1 with at least 8 input channels for the
    /// forward, and a direct data gradient with at least 8 forward outputs for dX;
    /// none with more than 256 x 256 channels (`winogradFilterLimit`).
    @Test func winogradPath() {
        for (inChannels, outChannels, kernel, attributes, forward, dataGradient) in [
            (16, 16, 3, Conv2d(padding: .same(1)), true, true), (3, 16, 3, Conv2d(padding: .same(1)), false, true),
            (16, 3, 3, Conv2d(padding: .same(1)), true, false), (16, 16, 3, Conv2d(), true, true),
            (16, 16, 3, Conv2d(stride: .square(2), padding: .same(1)), false, false),
            (16, 16, 3, Conv2d(padding: .same(3)), true, false), (16, 16, 5, Conv2d(padding: .same(2)), false, false),
            (256, 256, 3, Conv2d(padding: .same(1)), true, true), (264, 256, 3, Conv2d(padding: .same(1)), false, false),
        ] {
            let c = TrainingConvCase(inChannels: inChannels, outChannels: outChannels, kernel: .square(kernel),
                                     attributes: attributes, height: 9, width: 9)
            let (w, b) = BlockedConvTrainingTests.parameters(c)
            let k = BlockedConvTrainingKernel(attributes: attributes, weight: w, bias: b, build: .avx2)
            #expect(k.hasWinogradForward == (forward && BlockedConvTrainingKernel.winogradEnabled), "\(c)")
            #expect(k.hasWinogradInputGradient == (dataGradient && BlockedConvTrainingKernel.winogradEnabled), "\(c)")
        }
    }

    /// Forward output and every gradient match the im2col kernel within `1e-4 · (1 + max|expected|)`,
    /// for every build; 1 and 2 threads give the same bytes; `avx2` and `avx512` give the same bytes.
    @Test(.enabled(if: cpuSupportsBlockedKernels), arguments: trainingCases) func trainingConvMatchesIm2col(_ c: TrainingConvCase) {
        typealias T = BlockedConvTrainingTests
        let x = F.weights([3, c.inChannels, c.height, c.width], seed: 11, std: 1)
        let dY = F.weights([3, c.outChannels, c.outH, c.outW], seed: 12, std: 1)
        let (w0, b0) = T.parameters(c)
        let reference = T.run(ConvTrainingKernel(attributes: c.attributes, weight: w0, bias: b0, kernels: .portable),
                              weight: w0, bias: b0, c, x: x, dY: dY, threads: 1)
        var first: T.Run?
        for build in T.builds {
            for threads in [1, 2] {
                let (w, b) = T.parameters(c)
                let kernel = BlockedConvTrainingKernel(attributes: c.attributes, weight: w, bias: b, build: build)
                #expect(kernel.hasWinogradForward == BlockedConvTrainingKernel.winogradEnabled)
                let got = T.run(kernel, weight: w, bias: b, c, x: x, dY: dY, threads: threads)
                #expect(T.error(got.output, reference.output) <= 1e-4, "\(build) \(threads) threads: output")
                #expect(T.error(got.inputGradient, reference.inputGradient) <= 1e-4, "\(build) \(threads) threads: dX")
                #expect(T.error(got.weightGradient, reference.weightGradient) <= 1e-4, "\(build) \(threads) threads: dW")
                #expect(T.error(got.biasGradient, reference.biasGradient) <= 1e-4, "\(build) \(threads) threads: dB")
                if let first {
                    #expect(got.output == first.output, "\(build) \(threads) threads: output bytes")
                    #expect(got.inputGradient == first.inputGradient, "\(build) \(threads) threads: dX bytes")
                } else {
                    first = got
                }
            }
        }
    }

    /// Central finite differences (`GradientCheck`) of 3x3 convs that plan Winograd
    /// forward and data gradients, on every kernel set this CPU runs.
    @Test(arguments: [([13, 7, 7], [16, 13, 3, 3], Conv2d(padding: .same(1))),
                      ([16, 6, 5], [8, 16, 3, 3], Conv2d())])
    func finiteDifferences(sample: [Int], weight: [Int], attributes: Conv2d) throws {
        let graph = F.singleOp(.conv2d(attributes), sample: sample,
                               parameters: [("w", F.weights(weight, seed: 3)), ("b", F.weights([weight[0]], seed: 4))])
        for kernels in KernelSet.supported {
            let result = try GradientCheck.run(graph, input: GradientCheck.gaussian([2] + sample, seed: 1), kernels: kernels)
            #expect(result.worst < TrainingGradientTests.tolerance, "\(kernels): \(result)")
        }
    }
}
