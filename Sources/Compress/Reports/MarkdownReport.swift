import Foundation

/// Renders a `ComparisonReport` as Markdown: summary, latency and per-layer
/// tables, the Pareto fronts, the measurement settings and the definitions.
public enum MarkdownReport {
    /// The whole document.
    public static func render(_ report: ComparisonReport) -> String {
        var parts = [header(report)]
        parts.append("## Summary\n\n" + table(ReportTables.summaryHeader(report.settings),
                                               report.models.map { ReportTables.summaryRow($0, settings: report.settings) }))
        parts.append(paretoSection(report))
        parts.append("## Latency\n\n" + table(ReportTables.latencyHeader, report.models.flatMap(ReportTables.latencyRows)))
        parts.append("## Layers\n\n" + report.models.map(layerSection).joined(separator: "\n\n"))
        if let s = report.sensitivity { parts.append(s.markdown()) }
        parts.append(settingsSection(report.settings))
        parts.append(definitionsSection())
        return parts.joined(separator: "\n\n") + "\n"
    }

    static func header(_ report: ComparisonReport) -> String {
        let baseline = report.baseline.map { "Baseline: **\(escape($0.label))** (`\(escape($0.path))`)." } ?? ""
        return "# Model comparison\n\n\(report.models.count) model(s), measured \(report.generatedAt) by "
            + "\(report.generator). \(baseline) Ratios and accuracy changes are relative to the baseline."
    }

    static func paretoSection(_ report: ComparisonReport) -> String {
        let f = report.paretoFronts
        func list(_ labels: [String]) -> String { labels.isEmpty ? "(no accuracy measured)" : labels.map(escape).joined(separator: ", ") }
        return "## Pareto fronts\n\n"
            + "- File bytes vs top-1: \(list(f.sizeVsAccuracy))\n"
            + "- Latency (batch \(report.settings.chartBatch), \(report.settings.chartThreads) thread(s)) vs top-1: "
            + list(f.latencyVsAccuracy)
    }

    static func layerSection(_ m: ModelReport) -> String {
        "### \(escape(m.label))\n\n" + table(ReportTables.layerHeader(m), ReportTables.layerRows(m))
    }

    static func settingsSection(_ s: ReportMeasurementSettings) -> String {
        "## Measurement settings\n\n" + table(["setting", "value"], ReportTables.settingsRows(s).map { [$0.0, $0.1] })
    }

    static func definitionsSection() -> String {
        "## Definitions\n\n" + ReportDefinitions.all.map { "- **\($0.title)** (`\($0.field)`): \($0.text)" }
            .joined(separator: "\n")
    }

    /// A GitHub-flavoured table; columns after the first align right.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let line = { (cells: [String]) in "| " + cells.map(escape).joined(separator: " | ") + " |" }
        let rule = "| " + header.indices.map { $0 == 0 ? "---" : "---:" }.joined(separator: " | ") + " |"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// Escapes the characters that would break a table cell or start markup.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
