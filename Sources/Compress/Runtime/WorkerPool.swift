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
/// Two kinds of loop, both claimed through one atomic ticket by
/// whichever threads are running, the caller's among them, so a helper the OS
/// has not scheduled yet delays nothing: the others take its work.
/// `forEachIndex` has `workers` fixed shares (share `w`: indices `w, w +
/// workers, ...`, in order, with worker id `w`), so what a share computes
/// (a per-worker partial sum) never depends on which thread ran it;
/// `forEachPart` hands out single indices, the worker id being the claiming
/// thread's (for scratch memory), which balances uneven or late threads.
/// Helpers poll a generation counter for `spinNanoseconds` after their last
/// claim, then sleep on a condition variable, so a step that follows
/// another closely starts on both cores within a microsecond or so, and an
/// idle pool costs no CPU. A call allocates nothing.
///
/// Threads are joined when the pool goes away. A pool is used by one thread
/// at a time (the session's contract), and a share must not call the pool again.
final class WorkerPool {
    /// Workers a loop may be split over: the helper threads and the caller.
    let threads: Int
    /// Kernels split every step they can split, whatever its size (tests
    /// checking that a split changes no result).
    let splitsAllWork: Bool
    private let state: WorkerPoolState
    private var helpers: [pthread_t] = []

