import Foundation

/// Batch normalization that trains (Ioffe & Szegedy, "Batch Normalization:
/// Accelerating Deep Network Training by Reducing Internal Covariate Shift", ICML 2015).
///
/// Training mode normalizes each channel with the batch's mean and biased
/// variance over `N x H x W` and updates the running statistics PyTorch's way:
/// `running = (1 - momentum) * running + momentum * batch`, momentum 0.1, with the
/// *unbiased* batch variance (`M / (M - 1)`) for the running variance.
/// Eval mode uses the running statistics.
///
/// Backward (training mode), with `x̂ = (x - μ) / σ` and `M` values per channel:
/// `dβ = Σ dy`, `dγ = Σ dy x̂`, `dx = γ / σ · (dy - dβ / M - x̂ · dγ / M)`.
final class BatchNormTrainingKernel: TrainingKernel {
    let scale: ParameterBuffer
    let bias: ParameterBuffer
    let runningMean: ParameterBuffer
    let runningVariance: ParameterBuffer
    let epsilon: Float
    let momentum: Float
    /// Per channel, from the last forward: the mean and `1 / sqrt(var + eps)` it normalized with.
    var mean: [Float]
    var inverseStd: [Float]
    /// Whether input and output (and their gradients) are NCHW8c, set by the
    /// planner: then ``blockedForward(_:training:_:)`` and ``blockedBackward(_:_:)`` run.
    var blocked = false
    /// When set (blocked only), the kernel also applies the ReLU that read its
    /// output, `min(max(y, 0), upper)` (`upper` infinity for ReLU, 6 for ReLU6),
    /// and its backward starts from that ReLU's output gradient (`TrainingPlan.fuseActivations`).
    var fusedActivationUpper: Float?

    init(scale: ParameterBuffer, bias: ParameterBuffer, runningMean: ParameterBuffer,
         runningVariance: ParameterBuffer, epsilon: Float, momentum: Float = 0.1) {
        self.scale = scale; self.bias = bias
        self.runningMean = runningMean; self.runningVariance = runningVariance
        self.epsilon = epsilon; self.momentum = momentum
        mean = [Float](repeating: 0, count: scale.count)
        inverseStd = mean
    }

    var channels: Int { scale.count }

    /// Notes the mode of this forward; in eval mode, takes the running statistics as `mean` and `inverseStd`.
    func beginForward(training: Bool) {
        lastForwardTrained = training
        guard !training else { return }
        for c in 0..<channels {
            mean[c] = runningMean.values[c]
            inverseStd[c] = 1 / (runningVariance.values[c] + epsilon).squareRoot()
        }
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        if blocked { return blockedForward(b, training: training, context) }
        let shape = b.inputShapes[0]
        let (n, inner) = (shape[0], shape[2...].reduce(1, *))
        let workers = context.workers(forWork: 3 &* shape.elementCount)
        beginForward(training: training)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverseStd.withUnsafeMutableBufferPointer { stdBuffer in
                let (means, inverseStds) = (meanBuffer.baseAddress!, stdBuffer.baseAddress!)
                context.forEachIndex(channels, workers: workers) { c, _ in
                    if training { measure(b.inputs[0], channel: c, n: n, inner: inner, means, inverseStds) }
                    normalize(b.inputs[0], b.output, channel: c, n: n, inner: inner,
                              mean: means[c], inverseStd: inverseStds[c])
                }
            }
        }
    }

    /// Batch mean and variance of one channel (two passes, Double sums), and the running update.
    private func measure(_ x: UnsafePointer<Float>, channel c: Int, n: Int, inner: Int,
                         _ means: UnsafeMutablePointer<Float>, _ inverseStds: UnsafeMutablePointer<Float>) {
        var sum = 0.0
        forEachPlane(c, n: n, inner: inner) { offset in sum += Double(sumAndSquares(x + offset, count: inner, shift: 0).sum) }
        let count = Double(n &* inner)
        let mu = sum / count
        var squares = 0.0
        forEachPlane(c, n: n, inner: inner) { offset in
            squares += Double(sumAndSquares(x + offset, count: inner, shift: Float(mu)).squares)
        }
        let variance = squares / count
        means[c] = Float(mu)
        inverseStds[c] = Float(1 / (variance + Double(epsilon)).squareRoot())
        let unbiased = count > 1 ? variance * count / (count - 1) : variance
        runningMean.values[c] = (1 - momentum) * runningMean.values[c] + momentum * Float(mu)
        runningVariance.values[c] = (1 - momentum) * runningVariance.values[c] + momentum * Float(unbiased)
    }

    private func normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, channel c: Int, n: Int,
                           inner: Int, mean: Float, inverseStd: Float) {
        let s = scale.values[c] * inverseStd
        let t = bias.values[c] - mean * s
        forEachPlane(c, n: n, inner: inner) { offset in
            for i in 0..<inner { y[offset &+ i] = x[offset &+ i] * s + t }
        }
    }

    /// Calls `body(offset)` for the start of channel `c`'s plane in each of the `n` images.
    @inline(__always)
    private func forEachPlane(_ c: Int, n: Int, inner: Int, _ body: (Int) -> Void) {
        for image in 0..<n { body((image &* channels &+ c) &* inner) }
    }

    /// Training-mode backward when the last forward trained; otherwise the
    /// backward of the fixed affine map the eval forward applied.
    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        if blocked { return blockedBackward(b, context) }
        let shape = b.inputShapes[0]
        let (n, inner) = (shape[0], shape[2...].reduce(1, *))
        let workers = context.workers(forWork: 3 &* shape.elementCount)
        let usedBatchStatistics = lastForwardTrained
        context.forEachIndex(channels, workers: workers) { c, _ in
            channelBackward(b, channel: c, n: n, inner: inner, batchStatistics: usedBatchStatistics)
        }
    }

    /// Whether the last forward used batch statistics.
    var lastForwardTrained = true

    private func channelBackward(_ b: TrainingBinding, channel c: Int, n: Int, inner: Int, batchStatistics: Bool) {
        let (x, dY) = (b.inputs[0], b.outputGradient)
        let (mu, inverse) = (mean[c], inverseStd[c])
        var sumDy = 0.0, sumDyXhat = 0.0
        forEachPlane(c, n: n, inner: inner) { offset in
            let (s, dot) = sumAndDot(dY + offset, x + offset, count: inner, shift: mu)
            sumDy += Double(s)
            sumDyXhat += Double(dot) * Double(inverse)
        }
        if b.computesParameterGradients {
            bias.gradient[c] += Float(sumDy)
            scale.gradient[c] += Float(sumDyXhat)
        }
        guard let dX = b.inputGradients[0] else { return }
        let gain = scale.values[c] * inverse
        let count = Float(n &* inner)
        let (meanDy, meanDyXhat) = batchStatistics ? (Float(sumDy) / count, Float(sumDyXhat) / count) : (0, 0)
        forEachPlane(c, n: n, inner: inner) { offset in
            for i in 0..<inner {
                let xHat = (x[offset &+ i] - mu) * inverse
                dX[offset &+ i] += gain * (dY[offset &+ i] - meanDy - xHat * meanDyXhat)
            }
        }
    }
}
