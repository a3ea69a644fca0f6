import Foundation

/// Renders a `ComparisonReport` as one self-contained HTML page: inline CSS,
/// inline SVG charts, no scripts and no network access.
public enum HTMLReport {
    /// The whole page.
    public static func render(_ report: ComparisonReport) -> String {
        let sections = [
            header(report),
            section("Summary", table(ReportTables.summaryHeader(report.settings),
                                     report.models.map { ReportTables.summaryRow($0, settings: report.settings) })),
            section("Accuracy per model", figure(accuracyPerModelChart(report))),
            section("Size, speed and accuracy", "<div class=\"charts\">\(tradeOffCharts(report))</div>"),
            section("Latency", table(ReportTables.latencyHeader, report.models.flatMap(ReportTables.latencyRows))),
            section("Layers", "<div class=\"charts\">\(layerCharts(report))</div>" + layerTables(report)),
            report.sensitivity?.htmlSection() ?? "",
            section("Measurement settings", table(["setting", "value"],
                                                  ReportTables.settingsRows(report.settings).map { [$0.0, $0.1] },
                                                  alignNumbers: false)),
            section("Definitions", definitions()),
        ]
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Model comparison</title>
        <style>\(style)</style>
        </head>
        <body>
        \(sections.filter { !$0.isEmpty }.joined(separator: "\n"))
        </body>
        </html>

        """
    }

    static func header(_ report: ComparisonReport) -> String {
        let baseline = report.baseline.map { "baseline <strong>\(e($0.label))</strong> (<code>\(e($0.path))</code>)" } ?? ""
        return "<header><h1>Model comparison</h1><p>\(report.models.count) model(s), \(baseline); measured "
            + "\(e(report.generatedAt)) by \(e(report.generator)). Ratios and accuracy changes are relative to the "
            + "baseline; definitions are at the end.</p></header>"
    }

    static func section(_ title: String, _ content: String) -> String {
        "<section><h2>\(e(title))</h2>\n\(content)\n</section>"
    }

    // MARK: - Charts

    /// File bytes vs top-1 and latency vs top-1, each model a point, the Pareto front marked.
    static func tradeOffCharts(_ report: ComparisonReport) -> String {
        let s = report.settings, fronts = report.paretoFronts
        let rated = report.models.enumerated().filter { $0.element.accuracy != nil }
        let sizePoints = rated.map { i, m in
            ChartPoint(label: m.label, x: Double(m.fileBytes), y: m.accuracy!.top1, color: SVGCharts.color(i),
                       onFront: fronts.sizeVsAccuracy.contains(m.label))
        }
        let latencyPoints = rated.compactMap { i, m in
            m.latency(batch: s.chartBatch, threads: s.chartThreads).map {
                ChartPoint(label: m.label, x: $0.medianMs, y: m.accuracy!.top1, color: SVGCharts.color(i),
                           onFront: fronts.latencyVsAccuracy.contains(m.label))
            }
        }
        let sizes = sizePoints.map(\.x)
        let logX = (sizes.max() ?? 1) > 10 * (sizes.min() ?? 1)
        let size = SVGCharts.scatter(title: "File size vs top-1 accuracy", points: sizePoints,
                                     xLabel: "model file size" + (logX ? " (log scale)" : ""),
                                     yLabel: "top-1 accuracy", logX: logX,
                                     formatX: { ReportFormat.bytes(Int($0.rounded())) })
        let latency = SVGCharts.scatter(
            title: "Latency vs top-1 accuracy", points: latencyPoints,
            xLabel: "median ms per batch of \(s.chartBatch), \(s.chartThreads) thread(s)", yLabel: "top-1 accuracy",
            logX: false, formatX: { String(format: "%.3g", $0) })
        return figure(size) + figure(latency)
    }

    /// Top-1 accuracy of every model in the order given, validation and test
    /// as two lines: a sweep (one recipe at settings in order) reads as curves.
    static func accuracyPerModelChart(_ report: ComparisonReport) -> String {
        var series: [BarSeries] = []
        if report.settings.validationImages != nil {
            series.append(BarSeries(label: "validation top-1", color: SVGCharts.color(1),
                                    values: report.models.map { $0.validationAccuracy?.top1 }))
        }
        series.append(BarSeries(label: "test top-1", color: SVGCharts.color(0), values: report.models.map { $0.accuracy?.top1 }))
        return SVGCharts.categoryLines(title: "Top-1 accuracy per model, in the order given",
                                       categories: report.models.map(\.label), series: series,
                                       yLabel: "top-1 accuracy", format: { ReportFormat.percent($0) })
    }

    /// Per-layer bytes and sparsity of the Conv and Linear layers (the tables
    /// list the rest), one bar per model in each layer's group; layers are
    /// matched across models by name.
    static func layerCharts(_ report: ComparisonReport) -> String {
        var names: [String] = []
        for m in report.models {
            for l in m.layers where chartedOps.contains(l.op) && !names.contains(l.name) { names.append(l.name) }
        }
        func series(_ value: @escaping (LayerReport) -> Double) -> [BarSeries] {
            report.models.enumerated().map { i, m in
                BarSeries(label: m.label, color: SVGCharts.color(i),
                          values: names.map { n in m.layers.first { $0.name == n && chartedOps.contains($0.op) }.map(value) })
            }
        }
        let bytes = SVGCharts.groupedBars(title: "Bytes per Conv/Linear layer", categories: names,
                                          series: series { Double($0.bytes) },
                                          format: { ReportFormat.bytes(Int($0)) })
        let sparsity = SVGCharts.groupedBars(title: "Weight sparsity per Conv/Linear layer", categories: names,
                                             series: series(\.sparsity), maxValue: 1,
                                             format: { ReportFormat.sparsity($0) })
        return figure(bytes) + figure(sparsity)
    }

    /// The ops the layer charts show.
    static let chartedOps: Set<String> = ["Conv2d", "Linear"]

    static func figure(_ svg: String) -> String { "<figure>\(svg)</figure>" }

    // MARK: - Tables

    static func layerTables(_ report: ComparisonReport) -> String {
        report.models.map { m in
            "<h3>\(e(m.label))</h3>\n" + table(ReportTables.layerHeader(m), ReportTables.layerRows(m))
        }.joined(separator: "\n")
    }

    /// A table; cells that look numeric align right.
    static func table(_ header: [String], _ rows: [[String]], alignNumbers: Bool = true) -> String {
        let head = "<tr>" + header.map { "<th>\(e($0))</th>" }.joined() + "</tr>"
        let body = rows.map { row in
            "<tr>" + row.enumerated().map { c, cell in
                alignNumbers && c > 0 && looksNumeric(cell) ? "<td class=\"num\">\(e(cell))</td>" : "<td>\(e(cell))</td>"
            }.joined() + "</tr>"
        }.joined(separator: "\n")
        return "<div class=\"table\"><table>\n<thead>\(head)</thead>\n<tbody>\n\(body)\n</tbody>\n</table></div>"
    }

    static func looksNumeric(_ s: String) -> Bool {
        guard let first = s.first else { return false }
        return first.isNumber || ((first == "-" || first == "+") && s.count > 1)
    }

    static func definitions() -> String {
        "<dl>" + ReportDefinitions.all.map { d in
            "<dt>\(e(d.title)) <code>\(e(d.field))</code></dt><dd>\(withCode(d.text))</dd>"
        }.joined(separator: "\n") + "</dl>"
    }

    static func e(_ s: String) -> String { SVGCharts.escape(s) }

    /// Escaped text with `backtick spans` (as the definitions write commands) set as code.
    static func withCode(_ s: String) -> String {
        s.split(separator: "`", omittingEmptySubsequences: false).enumerated().map { i, part in
            i % 2 == 1 ? "<code>\(e(String(part)))</code>" : e(String(part))
        }.joined()
    }

    static let style = """
    body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
           max-width: 1180px; padding: 16px 24px 48px; background: #fff; }
    h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px;
         border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
    header p { color: #555; margin: 0; }
    .table { overflow-x: auto; }
    table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
    th, td { padding: 4px 8px; border-bottom: 1px solid #e4e4e4; text-align: left; white-space: nowrap; }
    th { background: #f3f4f6; font-weight: 600; white-space: normal; vertical-align: bottom; }
    tbody tr:nth-child(even) { background: #fafafa; }
    td.num { text-align: right; }
    code { font: 12px ui-monospace, monospace; background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
    .charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
    figure { margin: 0; border: 1px solid #e4e4e4; border-radius: 6px; background: #fff; }
    svg.chart { display: block; max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
    svg .chart-title { font-size: 15px; font-weight: 600; fill: #222; }
    svg .tick { font-size: 11px; fill: #555; }
    svg .value { font-size: 10px; fill: #444; }
    svg .value-small { font-size: 8px; fill: #444; }
    svg .axis-label { font-size: 12px; fill: #333; }
    svg .point-label { font-size: 12px; fill: #111; font-weight: 600; paint-order: stroke; stroke: #fff;
                       stroke-width: 3px; stroke-linejoin: round; }
    svg .legend { font-size: 12px; fill: #333; }
    svg .note { font-size: 13px; fill: #777; }
    svg .grid { stroke: #eee; }
    dl { margin: 0; } dt { font-weight: 600; margin-top: 8px; } dd { margin: 2px 0 0 16px; color: #333; }
    """
}
