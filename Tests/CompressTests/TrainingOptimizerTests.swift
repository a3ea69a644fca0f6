import Foundation
import Testing
@testable import Compress

@Suite struct TrainingOptimizerTests {
    /// A parameter with given values and gradient.
    static func parameter(_ values: [Float], gradient: [Float], role: ParameterRole = .weight) -> ParameterBuffer {
        let p = ParameterBuffer(name: "p", role: role, tensor: Tensor(shape: [values.count], floats: values))
        _ = p.gradient.update(from: gradient)
        return p
    }

    @Test func sgdWithMomentumTwoSteps() {
        // lr 0.1, momentum 0.9, w = 1: step 1 g = 0.5: v = 0.5, w = 0.95; step 2 g = 0.2: v = 0.65, w = 0.885.
        let p = Self.parameter([1], gradient: [0.5])
        let sgd = SGD(momentum: 0.9)
        sgd.step([p], learningRate: 0.1)
        #expect(abs(p.values[0] - 0.95) < 1e-6)
        p.gradient[0] = 0.2
        sgd.step([p], learningRate: 0.1)
        #expect(abs(p.values[0] - 0.885) < 1e-6)
    }

    @Test func sgdNesterovTwoSteps() {
        // Step 1: v = 0.5, w -= 0.1 (0.5 + 0.45) -> 0.905. Step 2: v = 0.65, w -= 0.1 (0.2 + 0.585) -> 0.8265.
        let p = Self.parameter([1], gradient: [0.5])
        let sgd = SGD(momentum: 0.9, nesterov: true)
        sgd.step([p], learningRate: 0.1)
        #expect(abs(p.values[0] - 0.905) < 1e-6)
        p.gradient[0] = 0.2
        sgd.step([p], learningRate: 0.1)
        #expect(abs(p.values[0] - 0.8265) < 1e-6)
    }

    @Test func sgdWeightDecaySkipsBiasesByDefault() {
        // g = 0.5 + 0.1 * 2 = 0.7 for the weight; the bias sees only its gradient.
        let w = Self.parameter([2], gradient: [0.5]), b = Self.parameter([2], gradient: [0.5], role: .bias)
        SGD(weightDecay: 0.1).step([w, b], learningRate: 1)
        #expect(abs(w.values[0] - 1.3) < 1e-6)
        #expect(abs(b.values[0] - 1.5) < 1e-6)
        let b2 = Self.parameter([2], gradient: [0.5], role: .normScale)
        SGD(weightDecay: 0.1, decaysBiasesAndNormParameters: true).step([b2], learningRate: 1)
        #expect(abs(b2.values[0] - 1.3) < 1e-6)
    }

    @Test func adamFirstStep() {
        // Bias-corrected m̂ = g, v̂ = g², so w -= lr g / (|g| + eps) = lr sign(g).
        let p = Self.parameter([1, -1], gradient: [0.5, -2])
        Adam().step([p], learningRate: 0.01)
        #expect(abs(p.values[0] - 0.99) < 1e-6)
        #expect(abs(p.values[1] - -0.99) < 1e-6)
    }

    @Test func adamSecondStepByHand() {
        let p = Self.parameter([1], gradient: [0.5])
        let adam = Adam()
        adam.step([p], learningRate: 0.01)
        p.gradient[0] = -0.25
        adam.step([p], learningRate: 0.01)
        let m = 0.9 * (0.1 * 0.5) + 0.1 * -0.25, v = 0.999 * (0.001 * 0.25) + 0.001 * 0.0625
        let expected = 0.99 - 0.01 * (m / (1 - 0.81)) / ((v / (1 - 0.999 * 0.999)).squareRoot() + 1e-8)
        #expect(abs(Double(p.values[0]) - expected) < 1e-6)
    }

    @Test func adamWDecouplesDecay() {
        // AdamW: w = 2 (1 - 0.1 * 0.5) - 0.1 = 1.8; Adam with L2: the decay only changes g, the step stays lr.
        let p = Self.parameter([2], gradient: [0.3])
        Adam.adamW(weightDecay: 0.5).step([p], learningRate: 0.1)
        #expect(abs(p.values[0] - 1.8) < 1e-6)
        let q = Self.parameter([2], gradient: [0.3])
        Adam(weightDecay: 0.5).step([q], learningRate: 0.1)
        #expect(abs(q.values[0] - 1.9) < 1e-6)
    }

