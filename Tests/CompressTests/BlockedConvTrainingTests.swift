import Testing
@testable import Compress
import SIMDKernels

/// One shape of a dense conv for the training tests: channels, kernel, stride, padding, map size.
struct TrainingConvCase: Sendable, CustomTestStringConvertible {
    var inChannels: Int, outChannels: Int
    var kernel: Size2
    var attributes: Conv2d
    var height: Int, width: Int
    var hasBias = true

    var testDescription: String {
        let a = attributes
        return "\(inChannels) -> \(outChannels), \(kernel.h)x\(kernel.w) stride (\(a.stride.h), \(a.stride.w)) padding "
            + "(\(a.padding.top), \(a.padding.left), \(a.padding.bottom), \(a.padding.right)), \(height)x\(width)"
    }

    var weightShape: [Int] { [outChannels, inChannels, kernel.h, kernel.w] }
    var outH: Int { (height + attributes.padding.top + attributes.padding.bottom - kernel.h) / attributes.stride.h + 1 }
    var outW: Int { (width + attributes.padding.left + attributes.padding.right - kernel.w) / attributes.stride.w + 1 }
}

/// The blocked training conv (``BlockedConvTrainingKernel``) and its weight-gradient
/// kernel (`blockedConvWeightGradient`): the kernel against a plain sum in Double,
/// the training conv's forward, data, weight and bias gradients against the im2col
/// ``ConvTrainingKernel``, finite differences on every kernel set this CPU runs,
/// and reproducibility over threads.
@Suite struct BlockedConvTrainingTests {
    typealias F = RuntimeFixtures

    static let cases: [TrainingConvCase] = [
        TrainingConvCase(inChannels: 1, outChannels: 8, kernel: .square(3), attributes: Conv2d(padding: .same(1)),
                         height: 7, width: 9),
        TrainingConvCase(inChannels: 3, outChannels: 13, kernel: .square(3),
                         attributes: Conv2d(stride: .square(2), padding: .same(1)), height: 11, width: 10),
        TrainingConvCase(inChannels: 8, outChannels: 32, kernel: .square(1), attributes: Conv2d(), height: 5, width: 7),
        TrainingConvCase(inChannels: 13, outChannels: 3, kernel: .square(5), attributes: Conv2d(padding: .same(2)),
                         height: 9, width: 8, hasBias: false),
        TrainingConvCase(inChannels: 32, outChannels: 24, kernel: .square(3), attributes: Conv2d(padding: .same(1)),
                         height: 12, width: 13),
        TrainingConvCase(inChannels: 13, outChannels: 40, kernel: .square(7),
                         attributes: Conv2d(stride: .square(2), padding: .same(3)), height: 17, width: 15),
        TrainingConvCase(inChannels: 32, outChannels: 16, kernel: .square(1), attributes: Conv2d(stride: .square(2)),
                         height: 9, width: 9),
        TrainingConvCase(inChannels: 6, outChannels: 9, kernel: Size2(3, 2),
                         attributes: Conv2d(stride: Size2(1, 2), padding: Padding2(top: 1, left: 0, bottom: 2, right: 1)),
                         height: 7, width: 9),
        TrainingConvCase(inChannels: 16, outChannels: 6, kernel: Size2(3, 2),
                         attributes: Conv2d(padding: Padding2(top: 2, left: 0, bottom: 1, right: 1)), height: 8, width: 7),
        TrainingConvCase(inChannels: 8, outChannels: 20, kernel: .square(1), attributes: Conv2d(padding: .same(1)),
                         height: 6, width: 5),
        TrainingConvCase(inChannels: 5, outChannels: 7, kernel: .square(3), attributes: Conv2d(), height: 40, width: 33),
        TrainingConvCase(inChannels: 20, outChannels: 50, kernel: .square(5), attributes: Conv2d(), height: 12, width: 12),
    ]

    // MARK: the weight-gradient kernel

