/// Max or average pooling over NCHW planes, with backward. Max pooling
/// remembers, per output, the input pixel it took (the first maximum in
/// window order) and routes the gradient there; average pooling spreads each
/// output's gradient evenly over the taps it averaged (the divisor counts the
/// padding taps with `countIncludePad`). Window bounds are computed once per
/// output row and column; planes are split over workers.
final class PoolTrainingKernel: TrainingKernel {
    let pool: Pool2d
    let isMax: Bool
    let countIncludePad: Bool
    /// Per output of the last forward (max pooling): the winning pixel's offset in its plane, -1 if none.
    private var argmax: [Int32] = []

    init(pool: Pool2d, isMax: Bool, countIncludePad: Bool = false) {
        self.pool = pool
        self.isMax = isMax
        self.countIncludePad = countIncludePad
    }

    /// The windows along one axis: per output index, the first input index the
    /// window reads (`start`, may be in the padding), its valid taps `lo..<hi`,
    /// and the number of taps inside the padded input.
    private struct AxisWindows {
        var start: [Int] = [], lo: [Int] = [], hi: [Int] = [], padded: [Int] = []

        init(outputs: Int, input: Int, kernel: Int, stride: Int, padBefore: Int, padAfter: Int, dilation: Int) {
            for o in 0..<outputs {
                let s = o &* stride &- padBefore
                let (l, h) = validTapRange(start: s, step: dilation, taps: kernel, limit: input)
                start.append(s); lo.append(l); hi.append(h)
                padded.append(validTapRange(start: s, step: dilation, taps: kernel, limit: input &+ padAfter).hi)
            }
        }
    }

    private struct Geometry {
        let h: Int, w: Int, oh: Int, ow: Int, planes: Int
        let rows: AxisWindows, columns: AxisWindows
    }

    private func geometry(_ b: TrainingBinding) -> Geometry {
        let (h, w, oh, ow) = (b.inputShapes[0][2], b.inputShapes[0][3], b.outputShape[2], b.outputShape[3])
        return Geometry(h: h, w: w, oh: oh, ow: ow, planes: b.inputShapes[0][0] &* b.inputShapes[0][1],
                        rows: AxisWindows(outputs: oh, input: h, kernel: pool.kernel.h, stride: pool.stride.h,
                                          padBefore: pool.padding.top, padAfter: pool.padding.bottom, dilation: pool.dilation.h),
                        columns: AxisWindows(outputs: ow, input: w, kernel: pool.kernel.w, stride: pool.stride.w,
                                             padBefore: pool.padding.left, padAfter: pool.padding.right, dilation: pool.dilation.w))
    }

    /// Calls `body(output, firstTapOffset, rowTaps, columnTaps, divisor)` for every output of a plane;
    /// tap `(ky, kx)` is at `firstTapOffset + ky * dilation.h * w + kx * dilation.w`.
    @inline(__always)
    private func forEachWindow(_ g: Geometry, _ body: (Int, Int, Int, Int, Int) -> Void) {
        for oy in 0..<g.oh {
            let (rLo, rHi) = (g.rows.lo[oy], g.rows.hi[oy])
            let rowStart = (g.rows.start[oy] &+ rLo &* pool.dilation.h) &* g.w
            for ox in 0..<g.ow {
                let (cLo, cHi) = (g.columns.lo[ox], g.columns.hi[ox])
                let divisor = countIncludePad ? g.rows.padded[oy] &* g.columns.padded[ox] : (rHi &- rLo) &* (cHi &- cLo)
                body(oy &* g.ow &+ ox, rowStart &+ g.columns.start[ox] &+ cLo &* pool.dilation.w, rHi &- rLo, cHi &- cLo, divisor)
            }
        }
    }

