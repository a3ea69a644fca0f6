import Compress
import Foundation

extension PrunePass {
    /// Structured pruning: removes whole channels through their dependency
    /// groups over the schedule's steps, fine-tuning after each, and returns
    /// a physically smaller dense model.
    func pruneChannels(_ model: Model, context: PassContext) throws -> PassOutcome {
        let selected = Set(try selection.layers(in: model.graph, pass: Self.name).map(\.node))
        var current = model
        var changes: [String] = []
        var validation: Double?
        let calibration = try calibrationImages(context: context)
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
                                           context: context, changes: &changes)
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
        return PassOutcome(model: current, changes: changes, metrics: metrics)
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
    func calibrationImages(context: PassContext) throws -> CalibrationImages? {
        guard criterion.needsImages else { return nil }
        let validation = try context.data.splits().validation
        guard validation.count > 0 else {
            throw ParameterError(pass: Self.name, problems: ["criterion \(criterion.rawValue) needs validation images"])
        }
        return CalibrationImages(validation.batch(0..<min(calibrationImages, validation.count)))
    }

    /// What step `step` removes, for the structured selection.
    func channelTarget(groups: [ChannelGroup], step: Int, model: Model, importance: [Int: [Float]],
                       context: PassContext, changes: inout [String]) throws -> PruningTarget {
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
        case .targetLatency(let r, _):
            return .macFraction(try macFractionMeeting(latency: r, model: model, groups: groups, importance: importance,
                                                       context: context, changes: &changes))
        case .thresholdStd, .sensitivity:
            preconditionFailure("refused at parameter validation for channel granularity")
        }
    }

    /// The largest MAC fraction whose pruned model's measured batch-1
    /// latency is within `fraction` of the input's (bisection over the MAC
    /// target, importance scored once).
    func macFractionMeeting(latency fraction: Double, model: Model, groups: [ChannelGroup], importance: [Int: [Float]],
                            context: PassContext, changes: inout [String]) throws -> Double {
        let baseline = try context.latency.measure(model, batch: 1, threads: context.threads).medianMs
        var (lo, hi) = (0.02, 1.0)  // lo meets the target (assumed), hi does not
        var best: (macs: Double, ms: Double)?
        for _ in 0..<7 {
            try context.checkCancellation()
            let mid = (lo + hi) / 2
            guard let removal = try? selectChannelsToRemove(in: model.graph, groups: groups, importance: importance,
                                                            target: .macFraction(mid), channelMultiple: roundTo > 1 ? roundTo : nil),
                  let pruned = try? applyChannelPruning(model, removing: removal) else { hi = mid; continue }
            let ms = try context.latency.measure(pruned.model, batch: 1, threads: context.threads).medianMs
            if ms <= fraction * baseline { lo = mid; best = (mid, ms) } else { hi = mid }
        }
        guard let best else {
            throw ParameterError(pass: Self.name, problems: [String(
                format: "no pruning of the selected layers reaches %.0f%% of the measured latency (%.3f ms)", fraction * 100, baseline)])
        }
        changes.append(String(format: "latency target %.0f%% of %.3f ms (batch 1, %d thread(s)): MAC fraction %.3f measured %.3f ms",
                              fraction * 100, baseline, context.threads, best.macs, best.ms))
        return best.macs
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