    @Test func schedules() {
        #expect(LRSchedule.constant(0.1).learningRate(atStep: 99) == 0.1)
        let step = LRSchedule.step(base: 0.1, stepSize: 10, gamma: 0.5)
        #expect(step.learningRate(atStep: 9) == 0.1)
        #expect(abs(step.learningRate(atStep: 25) - 0.025) < 1e-7)
        let cosine = LRSchedule.cosine(base: 1, floor: 0.1, totalSteps: 100)
        #expect(cosine.learningRate(atStep: 0) == 1)
        #expect(abs(cosine.learningRate(atStep: 50) - 0.55) < 1e-6)
        #expect(abs(cosine.learningRate(atStep: 100) - 0.1) < 1e-6)
        #expect(abs(cosine.learningRate(atStep: 200) - 0.1) < 1e-6)
        let cycle = LRSchedule.oneCycle(peak: 1, totalSteps: 100, warmupFraction: 0.2, initialDivisor: 10, finalDivisor: 100)
        #expect(abs(cycle.learningRate(atStep: 0) - 0.1) < 1e-6)
        #expect(abs(cycle.learningRate(atStep: 10) - 0.55) < 1e-6)
        #expect(abs(cycle.learningRate(atStep: 20) - 1) < 1e-6)
        #expect(abs(cycle.learningRate(atStep: 100) - 0.01) < 1e-6)
    }
}

@Suite struct TrainingPolicyTests {
    /// LeNet-300 on random data, trained `steps` SGD steps with momentum.
    static func train(_ graph: TrainingGraph, steps: Int, optimizer: any Optimizer = SGD(momentum: 0.9)) throws {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<steps {
            let x = rng.uniformTensor([8, 1, 28, 28])
            let labels = (0..<8).map { _ in Int32(rng.next() % 10) }
            let logits = try graph.forward(x, training: true)
            graph.zeroGradients()
            try graph.backward(Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient)
            optimizer.step(graph, learningRate: 0.05)
        }
    }

    @Test func maskKeepsPrunedWeightsExactlyZero() throws {
        let graph = try TrainingGraph(model: Architecture.lenet300.build(seed: 1))
        let fc1 = graph.parameters["fc1.weight"]!
        let mask = (0..<fc1.count).map { Float($0 % 3 == 0 ? 0 : 1) }
        fc1.applyMask(mask)
        try Self.train(graph, steps: 20)
        let exported = graph.exportModel().graph.initializers["fc1.weight"]!.floats
        #expect(exported.count == mask.count)
        #expect(zip(exported, mask).allSatisfy { $1 == 1 || $0 == 0 })
        #expect(zip(exported, mask).contains { $1 == 1 && $0 != 0 })
    }

    @Test func frozenParameterIsUnchanged() throws {
        let graph = try TrainingGraph(model: Architecture.lenet300.build(seed: 1))
        let frozen = graph.parameters["fc2.weight"]!
        frozen.policy.isFrozen = true
        let before = frozen.tensor, otherBefore = graph.parameters["fc1.weight"]!.tensor
        try Self.train(graph, steps: 5, optimizer: Adam())
        #expect(frozen.tensor == before)
        #expect(graph.parameters["fc1.weight"]!.tensor != otherBefore)
    }

    @Test func learningRateMultiplierScalesTheStep() {
        let a = TrainingOptimizerTests.parameter([1], gradient: [1]), b = TrainingOptimizerTests.parameter([1], gradient: [1])
        b.policy.learningRateMultiplier = 0.1
        SGD().step([a, b], learningRate: 0.5)
        #expect(abs(a.values[0] - 0.5) < 1e-6)
        #expect(abs(b.values[0] - 0.95) < 1e-6)
    }

