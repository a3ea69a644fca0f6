// Layout conversions and the cheap ops that work on NCHW8c directly. One
// image at a time: plain images are `[C][H*W]`, blocked ones
// `[ceil(C/8)][H*W][8]` with padded channels 0.

/// Plain `[C][plane]` to blocked `[ceil(C/8)][plane][8]`, padded channels set to 0.
public func plainToBlocked(_ x: UnsafePointer<Float>, channels: Int, plane: Int, _ y: UnsafeMutablePointer<Float>) {
    let blocks = (channels + 7) / 8
    for cb in 0..<blocks {
        let dst = y + cb &* plane &* 8
        let live = min(8, channels &- cb &* 8)
        if live < 8 { dst.update(repeating: 0, count: plane &* 8) }
        for ci in 0..<live {
            let src = x + (cb &* 8 &+ ci) &* plane
            for i in 0..<plane { dst[i &* 8 &+ ci] = src[i] }
        }
    }
}

/// Blocked `[ceil(C/8)][plane][8]` to plain `[C][plane]`.
public func blockedToPlain(_ x: UnsafePointer<Float>, channels: Int, plane: Int, _ y: UnsafeMutablePointer<Float>) {
    for c in 0..<channels {
        let offset: Int = (c / 8) &* plane &* 8 &+ c % 8
        let src = x + offset
        let dst = y + c &* plane
        for i in 0..<plane { dst[i] = src[i &* 8] }
    }
}

/// Copies one image into the zero-padded input of `blockedConvolve`:
/// `[blocks][h + top + bottom][w + left + right][cs]`.
/// `blocked` says whether `x` is NCHW8c (then `cs` is 8) or plain NCHW.
/// With `rows`, only those padded rows of every block are written (the rest of
/// `y` is left as it was): what one band of output rows reads, so a conv split
/// into bands pads each band's rows on the thread that computes it.
public func padImage(_ x: UnsafePointer<Float>, blocked: Bool, channels: Int, h: Int, w: Int,
                     top: Int, left: Int, bottom: Int, right: Int, channelsPerBlock cs: Int,
                     rows: Range<Int>? = nil, _ y: UnsafeMutablePointer<Float>) {
    let (hp, wp) = (h &+ top &+ bottom, w &+ left &+ right)
    let blocks = (channels + cs - 1) / cs
    let rows = rows.map { max($0.lowerBound, 0)..<min($0.upperBound, hp) } ?? 0..<hp
    guard !rows.isEmpty else { return }
    // Image rows inside `rows`.
    let (first, end) = (max(rows.lowerBound &- top, 0), min(rows.upperBound &- top, h))
    if blocked {
        // Every float of the rows is written once: halo zeros around copied rows.
        for cb in 0..<blocks {
            let plane = y + cb &* hp &* wp &* 8
            let head = first < end ? (first &+ top) &* wp &+ left : rows.upperBound &* wp
            (plane + rows.lowerBound &* wp &* 8).update(repeating: 0, count: (head &- rows.lowerBound &* wp) &* 8)
            guard first < end else { continue }
            for row in first..<end {
                let dst = plane + ((row &+ top) &* wp &+ left) &* 8
                dst.update(from: x + (cb &* h &+ row) &* w &* 8, count: w &* 8)
                let gap = row &+ 1 < end ? right &+ left : right &+ (rows.upperBound &- top &- end) &* wp
                (dst + w &* 8).update(repeating: 0, count: gap &* 8)
            }
        }
        return
    }
    for cb in 0..<blocks {
        (y + (cb &* hp &+ rows.lowerBound) &* wp &* cs).update(repeating: 0, count: rows.count &* wp &* cs)
    }
    guard first < end else { return }
    // Row by row, every channel of a block into one padded row (which stays in L1):
    // channel by channel over whole planes, each strided store missed the cache
    // (6% of a resnet20 training step, in this loop's stores).
    for cb in 0..<blocks {
        let live = min(cs, channels &- cb &* cs)
        for row in first..<end {
            let offset: Int = ((cb &* hp &+ row &+ top) &* wp &+ left) &* cs
            let dst = y + offset
            for ci in 0..<live {
                let src = x + ((cb &* cs &+ ci) &* h &+ row) &* w
                for i in 0..<w { dst[i &* cs &+ ci] = src[i] }
            }
        }
    }
}

