import Compress
import Foundation

/// Per-layer sensitivity analysis (Han et al. 2015, §4.2): prune one layer at
/// a time to each sparsity, leave every other layer untouched, and measure
/// top-1 on validation images.
public enum SensitivityAnalysis {
    /// The sparsities tried when none are given: 0 to 90% in steps of 10, and 95%.
    public static let defaultSparsities: [Double] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]

    /// Measures every selected layer's curve.
    ///
    /// - Parameters:
    ///   - images: validation images (choices made from the curves must not see the test split).
    ///   - description: what `images` are, recorded in the report.
    public static func run(model: Model, modelName: String, layers: [PrunableLayer], sparsities: [Double],
                           images: LabeledImages, description: String, threads: Int,
                           progress: any Compress.ProgressReporting = SilentProgress(),
                           cancellation: CancellationFlag = CancellationFlag()) throws -> SensitivityReport {
        let baseline = try Evaluation.accuracy(of: model, on: images, threads: threads).top1
        var curves: [SensitivityCurve] = []
        progress.begin("sensitivity", total: layers.count * sparsities.count)
        defer { progress.end() }
        for (l, layer) in layers.enumerated() {
            var top1: [Double] = []
            for (i, s) in sparsities.enumerated() {
                if cancellation.isCancelled { throw PassCancelled() }
                let (pruned, _) = try magnitudePruned(model.graph, layers: [layer], target: .perLayer([layer.node: s]))
                var m = model
                m.graph = pruned
                top1.append(s == 0 ? baseline : try Evaluation.accuracy(of: m, on: images, threads: threads).top1)
                progress.update(completed: l * sparsities.count + i + 1,
                                detail: String(format: "%@ at %.0f%%: %.2f%%", layer.node, s * 100, top1.last! * 100))
            }
            curves.append(SensitivityCurve(layer: layer.node, weights: model.graph.initializers[layer.weight]!.count,
                                           top1: top1))
        }
        return SensitivityReport(model: modelName, granularity: "weight", measuredOn: description, baselineTop1: baseline,
                                 sparsities: sparsities, layers: curves)
    }
}
