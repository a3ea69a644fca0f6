import Testing
import Compress
@testable import SIMDKernels

/// The pointwise (1x1, stride 1) tiles of `blockedConvolve` against a plain
/// loop and against the general tiles, on seeded random NCHW8c images, with the
/// work split over output blocks and pixels as the runtime's workers split it.
/// Tolerance `1e-4 * (1 + max|expected|)`.
@Suite(.enabled(if: cpuSupportsBlockedKernels, "needs AVX2 and FMA"))
struct BlockedPointwiseTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var inChannels: Int, outChannels: Int, pixels: Int
        var testDescription: String { "1x1 \(inChannels) -> \(outChannels), \(pixels) pixels" }
    }

    /// Channel counts 1-48 (partial blocks, 1 to 6 output blocks: triples, pairs, a
    /// single block and, for a last block of at most 4 channels, the packed half
    /// tiles), pixel counts below, at and above a tile, not multiples of 4 or 6.
    static let cases: [Case] = [
        Case(inChannels: 1, outChannels: 12, pixels: 7), Case(inChannels: 5, outChannels: 13, pixels: 25),
        Case(inChannels: 12, outChannels: 12, pixels: 49), Case(inChannels: 13, outChannels: 37, pixels: 23),
        Case(inChannels: 20, outChannels: 20, pixels: 3), Case(inChannels: 20, outChannels: 5, pixels: 17),
        Case(inChannels: 37, outChannels: 48, pixels: 49), Case(inChannels: 48, outChannels: 37, pixels: 5),
        Case(inChannels: 48, outChannels: 48, pixels: 196), Case(inChannels: 12, outChannels: 32, pixels: 6),
        Case(inChannels: 64, outChannels: 20, pixels: 4), Case(inChannels: 16, outChannels: 1, pixels: 9),
        // A last block of at most 4 channels after 2 and 4 full blocks (the packed half tiles).
        Case(inChannels: 24, outChannels: 36, pixels: 29), Case(inChannels: 9, outChannels: 18, pixels: 2),
    ]

    /// `clamp(W x + b + residual)` for real output channels, NCHW8c, by a plain loop.
    static func reference(_ x: [Float], _ w: [Float], _ b: [Float], _ r: [Float]?, c: Int, o: Int, p: Int,
                          _ clamp: BlockedClamp) -> [Float] {
        var y = [Float](repeating: 0, count: (o + 7) / 8 * 8 * p)
        for oc in 0..<o {
            for q in 0..<p {
                var sum = Double(b[oc])
                for ic in 0..<c { sum += Double(w[oc * c + ic]) * Double(x[(ic / 8 * p + q) * 8 + ic % 8]) }
                let at = (oc / 8 * p + q) * 8 + oc % 8
                var v = Float(sum) + (r?[at] ?? 0)
                v = min(max(v, clamp.lower), clamp.upper)
                y[at] = v
            }
        }
        return y
    }

    @Test(arguments: cases, [false, true])
    func pointwiseMatchesPlainLoop(_ k: Case, _ withResidual: Bool) {
        let (c, o, p) = (k.inChannels, k.outChannels, k.pixels)
        let (ib, ob) = ((c + 7) / 8, (o + 7) / 8)
        var rng = SeededGenerator(seed: UInt64(c * 1000 + o * 10 + p))
        var x = [Float](repeating: 0, count: ib * p * 8)
        for cb in 0..<ib { for q in 0..<p { for i in 0..<8 where cb * 8 + i < c { x[(cb * p + q) * 8 + i] = rng.nextGaussian() } } }
        let w = (0..<o * c).map { _ in rng.nextGaussian() * 0.3 }
        var b = [Float](repeating: 0, count: ob * 8)
        for i in 0..<o { b[i] = rng.nextGaussian() }
        let r: [Float]? = withResidual ? (0..<ob * 8 * p).map { _ in rng.nextGaussian() } : nil
        let filter = w.withUnsafeBufferPointer {
            packBlockedFilter($0.baseAddress!, outChannels: o, inChannels: c, kernelHeight: 1, kernelWidth: 1,
                              channelsPerBlock: 8)
        }
        let s = BlockedConvShape(inputBlocks: ib, channelsPerBlock: 8, paddedHeight: 1, paddedWidth: p,
                                 kernelHeight: 1, kernelWidth: 1, strideHeight: 1, strideWidth: 1,
                                 outputBlocks: ob, outputHeight: 1, outputWidth: p, lastBlockChannels: c - (ib - 1) * 8,
                                 lastOutputChannels: o - (ob - 1) * 8)
        #expect(pointwiseApplies(s))
        for clamp in [BlockedClamp.none, .relu, .relu6] {
            let expected = Self.reference(x, w, b, r, c: c, o: o, p: p, clamp)
            let scale = expected.reduce(0) { max($0, abs($1)) }
            // Whole image; blocks split in two; pixels split in three (as workers split a batch-1 conv).
            let splits: [[(Range<Int>, Range<Int>)]] = [
                [(0..<ob, 0..<p)],
                [(0..<ob / 2, 0..<p), (ob / 2..<ob, 0..<p)],
                [(0..<ob, 0..<p / 3), (0..<ob, p / 3..<2 * p / 3), (0..<ob, 2 * p / 3..<p)],
            ]
            for (general, parts) in [false, true].flatMap({ g in splits.map { (g, $0) } }) {
                var y = [Float](repeating: .nan, count: ob * 8 * p)
                let residual = r ?? []
                x.withUnsafeBufferPointer { xp in filter.withUnsafeBufferPointer { fp in b.withUnsafeBufferPointer { bp in
                    residual.withUnsafeBufferPointer { rb in y.withUnsafeMutableBufferPointer { yp in
                        let rp = withResidual ? rb.baseAddress! : nil
                        for (blocks, pixels) in parts where !blocks.isEmpty && !pixels.isEmpty {
                            let run = general ? generalTiles : blockedConvolve
                            run(s, xp.baseAddress!, fp.baseAddress!, bp.baseAddress!, rp, yp.baseAddress!, clamp,
                                blocks, pixels)
                        }
                    } }
                } } }
                var worst: Float = 0
                for oc in 0..<o {
                    for q in 0..<p {
                        let at = (oc / 8 * p + q) * 8 + oc % 8
                        worst = max(worst, abs(y[at] - expected[at]).isNaN ? .infinity : abs(y[at] - expected[at]))
                    }
                }
                #expect(worst <= 1e-4 * (1 + scale), "general \(general), \(parts.count) parts, clamp \(clamp.lower)...\(clamp.upper): max error \(worst)")
            }
        }
    }
}