    private func workers(_ b: TrainingBinding, _ context: KernelContext) -> Int {
        context.workers(forWork: b.outputShape.elementCount &* pool.kernel.h &* pool.kernel.w)
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let g = geometry(b)
        if isMax && argmax.count != b.outputShape.elementCount {
            argmax = [Int32](repeating: -1, count: b.outputShape.elementCount)
        }
        let (rowStep, columnStep) = (pool.dilation.h &* g.w, pool.dilation.w)
        argmax.withUnsafeMutableBufferPointer { indices in
            let winners = isMax ? indices.baseAddress : nil
            context.forEachIndex(g.planes, workers: workers(b, context)) { plane, _ in
                let x = b.inputs[0] + plane &* g.h &* g.w, y = b.output + plane &* g.oh &* g.ow
                let planeWinners = winners.map { $0 + plane &* g.oh &* g.ow }
                if let planeWinners, isPlainHalving(g) {
                    maxPoolHalving(x, y, planeWinners, g)
                    return
                }
                forEachWindow(g) { out, first, rows, columns, divisor in
                    if let planeWinners {
                        var best = -Float.infinity, index = -1
                        for ky in 0..<rows {
                            for kx in 0..<columns {
                                let offset = first &+ ky &* rowStep &+ kx &* columnStep
                                if x[offset] > best || index < 0 { best = x[offset]; index = offset }
                            }
                        }
                        y[out] = best
                        planeWinners[out] = Int32(truncatingIfNeeded: index)
                    } else {
                        var sum: Float = 0
                        for ky in 0..<rows {
                            for kx in 0..<columns { sum += x[first &+ ky &* rowStep &+ kx &* columnStep] }
                        }
                        y[out] = divisor > 0 ? sum / Float(divisor) : 0
                    }
                }
            }
        }
    }

    /// A 2x2 window with stride 2, no padding or dilation, every window inside the input: the common case.
    private func isPlainHalving(_ g: Geometry) -> Bool {
        pool.kernel == .square(2) && pool.stride == .square(2) && pool.padding.isZero && pool.dilation == .square(1)
            && 2 &* g.oh <= g.h && 2 &* g.ow <= g.w
    }

    /// Max pooling of one plane over 2x2 windows with stride 2, with the winners' offsets.
    private func maxPoolHalving(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                _ winners: UnsafeMutablePointer<Int32>, _ g: Geometry) {
        for oy in 0..<g.oh {
            let top = 2 &* oy &* g.w
            for ox in 0..<g.ow {
                let first = top &+ 2 &* ox
                var (index, best) = (first, x[first])
                if x[first &+ 1] > best { (index, best) = (first &+ 1, x[first &+ 1]) }
                if x[first &+ g.w] > best { (index, best) = (first &+ g.w, x[first &+ g.w]) }
                if x[first &+ g.w &+ 1] > best { (index, best) = (first &+ g.w &+ 1, x[first &+ g.w &+ 1]) }
                y[oy &* g.ow &+ ox] = best
                winners[oy &* g.ow &+ ox] = Int32(truncatingIfNeeded: index)
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dXBase = b.inputGradients[0] else { return }
        let g = geometry(b)
        let (rowStep, columnStep) = (pool.dilation.h &* g.w, pool.dilation.w)
        argmax.withUnsafeBufferPointer { indices in
            let winners = isMax ? indices.baseAddress : nil
            context.forEachIndex(g.planes, workers: workers(b, context)) { plane, _ in
                let dX = dXBase + plane &* g.h &* g.w, dY = b.outputGradient + plane &* g.oh &* g.ow
                if let winners {
                    let planeWinners = winners + plane &* g.oh &* g.ow
                    for out in 0..<(g.oh &* g.ow) where planeWinners[out] >= 0 { dX[Int(planeWinners[out])] += dY[out] }
                    return
                }
                forEachWindow(g) { out, first, rows, columns, divisor in
                    guard divisor > 0 else { return }
                    let share = dY[out] / Float(divisor)
                    for ky in 0..<rows {
                        for kx in 0..<columns { dX[first &+ ky &* rowStep &+ kx &* columnStep] += share }
                    }
                }
            }
        }
    }
}

/// Mean over every axis after the channel axis; the backward spreads each
/// channel's gradient evenly over its plane.
final class GlobalAveragePoolTrainingKernel: TrainingKernel {
    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (planes, inner) = (shape[0] &* shape[1], shape[2...].reduce(1, *))
        let scale = 1 / Float(inner)
        for p in 0..<planes {
            let x = b.inputs[0] + p &* inner
            var sum: Float = 0
            for i in 0..<inner { sum += x[i] }
            b.output[p] = sum * scale
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dXBase = b.inputGradients[0] else { return }
        let shape = b.inputShapes[0]
        let (planes, inner) = (shape[0] &* shape[1], shape[2...].reduce(1, *))
        let scale = 1 / Float(inner)
        for p in 0..<planes {
            let (dX, share) = (dXBase + p &* inner, b.outputGradient[p] * scale)
            for i in 0..<inner { dX[i] += share }
        }
    }
}
