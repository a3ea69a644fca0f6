/// The type of a pass parameter.
public enum ParameterType: Sendable, Equatable, CustomStringConvertible {
    case int
    case double
    case bool
    case string
    /// One of a fixed set of strings.
    case choice([String])

    public var description: String {
        switch self {
        case .int: "integer"
        case .double: "number"
        case .bool: "true/false"
        case .string: "string"
        case .choice(let c): c.joined(separator: "|")
        }
    }
}

/// A typed parameter value.
public enum ParameterValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)

    public var description: String {
        switch self {
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .bool(let v): String(v)
        case .string(let v): v
        }
    }
}

/// The one declaration of a pass parameter: kebab-case name (`--target-sparsity`
/// on the command line, `target-sparsity:` in YAML), type, default and help.
public struct ParameterSpec: Sendable, Equatable {
    public var name: String
    public var type: ParameterType
    /// nil means the parameter is required, unless it is optional.
    public var defaultValue: ParameterValue?
    /// An optional parameter may be absent and has no default (the pass
    /// decides what its absence means, e.g. one of several alternatives).
    public var isOptional: Bool
    public var help: String

    public init(_ name: String, _ type: ParameterType, default defaultValue: ParameterValue?, help: String) {
        self.name = name; self.type = type; self.defaultValue = defaultValue; self.help = help
        isOptional = false
    }

    /// A parameter that may be left out and has no default.
    public static func optional(_ name: String, _ type: ParameterType, help: String) -> ParameterSpec {
        var spec = ParameterSpec(name, type, default: nil, help: help)
        spec.isOptional = true
        return spec
    }

    /// Parses a textual value (command line or YAML scalar) as this parameter's type.
    public func parse(_ text: String) -> ParameterValue? {
        switch type {
        case .int: Int(text).map(ParameterValue.int)
        case .double: Double(text).flatMap { $0.isFinite ? ParameterValue.double($0) : nil }
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "1": .bool(true)
            case "false", "no", "0": .bool(false)
            default: nil
            }
        case .string: .string(text)
        case .choice(let options): options.contains(text) ? .string(text) : nil
        }
    }
}

/// Validated parameter values for one pass run, defaults filled in.
public struct PassParameters: Sendable, Equatable {
    public private(set) var values: [String: ParameterValue]

    /// Validates textual values against `specs`, collecting every problem
    /// (unknown name, ill-typed value, missing required parameter) into one error.
    public init(validating raw: [String: String], against specs: [ParameterSpec], pass: String) throws(ParameterError) {
        var problems: [String] = []
        var values: [String: ParameterValue] = [:]
        let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        for key in raw.keys.sorted() where byName[key] == nil {
            let known = specs.map(\.name).joined(separator: ", ")
            problems.append("unknown parameter '\(key)' (\(pass) takes: \(known.isEmpty ? "none" : known))")
        }
        for spec in specs {
            if let text = raw[spec.name] {
                if let v = spec.parse(text) { values[spec.name] = v } else {
                    problems.append("parameter '\(spec.name)' must be \(spec.type), got '\(text)'")
                }
            } else if let d = spec.defaultValue {
                values[spec.name] = d
            } else if !spec.isOptional {
                problems.append("missing required parameter '\(spec.name)'")
            }
        }
        guard problems.isEmpty else { throw ParameterError(pass: pass, problems: problems) }
        self.values = values
    }

    /// Whether `name` has a value (given, or defaulted).
    public func has(_ name: String) -> Bool { values[name] != nil }

    /// The value of an optional numeric parameter, nil when absent.
    public func optionalDouble(_ name: String) -> Double? { has(name) ? double(name) : nil }

    /// The value of an optional integer parameter, nil when absent.
    public func optionalInt(_ name: String) -> Int? { has(name) ? int(name) : nil }

    /// The value of an optional string parameter, nil when absent.
    public func optionalString(_ name: String) -> String? { has(name) ? string(name) : nil }

    public func int(_ name: String) -> Int {
        guard case .int(let v) = values[name] else { preconditionFailure("no int parameter \(name)") }
        return v
    }

    public func double(_ name: String) -> Double {
        switch values[name] {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: preconditionFailure("no numeric parameter \(name)")
        }
    }

    public func bool(_ name: String) -> Bool {
        guard case .bool(let v) = values[name] else { preconditionFailure("no bool parameter \(name)") }
        return v
    }

    public func string(_ name: String) -> String {
        guard case .string(let v) = values[name] else { preconditionFailure("no string parameter \(name)") }
        return v
    }

    /// Values as text, for the model history.
    public var descriptions: [String: String] { values.mapValues(\.description) }
}

/// Every problem found validating one pass's parameters.
public struct ParameterError: Error, Equatable, CustomStringConvertible {
    public var pass: String
    public var problems: [String]
    public init(pass: String, problems: [String]) { self.pass = pass; self.problems = problems }
    public var description: String {
        problems.count == 1 ? "\(pass): \(problems[0])"
            : "\(pass): \(problems.count) problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
