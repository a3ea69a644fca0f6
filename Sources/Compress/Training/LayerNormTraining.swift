/// LayerNorm over the channels (axis 1) that trains (`Op.layerNorm`; Ba et al.,
/// "Layer Normalization", 2016). Forward and eval are the same: each sample's
/// position is normalized with the mean and biased variance of its C values.
///
/// Backward at one position, with `x̂ = (x - μ) · r`, `r = 1 / sqrt(var + eps)`,
/// `g = dy · γ` and means over the C channels:
/// `dx = r · (g - mean(g) - x̂ · mean(g · x̂))`; `dγ = Σ dy · x̂`, `dβ = Σ dy`
/// over samples and positions.
final class LayerNormTrainingKernel: TrainingKernel {
    let scale: ParameterBuffer
    let bias: ParameterBuffer?
    let epsilon: Float
    /// Per sample and position, from the last forward: the mean and `1 / sqrt(var + eps)`.
    private var mean: [Float] = []
    private var inverseDeviation: [Float] = []

    init(scale: ParameterBuffer, bias: ParameterBuffer?, epsilon: Float) {
        (self.scale, self.bias, self.epsilon) = (scale, bias, epsilon)
    }

    /// Two per-position sums of one image.
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int { 2 * inputShapes[0][2...].reduce(1, *) }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, channels, inner) = (shape[0], shape[1], shape[2...].reduce(1, *))
        if mean.count != n * inner {
            mean = [Float](repeating: 0, count: n * inner)
            inverseDeviation = mean
        }
        let (epsilon, inverseCount) = (self.epsilon, 1 / Float(channels))
        let (g, beta) = (scale.values, bias?.values)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverseDeviation.withUnsafeMutableBufferPointer { deviationBuffer in
                let (means, deviations) = (meanBuffer.baseAddress!, deviationBuffer.baseAddress!)
                context.forEachIndex(n, workers: context.workers(forWork: 4 &* shape.elementCount)) { image, _ in
                    let x = UnsafePointer(b.inputs[0]) + image &* channels &* inner
                    let y = b.output + image &* channels &* inner
                    let (mu, r) = (means + image &* inner, deviations + image &* inner)
                    mu.update(repeating: 0, count: inner)
                    r.update(repeating: 0, count: inner)
                    for c in 0..<channels { let row = x + c &* inner; for i in 0..<inner { mu[i] += row[i] } }
                    for i in 0..<inner { mu[i] *= inverseCount }
                    for c in 0..<channels {
                        let row = x + c &* inner
                        for i in 0..<inner { let d = row[i] - mu[i]; r[i] += d * d }
                    }
                    for i in 0..<inner { r[i] = 1 / (r[i] * inverseCount + epsilon).squareRoot() }
                    for c in 0..<channels {
                        let (row, out, s, t) = (x + c &* inner, y + c &* inner, g[c], beta?[c] ?? 0)
                        for i in 0..<inner { out[i] = (row[i] - mu[i]) * r[i] * s + t }
                    }
                }
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, channels, inner) = (shape[0], shape[1], shape[2...].reduce(1, *))
        let (x, dY) = (UnsafePointer(b.inputs[0]), UnsafePointer(b.outputGradient))
        mean.withUnsafeBufferPointer { meanBuffer in
            inverseDeviation.withUnsafeBufferPointer { deviationBuffer in
                let (means, deviations) = (meanBuffer.baseAddress!, deviationBuffer.baseAddress!)
                if b.computesParameterGradients {
                    for c in 0..<channels {
                        var sumDy = 0.0, sumDyXhat = 0.0
                        for image in 0..<n {
                            let offset = (image &* channels &+ c) &* inner
                            let (mu, r) = (means + image &* inner, deviations + image &* inner)
                            for i in 0..<inner {
                                let dy = Double(dY[offset &+ i])
                                sumDy += dy
                                sumDyXhat += dy * Double((x[offset &+ i] - mu[i]) * r[i])
                            }
                        }
                        scale.gradient[c] += Float(sumDyXhat)
                        bias?.gradient[c] += Float(sumDy)
                    }
                }
                guard let dX = b.inputGradients[0] else { return }
                let g = scale.values
                let inverseCount = 1 / Float(channels)
                context.forEachIndex(n, workers: context.workers(forWork: 6 &* shape.elementCount)) { image, worker in
                    let base = image &* channels &* inner
                    let (mu, r) = (means + image &* inner, deviations + image &* inner)
                    let meanG = context.scratch(forWorker: worker), meanGXhat = meanG + inner
                    meanG.update(repeating: 0, count: 2 &* inner)
                    for c in 0..<channels {
                        let (row, dRow, s) = (x + (base &+ c &* inner), dY + (base &+ c &* inner), g[c])
                        for i in 0..<inner {
                            let gi = dRow[i] * s
                            meanG[i] += gi
                            meanGXhat[i] += gi * (row[i] - mu[i]) * r[i]
                        }
                    }
                    for i in 0..<inner { meanG[i] *= inverseCount; meanGXhat[i] *= inverseCount }
                    for c in 0..<channels {
                        let (row, dRow, out, s) = (x + (base &+ c &* inner), dY + (base &+ c &* inner), dX + (base &+ c &* inner), g[c])
                        for i in 0..<inner {
                            let xHat = (row[i] - mu[i]) * r[i]
                            out[i] += r[i] * (dRow[i] * s - meanG[i] - xHat * meanGXhat[i])
                        }
                    }
                }
            }
        }
    }
}
