import Foundation

/// A subset of a dataset's classes, relabelled `0..<count` in the order
/// given: `--classes 5-9` keeps the images of classes 5 to 9 and calls them
/// 0 to 4 (transfer learning, as in Vlaar & Leimkuhler, "Multirate Training
/// of Neural Networks", ICML 2022).
public struct ClassSubset: Sendable, Equatable {
    /// The original labels kept; the i-th becomes label i.
    public let classes: [Int]

    /// Parses `text`: comma-separated labels and inclusive ranges (`0-4`, `1,3,5-7`).
    /// - Throws: a `ClassSubsetError` for a malformed item, a repeated class, or nothing named.
    public init(parsing text: String, parameter: String = "classes") throws(ClassSubsetError) {
        var classes: [Int] = []
        var problems: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                .map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let low = bounds.first ?? nil, let high = bounds.last ?? nil, low >= 0, low <= high else {
                problems.append("\(parameter) entry '\(item)' must be a class N or a range N-M with N <= M (class 0 is the first)")
                continue
            }
            classes += Array(low...high)
        }
        let repeated = Set(classes.filter { c in classes.filter { $0 == c }.count > 1 }).sorted()
        if !repeated.isEmpty { problems.append("\(parameter) names class\(repeated.count == 1 ? "" : "es") \(repeated.map(String.init).joined(separator: ", ")) twice") }
        if classes.isEmpty && problems.isEmpty { problems.append("\(parameter) names no class") }
        guard problems.isEmpty else { throw ClassSubsetError(problems: problems) }
        self.classes = classes
    }

    /// Number of classes kept.
    public var count: Int { classes.count }

    /// The images of the kept classes, in their order in `images`, relabelled.
    public func apply(to images: LabeledImages) -> LabeledImages {
        var relabel = [Int32: Int32]()
        for (new, old) in classes.enumerated() { relabel[Int32(old)] = Int32(new) }
        let kept = images.labels.indices.filter { relabel[images.labels[$0]] != nil }
        var subset = images.subset(kept)
        subset.labels = subset.labels.map { relabel[$0]! }
        return subset
    }

    /// Every split restricted and relabelled, with the kept classes' names.
    /// - Throws: a `ClassSubsetError` when a class is not in the dataset's `classNames`.
    public func apply(to splits: DatasetSplits) throws(ClassSubsetError) -> DatasetSplits {
        let outside = classes.filter { $0 >= splits.classNames.count }
        guard outside.isEmpty else {
            throw ClassSubsetError(problems: [
                "class\(outside.count == 1 ? "" : "es") \(outside.map(String.init).joined(separator: ", ")) not in the dataset, whose classes are 0-\(splits.classNames.count - 1)",
            ])
        }
        return DatasetSplits(train: apply(to: splits.train), validation: apply(to: splits.validation),
                             test: apply(to: splits.test), classNames: classes.map { splits.classNames[$0] })
    }
}

/// What is wrong with a class subset, one problem per line.
public struct ClassSubsetError: Error, Equatable, CustomStringConvertible {
    public var problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}