    /// `blockedConvWeightGradient` adds `Σ x·dY` into every real (output, input
    /// channel, tap) of its packed accumulator, within `1e-5 · Σ|x·dY| + 1e-6`
    /// of a Double sum, and leaves the padded channels' entries as they were.
    @Test(arguments: cases) func weightGradientMatchesReference(_ c: TrainingConvCase) {
        let p = c.attributes.padding
        let (oh, ow) = (c.outH, c.outW)
        let cs = c.inChannels >= 8 ? 8 : c.inChannels
        let inputBlocks = (c.inChannels + cs - 1) / cs, outputBlocks = (c.outChannels + 7) / 8
        let s = BlockedConvShape(
            inputBlocks: inputBlocks, channelsPerBlock: cs, paddedHeight: c.height + p.top + p.bottom,
            paddedWidth: c.width + p.left + p.right, kernelHeight: c.kernel.h, kernelWidth: c.kernel.w,
            strideHeight: c.attributes.stride.h, strideWidth: c.attributes.stride.w, outputBlocks: outputBlocks,
            outputHeight: oh, outputWidth: ow, lastBlockChannels: c.inChannels - (inputBlocks - 1) * cs,
            lastOutputChannels: c.outChannels - (outputBlocks - 1) * 8)
        let x = F.weights([c.inChannels, c.height, c.width], seed: 1, std: 1).floats
        let dY = F.weights([c.outChannels, oh, ow], seed: 2, std: 1).floats
        let initial = F.weights([outputBlocks * s.filterBlockCount], seed: 3, std: 1).floats
        var padded = [Float](repeating: .nan, count: s.paddedInputCount)
        var blockedDY = [Float](repeating: .nan, count: outputBlocks * 8 * oh * ow)
        var packed = initial
        padImage(x, blocked: false, channels: c.inChannels, h: c.height, w: c.width, top: p.top, left: p.left,
                 bottom: p.bottom, right: p.right, channelsPerBlock: cs, &padded)
        plainToBlocked(dY, channels: c.outChannels, plane: oh * ow, &blockedDY)
        blockedConvWeightGradient(s, input: padded, outputGradient: blockedDY, gradient: &packed)

        let (kh, kw) = (c.kernel.h, c.kernel.w)
        var worst = 0.0
        for ob in 0..<outputBlocks {
            for cb in 0..<inputBlocks {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        for ci in 0..<cs {
                            for oi in 0..<8 {
                                let index = ob * s.filterBlockCount + (((cb * kh + ky) * kw + kx) * cs + ci) * 8 + oi
                                let (o, ch) = (ob * 8 + oi, cb * cs + ci)
                                guard o < c.outChannels && ch < c.inChannels else {
                                    #expect(packed[index] == initial[index], "padded channel o \(o) c \(ch) changed")
                                    continue
                                }
                                var sum = 0.0, magnitude = 0.0
                                for oy in 0..<oh {
                                    for ox in 0..<ow {
                                        let iy = oy * c.attributes.stride.h + ky - p.top
                                        let ix = ox * c.attributes.stride.w + kx - p.left
                                        guard iy >= 0 && iy < c.height && ix >= 0 && ix < c.width else { continue }
                                        let term = Double(x[(ch * c.height + iy) * c.width + ix]) * Double(dY[(o * oh + oy) * ow + ox])
                                        sum += term
                                        magnitude += abs(term)
                                    }
                                }
                                let error = abs(Double(packed[index]) - Double(initial[index]) - sum)
                                #expect(error <= 1e-5 * magnitude + 1e-5 * abs(Double(initial[index])) + 1e-6,
                                        "o \(o) c \(ch) tap (\(ky), \(kx)): got \(Double(packed[index]) - Double(initial[index])), expected \(sum)")
                                worst = max(worst, error)
                            }
                        }
                    }
                }
            }
        }
        #expect(worst.isFinite)
    }

    // MARK: the training conv against im2col

    /// The direct builds this CPU runs: the plan's two, and the width-16 source built for AVX2.
    static var builds: [DirectConvBuild] {
        var builds: [DirectConvBuild] = []
        if cpuSupportsBlockedKernels { builds += [.avx2, .wide16OnAVX2] }
        if cpuSupportsAVX512 { builds.append(.avx512) }
        return builds
    }

    /// One kernel's output, input gradient and parameter gradients after a forward and a backward.
    struct Run {
        var output: [Float], inputGradient: [Float], weightGradient: [Float], biasGradient: [Float]
    }

    /// Runs `kernel` on batch `x` with output gradient `dY`, the input, weight and bias
    /// gradients starting from `initial` values (both kernels add into them).
    static func run(_ kernel: any TrainingKernel, weight: ParameterBuffer, bias: ParameterBuffer?, _ c: TrainingConvCase,
                    x: Tensor, dY: Tensor, parameterGradients: Bool = true, threads: Int) -> Run {
        let n = x.shape[0]
        let outputShape = [n, c.outChannels, c.outH, c.outW]
        let inputCount = x.floats.count, outputCount = outputShape.elementCount
        let input = FloatBuffer(count: inputCount), output = FloatBuffer(count: outputCount)
        let inputGradient = FloatBuffer(count: inputCount), outputGradient = FloatBuffer(count: outputCount)
        input.pointer.update(from: x.floats, count: inputCount)
        outputGradient.pointer.update(from: dY.floats, count: outputCount)
        let initialDX = F.weights([inputCount], seed: 21).floats
        inputGradient.pointer.update(from: initialDX, count: inputCount)
        let binding = TrainingBinding(inputs: [input.pointer], inputShapes: [x.shape], inputGradients: [inputGradient.pointer],
                                      output: output.pointer, outputShape: outputShape,
                                      outputGradient: outputGradient.pointer,
                                      computesParameterGradients: parameterGradients)
        let perWorker = kernel.scratchCount(inputShapes: [x.shape], outputShape: outputShape)
        let scratch = FloatBuffer(count: max(perWorker * threads, 1))
        scratch.pointer.update(repeating: .nan, count: max(perWorker * threads, 1))
        let pool = WorkerPool(threads: threads, splitsAllWork: true)
        let context = KernelContext(scratch: scratch.pointer, scratchPerWorker: perWorker, pool: pool)
        kernel.forward(binding, training: true, context)
        kernel.backward(binding, context)
        return Run(output: Array(UnsafeBufferPointer(start: output.pointer, count: outputCount)),
                   inputGradient: Array(UnsafeBufferPointer(start: inputGradient.pointer, count: inputCount)),
                   weightGradient: Array(weight.gradient), biasGradient: bias.map { Array($0.gradient) } ?? [])
    }

    /// Weight and bias buffers of case `c`, their gradients starting from seeded values.
    static func parameters(_ c: TrainingConvCase) -> (ParameterBuffer, ParameterBuffer?) {
        let weight = ParameterBuffer(name: "w", role: .weight, tensor: F.weights(c.weightShape, seed: 5))
        _ = weight.gradient.initialize(from: F.weights(c.weightShape, seed: 6).floats)
        guard c.hasBias else { return (weight, nil) }
        let bias = ParameterBuffer(name: "b", role: .bias, tensor: F.weights([c.outChannels], seed: 7))
        _ = bias.gradient.initialize(from: F.weights([c.outChannels], seed: 8).floats)
        return (weight, bias)
    }

    /// The largest elementwise difference of `got` and `expected` over `1 + max|expected|`
    /// (infinity for different counts); the tests ask for at most 1e-4.
    static func error(_ got: [Float], _ expected: [Float]) -> Float {
        guard got.count == expected.count else { return .infinity }
        let scale = 1 + (expected.map(abs).max() ?? 0)
        return zip(got, expected).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }


    /// Forward output and the data, weight and bias gradients of the blocked
    /// training conv match the im2col kernel's on the same batch of 3, with 1
    /// and 2 threads, for every build this CPU runs; also a backward that
    /// computes the data gradient only.
    @Test(arguments: cases) func matchesIm2col(_ c: TrainingConvCase) {
        let x = F.weights([3, c.inChannels, c.height, c.width], seed: 11, std: 1)
        let dY = F.weights([3, c.outChannels, c.outH, c.outW], seed: 12, std: 1)
        let (w0, b0) = Self.parameters(c)
        let reference = Self.run(ConvTrainingKernel(attributes: c.attributes, weight: w0, bias: b0, kernels: .portable), weight: w0, bias: b0,
                                 c, x: x, dY: dY, threads: 1)
        let (w1, b1) = Self.parameters(c)
        let referenceDataOnly = Self.run(ConvTrainingKernel(attributes: c.attributes, weight: w1, bias: b1, kernels: .portable), weight: w1,
                                         bias: b1, c, x: x, dY: dY, parameterGradients: false, threads: 1)
        for build in Self.builds {
            for threads in [1, 2] {
                let (w, b) = Self.parameters(c)
                let kernel = BlockedConvTrainingKernel(attributes: c.attributes, weight: w, bias: b, build: build)
                let got = Self.run(kernel, weight: w, bias: b, c, x: x, dY: dY, threads: threads)
                #expect(Self.error(got.output, reference.output) <= 1e-4, "\(build) \(threads) threads: output")
                #expect(Self.error(got.inputGradient, reference.inputGradient) <= 1e-4, "\(build) \(threads) threads: dX")
                #expect(Self.error(got.weightGradient, reference.weightGradient) <= 1e-4, "\(build) \(threads) threads: dW")
                #expect(Self.error(got.biasGradient, reference.biasGradient) <= 1e-4, "\(build) \(threads) threads: dB")

                let (wd, bd) = Self.parameters(c)
                let dataKernel = BlockedConvTrainingKernel(attributes: c.attributes, weight: wd, bias: bd, build: build)
                let dataOnly = Self.run(dataKernel, weight: wd, bias: bd, c, x: x, dY: dY, parameterGradients: false,
                                        threads: threads)
                #expect(Self.error(dataOnly.inputGradient, referenceDataOnly.inputGradient) <= 1e-4, "\(build): dX only")
                #expect(dataOnly.weightGradient == referenceDataOnly.weightGradient, "\(build): dW untouched")
            }
        }
    }

    /// Stride 1 with paddings below the kernel size, on maps that shrink by at most
    /// 2 rows and columns, takes the direct data gradient; others the im2col one.
    @Test func dataGradientPath() throws {
        for (kernel, attributes, direct) in [(3, Conv2d(padding: .same(1)), true), (3, Conv2d(), true),
                                             (3, Conv2d(stride: .square(2), padding: .same(1)), false),
                                             (3, Conv2d(padding: .same(3)), false), (5, Conv2d(), false),
                                             (5, Conv2d(padding: .same(1)), true),
                                             (5, Conv2d(padding: Padding2(top: 2, left: 0, bottom: 2, right: 1)), false)] {
            let c = TrainingConvCase(inChannels: 4, outChannels: 8, kernel: .square(kernel), attributes: attributes,
                                     height: 9, width: 9)
            let (w, b) = Self.parameters(c)
            let kernel = BlockedConvTrainingKernel(attributes: attributes, weight: w, bias: b, build: .avx2)
            #expect(kernel.hasDirectInputGradient == direct, "\(c)")
        }
    }

    // MARK: through TrainingGraph

    /// Dense convs plan as blocked training kernels unless the set is portable.
    @Test(arguments: KernelSet.supported) func planChoosesBlockedConvs(_ kernels: KernelSet) throws {
        let trainer = try TrainingGraph(model: Model(graph: Self.twoConvs()), kernels: kernels)
        let blocked = trainer.plan.steps.filter { $0.kernel is BlockedConvTrainingKernel }.count
        #expect(blocked == (kernels == .portable ? 0 : 2))
    }

    /// conv 3x3 (5 -> 16) - ReLU - conv 3x3 (16 -> 12), on 3 x 14 x 14 images.
    static func twoConvs() -> Graph {
        Graph(inputs: [GraphInput(name: "x", sampleShape: [5, 14, 14])], outputs: ["y"],
              nodes: [Node(name: "c1", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "w1", "b1"], output: "h"),
                      Node(name: "r", op: .relu, inputs: ["h"], output: "a"),
                      Node(name: "c2", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["a", "w2", "b2"], output: "y")],
              initializers: ["w1": F.weights([16, 5, 3, 3], seed: 1), "b1": F.weights([16], seed: 2),
                             "w2": F.weights([12, 16, 3, 3], seed: 3), "b2": F.weights([12], seed: 4)])
    }

    /// Gradients after a forward and backward of batch 6 through `twoConvs` (input gradient last).
    static func gradients(threads: Int, kernels: KernelSet) throws -> [[Float]] {
        let trainer = try TrainingGraph(model: Model(graph: twoConvs()), threads: threads, computesInputGradient: true,
                                        kernels: kernels)
        let y = try trainer.forward(F.weights([6, 5, 14, 14], seed: 9, std: 1), training: true)
        try trainer.backward(F.weights(y.shape, seed: 10, std: 1))
        return trainer.parameterNames.map { Array(trainer.parameters[$0]!.gradient) } + [trainer.inputGradient!.floats]
    }

    /// The same thread count gives the same bytes twice; 1 and 2 threads agree within rounding.
    @Test(arguments: KernelSet.supported.filter { $0 != .portable }) func reproducibleOverThreads(_ kernels: KernelSet) throws {
        let one = try Self.gradients(threads: 1, kernels: kernels)
        #expect(try Self.gradients(threads: 1, kernels: kernels) == one)
        let two = try Self.gradients(threads: 2, kernels: kernels)
        #expect(try Self.gradients(threads: 2, kernels: kernels) == two)
        for (a, b) in zip(two, one) { #expect(Self.error(a, b) <= 1e-4) }
    }
}

extension BlockedConvTrainingTests {
    /// `avx512` and `avx2` run the same multiply-adds in the same order (the
    /// `KernelSet` promise), so their gradients are the same bytes; `portable`
    /// (im2col) agrees within rounding.
    @Test(.enabled(if: KernelSet.avx512.isSupported)) func kernelSetsAgree() throws {
        let avx2 = try Self.gradients(threads: 1, kernels: .avx2)
        #expect(try Self.gradients(threads: 1, kernels: .avx512) == avx2)
        for (a, b) in zip(try Self.gradients(threads: 1, kernels: .portable), avx2) { #expect(Self.error(a, b) <= 1e-4) }
    }
}
