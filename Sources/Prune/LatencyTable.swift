import Compress
import Foundation

/// The latencies a latency target (`target-latency`) was met with: the input
/// model's and every candidate's the search measured, at one batch size and
/// thread count. A candidate is identified by its widths, the kept output
/// channels of every layer the search may prune.
///
/// The prune pass records the table in its history entry (the attachment
/// `latency-table`, JSON) and reads one back through `latency-table`, from a
/// JSON file or a model file whose history holds one: a candidate found in it
/// takes the recorded latency instead of being measured, so given the table
/// the choice, and the output, are reproducible.
public struct LatencyTable: Sendable, Equatable, Codable {
    /// The attachment's name in a history entry.
    public static let attachmentName = "latency-table"
    /// What `format` says, so that another JSON file is not taken for a table.
    public static let formatName = "compressor latency table"
    /// The version this build writes and the newest it reads.
    public static let currentVersion = 1

    /// The input model's latency.
    public struct Baseline: Sendable, Equatable, Codable {
        /// Kept output channels by layer: every prunable layer at full width.
        public var widths: [String: Int]
        /// Median milliseconds per batch.
        public var ms: Double
    }

    /// One pruned model the search tried.
    public struct Candidate: Sendable, Equatable, Codable {
        /// The MAC fraction the candidate's channels were selected for.
        public var macFraction: Double
        /// Kept output channels by layer, for every layer the search may prune.
        public var widths: [String: Int]
        /// Median milliseconds per batch.
        public var ms: Double
    }

    public var format: String = formatName
    public var version: Int = currentVersion
    public var batch: Int
    public var threads: Int
    public var baseline: Baseline
    /// In the order the search tried them.
    public var candidates: [Candidate]

    public init(batch: Int, threads: Int, baseline: Baseline, candidates: [Candidate] = []) {
        self.batch = batch; self.threads = threads; self.baseline = baseline; self.candidates = candidates
    }

    /// The recorded latency of the model with `widths`, if any.
    public func milliseconds(forWidths widths: [String: Int]) -> Double? {
        baseline.widths == widths ? baseline.ms : candidates.first { $0.widths == widths }?.ms
    }

    /// The table as pretty JSON with sorted keys (the same table, the same text).
    public func json() throws -> String { try LatencyTableFile.json(self) }

    /// A table from its JSON text, or why the text is not one.
    public init(json text: String) throws(LatencyTableError) {
        let table = try LatencyTableFile.decode(LatencyTable.self, json: text)
        try LatencyTableFile.checkHeader(format: table.format, version: table.version, expectedFormat: Self.formatName,
                                         currentVersion: Self.currentVersion)
        let times = [table.baseline.ms] + table.candidates.map(\.ms)
        guard times.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw .notATable("a latency is negative or not finite") }
        self = table
    }

    /// The table in the file at `path`: a JSON table, or a model file whose
    /// history holds one (the latest).
    public static func read(path: String) throws(LatencyTableError) -> LatencyTable {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable }
        let model: Model
        do {
            model = try ModelFile.decode([UInt8](data))
        } catch .wrongMagic, .empty {
            guard let text = String(data: data, encoding: .utf8) else { throw .notJSON }
            return try LatencyTable(json: text)
        } catch {
            throw .badModelFile(error.description)
        }
        guard let text = model.metadata.history.last(where: { $0.attachments[attachmentName] != nil })?
            .attachments[attachmentName] else { throw .noTableInModel }
        return try LatencyTable(json: text)
    }
}
