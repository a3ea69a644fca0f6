import Compress
import Foundation

/// Makes SIGINT (Ctrl-C) and SIGTERM end the process without losing a file:
/// the temporary file of a write in progress is removed (the previous file
/// stays as it was) and the message says so; exit status 130 or 143, as a
/// shell reports a process ended by those signals. Also makes a write past a
/// file-size limit (`ulimit -f`) fail with "File too large" instead of killing
/// the process with SIGXFSZ. A signal the parent ignores (nohup, `&` in a
/// script) stays ignored; one it blocked (a parent starting us from a thread
/// that blocks signals, as dispatch threads do) is unblocked, so it ends the
/// process instead of waiting. Called once, first thing in `main`, before any
/// other thread exists (threads inherit the signal mask).
func installSignalHandlers() {
    WritesInProgress.prepare()
    signal(SIGXFSZ, SIG_IGN)
    var handled = sigset_t()
    sigemptyset(&handled)
    for signo in [SIGINT, SIGTERM] where !isIgnored(signo) {
        installAbandonWritesAndExit(on: signo)
        sigaddset(&handled, signo)
    }
    pthread_sigmask(SIG_UNBLOCK, &handled, nil)
}

/// Whether `signo`'s disposition is SIG_IGN.
private func isIgnored(_ signo: Int32) -> Bool {
    var current = sigaction()
    guard sigaction(signo, nil, &current) == 0 else { return false }
    return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
}

/// Sets `abandonWritesAndExit` as the handler of `signo`.
private func installAbandonWritesAndExit(on signo: Int32) {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = abandonWritesAndExit
    sigemptyset(&action.sa_mask)
    // The other signal waits while the handler runs, so one message per write.
    sigaddset(&action.sa_mask, SIGINT)
    sigaddset(&action.sa_mask, SIGTERM)
    action.sa_flags = 0
    sigaction(signo, &action, nil)
}

/// The signal handler: only async-signal-safe calls (`WritesInProgress.abandon`, `_exit`).
private func abandonWritesAndExit(_ signo: Int32) {
    WritesInProgress.abandon()
    _exit(128 + signo)
}

/// A Ctrl-C handler installed by `installInterruptHandler`; `cancel()` gives
/// Ctrl-C back to `installSignalHandlers`' handler.
struct InterruptHandler {
    fileprivate let source: DispatchSourceSignal
    /// Whether SIGINT was handled (not ignored) before, so it is handled again after.
    fileprivate let wasHandled: Bool

    func cancel() {
        source.cancel()
        if wasHandled { installAbandonWritesAndExit(on: SIGINT) }
    }
}

/// Makes Ctrl-C raise `flag` instead of killing the process (a second Ctrl-C
/// still ends it, removing the temporary file of a write in progress). A write
/// under way when the first Ctrl-C comes completes, so nothing is lost.
func installInterruptHandler(_ flag: CancellationFlag) -> InterruptHandler {
    let wasHandled = !isIgnored(SIGINT)
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler {
        if flag.isCancelled {
            WritesInProgress.abandon()
            exit(130)
        }
        flag.cancel()
        FileHandle.standardError.write(Data("\nstopping after this batch (Ctrl-C again to quit now)\n".utf8))
    }
    source.resume()
    return InterruptHandler(source: source, wasHandled: wasHandled)
}
