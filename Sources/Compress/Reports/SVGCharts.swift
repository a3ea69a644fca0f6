import Foundation

/// A labeled point on a scatter chart.
struct ChartPoint: Equatable {
    var label: String
    var x: Double
    var y: Double
    var color: String
    var onFront: Bool
}

/// One model's bars in a grouped bar chart, or one line of a category line
/// chart: a value per category (nil: no bar or point).
struct BarSeries: Equatable {
    var label: String
    var color: String
    var values: [Double?]
}

/// Inline SVG charts drawn from numbers alone: no scripts, fonts or network.
enum SVGCharts {
    /// Colors for models, in order (Okabe-Ito, readable for color-blind viewers).
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]

    /// The color of the model at `index`.
    static func color(_ index: Int) -> String { palette[index % palette.count] }

    static let frontColor = "#C0392B"

    // MARK: - Scatter

    /// A scatter plot of `points`, the Pareto front joined by a line and ringed.
    /// `logX` puts x on a log scale (for sizes spanning orders of magnitude).
    static func scatter(title: String, points: [ChartPoint], xLabel: String, yLabel: String, logX: Bool,
                        formatX: (Double) -> String) -> String {
        let frame = PlotFrame(width: 560, height: 380, left: 64, right: 24, top: 44, bottom: 56)
        var body = [heading(title, frame)]
        guard !points.isEmpty else {
            body.append(text("No accuracy measured (no test data).", x: frame.width / 2, y: frame.height / 2,
                             anchor: "middle", cls: "note"))
            return svg(frame, title: title, body: body)
        }
        let xs = Axis(values: points.map(\.x), log: logX, padding: 0.08)
        let ys = Axis(values: points.map { $0.y * 100 }, log: false, padding: 0.15, minimumSpan: 1, bounds: 0...100)
        body += xAxis(xs, frame: frame, label: xLabel, format: formatX)
        body += yAxis(ys, frame: frame, label: yLabel, format: { String(format: "%.1f%%", $0) })
        let placed = points.map { p in (p, frame.x(xs.unit(p.x)), frame.y(ys.unit(p.y * 100))) }
        let front = placed.filter { $0.0.onFront }.sorted { $0.1 < $1.1 }
        if front.count > 1 {
            let coords = front.map { "\(fmt($0.1)),\(fmt($0.2))" }.joined(separator: " ")
            body.append("<polyline points=\"\(coords)\" fill=\"none\" stroke=\"\(frontColor)\" stroke-width=\"2\" "
                        + "stroke-dasharray=\"6 4\"/>")
        }
        let labelYs = labelPositions(placed.map { ($0.1, $0.2 - 10) })
        for ((p, x, y), labelY) in zip(placed, labelYs) {
            if p.onFront {
                body.append("<circle cx=\"\(fmt(x))\" cy=\"\(fmt(y))\" r=\"10\" fill=\"none\" stroke=\"\(frontColor)\" stroke-width=\"2\"/>")
            }
            body.append("<circle cx=\"\(fmt(x))\" cy=\"\(fmt(y))\" r=\"6\" fill=\"\(p.color)\" stroke=\"#222\" stroke-width=\"1\">"
                        + "<title>\(escape(p.label))</title></circle>")
            let rightHalf = x > frame.left + frame.plotWidth * 0.7
            body.append(text(p.label, x: x + (rightHalf ? -13 : 13), y: labelY, anchor: rightHalf ? "end" : "start",
                             cls: "point-label"))
        }
        body.append(frontLegend(frame))
        return svg(frame, title: title, body: body)
    }

    /// Label baselines for points at `anchors` (x, preferred y), moved down
    /// where they would overprint an earlier label near the same x.
    static func labelPositions(_ anchors: [(x: Double, y: Double)]) -> [Double] {
        var placed: [(x: Double, y: Double)] = []
        for a in anchors {
            var y = a.y
            while placed.contains(where: { abs($0.x - a.x) < 120 && abs($0.y - y) < 15 }) { y += 15 }
            placed.append((a.x, y))
        }
        return placed.map(\.y)
    }

    /// "- - Pareto front" in the top-right corner.
    static func frontLegend(_ frame: PlotFrame) -> String {
        let x = frame.width - frame.right - 120, y = 30.0
        return "<line x1=\"\(fmt(x))\" y1=\"\(fmt(y))\" x2=\"\(fmt(x + 26))\" y2=\"\(fmt(y))\" stroke=\"\(frontColor)\" "
            + "stroke-width=\"2\" stroke-dasharray=\"6 4\"/>"
            + text("Pareto front", x: x + 32, y: y + 4, anchor: "start", cls: "legend")
    }

    // MARK: - Lines over categories

    /// Values per category (model), in order along x, one line and one marker
    /// per value of each series (nil: no marker, the line skips it). Reads a
    /// sweep (models from one recipe at settings in order) as curves.
    static func categoryLines(title: String, categories: [String], series: [BarSeries], yLabel: String,
                              format: (Double) -> String) -> String {
        let longest = Double(categories.map(\.count).max() ?? 1)
        // Tick labels are turned 40 degrees; leave room for the longest.
        let bottom = 44 + min(160, 6.2 * longest * 0.64)
        let width = max(560, 96 + 44 * Double(categories.count))
        let frame = PlotFrame(width: width, height: 300 + bottom, left: 64, right: 24, top: 64, bottom: bottom)
        var body = [heading(title, frame)] + barLegend(series, frame: frame)
        let values = series.flatMap { $0.values.compactMap { $0 } }
        guard !values.isEmpty else {
            body.append(text("No accuracy measured (no test data).", x: frame.width / 2, y: frame.height / 2,
                             anchor: "middle", cls: "note"))
            return svg(frame, title: title, body: body)
        }
        let ys = Axis(values: values.map { $0 * 100 }, log: false, padding: 0.15, minimumSpan: 1, bounds: 0...100)
        body += yAxis(ys, frame: frame, label: yLabel, format: { String(format: "%.1f%%", $0) })
        let step = frame.plotWidth / Double(max(categories.count, 1))
        func x(_ i: Int) -> Double { frame.left + step * (Double(i) + 0.5) }
        let axisY = frame.height - frame.bottom
        body.append("<line x1=\"\(fmt(frame.left))\" y1=\"\(fmt(axisY))\" x2=\"\(fmt(frame.width - frame.right))\" "
                    + "y2=\"\(fmt(axisY))\" stroke=\"#444\"/>")
        for (i, category) in categories.enumerated() {
            body.append("<line x1=\"\(fmt(x(i)))\" y1=\"\(fmt(frame.top))\" x2=\"\(fmt(x(i)))\" y2=\"\(fmt(axisY))\" class=\"grid\"/>")
            body.append("<text x=\"\(fmt(x(i)))\" y=\"\(fmt(axisY + 14))\" text-anchor=\"end\" class=\"tick\" "
                        + "transform=\"rotate(-40 \(fmt(x(i))) \(fmt(axisY + 14)))\">\(escape(category))</text>")
        }
        for line in series {
            let points = line.values.enumerated().compactMap { i, v in v.map { (i, x(i), frame.y(ys.unit($0 * 100)), $0) } }
            // One polyline per run of consecutive categories with values.
            var runs: [[(Int, Double, Double, Double)]] = []
            for p in points {
                if let last = runs.last?.last, last.0 == p.0 - 1 { runs[runs.count - 1].append(p) } else { runs.append([p]) }
            }
            for run in runs where run.count > 1 {
                let coords = run.map { "\(fmt($0.1)),\(fmt($0.2))" }.joined(separator: " ")
                body.append("<polyline points=\"\(coords)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"/>")
            }
            for (i, px, py, v) in points {
                body.append("<circle cx=\"\(fmt(px))\" cy=\"\(fmt(py))\" r=\"4.5\" fill=\"\(line.color)\" stroke=\"#222\" "
                            + "stroke-width=\"1\" data-series=\"\(escape(line.label))\"><title>\(escape(categories[i])), "
                            + "\(escape(line.label)): \(escape(format(v)))</title></circle>")
            }
        }
        return svg(frame, title: title, body: body)
    }

    // MARK: - Bars

    /// Horizontal grouped bars: one group per category (layer), one bar per series (model).
    static func groupedBars(title: String, categories: [String], series: [BarSeries], maxValue: Double? = nil,
                            format: (Double) -> String) -> String {
        let crowded = categories.count * series.count > 48
        let bar = crowded ? 8.0 : 12.0, gap = crowded ? 1.0 : 2.0, groupGap = crowded ? 6.0 : 10.0
        let labelWidth = min(220, 16 + 6.8 * Double(categories.map(\.count).max() ?? 4))
        let groupHeight = Double(series.count) * (bar + gap) - gap
        let columns = legendColumns(series, width: 560)
        let top = 44 + 20 * Double((series.count + columns - 1) / columns)
        let height = top + Double(categories.count) * (groupHeight + groupGap) + 16
        let frame = PlotFrame(width: 560, height: height, left: labelWidth, right: 80, top: top, bottom: 16)
        let largest = maxValue ?? series.flatMap { $0.values.compactMap { $0 } }.max() ?? 1
        var body = [heading(title, frame)] + barLegend(series, frame: frame)
        for (c, category) in categories.enumerated() {
            let y0 = frame.top + Double(c) * (groupHeight + groupGap)
            body.append(text(category, x: frame.left - 8, y: y0 + groupHeight / 2 + 4, anchor: "end", cls: "tick"))
            for (s, line) in series.enumerated() {
                guard let value = line.values[c] else { continue }
                let y = y0 + Double(s) * (bar + gap)
                let w = largest > 0 ? frame.plotWidth * value / largest : 0
                body.append("<rect x=\"\(fmt(frame.left))\" y=\"\(fmt(y))\" width=\"\(fmt(max(w, 0.5)))\" height=\"\(fmt(bar))\" "
                            + "fill=\"\(line.color)\"><title>\(escape(line.label)) \(escape(category)): "
                            + "\(escape(format(value)))</title></rect>")
                body.append(text(format(value), x: frame.left + w + 4, y: y + bar - 2, anchor: "start",
                                 cls: crowded ? "value-small" : "value"))
            }
        }
        body.append("<line x1=\"\(fmt(frame.left))\" y1=\"\(fmt(frame.top - 4))\" x2=\"\(fmt(frame.left))\" "
                    + "y2=\"\(fmt(height - frame.bottom))\" stroke=\"#444\"/>")
        return svg(frame, title: title, body: body)
    }

    /// Legend entries per row: as many as fit the chart's width.
    static func legendColumns(_ series: [BarSeries], width: Double) -> Int {
        let widest = 26 + 6.8 * Double(series.map(\.label.count).max() ?? 1)
        return max(1, min(series.count, Int((width - 32) / widest)))
    }

    /// Color swatches with model labels, as many to a row as fit, under the title.
    static func barLegend(_ series: [BarSeries], frame: PlotFrame) -> [String] {
        let columns = legendColumns(series, width: frame.width)
        let columnWidth = (frame.width - 32) / Double(columns)
        return series.enumerated().map { i, s in
            let x = 16 + Double(i % columns) * columnWidth, y = 40 + 20 * Double(i / columns)
            return "<rect x=\"\(fmt(x))\" y=\"\(fmt(y - 10))\" width=\"12\" height=\"12\" fill=\"\(s.color)\"/>"
                + text(s.label, x: x + 18, y: y, anchor: "start", cls: "legend")
        }
    }

    // MARK: - Axes

    static func xAxis(_ axis: Axis, frame: PlotFrame, label: String, format: (Double) -> String) -> [String] {
        let y = frame.height - frame.bottom
        var out = ["<line x1=\"\(fmt(frame.left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(frame.width - frame.right))\" y2=\"\(fmt(y))\" stroke=\"#444\"/>"]
        for t in axis.ticks() {
            let x = frame.x(axis.unit(t))
            out.append("<line x1=\"\(fmt(x))\" y1=\"\(fmt(frame.top))\" x2=\"\(fmt(x))\" y2=\"\(fmt(y))\" class=\"grid\"/>")
            out.append(text(format(t), x: x, y: y + 18, anchor: "middle", cls: "tick"))
        }
        out.append(text(label, x: frame.left + frame.plotWidth / 2, y: frame.height - 12, anchor: "middle", cls: "axis-label"))
        return out
    }

    static func yAxis(_ axis: Axis, frame: PlotFrame, label: String, format: (Double) -> String) -> [String] {
        let bottom = frame.height - frame.bottom
        var out = ["<line x1=\"\(fmt(frame.left))\" y1=\"\(fmt(frame.top))\" x2=\"\(fmt(frame.left))\" y2=\"\(fmt(bottom))\" stroke=\"#444\"/>"]
        for t in axis.ticks() {
            let y = frame.y(axis.unit(t))
            out.append("<line x1=\"\(fmt(frame.left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(frame.width - frame.right))\" y2=\"\(fmt(y))\" class=\"grid\"/>")
            out.append(text(format(t), x: frame.left - 6, y: y + 4, anchor: "end", cls: "tick"))
        }
        let cy = frame.top + (bottom - frame.top) / 2
        out.append("<text x=\"14\" y=\"\(fmt(cy))\" text-anchor=\"middle\" class=\"axis-label\" "
                   + "transform=\"rotate(-90 14 \(fmt(cy)))\">\(escape(label))</text>")
        return out
    }

    // MARK: - Pieces

    static func svg(_ frame: PlotFrame, title: String, body: [String]) -> String {
        "<svg class=\"chart\" viewBox=\"0 0 \(fmt(frame.width)) \(fmt(frame.height))\" "
            + "width=\"\(fmt(frame.width))\" height=\"\(fmt(frame.height))\" role=\"img\" aria-label=\"\(escape(title))\">\n"
            + body.joined(separator: "\n") + "\n</svg>"
    }

    static func heading(_ title: String, _ frame: PlotFrame) -> String {
        text(title, x: 16, y: 22, anchor: "start", cls: "chart-title")
    }

    static func text(_ s: String, x: Double, y: Double, anchor: String, cls: String) -> String {
        "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" text-anchor=\"\(anchor)\" class=\"\(cls)\">\(escape(s))</text>"
    }

    /// A coordinate with one decimal.
    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Escapes text for HTML and SVG content and attributes.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The drawing area of a chart: overall size and margins around the plot.
struct PlotFrame {
    var width: Double, height: Double
    var left: Double, right: Double, top: Double, bottom: Double

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }

    /// The x coordinate of a position in [0, 1] along the plot.
    func x(_ unit: Double) -> Double { left + unit * plotWidth }
    /// The y coordinate of a position in [0, 1] up the plot.
    func y(_ unit: Double) -> Double { top + (1 - unit) * plotHeight }
}

