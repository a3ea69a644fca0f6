import Compress
import Foundation

/// Whether an amount applies to each layer on its own or to one ranking
/// across the selected layers (weights) or channel groups (channels).
public enum PruningScope: String, Sendable, CaseIterable {
    case layer
    case global
}

/// How much a prune pass removes, as asked: exactly one of the amount
/// parameters, parsed and checked against the granularity and scope once,
/// when the pass is created. Each step then prunes to a `PruningTarget`
/// derived from it and the schedule.
public enum PruningAmount: Sendable, Equatable {
    /// `sparsity`: this fraction of the weights (or channels), per layer or
    /// globally by the scope.
    case sparsity(Double)
    /// `threshold-std`: weights below K x the layer's weight standard deviation.
    case thresholdStd(Double)
    /// `layer-sparsity`: per-layer fractions by node-name pattern, in the order given.
    case layerSparsity([(pattern: String, sparsity: Double)])
    /// `sensitivity`: per-layer sparsities derived from a sensitivity analysis file.
    case sensitivity(path: String, maxDrop: Double)
    /// `target-macs`: keep at most this fraction of the MACs.
    case targetMACs(Double)
    /// `target-latency`: keep at most this fraction of the measured batch-1
    /// latency; `table` (`latency-table`) replays recorded measurements.
    case targetLatency(Double, table: String?)

    public static func == (a: PruningAmount, b: PruningAmount) -> Bool {
        switch (a, b) {
        case (.sparsity(let x), .sparsity(let y)), (.thresholdStd(let x), .thresholdStd(let y)),
             (.targetMACs(let x), .targetMACs(let y)): x == y
        case (.targetLatency(let x, let s), .targetLatency(let y, let t)): x == y && s == t
        case (.layerSparsity(let x), .layerSparsity(let y)):
            x.map(\.pattern) == y.map(\.pattern) && x.map(\.sparsity) == y.map(\.sparsity)
        case (.sensitivity(let p, let d), .sensitivity(let q, let e)): p == q && d == e
        default: false
        }
    }

    /// The one amount given, checked against the granularity and scope.
    static func parse(_ p: PassParameters, granularity: PruningGranularity, scope: PruningScope,
                      problems: inout [String]) -> PruningAmount? {
        let names = ["sparsity", "threshold-std", "layer-sparsity", "sensitivity", "target-macs", "target-latency"]
        let given = names.filter { p.has($0) }
        guard given.count == 1 else {
            problems.append(given.isEmpty ? "say how much to prune: one of --\(names.joined(separator: ", --"))"
                            : "give one amount, not \(given.map { "--" + $0 }.joined(separator: " and "))")
            return nil
        }
        let amount: PruningAmount
        switch given[0] {
        case "sparsity":
            let s = p.double("sparsity")
            if !(0..<1).contains(s) { problems.append("sparsity must be in [0, 1), got \(s)") }
            amount = .sparsity(s)
        case "threshold-std":
            let k = p.double("threshold-std")
            if !(k > 0) { problems.append("threshold-std must be positive, got \(k)") }
            if granularity == .channel { problems.append("threshold-std applies to weight granularity") }
            if scope == .global { problems.append("threshold-std is a per-layer rule; use --scope layer") }
            amount = .thresholdStd(k)
        case "layer-sparsity":
            let entries = parsePerLayerValues(p.string("layer-sparsity"), parameter: "layer-sparsity", valueName: "fraction",
                                              requirement: "in [0, 1)", problems: &problems) {
                Double($0).flatMap { (0..<1).contains($0) ? $0 : nil }
            }.map { (pattern: $0.pattern, sparsity: $0.value) }
            if scope == .global { problems.append("layer-sparsity sets each layer's amount; use --scope layer") }
            amount = .layerSparsity(entries)
        case "sensitivity":
            let d = p.double("max-accuracy-drop")
            if !(d >= 0) { problems.append("max-accuracy-drop must be >= 0, got \(d)") }
            if granularity == .channel { problems.append("sensitivity-derived amounts apply to weight granularity") }
            amount = .sensitivity(path: p.string("sensitivity"), maxDrop: d)
        case "target-macs", "target-latency":
            let r = p.double(given[0])
            if !(r > 0 && r < 1) { problems.append("\(given[0]) must be in (0, 1), got \(r)") }
            if granularity == .weight {
                problems.append("\(given[0]) needs channel granularity (zeroed weights do not reduce dense MACs)")
            }
            amount = given[0] == "target-macs" ? .targetMACs(r) : .targetLatency(r, table: p.optionalString("latency-table"))
        default: preconditionFailure()
        }
        if p.has("latency-table"), given[0] != "target-latency" {
            problems.append("latency-table replays the measurements of --target-latency; give it with that amount")
        }
        return amount
    }
}
