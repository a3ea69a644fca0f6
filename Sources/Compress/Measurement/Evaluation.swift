import Foundation

/// Top-1 and top-5 accuracy of a model on labeled images.
public struct AccuracyResult: Sendable, Equatable, Codable {
    public var images: Int
    public var top1Correct: Int
    public var top5Correct: Int
    /// Fraction in [0, 1].
    public var top1: Double { images > 0 ? Double(top1Correct) / Double(images) : 0 }
    public var top5: Double { images > 0 ? Double(top5Correct) / Double(images) : 0 }
}

/// Runs a model over a dataset in batches and counts correct predictions.
public enum Evaluation {
    /// Accuracy of `model` on the first `limit` images of `data` (all when nil),
    /// computed with the `kernels` set (kernel sets round differently, so an
    /// accuracy is reproducible with the set that measured it).
    public static func accuracy(of model: Model, on data: LabeledImages, limit: Int? = nil, batch: Int = 256,
                                threads: Int = 1, kernels: KernelSet = .processDefault,
                                progress: any ProgressReporting = SilentProgress(),
                                cancellation: CancellationFlag? = nil) throws -> AccuracyResult {
        let session = try Session(model: model, threads: threads, kernels: kernels)
        let n = min(limit ?? data.count, data.count)
        var result = AccuracyResult(images: 0, top1Correct: 0, top5Correct: 0)
        progress.begin("eval", total: n)
        defer { progress.end() }
        var start = 0
        while start < n {
            if cancellation?.isCancelled == true { throw PassCancelled() }
            let end = min(start + batch, n)
            let slice = data.batch(start..<end)
            let logits = try session.run(slice.images)
            count(logits: logits, labels: slice.labels, into: &result)
            start = end
            progress.update(completed: end, detail: String(format: "top-1 %.2f%%", result.top1 * 100))
        }
        return result
    }

    /// Top-1 agreement of `model` with `reference` (e.g. a student with its
    /// teacher): the fraction of the first `limit` images of `data` (all when
    /// nil) on which both predict the same class, the labels unused. It is
    /// `model`'s top-1 accuracy with `reference`'s predictions as labels.
    public static func agreement(of model: Model, with reference: Model, on data: LabeledImages, limit: Int? = nil,
                                 batch: Int = 256, threads: Int = 1) throws -> Double {
        let images = data.batch(0..<min(limit ?? data.count, data.count))
        let session = try Session(model: reference, threads: threads)
        var predicted: [Int32] = []
        var start = 0
        while start < images.count {
            let end = min(start + batch, images.count)
            predicted += topClasses(try session.run(images.batch(start..<end).images))
            start = end
        }
        let relabelled = LabeledImages(images: images.images, labels: predicted)
        return try accuracy(of: model, on: relabelled, batch: batch, threads: threads).top1
    }

    /// Each row's highest-scoring class of `logits` `[N, classes]` (the first on ties).
    static func topClasses(_ logits: Tensor) -> [Int32] {
        let k = logits.shape[1]
        let v = logits.floats
        return (0..<logits.shape[0]).map { i in
            var best = 0
            for j in 1..<k where v[i * k + j] > v[i * k + best] { best = j }
            return Int32(best)
        }
    }

    /// Adds top-1/top-5 hits of `logits` ([N, classes]) against `labels` to `result`.
    static func count(logits: Tensor, labels: [Int32], into result: inout AccuracyResult) {
        let classes = logits.shape[1]
        let values = logits.floats
        for (i, label) in labels.enumerated() {
            let row = values[(i * classes)..<((i + 1) * classes)]
            let target = row[row.startIndex + Int(label)]
            // Rank = number of classes scoring strictly higher (ties count in the label's favour);
            // a non-finite score for the label is never correct.
            let higher = target.isFinite ? row.reduce(0) { $0 + ($1 > target || $1.isNaN ? 1 : 0) } : Int.max
            if higher == 0 { result.top1Correct += 1 }
            if higher < 5 { result.top5Correct += 1 }
        }
        result.images += labels.count
    }
}
