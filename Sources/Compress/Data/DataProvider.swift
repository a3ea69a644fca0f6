import Synchronization

/// Loads data lazily and at most once.
public final class DataProvider: Sendable {
    private let load: @Sendable () throws -> DatasetSplits?
    private let cache = Mutex<DatasetSplits?>(nil)

    public init(_ load: @escaping @Sendable () throws -> DatasetSplits?) { self.load = load }

    /// The splits in `directory` (nil: the default dataset), the last
    /// `validationCount` training images held out for validation.
    /// With `imageLimit`, only the first N images of every split are kept (smoke runs).
    public static func directory(_ directory: String?, validationCount: Int, imageLimit: Int? = nil) -> DataProvider {
        DataProvider {
            let splits = try DatasetLoader.load(directory: directory, validationCount: validationCount)
            return imageLimit.map { splits.prefix($0) } ?? splits
        }
    }

    /// The splits, or an error when the pass needs data and none was given.
    public func splits() throws -> DatasetSplits {
        if let d = cache.withLock({ $0 }) { return d }
        guard let d = try load() else { throw DataUnavailable() }
        cache.withLock { $0 = d }
        return d
    }
}

/// Thrown when a pass needs data but the run has none.
public struct DataUnavailable: Error, CustomStringConvertible {
    public var description: String { "this pass needs data, but none was given (use --data DIR)" }
}
