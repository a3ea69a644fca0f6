import Compress
import Foundation

/// Prints `value` as pretty JSON with sorted keys on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Formats rows as an aligned text table; numeric-looking columns align right.
func formatTable(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
    let numeric = header.indices.map { c in rows.allSatisfy { $0[c].isEmpty || isNumeric($0[c]) } && rows.contains { !$0[c].isEmpty } }
    func line(_ r: [String]) -> String {
        r.indices.map { c in
            let pad = String(repeating: " ", count: widths[c] - r[c].count)
            return numeric[c] ? pad + r[c] : r[c] + pad
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
}

private func isNumeric(_ s: String) -> Bool {
    !s.isEmpty && s.allSatisfy { "0123456789.,-%x".contains($0) }
}

/// Parses "1,64" into [1, 64], rejecting non-positive values.
func parsePositiveList(_ text: String, name: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { Int($0) }
    guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 1 }) else {
        throw CLIError("--\(name) takes a comma-separated list of positive integers, got '\(text)'")
    }
    return values
}

/// An error with one clear message for the user.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}
