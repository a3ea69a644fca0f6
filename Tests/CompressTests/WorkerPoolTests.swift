import Foundation
import Synchronization
import Testing
@testable import Compress

/// The runtime's worker pool: every index once, on the worker the split
/// promises; threads joined with the pool; and splits that change no bit.
struct WorkerPoolTests {
    typealias F = RuntimeFixtures

    /// Every index runs once: with `forEachIndex` on worker `index % workers`,
    /// with `forEachPart` on some worker below `workers`; over many calls in a
    /// row (helpers polling) and after pauses (helpers asleep).
    @Test(arguments: [false, true])
    func runsEveryIndexOnce(claimingParts: Bool) throws {
        let pool = WorkerPool(threads: 3)
        let slots = UnsafeMutableBufferPointer<Int>.allocate(capacity: 100)
        defer { slots.deallocate() }
        for round in 0..<600 {
            for (count, workers) in [(0, 3), (1, 3), (2, 3), (5, 2), (100, 3), (100, 5), (7, 1)] {
                slots.initialize(repeating: -1)
                let body = { (i: Int, worker: Int) in slots[i] = slots[i] == -1 ? worker : -2 }
                if claimingParts {
                    pool.forEachPart(count, workers: workers, body)
                } else {
                    pool.forEachIndex(count, workers: workers, body)
                }
                let used = max(min(workers, count, 3), 1)
                let expected = { (i: Int) in claimingParts ? (0..<used).contains(slots[i]) : slots[i] == i % used }
                #expect((0..<count).allSatisfy(expected), "count \(count), workers \(workers)")
                #expect((count..<100).allSatisfy { slots[$0] == -1 })
            }
            if round % 200 == 199 { usleep(2_000) }
        }
    }

    /// A pool's helper threads exist while it lives and are gone once it is released.
    @Test func releasedPoolEndsItsThreads() throws {
        func liveThreads() throws -> Set<Int32> {
            Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { Int32($0) })
        }
        var ids: [Int32] = []
        do {
            let pool = WorkerPool(threads: 4)
            let slots = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 4)
            defer { slots.deallocate() }
            threadIDs(of: pool, into: slots)
            ids = Array(Set(slots).subtracting([threadID()]))
            #expect(Set(slots).count == 4 && ids.count == 3)
            #expect(try Set(ids).isSubset(of: liveThreads()))
        }
        #expect(try liveThreads().isDisjoint(with: ids))
    }

    /// An idle pool's helpers sleep: after a burst of calls, they use no CPU
    /// time (clock ticks of their /proc stat) while the pool waits.
    @Test func idlePoolUsesNoCPU() throws {
        let pool = WorkerPool(threads: 3)
        let slots = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 3)
        defer { slots.deallocate() }
        for _ in 0..<100 { threadIDs(of: pool, into: slots) }
        let helpers = Set(slots).subtracting([threadID()])
        #expect(helpers.count == 2)
        func ticks() throws -> Int {
            try helpers.map { id in
                let stat = try String(contentsOfFile: "/proc/self/task/\(id)/stat", encoding: .utf8)
                // Fields after the command name: state is field 3, utime 14, stime 15.
                let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
                return Int(fields[11])! + Int(fields[12])!
            }.reduce(0, +)
        }
        usleep(100_000)
        let before = try ticks()
        usleep(1_000_000)
        #expect(try ticks() - before <= 1, "helpers used CPU while idle")
    }

    /// Sessions (thousands of them in the test suite) leave no thread behind.
    @Test func sessionsLeaveNoThreads() throws {
        let model = Architecture.lenet5.build(seed: 1)
        var rng = SeededGenerator(seed: 2)
        let x = rng.uniformTensor([1] + model.inputShape)
        var helpers: Set<Int32> = []
        let slots = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 3)
        defer { slots.deallocate() }
        for _ in 0..<50 {
            let session = try Session(model: model, threads: 3)
            _ = try session.run(x)
            threadIDs(of: session.pool, into: slots)
            helpers.formUnion(Set(slots).subtracting([threadID()]))
        }
        #expect(helpers.count == 100)
        let live = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { Int32($0) })
        #expect(live.isDisjoint(with: helpers))
    }

    /// 2 (or 3) threads give the same bytes as 1, at batch 1 (one image split
    /// over workers) and batch 3 (image by image, and layer by layer), with the
    /// usual thresholds and with every splittable step split.
    @Test(arguments: [Architecture.vggSmall, .resnet20, .mobilenetSmall, .lenet5])
    func threadsChangeNoBit(_ arch: Architecture) throws {
        let model = arch.build(seed: 5)
        var rng = SeededGenerator(seed: 6)
        for batch in [1, 3] {
            let x = rng.uniformTensor([batch] + model.inputShape)
            for kernels in KernelSet.supported {
                for imageWise in [true, false] {
                    for splitsAll in [false, true] {
                        let outputs = try [1, 2, 3].map { threads in
                            try Session(model: model, threads: threads, kernels: kernels, imageWise: imageWise,
                                        splitsAllWork: splitsAll).run(x).floats
                        }
                        let setting = "batch \(batch), kernels \(kernels), image-wise \(imageWise), split all \(splitsAll)"
                        #expect(outputs[1].map(\.bitPattern) == outputs[0].map(\.bitPattern), "2 threads, \(setting)")
                        #expect(outputs[2].map(\.bitPattern) == outputs[0].map(\.bitPattern), "3 threads, \(setting)")
                    }
                }
            }
        }
    }
}

/// Each worker's thread id (the caller's among them): every share waits until all
/// have started, so each runs on a thread of its own.
private func threadIDs(of pool: WorkerPool, into slots: UnsafeMutableBufferPointer<Int32>) {
    final class Started: Sendable { let count = Atomic<Int>(0) }
    let started = Started()
    pool.endBackOff()
    let deadline = Date().addingTimeInterval(10)
    pool.forEachIndex(pool.threads, workers: pool.threads) { _, worker in
        slots[worker] = threadID()
        started.count.add(1, ordering: .relaxed)
        while started.count.load(ordering: .relaxed) < pool.threads && Date() < deadline {}
    }
}

/// The calling thread's kernel id (its entry in /proc/self/task).
/// (`/proc/thread-self` links to `<pid>/task/<tid>`).
private func threadID() -> Int32 {
    var path = [CChar](repeating: 0, count: 64)
    let length = readlink("/proc/thread-self", &path, 63)
    let link = String(decoding: path.prefix(max(length, 0)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return Int32(link.split(separator: "/").last ?? "") ?? -1
}
