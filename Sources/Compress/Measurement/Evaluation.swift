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
    /// Accuracy of `model` on the first `limit` images of `data` (all when nil).
    public static func accuracy(of model: Model, on data: LabeledImages, limit: Int? = nil, batch: Int = 256,
                                threads: Int = 1, progress: any ProgressReporting = SilentProgress(),
                                cancellation: CancellationFlag? = nil) throws -> AccuracyResult {
        let session = try Session(model: model, threads: threads)
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
