#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file could not be written; names the path, the step that failed and the
/// system's reason.
public struct FileWriteError: Error, Equatable, CustomStringConvertible {
    public var path: String
    /// The step that failed: "create", "write", "sync", "rename", ...
    public var operation: String
    /// The system's explanation (`strerror`), or the reason given by the caller.
    public var reason: String

    public init(path: String, operation: String, reason: String) {
        self.path = path; self.operation = operation; self.reason = reason
    }

    public var description: String { "cannot write \(path): \(operation) failed: \(reason)" }
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all
/// of `bytes`, never a partial file, even if the process dies midway.
///
/// The bytes go to a temporary file in the same directory (so the final
/// `rename` stays within one file system and is atomic), which is flushed to
/// disk with `fsync` and then renamed over `path`; the directory is synced
/// afterwards so the rename itself survives a crash. On any failure the
/// temporary file is removed and `path` is untouched. A file that is replaced
/// keeps its permission bits; a new one gets `0666` less the umask.
///
/// - Throws: `FileWriteError` naming the failed step.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try writeFileAtomically(bytes, to: path, beforeRename: {})
}

/// `writeFileAtomically`, with a hook that runs after the temporary file is
/// complete and before it is renamed, so tests can make that step fail.
func writeFileAtomically(_ bytes: [UInt8], to path: String, beforeRename: () throws -> Void) throws {
    let (directory, file) = splitPath(path)
    let temporary = "\(directory)/.\(file).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"

    func failure(_ operation: String, _ code: Int32 = errno) -> FileWriteError {
        FileWriteError(path: path, operation: operation, reason: String(cString: strerror(code)))
    }

    // O_EXCL: never follow or reuse something already at the temporary name.
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    guard fd >= 0 else { throw failure("create temporary file") }
    var closed = false
    var renamed = false
    defer {
        if !closed { close(fd) }
        if !renamed { unlink(temporary) }
    }
    // The replaced file's permission bits (not its owner: only root could give it back).
    var existing = stat()
    if stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG {
        guard fchmod(fd, existing.st_mode & 0o7777) == 0 else { throw failure("keep permissions") }
    }

    // 0 when every byte is written, else the errno of the failed write.
    let writeError: Int32 = bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return 0
    }
    guard writeError == 0 else { throw failure("write", writeError) }
    guard fsync(fd) == 0 else { throw failure("sync") }
    closed = true
    guard close(fd) == 0 else { throw failure("close") }
    try beforeRename()
    guard rename(temporary, path) == 0 else { throw failure("rename") }
    renamed = true

    // Make the rename durable; a failure here leaves a complete file in place,
    // so it is not worth reporting.
    let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dirfd >= 0 {
        _ = fsync(dirfd)
        close(dirfd)
    }
}

/// The directory (or ".") and last component of `path`.
private func splitPath(_ path: String) -> (directory: String, file: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
}
