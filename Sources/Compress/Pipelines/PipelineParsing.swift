import Foundation
import Yams

/// A node of the YAML tree (Compress has a graph `Node` of its own).
typealias YAMLNode = Yams.Node

extension Pipeline {
    /// The keys a pipeline file may have at its top level.
    public static let fileKeys = ["model", "data", "output", "seed", "threads", "validation-count", "steps", "report"]
    /// The keys of the `report:` section.
    public static let reportKeys = ["directory", "batches", "threads", "limit", "validation"]

    /// Reads and parses the pipeline file at `path`; relative paths in it
    /// resolve against the file's directory.
    public static func read(path: String) throws(PipelineError) -> Pipeline {
        let text = try text(ofFile: path)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(yaml: text, baseDirectory: directory, file: path)
    }

    /// Parses pipeline YAML, rejecting unknown keys and ill-typed values with
    /// every problem (and its line) in one error. Step parameters stay text:
    /// they are checked against each pass's declaration by ``validate(registry:)``.
    public static func parse(yaml: String, baseDirectory: String, file: String? = nil) throws(PipelineError) -> Pipeline {
        let (pipeline, problems) = try parseCollecting(yaml: yaml, baseDirectory: baseDirectory, file: file)
        guard problems.isEmpty else { throw PipelineError(file: file, problems: problems) }
        return pipeline
    }

    /// Reads, parses, applies `overrides` and validates in one go, so a file
    /// with both malformed entries and bad parameters gets one error listing all of them.
    public static func plan(file path: String, overrides: PipelineOverrides = PipelineOverrides(),
                            registry: PassRegistry) throws(PipelineError) -> PipelinePlan {
        let text = try text(ofFile: path)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let (pipeline, problems) = try parseCollecting(yaml: text, baseDirectory: directory, file: path)
        return try pipeline.applying(overrides).validate(registry: registry, file: path, earlierProblems: problems)
    }

    /// The text of the pipeline file at `path`. Read through a `FileHandle`:
    /// Foundation's whole-file readers (`String(contentsOfFile:)`,
    /// `Data(contentsOf:)`) leak 4 KB on an empty file (found by the fuzzer).
    static func text(ofFile path: String) throws(PipelineError) -> String {
        func refuse(_ reason: String) -> PipelineError {
            PipelineError(file: path, problems: ["cannot read the pipeline file: \(reason)"])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw refuse("no such file") }
        guard !isDirectory.boolValue else { throw refuse("it is a directory") }
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw refuse(error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse("it is not UTF-8 text") }
        return text
    }

    /// The pipeline (with what could be parsed) and the problems found; throws
    /// only when the text is not YAML at all.
    static func parseCollecting(yaml: String, baseDirectory: String,
                                file: String?) throws(PipelineError) -> (Pipeline, [String]) {
        let root: YAMLNode?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw PipelineError(file: file, problems: ["not valid YAML: \(error)"])
        }
        var parser = PipelineParser(baseDirectory: baseDirectory)
        let pipeline = parser.pipeline(from: root)
        return (pipeline, parser.problems)
    }
}

/// Walks the YAML tree of a pipeline file, collecting problems instead of
/// stopping at the first.
struct PipelineParser {
    let baseDirectory: String
    var problems: [String] = []

    init(baseDirectory: String) { self.baseDirectory = baseDirectory }

    mutating func pipeline(from root: YAMLNode?) -> Pipeline {
        var p = Pipeline()
        guard let root, case .mapping(let mapping) = root else {
            problems.append("the file must be a mapping with keys \(Pipeline.fileKeys.joined(separator: ", "))")
            return p
        }
        for (key, value) in entries(of: mapping, allowed: Pipeline.fileKeys, in: "the pipeline") where !isNull(value) {
            switch key {
            case "model": p.model = path(value, key)
            case "data": p.data = path(value, key)
            case "output": p.output = path(value, key)
            case "seed": p.seed = integer(value, key, atLeast: 0).map(UInt64.init) ?? p.seed
            case "threads": p.threads = integer(value, key, atLeast: 1) ?? p.threads
            case "validation-count": p.validationCount = integer(value, key, atLeast: 0) ?? p.validationCount
            case "steps": p.steps = steps(value)
            case "report": p.report = report(value)
            default: break
            }
        }
        return p
    }

    // MARK: Sections

    private mutating func steps(_ node: YAMLNode) -> [PipelineStep] {
        guard case .sequence(let items) = node else {
            problem(node, "'steps' must be a list of steps")
            return []
        }
        if items.isEmpty { problem(node, "'steps' is empty: a pipeline needs at least one step") }
        return items.enumerated().compactMap { step($1, number: $0 + 1) }
    }

    private mutating func step(_ node: YAMLNode, number: Int) -> PipelineStep? {
        if let name = scalarText(node), !isNull(node) {
            return PipelineStep(name: name, line: node.mark?.line)
        }
        guard case .mapping(let mapping) = node, mapping.count == 1, let name = scalarText(mapping[mapping.startIndex].key)
        else {
            problem(node, "step \(number) must be a step name, or one step name mapped to its parameters (`- fold-bn: {verify: true}`)")
            return nil
        }
        let value = mapping[mapping.startIndex].value
        return PipelineStep(name: name, parameters: parameters(value, step: number, name: name), line: node.mark?.line)
    }

