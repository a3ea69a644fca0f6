import Foundation

/// Why a latency table file (a pass's recorded measurements, `latency-table`)
/// cannot be used.
public enum LatencyTableError: Error, Equatable, CustomStringConvertible {
    case unreadable
    case notJSON
    case notATable(String)
    case badModelFile(String)
    case noTableInModel

    public var description: String {
        switch self {
        case .unreadable: "no such file or not readable"
        case .notJSON: "neither JSON nor a model file"
        case .notATable(let why): "not a latency table: \(why)"
        case .badModelFile(let why): "not a readable model file: \(why)"
        case .noTableInModel: "the model's history holds no latency table (it comes from a run with --target-latency)"
        }
    }
}

/// The latency table files passes write and read back: JSON with a `format`
/// name and a `version`, pretty-printed with sorted keys.
public enum LatencyTableFile {
    /// `table` as pretty JSON with sorted keys (the same table, the same text).
    public static func json(_ table: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(table), as: UTF8.self) + "\n"
    }

    /// A `T` decoded from `text`, or why the text is not one, naming the field at fault.
    public static func decode<T: Decodable>(_ type: T.Type, json text: String) throws(LatencyTableError) -> T {
        let data = Data(text.utf8)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw .notATable("missing \(place(context.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw .notATable("\(place(context.codingPath)) has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw .notATable("\(place(context.codingPath)) is null")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .notATable("\(place(context.codingPath)) is out of range")
        } catch {
            // The decoder calls a number that fits no field "not valid JSON" too.
            guard (try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)) != nil else { throw .notJSON }
            throw .notATable("a number does not fit its field (an integer where one is expected?)")
        }
    }

    /// Checks a decoded table's `format` and `version` against what this build writes.
    public static func checkHeader(format: String, version: Int, expectedFormat: String,
                                   currentVersion: Int) throws(LatencyTableError) {
        guard format == expectedFormat else { throw .notATable("format is '\(format)', not '\(expectedFormat)'") }
        guard version >= 1 && version <= currentVersion else {
            throw .notATable("version \(version) is not one this build reads (1...\(currentVersion))")
        }
    }

    /// `'candidates[2].ms'`, or "the top level".
    private static func place(_ keys: [any CodingKey]) -> String {
        guard !keys.isEmpty else { return "the top level" }
        let path = keys.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
        return "'" + (path.hasPrefix(".") ? path.dropFirst() : path[...]) + "'"
    }
}
