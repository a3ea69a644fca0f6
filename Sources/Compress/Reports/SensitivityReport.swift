import Foundation

/// How accuracy responds when one layer at a time is pruned with every other
/// layer untouched: what `compressor sensitivity` measures and writes, and
/// what a prune pass reads to choose per-layer sparsities (Han et al. 2015, §4.2).
///
/// Accuracy is measured on the validation split (images carved from the
/// training data), because the curves drive choices.
public struct SensitivityReport: Sendable, Equatable, Codable {
    /// The analysed model file.
    public var model: String
    /// "weight" (single weights by magnitude) or "channel".
    public var granularity: String
    /// The data the accuracies were measured on, e.g. "validation split, 5000 images".
    public var measuredOn: String
    /// Top-1 of the unpruned model on the same images.
    public var baselineTop1: Double
    /// The sparsities tried, in increasing order, as fractions.
    public var sparsities: [Double]
    public var layers: [SensitivityCurve]

    public init(model: String, granularity: String, measuredOn: String, baselineTop1: Double,
                sparsities: [Double], layers: [SensitivityCurve]) {
        self.model = model; self.granularity = granularity; self.measuredOn = measuredOn
        self.baselineTop1 = baselineTop1; self.sparsities = sparsities; self.layers = layers
    }

    /// Per layer, the largest sparsity tried whose top-1 and that of every
    /// smaller sparsity stay within `maxDrop` (a fraction, 0.005 = 0.5 points)
    /// of the baseline; 0 when even the smallest non-zero one drops more.
    public func sparsities(maxDrop: Double) -> [String: Double] {
        var chosen: [String: Double] = [:]
        for curve in layers {
            var best = 0.0
            for (s, top1) in zip(sparsities, curve.top1) {
                guard top1 >= baselineTop1 - maxDrop - 1e-12 else { break }
                best = s
            }
            chosen[curve.layer] = best
        }
        return chosen
    }

    /// The report as pretty JSON with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    /// Reads a report written by `json()`, naming the file when it is not one.
    public static func read(path: String) throws -> SensitivityReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileReadError(path: path, reason: "no such file or not readable")
        }
        do {
            return try JSONDecoder().decode(SensitivityReport.self, from: data)
        } catch {
            throw FileReadError(path: path, reason: "not a sensitivity report written by `compressor sensitivity`")
        }
    }
}

/// One layer's accuracies, one per sparsity of the report.
public struct SensitivityCurve: Sendable, Equatable, Codable {
    /// The layer's node name.
    public var layer: String
    /// Weights the layer has.
    public var weights: Int
    /// Top-1 at each sparsity of `SensitivityReport.sparsities`.
    public var top1: [Double]

    public init(layer: String, weights: Int, top1: [Double]) {
        self.layer = layer; self.weights = weights; self.top1 = top1
    }
}

/// A file that could not be read as what it should be.
public struct FileReadError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}

extension SensitivityReport {
    /// Column headers of the table: layer, weights, then one per sparsity.
    var tableHeader: [String] {
        ["layer", "weights"] + sparsities.map { String(format: "%.0f%%", $0 * 100) }
    }

    /// One row per layer: top-1 in percent at each sparsity.
    var tableRows: [[String]] {
        layers.map { c in [c.layer, String(c.weights)] + c.top1.map { String(format: "%.2f", $0 * 100) } }
    }

    /// A line per layer: x sparsity, y top-1, the baseline dashed.
    public func svgChart() -> String {
        let frame = PlotFrame(width: 640, height: 400, left: 64, right: 150, top: 44, bottom: 56)
        let title = "Sensitivity: top-1 with one layer pruned (\(granularity))"
        var body = [SVGCharts.heading(title, frame)]
        let xs = Axis(values: [0, 1], log: false, padding: 0)
        let all = layers.flatMap(\.top1) + [baselineTop1]
        let ys = Axis(values: all.map { $0 * 100 }, log: false, padding: 0.05, minimumSpan: 1, bounds: 0...100)
        body += SVGCharts.xAxis(xs, frame: frame, label: "sparsity of the layer", format: { String(format: "%.0f%%", $0 * 100) })
        body += SVGCharts.yAxis(ys, frame: frame, label: "top-1 (\(measuredOn))", format: { String(format: "%.1f%%", $0) })
        let baseY = frame.y(ys.unit(baselineTop1 * 100))
        body.append("<line x1=\"\(SVGCharts.fmt(frame.left))\" y1=\"\(SVGCharts.fmt(baseY))\" x2=\"\(SVGCharts.fmt(frame.width - frame.right))\" "
                    + "y2=\"\(SVGCharts.fmt(baseY))\" stroke=\"#888\" stroke-dasharray=\"5 4\"/>")
        for (i, curve) in layers.enumerated() {
            let color = SVGCharts.color(i)
            let coords = zip(sparsities, curve.top1).map {
                "\(SVGCharts.fmt(frame.x(xs.unit($0))))," + SVGCharts.fmt(frame.y(ys.unit($1 * 100)))
            }.joined(separator: " ")
            body.append("<polyline points=\"\(coords)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"><title>"
                        + SVGCharts.escape(curve.layer) + "</title></polyline>")
            let ly = frame.top + 8 + Double(i) * 18
            let lx = frame.width - frame.right + 12
            body.append("<line x1=\"\(SVGCharts.fmt(lx))\" y1=\"\(SVGCharts.fmt(ly - 4))\" x2=\"\(SVGCharts.fmt(lx + 18))\" "
                        + "y2=\"\(SVGCharts.fmt(ly - 4))\" stroke=\"\(color)\" stroke-width=\"3\"/>")
            body.append(SVGCharts.text(curve.layer, x: lx + 24, y: ly, anchor: "start", cls: "tick"))
        }
        return SVGCharts.svg(frame, title: title, body: body)
    }

    /// A Markdown section: what was measured and the table.
    public func markdown(level: Int = 2) -> String {
        let h = String(repeating: "#", count: level)
        return "\(h) Sensitivity (\(granularity) pruning of `\(MarkdownReport.escape(model))`)\n\n"
            + String(format: "Top-1 on the %@ with one layer pruned at a time; unpruned: %.2f%%.\n\n",
                     measuredOn, baselineTop1 * 100)
            + MarkdownReport.table(tableHeader, tableRows)
    }

    /// An HTML section: the chart and the table.
    func htmlSection() -> String {
        HTMLReport.section("Sensitivity", String(format: "<p>Top-1 on the %@ with one layer pruned at a time "
                                                 + "(%@ granularity); unpruned: %.2f%% (dashed).</p>",
                                                 HTMLReport.e(measuredOn), HTMLReport.e(granularity), baselineTop1 * 100)
                           + HTMLReport.figure(svgChart()) + HTMLReport.table(tableHeader, tableRows))
    }

    /// A self-contained HTML page with the chart and the table.
    public func html() -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Sensitivity of \(HTMLReport.e(model))</title>
        <style>\(HTMLReport.style)</style>
        </head>
        <body>
        <header><h1>Sensitivity of \(HTMLReport.e(model))</h1></header>
        \(htmlSection())
        </body>
        </html>

        """
    }
}
