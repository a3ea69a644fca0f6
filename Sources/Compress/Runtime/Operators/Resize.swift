/// Per-axis source pixels and weights of a resize, computed once per shape:
/// output index `o` along an axis reads `low[o]` (nearest: only it) and, in
/// bilinear mode, `high[o]` with weight `fraction[o]`.
struct ResizeTables {
    struct SourcePixels {
        var low: [Int]
        var high: [Int]
        var fraction: [Float]
    }

    let rows: SourcePixels, columns: SourcePixels
    let isNearest: Bool

    init(_ r: Resize2d, h: Int, w: Int, oh: Int, ow: Int) {
        let (scaleH, scaleW) = r.mappingScales(h: h, w: w)
        isNearest = r.mode == .nearest
        rows = Self.axis(r, input: h, output: oh, scale: scaleH)
        columns = Self.axis(r, input: w, output: ow, scale: scaleW)
    }

    private static func axis(_ r: Resize2d, input: Int, output: Int, scale: Float) -> SourcePixels {
        var a = SourcePixels(low: [], high: [], fraction: [])
        for o in 0..<output {
            let s = r.sourceCoordinate(o, inputLength: input, outputLength: output, scale: scale)
            if r.mode == .nearest {
                let i = r.nearestIndex(s, inputLength: input)
                a.low.append(i); a.high.append(i); a.fraction.append(0)
            } else {
                let (lo, hi, f) = r.linearNeighbours(s, inputLength: input)
                a.low.append(lo); a.high.append(hi); a.fraction.append(f)
            }
        }
        return a
    }

    /// Resizes `planes` planes of `h x w` at `x` into `oh x ow` planes at `y`.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Range<Int>, h: Int, w: Int) {
        let (oh, ow) = (rows.low.count, columns.low.count)
        rows.low.withUnsafeBufferPointer { rLow in rows.high.withUnsafeBufferPointer { rHigh in
        rows.fraction.withUnsafeBufferPointer { rFrac in columns.low.withUnsafeBufferPointer { cLow in
        columns.high.withUnsafeBufferPointer { cHigh in columns.fraction.withUnsafeBufferPointer { cFrac in
            for plane in planes {
                let src = x + plane &* h &* w, dst = y + plane &* oh &* ow
                for oy in 0..<oh {
                    let out = dst + oy &* ow
                    let top = src + rLow[oy] &* w
                    if isNearest {
                        for ox in 0..<ow { out[ox] = top[cLow[ox]] }
                        continue
                    }
                    let bottom = src + rHigh[oy] &* w
                    let fy = rFrac[oy]
                    for ox in 0..<ow {
                        let (l, r, fx) = (cLow[ox], cHigh[ox], cFrac[ox])
                        let upper = top[l] + fx * (top[r] - top[l])
                        let lower = bottom[l] + fx * (bottom[r] - bottom[l])
                        out[ox] = upper + fy * (lower - upper)
                    }
                }
            }
        } } } } } }
    }

    /// The adjoint of `forward`: adds each output gradient into the input pixels it read, with their weights.
    func backward(_ dY: UnsafePointer<Float>, _ dX: UnsafeMutablePointer<Float>, planes: Range<Int>, h: Int, w: Int) {
        let (oh, ow) = (rows.low.count, columns.low.count)
        rows.low.withUnsafeBufferPointer { rLow in rows.high.withUnsafeBufferPointer { rHigh in
        rows.fraction.withUnsafeBufferPointer { rFrac in columns.low.withUnsafeBufferPointer { cLow in
        columns.high.withUnsafeBufferPointer { cHigh in columns.fraction.withUnsafeBufferPointer { cFrac in
            for plane in planes {
                let grad = dY + plane &* oh &* ow, dst = dX + plane &* h &* w
                for oy in 0..<oh {
                    let g = grad + oy &* ow
                    let top = dst + rLow[oy] &* w
                    if isNearest {
                        for ox in 0..<ow { top[cLow[ox]] += g[ox] }
                        continue
                    }
                    let bottom = dst + rHigh[oy] &* w
                    let fy = rFrac[oy]
                    for ox in 0..<ow {
                        let (l, r, fx) = (cLow[ox], cHigh[ox], cFrac[ox])
                        let upper = g[ox] * (1 - fy), lower = g[ox] * fy
                        top[l] += upper * (1 - fx); top[r] += upper * fx
                        bottom[l] += lower * (1 - fx); bottom[r] += lower * fx
                    }
                }
            }
        } } } } } }
    }
}

/// Nearest or bilinear resize of NCHW planes (`Resize2d`), planes split over workers.
struct ResizeKernel: Kernel {
    let attributes: Resize2d

    func run(_ b: StepBinding, _ context: KernelContext) {
        let s = b.inputShapes[0]
        let (oh, ow) = (b.outputShape[2], b.outputShape[3])
        let tables = ResizeTables(attributes, h: s[2], w: s[3], oh: oh, ow: ow)
        let planes = s[0] &* s[1]
        let workers = context.workers(forWork: b.outputShape.elementCount &* (tables.isNearest ? 1 : 8))
        context.forEachPart(workers, workers: workers) { part, _ in
            tables.forward(b.inputs[0], b.output, planes: chunk(planes, parts: workers, part), h: s[2], w: s[3])
        }
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String { "resize-\(attributes.mode.rawValue)" }
}
