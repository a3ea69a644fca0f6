import Compress
import Foundation

extension PrunePass {
    /// Magnitude pruning of single weights over the schedule's steps, each
    /// step followed by masked fine-tuning when asked.
    func pruneWeights(_ model: Model, context: PassContext) throws -> PassOutcome {
        let layers = try selection.layers(in: model.graph, pass: Self.name)
        let final = try finalTargets(layers, model: model)
        var current = model
        var changes: [String] = []
        var counts: [LayerSparsity] = []
        var validation: Double?
        for step in 1...steps {
            try context.checkCancellation()
            let target = stepTarget(final, step: step, layers: layers, start: model.graph)
            (current.graph, counts) = try magnitudePruned(current.graph, layers: layers, target: target)
            let reached = weightSparsity(current.graph, layers: layers)
            var line = String(format: "step %d/%d: %.2f%% of the selected weights pruned", step, steps, reached * 100)
            if fineTuneEpochs > 0 {
                current = try fineTuned(current, context: context)
                validation = current.metadata.history.last?.metrics["validation-accuracy"]
                line += String(format: ", fine-tuned %d epoch(s): validation %.2f%%", fineTuneEpochs, (validation ?? 0) * 100)
            }
            changes.append(line)
        }
        changes += counts.map { c in
            String(format: "%@: %d of %d weights kept (%.1f%% pruned)", c.layer, c.nonZero, c.weights, c.sparsity * 100)
        }
        var metrics = try sparsityMetrics(before: model, after: current)
        metrics["selected-sparsity"] = weightSparsity(current.graph, layers: layers)
        if let validation { metrics["validation-accuracy"] = validation }
        return PassOutcome(model: current, changes: changes, metrics: metrics)
    }

    /// The target to reach by the last step, resolved per layer where it is per layer.
    func finalTargets(_ layers: [PrunableLayer], model: Model) throws -> PruningTarget {
        switch amount {
        case .sparsity(let s) where scope == .global: return .global(s)
        case .sparsity(let s): return .perLayer(Dictionary(uniqueKeysWithValues: layers.map { ($0.node, s) }))
        case .thresholdStd(let k):
            // σ from the input model's weights, so every step's threshold is a multiple of one number.
            return .thresholds(standardDeviationThresholds(k, layers: layers, in: model.graph))
        case .layerSparsity(let entries):
            var byLayer: [String: Double] = [:]
            var problems: [String] = []
            for (pattern, _) in entries where !layers.contains(where: { globMatches(pattern, $0.node) }) {
                problems.append("layer-sparsity pattern '\(pattern)' matches no selected layer")
            }
            guard problems.isEmpty else { throw ParameterError(pass: Self.name, problems: problems) }
            for layer in layers {
                if let entry = entries.first(where: { globMatches($0.pattern, layer.node) }) { byLayer[layer.node] = entry.sparsity }
            }
            return .perLayer(byLayer)
        case .sensitivity(let path, let maxDrop):
            let report = try SensitivityReport.read(path: path)
            let chosen = report.sparsities(maxDrop: maxDrop / 100)
            let missing = layers.map(\.node).filter { chosen[$0] == nil }
            guard missing.isEmpty else {
                throw ParameterError(pass: Self.name, problems: ["\(path) has no curve for layer(s) \(missing.joined(separator: ", "))"])
            }
            return .perLayer(chosen.filter { name, _ in layers.contains { $0.node == name } })
        case .targetMACs, .targetLatency:
            preconditionFailure("refused at parameter validation for weight granularity")
        }
    }

    /// What step `step` prunes to: the schedule's point between the input
    /// model's sparsity and the final target.
    func stepTarget(_ final: PruningTarget, step: Int, layers: [PrunableLayer], start: Graph) -> PruningTarget {
        func ramp(_ target: Double, from s0: Double) -> Double {
            schedule.sparsity(afterStep: step, of: steps, start: s0, target: target)
        }
        func layerStart(_ node: String) -> Double { weightSparsity(start, layers: layers.filter { $0.node == node }) }
        switch final {
        case .global(let s):
            return .global(ramp(s, from: weightSparsity(start, layers: layers)))
        case .perLayer(let byLayer):
            return .perLayer(Dictionary(uniqueKeysWithValues: byLayer.map { ($0.key, ramp($0.value, from: layerStart($0.key))) }))
        case .thresholds(let byLayer):
            return .thresholds(byLayer.mapValues { Float(schedule.thresholdMultiple(afterStep: step, of: steps, target: Double($0))) })
        case .macFraction:
            return final
        }
    }
}

/// Counts of non-zero conv and linear weights and the file size, before and after.
func sparsityMetrics(before: Model, after: Model) throws -> [String: Double] {
    func weights(_ g: Graph) -> (total: Int, nonZero: Int) {
        prunableLayers(in: g).reduce(into: (0, 0)) { acc, layer in
            let w = g.initializers[layer.weight]!
            acc.0 += w.count
            acc.1 += w.nonZeroCount
        }
    }
    let (b, a) = (weights(before.graph), weights(after.graph))
    return [
        "weights-before": Double(b.total), "nonzero-weights-before": Double(b.nonZero),
        "weights-after": Double(a.total), "nonzero-weights-after": Double(a.nonZero),
        "nonzero-reduction": a.nonZero == 0 ? 0 : Double(b.nonZero) / Double(a.nonZero),
        "file-bytes-before": Double(try ModelFile.encode(before).count),
        "file-bytes-after": Double(try ModelFile.encode(after).count),
    ]
}
