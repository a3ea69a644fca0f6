import Foundation
import Synchronization
import Testing
@testable import Compress
@testable import Prune

/// A stand-in for the benchmark: latency proportional to the model's MACs,
/// `MACs / 2^20` ms per image (a power of two, so comparisons with the target are
/// exact), or a constant; counts the models it was asked to time.
final class FakeLatency: LatencyMeasuring {
    enum Law: Sendable { case proportionalToMACs, constant(Double) }
    let law: Law
    private let calls = Mutex(0)

    init(_ law: Law = .proportionalToMACs) { self.law = law }

    var measured: Int { calls.withLock { $0 } }

    static func milliseconds(macs: Int) -> Double { Double(macs) / 1_048_576 }

    func measure(_ model: Model, batch: Int, threads: Int) throws -> LatencyMeasurement {
        calls.withLock { $0 += 1 }
        let ms: Double
        switch law {
        case .proportionalToMACs: ms = Self.milliseconds(macs: try model.graph.macsPerSample() * batch)
        case .constant(let c): ms = c
        }
        return LatencyMeasurement(batch: batch, threads: threads, repetitions: 1, medianMs: ms, p90Ms: ms, minMs: ms,
                                  maxMs: ms, imagesPerSecond: Double(batch) * 1000 / ms)
    }
}

@Suite struct LatencyTargetTests {
    let model = Architecture.resnet20.build(seed: 3, inputShape: [1, 8, 8], classes: 4)

    func run(_ raw: [String: String], latency: FakeLatency) throws -> (model: Model, record: PassRecord) {
        let (pass, parameters) = try prunePass(["granularity": "channel", "target-latency": "0.5"].merging(raw) { $1 })
        return try pass.run(on: model, context: PassContext(latency: latency), parameters: parameters)
    }

