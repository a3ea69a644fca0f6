/// Max or average pooling over NCHW planes. Window bounds are clipped to the
/// input once per output row and column, so the inner loops test nothing.
struct PoolKernel: Kernel {
    enum Reduction { case max, average(countIncludePad: Bool) }

    let pool: Pool2d
    let reduction: Reduction

    func run(_ b: StepBinding, _ context: KernelContext) {
        let (n, c, h, w) = (b.inputShapes[0][0], b.inputShapes[0][1], b.inputShapes[0][2], b.inputShapes[0][3])
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        // Per output column: first valid tap, end of valid taps, end of taps inside the padding.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * ow) { columns in
            let cols = columns.baseAddress!
            for ox in 0..<ow {
                let start = ox &* pool.stride.w &- pool.padding.left
                let (lo, hi) = validTapRange(start: start, step: pool.dilation.w, taps: pool.kernel.w, limit: w)
                let padded = validTapRange(start: start, step: pool.dilation.w, taps: pool.kernel.w,
                                           limit: w &+ pool.padding.right).hi
                (cols[3 &* ox], cols[3 &* ox &+ 1], cols[3 &* ox &+ 2]) = (lo, hi, padded)
            }
            let work = n &* c &* oh &* ow &* pool.kernel.h &* pool.kernel.w
            context.forEachPart(n * c, workers: context.workers(forWork: work)) { plane, _ in
                poolPlane(b.inputs[0] + plane &* h &* w, h: h, w: w, b.output + plane &* oh &* ow, oh: oh, ow: ow, cols)
            }
        }
    }

    private func poolPlane(_ x: UnsafeMutablePointer<Float>, h: Int, w: Int, _ y: UnsafeMutablePointer<Float>,
                           oh: Int, ow: Int, _ cols: UnsafePointer<Int>) {
        for oy in 0..<oh {
            let yStart = oy &* pool.stride.h &- pool.padding.top
            let rows = validTapRange(start: yStart, step: pool.dilation.h, taps: pool.kernel.h, limit: h)
            let origin = x + (yStart &* w &- pool.padding.left)
            switch reduction {
            case .max where isPlain2x2 && rows.lo == 0 && rows.hi == 2:
                max2x2Row(origin, w: w, y + oy &* ow, ow: ow, cols)
            case .max:
                maxRow(origin, w: w, rows: rows, y + oy &* ow, ow: ow, cols)
            case .average(let countIncludePad):
                let paddedRows = countIncludePad
                    ? validTapRange(start: yStart, step: pool.dilation.h, taps: pool.kernel.h, limit: h &+ pool.padding.bottom).hi
                    : nil
                averageRow(origin, w: w, rows: rows, paddedRows: paddedRows, y + oy &* ow, ow: ow, cols)
            }
        }
    }

    /// Kernel 2x2, stride 2, no dilation: the LeNet/VGG pool, worth a loop without bounds.
    private var isPlain2x2: Bool {
        pool.kernel == .square(2) && pool.stride == .square(2) && pool.dilation == .square(1)
    }

    /// `max2x2Row` keeps to columns whose window lies inside the input; `maxRow` finishes the rest.
    private func max2x2Row(_ origin: UnsafeMutablePointer<Float>, w: Int, _ y: UnsafeMutablePointer<Float>, ow: Int,
                           _ cols: UnsafePointer<Int>) {
        var full = 0
        while full < ow && cols[3 &* full] == 0 && cols[3 &* full &+ 1] == 2 { full &+= 1 }
        let (top, bottom) = (origin, origin + w)
        for ox in 0..<full {
            let i = 2 &* ox
            let a = top[i] > top[i &+ 1] ? top[i] : top[i &+ 1]
            let b = bottom[i] > bottom[i &+ 1] ? bottom[i] : bottom[i &+ 1]
            y[ox] = a > b ? a : b
        }
        if full < ow { maxRow(origin + 2 &* full, w: w, rows: (0, 2), y + full, ow: ow &- full, cols + 3 &* full) }
    }

    /// One output row of max pooling; `origin` is where the window of output column 0 starts.
    private func maxRow(_ origin: UnsafeMutablePointer<Float>, w: Int, rows: (lo: Int, hi: Int),
                        _ y: UnsafeMutablePointer<Float>, ow: Int, _ cols: UnsafePointer<Int>) {
        let (dh, dw, sw) = (pool.dilation.h &* w, pool.dilation.w, pool.stride.w)
        for ox in 0..<ow {
            let (lo, hi) = (cols[3 &* ox], cols[3 &* ox &+ 1])
            let start = origin + ox &* sw
            var best = -Float.infinity
            for ky in rows.lo..<rows.hi {
                let row = start + ky &* dh
                for kx in lo..<hi { let v = row[kx &* dw]; best = v > best ? v : best }
            }
            y[ox] = best
        }
    }

    /// One output row of average pooling; `paddedRows` is set when the divisor counts padding.
    private func averageRow(_ origin: UnsafeMutablePointer<Float>, w: Int, rows: (lo: Int, hi: Int), paddedRows: Int?,
                            _ y: UnsafeMutablePointer<Float>, ow: Int, _ cols: UnsafePointer<Int>) {
        let (dh, dw, sw) = (pool.dilation.h &* w, pool.dilation.w, pool.stride.w)
        for ox in 0..<ow {
            let (lo, hi) = (cols[3 &* ox], cols[3 &* ox &+ 1])
            let start = origin + ox &* sw
            var sum: Float = 0
            for ky in rows.lo..<rows.hi {
                let row = start + ky &* dh
                for kx in lo..<hi { sum += row[kx &* dw] }
            }
            let count = paddedRows.map { $0 &* cols[3 &* ox &+ 2] } ?? (rows.hi &- rows.lo) &* (hi &- lo)
            y[ox] = count == 0 ? 0 : sum / Float(count)
        }
    }
}

/// Mean over every position of each `[N, C]` plane.
struct GlobalAveragePoolKernel: Kernel {
    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let planes = shape[0] * shape[1]
        let length = shape[2...].reduce(1, *)
        let x = b.inputs[0], y = b.output
        let scale = 1 / Float(length)
        for p in 0..<planes {
            let src = x + p &* length
            var sum: Float = 0
            for i in 0..<length { sum += src[i] }
            y[p] = sum * scale
        }
    }
}
