import Compress
import Foundation

extension PrunePass {
    /// Structured pruning: removes whole channels through their dependency
    /// groups over the schedule's steps, fine-tuning after each, and returns
    /// a physically smaller dense model.
    func pruneChannels(_ model: Model, context: PassContext) throws -> PassOutcome {
        var selected = Set(try selection.layers(in: model.graph, pass: Self.name).map(\.node))
        // Transposed convolutions are sources of channel groups too (the other passes leave their weights alone).
        for node in model.graph.nodes where selection.contains(node.name) {
            if case .convTranspose = node.op { selected.insert(node.name) }
        }
        var current = model
        var changes: [String] = []
        var attachments: [String: String] = [:]
        var validation: Double?
        let calibration = try calibrationImages(for: model, context: context)
        for step in 1...steps {
            try context.checkCancellation()
            let groups = try channelDependencyGroups(in: current.graph).filter { g in
                g.isPrunable && g.sourceLayers.allSatisfy(selected.contains)
            }
            guard !groups.isEmpty else {
                throw ParameterError(pass: Self.name, problems: ["no prunable channel group lies entirely in the selected layers"])
            }
            let importance = try channelImportance(of: groups, in: current, criterion: criterion, calibration: calibration,
                                                   threads: context.threads)
            let target = try channelTarget(groups: groups, step: step, model: current, importance: importance,
                                           context: context, changes: &changes, attachments: &attachments)
            let removal = try selectChannelsToRemove(in: current.graph, groups: groups, importance: importance,
                                                     target: target, channelMultiple: roundTo > 1 ? roundTo : nil)
            let result = try applyChannelPruning(current, removing: removal)
            current = result.model
            var line = String(format: "step %d/%d: %d channels removed, MACs %@ -> %@", step, steps,
                              removal.values.reduce(0) { $0 + $1.count }, String(result.record.macsBefore),
                              String(result.record.macsAfter))
            if fineTuneEpochs > 0 {
                current = try fineTuned(current, context: context)
                validation = current.metadata.history.last?.metrics["validation-accuracy"]
                line += String(format: ", fine-tuned %d epoch(s): validation %.2f%%", fineTuneEpochs, (validation ?? 0) * 100)
            }
            changes.append(line)
        }
        changes += try channelSummary(before: model, after: current)
        var metrics = try sparsityMetrics(before: model, after: current)
        if let validation { metrics["validation-accuracy"] = validation }
        return PassOutcome(model: current, changes: changes, metrics: metrics, attachments: attachments)
    }

    /// The fraction of what is left that step `step` removes, so that the
    /// steps compound to the schedule's point on the way to removing `target`
    /// of the input's channels (or MACs).
    func stepRatio(_ step: Int, target: Double) -> Double {
        func reached(_ k: Int) -> Double { k == 0 ? 0 : schedule.sparsity(afterStep: k, of: steps, start: 0, target: target) }
        return 1 - (1 - reached(step)) / (1 - reached(step - 1))
    }

    /// The calibration images of a data-driven criterion (the first
    /// validation images), or nil when the criterion needs none.
    func calibrationImages(for model: Model, context: PassContext) throws -> CalibrationImages? {
        guard criterion.needsImages else { return nil }
        return try CalibrationImages.firstValidation(calibrationImages, for: model, context: context, pass: Self.name,
                                                     purpose: "criterion \(criterion.rawValue)")
    }

    /// What step `step` removes, for the structured selection.
    func channelTarget(groups: [ChannelGroup], step: Int, model: Model, importance: [Int: [Float]],
                       context: PassContext, changes: inout [String], attachments: inout [String: String]) throws -> PruningTarget {
        let layers = groups.flatMap(\.sourceLayers)
        switch amount {
        case .sparsity(let s):
            let ratio = stepRatio(step, target: s)
            return scope == .global ? .global(ratio)
                : .perLayer(Dictionary(uniqueKeysWithValues: layers.map { ($0, ratio) }))
        case .layerSparsity(let entries):
            var ratios: [String: Double] = [:]
            for group in groups {
                // A group takes the first pattern that names any of its layers.
                guard let entry = entries.first(where: { e in group.sourceLayers.contains { globMatches(e.pattern, $0) } })
                else { continue }
                let perStep = 1 - pow(1 - entry.sparsity, 1 / Double(steps))
                for layer in group.sourceLayers { ratios[layer] = perStep }
            }
            return .perLayer(ratios)
        case .targetMACs(let r):
            return .macFraction(1 - stepRatio(step, target: 1 - r))
        case .targetLatency(let r, let table):
            return .macFraction(try macFractionMeeting(latency: r, tablePath: table, model: model, groups: groups,
                                                       importance: importance, context: context, changes: &changes,
                                                       attachments: &attachments))
        case .thresholdStd, .sensitivity:
            preconditionFailure("refused at parameter validation for channel granularity")
        }
    }