    private mutating func parameters(_ node: YAMLNode, step number: Int, name: String) -> [String: String] {
        if isNull(node) { return [:] }
        guard case .mapping(let mapping) = node else {
            problem(node, "step \(number) (\(name)): parameters must be a mapping of names to values")
            return [:]
        }
        var values: [String: String] = [:]
        for (keyNode, value) in mapping {
            guard let key = scalarText(keyNode) else { problem(keyNode, "step \(number) (\(name)): parameter names must be text"); continue }
            guard values[key] == nil else { problem(keyNode, "step \(number) (\(name)): parameter '\(key)' is given twice"); continue }
            guard let text = scalarText(value), !isNull(value) else {
                problem(value, "step \(number) (\(name)): parameter '\(key)' must be a single value")
                continue
            }
            values[key] = PipelineStep.pathParameters.contains(key) && text != "input"
                ? resolvePath(text, against: baseDirectory) : text
        }
        return values
    }

    private mutating func report(_ node: YAMLNode) -> PipelineReportSettings? {
        guard case .mapping(let mapping) = node else {
            problem(node, "'report' must be a mapping with keys \(Pipeline.reportKeys.joined(separator: ", "))")
            return nil
        }
        var r = PipelineReportSettings()
        for (key, value) in entries(of: mapping, allowed: Pipeline.reportKeys, in: "report") where !isNull(value) {
            switch key {
            case "directory": r.directory = path(value, "report.directory")
            case "batches": r.batches = batches(value) ?? r.batches
            case "threads": r.threads = integer(value, "report.threads", atLeast: 1) ?? r.threads
            case "limit": r.limit = integer(value, "report.limit", atLeast: 1)
            case "validation": r.validation = boolean(value, "report.validation") ?? r.validation
            default: break
            }
        }
        return r
    }

    private mutating func batches(_ node: YAMLNode) -> [Int]? {
        let items: [YAMLNode]
        if case .sequence(let s) = node { items = Array(s) } else { items = [node] }
        let values = items.map { item in scalarText(item).flatMap { Int($0) } }
        guard !items.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            problem(node, "'report.batches' must be a positive integer or a list of them")
            return nil
        }
        return values.compactMap { $0 }
    }

    // MARK: Scalars

    /// The entries of `mapping` with text keys; unknown and repeated keys are problems.
    private mutating func entries(of mapping: YAMLNode.Mapping, allowed: [String], in place: String) -> [(String, YAMLNode)] {
        var seen: Set<String> = []
        var result: [(String, YAMLNode)] = []
        for (keyNode, value) in mapping {
            guard let key = scalarText(keyNode) else { problem(keyNode, "keys must be text"); continue }
            guard allowed.contains(key) else {
                problem(keyNode, "unknown key '\(key)' in \(place) (allowed: \(allowed.joined(separator: ", ")))")
                continue
            }
            guard seen.insert(key).inserted else { problem(keyNode, "key '\(key)' is given twice"); continue }
            result.append((key, value))
        }
        return result
    }

    private mutating func path(_ node: YAMLNode, _ key: String) -> String? {
        guard let text = scalarText(node), !text.isEmpty else {
            problem(node, "'\(key)' must be a path")
            return nil
        }
        return resolvePath(text, against: baseDirectory)
    }

    private mutating func integer(_ node: YAMLNode, _ key: String, atLeast minimum: Int) -> Int? {
        guard let text = scalarText(node), let value = Int(text), value >= minimum else {
            let got = scalarText(node).map { "'\($0)'" } ?? "a \(kind(of: node))"
            problem(node, "'\(key)' must be an integer >= \(minimum), got \(got)")
            return nil
        }
        return value
    }

    /// A yes/no value, spelled as pass parameters spell one (`true`, `no`, `1`, ...).
    private mutating func boolean(_ node: YAMLNode, _ key: String) -> Bool? {
        guard let text = scalarText(node), case .bool(let value)? = ParameterSpec(key, .bool, default: nil, help: "").parse(text) else {
            problem(node, "'\(key)' must be true or false, got " + (scalarText(node).map { "'\($0)'" } ?? "a \(kind(of: node))"))
            return nil
        }
        return value
    }

    private func scalarText(_ node: YAMLNode) -> String? {
        if case .scalar(let s) = node { return s.string }
        return nil
    }

    private func isNull(_ node: YAMLNode) -> Bool {
        if case .scalar(let s) = node { return s.style == .plain && node.null != nil }
        return false
    }

    private func kind(of node: YAMLNode) -> String {
        switch node {
        case .scalar: "value"
        case .mapping: "mapping"
        case .sequence: "list"
        case .alias: "alias"
        }
    }

    private mutating func problem(_ node: YAMLNode, _ message: String) {
        problems.append(node.mark.map { "line \($0.line): \(message)" } ?? message)
    }
}

/// `path` resolved against `directory` when relative, without `.` and `..` components.
public func resolvePath(_ path: String, against directory: String) -> String {
    let base = URL(fileURLWithPath: directory, isDirectory: true)
    return URL(fileURLWithPath: path, relativeTo: base).standardizedFileURL.path
}
