# Generates the explicit-register tile functions of Sources/SIMDKernels512/WideConv.swift (its
# AVX2 twin SIMDKernelsWide16 links the same file): `python3 scripts/gen-wide-tiles.py general 7 2`,
# `pointwise 8 2`, `flat 7 2`, `half 7` print one function each; the committed functions are its output with
# comments edited by hand.
import sys

def general(P, B):
    n = f"generalTiles{P}x{B}"
    L = []
    L.append(f"/// Pairs `p..<p + {B}` ({2*B} output blocks), {P} pixels per tile (the last tile repeats its")
    L.append(f"/// final pixel, writing the same values twice): {P*B} accumulators.")
    L.append("@inline(__always)")
    L.append(f"private func {n}(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,")
    L.append(f"{' ' * (len(n) + 14)}_ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {{")
    L.append("    let pairFilter = s.filterBlockCount &* 2")
    L.append("    let f0Start = filter + p &* pairFilter" + (", f1Start = f0Start + pairFilter" if B == 2 else ""))
    L.append("    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride")
    L.append("    let last = pixels.upperBound &- 1")
    L.append("    var q = pixels.lowerBound")
    L.append("    var cursor = PixelCursor(q, width: s.outputWidth)")
    L.append("    let lastBlock = s.inputBlocks &- 1")
    L.append("    let skipsZeroRows = wideSkipsZeroRows(s, pairs: " + str(B) + ")")
    L.append("    let tapRow = s.kernelWidth &* cs &* 16")
    L.append("    while q <= last {")
    L.append("        // A tile inside one output row skips the tap rows that read zero padding rows.")
    L.append(f"        let (kyLo, kyHi) = skipsZeroRows ? liveTapRows(s, row: cursor.oy, lastRow: min(q &+ {P - 1}, last) / s.outputWidth)")
    L.append("                                         : (0, s.kernelHeight)")
    for k in range(P - 1):
        L.append(f"        let o{k} = cursor.offsetThenAdvance(s, cs: cs, next: q &+ {k + 1}, last: last)")
    L.append(f"        let o{P-1} = cursor.offset(s, cs: cs)")
    L.append("        cursor.advance()")
    if B == 2:
        L.append("        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)")
    else:
        L.append("        let b0 = compressor_load16(bias + p &* 16)")
    for k in range(0, P, 4 if B == 2 else 7):
        chunk = range(k, min(P, k + (4 if B == 2 else 7)))
        L.append("        var " + ", ".join(f"a{kk}{j} = b{j}" for kk in chunk for j in range(B)))
    L.append("        var f0 = f0Start" + (", f1 = f1Start" if B == 2 else ""))
    L.append("        var block = x")
    L.append("        for cb in 0..<s.inputBlocks {")
    L.append("            // The padded channels of the last block are zero: skip them and their filter rows.")
    L.append("            let live = cb == lastBlock ? s.lastBlockChannels : cs")
    L.append("            let skipped = (cs &- live) &* 16")
    L.append("            f0 += kyLo &* tapRow" + ("; f1 += kyLo &* tapRow" if B == 2 else ""))
    L.append("            for ky in kyLo..<kyHi {")
    L.append("                for kx in 0..<s.kernelWidth {")
    L.append("                    let t = block + (ky &* rowStride &+ kx &* cs)")
    L.append("                    for ci in 0..<live {")
    if B == 2:
        L.append("                        let w0 = compressor_load16(f0), w1 = compressor_load16(f1)")
        L.append("                        f0 += 16; f1 += 16")
    else:
        L.append("                        let w0 = compressor_load16(f0)")
        L.append("                        f0 += 16")
    for k in range(P):
        if B == 2:
            L.append(f"                        {'var ' if k == 0 else ''}v = t[o{k} &+ ci]")
            L.append(f"                        a{k}0 = compressor_fma16(a{k}0, v, w0); a{k}1 = compressor_fma16(a{k}1, v, w1)")
        else:
            L.append(f"                        a{k}0 = compressor_fma16(a{k}0, t[o{k} &+ ci], w0)")
    L.append("                    }")
    L.append("                    f0 += skipped" + ("; f1 += skipped" if B == 2 else ""))
    L.append("                }")
    L.append("            }")
    L.append("            f0 += (s.kernelHeight &- kyHi) &* tapRow" + ("; f1 += (s.kernelHeight &- kyHi) &* tapRow" if B == 2 else ""))
    L.append("            block += blockStride")
    L.append("        }")
    L.append("        e.finish(a00, pair: p, pixel: q)" + ("; e.finish(a01, pair: p &+ 1, pixel: q)" if B == 2 else ""))
    for k in range(1, P):
        L.append(f"        e.finish(a{k}0, pair: p, pixel: min(q &+ {k}, last))" + (f"; e.finish(a{k}1, pair: p &+ 1, pixel: min(q &+ {k}, last))" if B == 2 else ""))
    L.append(f"        e.activate(pairs: p..<p &+ {B}, from: q, through: min(q &+ {P - 1}, last))")
    L.append(f"        q &+= {P}")
    L.append("    }")
    L.append("}")
    return "\n".join(L)

