import SIMDKernels

// 2x2 stride-2 max pooling on NCHW8c values, eight channels per vector: the
// forward keeps, per output lane, which of the four taps won (the first
// maximum in window order, as the plain loop), and the backward adds each
// output's gradient to that tap with four masked vector adds.

extension PoolTrainingKernel {
    /// Forward of a blocked 2x2 stride-2 max pool (`isPlainHalving`).
    func blockedMaxPoolHalving(_ b: TrainingBinding, h: Int, w: Int, oh: Int, ow: Int, workers: Int,
                               _ context: KernelContext) {
        let count = b.outputShape.elementCount
        if winningTaps.count != count { winningTaps = [Float](repeating: 0, count: count) }
        let blocks = b.outputShape[0] &* b.outputShape[1] / 8
        let (x, y) = (UnsafePointer(b.inputs[0]), b.output)
        let (one, two, three) = (SIMD8<Float>(repeating: 1), SIMD8<Float>(repeating: 2), SIMD8<Float>(repeating: 3))
        winningTaps.withUnsafeMutableBufferPointer { tapBuffer in
            let taps = tapBuffer.baseAddress!
            context.forEachIndex(blocks, workers: workers) { block, _ in
                let (input, output) = (x + block &* h &* w &* 8, block &* oh &* ow &* 8)
                for oy in 0..<oh {
                    let top = input + 2 &* oy &* w &* 8
                    for ox in 0..<ow {
                        let p = top + ox &* 16
                        var best = load8(p), tap = SIMD8<Float>()
                        let right = load8(p + 8), below = load8(p + w &* 8), diagonal = load8(p + (w &* 8 &+ 8))
                        var m = right .> best
                        best.replace(with: right, where: m); tap.replace(with: one, where: m)
                        m = below .> best
                        best.replace(with: below, where: m); tap.replace(with: two, where: m)
                        m = diagonal .> best
                        best.replace(with: diagonal, where: m); tap.replace(with: three, where: m)
                        let o = output &+ (oy &* ow &+ ox) &* 8
                        store8(best, y + o)
                        store8(tap, taps + o)
                    }
                }
            }
        }
    }

    /// Backward of ``blockedMaxPoolHalving(_:h:w:oh:ow:workers:_:)``: `dX[winner] += dY`.
    func blockedMaxPoolHalvingBackward(_ b: TrainingBinding, dX: UnsafeMutablePointer<Float>, h: Int, w: Int,
                                       oh: Int, ow: Int, workers: Int, _ context: KernelContext) {
        let blocks = b.outputShape[0] &* b.outputShape[1] / 8
        let dY = UnsafePointer(b.outputGradient)
        let (one, two, three) = (SIMD8<Float>(repeating: 1), SIMD8<Float>(repeating: 2), SIMD8<Float>(repeating: 3))
        winningTaps.withUnsafeBufferPointer { tapBuffer in
            let taps = tapBuffer.baseAddress!
            context.forEachIndex(blocks, workers: workers) { block, _ in
                let (input, output) = (dX + block &* h &* w &* 8, block &* oh &* ow &* 8)
                for oy in 0..<oh {
                    let top = input + 2 &* oy &* w &* 8
                    for ox in 0..<ow {
                        let o = output &+ (oy &* ow &+ ox) &* 8
                        let (g, tap) = (load8(dY + o), load8(taps + o))
                        let p = top + ox &* 16
                        let (q, r, s) = (p + 8, p + w &* 8, p + (w &* 8 &+ 8))
                        store8(load8(p) + g.replacing(with: 0, where: tap .!= 0), p)
                        store8(load8(q) + g.replacing(with: 0, where: tap .!= one), q)
                        store8(load8(r) + g.replacing(with: 0, where: tap .!= two), r)
                        store8(load8(s) + g.replacing(with: 0, where: tap .!= three), s)
                    }
                }
            }
        }
    }
}
