/// Max or average pooling over NCHW planes, with backward. Max pooling
/// remembers, per output, the input pixel it took (the first maximum in
/// window order) and routes the gradient there; average pooling spreads each
/// output's gradient evenly over the taps it averaged (the divisor counts the
/// padding taps with `countIncludePad`). Window bounds are computed once per
/// output row and column; planes are split over workers. Plain NCHW or
/// NCHW8c (`blocked`: the same loops with pixels 8 floats apart).
final class PoolTrainingKernel: TrainingKernel {
    let pool: Pool2d
    let isMax: Bool
    let countIncludePad: Bool
    /// Per output of the last forward (max pooling): the winning pixel's offset in its plane, -1 if none.
    private var argmax: [Int32] = []
    /// Per output of the last blocked 2x2 forward, in the output's storage order: the winning tap (0...3).
    var winningTaps: [Float] = []
    /// Whether input and output are NCHW8c (set by the planner): a plane's pixels are then 8 floats apart.
    fileprivate(set) var blocked = false

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
        if blocked && isMax && isPlainHalving(g) {
            return blockedMaxPoolHalving(b, h: g.h, w: g.w, oh: g.oh, ow: g.ow, workers: workers(b, context), context)
        }
        if isMax && argmax.count != b.outputShape.elementCount {
            argmax = [Int32](repeating: -1, count: b.outputShape.elementCount)
        }
        let (rowStep, columnStep) = (pool.dilation.h &* g.w, pool.dilation.w)
        let step = blocked ? 8 : 1
        argmax.withUnsafeMutableBufferPointer { indices in
            let winners = isMax ? indices.baseAddress : nil
            context.forEachIndex(g.planes, workers: workers(b, context)) { plane, _ in
                let x = b.inputs[0] + planeLayout(plane, pixels: g.h &* g.w, blocked: blocked).start
                let y = b.output + planeLayout(plane, pixels: g.oh &* g.ow, blocked: blocked).start
                let planeWinners = winners.map { $0 + plane &* g.oh &* g.ow }
                if let planeWinners, isPlainHalving(g) {  // plain only: the blocked one returned above
                    maxPoolHalving(x, y, planeWinners, g)
                    return
                }
                forEachWindow(g) { out, first, rows, columns, divisor in
                    if let planeWinners {
                        var best = -Float.infinity, index = -1
                        for ky in 0..<rows {
                            for kx in 0..<columns {
                                let offset = first &+ ky &* rowStep &+ kx &* columnStep
                                if x[offset &* step] > best || index < 0 { best = x[offset &* step]; index = offset }
                            }
                        }
                        y[out &* step] = best
                        planeWinners[out] = Int32(truncatingIfNeeded: index)
                    } else {
                        var sum: Float = 0
                        for ky in 0..<rows {
                            for kx in 0..<columns { sum += x[(first &+ ky &* rowStep &+ kx &* columnStep) &* step] }
                        }
                        y[out &* step] = divisor > 0 ? sum / Float(divisor) : 0
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

    /// Max pooling of one plain plane over 2x2 windows with stride 2, with the winners' offsets.
    private func maxPoolHalving(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                _ winners: UnsafeMutablePointer<Int32>, _ g: Geometry) {
        for oy in 0..<g.oh {
            let top = 2 &* oy &* g.w
            for ox in 0..<g.ow {
                let first = top &+ 2 &* ox
                let (a, b, c, d) = (x[first], x[first &+ 1], x[first &+ g.w], x[first &+ g.w &+ 1])
                var (index, best) = (first, a)
                if b > best { (index, best) = (first &+ 1, b) }
                if c > best { (index, best) = (first &+ g.w, c) }
                if d > best { (index, best) = (first &+ g.w &+ 1, d) }
                y[oy &* g.ow &+ ox] = best
                winners[oy &* g.ow &+ ox] = Int32(truncatingIfNeeded: index)
            }
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dXBase = b.inputGradients[0] else { return }
        let g = geometry(b)
        if blocked && isMax && isPlainHalving(g) {
            return blockedMaxPoolHalvingBackward(b, dX: dXBase, h: g.h, w: g.w, oh: g.oh, ow: g.ow,
                                                 workers: workers(b, context), context)
        }
        let (rowStep, columnStep) = (pool.dilation.h &* g.w, pool.dilation.w)
        let step = blocked ? 8 : 1
        argmax.withUnsafeBufferPointer { indices in
            let winners = isMax ? indices.baseAddress : nil
            context.forEachIndex(g.planes, workers: workers(b, context)) { plane, _ in
                let dX = dXBase + planeLayout(plane, pixels: g.h &* g.w, blocked: blocked).start
                let dY = b.outputGradient + planeLayout(plane, pixels: g.oh &* g.ow, blocked: blocked).start
                if let winners {
                    let planeWinners = winners + plane &* g.oh &* g.ow
                    for out in 0..<(g.oh &* g.ow) where planeWinners[out] >= 0 {
                        dX[Int(planeWinners[out]) &* step] += dY[out &* step]
                    }
                    return
                }
                forEachWindow(g) { out, first, rows, columns, divisor in
                    guard divisor > 0 else { return }
                    let share = dY[out &* step] / Float(divisor)
                    for ky in 0..<rows {
                        for kx in 0..<columns { dX[(first &+ ky &* rowStep &+ kx &* columnStep) &* step] += share }
                    }
                }
            }
        }
    }
}

extension PoolTrainingKernel: BlockedLayoutTrainingKernel {
    var layoutRule: TrainingLayoutRule { .uniform }
    func useLayouts(inputs: [Bool], output: Bool) { blocked = output }
}

/// Mean over every axis after the channel axis; the backward spreads each
/// channel's gradient evenly over its plane. The input may be NCHW8c
/// (`blockedInput`, set by the planner); the output `[N, C, 1, 1]` is plain.
final class GlobalAveragePoolTrainingKernel: TrainingKernel, BlockedLayoutTrainingKernel {
    private var blockedInput = false

    var layoutRule: TrainingLayoutRule { .plainOutput }
    func useLayouts(inputs: [Bool], output: Bool) { blockedInput = inputs[0] }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (planes, inner) = (shape[0] &* shape[1], shape[2...].reduce(1, *))
        let scale = 1 / Float(inner)
        for p in 0..<planes {
            let (start, step) = planeLayout(p, pixels: inner, blocked: blockedInput)
            let x = b.inputs[0] + start
            var sum: Float = 0
            for i in 0..<inner { sum += x[i &* step] }
            b.output[p] = sum * scale
        }
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dXBase = b.inputGradients[0] else { return }
        let shape = b.inputShapes[0]
        let (planes, inner) = (shape[0] &* shape[1], shape[2...].reduce(1, *))
        let scale = 1 / Float(inner)
        for p in 0..<planes {
            let (start, step) = planeLayout(p, pixels: inner, blocked: blockedInput)
            let (dX, share) = (dXBase + start, b.outputGradient[p] * scale)
            for i in 0..<inner { dX[i &* step] += share }
        }
    }
}

/// Where plane `plane` (`n * C + c`) of a map of `pixels` pixels starts, and how
/// far apart its pixels are: 1 in plain NCHW, 8 in NCHW8c.
@inline(__always)
func planeLayout(_ plane: Int, pixels: Int, blocked: Bool) -> (start: Int, step: Int) {
    blocked ? ((plane >> 3) &* pixels &* 8 &+ plane & 7, 8) : (plane &* pixels, 1)
}
