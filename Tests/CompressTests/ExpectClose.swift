import Testing
@testable import Compress

/// Expects `actual` to hold as many values as `expected`, and each within
/// `tolerance * (1 + |expected|)` of its counterpart (relative for large values,
/// absolute near zero). Counts are compared first, so two empty or mismatched
/// outputs fail instead of passing an empty `zip`. An empty `expected` fails too:
/// a comparison of nothing checks nothing.
func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float,
                 _ comment: @autoclosure () -> Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    let prefix = comment().map { "\($0): " } ?? ""
    guard !expected.isEmpty, actual.count == expected.count else {
        Issue.record("\(prefix)\(actual.count) values, expected \(expected.count) (and more than 0)",
                     sourceLocation: sourceLocation)
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