def pointwise(P, B):
    n = f"pointwiseTiles{P}x{B}"
    L = []
    L.append(f"/// Pairs `p..<p + {B}`, {P} pixels per tile over `pixels` (at least {P}): {P*B} accumulators. The last")
    L.append("/// tile ends at the range's end, overlapping the one before: its overlapped pixels are computed")
    L.append("/// again from the same inputs and written again with the same values.")
    L.append("@inline(__always)")
    L.append(f"private func {n}(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,")
    L.append(f"{' ' * (len(n) + 14)}_ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>) {{")
    L.append("    let pairFilter = s.filterBlockCount &* 2")
    L.append("    let f0Start = filter + p &* pairFilter" + (", f1Start = f0Start + pairFilter" if B == 2 else ""))
    L.append("    let blockStride = s.outputHeight &* s.outputWidth &* 8")
    L.append("    let lastBlock = s.inputBlocks &- 1")
    L.append(f"    let lastTile = pixels.upperBound &- {P}")
    L.append("    var q = pixels.lowerBound")
    L.append("    while true {")
    if B == 2:
        L.append("        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)")
    else:
        L.append("        let b0 = compressor_load16(bias + p &* 16)")
    step = 4 if B == 2 else 7
    for k in range(0, P, step):
        chunk = range(k, min(P, k + step))
        L.append("        var " + ", ".join(f"a{kk}{j} = b{j}" for kk in chunk for j in range(B)))
    L.append("        var f0 = f0Start" + (", f1 = f1Start" if B == 2 else ""))
    L.append("        var t = x + q &* 8")
    L.append("        for cb in 0..<s.inputBlocks {")
    L.append("            let live = cb == lastBlock ? s.lastBlockChannels : 8")
    L.append("            for ci in 0..<live {")
    if B == 2:
        L.append("                let w0 = compressor_load16(f0), w1 = compressor_load16(f1)")
        L.append("                f0 += 16; f1 += 16")
    else:
        L.append("                let w0 = compressor_load16(f0)")
        L.append("                f0 += 16")
    for k in range(P):
        idx = "ci" if k == 0 else f"{8*k} &+ ci"
        if B == 2:
            L.append(f"                {'var ' if k == 0 else ''}v = t[{idx}]")
            L.append(f"                a{k}0 = compressor_fma16(a{k}0, v, w0); a{k}1 = compressor_fma16(a{k}1, v, w1)")
        else:
            L.append(f"                a{k}0 = compressor_fma16(a{k}0, t[{idx}], w0)")
    L.append("            }")
    L.append("            let skipped = (8 &- live) &* 16")
    L.append("            f0 += skipped" + ("; f1 += skipped" if B == 2 else ""))
    L.append("            t += blockStride")
    L.append("        }")
    for k in range(P):
        qq = "q" if k == 0 else f"q &+ {k}"
        L.append(f"        e.finish(a{k}0, pair: p, pixel: {qq})" + (f"; e.finish(a{k}1, pair: p &+ 1, pixel: {qq})" if B == 2 else ""))
    L.append(f"        e.activate(pairs: p..<p &+ {B}, from: q, through: q &+ {P - 1})")
    L.append("        if q == lastTile { break }")
    L.append(f"        q = min(q &+ {P}, lastTile)")
    L.append("    }")
    L.append("}")
    return "\n".join(L)