    /// After its last share, how long a helper polls for the next call before
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
    /// workers (at most `threads`): worker `w` takes `i = w, w + workers, ...`
    /// in that order, on whichever thread claims it first (the caller's or a
    /// helper), and no two threads run one worker at once. `body` must only
    /// write memory owned by index `i` or by its worker.
    func forEachIndex(_ count: Int, workers: Int, _ body: (_ index: Int, _ worker: Int) -> Void) {
        let workers = min(workers, count, threads)
        guard workers > 1 else {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { state.run(count, workers: workers, perIndex: false, $0) }
    }

    /// Lets the next loop use the helpers even if the last ones backed off to
    /// the caller alone (tests that need every thread).
    func endBackOff() { state.endBackOff() }

    /// Runs `body(i, worker)` once for each `i` in `0..<count`, indices claimed
    /// one at a time, in increasing order, by up to `workers` threads (at most
    /// `threads`); `worker` is the claiming thread's number (below `workers`,
    /// never held by two threads at once), so which worker runs which index
    /// varies from run to run: `body` may use the worker's scratch memory, and
    /// must only write memory owned by index `i` or by its worker.
    func forEachPart(_ count: Int, workers: Int, _ body: (_ index: Int, _ worker: Int) -> Void) {
        let workers = min(workers, count, threads)
        guard workers > 1 && count < WorkerPoolState.maxParts else {
            return forEachIndex(count, workers: workers, body)
        }
        withoutActuallyEscaping(body) { state.run(count, workers: workers, perIndex: true, $0) }
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
    /// Bumped once per call (and once to stop): wakes the helpers.
    let generation = Atomic<Int>(0)
    /// The current call's claims: bit 63 set for single indices (`forEachPart`),
    /// bits 48-62 the threads that may claim (helper `h` when `h` is below it),
    /// bits 24-47 the claims (indices or shares), bits 0-23 the next claim. A
    /// claim moves the next claim with a compare-and-exchange; a stale helper
    /// whose exchange succeeds claims in the current call (the word alone says
    /// what), and the call cannot end before that claim is done.
    let ticket = Atomic<UInt64>(0)
    /// Claims of the current call done.
    let finished = Atomic<Int>(0)
    /// Indices a `forEachPart` call may have (the ticket's 24-bit fields).
    static let maxParts = 1 << 24
    /// Helpers asleep (or about to sleep) on `wake`.
    let sleepers = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// The current call's body and index count, set before `ticket` is published
    /// and cleared after every share is done: written by the caller only while
    /// no share runs, read by a helper only after it claimed a share (the
    /// ticket's release/acquire and `finished` order both), which the compiler
    /// cannot see. Plain stored fields, so a call allocates nothing.
    nonisolated(unsafe) var body: ((_ index: Int, _ worker: Int) -> Void)?
    nonisolated(unsafe) var count = 0
    /// Calls run on the caller alone until this time (monotonic nanoseconds),
    /// and for how long the last back-off was: after `lateCallsBeforeBackOff`
    /// calls in a row whose caller waited far longer for a helper's claim than
    /// its own work took (the helper lost its core to another process
    /// mid-claim), later calls stay serial for 10 ms, doubling while it recurs
    /// (up to 100 ms), so a machine with no free core costs little more than
    /// one thread. One late call (an interrupt, a page fault) does not count:
    /// backing off on it made a quiet machine's 2-thread runs serial for whole
    /// benchmarks (vgg-small at batch 1: 0.29 ms or 0.43 ms by chance).
    /// Touched by the caller only.
    nonisolated(unsafe) private var serialUntil: UInt64 = 0
    nonisolated(unsafe) private var backOff: UInt64 = 0
    nonisolated(unsafe) private var lateCalls = 0
    static let lateCallsBeforeBackOff = 3
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

    /// Runs `body` over `0..<count` on this thread and up to `workers - 1`
    /// helpers: `workers` shares, or single indices (`perIndex`); returns when all are done.
    func run(_ count: Int, workers: Int, perIndex: Bool, _ body: @escaping (_ index: Int, _ worker: Int) -> Void) {
        // A share calling the pool again, or two threads using it, would overwrite this call.
        precondition(self.body == nil, "a WorkerPool runs one loop at a time")
        let start = monotonicNanoseconds()
        if start < serialUntil {
            if perIndex {
                for i in 0..<count { body(i, 0) }
            } else {
                for worker in 0..<workers {
                    for i in stride(from: worker, to: count, by: workers) { body(i, worker) }
                }
            }
            return
        }
        (self.body, self.count) = (body, count)
        let claims = perIndex ? count : workers
        finished.store(0, ordering: .relaxed)
        ticket.store((perIndex ? 1 << 63 : 0) | UInt64(workers) << 48 | UInt64(claims) << 24, ordering: .releasing)
        publish()
        claimShares(thread: 0)
        let ownEnd = monotonicNanoseconds()
        // A share a helper claimed is about as long as ours: poll, yielding the
        // core once it is clear the helper is not running (an oversubscribed machine).
        var polls = 0
        while finished.load(ordering: .acquiring) != claims {
            polls &+= 1
            if polls > 2048 { sched_yield() }
        }
        self.body = nil
        let end = monotonicNanoseconds()
        if end &- ownEnd > max(2 &* (ownEnd &- start), 50_000) {
            lateCalls &+= 1
            if lateCalls >= Self.lateCallsBeforeBackOff {
                backOff = min(max(2 &* backOff, 10_000_000), 100_000_000)
                serialUntil = end &+ backOff
                lateCalls = 0
            }
        } else {
            (backOff, lateCalls) = (0, 0)
        }
    }

    /// See `WorkerPool.endBackOff`.
    func endBackOff() { (serialUntil, backOff, lateCalls) = (0, 0, 0) }

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

    /// Claims and runs work of the current call (as thread `thread`, 0 the
    /// caller) until none is left that this thread may take.
    private func claimShares(thread: Int) {
        var t = ticket.load(ordering: .acquiring)
        while true {
            let perIndex = t >> 63 == 1, workers = Int(t >> 48 & 0x7fff)
            let (claims, next) = (Int(t >> 24 & 0xff_ffff), Int(t & 0xff_ffff))
            if next >= claims || thread >= workers { return }
            let (exchanged, original) = ticket.compareExchange(expected: t, desired: t &+ 1,
                                                               ordering: .acquiringAndReleasing)
            guard exchanged else {
                t = original
                continue
            }
            if perIndex { runPart(next, thread: thread) } else { runShare(next, workers: workers) }
            finished.add(1, ordering: .releasing)
            t = ticket.load(ordering: .acquiring)
        }
    }

    /// Share `worker` of the current call, in a function of its own so a
    /// helper's reference to the body is released before the share counts as
    /// done (the caller then clears it, and `withoutActuallyEscaping` checks
    /// that nothing kept it).
    @inline(never)
    private func runShare(_ worker: Int, workers: Int) {
        guard let body else { return }
        for i in stride(from: worker, to: count, by: workers) { body(i, worker) }
    }

    /// Index `index` of the current call on thread `thread` (as `runShare`).
    @inline(never)
    private func runPart(_ index: Int, thread: Int) {
        body?(index, thread)
    }

    /// A helper's life: wait for each call, claim shares while there are any.
    func helperLoop(index: Int) {
        var seen = 0
        while true {
            seen = waitForGeneration(after: seen)
            if stopping.load(ordering: .relaxed) { return }
            claimShares(thread: index)
        }
    }

    /// The first generation after `seen`: polled for `spinNanoseconds`, then slept for.
    private func waitForGeneration(after seen: Int) -> Int {
        let deadline = monotonicNanoseconds() &+ WorkerPool.spinNanoseconds
        var polls = 0
        while true {
            let g = generation.load(ordering: .acquiring)
            if g != seen { return g }
            polls &+= 1
            if polls & 63 == 0 {
                if monotonicNanoseconds() > deadline { break }
                // On a machine with more runnable threads than cores the caller may
                // share this core: give it (and other processes) the core while polling.
                sched_yield()
            }
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