/// A numeric axis over the range of some values, linear or base-10 log.
struct Axis {
    var lo: Double
    var hi: Double
    var log: Bool

    /// An axis covering `values` with `padding` (a fraction of the span) on
    /// each side and at least `minimumSpan` wide. Log axes need positive values.
    init(values: [Double], log: Bool, padding: Double, minimumSpan: Double = 0, bounds: ClosedRange<Double>? = nil) {
        let useLog = log && values.allSatisfy { $0 > 0 }
        let mapped = values.map { useLog ? Foundation.log10($0) : $0 }
        var lo = mapped.min() ?? 0, hi = mapped.max() ?? 1
        let span = max(hi - lo, useLog ? 0.3 : max(minimumSpan, abs(hi) * 0.1, 1e-9))
        let center = (lo + hi) / 2
        lo = center - span / 2 - span * padding
        hi = center + span / 2 + span * padding
        if let bounds, !useLog {
            // Shift a range that pokes out of the bounds back in, then clip it.
            if lo < bounds.lowerBound { hi = min(hi + bounds.lowerBound - lo, bounds.upperBound); lo = bounds.lowerBound }
            if hi > bounds.upperBound { lo = max(lo - (hi - bounds.upperBound), bounds.lowerBound); hi = bounds.upperBound }
        }
        self.lo = lo; self.hi = hi; self.log = useLog
    }

    /// Position of `v` along the axis, in [0, 1] inside the range.
    func unit(_ v: Double) -> Double {
        let m = log ? Foundation.log10(max(v, 1e-300)) : v
        return (m - lo) / (hi - lo)
    }

    /// About five round tick values inside the range.
    func ticks() -> [Double] {
        let step = Self.niceStep((hi - lo) / 5)
        var t = (lo / step).rounded(.up) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 {
            out.append(log ? pow(10, t) : (t == 0 ? 0 : t))  // no "-0"
            t += step
        }
        return out
    }

    /// 1, 2 or 5 times a power of ten, near `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let magnitude = pow(10, floor(Foundation.log10(raw)))
        let f = raw / magnitude
        return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * magnitude
    }
}
