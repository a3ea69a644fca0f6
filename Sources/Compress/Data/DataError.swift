/// A problem reading a data file or a dataset directory. Every case names the
/// file or directory at fault, so the message alone says what to fix.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist or cannot be opened.
    case cannotOpen(path: String, reason: String)
    /// The file could not be written (the previous file, if any, is intact).
    case cannotWrite(path: String, reason: String)
    /// The file ends before the data its header announces.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// The file is not in the expected format (bad magic, malformed header, trailing bytes).
    case malformed(path: String, detail: String)
    /// The file is well formed but uses something this reader does not handle.
    case unsupported(path: String, detail: String)
    /// The files of a dataset disagree with each other or with the request.
    case inconsistent(detail: String)
    /// A dataset directory is missing or holds no recognized files.
    case datasetNotFound(directory: String, detail: String)
    /// The file's array, at the shape its header declares (or inflated from
    /// gzip so far), needs more memory than the memory budget allows.
    case exceedsMemoryBudget(MemoryBudgetExceeded)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let r): "cannot open \(p): \(r)"
        case .cannotWrite(let p, let r): "cannot write \(p): \(r)"
        case .truncated(let p, let e, let a):
            "\(p) is truncated: its header announces \(e) bytes, the file has \(a)"
        case .malformed(let p, let d): "\(p) is malformed: \(d)"
        case .unsupported(let p, let d): "\(p): \(d)"
        case .inconsistent(let d): "inconsistent dataset: \(d)"
        case .datasetNotFound(let dir, let d): "no dataset in \(dir): \(d)"
        case .exceedsMemoryBudget(let refusal): refusal.description
        }
    }
}
