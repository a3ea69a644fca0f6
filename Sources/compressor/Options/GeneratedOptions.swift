import ArgumentParser
import Compress

/// Command-line options generated from parameter declarations
/// (`ParameterSpec`s), so a pass's options, the fine-tune group and the
/// training options are declared once for the command line and pipelines.
///
/// `--name value` and `--name=value` set a parameter; a true/false parameter
/// also takes `--name` alone (true) or `--name true|false`. Tokens that are not
/// options are the command's positional arguments; after `--` every token is.
struct GeneratedOptions {
    /// A titled group of options in `--help` (e.g. "PRUNE OPTIONS").
    struct Section {
        var title: String
        var specs: [ParameterSpec]
    }

    var sections: [Section]

    var specs: [ParameterSpec] { sections.flatMap(\.specs) }

    /// A pass's own options, then its fine-tune group (the `finetune-` names) in a section of its own.
    static func forPass<P: Pass>(_ pass: P.Type) -> GeneratedOptions {
        let (fineTune, own) = (P.parameters.filter(isFineTune), P.parameters.filter { !isFineTune($0) })
        var sections = [Section(title: "\(P.name.uppercased()) OPTIONS", specs: own)]
        if !fineTune.isEmpty { sections.append(Section(title: "FINE-TUNING OPTIONS", specs: fineTune)) }
        return GeneratedOptions(sections: sections)
    }

    /// The training options (`TrainingSettings.parameterSpecs`) with `defaults`' values as defaults.
    static func training(defaults: TrainingSettings) -> GeneratedOptions {
        GeneratedOptions(sections: [Section(title: "TRAINING OPTIONS",
                                            specs: TrainingSettings.parameterSpecs(defaults: defaults))])
    }

    private static func isFineTune(_ spec: ParameterSpec) -> Bool { spec.name.hasPrefix(FineTuneParameters.prefix) }

    /// What the tokens gave: parameter values as text, by name, and the positional arguments.
    struct Parsed {
        var values: [String: String] = [:]
        var positionals: [String] = []
    }

    /// Splits `tokens` into parameter values and positional arguments. Unknown
    /// options and options without a value are refused with a `ValidationError`
    /// naming them; values are checked later, against the declarations.
    func parse(_ tokens: [String]) throws -> Parsed {
        let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        var parsed = Parsed()
        var i = 0
        while i < tokens.count {
            let token = tokens[i]
            i += 1
            if token == "--" {
                parsed.positionals += tokens[i...]
                break
            }
            guard token.hasPrefix("-"), token.count > 1, Double(token) == nil else {
                parsed.positionals.append(token)
                continue
            }
            let body = token.drop { $0 == "-" }
            let (name, inline) = body.firstIndex(of: "=").map { (String(body[..<$0]), String(body[body.index(after: $0)...])) }
                ?? (String(body), nil)
            guard token.hasPrefix("--"), let spec = byName[name] else {
                throw ValidationError("unknown option '\(token.split(separator: "=")[0])'" + suggestion(for: name))
            }
            if let inline {
                parsed.values[name] = inline
            } else if spec.type == .bool {
                if i < tokens.count, ["true", "false"].contains(tokens[i].lowercased()) {
                    parsed.values[name] = tokens[i]
                    i += 1
                } else {
                    parsed.values[name] = "true"
                }
            } else {
                guard i < tokens.count, tokens[i] == "-" || !tokens[i].hasPrefix("-") || Double(tokens[i]) != nil else {
                    throw ValidationError("missing value for '--\(name) <\(spec.type)>'")
                }
                parsed.values[name] = tokens[i]
                i += 1
            }
        }
        return parsed
    }

    /// " (did you mean '--x'?)": the fine-tune option of that name, else the
    /// closest declared name, if one is close.
    private func suggestion(for name: String) -> String {
        if let prefixed = specs.first(where: { $0.name == FineTuneParameters.prefix + name }) {
            return " (did you mean '--\(prefixed.name)'?)"
        }
        let scored = specs.map { ($0.name, editDistance($0.name, name)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, name.count / 3) else { return "" }
        return " (did you mean '--\(best)'?)"
    }

    /// The `--help` sections, laid out as ArgumentParser lays out its own.
    var help: String {
        sections.filter { !$0.specs.isEmpty }.map { section in
            "\(section.title):\n" + section.specs.map(Self.helpEntry).joined(separator: "\n")
        }.joined(separator: "\n\n")
    }

    private static func helpEntry(_ spec: ParameterSpec) -> String {
        let synopsis = "  --\(spec.name) <\(spec.type)>"
        let text = spec.help + (spec.defaultValue.map { " (default: \($0))" } ?? "")
        let indent = String(repeating: " ", count: 26)
        let lines = wrapped(text, width: 80 - indent.count)
        if synopsis.count <= 24 {
            let first = synopsis + String(repeating: " ", count: 26 - synopsis.count) + lines[0]
            return ([first] + lines.dropFirst().map { indent + $0 }).joined(separator: "\n")
        }
        return ([synopsis] + lines.map { indent + $0 }).joined(separator: "\n")
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stands alone).
private func wrapped(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var line = ""
    for word in text.split(separator: " ") {
        if !line.isEmpty && line.count + 1 + word.count > width {
            lines.append(line)
            line = ""
        }
        line += (line.isEmpty ? "" : " ") + word
    }
    return lines + [line]
}

/// Levenshtein distance, for suggesting the option a typo meant.
private func editDistance(_ a: String, _ b: String) -> Int {
    let (x, y) = (Array(a), Array(b))
    var previous = Array(0...y.count)
    for i in 1...max(x.count, 1) where !x.isEmpty {
        var current = [i] + [Int](repeating: 0, count: y.count)
        for j in 1...max(y.count, 1) where !y.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[y.count]
}

/// A command some of whose options are generated; `Compressor.main` appends
/// them to the command's `--help`.
protocol GeneratedOptionsCommand: ParsableCommand {
    static var generatedOptions: GeneratedOptions { get }
}
