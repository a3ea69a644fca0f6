#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// `threads - 1` persistent threads that, with the calling thread, run the
/// parts of a parallel loop: how a session (or a training graph) splits a step
/// over its workers without a dispatch per step.
///
/// A call publishes the loop body and bumps a generation counter; helpers
/// waiting for it spin on the counter for `spinNanoseconds` after their last
/// part, then sleep on a condition variable, so a step that follows another
/// closely wakes them within a microsecond or so, and an idle pool costs no
/// CPU. Every helper answers every call (those without a part just count
/// themselves done), and the caller runs part 0 and waits for them all, so
/// no part of one call can overlap the next. A call allocates nothing.
///
/// Threads are joined when the pool goes away. A pool is used by one thread
/// at a time (the session's contract), and a part must not call the pool again.
final class WorkerPool {
    /// Workers a loop may be split over: the helper threads and the caller.
    let threads: Int
    /// Kernels split every step they can split, whatever its size (tests
    /// checking that a split changes no result).
    let splitsAllWork: Bool
    private let state: WorkerPoolState
    private var helpers: [pthread_t] = []

    /// After its part, how long a helper polls for the next call before
    /// sleeping: longer than the gap between two split steps of one run
    /// (a few microseconds for the small steps in between), far shorter than
    /// a scheduler tick, so an idle pool stops costing CPU at once.
    static let spinNanoseconds: UInt64 = 50_000

    /// A pool of `threads` workers (at least 1); 1 starts no thread.
    init(threads: Int, splitsAllWork: Bool = false) {
        self.threads = max(1, threads)
        self.splitsAllWork = splitsAllWork
        state = WorkerPoolState(helpers: self.threads - 1)
        for index in 1..<self.threads {
            let start = WorkerPoolStart(state: state, index: index)
            let context = Unmanaged.passRetained(start).toOpaque()
            #if canImport(Darwin)
            var thread: pthread_t?
            #else
            var thread = pthread_t()
            #endif
            let status = pthread_create(&thread, nil, { context in
                let start = Unmanaged<WorkerPoolStart>.fromOpaque(context!).takeRetainedValue()
                start.state.helperLoop(index: start.index)
                return nil
            }, context)
            precondition(status == 0, "pthread_create failed with \(status)")
            #if canImport(Darwin)
            helpers.append(thread!)
            #else
            helpers.append(thread)
            #endif
        }
    }

    deinit {
        guard !helpers.isEmpty else { return }
        state.stop()
        for thread in helpers { pthread_join(thread, nil) }
    }

    /// Runs `body(i, worker)` for `i` in `0..<count`, split over `workers`
    /// workers (at most `threads`); worker `w` takes `i = w, w + workers, ...`,
    /// worker 0 on the calling thread. `body` must only write memory owned by
    /// index `i` or by its worker.
    func forEachIndex(_ count: Int, workers: Int, _ body: (_ index: Int, _ worker: Int) -> Void) {
        let workers = min(workers, count, threads)
        guard workers > 1 else {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { state.run(count, workers: workers, $0) }
    }
}

/// What a helper thread is started with.
private final class WorkerPoolStart {
    let state: WorkerPoolState
    let index: Int
    init(state: WorkerPoolState, index: Int) { (self.state, self.index) = (state, index) }
}

/// The state the caller and the helpers share.
private final class WorkerPoolState {
    let helpers: Int
    /// Bumped once per call (and once to stop); helpers run a part when it moves.
    let generation = Atomic<Int>(0)
    /// Helpers that have not yet finished the current call.
    let pending = Atomic<Int>(0)
    /// Helpers asleep (or about to sleep) on `wake`.
    let sleepers = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// The current call (body, index count, workers), set before `generation`
    /// moves and cleared after every helper finished: written by the caller
    /// only while no helper reads it, read by helpers only in between (the
    /// generation's release/acquire and `pending` order both), which the
    /// compiler cannot see. Plain stored fields, so a call allocates nothing.
    nonisolated(unsafe) var body: ((_ index: Int, _ worker: Int) -> Void)?
    nonisolated(unsafe) var count = 0
    nonisolated(unsafe) var workers = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(helpers: Int) {
        self.helpers = helpers
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        wake.deallocate()
    }

    /// Runs worker 0's share of `body` here and worker `w`'s on helper `w`,
    /// returning when all are done.
    func run(_ count: Int, workers: Int, _ body: @escaping (_ index: Int, _ worker: Int) -> Void) {
        (self.body, self.count, self.workers) = (body, count, workers)
        pending.store(helpers, ordering: .relaxed)
        publish()
        for i in stride(from: 0, to: count, by: workers) { body(i, 0) }
        // The helpers' parts are about as long as ours: poll, yielding the core
        // once it is clear a helper is not running (the machine is oversubscribed).
        var polls = 0
        while pending.load(ordering: .acquiring) != 0 {
            polls &+= 1
            if polls > 4096 { sched_yield() }
        }
        self.body = nil
    }

    /// Tells every helper to return.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        publish()
    }

    /// Moves the generation, waking sleeping helpers. Sequentially consistent
    /// with the helpers' `sleepers` increment and generation check: either a
    /// helper about to sleep sees the new generation, or this sees it asleep.
    private func publish() {
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)
        }
    }

    /// A helper's life: wait for each call, run its part, report done.
    func helperLoop(index: Int) {
        var seen = 0
        while true {
            seen = waitForGeneration(after: seen)
            if stopping.load(ordering: .relaxed) { return }
            runPart(index)
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Helper `index`'s share of the current call, in a function of its own so
    /// the helper's reference to the body is released before it reports done
    /// (the caller then clears it, and `withoutActuallyEscaping` checks that
    /// nothing kept it).
    @inline(never)
    private func runPart(_ index: Int) {
        guard index < workers, let body else { return }
        for i in stride(from: index, to: count, by: workers) { body(i, index) }
    }

    /// The first generation after `seen`: polled for `spinNanoseconds`, then slept for.
    private func waitForGeneration(after seen: Int) -> Int {
        let deadline = monotonicNanoseconds() &+ WorkerPool.spinNanoseconds
        var polls = 0
        while true {
            let g = generation.load(ordering: .acquiring)
            if g != seen { return g }
            polls &+= 1
            if polls & 63 == 0 && monotonicNanoseconds() > deadline { break }
        }
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var g = generation.load(ordering: .sequentiallyConsistent)
        while g == seen {
            pthread_cond_wait(wake, mutex)
            g = generation.load(ordering: .sequentiallyConsistent)
        }
        sleepers.subtract(1, ordering: .relaxed)
        pthread_mutex_unlock(mutex)
        return g
    }
}

/// Nanoseconds of the monotonic clock (a vDSO read, no system call).
private func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
}
