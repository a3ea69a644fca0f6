import Foundation

/// Number formats the reports and the CLI share, so all show the same text.
public enum ReportFormat {
    /// 1234567 → "1,234,567".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Bytes in a human unit, as `compressor info` prints them: "1.64 MB".
    public static func bytes(_ n: Int) -> String {
        if n < 1000 { return "\(n) B" }
        if n < 1_000_000 { return String(format: "%.1f kB", Double(n) / 1e3) }
        return String(format: "%.2f MB", Double(n) / 1e6)
    }

    /// A fraction as a percentage with two decimals: 0.8982 → "89.82%".
    static func percent(_ fraction: Double?) -> String {
        fraction.map { String(format: "%.2f%%", $0 * 100) } ?? "-"
    }

    /// A change of a fraction in percentage points, signed: -0.0012 → "-0.12 pp".
    static func points(_ change: Double?) -> String {
        change.map { String(format: "%+.2f pp", $0 * 100) } ?? "-"
    }

    /// A ratio: 12.345 → "12.35×".
    static func ratio(_ r: Double) -> String { String(format: "%.2f×", r) }

    /// Milliseconds with three significant decimals.
    static func ms(_ v: Double) -> String { String(format: "%.3f", v) }

    /// Bits per weight with two decimals, "-" when undefined.
    static func bits(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "-" }

    /// A whole number of images per second.
    static func rate(_ v: Double) -> String { grouped(Int(v.rounded())) }

    /// A shape as "20x1x5x5".
    static func shape(_ s: [Int]) -> String { s.map(String.init).joined(separator: "x") }

    /// Sparsity as a percentage with one decimal.
    static func sparsity(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }

    /// Rank, "-" for a dense layer.
    static func rank(_ r: Int?) -> String { r.map(String.init) ?? "-" }
}

/// The rows both document formats show, computed once.
enum ReportTables {
    /// Summary header: one row per model; validation columns when it was measured.
    static func summaryHeader(_ settings: ReportMeasurementSettings) -> [String] {
        ["model", "file bytes", "ratio", "params", "non-zeros", "bits/weight", "MACs/image",
         "ms per batch (median / p90)", "images/s"]
            + (settings.validationImages != nil ? ["validation top-1", "Δ validation top-1"] : [])
            + ["top-1", "Δ top-1", "top-5"]
    }

    /// One summary row for `m`, latency at the chart batch and threads.
    static func summaryRow(_ m: ModelReport, settings: ReportMeasurementSettings) -> [String] {
        let l = m.latency(batch: settings.chartBatch, threads: settings.chartThreads)
        return [m.label, ReportFormat.grouped(m.fileBytes), ReportFormat.ratio(m.compressionRatio),
                ReportFormat.grouped(m.parameters), ReportFormat.grouped(m.nonZeroParameters),
                ReportFormat.bits(m.bitsPerWeight), ReportFormat.grouped(m.macsPerImage),
                l.map { "\(ReportFormat.ms($0.medianMs)) / \(ReportFormat.ms($0.p90Ms))" } ?? "-",
                l.map { ReportFormat.rate($0.imagesPerSecond) } ?? "-"]
            + (settings.validationImages != nil
                ? [ReportFormat.percent(m.validationAccuracy?.top1), ReportFormat.points(m.validationAccuracy?.top1Change)]
                : [])
            + [ReportFormat.percent(m.accuracy?.top1), ReportFormat.points(m.accuracy?.top1Change),
               ReportFormat.percent(m.accuracy?.top5)]
    }

    static let latencyHeader = ["model", "batch", "threads", "median ms", "p90 ms", "min ms", "max ms",
                                "images/s", "runs"]

    /// Every latency measurement of `m`.
    static func latencyRows(_ m: ModelReport) -> [[String]] {
        m.latency.map { r in
            [m.label, String(r.batch), String(r.threads), ReportFormat.ms(r.medianMs), ReportFormat.ms(r.p90Ms),
             ReportFormat.ms(r.minMs), ReportFormat.ms(r.maxMs), ReportFormat.rate(r.imagesPerSecond),
             String(r.repetitions)]
        }
    }

    /// Layer header of `m`; columns without Huffman coding when its file allows it.
    static func layerHeader(_ m: ModelReport) -> [String] {
        ["layer", "op", "weight shape", "encoding", "computes in", "params", "sparsity", "rank", "MACs", "bytes", "weight bytes",
         "bits/weight", "bits/non-zero"]
            + (allowsHuffman(m) ? ["without Huffman", "bytes", "bits/weight", "bits/non-zero"] : [])
    }

    /// One row per layer of `m`.
    static func layerRows(_ m: ModelReport) -> [[String]] {
        let huffman = allowsHuffman(m)
        return m.layers.map { l in
            [l.name, l.op, ReportFormat.shape(l.weightShape), l.encoding, l.computes, ReportFormat.grouped(l.parameters),
             ReportFormat.sparsity(l.sparsity), ReportFormat.rank(l.rank), ReportFormat.grouped(l.macs),
             ReportFormat.grouped(l.bytes), ReportFormat.grouped(l.weightBytes), ReportFormat.bits(l.bitsPerWeight),
             ReportFormat.bits(l.bitsPerNonZero)]
                + (huffman ? [l.withoutHuffman?.encoding ?? "-", l.withoutHuffman.map { ReportFormat.grouped($0.bytes) } ?? "-",
                              ReportFormat.bits(l.withoutHuffman?.bitsPerWeight),
                              ReportFormat.bits(l.withoutHuffman?.bitsPerNonZero)] : [])
        }
    }

    /// Whether `m`'s file allows Huffman coding (its layers then say what they would take without it).
    static func allowsHuffman(_ m: ModelReport) -> Bool { m.layers.contains { $0.withoutHuffman != nil } }

    /// Measurement settings as (name, value) pairs.
    static func settingsRows(_ s: ReportMeasurementSettings) -> [(String, String)] {
        let m = s.machine
        return [
            ("batch sizes", s.batches.map(String.init).joined(separator: ", ")),
            ("threads", s.threads.map(String.init).joined(separator: ", ")),
            ("warm-up runs", String(s.warmupRuns)),
            ("timed runs", "at least \(s.minRepetitions) and \(String(format: "%g", s.minSeconds)) s, "
                + "at most \(s.maxRepetitions)"),
            ("summary and chart latency", "batch \(s.chartBatch), \(s.chartThreads) thread(s)"),
            ("test images", s.testImages.map(ReportFormat.grouped) ?? "none (no test data)"),
            ("validation images", s.validationImages.map(ReportFormat.grouped) ?? "none (not asked for)"),
            ("accuracy threads", String(s.evaluationThreads)),
            ("cores", String(m.cores)),
            ("CPU", m.cpu ?? "unknown"),
            ("AVX2+FMA kernels", m.simdKernels ? "yes" : "no"),
            ("memory", String(format: "%.1f GB", Double(m.memoryBytes) / 1e9)),
            ("OS", m.operatingSystem),
        ]
    }
}