/// Max or average pooling of one blocked image, 8 channels per vector.
/// Window geometry as in the reference: `kernel`, `stride`, `padding`
/// (top, left, bottom, right), `dilation`; an average divides by the valid
/// taps, or by the taps inside the padded input when `countIncludePad`.
/// Per output row, the columns whose window lies inside the row run without
/// bounds (`poolInteriorRow`); the edge columns clip their taps. Both take the
/// taps in the same order (rows, then columns), so every value is the same.
public func blockedPool(_ x: UnsafePointer<Float>, blocks: Int, h: Int, w: Int,
                        _ y: UnsafeMutablePointer<Float>, oh: Int, ow: Int,
                        kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int, Int, Int), dilation: (Int, Int),
                        average: Bool, countIncludePad: Bool) {
    // Interior columns: ox * stride - left >= 0 and ox * stride - left + (kw - 1) * dw < w.
    let span = (kernel.1 &- 1) &* dilation.1
    let interiorStart = min(ow, (padding.1 &+ stride.1 &- 1) / stride.1)
    let room = w &- 1 &- span &+ padding.1
    let interiorEnd = room < 0 ? interiorStart : max(interiorStart, min(ow, room / stride.1 &+ 1))
    for cb in 0..<blocks {
        let src = x + cb &* h &* w &* 8
        let dst = y + cb &* oh &* ow &* 8
        for oy in 0..<oh {
            let ys = oy &* stride.0 &- padding.0
            let (rlo, rhi) = tapRange(ys, dilation.0, kernel.0, h)
            let rowsInPad = tapRange(ys, dilation.0, kernel.0, h &+ padding.2).hi
            let out = dst + oy &* ow &* 8
            for ox in 0..<ow {
                if ox == interiorStart && interiorStart < interiorEnd {
                    let count = countIncludePad ? rowsInPad &* kernel.1 : (rhi &- rlo) &* kernel.1
                    poolInteriorRow(src + (ys &* w &+ ox &* stride.1 &- padding.1) &* 8, out + ox &* 8,
                                    count: interiorEnd &- interiorStart, rows: rlo..<rhi, rowStep: dilation.0 &* w &* 8,
                                    taps: kernel.1, tapStep: dilation.1 &* 8, step: stride.1 &* 8,
                                    average: average, divisor: count)
                }
                if ox >= interiorStart && ox < interiorEnd { continue }
                let xs = ox &* stride.1 &- padding.1
                let (clo, chi) = tapRange(xs, dilation.1, kernel.1, w)
                var acc = SIMD8<Float>(repeating: average ? 0 : -.infinity)
                for ky in rlo..<rhi {
                    let row = src + (ys &+ ky &* dilation.0) &* w &* 8
                    for kx in clo..<chi {
                        let v = UnsafeRawPointer(row + (xs &+ kx &* dilation.1) &* 8).loadUnaligned(as: SIMD8<Float>.self)
                        if average { acc += v } else { acc = acc.replacing(with: v, where: v .> acc) }
                    }
                }
                if average {
                    let count = countIncludePad
                        ? rowsInPad &* tapRange(xs, dilation.1, kernel.1, w &+ padding.3).hi
                        : (rhi &- rlo) &* (chi &- clo)
                    acc = count == 0 ? SIMD8<Float>() : acc / Float(count)
                }
                UnsafeMutableRawPointer(out + ox &* 8).storeBytes(of: acc, as: SIMD8<Float>.self)
            }
        }
    }
}

