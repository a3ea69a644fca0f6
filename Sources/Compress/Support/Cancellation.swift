import Synchronization

/// Thrown by long work when the user cancels it (Ctrl-C).
public struct PassCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "cancelled" }
}

/// A thread-safe flag raised to ask long work to stop.
public final class CancellationFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    public init() {}
    public var isCancelled: Bool { raised.load(ordering: .relaxed) }
    public func cancel() { raised.store(true, ordering: .relaxed) }
}
