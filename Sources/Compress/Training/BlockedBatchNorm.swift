import SIMDKernels

// BatchNorm on NCHW8c values: the eight channels of a block are the eight
// lanes of one vector, so every pass reads whole blocks in order and works on
// eight channels at once (the plane loops are SIMDKernels'
// `blockedPlane...`, compiled for AVX2: blocked values exist only with the
// blocked kernel sets). The same sums as the plain kernel, in the same
// precision: Float within one image's plane, Double across the images in
// image order; the split over workers is by channel block, so results do not
// depend on the thread count.

extension BatchNormTrainingKernel: BlockedLayoutTrainingKernel {
    var layoutRule: TrainingLayoutRule { .uniform }
    func useLayouts(inputs: [Bool], output: Bool) { blocked = output }
    var canAssignInputGradient: Bool { blocked }

    /// Training or eval forward of a blocked `[N, C, H, W]` (C a multiple of 8).
    func blockedForward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, pixels, blocks) = (shape[0], shape[2] &* shape[3], channels / 8)
        let workers = context.workers(forWork: 3 &* shape.elementCount)
        beginForward(training: training)
        let (x, y) = (UnsafePointer(b.inputs[0]), b.output)
        let (fused, upper) = (fusedActivationUpper != nil, fusedActivationUpper ?? .infinity)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverseStd.withUnsafeMutableBufferPointer { stdBuffer in
                let (means, inverseStds) = (meanBuffer.baseAddress!, stdBuffer.baseAddress!)
                context.forEachIndex(blocks, workers: workers) { cb, _ in
                    let planes = BlockPlanes(block: cb, blocks: blocks, pixels: pixels)
                    if training { measure(x, planes, n: n, means + cb &* 8, inverseStds + cb &* 8, firstChannel: cb &* 8) }
                    withAffine(block: cb, means, inverseStds) { s, t in
                        for image in 0..<n {
                            blockedPlaneNormalize(x + planes.start(image), y + planes.start(image), pixels: pixels,
                                                  scale: s, shift: t, fused: fused, upper: upper)
                        }
                    }
                }
            }
        }
    }

    /// Calls `body(s, t)` with the normalization of block `cb` as `x * s + t` (8 floats each),
    /// computed the same way in forward and backward (the fused backward recomputes the
    /// activation's mask from it).
    private func withAffine(block cb: Int, _ means: UnsafePointer<Float>, _ inverseStds: UnsafePointer<Float>,
                            _ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
        var affine = [Float](repeating: 0, count: 16)
        for l in 0..<8 {
            let c = cb &* 8 &+ l
            let s = scale.values[c] * inverseStds[c]
            affine[l] = s
            affine[8 &+ l] = bias.values[c] - means[c] * s
        }
        affine.withUnsafeBufferPointer { body($0.baseAddress!, $0.baseAddress! + 8) }
    }

    /// Batch mean and variance of one block's eight channels (two passes), and the running update.
    private func measure(_ x: UnsafePointer<Float>, _ planes: BlockPlanes, n: Int, _ means: UnsafeMutablePointer<Float>,
                         _ inverseStds: UnsafeMutablePointer<Float>, firstChannel c0: Int) {
        var partial = [Float](repeating: 0, count: 16)
        var (sum, squares) = ([Double](repeating: 0, count: 8), [Double](repeating: 0, count: 8))
        let count = Double(n &* planes.pixels)
        partial.withUnsafeMutableBufferPointer { p in
            let (lanes, shift) = (p.baseAddress!, p.baseAddress! + 8)
            for image in 0..<n {
                blockedPlaneMoments(x + planes.start(image), pixels: planes.pixels, mean: nil, sums: lanes)
                for l in 0..<8 { sum[l] += Double(lanes[l]) }
            }
            for l in 0..<8 { shift[l] = Float(sum[l] / count) }
            for image in 0..<n {
                blockedPlaneMoments(x + planes.start(image), pixels: planes.pixels, mean: shift, sums: lanes)
                for l in 0..<8 { squares[l] += Double(lanes[l]) }
            }
        }
        for l in 0..<8 {
            let c = c0 &+ l
            let mu = sum[l] / count
            let variance = squares[l] / count
            means[l] = Float(mu)
            inverseStds[l] = Float(1 / (variance + Double(epsilon)).squareRoot())
            let unbiased = count > 1 ? variance * count / (count - 1) : variance
            runningMean.values[c] = (1 - momentum) * runningMean.values[c] + momentum * Float(mu)
            runningVariance.values[c] = (1 - momentum) * runningVariance.values[c] + momentum * Float(unbiased)
        }
    }

    /// Backward of a blocked `[N, C, H, W]`: per block, one pass for `dβ` and
    /// `dγ` and one writing or adding `dx = γ/σ (dy - dβ/M - x̂ dγ/M)` into `dX`
    /// (without the batch terms after an eval forward); with a fused
    /// activation, `dy` is its output gradient masked where it passed.
    func blockedBackward(_ b: TrainingBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, pixels, blocks) = (shape[0], shape[2] &* shape[3], channels / 8)
        let workers = context.workers(forWork: 3 &* shape.elementCount)
        let batchStatistics = lastForwardTrained
        let (x, dY, dXBase) = (UnsafePointer(b.inputs[0]), UnsafePointer(b.outputGradient), b.inputGradients[0])
        let (parameters, assigns) = (b.computesParameterGradients, b.assignsInputGradient)
        let (fused, upper) = (fusedActivationUpper != nil, fusedActivationUpper ?? .infinity)
        let count = Double(n &* pixels)
        mean.withUnsafeBufferPointer { meanBuffer in
            inverseStd.withUnsafeBufferPointer { stdBuffer in
                let (means, inverseStds) = (meanBuffer.baseAddress!, stdBuffer.baseAddress!)
                context.forEachIndex(blocks, workers: workers) { cb, _ in
                    let planes = BlockPlanes(block: cb, blocks: blocks, pixels: pixels)
                    let (mu, inverse) = (means + cb &* 8, inverseStds + cb &* 8)
                    withAffine(block: cb, means, inverseStds) { s, t in
                        var partial = [Float](repeating: 0, count: 56)
                        var (sumDy, sumDyXhat) = ([Double](repeating: 0, count: 8), [Double](repeating: 0, count: 8))
                        partial.withUnsafeMutableBufferPointer { p in
                            let (sums, dots, coefficients) = (p.baseAddress!, p.baseAddress! + 8, p.baseAddress! + 16)
                            for image in 0..<n {
                                blockedPlaneGradientSums(dY + planes.start(image), x + planes.start(image), pixels: pixels,
                                                         mean: mu, scale: s, shift: t, fused: fused, upper: upper,
                                                         sums: sums, dots: dots)
                                for l in 0..<8 {
                                    sumDy[l] += Double(sums[l])
                                    sumDyXhat[l] += Double(dots[l]) * Double(inverse[l])
                                }
                            }
                            for l in 0..<8 {
                                let c = cb &* 8 &+ l
                                let (dBeta, dGamma) = (Float(sumDy[l]), Float(sumDyXhat[l]))
                                if parameters {
                                    bias.gradient[c] += dBeta
                                    scale.gradient[c] += dGamma
                                }
                                coefficients[l] = mu[l]
                                coefficients[8 &+ l] = inverse[l]
                                coefficients[16 &+ l] = scale.values[c] * inverse[l]
                                coefficients[24 &+ l] = batchStatistics ? dBeta / Float(count) : 0
                                coefficients[32 &+ l] = batchStatistics ? dGamma / Float(count) : 0
                            }
                            guard let dXBase else { return }
                            for image in 0..<n {
                                let start = planes.start(image)
                                blockedPlaneInputGradient(dY + start, x + start, dXBase + start, pixels: pixels,
                                                          coefficients: coefficients, scale: s, shift: t, fused: fused,
                                                          upper: upper, assigns: assigns)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where block `block` of each image of a blocked value starts.
private struct BlockPlanes {
    let block: Int, blocks: Int, pixels: Int

    @inline(__always)
    func start(_ image: Int) -> Int { (image &* blocks &+ block) &* pixels &* 8 }
}