/// `count` output pixels of one row whose windows lie inside the input row span:
/// `window` is the first pixel's top-left tap (row `ys`, which may be outside the
/// image: only `rows` are read), `step` the floats between two pixels' windows.
@inline(__always)
private func poolInteriorRow(_ window: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int,
                             rows: Range<Int>, rowStep: Int, taps: Int, tapStep: Int, step: Int,
                             average: Bool, divisor: Int) {
    if !average && taps == 3 && tapStep == 8 {
        maxRow3(window, out, count: count, rows: rows, rowStep: rowStep, step: step)
        return
    }
    var at = window
    for i in 0..<count {
        var acc = SIMD8<Float>(repeating: average ? 0 : -.infinity)
        for ky in rows {
            let row = at + ky &* rowStep
            for kx in 0..<taps {
                let v = UnsafeRawPointer(row + kx &* tapStep).loadUnaligned(as: SIMD8<Float>.self)
                if average { acc += v } else { acc = acc.replacing(with: v, where: v .> acc) }
            }
        }
        if average { acc = divisor == 0 ? SIMD8<Float>() : acc / Float(divisor) }
        UnsafeMutableRawPointer(out + i &* 8).storeBytes(of: acc, as: SIMD8<Float>.self)
        at += step
    }
}

/// Max over 3 adjacent columns of `rows`, `count` pixels of one row (the common
/// 3x3 max pooling), in the general path's tap order.
@inline(never)
private func maxRow3(_ window: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int,
                     rows: Range<Int>, rowStep: Int, step: Int) {
    var at = window
    for i in 0..<count {
        var acc = SIMD8<Float>(repeating: -.infinity)
        for ky in rows {
            let row = at + ky &* rowStep
            let v0 = load8(row), v1 = load8(row + 8), v2 = load8(row + 16)
            acc = acc.replacing(with: v0, where: v0 .> acc)
            acc = acc.replacing(with: v1, where: v1 .> acc)
            acc = acc.replacing(with: v2, where: v2 .> acc)
        }
        store8(acc, out + i &* 8)
        at += step
    }
}

/// Taps `k` in `0..<taps` with `0 <= start + k * step < limit`, as `lo..<hi`.
@inline(__always)
private func tapRange(_ start: Int, _ step: Int, _ taps: Int, _ limit: Int) -> (lo: Int, hi: Int) {
    let lo = start >= 0 ? 0 : (-start &+ step &- 1) / step
    let room = limit &- start
    let hi = room <= 0 ? 0 : min(taps, (room &+ step &- 1) / step)
    return (min(lo, taps), max(hi, min(lo, taps)))
}

/// Mean over the plane of each channel of one blocked image, written plain (`channels` floats).
public func blockedGlobalAveragePool(_ x: UnsafePointer<Float>, channels: Int, plane: Int,
                                     _ y: UnsafeMutablePointer<Float>) {
    let scale = 1 / Float(plane)
    for cb in 0..<(channels + 7) / 8 {
        var p = x + cb &* plane &* 8
        var (s0, s1) = (SIMD8<Float>(), SIMD8<Float>())
        var i = 0
        while i &+ 1 < plane {
            s0 += UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
            s1 += UnsafeRawPointer(p + 8).loadUnaligned(as: SIMD8<Float>.self)
            p += 16; i &+= 2
        }
        if i < plane { s0 += UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        let mean = (s0 + s1) * scale
        for ci in 0..<min(8, channels &- cb &* 8) { y[cb &* 8 &+ ci] = mean[ci] }
    }
}

/// `y = clamp(a + b)` over `count` floats (a multiple of 8).
public func blockedAdd(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                       count: Int, clamp: BlockedClamp) {
    var i = 0
    while i < count {
        let u = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
        let v = u + UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: clamp.apply(v), as: SIMD8<Float>.self)
        i &+= 8
    }
}

/// `y = clamp(x)` over `count` floats (a multiple of 8): an activation on a blocked value.
public func blockedClamp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, clamp: BlockedClamp) {
    var i = 0
    while i < count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: clamp.apply(v), as: SIMD8<Float>.self)
        i &+= 8
    }
}