    /// The recorded latency table of `model`'s last history entry.
    func table(of model: Model) throws -> LatencyTable {
        try LatencyTable(json: try #require(model.metadata.history.last?.attachments[LatencyTable.attachmentName]))
    }

    func temporaryPath(_ suffix: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("latency-\(UUID().uuidString)\(suffix)").path
    }

    /// The L1 channel selection for a MAC fraction, as the pass makes it (importance scored on the input).
    func selected(_ fraction: Double) throws -> ChannelPruningResult {
        try pruneChannels(model, criterion: .l1, target: .macFraction(fraction))
    }

    @Test func bisectionFindsTheLargestMACFractionWhoseLatencyMeetsTheTarget() throws {
        let latency = FakeLatency()
        let (out, record) = try run([:], latency: latency)
        // Independently of the bisection: with latency proportional to MACs, which grow with the
        // MAC fraction, seven halvings of [0.02, 1] end on the largest of the 127 points
        // 0.02 + 0.98 k / 128 whose pruned model has at most half the MACs.
        let baselineMACs = try model.graph.macsPerSample()
        let k = try #require((1..<128).reversed().first { k in
            try selected(0.02 + 0.98 * Double(k) / 128).record.macsAfter * 2 <= baselineMACs
        })
        let fraction = 0.02 + 0.98 * Double(k) / 128
        let expected = try selected(fraction)
        #expect(out.graph == expected.model.graph)
        #expect(record.changes.contains(String(
            format: "latency target 50%% of %.3f ms (batch 1, 1 thread(s)): MAC fraction %.3f measured %.3f ms",
            FakeLatency.milliseconds(macs: baselineMACs), fraction, FakeLatency.milliseconds(macs: expected.record.macsAfter))))
        #expect(latency.measured == 8)

        // The record: the input model and the seven candidates, each with its widths and latency.
        let recorded = try table(of: out)
        #expect((recorded.batch, recorded.threads) == (1, 1))
        #expect(recorded.baseline.ms == FakeLatency.milliseconds(macs: baselineMACs))
        #expect(recorded.baseline.widths["conv1"] == 16 && recorded.baseline.widths["layer3.2.conv1"] == 64)
        #expect(recorded.candidates.count == 7)
        #expect(abs(try #require(recorded.candidates.first).macFraction - 0.51) < 1e-12)
        #expect(recorded.candidates.contains { abs($0.macFraction - fraction) < 1e-12 })
        for candidate in recorded.candidates {
            let pruned = try selected(candidate.macFraction)
            #expect(candidate.ms == FakeLatency.milliseconds(macs: pruned.record.macsAfter))
            for layer in pruned.record.layers where recorded.baseline.widths[layer.layer] != nil {
                #expect(candidate.widths[layer.layer] == layer.outputChannelsAfter, "\(layer.layer)")
            }
        }
    }

    @Test func aRecordedTableReplaysTheChoiceByteForByte() throws {
        let (first, _) = try run([:], latency: FakeLatency())
        let text = try #require(first.metadata.history.last?.attachments[LatencyTable.attachmentName])
        let path = temporaryPath(".json")
        try text.write(toFile: path, atomically: true, encoding: .utf8)

        // Same output as the first run, given the table, whatever the machine measures (here:
        // every model equally slow, which would meet no target): the benchmark is never asked.
        func expectReplayed(_ out: Model, table: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var replayed = out
            let parameters = replayed.metadata.history[replayed.metadata.history.count - 1].parameters
            #expect(parameters["latency-table"] == table, sourceLocation: sourceLocation)
            #expect(parameters.filter { $0.key != "latency-table" } == first.metadata.history.last!.parameters,
                    sourceLocation: sourceLocation)
            // The run's parameters name the table; everything else is byte for byte the first run's.
            replayed.metadata.history[replayed.metadata.history.count - 1].parameters["latency-table"] = nil
            #expect(try ModelFile.encode(replayed) == ModelFile.encode(first), sourceLocation: sourceLocation)
        }
        let slow = FakeLatency(.constant(5))
        let (second, record) = try run(["latency-table": path], latency: slow)
        #expect(slow.measured == 0)
        try expectReplayed(second, table: path)
        #expect(record.changes.contains { $0.hasSuffix("; 8 latencies replayed from \(path), 0 measured") })

        // A model file whose history holds the table replays the same way.
        let modelPath = temporaryPath(".bin")
        try ModelFile.write(first, to: modelPath)
        let (third, _) = try run(["latency-table": modelPath], latency: slow)
        #expect(slow.measured == 0)
        try expectReplayed(third, table: modelPath)

        // Candidates missing from the table are measured, and the record says how many.
        var partial = try table(of: first)
        partial.candidates.removeLast(3)
        let partialPath = temporaryPath(".json")
        try partial.json().write(toFile: partialPath, atomically: true, encoding: .utf8)
        let again = FakeLatency()
        let (fourth, partialRecord) = try run(["latency-table": partialPath], latency: again)
        #expect(again.measured == 3)
        try expectReplayed(fourth, table: partialPath)
        #expect(partialRecord.changes.contains { $0.hasSuffix("; 5 latencies replayed from \(partialPath), 3 measured") })
    }

    @Test func unusableTablesGiveOneClearProblem() throws {
        func problems(_ contents: String?) throws -> [String] {
            let path = temporaryPath(".json")
            if let contents { try contents.write(toFile: path, atomically: true, encoding: .utf8) }
            do {
                _ = try run(["latency-table": path], latency: FakeLatency())
                return []
            } catch let error as ParameterError {
                return error.problems.map { $0.replacingOccurrences(of: path, with: "FILE") }
            }
        }
        let table = try LatencyTable(batch: 1, threads: 1, baseline: .init(widths: ["conv1": 16], ms: 1)).json()
        #expect(try problems(nil) == ["latency-table FILE: no such file or not readable"])
        #expect(try problems("not a table") == ["latency-table FILE: neither JSON nor a model file"])
        #expect(try problems("") == ["latency-table FILE: neither JSON nor a model file"])
        #expect(try problems("[1, 2]") == ["latency-table FILE: not a latency table: the top level has the wrong type"])
        #expect(try problems(#"{"format": "compressor latency table"}"#) == ["latency-table FILE: not a latency table: missing 'version'"])
        #expect(try problems(table.replacingOccurrences(of: "\"ms\" : 1", with: "\"ms\" : \"fast\""))
                == ["latency-table FILE: not a latency table: 'baseline.ms' has the wrong type"])
        #expect(try problems(table.replacingOccurrences(of: "\"batch\" : 1", with: "\"batch\" : 1.5"))
                == ["latency-table FILE: not a latency table: a number does not fit its field (an integer where one is expected?)"])
        #expect(try problems(table.replacingOccurrences(of: "compressor latency table", with: "other"))
                == ["latency-table FILE: not a latency table: format is 'other', not 'compressor latency table'"])
        #expect(try problems(table.replacingOccurrences(of: "\"ms\" : 1", with: "\"ms\" : -1"))
                == ["latency-table FILE: not a latency table: a latency is negative or not finite"])
        #expect(try problems(table.replacingOccurrences(of: "\"threads\" : 1", with: "\"threads\" : 2"))
                == ["latency-table FILE was measured at batch 1 with 2 thread(s); this run measures batch 1 with 1 thread(s)"])

        let modelPath = temporaryPath(".bin")
        try ModelFile.write(model, to: modelPath)
        #expect(throws: ParameterError(pass: "prune", problems: [
            "latency-table \(modelPath): the model's history holds no latency table (it comes from a run with --target-latency)",
        ])) { try run(["latency-table": modelPath], latency: FakeLatency()) }
        var bytes = try ModelFile.encode(model)
        bytes[bytes.count - 1] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: modelPath))
        #expect(throws: ParameterError.self) { try run(["latency-table": modelPath], latency: FakeLatency()) }
    }

    @Test func historyAttachmentsRoundTripThroughTheModelFile() throws {
        var m = model
        m.metadata.history.append(HistoryEntry(pass: "prune", parameters: ["target-latency": "0.5"], seed: 1,
                                               metrics: ["macs-after": 10],
                                               attachments: ["latency-table": "{\n  \"ms\" : 0.25\n}\n", "notes": "ünïcode ✓"]))
        let bytes = try ModelFile.encode(m)
        let decoded = try ModelFile.decode(bytes)
        #expect(decoded == m)
        #expect(decoded.metadata.history.last?.attachments == ["latency-table": "{\n  \"ms\" : 0.25\n}\n", "notes": "ünïcode ✓"])
        // Canonical: the same attachments in another insertion order give the same bytes.
        var reordered = m
        reordered.metadata.history[reordered.metadata.history.count - 1].attachments =
            ["notes": "ünïcode ✓", "latency-table": "{\n  \"ms\" : 0.25\n}\n"]
        #expect(try ModelFile.encode(reordered) == bytes)
        // Attachments take room in the file only when there are some.
        var plain = m
        plain.metadata.history[plain.metadata.history.count - 1].attachments = [:]
        #expect(try ModelFile.encode(plain).count < bytes.count)
        #expect(try ModelFile.decode(ModelFile.encode(plain)) == plain)
        var withNUL = m
        withNUL.metadata.history[withNUL.metadata.history.count - 1].attachments = ["bad": "a\0b"]
        #expect(throws: ModelFileError.self) { try ModelFile.encode(withNUL) }
    }
}