    /// The largest MAC fraction whose pruned model's measured batch-1
    /// latency is within `fraction` of the input's (bisection over the MAC
    /// target, importance scored once). Adds the latencies it used to
    /// `attachments` as a `LatencyTable`; a candidate found in the table at
    /// `tablePath` takes the recorded latency instead of being measured.
    func macFractionMeeting(latency fraction: Double, tablePath: String?, model: Model, groups: [ChannelGroup],
                            importance: [Int: [Float]], context: PassContext, changes: inout [String],
                            attachments: inout [String: String]) throws -> Double {
        let (batch, threads) = (1, context.threads)
        let recorded = try tablePath.map { try recordedLatencies($0, batch: batch, threads: threads) }
        var (measured, replayed) = (0, 0)
        // A model with the same widths as one already timed in this search takes the same latency,
        // so a replay sees the very numbers the recorded search decided on.
        var timed: [[String: Int]: Double] = [:]
        func latency(of model: Model, widths: [String: Int]) throws -> Double {
            if let ms = timed[widths] { return ms }
            let ms: Double
            if let recorded = recorded?.milliseconds(forWidths: widths) {
                replayed += 1
                ms = recorded
            } else {
                measured += 1
                ms = try context.latency.measure(model, batch: batch, threads: threads).medianMs
            }
            timed[widths] = ms
            return ms
        }
        let fullWidths = channelWidths(groups, removing: [:])
        let baseline = try latency(of: model, widths: fullWidths)
        var table = LatencyTable(batch: batch, threads: threads, baseline: .init(widths: fullWidths, ms: baseline))
        var (lo, hi) = (0.02, 1.0)  // lo meets the target (assumed), hi does not
        var best: (macs: Double, ms: Double)?
        for _ in 0..<7 {
            try context.checkCancellation()
            let mid = (lo + hi) / 2
            guard let removal = try? selectChannelsToRemove(in: model.graph, groups: groups, importance: importance,
                                                            target: .macFraction(mid), channelMultiple: roundTo > 1 ? roundTo : nil),
                  let pruned = try? applyChannelPruning(model, removing: removal) else { hi = mid; continue }
            let widths = channelWidths(groups, removing: removal)
            let ms = try latency(of: pruned.model, widths: widths)
            table.candidates.append(.init(macFraction: mid, widths: widths, ms: ms))
            if ms <= fraction * baseline { lo = mid; best = (mid, ms) } else { hi = mid }
        }
        guard let best else {
            throw ParameterError(pass: Self.name, problems: [String(
                format: "no pruning of the selected layers reaches %.0f%% of the measured latency (%.3f ms)", fraction * 100, baseline)])
        }
        var line = String(format: "latency target %.0f%% of %.3f ms (batch 1, %d thread(s)): MAC fraction %.3f measured %.3f ms",
                          fraction * 100, baseline, threads, best.macs, best.ms)
        if let tablePath {
            line += String(format: "; %d latencies replayed from %@, %d measured", replayed, tablePath, measured)
        }
        changes.append(line)
        attachments[LatencyTable.attachmentName] = try table.json()
        return best.macs
    }

    /// The table in `path` for a search at `batch` and `threads`, or the one problem with it.
    func recordedLatencies(_ path: String, batch: Int, threads: Int) throws(ParameterError) -> LatencyTable {
        let table: LatencyTable
        do {
            table = try LatencyTable.read(path: path)
        } catch {
            throw ParameterError(pass: Self.name, problems: ["latency-table \(path): \(error.description)"])
        }
        guard table.batch == batch && table.threads == threads else {
            throw ParameterError(pass: Self.name, problems: [
                "latency-table \(path) was measured at batch \(table.batch) with \(table.threads) thread(s); "
                + "this run measures batch \(batch) with \(threads) thread(s)",
            ])
        }
        return table
    }

    /// The kept output channels of every source layer of `groups` after `removal`.
    func channelWidths(_ groups: [ChannelGroup], removing removal: [Int: [Int]]) -> [String: Int] {
        var widths: [String: Int] = [:]
        for group in groups {
            for layer in group.sourceLayers { widths[layer] = group.channels - (removal[group.id]?.count ?? 0) }
        }
        return widths
    }

    /// One line per conv/linear layer whose channels changed, and the totals.
    func channelSummary(before: Model, after: Model) throws -> [String] {
        let (b, a) = (try ModelSummary(before), try ModelSummary(after))
        var lines: [String] = []
        for node in after.graph.nodes {
            guard let w = after.graph.initializers[node.inputs.count > 1 ? node.inputs[1] : ""],
                  let old = before.graph.initializers[node.inputs[1]], w.shape != old.shape else { continue }
            lines.append("\(node.name): \(old.shape.map(String.init).joined(separator: "x")) -> "
                         + w.shape.map(String.init).joined(separator: "x"))
        }
        lines.append(String(format: "MACs %d -> %d (%.2fx fewer), parameters %d -> %d", b.macs, a.macs,
                            Double(b.macs) / Double(max(a.macs, 1)), b.parameters, a.parameters))
        return lines
    }
}
