import Foundation
import Testing
@testable import Compress

// Oracles shared by CompressTests and CLITests (Tests/CLITests/Oracles.swift is a
// link to this file): comparisons and counts that do not go through the code under test.

/// Expects `actual` to hold as many values as `expected`, and each within
/// `tolerance * (1 + |expected|)` of its counterpart (relative for large values,
/// absolute near zero). Counts are compared first, so two empty or mismatched
/// outputs fail instead of passing an empty `zip`. An empty `expected` fails too:
/// a comparison of nothing checks nothing.
func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float,
                 _ comment: @autoclosure () -> Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    let prefix = comment().map { "\($0): " } ?? ""
    guard !expected.isEmpty else {
        Issue.record("\(prefix)nothing to compare: the expected values are empty (\(actual.count) actual)", sourceLocation: sourceLocation)
        return
    }
    guard actual.count == expected.count else {
        Issue.record("\(prefix)\(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var worst: Int?, worstExcess: Float = 0
    for i in expected.indices {
        let difference = abs(actual[i] - expected[i])
        let excess = difference.isNaN ? .infinity : difference - tolerance * (1 + abs(expected[i]))
        if excess > worstExcess { worst = i; worstExcess = excess }
    }
    if let worst {
        Issue.record("\(prefix)value \(worst) of \(expected.count) is \(actual[worst]), expected \(expected[worst]) within \(tolerance) x (1 + |expected|)",
                     sourceLocation: sourceLocation)
    }
}

/// `expectClose` for tensors: shapes equal, then the values.
func expectClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float,
                 _ comment: @autoclosure () -> Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(comment().map { "\($0): " } ?? "")shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    expectClose(actual.floats, expected.floats, tolerance: tolerance, comment(), sourceLocation: sourceLocation)
}

/// Bytes of the file at `path`, from `stat(2)`.
func statSize(_ path: String) throws -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
    return Int(info.st_size)
}

/// Non-zero elements of every initializer, by a plain loop.
func nonZerosByLoop(_ model: Model) -> Int {
    model.graph.initializers.values.reduce(0) { total, t in total + t.floats.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
}

/// Zero elements of `tensor`, by a plain loop.
func zerosByLoop(_ tensor: Tensor) -> Int {
    tensor.floats.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
}

/// Top-1 and top-5 by a plain loop over `logits` ([N, classes]): an image counts when
/// fewer than 1 (or 5) classes score strictly higher than its label (a NaN label score never does).
/// Logits that do not fit the labels are an issue, and give NaN accuracies.
func accuracyByLoop(logits: Tensor, labels: [Int], sourceLocation: SourceLocation = #_sourceLocation) -> (top1: Double, top5: Double) {
    guard logits.rank == 2, logits.shape[0] == labels.count, !labels.isEmpty,
          labels.allSatisfy({ (0..<logits.shape[1]).contains($0) }) else {
        Issue.record("logits \(logits.shape) for \(labels.count) labels", sourceLocation: sourceLocation)
        return (.nan, .nan)
    }
    let classes = logits.shape[1], values = logits.floats
    var top1 = 0, top5 = 0
    for (i, label) in labels.enumerated() {
        let row = values[(i * classes)..<((i + 1) * classes)]
        let target = row[row.startIndex + label]
        let higher = target.isNaN ? Int.max : row.filter { $0 > target }.count
        if higher < 1 { top1 += 1 }
        if higher < 5 { top5 += 1 }
    }
    return (Double(top1) / Double(labels.count), Double(top5) / Double(labels.count))
}

/// `accuracyByLoop` on the reference evaluator's logits for `images` (slow: small models only).
func accuracyByLoop(_ model: Model, images: Tensor, labels: [Int],
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> (top1: Double, top5: Double) {
    accuracyByLoop(logits: try ReferenceEvaluator.run(model: model, input: images), labels: labels, sourceLocation: sourceLocation)
}
