import SIMDKernels

// BatchNorm on NCHW8c values: the eight channels of a block are the eight
// lanes of one vector, so every pass reads whole blocks in order and works on
// eight channels at once. The same sums as the plain kernel, in the same
// precision: Float within one image's plane (four vector accumulators over
// the pixels), Double across the images in image order; the split over
// workers is by channel block, so results do not depend on the thread count.

extension BatchNormTrainingKernel: BlockedLayoutTrainingKernel {
    var layoutRule: TrainingLayoutRule { .uniform }
    func useLayouts(inputs: [Bool], output: Bool) { blocked = output }
    var canAssignInputGradient: Bool { blocked }

    /// Training or eval forward of a blocked `[N, C, H, W]` (C a multiple of 8).
    func blockedForward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, pixels, blocks) = (shape[0], shape[2] &* shape[3], channels / 8)
        let workers = context.workers(forWork: 3 &* shape.elementCount)
        lastForwardTrained = training
        if !training {
            for c in 0..<channels {
                mean[c] = runningMean.values[c]
                inverseStd[c] = 1 / (runningVariance.values[c] + epsilon).squareRoot()
            }
        }
        let (x, y) = (UnsafePointer(b.inputs[0]), b.output)
        mean.withUnsafeMutableBufferPointer { meanBuffer in
            inverseStd.withUnsafeMutableBufferPointer { stdBuffer in
                let (means, inverseStds) = (meanBuffer.baseAddress!, stdBuffer.baseAddress!)
                context.forEachIndex(blocks, workers: workers) { cb, _ in
                    let planes = BlockPlanes(block: cb, blocks: blocks, pixels: pixels)
                    if training { measure(x, planes, n: n, means + cb &* 8, inverseStds + cb &* 8, firstChannel: cb &* 8) }
                    let (s, t) = affine(block: cb, means, inverseStds)
                    for image in 0..<n {
                        let (from, to) = (x + planes.start(image), y + planes.start(image))
                        if let upper = fusedActivationUpper {
                            let top = SIMD8<Float>(repeating: upper)
                            for k in 0..<pixels {
                                let v = load8(from + k &* 8) * s + t
                                let positive = v .> 0
                                store8(v.replacing(with: top, where: .!(v .< top)).replacing(with: 0, where: .!positive),
                                       to + k &* 8)
                            }
                        } else {
                            for k in 0..<pixels { store8(load8(from + k &* 8) * s + t, to + k &* 8) }
                        }
                    }
                }
            }
        }
    }

    /// The normalization of block `cb` as `x * s + t`, computed the same way in forward and backward
    /// (the fused backward recomputes the activation's mask from it).
    @inline(__always)
    private func affine(block cb: Int, _ means: UnsafePointer<Float>, _ inverseStds: UnsafePointer<Float>)
        -> (s: SIMD8<Float>, t: SIMD8<Float>) {
        let s = load8(scale.values.baseAddress! + cb &* 8) * load8(inverseStds + cb &* 8)
        return (s, load8(bias.values.baseAddress! + cb &* 8) - load8(means + cb &* 8) * s)
    }

    /// Batch mean and variance of one block's eight channels (two passes), and the running update.
    private func measure(_ x: UnsafePointer<Float>, _ planes: BlockPlanes, n: Int, _ means: UnsafeMutablePointer<Float>,
                         _ inverseStds: UnsafeMutablePointer<Float>, firstChannel c0: Int) {
        var sum = SIMD8<Double>()
        for image in 0..<n { sum += SIMD8<Double>(laneSums(x + planes.start(image), pixels: planes.pixels)) }
        let count = Double(n &* planes.pixels)
        let mu = sum / count
        let shift = SIMD8<Float>(mu)
        var squares = SIMD8<Double>()
        for image in 0..<n {
            squares += SIMD8<Double>(laneSquares(x + planes.start(image), pixels: planes.pixels, shift: shift))
        }
        let variance = squares / count
        for l in 0..<8 {
            let c = c0 &+ l
            means[l] = Float(mu[l])
            inverseStds[l] = Float(1 / (variance[l] + Double(epsilon)).squareRoot())
            let unbiased = count > 1 ? variance[l] * count / (count - 1) : variance[l]
            runningMean.values[c] = (1 - momentum) * runningMean.values[c] + momentum * Float(mu[l])
            runningVariance.values[c] = (1 - momentum) * runningVariance.values[c] + momentum * Float(unbiased)
        }
    }

    /// Backward of a blocked `[N, C, H, W]`: per block, one pass for `dβ` and
    /// `dγ` and one adding `dx = γ/σ (dy - dβ/M - x̂ dγ/M)` into `dX` (without
    /// the batch terms after an eval forward).
    func blockedBackward(_ b: TrainingBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, pixels, blocks) = (shape[0], shape[2] &* shape[3], channels / 8)
        let workers = context.workers(forWork: 3 &* shape.elementCount)
        let batchStatistics = lastForwardTrained
        let (x, dY, dXBase) = (UnsafePointer(b.inputs[0]), UnsafePointer(b.outputGradient), b.inputGradients[0])
        let parameters = b.computesParameterGradients
        let assigns = b.assignsInputGradient
        mean.withUnsafeBufferPointer { meanBuffer in
            inverseStd.withUnsafeBufferPointer { stdBuffer in
                let (means, inverseStds) = (meanBuffer.baseAddress!, stdBuffer.baseAddress!)
                context.forEachIndex(blocks, workers: workers) { cb, _ in
                    let planes = BlockPlanes(block: cb, blocks: blocks, pixels: pixels)
                    let (mu, inverse) = (load8(means + cb &* 8), load8(inverseStds + cb &* 8))
                    let (s, t) = affine(block: cb, means, inverseStds)
                    let top = SIMD8<Float>(repeating: fusedActivationUpper ?? .infinity)
                    let fused = fusedActivationUpper != nil
                    var (sumDy, sumDyXhat) = (SIMD8<Double>(), SIMD8<Double>())
                    for image in 0..<n {
                        let (xs, gs) = (x + planes.start(image), dY + planes.start(image))
                        let (sum, dot) = fused ? laneSumAndDotMasked(gs, xs, pixels: pixels, shift: mu, s: s, t: t, top: top)
                                               : laneSumAndDot(gs, xs, pixels: pixels, shift: mu)
                        sumDy += SIMD8<Double>(sum)
                        sumDyXhat += SIMD8<Double>(dot) * SIMD8<Double>(inverse)
                    }
                    let (dBeta, dGamma) = (SIMD8<Float>(sumDy), SIMD8<Float>(sumDyXhat))
                    if parameters {
                        let (db, dg) = (bias.gradient.baseAddress! + cb &* 8, scale.gradient.baseAddress! + cb &* 8)
                        store8(load8(db) + dBeta, db)
                        store8(load8(dg) + dGamma, dg)
                    }
                    guard let dXBase else { return }
                    let gain = load8(scale.values.baseAddress! + cb &* 8) * inverse
                    let count = Float(n &* pixels)
                    let (meanDy, meanDyXhat) = batchStatistics ? (dBeta / count, dGamma / count)
                                                               : (SIMD8<Float>(), SIMD8<Float>())
                    for image in 0..<n {
                        let start = planes.start(image)
                        let (xs, gs, dX) = (x + start, dY + start, dXBase + start)
                        if fused {
                            for k in 0..<pixels {
                                let o = k &* 8
                                let v = load8(xs + o)
                                let g = activationGradient(load8(gs + o), v * s + t, top: top)
                                let d = gain * (g - meanDy - (v - mu) * inverse * meanDyXhat)
                                store8(assigns ? d : load8(dX + o) + d, dX + o)
                            }
                        } else {
                            for k in 0..<pixels {
                                let o = k &* 8
                                let xHat = (load8(xs + o) - mu) * inverse
                                let d = gain * (load8(gs + o) - meanDy - xHat * meanDyXhat)
                                store8(assigns ? d : load8(dX + o) + d, dX + o)
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

/// Per lane, `Σ x` over `pixels` vectors 8 floats apart (four accumulators).
@inline(__always)
private func laneSums(_ x: UnsafePointer<Float>, pixels: Int) -> SIMD8<Float> {
    var (a, b, c, d) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var k = 0
    while k &+ 4 <= pixels {
        let p = x + k &* 8
        a += load8(p); b += load8(p + 8); c += load8(p + 16); d += load8(p + 24)
        k &+= 4
    }
    while k < pixels { a += load8(x + k &* 8); k &+= 1 }
    return (a + b) + (c + d)
}

/// Per lane, `Σ (x - shift)²` over `pixels` vectors.
@inline(__always)
private func laneSquares(_ x: UnsafePointer<Float>, pixels: Int, shift: SIMD8<Float>) -> SIMD8<Float> {
    var (a, b, c, d) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var k = 0
    while k &+ 4 <= pixels {
        let p = x + k &* 8
        let (u, v, w, z) = (load8(p) - shift, load8(p + 8) - shift, load8(p + 16) - shift, load8(p + 24) - shift)
        a += u * u; b += v * v; c += w * w; d += z * z
        k &+= 4
    }
    while k < pixels {
        let u = load8(x + k &* 8) - shift
        a += u * u
        k &+= 1
    }
    return (a + b) + (c + d)
}

/// Per lane, `Σ dy` and `Σ dy (x - shift)` over `pixels` vectors.
@inline(__always)
private func laneSumAndDot(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>, pixels: Int,
                           shift: SIMD8<Float>) -> (sum: SIMD8<Float>, dot: SIMD8<Float>) {
    var (s0, s1, d0, d1) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var k = 0
    while k &+ 2 <= pixels {
        let o = k &* 8
        let (g0, g1) = (load8(dY + o), load8(dY + (o &+ 8)))
        s0 += g0; s1 += g1
        d0 += g0 * (load8(x + o) - shift); d1 += g1 * (load8(x + (o &+ 8)) - shift)
        k &+= 2
    }
    if k < pixels {
        let g = load8(dY + k &* 8)
        s0 += g
        d0 += g * (load8(x + k &* 8) - shift)
    }
    return (s0 + s1, d0 + d1)
}

/// `dY` where the fused activation passed its input `y` (`0 < y < top`, as
/// `accumulateWhere` decides for ReLU and ReLU6), else 0.
@inline(__always)
private func activationGradient(_ dY: SIMD8<Float>, _ y: SIMD8<Float>, top: SIMD8<Float>) -> SIMD8<Float> {
    dY.replacing(with: 0, where: (y .<= 0) .| (y .>= top))
}

/// `laneSumAndDot` of the activation-masked `dY`, the activation's input being `x * s + t`.
@inline(__always)
private func laneSumAndDotMasked(_ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>, pixels: Int, shift: SIMD8<Float>,
                                 s: SIMD8<Float>, t: SIMD8<Float>, top: SIMD8<Float>) -> (sum: SIMD8<Float>, dot: SIMD8<Float>) {
    var (s0, s1, d0, d1) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var k = 0
    while k &+ 2 <= pixels {
        let o = k &* 8
        let (x0, x1) = (load8(x + o), load8(x + (o &+ 8)))
        let g0 = activationGradient(load8(dY + o), x0 * s + t, top: top)
        let g1 = activationGradient(load8(dY + (o &+ 8)), x1 * s + t, top: top)
        s0 += g0; s1 += g1
        d0 += g0 * (x0 - shift); d1 += g1 * (x1 - shift)
        k &+= 2
    }
    if k < pixels {
        let x0 = load8(x + k &* 8)
        let g = activationGradient(load8(dY + k &* 8), x0 * s + t, top: top)
        s0 += g
        d0 += g * (x0 - shift)
    }
    return (s0 + s1, d0 + d1)
}
