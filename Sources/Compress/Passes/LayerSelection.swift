import Foundation

/// A layer a compression pass may touch: a conv or linear node and its weight initializer.
public struct PrunableLayer: Sendable, Hashable {
    public var node: String
    public var weight: String
    public var isConv: Bool

    public init(node: String, weight: String, isConv: Bool) {
        self.node = node; self.weight = weight; self.isConv = isConv
    }
}

/// Which layers a pass applies to: node names matching any `include` pattern
/// (all when empty) and no `exclude` pattern. Patterns are shell-style:
/// `*` matches any run of characters, `?` one character (`conv*`, `layer1.*.conv?`).
public struct LayerSelection: Sendable, Equatable {
    public var include: [String]
    public var exclude: [String]

    public init(include: [String] = [], exclude: [String] = []) {
        self.include = include; self.exclude = exclude
    }

    /// A selection from comma-separated pattern lists as given on the command line.
    public init(include: String, exclude: String) {
        func split(_ s: String) -> [String] {
            s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        self.init(include: split(include), exclude: split(exclude))
    }

    public func contains(_ name: String) -> Bool {
        (include.isEmpty || include.contains { globMatches($0, name) }) && !exclude.contains { globMatches($0, name) }
    }

    /// The selected conv and linear layers of `graph` in node order, or an
    /// error naming every pattern that matches no such layer (a typo would
    /// otherwise silently prune nothing).
    public func layers(in graph: Graph, pass: String) throws(ParameterError) -> [PrunableLayer] {
        let all = prunableLayers(in: graph)
        let unmatched = (include + exclude).filter { p in !all.contains { globMatches(p, $0.node) } }
        guard unmatched.isEmpty else {
            throw ParameterError(pass: pass, problems: unmatched.map {
                "layer pattern '\($0)' matches no conv or linear layer (layers: \(all.map(\.node).joined(separator: ", ")))"
            })
        }
        let chosen = all.filter { contains($0.node) }
        guard !chosen.isEmpty else { throw ParameterError(pass: pass, problems: ["no conv or linear layer is selected"]) }
        return chosen
    }
}

/// Every conv and linear layer of `graph` whose weight is an initializer, in node order.
public func prunableLayers(in graph: Graph) -> [PrunableLayer] {
    graph.nodes.compactMap { node -> PrunableLayer? in
        switch node.op {
        case .conv2d: PrunableLayer(node: node.name, weight: node.inputs[1], isConv: true)
        case .linear: PrunableLayer(node: node.name, weight: node.inputs[1], isConv: false)
        default: nil
        }
    }.filter { graph.initializers[$0.weight] != nil }
}

/// Shell-style matching of `name` against `pattern` (`*` and `?` only).
public func globMatches(_ pattern: String, _ name: String) -> Bool {
    let p = Array(pattern.utf8), s = Array(name.utf8)
    var (pi, si) = (0, 0)
    var (star, mark) = (-1, 0)
    while si < s.count {
        if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == s[si]) {
            pi += 1; si += 1
        } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
            star = pi; mark = si; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; si = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}

/// Per-layer settings written `PATTERN=VALUE,...` (`layer-sparsity`,
/// `layer-bits`, `layer-rank`): the pattern/value pairs in the order given
/// (the first pattern matching a node gives its value). An entry that is not
/// `PATTERN=VALUE` with `value` accepting the text is one problem, worded
/// "<parameter> entry '<item>' must be PATTERN=<NAME> with the <name>
/// <requirement>"; a text with no entry is one too.
public func parsePerLayerValues<Value>(_ text: String, parameter: String, valueName: String, requirement: String,
                                       problems: inout [String], _ value: (String) -> Value?)
    -> [(pattern: String, value: Value)] {
    var entries: [(pattern: String, value: Value)] = []
    for item in text.split(separator: ",") {
        let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, let v = value(parts[1]) else {
            problems.append("\(parameter) entry '\(item)' must be PATTERN=\(valueName.uppercased()) with the \(valueName) \(requirement)")
            continue
        }
        entries.append((parts[0], v))
    }
    if entries.isEmpty && problems.isEmpty { problems.append("\(parameter) names no layer") }
    return entries
}

/// One problem per pattern of the per-layer setting `parameter` that matches
/// none of `layers` (the selected ones), naming them.
public func unmatchedPatternProblems(_ patterns: [String], parameter: String, layers: [PrunableLayer]) -> [String] {
    patterns.filter { pattern in !layers.contains { globMatches(pattern, $0.node) } }.map {
        "\(parameter) pattern '\($0)' matches no selected layer (selected: \(layers.map(\.node).joined(separator: ", ")))"
    }
}
