import Foundation
import Testing
@testable import Compress
import SIMDKernels

/// The NCHW8c direct convolution and the plan around it (layout choice,
/// conversions, fused residual Add + ReLU), each checked against the reference
/// evaluator on seeded random inputs within `1e-4 * (1 + max|expected|)`.
@Suite struct BlockedConvTests {
    typealias F = RuntimeFixtures

    static let convCases: [ConvCase] = [
        ConvCase(label: "3x3 pad 1, 16 -> 16", sample: [16, 9, 9], weight: [16, 16, 3, 3], attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "3x3 pad 1, 1 -> 16 (first layer)", sample: [1, 12, 12], weight: [16, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "3x3 pad 1, 3 -> 5", sample: [3, 7, 7], weight: [5, 3, 3, 3], attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "3x3 stride 2 pad 1, 12 -> 20", sample: [12, 9, 10], weight: [20, 12, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1))),
        ConvCase(label: "3x3 stride 2 pad 1, 16 -> 32", sample: [16, 14, 14], weight: [32, 16, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1))),
        ConvCase(label: "1x1 stride 2, 16 -> 32, no bias", sample: [16, 14, 14], weight: [32, 16, 1, 1],
                 attributes: Conv2d(stride: .square(2)), hasBias: false),
        ConvCase(label: "1x1, 9 -> 24", sample: [9, 5, 5], weight: [24, 9, 1, 1], attributes: Conv2d()),
        ConvCase(label: "5x5 no padding, 20 -> 50", sample: [20, 12, 12], weight: [50, 20, 5, 5], attributes: Conv2d()),
        ConvCase(label: "asymmetric padding, 3x2 kernel, stride (1, 2)", sample: [8, 7, 9], weight: [8, 8, 3, 2],
                 attributes: Conv2d(stride: Size2(1, 2), padding: Padding2(top: 1, left: 0, bottom: 2, right: 1))),
        ConvCase(label: "7x7 map, 64 -> 64 (6-pixel tiles leave a remainder)", sample: [64, 7, 7], weight: [64, 64, 3, 3],
                 attributes: Conv2d(padding: .same(1))),
        // Low-rank factor shapes: channel counts that leave a partial last block.
        ConvCase(label: "1x1, 12 -> 20", sample: [12, 7, 9], weight: [20, 12, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 37 -> 13", sample: [37, 6, 5], weight: [13, 37, 1, 1], attributes: Conv2d()),
        ConvCase(label: "3x1 pad (1, 0), 20 -> 37", sample: [20, 9, 8], weight: [37, 20, 3, 1],
                 attributes: Conv2d(padding: Padding2(top: 1, left: 0, bottom: 1, right: 0))),
        ConvCase(label: "1x3 pad (0, 1), 37 -> 20", sample: [37, 8, 9], weight: [20, 37, 1, 3],
                 attributes: Conv2d(padding: Padding2(top: 0, left: 1, bottom: 0, right: 1))),
        ConvCase(label: "3x3 pad 1, 13 -> 9", sample: [13, 7, 7], weight: [9, 13, 3, 3], attributes: Conv2d(padding: .same(1))),
        // Odd block counts (a triple of blocks first) and last blocks of at most 4
        // channels (packed half tiles: 1 or 2 full blocks and the half block as the tail).
        ConvCase(label: "3x1 pad (1, 0), 12 -> 12", sample: [12, 9, 7], weight: [12, 12, 3, 1],
                 attributes: Conv2d(padding: Padding2(top: 1, left: 0, bottom: 1, right: 0))),
        ConvCase(label: "1x3 pad (0, 1), 24 -> 28", sample: [24, 7, 8], weight: [28, 24, 1, 3],
                 attributes: Conv2d(padding: Padding2(top: 0, left: 1, bottom: 0, right: 1))),
        ConvCase(label: "3x1 pad (1, 0), 24 -> 24", sample: [24, 8, 7], weight: [24, 24, 3, 1],
                 attributes: Conv2d(padding: Padding2(top: 1, left: 0, bottom: 1, right: 0))),
        ConvCase(label: "3x3 pad 1, 16 -> 40", sample: [16, 6, 7], weight: [40, 16, 3, 3], attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "3x3 pad 1, 8 -> 36", sample: [8, 7, 6], weight: [36, 8, 3, 3], attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "3x3 stride 2 pad 1, 5 -> 44", sample: [5, 9, 9], weight: [44, 5, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1))),
        // 1x1 stride 1 runs the pointwise tiles (block triples and pairs); stride 2 the general tiles.
        ConvCase(label: "1x1, 1 -> 12", sample: [1, 7, 7], weight: [12, 1, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 5 -> 13", sample: [5, 6, 7], weight: [13, 5, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 12 -> 12", sample: [12, 7, 7], weight: [12, 12, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 13 -> 37", sample: [13, 5, 9], weight: [37, 13, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 20 -> 20", sample: [20, 9, 10], weight: [20, 20, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 37 -> 48", sample: [37, 7, 7], weight: [48, 37, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1, 48 -> 5", sample: [48, 4, 5], weight: [5, 48, 1, 1], attributes: Conv2d()),
        ConvCase(label: "1x1 pad 1, 12 -> 20", sample: [12, 5, 6], weight: [20, 12, 1, 1], attributes: Conv2d(padding: .same(1))),
        ConvCase(label: "1x1 stride 2, 20 -> 37", sample: [20, 9, 9], weight: [37, 20, 1, 1],
                 attributes: Conv2d(stride: .square(2))),
        ConvCase(label: "1x1 stride 2, 48 -> 13", sample: [48, 7, 7], weight: [13, 48, 1, 1],
                 attributes: Conv2d(stride: .square(2))),
    ]

    /// Session outputs (blocked kernels, `threads` workers, batches run image
    /// by image and layer by layer) against the reference.
    static func matchesReference(_ graph: Graph, batch: Int, threads: Int = 1, seed: UInt64 = 1) throws -> Bool {
        var rng = SeededGenerator(seed: seed)
        var inputs: [String: Tensor] = [:]
        for input in graph.inputs { inputs[input.name] = rng.gaussianTensor([batch] + input.sampleShape) }
        let reference = try ReferenceEvaluator.run(graph, inputs: inputs)
        for imageWise in [true, false] {
            let session = try Session(model: Model(graph: graph), threads: threads, kernels: .avx2, imageWise: imageWise)
            let fast = try session.run(inputs: inputs)
            guard graph.outputs.allSatisfy({ F.isClose(fast[$0]!, reference[$0]!) }) else { return false }
        }
        return true
    }

    /// The CPUID check agrees with the kernel's view of the CPU: Linux lists `avx2` and
    /// `fma` in /proc/cpuinfo only when the CPU has them and the OS saves the ymm state.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/cpuinfo"), "needs /proc/cpuinfo"))
    func cpuSupportsTheKernelsHere() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flagLines = cpuinfo.split(separator: "\n").filter { $0.hasPrefix("flags") }
        // x86 kernels print a "flags" line per logical CPU; other architectures say "Features".
        guard !flagLines.isEmpty else {
            #expect(!cpuSupportsBlockedKernels, "no x86 flags in /proc/cpuinfo, yet the kernels were enabled")
            return
        }
        for line in flagLines {
            let flags = Set(line.split(separator: ":", maxSplits: 1).last!.split(separator: " ").map(String.init))
            #expect(cpuSupportsBlockedKernels == (flags.contains("avx2") && flags.contains("fma")),
                    "cpuSupportsBlockedKernels is \(cpuSupportsBlockedKernels); /proc/cpuinfo avx2 \(flags.contains("avx2")), fma \(flags.contains("fma"))")
            let avx512 = flags.contains("avx512f") && flags.contains("avx512vl") && cpuSupportsBlockedKernels
            #expect(cpuSupportsAVX512 == avx512, "cpuSupportsAVX512 is \(cpuSupportsAVX512); /proc/cpuinfo says \(avx512)")
            #expect(KernelSet.best == (avx512 ? .avx512 : cpuSupportsBlockedKernels ? .avx2 : .portable))
        }
    }

    @Test(arguments: convCases, [FusedActivation.none, .relu, .relu6, .hardSwish, .gelu(tanhApproximation: false)])
    func convMatchesReference(_ c: ConvCase, _ activation: FusedActivation) throws {
        var parameters = [("w", F.weights(c.weight, seed: 7, std: 0.3))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[0]], seed: 8))) }
        var graph = F.singleOp(.conv2d(c.attributes), sample: c.sample, parameters: parameters)
        if activation != .none {
            graph.nodes[0].output = "c"
            graph.nodes.append(Node(name: "act", op: activation.op!, inputs: ["c"], output: "y"))
        }
        let plan = try ExecutionPlan(graph: graph)
        #expect(plan.steps.contains { $0.kernel is BlockedConvKernel } == cpuSupportsBlockedKernels)
        for (batch, threads) in [(1, 1), (3, 1), (1, 2), (3, 2)] {
            #expect(try Self.matchesReference(graph, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
        }
    }

    /// A conv split over 2 or 3 workers (every step split: bands of output rows,
    /// each padding its own input rows, or ranges of output block pairs) gives
    /// the bytes of one thread, from a plain input and from a blocked one (after
    /// a 1x1 conv), with each kernel set and at batches 1 and 2.
    @Test(arguments: convCases)
    func splitConvChangesNoBit(_ c: ConvCase) throws {
        let channels = c.sample[0]
        var parameters = [("w", F.weights(c.weight, seed: 7, std: 0.3))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[0]], seed: 8))) }
        let plainInput = F.singleOp(.conv2d(c.attributes), sample: c.sample, parameters: parameters)
        var blockedInput = plainInput
        blockedInput.nodes[0].inputs[0] = "a"
        blockedInput.nodes.insert(Node(name: "pre", op: .conv2d(Conv2d()), inputs: ["x", "pre.w"], output: "a"), at: 0)
        blockedInput.initializers["pre.w"] = F.weights([channels, channels, 1, 1], seed: 9, std: 0.3)
        for (graph, input) in [(plainInput, "plain"), (blockedInput, "blocked")] {
            for batch in [1, 2] {
                var rng = SeededGenerator(seed: 3)
                let x = rng.gaussianTensor([batch] + c.sample)
                for kernels in KernelSet.supported where kernels != .portable {
                    let outputs = try [1, 2, 3].map { threads in
                        try Session(model: Model(graph: graph), threads: threads, kernels: kernels, imageWise: false,
                                    splitsAllWork: true).run(x).floats.map(\.bitPattern)
                    }
                    let setting = "\(input) input, batch \(batch), kernels \(kernels)"
                    #expect(outputs[1] == outputs[0], "2 threads, \(setting)")
                    #expect(outputs[2] == outputs[0], "3 threads, \(setting)")
                }
            }
        }
    }

    /// `padImage` over bands of padded rows writes, band by band, the whole padded image.
    @Test(arguments: [(true, 16, 1), (true, 12, 2), (false, 3, 1), (false, 1, 2)])
    func paddingByRowsMatchesWholeImage(_ blocked: Bool, _ channels: Int, _ pad: Int) throws {
        let (h, w, cs) = (7, 9, blocked || channels >= 8 ? 8 : channels)
        let blocks = (channels + cs - 1) / cs
        let (top, left, bottom, right) = (pad, pad + 1, pad + 1, pad)
        let (hp, wp) = (h + top + bottom, w + left + right)
        var rng = SeededGenerator(seed: 4)
        let x = rng.gaussianTensor([blocked ? blocks * 8 : channels, h, w]).floats
        var whole = [Float](repeating: .nan, count: blocks * hp * wp * cs)
        padImage(x, blocked: blocked, channels: channels, h: h, w: w, top: top, left: left, bottom: bottom, right: right,
                 channelsPerBlock: cs, &whole)
        #expect(!whole.contains { $0.isNaN })
        for bands in [[0..<hp], [0..<1, 1..<5, 5..<hp], [0..<3, 3..<4, 4..<(hp - 1), (hp - 1)..<hp]] {
            var byRows = [Float](repeating: .nan, count: whole.count)
            for rows in bands {
                padImage(x, blocked: blocked, channels: channels, h: h, w: w, top: top, left: left, bottom: bottom,
                         right: right, channelsPerBlock: cs, rows: rows, &byRows)
            }
            #expect(byRows.map(\.bitPattern) == whole.map(\.bitPattern), "bands \(bands)")
        }
    }

    /// conv -> conv -> Add(identity) -> ReLU and a projection shortcut: both Adds
    /// and their ReLUs go into a conv's epilogue.
    static func residualGraph(channels: Int, stride: Int) -> Graph {
        let c = channels, s = stride
        var nodes = [
            Node(name: "stem", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "stem.w", "stem.b"], output: "h0"),
            Node(name: "stem.relu", op: .relu, inputs: ["h0"], output: "a0"),
            Node(name: "c1", op: .conv2d(Conv2d(stride: .square(s), padding: .same(1))), inputs: ["a0", "c1.w"], output: "h1"),
            Node(name: "r1", op: .relu6, inputs: ["h1"], output: "a1"),
            Node(name: "c2", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["a1", "c2.w", "c2.b"], output: "h2"),
        ]
        var initializers: [String: Tensor] = [
            "stem.w": F.weights([c, 3, 3, 3], seed: 1, std: 0.3), "stem.b": F.weights([c], seed: 2),
            "c1.w": F.weights([2 * c, c, 3, 3], seed: 3, std: 0.2),
            "c2.w": F.weights([2 * c, 2 * c, 3, 3], seed: 4, std: 0.2), "c2.b": F.weights([2 * c], seed: 5),
        ]
        nodes.append(Node(name: "proj", op: .conv2d(Conv2d(stride: .square(s))), inputs: ["a0", "proj.w"], output: "p"))
        initializers["proj.w"] = F.weights([2 * c, c, 1, 1], seed: 6, std: 0.3)
        nodes += [
            Node(name: "add1", op: .add, inputs: ["h2", "p"], output: "s1"),
            Node(name: "relu1", op: .relu, inputs: ["s1"], output: "a2"),
            Node(name: "c3", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["a2", "c3.w"], output: "h3"),
            Node(name: "add2", op: .add, inputs: ["a2", "h3"], output: "s2"),
            Node(name: "relu2", op: .relu, inputs: ["s2"], output: "a3"),
            Node(name: "pool", op: .maxPool(Pool2d(kernel: .square(2))), inputs: ["a3"], output: "m"),
            Node(name: "gap", op: .globalAvgPool, inputs: ["m"], output: "g"),
            Node(name: "flatten", op: .flatten(axis: 1), inputs: ["g"], output: "f"),
            Node(name: "fc", op: .linear, inputs: ["f", "fc.w", "fc.b"], output: "y"),
        ]
        initializers["c3.w"] = F.weights([2 * c, 2 * c, 3, 3], seed: 7, std: 0.2)
        initializers["fc.w"] = F.weights([10, 2 * c], seed: 8)
        initializers["fc.b"] = F.weights([10], seed: 9)
        return Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 12, 12])], outputs: ["y"], nodes: nodes,
                     initializers: initializers)
    }

    @Test(arguments: [(8, 1), (8, 2), (6, 2), (16, 1)])
    func residualAddAndReLUAreFused(_ channels: Int, _ stride: Int) throws {
        let graph = Self.residualGraph(channels: channels, stride: stride)
        let session = try Session(model: Model(graph: graph))
        if cpuSupportsBlockedKernels {
            #expect(session.fusedResidualAdds.sorted() == ["add1", "add2"])
            #expect(Set(session.fusedActivations).isSuperset(of: ["relu1", "relu2", "stem.relu", "r1"]))
        }
        for (batch, threads) in [(1, 1), (3, 1), (1, 2), (3, 2)] {
            #expect(try Self.matchesReference(graph, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
        }
    }

    /// `x -> 1x1 C->C -> a; 1x1 C->C (a) + a -> ReLU`: the Add and ReLU go into
    /// the second conv's epilogue, which runs the pointwise tiles.
    @Test(arguments: [12, 13, 20, 37, 48])
    func pointwiseResidualIsFused(_ channels: Int) throws {
        let c = channels
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [c, 7, 9])], outputs: ["y"],
            nodes: [
                Node(name: "pre", op: .conv2d(Conv2d()), inputs: ["x", "pre.w", "pre.b"], output: "a"),
                Node(name: "conv", op: .conv2d(Conv2d()), inputs: ["a", "conv.w", "conv.b"], output: "h"),
                Node(name: "add", op: .add, inputs: ["h", "a"], output: "s"),
                Node(name: "relu", op: .relu, inputs: ["s"], output: "y"),
            ],
            initializers: ["pre.w": F.weights([c, c, 1, 1], seed: 1, std: 0.3), "pre.b": F.weights([c], seed: 2),
                           "conv.w": F.weights([c, c, 1, 1], seed: 3, std: 0.3), "conv.b": F.weights([c], seed: 4)])
        if cpuSupportsBlockedKernels {
            let session = try Session(model: Model(graph: graph))
            #expect(session.fusedResidualAdds == ["add"])
            #expect(session.fusedActivations.contains("relu"))
        }
        for (batch, threads) in [(1, 1), (3, 1), (1, 2), (3, 2)] {
            #expect(try Self.matchesReference(graph, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
        }
    }

    static let depthwiseCases: [ConvCase] = [
        ConvCase(label: "depthwise 3x3 pad 1, 12 channels", sample: [12, 9, 10], weight: [12, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 12)),
        // 3x3 rows in tiles of 8 (stride 1) and 4 (stride 2) pixels, with tails.
        ConvCase(label: "depthwise 3x3 pad 1, 16 channels, 19 wide", sample: [16, 5, 19], weight: [16, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 16)),
        ConvCase(label: "depthwise 3x3 stride 2 pad 1, 24 channels, 21 wide", sample: [24, 7, 21], weight: [24, 1, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1), groups: 24)),
        // Multiplier 1 from a blocked input (the chained run) is read in place: taps
        // in the padding are skipped on every edge, asymmetric and wider than the kernel too.
        ConvCase(label: "depthwise 5x5 stride 2 pad 2, 16 channels, 13x11", sample: [16, 13, 11], weight: [16, 1, 5, 5],
                 attributes: Conv2d(stride: .square(2), padding: .same(2), groups: 16)),
        ConvCase(label: "depthwise 3x1 stride (2, 1), asymmetric padding, 9 channels", sample: [9, 8, 10],
                 weight: [9, 1, 3, 1],
                 attributes: Conv2d(stride: Size2(2, 1), padding: Padding2(top: 2, left: 0, bottom: 1, right: 3), groups: 9)),
        ConvCase(label: "depthwise 3x3 pad 3 on a 2x2 image, 8 channels", sample: [8, 2, 2], weight: [8, 1, 3, 3],
                 attributes: Conv2d(padding: .same(3), groups: 8)),
        ConvCase(label: "depthwise 3x3 stride 2, right and bottom padding only, 8 channels, 12 wide", sample: [8, 6, 12],
                 weight: [8, 1, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: Padding2(top: 0, left: 0, bottom: 1, right: 1), groups: 8)),
        // Rows of 7 output pixels run as one tile: edge pixels missing their outer tap
        // (stride 1 on 7 wide, stride 2 on 13 wide) or none (14 wide, a padded copy).
        ConvCase(label: "depthwise 3x3 pad 1, 16 channels, 7x7", sample: [16, 7, 7], weight: [16, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 16)),
        ConvCase(label: "depthwise 3x3 stride 2 pad 1, 24 channels, 14x14", sample: [24, 14, 14], weight: [24, 1, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1), groups: 24)),
        ConvCase(label: "depthwise 3x3 stride 2 pad 1, 16 channels, 13x13", sample: [16, 13, 13], weight: [16, 1, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1), groups: 16)),
        ConvCase(label: "depthwise multiplier 2, 3x3 pad 1, 7x7, 5 -> 10", sample: [5, 7, 7], weight: [10, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 5)),
        ConvCase(label: "depthwise multiplier 2, 3x3 pad 1, 5 -> 10", sample: [5, 7, 9], weight: [10, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 5)),
        ConvCase(label: "depthwise multiplier 3, 3x1, stride 2, asymmetric padding, 7 -> 21", sample: [7, 9, 8],
                 weight: [21, 1, 3, 1],
                 attributes: Conv2d(stride: .square(2), padding: Padding2(top: 2, left: 0, bottom: 0, right: 1), groups: 7)),
        ConvCase(label: "depthwise multiplier 5, 1x3 no padding, no bias, 3 -> 15", sample: [3, 6, 7], weight: [15, 1, 1, 3],
                 attributes: Conv2d(groups: 3), hasBias: false),
        // Multiplier 2 from a blocked input (the chained run) copies with lane shuffles.
        ConvCase(label: "depthwise multiplier 2, 3x3 pad 1, 13 -> 26", sample: [13, 6, 7], weight: [26, 1, 3, 3],
                 attributes: Conv2d(padding: .same(1), groups: 13)),
        ConvCase(label: "depthwise multiplier 2, 3x3 stride 2 pad 1, 20 -> 40", sample: [20, 9, 8], weight: [40, 1, 3, 3],
                 attributes: Conv2d(stride: .square(2), padding: .same(1), groups: 20)),
        ConvCase(label: "depthwise multiplier 2, 5x5 stride (1, 2), 16 -> 32", sample: [16, 11, 12], weight: [32, 1, 5, 5],
                 attributes: Conv2d(stride: Size2(1, 2), padding: .same(2), groups: 16)),
    ]

    /// Depthwise convs of any multiplier run the blocked depthwise kernel, from a
    /// plain input and (after a 1x1 conv) from a blocked one.
    @Test(arguments: depthwiseCases, [FusedActivation.none, .relu6, .gelu(tanhApproximation: true)])
    func depthwiseMatchesReference(_ c: ConvCase, _ activation: FusedActivation) throws {
        let channels = c.sample[0]
        var parameters = [("w", F.weights(c.weight, seed: 7, std: 0.3))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[0]], seed: 8))) }
        var graph = F.singleOp(.conv2d(c.attributes), sample: c.sample, parameters: parameters)
        if activation != .none {
            graph.nodes[0].output = "c"
            graph.nodes.append(Node(name: "act", op: activation.op!, inputs: ["c"], output: "y"))
        }
        let plan = try ExecutionPlan(graph: graph)
        #expect(plan.steps.contains { $0.kernel is BlockedDepthwiseConvKernel } == cpuSupportsBlockedKernels)
        var chained = graph
        chained.nodes[0].inputs[0] = "p"
        chained.nodes.insert(Node(name: "pre", op: .conv2d(Conv2d()), inputs: ["x", "pre.w"], output: "p"), at: 0)
        chained.initializers["pre.w"] = F.weights([channels, channels, 1, 1], seed: 9, std: 0.3)
        for g in [graph, chained] {
            for (batch, threads) in [(1, 1), (3, 1), (1, 2), (3, 2)] {
                #expect(try Self.matchesReference(g, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
            }
            // The portable path (plain depthwise loop) on the same inputs.
            var rng = SeededGenerator(seed: 3)
            let x = rng.gaussianTensor([2] + c.sample)
            let portable = try Session(model: Model(graph: g), threads: 1, kernels: .portable).run(inputs: ["x": x])["y"]!
            #expect(F.isClose(portable, try ReferenceEvaluator.run(g, inputs: ["x": x])["y"]!))
        }
    }

    /// A chain of convs `x -> c1 -> ... -> y` with ReLUs between, each `(name, weight shape, attributes)`.
    static func convChain(sample: [Int], _ convs: [(String, [Int], Conv2d)]) -> Graph {
        var nodes: [Node] = [], initializers: [String: Tensor] = [:]
        var value = "x"
        for (i, (name, shape, attributes)) in convs.enumerated() {
            let last = i == convs.count - 1
            nodes.append(Node(name: name, op: .conv2d(attributes), inputs: [value, name + ".w", name + ".b"],
                              output: last ? "y" : name + ".out"))
            initializers[name + ".w"] = F.weights(shape, seed: UInt64(2 * i + 1), std: 0.3)
            initializers[name + ".b"] = F.weights([shape[0]], seed: UInt64(2 * i + 2))
            if !last {
                nodes.append(Node(name: name + ".relu", op: .relu, inputs: [name + ".out"], output: name + ".a"))
                value = name + ".a"
            }
        }
        return Graph(inputs: [GraphInput(name: "x", sampleShape: sample)], outputs: ["y"], nodes: nodes,
                     initializers: initializers)
    }

    /// Factor chains of the low-rank methods, ranks not multiples of 8: Tucker-2
    /// (1x1, 3x3, 1x1), spatial (3x1, 1x3), channel (3x3, 1x1), CP (1x1,
    /// depthwise 3x1, depthwise 1x3, 1x1) and separable (depthwise 3x3 with
    /// multiplier 2, 1x1). Every factor stays blocked from one conv to the next.
    static let factorChains: [(String, [(String, [Int], Conv2d)])] = [
        ("tucker2", [("f1", [12, 16, 1, 1], Conv2d()), ("f2", [20, 12, 3, 3], Conv2d(padding: .same(1))),
                     ("f3", [16, 20, 1, 1], Conv2d())]),
        ("spatial", [("f1", [37, 16, 3, 1], Conv2d(padding: Padding2(top: 1, left: 0, bottom: 1, right: 0))),
                     ("f2", [16, 37, 1, 3], Conv2d(padding: Padding2(top: 0, left: 1, bottom: 0, right: 1)))]),
        ("channel", [("f1", [13, 16, 3, 3], Conv2d(padding: .same(1))), ("f2", [16, 13, 1, 1], Conv2d())]),
        ("cp", [("f1", [12, 16, 1, 1], Conv2d()),
                ("f2", [12, 1, 3, 1], Conv2d(padding: Padding2(top: 1, left: 0, bottom: 1, right: 0), groups: 12)),
                ("f3", [12, 1, 1, 3], Conv2d(padding: Padding2(top: 0, left: 1, bottom: 0, right: 1), groups: 12)),
                ("f4", [16, 12, 1, 1], Conv2d())]),
        ("separable", [("f1", [32, 1, 3, 3], Conv2d(padding: .same(1), groups: 16)), ("f2", [20, 32, 1, 1], Conv2d())]),
    ]

    @Test(arguments: factorChains.map(\.0)) func factorChainMatchesReference(_ method: String) throws {
        let graph = Self.convChain(sample: [16, 9, 10], Self.factorChains.first { $0.0 == method }!.1)
        if cpuSupportsBlockedKernels {
            let plan = try ExecutionPlan(graph: graph)
            let reorders = plan.steps.filter { $0.kernel is ReorderKernel }.map(\.node)
            #expect(reorders == ["y#nchw"], "layout conversions: \(reorders)")
        }
        for (batch, threads) in [(1, 1), (3, 1), (1, 2), (3, 2)] {
            #expect(try Self.matchesReference(graph, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
        }
    }

    /// Blocked values read by ops without a blocked kernel (flatten, sigmoid,
    /// concat, a graph output) get converted; pools with padding, an unfused Add
    /// of two blocked values and a standalone ReLU6 run blocked.
    @Test func layoutBoundaries() throws {
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [5, 10, 10])], outputs: ["y", "c", "z"],
            nodes: [
                Node(name: "a", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "a.w"], output: "c"),
                Node(name: "b", op: .conv2d(Conv2d(padding: .same(1))), inputs: ["x", "b.w"], output: "d"),
                Node(name: "sum", op: .add, inputs: ["c", "d"], output: "e"),
                Node(name: "r6", op: .relu6, inputs: ["e"], output: "e6"),
                Node(name: "avg", op: .avgPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1)),
                                               countIncludePad: true), inputs: ["e6"], output: "p"),
                Node(name: "max", op: .maxPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1))),
                     inputs: ["d"], output: "q"),
                Node(name: "cat", op: .concat(axis: 1), inputs: ["p", "q"], output: "z"),
                Node(name: "sig", op: .sigmoid, inputs: ["z"], output: "s"),
                Node(name: "flatten", op: .flatten(axis: 1), inputs: ["s"], output: "f"),
                Node(name: "fc", op: .linear, inputs: ["f", "fc.w"], output: "y"),
            ],
            initializers: ["a.w": F.weights([11, 5, 3, 3], seed: 1, std: 0.3), "b.w": F.weights([11, 5, 3, 3], seed: 2, std: 0.3),
                           "fc.w": F.weights([4, 22 * 25], seed: 3, std: 0.1)])
        for (batch, threads) in [(1, 1), (3, 2)] {
            #expect(try Self.matchesReference(graph, batch: batch, threads: threads), "batch \(batch), \(threads) threads")
        }
    }

    /// Softmax or Concat over the batch axis keeps a batch together; a
    /// classifier runs image by image.
    @Test func imageWiseOnlyWhenImagesDoNotInteract() throws {
        #expect(try ExecutionPlan(graph: Architecture.resnet20.build(seed: 1).graph).isImageWise)
        let mixing = F.singleOp(.softmax(axis: 0), sample: [4])
        #expect(try !ExecutionPlan(graph: mixing).isImageWise)
        #expect(try Self.matchesReference(mixing, batch: 3, threads: 2))
        let perImage = F.singleOp(.softmax(axis: -1), sample: [4])
        #expect(try ExecutionPlan(graph: perImage).isImageWise)
        #expect(try Self.matchesReference(perImage, batch: 3, threads: 2))
    }

    /// The built-in CNNs give the same logits with blocked kernels, without them, and in the reference.
    @Test(arguments: [Architecture.vggSmall, .resnet20, .lenet5, .mobilenetSmall])
    func architecturesMatchReference(_ arch: Architecture) throws {
        let model = arch.build(seed: 3)
        var rng = SeededGenerator(seed: 4)
        let x = rng.uniformTensor([2, 1, 28, 28])
        let reference = try ReferenceEvaluator.run(model: model, input: x)
        for threads in [1, 2] {
            #expect(F.isClose(try Session(model: model, threads: threads).run(x), reference, relative: 1e-3))
            #expect(F.isClose(try Session(model: model, threads: threads, kernels: .portable).run(x), reference,
                              relative: 1e-3))
        }
    }
}
