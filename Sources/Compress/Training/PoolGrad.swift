/// Max or average pooling over NCHW planes, with backward. Max pooling
/// remembers, per output, the input pixel it took (the first maximum in
/// window order) and routes the gradient there; average pooling spreads each
/// output's gradient evenly over the taps it averaged (the divisor counts the
/// padding taps with `countIncludePad`). Planes are split over workers.
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

    /// The input taps of output `(oy, ox)`: valid row and column ranges, and the number
    /// of taps the average divides by.
    private struct Window {
        var rows: Range<Int>, columns: Range<Int>
        var divisor: Int
    }

    private func window(oy: Int, ox: Int, h: Int, w: Int) -> (Window, rowStart: Int, columnStart: Int) {
        let (ys, xs) = (oy &* pool.stride.h &- pool.padding.top, ox &* pool.stride.w &- pool.padding.left)
        let rows = validTapRange(start: ys, step: pool.dilation.h, taps: pool.kernel.h, limit: h)
        let columns = validTapRange(start: xs, step: pool.dilation.w, taps: pool.kernel.w, limit: w)
        let divisor: Int
        if countIncludePad {
            let paddedRows = validTapRange(start: ys, step: pool.dilation.h, taps: pool.kernel.h, limit: h &+ pool.padding.bottom).hi
            let paddedColumns = validTapRange(start: xs, step: pool.dilation.w, taps: pool.kernel.w, limit: w &+ pool.padding.right).hi
            divisor = paddedRows &* paddedColumns
        } else {
            divisor = (rows.hi &- rows.lo) &* (columns.hi &- columns.lo)
        }
        return (Window(rows: rows.lo..<rows.hi, columns: columns.lo..<columns.hi, divisor: divisor), ys, xs)
    }

    func forward(_ b: TrainingBinding, training: Bool, _ context: KernelContext) {
        let (planes, h, w) = (b.inputShapes[0][0] &* b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        if isMax && argmax.count != b.outputShape.elementCount {
            argmax = [Int32](repeating: -1, count: b.outputShape.elementCount)
        }
        let workers = context.workers(forWork: b.outputShape.elementCount &* pool.kernel.h &* pool.kernel.w)
        argmax.withUnsafeMutableBufferPointer { indices in
            let winners = indices.baseAddress
            forEachIndex(planes, workers: workers) { plane, _ in
                let x = b.inputs[0] + plane &* h &* w, y = b.output + plane &* oh &* ow
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let (win, ys, xs) = window(oy: oy, ox: ox, h: h, w: w)
                        let out = oy &* ow &+ ox
                        if isMax {
                            let (value, index) = maximum(x, win, ys: ys, xs: xs, w: w)
                            y[out] = value
                            winners![plane &* oh &* ow &+ out] = index
                        } else {
                            y[out] = average(x, win, ys: ys, xs: xs, w: w)
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    private func maximum(_ x: UnsafePointer<Float>, _ win: Window, ys: Int, xs: Int, w: Int) -> (Float, Int32) {
        var best = -Float.infinity, index: Int32 = -1
        for ky in win.rows {
            let iy = ys &+ ky &* pool.dilation.h
            for kx in win.columns {
                let offset = iy &* w &+ xs &+ kx &* pool.dilation.w
                if x[offset] > best || index < 0 { best = x[offset]; index = Int32(truncatingIfNeeded: offset) }
            }
        }
        return (best, index)
    }

    @inline(__always)
    private func average(_ x: UnsafePointer<Float>, _ win: Window, ys: Int, xs: Int, w: Int) -> Float {
        guard win.divisor > 0 else { return 0 }
        var sum: Float = 0
        for ky in win.rows {
            let iy = ys &+ ky &* pool.dilation.h
            for kx in win.columns { sum += x[iy &* w &+ xs &+ kx &* pool.dilation.w] }
        }
        return sum / Float(win.divisor)
    }

    func backward(_ b: TrainingBinding, _ context: KernelContext) {
        guard let dXBase = b.inputGradients[0] else { return }
        let (planes, h, w) = (b.inputShapes[0][0] &* b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let workers = context.workers(forWork: b.outputShape.elementCount &* pool.kernel.h &* pool.kernel.w)
        argmax.withUnsafeBufferPointer { indices in
            let winners = indices.baseAddress
            forEachIndex(planes, workers: workers) { plane, _ in
                let dX = dXBase + plane &* h &* w, dY = b.outputGradient + plane &* oh &* ow
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let out = oy &* ow &+ ox
                        if isMax {
                            let index = Int(winners![plane &* oh &* ow &+ out])
                            if index >= 0 { dX[index] += dY[out] }
                            continue
                        }
                        let (win, ys, xs) = window(oy: oy, ox: ox, h: h, w: w)
                        guard win.divisor > 0 else { continue }
                        let share = dY[out] / Float(win.divisor)
                        for ky in win.rows {
                            let iy = ys &+ ky &* pool.dilation.h
                            for kx in win.columns { dX[iy &* w &+ xs &+ kx &* pool.dilation.w] += share }
                        }
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