    @Test func codebookKeepsAtMostKValuesAndMovesCentroidsBySummedGradient() throws {
        let graph = try TrainingGraph(model: Architecture.lenet300.build(seed: 1))
        let fc2 = graph.parameters["fc2.weight"]!
        let k = 4
        let centroids: [Float] = [-0.1, -0.02, 0.02, 0.1]
        let assignments = (0..<fc2.count).map { Int32($0 % 7 == 0 ? -1 : $0 % k) }
        fc2.tie(to: Codebook(centroids: centroids, assignments: assignments))
        // One plain SGD step: each centroid moves by -lr times its members' summed gradient.
        var rng = SeededGenerator(seed: 9)
        let logits = try graph.forward(rng.uniformTensor([4, 1, 28, 28]), training: true)
        graph.zeroGradients()
        try graph.backward(Loss.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2, 3]).gradient)
        var sums = [Double](repeating: 0, count: k)
        for (i, c) in assignments.enumerated() where c >= 0 { sums[Int(c)] += Double(fc2.gradient[i]) }
        SGD().step(graph, learningRate: 0.01)
        let moved = fc2.policy.codebook!.centroids
        for c in 0..<k { #expect(abs(Double(moved[c]) - (Double(centroids[c]) - 0.01 * sums[c])) < 1e-5) }
        try Self.train(graph, steps: 10)
        let distinct = Set(fc2.tensor.floats)
        #expect(distinct.count <= k + 1)  // the centroids and the pruned zeros
        #expect(fc2.tensor.floats.count == assignments.count)
        #expect(zip(fc2.tensor.floats, assignments).allSatisfy { $1 >= 0 || $0 == 0 })
    }
}

@Suite struct TrainingLossTests {
    /// Central differences of `loss` with respect to each element of `x`, in Double via float32 evaluations.
    static func numericGradient(_ x: Tensor, eps: Float = 1e-3, _ loss: (Tensor) -> Float) -> [Double] {
        var values = x.floats
        return values.indices.map { i in
            let saved = values[i]
            values[i] = saved + eps
            let plus = Double(loss(Tensor(shape: x.shape, floats: values)))
            values[i] = saved - eps
            let minus = Double(loss(Tensor(shape: x.shape, floats: values)))
            values[i] = saved
            return (plus - minus) / (2 * Double(eps))
        }
    }

    static func relativeError(_ analytic: Tensor, _ numeric: [Double]) -> Double {
        let a = analytic.floats.map(Double.init)
        let difference = zip(a, numeric).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let norm = max(a.reduce(0) { $0 + $1 * $1 }.squareRoot(), numeric.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-6)
        return difference / norm
    }

    @Test(arguments: [Float(0), 0.1]) func crossEntropyGradient(smoothing: Float) {
        let logits = GradientCheck.gaussian([4, 5], seed: 1, std: 2)
        let labels: [Int32] = [0, 3, 4, 1]
        let (loss, gradient) = Loss.softmaxCrossEntropy(logits: logits, labels: labels, labelSmoothing: smoothing)
        let numeric = Self.numericGradient(logits) { Loss.softmaxCrossEntropy(logits: $0, labels: labels, labelSmoothing: smoothing).loss }
        #expect(Self.relativeError(gradient, numeric) < 2e-3)
        #expect(loss > 0)
    }

    @Test func crossEntropyOfUniformLogitsIsLogK() {
        let (loss, _) = Loss.softmaxCrossEntropy(logits: .zeros([2, 10]), labels: [3, 7])
        #expect(abs(loss - Float(log(10.0))) < 1e-6)
    }

    @Test func meanSquaredErrorGradient() {
        let a = GradientCheck.gaussian([2, 3, 2, 2], seed: 1), b = GradientCheck.gaussian([2, 3, 2, 2], seed: 2)
        let (loss, gradient) = Loss.meanSquaredError(a, b)
        let expected = zip(a.floats, b.floats).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / 24
        #expect(abs(Double(loss) - expected) < 1e-5)
        #expect(Self.relativeError(gradient, Self.numericGradient(a) { Loss.meanSquaredError($0, b).loss }) < 2e-3)
    }

    @Test(arguments: [Float(1), 4]) func distillationGradient(temperature: Float) {
        let student = GradientCheck.gaussian([3, 6], seed: 1, std: 2), teacher = GradientCheck.gaussian([3, 6], seed: 2, std: 2)
        let (loss, gradient) = Loss.distillationKL(student: student, teacher: teacher, temperature: temperature)
        let numeric = Self.numericGradient(student) { Loss.distillationKL(student: $0, teacher: teacher, temperature: temperature).loss }
        #expect(Self.relativeError(gradient, numeric) < 2e-3)
        #expect(loss > 0)
        #expect(Loss.distillationKL(student: teacher, teacher: teacher, temperature: temperature).loss.magnitude < 1e-6)
    }
}
