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
            forEachIndex(n * c, threads: context.threads) { plane in
                poolPlane(b.inputs[0] + plane &* h &* w, h: h, w: w, b.output + plane &* oh &* ow, oh: oh, ow: ow, cols)
            }
        }
    }

    private func poolPlane(_ x: UnsafeMutablePointer<Float>, h: Int, w: Int, _ y: UnsafeMutablePointer<Float>,
                           oh: Int, ow: Int, _ cols: UnsafePointer<Int>) {
        let (dh, dw) = (pool.dilation.h, pool.dilation.w)
        for oy in 0..<oh {
            let yStart = oy &* pool.stride.h &- pool.padding.top
            let (kyLo, kyHi) = validTapRange(start: yStart, step: dh, taps: pool.kernel.h, limit: h)
            let kyPadded = validTapRange(start: yStart, step: dh, taps: pool.kernel.h, limit: h &+ pool.padding.bottom).hi
            for ox in 0..<ow {
                let (kxLo, kxHi) = (cols[3 &* ox], cols[3 &* ox &+ 1])
                let origin = x + (yStart &* w &+ ox &* pool.stride.w &- pool.padding.left)
                switch reduction {
                case .max:
                    var best = -Float.infinity
                    for ky in kyLo..<kyHi {
                        let row = origin + ky &* dh &* w
                        for kx in kxLo..<kxHi { let v = row[kx &* dw]; if v > best { best = v } }
                    }
                    y[oy &* ow &+ ox] = best
                case .average(let countIncludePad):
                    var sum: Float = 0
                    for ky in kyLo..<kyHi {
                        let row = origin + ky &* dh &* w
                        for kx in kxLo..<kxHi { sum += row[kx &* dw] }
                    }
                    let count = countIncludePad ? kyPadded &* cols[3 &* ox &+ 2] : (kyHi &- kyLo) &* (kxHi &- kxLo)
                    y[oy &* ow &+ ox] = count == 0 ? 0 : sum / Float(count)
                }
            }
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
