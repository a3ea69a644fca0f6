import Testing
import SIMDKernels

/// `blockedPool` (interior columns without bounds, edge columns clipped) against a
/// plain per-channel loop on seeded random images: max and average pooling give
/// the same bits, since both take the taps in the same order (rows, then columns).
@Suite struct BlockedPoolTests {
    struct PoolCase: CustomStringConvertible {
        let label: String
        let channels: Int, h: Int, w: Int
        let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int, Int, Int), dilation: (Int, Int)
        var description: String { label }
    }

    static let cases: [PoolCase] = [
        PoolCase(label: "3x3 stride 2 pad 1 (resnet stem), even map", channels: 16, h: 14, w: 14,
                 kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), dilation: (1, 1)),
        PoolCase(label: "3x3 stride 2 pad 1, odd map", channels: 8, h: 13, w: 11,
                 kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), dilation: (1, 1)),
        PoolCase(label: "3x3 stride 1 pad 1", channels: 8, h: 6, w: 9,
                 kernel: (3, 3), stride: (1, 1), padding: (1, 1, 1, 1), dilation: (1, 1)),
        PoolCase(label: "3x3 stride 2 no padding", channels: 24, h: 9, w: 10,
                 kernel: (3, 3), stride: (2, 2), padding: (0, 0, 0, 0), dilation: (1, 1)),
        PoolCase(label: "2x2 stride 2", channels: 8, h: 8, w: 7,
                 kernel: (2, 2), stride: (2, 2), padding: (0, 0, 0, 0), dilation: (1, 1)),
        PoolCase(label: "3x3 asymmetric padding (0, 2, 2, 1)", channels: 8, h: 7, w: 8,
                 kernel: (3, 3), stride: (2, 1), padding: (0, 2, 2, 1), dilation: (1, 1)),
        PoolCase(label: "3x3 dilation 2 pad 2", channels: 8, h: 9, w: 9,
                 kernel: (3, 3), stride: (1, 1), padding: (2, 2, 2, 2), dilation: (2, 2)),
        PoolCase(label: "5x3 stride (3, 2) pad (2, 1)", channels: 8, h: 11, w: 12,
                 kernel: (5, 3), stride: (3, 2), padding: (2, 1, 2, 1), dilation: (1, 1)),
        PoolCase(label: "3x3 pad 1 on a 2x2 map (no interior column)", channels: 8, h: 2, w: 2,
                 kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), dilation: (1, 1)),
        PoolCase(label: "3x3 on a 1-wide map, pad 1", channels: 8, h: 5, w: 1,
                 kernel: (3, 3), stride: (1, 1), padding: (1, 1, 1, 1), dilation: (1, 1)),
    ]

    @Test(arguments: cases, [false, true])
    func maxPoolMatchesPlainLoop(_ c: PoolCase, _ withNaN: Bool) {
        check(c, average: false, countIncludePad: false, withNaN: withNaN)
    }

    @Test(arguments: cases, [false, true])
    func averagePoolMatchesPlainLoop(_ c: PoolCase, _ countIncludePad: Bool) {
        check(c, average: true, countIncludePad: countIncludePad, withNaN: false)
    }

    func check(_ c: PoolCase, average: Bool, countIncludePad: Bool, withNaN: Bool) {
        let oh = (c.h + c.padding.0 + c.padding.2 - (c.kernel.0 - 1) * c.dilation.0 - 1) / c.stride.0 + 1
        let ow = (c.w + c.padding.1 + c.padding.3 - (c.kernel.1 - 1) * c.dilation.1 - 1) / c.stride.1 + 1
        let blocks = (c.channels + 7) / 8
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(c.h * 131 + c.w)
        var x = (0..<blocks * c.h * c.w * 8).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int(state >> 40) % 2001 - 1000) / 250
        }
        // A NaN makes the order of the max comparisons visible.
        if withNaN { x[(c.h / 2 * c.w + c.w / 2) * 8 + 3] = .nan; x[5] = .nan }
        var y = [Float](repeating: -7, count: blocks * oh * ow * 8)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                blockedPool(xp.baseAddress!, blocks: blocks, h: c.h, w: c.w, yp.baseAddress!, oh: oh, ow: ow,
                            kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation,
                            average: average, countIncludePad: countIncludePad)
            }
        }
        var mismatches = 0
        for cb in 0..<blocks {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for lane in 0..<8 {
                        var acc: Float = average ? 0 : -.infinity
                        var valid = 0, inPad = 0
                        for ky in 0..<c.kernel.0 {
                            for kx in 0..<c.kernel.1 {
                                let iy = oy * c.stride.0 - c.padding.0 + ky * c.dilation.0
                                let ix = ox * c.stride.1 - c.padding.1 + kx * c.dilation.1
                                if iy < c.h + c.padding.2 && ix < c.w + c.padding.3 { inPad += 1 }
                                guard iy >= 0 && iy < c.h && ix >= 0 && ix < c.w else { continue }
                                valid += 1
                                let v = x[((cb * c.h + iy) * c.w + ix) * 8 + lane]
                                if average { acc += v } else if v > acc { acc = v }
                            }
                        }
                        if average {
                            let count = countIncludePad ? inPad : valid
                            acc = count == 0 ? 0 : acc / Float(count)
                        }
                        let got = y[((cb * oh + oy) * ow + ox) * 8 + lane]
                        if got.bitPattern != acc.bitPattern && !(got.isNaN && acc.isNaN) { mismatches += 1 }
                    }
                }
            }
        }
        #expect(mismatches == 0, "\(c.label): \(mismatches) of \(y.count) outputs differ")
    }
}
