import Foundation
import Testing
@testable import Compress

/// Values kept NCHW8c between training kernels (`TrainingPlan.chooseBlockedLayouts`)
/// and the blocked BatchNorm: the layouts the plan picks, whole training steps
/// against the portable reference and against the same kernel set with every
/// value plain, values and seeds by name, finite differences.
@Suite struct TrainingLayoutTests {
    typealias F = RuntimeFixtures

    /// The first kernel set with blocked kernels this CPU runs, or nil.
    static var blockedSet: KernelSet? { KernelSet.supported.first { $0 != .portable } }

    /// Whether the value node `node` writes is stored blocked.
    static func isBlocked(_ graph: TrainingGraph, node: String) -> Bool {
        let output = graph.graph.nodes.first { $0.name == node }!.output
        return graph.plan.blocked[graph.plan.ids[output]!]
    }

    @Test func vggSmallChainsAreBlocked() throws {
        guard let kernels = Self.blockedSet else { return }
        let graph = try TrainingGraph(model: Architecture.vggSmall.build(seed: 1), threads: 1, kernels: kernels)
        for k in 1...6 {
            for node in ["conv\(k)", "bn\(k)", "relu\(k)"] { #expect(Self.isBlocked(graph, node: node), "\(node)") }
        }
        for k in 1...3 { #expect(Self.isBlocked(graph, node: "pool\(k)"), "pool\(k)") }
        for node in ["gap", "fc"] { #expect(!Self.isBlocked(graph, node: node), "\(node)") }
        #expect(!graph.plan.blocked[graph.plan.inputID])
        let portable = try TrainingGraph(model: Architecture.vggSmall.build(seed: 1), threads: 1, kernels: .portable)
        #expect(!portable.plan.blocked.contains(true))
        let plain = try TrainingGraph(model: Architecture.vggSmall.build(seed: 1), seed: 0, threads: 1,
                                      computesInputGradient: false, kernels: kernels, splitsAllWork: false,
                                      blockedLayouts: false)
        #expect(!plain.plan.blocked.contains(true))
    }

    /// Every conv, BN, ReLU and residual add of resnet20 (16, 32, 64 channels), strided convs and shortcuts included.
    @Test func resnet20ResidualBlocksAreBlocked() throws {
        guard let kernels = Self.blockedSet else { return }
        let model = Architecture.resnet20.build(seed: 1)
        let graph = try TrainingGraph(model: model, threads: 1, kernels: kernels)
        for node in model.graph.nodes {
            switch node.op {
            case .conv2d, .batchNorm, .relu, .add: #expect(Self.isBlocked(graph, node: node.name), "\(node.name)")
            default: #expect(!Self.isBlocked(graph, node: node.name), "\(node.name)")
            }
        }
    }

    /// Depthwise convs read and write plain planes: the maps around them are plain;
    /// only the last block's pointwise conv, BN and ReLU6 (read by global pooling) are blocked.
    @Test func mobilenetSmallDepthwiseBoundariesArePlain() throws {
        guard let kernels = Self.blockedSet else { return }
        let graph = try TrainingGraph(model: Architecture.mobilenetSmall.build(seed: 1), threads: 1, kernels: kernels)
        for node in ["conv1", "bn1", "relu1"] { #expect(!Self.isBlocked(graph, node: node), "\(node)") }
        for k in 1...4 {
            for node in ["dw", "bn1", "relu1"] { #expect(!Self.isBlocked(graph, node: "block\(k).\(node)"), "block\(k).\(node)") }
            for node in ["pw", "bn2", "relu2"] {
                #expect(Self.isBlocked(graph, node: "block\(k).\(node)") == (k == 4), "block\(k).\(node)")
            }
        }
    }

    /// One training step (forward, loss, backward, SGD with momentum) of `graph` on `x`:
    /// the loss, the gradients, the updated parameters and running statistics, and the next logits.
    static func step(_ graph: TrainingGraph, _ x: Tensor, labels: [Int32]) throws
        -> (loss: Float, gradients: [String: Tensor], parameters: [String: Tensor], logits: Tensor) {
        let logits = try graph.forward(x, training: true)
        let (loss, gradient) = Loss.softmaxCrossEntropy(logits: logits, labels: labels)
        try graph.backward(gradient)
        let gradients = graph.gradients
        SGD(momentum: 0.9).step(graph, learningRate: 0.05)
        var parameters = graph.parameters.mapValues(\.tensor)
        for (name, s) in graph.statistics { parameters[name] = s.tensor }
        return (loss, gradients, parameters, try graph.forward(x, training: true))
    }

    /// A whole training step with blocked layouts against the portable reference
    /// (relative 1e-3, as `kernelSetsAgreeWithPortable`) and against the same
    /// kernel set with every value plain (the same convs: relative 1e-4 on logits and parameters).
    @Test(arguments: [Architecture.lenet5, .vggSmall, .resnet20, .mobilenetSmall])
    func trainingStepMatchesPortable(_ architecture: Architecture) throws {
        guard let kernels = Self.blockedSet else { return }
        let model = TrainingGraphTests.modelWithRandomBatchNorm(architecture)
        var rng = SeededGenerator(seed: 21)
        let x = rng.uniformTensor([5] + model.inputShape)
        let labels: [Int32] = [0, 3, 5, 7, 9]
        func make(_ kernels: KernelSet, blocked: Bool) throws -> TrainingGraph {
            try TrainingGraph(model: model, seed: 0, threads: 2, computesInputGradient: false, kernels: kernels,
                              splitsAllWork: false, blockedLayouts: blocked)
        }
        let reference = try Self.step(try make(.portable, blocked: false), x, labels: labels)
        let plain = try Self.step(try make(kernels, blocked: false), x, labels: labels)
        let blockedGraph = try make(kernels, blocked: true)
        if architecture != .lenet5 { #expect(blockedGraph.plan.blocked.contains(true)) }
        let blocked = try Self.step(blockedGraph, x, labels: labels)
        #expect(abs(blocked.loss - reference.loss) <= 1e-4 * (1 + abs(reference.loss)))
        #expect(F.isClose(blocked.logits, reference.logits, relative: 1e-3))
        #expect(F.isClose(blocked.logits, plain.logits, relative: 1e-4))
        for (name, g) in reference.gradients {
            #expect(F.isClose(blocked.gradients[name]!, g, relative: 1e-3), "gradient \(name)")
            #expect(F.isClose(blocked.gradients[name]!, plain.gradients[name]!, relative: 1e-3), "gradient \(name) vs plain")
        }
        for (name, p) in reference.parameters {
            #expect(F.isClose(blocked.parameters[name]!, p, relative: 1e-4), "parameter \(name)")
        }
    }

    /// `value(named:)` gives every value plain, whatever its layout (BN outputs kept, not fused).
    @Test(arguments: [Architecture.vggSmall, .resnet20, .mobilenetSmall])
    func valuesByNameMatchPortable(_ architecture: Architecture) throws {
        guard let kernels = Self.blockedSet else { return }
        let model = TrainingGraphTests.modelWithRandomBatchNorm(architecture)
        var rng = SeededGenerator(seed: 22)
        let x = rng.uniformTensor([3] + model.inputShape)
        let names = Set(model.graph.nodes.map(\.output))
        let blocked = try TrainingGraph(model: model, threads: 1, kernels: kernels, keptValues: names)
        #expect(!blocked.plan.fused.contains(true))
        let portable = try TrainingGraph(model: model, threads: 1, kernels: .portable)
        _ = try blocked.forward(x, training: true)
        _ = try portable.forward(x, training: true)
        var checked = 0
        for node in model.graph.nodes {
            let expected = portable.value(named: node.output)!
            let actual = blocked.value(named: node.output)!
            #expect(actual.shape == expected.shape)
            #expect(F.isClose(actual, expected, relative: 1e-3), "\(node.output)")
            if blocked.plan.blocked[blocked.plan.ids[node.output]!] { checked += 1 }
        }
        #expect(checked > 0)
    }

    /// Seeds on blocked intermediate values (a kept BN output, a ReLU output, a pool output) next
    /// to the logits' gradient give the portable gradients.
    @Test func seedsOnBlockedValuesMatchPortable() throws {
        guard let kernels = Self.blockedSet else { return }
        let model = TrainingGraphTests.modelWithRandomBatchNorm(.vggSmall)
        var rng = SeededGenerator(seed: 23)
        let x = rng.uniformTensor([2] + model.inputShape)
        var results: [[String: Tensor]] = []
        for set in [KernelSet.portable, kernels] {
            let graph = try TrainingGraph(model: model, threads: 1, kernels: set, keptValues: ["bn3"])
            let logits = try graph.forward(x, training: true)
            var seedRNG = SeededGenerator(seed: 5)
            var seeds = [model.graph.outputs[0]: Loss.softmaxCrossEntropy(logits: logits, labels: [1, 2]).gradient]
            if set != .portable {
                // pool2's gradient is assigned by conv5's backward: the seed makes it zeroed and added instead.
                #expect(graph.plan.assigningStep[graph.plan.ids["pool2"]!] != nil)
            }
            for name in ["bn3", "relu4", "pool2"] {
                if set != .portable { #expect(Self.isBlocked(graph, node: name), "\(name)") }
                seeds[name] = seedRNG.gaussianTensor(graph.value(named: name)!.shape, std: 0.01)
            }
            try graph.backward(seeds: seeds)
            results.append(graph.gradients)
        }
        for (name, g) in results[0] { #expect(F.isClose(results[1][name]!, g, relative: 1e-3), "\(name)") }
    }

    /// Same inputs, same kernel set, one thread: the same bytes; two threads: the same values within rounding.
    @Test func blockedStepIsReproducible() throws {
        guard let kernels = Self.blockedSet else { return }
        let model = TrainingGraphTests.modelWithRandomBatchNorm(.resnet20)
        var rng = SeededGenerator(seed: 24)
        let x = rng.uniformTensor([4] + model.inputShape)
        var runs: [[String: Tensor]] = []
        for threads in [1, 1, 2] {
            let graph = try TrainingGraph(model: model, seed: 0, threads: threads, computesInputGradient: false,
                                          kernels: kernels, splitsAllWork: threads > 1)
            runs.append(try Self.step(graph, x, labels: [1, 2, 3, 4]).gradients)
        }
        for (name, g) in runs[0] {
            #expect(runs[1][name]! == g, "\(name) one thread twice")
            #expect(F.isClose(runs[2][name]!, g, relative: 1e-3), "\(name) two threads")
        }
    }

    /// conv -> BN -> tanh -> average pool -> conv -> BN -> Add(shortcut conv) -> tanh -> GAP -> linear,
    /// 8 and 16 channels: every map between the convs blocked; the shortcut conv has a bias
    /// (its gradient from a blocked `dY`), the others none (a bias before training-mode BN has none) (smooth activations and
    /// average pooling keep finite differences away from kinks; ReLU and max pooling are
    /// covered by the whole-step comparisons).
    static func blockedChain(channels c: Int) -> Graph {
        var b = GraphBuilder(sampleShape: [3, 8, 8], seed: 3)
        b.conv("conv1", out: c, kernel: 3, padding: 1, bias: false)
        b.batchNorm("bn1")
        b.add("act1", .tanh)
        let pooled = b.add("pool1", .avgPool(Pool2d(kernel: .square(2)), countIncludePad: false))
        b.conv("conv2", out: 2 * c, kernel: 3, padding: 1, bias: false)
        let main = b.batchNorm("bn2")
        b.conv("shortcut", out: 2 * c, kernel: 1, stride: 1, bias: true, from: pooled)
        b.add("add", .add, inputs: [main, b.current])
        b.add("act2", .tanh)
        b.add("gap", .globalAvgPool)
        b.add("flatten", .flatten(axis: 1))
        b.linear("fc", out: 4)
        return b.model(architecture: .lenet5, seed: 3, classes: 4).graph
    }

    /// Central finite differences through the blocked chain (training-mode BN).
    @Test func blockedChainPassesFiniteDifferences() throws {
        guard let kernels = Self.blockedSet else { return }
        let graph = Self.blockedChain(channels: 8)
        let trainer = try TrainingGraph(model: Model(graph: graph), threads: 1, kernels: kernels)
        for node in ["conv1", "bn1", "act1", "pool1", "conv2", "bn2", "shortcut", "add", "act2"] {
            #expect(Self.isBlocked(trainer, node: node), "\(node)")
        }
        let x = GradientCheck.gaussian([3, 3, 8, 8], seed: 4, std: 1)
        let result = try GradientCheck.run(graph, input: x, eps: 1e-2, samples: 30, kernels: kernels)
        #expect(result.worst < 2e-3, "\(result)")
        let plain = try GradientCheck.run(graph, input: x, eps: 1e-2, samples: 30, kernels: .portable)
        #expect(plain.worst < 2e-3, "portable: \(plain)")
    }

    // MARK: BatchNorm fused with ReLU

    /// By default every blocked BN read only by its ReLU is fused into it: the
    /// BN output is not stored, `value(named:)` gives nil and a seed on it
    /// throws; a kept BN output is not fused and reads as the portable one.
    @Test func vggSmallFusesBatchNormIntoReLU() throws {
        guard let kernels = Self.blockedSet else { return }
        let model = TrainingGraphTests.modelWithRandomBatchNorm(.vggSmall)
        let graph = try TrainingGraph(model: model, threads: 1, kernels: kernels, keptValues: ["bn2"])
        for k in 1...6 {
            let id = graph.plan.ids["bn\(k)"]!
            #expect(graph.plan.fused[id] == (k != 2), "bn\(k)")
            #expect(graph.plan.steps.contains { $0.node == "relu\(k)" } == (k == 2), "relu\(k)")
        }
        var rng = SeededGenerator(seed: 25)
        let x = rng.uniformTensor([2] + model.inputShape)
        let logits = try graph.forward(x, training: true)
        #expect(graph.value(named: "bn1") == nil)
        #expect(throws: TrainingError.noGradient(value: "bn1")) {
            try graph.backward(seeds: ["bn1": .zeros([2, 32, 28, 28])])
        }
        let portable = try TrainingGraph(model: model, threads: 1, kernels: .portable)
        let expected = try portable.forward(x, training: true)
        #expect(F.isClose(logits, expected, relative: 1e-3))
        for name in ["bn2", "relu1", "relu3"] {
            #expect(F.isClose(graph.value(named: name)!, portable.value(named: name)!, relative: 1e-3), "\(name)")
        }
        let mobilenet = try TrainingGraph(model: Architecture.mobilenetSmall.build(seed: 1), threads: 1, kernels: kernels)
        let fused = mobilenet.plan.names.indices.filter { mobilenet.plan.fused[$0] }.map { mobilenet.plan.names[$0] }
        #expect(fused == ["block4.bn2"])
    }

    /// Fused BN + ReLU / ReLU6 (blocked) against the plain BN followed by the plain activation
    /// kernel: the activation's output, the input gradient from the activation's output gradient,
    /// the parameter gradients; training and eval, 8/16/64 channels, batches 1 and 5, maps 1, 7, 13.
    @Test(arguments: [8, 16, 64], [1, 5])
    func fusedBatchNormReLUMatchesPlain(channels: Int, batch: Int) throws {
        for (op, upper) in [(Op.relu, Float.infinity), (.relu6, 6)] {
            for map in [1, 7, 13] {
                for training in [true, false] {
                    guard !(training && batch == 1 && map == 1) else { continue }
                    let shape = [batch, channels, map, map]
                    let x = GradientCheck.gaussian(shape, seed: UInt64(channels + map + 3), std: 4)
                    let dY = GradientCheck.gaussian(shape, seed: UInt64(batch + map + 8), std: 1)
                    let dX0 = GradientCheck.gaussian(shape, seed: 98, std: 0.5)
                    let plainKernel = Self.batchNormKernel(channels: channels, seed: 9)
                    let expected = Self.runWithActivation(plainKernel, ActivationTrainingKernel(op: op), x: x, dY: dY,
                                                          dX0: dX0, training: training)
                    let kernel = Self.batchNormKernel(channels: channels, seed: 9)
                    kernel.useLayouts(inputs: [true], output: true)
                    kernel.fusedActivationUpper = upper
                    let actual = Self.run(kernel, x: x, dY: dY, dX0: dX0, training: training, threads: 2)
                    let label = "\(op.kind) C \(channels) N \(batch) \(map)x\(map) training \(training)"
                    #expect(F.isClose(actual.y, expected.y, relative: 1e-4), "y \(label)")
                    #expect(F.isClose(actual.dX, expected.dX, relative: 1e-3), "dX \(label)")
                    #expect(F.isClose(kernel.scale.gradientTensor, plainKernel.scale.gradientTensor, relative: 1e-4), "dγ \(label)")
                    #expect(F.isClose(kernel.bias.gradientTensor, plainKernel.bias.gradientTensor, relative: 1e-4), "dβ \(label)")
                }
            }
        }
    }

    /// The plain BN kernel followed by `activation` on plain tensors: (activation output, dX).
    static func runWithActivation(_ norm: BatchNormTrainingKernel, _ activation: ActivationTrainingKernel, x: Tensor,
                                  dY: Tensor, dX0: Tensor, training: Bool) -> (y: Tensor, dX: Tensor) {
        var (xs, dYs, dXs) = (x.floats, dY.floats, dX0.floats)
        var (normOut, normGradient, ys) = ([Float](repeating: 0, count: x.count), [Float](repeating: 0, count: x.count),
                                          [Float](repeating: 0, count: x.count))
        let context = KernelContext(scratch: UnsafeMutablePointer<Float>.allocate(capacity: 1), scratchPerWorker: 0,
                                    pool: WorkerPool(threads: 1))
        xs.withUnsafeMutableBufferPointer { xp in
            ys.withUnsafeMutableBufferPointer { yp in
                dYs.withUnsafeMutableBufferPointer { gp in
                    dXs.withUnsafeMutableBufferPointer { dp in
                        normOut.withUnsafeMutableBufferPointer { np in
                            normGradient.withUnsafeMutableBufferPointer { ngp in
                                let normBinding = TrainingBinding(
                                    inputs: [xp.baseAddress!], inputShapes: [x.shape], inputGradients: [dp.baseAddress!],
                                    output: np.baseAddress!, outputShape: x.shape, outputGradient: ngp.baseAddress!)
                                let activationBinding = TrainingBinding(
                                    inputs: [np.baseAddress!], inputShapes: [x.shape], inputGradients: [ngp.baseAddress!],
                                    output: yp.baseAddress!, outputShape: x.shape, outputGradient: gp.baseAddress!)
                                norm.forward(normBinding, training: training, context)
                                activation.forward(activationBinding, training: training, context)
                                activation.backward(activationBinding, context)
                                norm.backward(normBinding, context)
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(shape: x.shape, floats: ys), Tensor(shape: x.shape, floats: dXs))
    }

    // MARK: The blocked BatchNorm kernel against the plain one

    static func batchNormKernel(channels: Int, seed: UInt64) -> BatchNormTrainingKernel {
        let p = F.batchNormParameters("bn", channels: channels, seed: seed)
        return BatchNormTrainingKernel(
            scale: ParameterBuffer(name: "s", role: .normScale, tensor: p[0].1),
            bias: ParameterBuffer(name: "b", role: .normBias, tensor: p[1].1),
            runningMean: ParameterBuffer(name: "m", role: .runningMean, tensor: p[2].1),
            runningVariance: ParameterBuffer(name: "v", role: .runningVariance, tensor: p[3].1), epsilon: 1e-5)
    }

    /// `x` plain `[N, C, H, W]` as NCHW8c floats.
    static func toBlocked(_ x: Tensor) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        let zeros = [Float](repeating: 0, count: x.count)
        x.floats.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { dst in
                dst.baseAddress!.update(from: zeros, count: zeros.count)
                addPlainToBlocked(src.baseAddress!, shape: x.shape, into: dst.baseAddress!)
            }
        }
        return y
    }

    /// Runs `kernel` forward (training or eval) and backward on `x`, `dY` (plain tensors; the
    /// kernel's layout decides how they are stored) with `dX` starting at `dX0`; returns y, dX plain.
    static func run(_ kernel: BatchNormTrainingKernel, x: Tensor, dY: Tensor, dX0: Tensor, training: Bool,
                    threads: Int) -> (y: Tensor, dX: Tensor) {
        let blocked = kernel.blocked
        var (xs, dYs, dXs) = blocked ? (toBlocked(x), toBlocked(dY), toBlocked(dX0)) : (x.floats, dY.floats, dX0.floats)
        var ys = [Float](repeating: 0, count: x.count)
        let pool = WorkerPool(threads: threads, splitsAllWork: threads > 1)
        let context = KernelContext(scratch: UnsafeMutablePointer<Float>.allocate(capacity: 1), scratchPerWorker: 0,
                                    pool: pool)
        xs.withUnsafeMutableBufferPointer { xp in
            ys.withUnsafeMutableBufferPointer { yp in
                dYs.withUnsafeMutableBufferPointer { gp in
                    dXs.withUnsafeMutableBufferPointer { dp in
                        let binding = TrainingBinding(inputs: [xp.baseAddress!], inputShapes: [x.shape],
                                                      inputGradients: [dp.baseAddress!], output: yp.baseAddress!,
                                                      outputShape: x.shape, outputGradient: gp.baseAddress!)
                        kernel.forward(binding, training: training, context)
                        kernel.backward(binding, context)
                    }
                }
            }
        }
        func plain(_ v: [Float]) -> Tensor {
            blocked ? v.withUnsafeBufferPointer { blockedToPlainTensor($0.baseAddress!, shape: x.shape) }
                    : Tensor(shape: x.shape, floats: v)
        }
        return (plain(ys), plain(dXs))
    }

    /// Blocked against plain BN, training and eval mode, on 8, 16 and 64 channels,
    /// batches 1 and 5, maps 1x1, 7x7 and 13x13, one and two threads: outputs,
    /// input gradients (added to a nonzero `dX`), parameter gradients and running
    /// statistics within 1e-4 relative (1e-3 for gradients after the batch terms cancel).
    @Test(arguments: [8, 16, 64], [1, 5])
    func blockedBatchNormMatchesPlain(channels: Int, batch: Int) throws {
        for map in [1, 7, 13] {
            for training in [true, false] {
                guard !(training && batch == 1 && map == 1) else { continue }  // one value per channel: variance 0
                let shape = [batch, channels, map, map]
                let x = GradientCheck.gaussian(shape, seed: UInt64(channels + map), std: 2)
                let dY = GradientCheck.gaussian(shape, seed: UInt64(batch + map + 7), std: 1)
                let dX0 = GradientCheck.gaussian(shape, seed: 99, std: 0.5)
                let plainKernel = Self.batchNormKernel(channels: channels, seed: 7)
                let expected = Self.run(plainKernel, x: x, dY: dY, dX0: dX0, training: training, threads: 1)
                for threads in [1, 2] {
                    let kernel = Self.batchNormKernel(channels: channels, seed: 7)
                    kernel.useLayouts(inputs: [true], output: true)
                    let actual = Self.run(kernel, x: x, dY: dY, dX0: dX0, training: training, threads: threads)
                    let label = "C \(channels) N \(batch) \(map)x\(map) training \(training) threads \(threads)"
                    #expect(F.isClose(actual.y, expected.y, relative: 1e-4), "y \(label)")
                    #expect(F.isClose(actual.dX, expected.dX, relative: 1e-3), "dX \(label)")
                    #expect(F.isClose(kernel.scale.gradientTensor, plainKernel.scale.gradientTensor, relative: 1e-4), "dγ \(label)")
                    #expect(F.isClose(kernel.bias.gradientTensor, plainKernel.bias.gradientTensor, relative: 1e-4), "dβ \(label)")
                    #expect(F.isClose(kernel.runningMean.tensor, plainKernel.runningMean.tensor, relative: 1e-5), "mean \(label)")
                    #expect(F.isClose(kernel.runningVariance.tensor, plainKernel.runningVariance.tensor, relative: 1e-5),
                            "variance \(label)")
                }
            }
        }
    }

    // MARK: Pooling on blocked values

    /// Runs a pool kernel forward and backward on plain tensors (stored blocked when the kernel is):
    /// (output, dX) plain.
    static func runPool(_ kernel: PoolTrainingKernel, x: Tensor, outputShape: [Int], dY: Tensor, dX0: Tensor,
                        blocked: Bool) -> (y: Tensor, dX: Tensor) {
        var (xs, dYs, dXs) = blocked ? (toBlocked(x), toBlocked(dY), toBlocked(dX0)) : (x.floats, dY.floats, dX0.floats)
        var ys = [Float](repeating: 0, count: outputShape.elementCount)
        let context = KernelContext(scratch: UnsafeMutablePointer<Float>.allocate(capacity: 1), scratchPerWorker: 0,
                                    pool: WorkerPool(threads: 2, splitsAllWork: true))
        xs.withUnsafeMutableBufferPointer { xp in
            ys.withUnsafeMutableBufferPointer { yp in
                dYs.withUnsafeMutableBufferPointer { gp in
                    dXs.withUnsafeMutableBufferPointer { dp in
                        let binding = TrainingBinding(inputs: [xp.baseAddress!], inputShapes: [x.shape],
                                                      inputGradients: [dp.baseAddress!], output: yp.baseAddress!,
                                                      outputShape: outputShape, outputGradient: gp.baseAddress!)
                        kernel.forward(binding, training: true, context)
                        kernel.backward(binding, context)
                    }
                }
            }
        }
        func plain(_ v: [Float], _ shape: [Int]) -> Tensor {
            blocked ? v.withUnsafeBufferPointer { blockedToPlainTensor($0.baseAddress!, shape: shape) }
                    : Tensor(shape: shape, floats: v)
        }
        return (plain(ys, outputShape), plain(dXs, x.shape))
    }

    /// Blocked max and average pooling (the vector 2x2 path and the strided general one) against
    /// plain, on inputs of small integers (many ties: the first maximum in window order wins),
    /// odd and even maps: outputs and gradients exactly equal.
    @Test func blockedPoolingMatchesPlain() throws {
        let cases: [(Op, [Int], [Int])] = [
            (.maxPool(Pool2d(kernel: .square(2))), [2, 16, 7, 7], [2, 16, 3, 3]),
            (.maxPool(Pool2d(kernel: .square(2))), [1, 8, 6, 6], [1, 8, 3, 3]),
            (.maxPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1))), [2, 8, 7, 7], [2, 8, 4, 4]),
            (.avgPool(Pool2d(kernel: .square(2)), countIncludePad: false), [2, 16, 6, 6], [2, 16, 3, 3]),
        ]
        for (op, shape, outputShape) in cases {
            func kernel() -> PoolTrainingKernel {
                switch op {
                case .maxPool(let p): PoolTrainingKernel(pool: p, isMax: true)
                case .avgPool(let p, let c): PoolTrainingKernel(pool: p, isMax: false, countIncludePad: c)
                default: preconditionFailure()
                }
            }
            var rng = SeededGenerator(seed: 31)
            let x = Tensor(shape: shape, floats: rng.uniformTensor(shape, in: 0...4).floats.map { $0.rounded(.down) })
            let dY = GradientCheck.gaussian(outputShape, seed: 32, std: 1)
            let dX0 = GradientCheck.gaussian(shape, seed: 33, std: 1)
            let expected = Self.runPool(kernel(), x: x, outputShape: outputShape, dY: dY, dX0: dX0, blocked: false)
            let blockedKernel = kernel()
            blockedKernel.useLayouts(inputs: [true], output: true)
            let actual = Self.runPool(blockedKernel, x: x, outputShape: outputShape, dY: dY, dX0: dX0, blocked: true)
            #expect(actual.y == expected.y, "\(op.kind) \(shape)")
            #expect(actual.dX == expected.dX, "\(op.kind) \(shape)")
        }
    }

    // MARK: First writers assign

    /// vgg-small: the BN (fused with its ReLU) assigns its conv's output gradient, each conv
    /// after the first assigns its input's; max pooling adds, so its input gradient is zeroed.
    @Test func firstWritersAssignInVGGSmall() throws {
        guard let kernels = Self.blockedSet else { return }
        let graph = try TrainingGraph(model: Architecture.vggSmall.build(seed: 1), threads: 1, kernels: kernels)
        let plan = graph.plan
        func writer(_ value: String) -> String? { plan.assigningStep[plan.ids[value]!].map { plan.steps[$0].node } }
        for k in 1...6 { #expect(writer("conv\(k)") == "bn\(k)", "conv\(k)") }
        for k in [1, 3, 5] { #expect(writer("relu\(k)") == "conv\(k + 1)", "relu\(k)") }
        for k in [2, 4, 6] { #expect(writer("relu\(k)") == nil, "relu\(k)") }
        #expect(writer("pool1") == "conv3" && writer("pool2") == "conv5" && writer("pool3") == nil)
    }

    /// A scoped backward (every writer adds) gives the full backward's gradients of its parameters.
    @Test func scopedBackwardMatchesFullWithAssigningWriters() throws {
        guard let kernels = Self.blockedSet else { return }
        let model = TrainingGraphTests.modelWithRandomBatchNorm(.resnet20)
        var rng = SeededGenerator(seed: 26)
        let x = rng.uniformTensor([3] + model.inputShape)
        let graph = try TrainingGraph(model: model, threads: 1, kernels: kernels)
        let logits = try graph.forward(x, training: true)
        let gradient = Loss.softmaxCrossEntropy(logits: logits, labels: [1, 2, 3]).gradient
        try graph.backward(gradient)
        let full = graph.gradients
        let names: Set<String> = ["layer2.0.conv1.weight", "layer3.2.bn2.scale", "layer2.1.conv2.weight"]
        graph.zeroGradients()
        try graph.backward(gradient, scope: graph.backwardScope(updating: names))
        for name in names { #expect(F.isClose(graph.gradients[name]!, full[name]!, relative: 1e-4), "\(name)") }
    }

    // MARK: Add fused with ReLU

    /// resnet20: every residual Add (blocked) is fused with the ReLU after it.
    @Test func resnet20FusesResidualAddIntoReLU() throws {
        guard let kernels = Self.blockedSet else { return }
        let model = Architecture.resnet20.build(seed: 1)
        let graph = try TrainingGraph(model: model, threads: 1, kernels: kernels, keptValues: ["layer2.1.add"])
        let adds = model.graph.nodes.filter { $0.op == .add }
        #expect(adds.count == 9)
        for node in adds {
            let kept = node.name == "layer2.1.add"
            #expect(graph.plan.fused[graph.plan.ids[node.output]!] == !kept, "\(node.name)")
            let relu = node.name.replacingOccurrences(of: ".add", with: ".relu2")
            #expect(graph.plan.steps.contains { $0.node == relu } == kept, "\(relu)")
        }
    }

    /// A fused Add + ReLU / ReLU6 against Add then the activation kernel: output and both
    /// operand gradients (added to nonzero gradients), exactly (the same float operations).
    @Test func fusedAddReLUMatchesAddThenReLU() throws {
        let shape = [3, 16, 5, 5]
        for (op, upper) in [(Op.relu, Float.infinity), (.relu6, 6)] {
            let (a, c) = (GradientCheck.gaussian(shape, seed: 41, std: 4), GradientCheck.gaussian(shape, seed: 42, std: 4))
            let dY = GradientCheck.gaussian(shape, seed: 43, std: 1)
            let start = GradientCheck.gaussian(shape, seed: 44, std: 1).floats
            let context = KernelContext(scratch: UnsafeMutablePointer<Float>.allocate(capacity: 1), scratchPerWorker: 0,
                                        pool: WorkerPool(threads: 2, splitsAllWork: true))
            func run(fused: Bool) -> [[Float]] {
                var (xa, xc, g) = (a.floats, c.floats, dY.floats)
                var (sum, y, dSum, dA, dC) = ([Float](repeating: 0, count: a.count), [Float](repeating: 0, count: a.count),
                                             [Float](repeating: 0, count: a.count), start, start)
                let add = BinaryTrainingKernel(op: .add)
                if fused { add.fusedActivationUpper = upper }
                let activation = ActivationTrainingKernel(op: op)
                xa.withUnsafeMutableBufferPointer { pa in xc.withUnsafeMutableBufferPointer { pc in
                g.withUnsafeMutableBufferPointer { pg in sum.withUnsafeMutableBufferPointer { ps in
                y.withUnsafeMutableBufferPointer { py in dSum.withUnsafeMutableBufferPointer { pds in
                dA.withUnsafeMutableBufferPointer { pda in dC.withUnsafeMutableBufferPointer { pdc in
                    let addBinding = TrainingBinding(
                        inputs: [pa.baseAddress!, pc.baseAddress!], inputShapes: [shape, shape],
                        inputGradients: [pda.baseAddress!, pdc.baseAddress!], output: fused ? py.baseAddress! : ps.baseAddress!,
                        outputShape: shape, outputGradient: fused ? pg.baseAddress! : pds.baseAddress!)
                    add.forward(addBinding, training: true, context)
                    if !fused {
                        let reluBinding = TrainingBinding(
                            inputs: [ps.baseAddress!], inputShapes: [shape], inputGradients: [pds.baseAddress!],
                            output: py.baseAddress!, outputShape: shape, outputGradient: pg.baseAddress!)
                        activation.forward(reluBinding, training: true, context)
                        activation.backward(reluBinding, context)
                    }
                    add.backward(addBinding, context)
                }}}}}}}}
                return [y, dA, dC]
            }
            #expect(run(fused: true) == run(fused: false), "\(op.kind)")
        }
    }
}
