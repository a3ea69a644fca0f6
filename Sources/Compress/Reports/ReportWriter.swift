import Foundation

/// Writes a report's three documents into a directory.
public enum ReportWriter {
    /// The file names `write` creates.
    public static let jsonName = "report.json", markdownName = "report.md", htmlName = "report.html"

    /// Writes `directory`/report.json, report.md and report.html, each
    /// atomically, creating the directory (and its parents) when missing.
    ///
    /// - Throws: `FileWriteError` when a file cannot be written, or the
    ///   directory cannot be created.
    public static func write(_ report: ComparisonReport, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(path: directory, operation: "create directory", reason: error.localizedDescription)
        }
        let files = [(jsonName, try json(report)), (markdownName, MarkdownReport.render(report)),
                     (htmlName, HTMLReport.render(report))]
        for (name, text) in files {
            try writeFileAtomically(Array(text.utf8), to: (directory as NSString).appendingPathComponent(name))
        }
    }

    /// The report as pretty JSON with sorted keys, ending in a newline.
    public static func json(_ report: ComparisonReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    /// Decodes a report written by `json(_:)`.
    public static func decode(json data: Data) throws -> ComparisonReport {
        try JSONDecoder().decode(ComparisonReport.self, from: data)
    }
}