def half(P):
    n = f"halfTiles{P}"
    L = []
    L.append(f"/// Output block `block` alone (one half of its pair's packed filter and bias), {P} pixels per")
    L.append(f"/// tile with 8-lane accumulators (the last tile repeats its final pixel).")
    L.append("@inline(__always)")
    L.append(f"private func {n}(_ s: BlockedConvShape, cs: Int, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,")
    L.append(f"{' ' * (len(n) + 14)}_ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ block: Int, _ pixels: Range<Int>) {{")
    L.append("    // Lanes 0-7 of pair block / 2 for an even block, lanes 8-15 for an odd one.")
    L.append("    let lane = block % 2 &* 8")
    L.append("    let f0Start = filter + (block / 2 &* s.filterBlockCount &* 2 &+ lane)")
    L.append("    let rowStride = s.paddedWidth &* cs, blockStride = s.paddedHeight &* rowStride")
    L.append("    let last = pixels.upperBound &- 1")
    L.append("    var q = pixels.lowerBound")
    L.append("    var cursor = PixelCursor(q, width: s.outputWidth)")
    L.append("    let lastBlock = s.inputBlocks &- 1")
    L.append("    while q <= last {")
    for k in range(P - 1):
        L.append(f"        let o{k} = cursor.offsetThenAdvance(s, cs: cs, next: q &+ {k + 1}, last: last)")
    L.append(f"        let o{P-1} = cursor.offset(s, cs: cs)")
    L.append("        cursor.advance()")
    L.append("        let b0 = compressor_load8(bias + (block / 2 &* 16 &+ lane))")
    L.append("        var " + ", ".join(f"a{k} = b0" for k in range(P)))
    L.append("        var f0 = f0Start")
    L.append("        var input = x")
    L.append("        for cb in 0..<s.inputBlocks {")
    L.append("            let live = cb == lastBlock ? s.lastBlockChannels : cs")
    L.append("            let skipped = (cs &- live) &* 16")
    L.append("            for ky in 0..<s.kernelHeight {")
    L.append("                for kx in 0..<s.kernelWidth {")
    L.append("                    let t = input + (ky &* rowStride &+ kx &* cs)")
    L.append("                    for ci in 0..<live {")
    L.append("                        let w0 = compressor_load8(f0)")
    L.append("                        f0 += 16")
    for k in range(P):
        L.append(f"                        a{k} = compressor_fma8(a{k}, t[o{k} &+ ci], w0)")
    L.append("                    }")
    L.append("                    f0 += skipped")
    L.append("                }")
    L.append("            }")
    L.append("            input += blockStride")
    L.append("        }")
    L.append("        e.finish(a0, block: block, pixel: q)")
    for k in range(1, P):
        L.append(f"        e.finish(a{k}, block: block, pixel: min(q &+ {k}, last))")
    L.append(f"        e.activate(pairs: block / 2..<block / 2 &+ 1, from: q, through: min(q &+ {P - 1}, last))")
    L.append(f"        q &+= {P}")
    L.append("    }")
    L.append("}")
    return "\n".join(L)

