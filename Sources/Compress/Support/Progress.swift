import Foundation
import Synchronization

/// Receives progress of long work. Implementations decide how to show it.
public protocol ProgressReporting: Sendable {
    /// Starts a task of `total` units.
    func begin(_ label: String, total: Int)
    /// `completed` of `total` units are done; `detail` is shown after the bar.
    func update(completed: Int, detail: String)
    /// The task ended.
    func end()
}

/// Shows nothing.
public struct SilentProgress: ProgressReporting {
    public init() {}
    public func begin(_ label: String, total: Int) {}
    public func update(completed: Int, detail: String) {}
    public func end() {}
}

/// A progress bar on standard error, redrawn at most ten times a second, with
/// rate and ETA. Shows nothing unless standard error is a terminal.
public final class TerminalProgress: ProgressReporting {
    private struct State {
        var label = ""
        var total = 0
        var started = Date()
        var lastDraw = Date.distantPast
    }
    private let state = Mutex(State())
    private let enabled: Bool

    public init(enabled: Bool = isatty(2) == 1) { self.enabled = enabled }

    public func begin(_ label: String, total: Int) {
        state.withLock { $0 = State(label: label, total: max(total, 1), started: Date()) }
    }

    public func update(completed: Int, detail: String) {
        guard enabled else { return }
        let line: String? = state.withLock { s in
            let now = Date()
            guard completed >= s.total || now.timeIntervalSince(s.lastDraw) >= 0.1 else { return nil }
            s.lastDraw = now
            return Self.render(label: s.label, completed: completed, total: s.total,
                               elapsed: now.timeIntervalSince(s.started), detail: detail)
        }
        if let line { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
    }

    public func end() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    /// One line: label, bar, count, rate, ETA and detail.
    static func render(label: String, completed: Int, total: Int, elapsed: Double, detail: String) -> String {
        let width = 24
        let fraction = min(1, Double(completed) / Double(total))
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let eta = completed > 0 ? elapsed * Double(total - completed) / Double(completed) : 0
        let etaText = completed >= total ? "" : String(format: " ETA %.0fs", eta)
        return "\(label) [\(bar)] \(completed)/\(total)\(etaText) \(detail)"
    }
}
