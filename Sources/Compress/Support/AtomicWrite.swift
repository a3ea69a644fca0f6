#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A file could not be written; names the path, the step that failed, the
/// system's reason and what became of the file that was there.
public struct FileWriteError: Error, Equatable, CustomStringConvertible {
    public var path: String
    /// The step that failed: "create", "write", "sync", "rename", ...
    public var operation: String
    /// The system's explanation (`strerror`, with a hint for a file-size
    /// limit), or the reason given by the caller.
    public var reason: String
    /// Whether a file was at `path` before the write (it is then unchanged);
    /// nil when the writer does not say.
    public var previousFileExisted: Bool?

    public init(path: String, operation: String, reason: String, previousFileExisted: Bool? = nil) {
        self.path = path; self.operation = operation; self.reason = reason
        self.previousFileExisted = previousFileExisted
    }

    /// What failed and what became of `path`, without the leading "cannot write PATH: ".
    public var explanation: String {
        let outcome = switch previousFileExisted {
        case true?: "; \(path) is unchanged"
        case false?: "; nothing was written"
        case nil: ""
        }
        return "\(operation) failed: \(reason)\(outcome)"
    }

    public var description: String { "cannot write \(path): \(explanation)" }

    /// `strerror(code)`; for EFBIG also its usual cause ("File too large" alone
    /// suggests the data is at fault).
    static func reason(forErrno code: Int32) -> String {
        let text = String(cString: strerror(code))
        return code == EFBIG ? text + " (over the file-size limit, see `ulimit -f`, or the file system's largest file)" : text
    }
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all
/// of `bytes`, never a partial file, even if the process dies midway.
///
/// The bytes go to a temporary file in the same directory (so the final
/// `rename` stays within one file system and is atomic), which is flushed to
/// disk with `fsync` and then renamed over `path`; the directory is synced
/// afterwards so the rename itself survives a crash. On any failure the
/// temporary file is removed and `path` is untouched. While the temporary
/// file exists it is listed in `WritesInProgress`, so a signal handler that
/// calls `WritesInProgress.abandon()` removes it too. A file that is replaced
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
    // The replaced file's permission bits (not its owner: only root could give it back).
    var existing = stat()
    let replacesFile = stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG

    func failure(_ operation: String, _ code: Int32 = errno) -> FileWriteError {
        FileWriteError(path: path, operation: operation, reason: FileWriteError.reason(forErrno: code),
                       previousFileExisted: replacesFile)
    }

    // Listed before the file exists, so no signal finds a temporary file it does not know.
    let slot = WritesInProgress.register(temporary: temporary, path: path, replacesFile: replacesFile)
    // O_EXCL: never follow or reuse something already at the temporary name.
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    guard fd >= 0 else {
        let error = failure("create temporary file")
        WritesInProgress.unregister(slot)
        throw error
    }
    var closed = false
    var renamed = false
    defer {
        if !closed { close(fd) }
        if !renamed { unlink(temporary) }
        WritesInProgress.unregister(slot)
    }
    if replacesFile {
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
    pauseForTests()
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

/// Test hook: with `COMPRESSOR_TEST_WRITE_GATE=PATH` in the environment (read
/// once), every atomic write waits, between completing its temporary file and
/// the rename, for as long as a file exists at PATH (checked every 10 ms). A
/// test creates PATH, starts a command, sends it a signal while the temporary
/// file exists, or removes PATH to let the write finish. Unset: no wait.
private let testWriteGate: [CChar]? = getenv("COMPRESSOR_TEST_WRITE_GATE").map { Array(String(cString: $0).utf8CString) }

/// Waits while the file `testWriteGate` names exists.
private func pauseForTests() {
    guard let gate = testWriteGate else { return }
    var tick = timespec(tv_sec: 0, tv_nsec: 10_000_000)
    while access(gate, F_OK) == 0 { nanosleep(&tick, nil) }
}

/// The temporary files of the atomic writes in progress, kept where a signal
/// handler can reach them: `abandon()` removes them and says so without
/// allocating or locking (only atomics, `unlink` and `write`), so it may run
/// in a signal handler for SIGINT or SIGTERM just before the process exits.
///
/// Each write takes one of a fixed number of slots of fixed-size storage,
/// allocated once by `prepare()`; a write that finds no free slot (or a path
/// too long for one) is simply not listed, and a signal then leaves its
/// temporary file behind, as before this registry existed.
public enum WritesInProgress {
    /// How many writes can be listed at once.
    static let slotCount = 16
    /// Bytes for a temporary path (with its NUL) and for the message.
    static let pathCapacity = 4096, messageCapacity = 8448

    /// One listed write. `state`: 0 free, 1 being filled by its writer,
    /// 2 listed, 3 taken by `abandon()` (never reused: the process is exiting).
    final class Slot: @unchecked Sendable {
        let state = Atomic<Int>(0)
        let temporaryPath = UnsafeMutablePointer<CChar>.allocate(capacity: WritesInProgress.pathCapacity)
        let message = UnsafeMutablePointer<UInt8>.allocate(capacity: WritesInProgress.messageCapacity)
        let messageLength = Atomic<Int>(0)
    }

    static let slots: [Slot] = (0..<slotCount).map { _ in Slot() }

    /// Allocates the slots. Call it before installing a signal handler that
    /// calls `abandon()`, so the handler never runs a lazy initializer.
    public static func prepare() { _ = slots.count }

    /// Lists a write (before its temporary file is created); returns its slot, nil when none is free.
    static func register(temporary: String, path: String, replacesFile: Bool) -> Int? {
        let temporaryBytes = Array(temporary.utf8)
        let message = Array("\ninterrupted while writing \(path); \(replacesFile ? "\(path) is unchanged" : "nothing was written")\n".utf8)
        guard temporaryBytes.count < pathCapacity, message.count <= messageCapacity else { return nil }
        for (index, slot) in slots.enumerated() where slot.state.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            temporaryBytes.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { slot.temporaryPath.update(from: $0.baseAddress!, count: $0.count) }
            }
            slot.temporaryPath[temporaryBytes.count] = 0
            message.withUnsafeBufferPointer { slot.message.update(from: $0.baseAddress!, count: $0.count) }
            slot.messageLength.store(message.count, ordering: .relaxed)
            slot.state.store(2, ordering: .releasing)
            return index
        }
        return nil
    }

    /// Unlists a write once its temporary file is renamed or removed.
    static func unregister(_ index: Int?) {
        guard let index else { return }
        // Fails only when `abandon()` took the slot: the process is exiting, leave it taken.
        _ = slots[index].state.compareExchange(expected: 2, desired: 0, ordering: .releasing)
    }

    /// Removes the temporary file of every listed write and writes to standard
    /// error, for each one it removed, "interrupted while writing PATH; PATH is
    /// unchanged" (or "nothing was written" when there was no file at PATH).
    /// Async-signal-safe; the caller then ends the process. Returns whether a
    /// write was in progress.
    @discardableResult
    public static func abandon() -> Bool {
        var abandoned = false
        for index in 0..<slotCount {
            let slot = slots[index]
            guard slot.state.compareExchange(expected: 2, desired: 3, ordering: .acquiring).exchanged else { continue }
            // A write that already renamed its file has nothing to remove: no message.
            guard unlink(slot.temporaryPath) == 0 else { continue }
            abandoned = true
            var offset = 0
            let length = slot.messageLength.load(ordering: .relaxed)
            while offset < length {
                let n = write(2, slot.message + offset, length - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
        }
        return abandoned
    }
}