def flat(P, B):
    n = f"flatTiles{P}x{B}"
    L = []
    L.append(f"/// Pairs `p..<p + {B}` ({2*B} output blocks) of an image of one input block (fewer than 8 input")
    L.append(f"/// channels), {P} pixels per tile (the last tile repeats its final pixel): {P*B} accumulators. The")
    L.append("/// taps and channels run as one loop over `windowOffsets` (rows, columns, channels: the order")
    L.append("/// of `generalTiles`), without a loop per tap row and column.")
    L.append("@inline(__always)")
    L.append(f"private func {n}(_ s: BlockedConvShape, _ x: UnsafePointer<Float>, _ filter: UnsafePointer<Float>,")
    L.append(f"{' ' * (len(n) + 14)}_ bias: UnsafePointer<Float>, _ e: WideEpilogue, _ p: Int, _ pixels: Range<Int>,")
    L.append(f"{' ' * (len(n) + 14)}windowOffsets: UnsafePointer<Int>, entries: Int) {{")
    L.append("    let cs = s.channelsPerBlock")
    L.append("    let pairFilter = s.filterBlockCount &* 2")
    L.append("    let f0Start = filter + p &* pairFilter" + (", f1Start = f0Start + pairFilter" if B == 2 else ""))
    L.append("    let last = pixels.upperBound &- 1")
    L.append("    var q = pixels.lowerBound")
    L.append("    var cursor = PixelCursor(q, width: s.outputWidth)")
    L.append("    while q <= last {")
    for k in range(P - 1):
        L.append(f"        let t{k} = x + cursor.offsetThenAdvance(s, cs: cs, next: q &+ {k + 1}, last: last)")
    L.append(f"        let t{P-1} = x + cursor.offset(s, cs: cs)")
    L.append("        cursor.advance()")
    if B == 2:
        L.append("        let b0 = compressor_load16(bias + p &* 16), b1 = compressor_load16(bias + (p &+ 1) &* 16)")
    else:
        L.append("        let b0 = compressor_load16(bias + p &* 16)")
    step = 4 if B == 2 else 7
    for k in range(0, P, step):
        chunk = range(k, min(P, k + step))
        L.append("        var " + ", ".join(f"a{kk}_{j} = b{j}" for kk in chunk for j in range(B)))
    L.append("        var f0 = f0Start" + (", f1 = f1Start" if B == 2 else ""))
    L.append("        for j in 0..<entries {")
    L.append("            let d = windowOffsets[j]")
    if B == 2:
        L.append("            let w0 = compressor_load16(f0), w1 = compressor_load16(f1)")
        L.append("            f0 += 16; f1 += 16")
    else:
        L.append("            let w0 = compressor_load16(f0)")
        L.append("            f0 += 16")
    for k in range(P):
        if B == 2:
            L.append(f"            {'var ' if k == 0 else ''}v = t{k}[d]")
            L.append(f"            a{k}_0 = compressor_fma16(a{k}_0, v, w0); a{k}_1 = compressor_fma16(a{k}_1, v, w1)")
        else:
            L.append(f"            a{k}_0 = compressor_fma16(a{k}_0, t{k}[d], w0)")
    L.append("        }")
    for k in range(P):
        px = "q" if k == 0 else f"min(q &+ {k}, last)"
        L.append(f"        e.finish(a{k}_0, pair: p, pixel: {px})" + (f"; e.finish(a{k}_1, pair: p &+ 1, pixel: {px})" if B == 2 else ""))
    L.append(f"        e.activate(pairs: p..<p &+ {B}, from: q, through: min(q &+ {P - 1}, last))")
    L.append(f"        q &+= {P}")
    L.append("    }")
    L.append("}")
    return "\n".join(L)

kind, P = sys.argv[1], int(sys.argv[2])
B = int(sys.argv[3]) if len(sys.argv) > 3 else 1
print(general(P, B) if kind == "general" else pointwise(P, B) if kind == "pointwise" else flat(P, B) if kind == "flat" else half(P))
