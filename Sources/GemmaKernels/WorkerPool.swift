// A persistent worker pool for the many small parallel-fors of a forward step (decode runs ~90 per token): the
// caller runs worker 0 and `threads - 1` pthreads run the others. Workers poll an atomic generation counter for a
// short while after each job (a job's dispatch then costs about a microsecond), then sleep on a condition variable,
// so an idle pool uses no CPU. Callers from several threads are served one at a time. Pools are shared per thread
// count, so loading many models does not multiply threads. Jobs are `RangeJob` structs handed over by pointer, so a
// dispatch allocates nothing.
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A job for `WorkerPool.parallelFor`: `run(worker:range:)` is called for contiguous slices that together cover the
/// count once, each on one worker (`worker` indexes per-worker scratch; a worker may get several slices).
/// Jobs are plain structs (their fields are what a closure would capture): handing one to the workers allocates
/// nothing, unlike a closure, whose context must be boxed to cross threads.
package protocol RangeJob {
    func run(worker: Int, range: Range<Int>)
}

/// Type-erased entry for the workers: the job lives on the caller's stack for the duration of the dispatch.
private protocol JobEntry {
    static func call(_ job: UnsafeRawPointer, worker: Int, bounds: UnsafePointer<Int>, chunks: Int, next: borrowing Atomic<Int>)
}

private enum Entry<J: RangeJob>: JobEntry {
    /// Claims chunks (chunk c: bounds[c] ..< bounds[c + 1]) until none is left.
    static func call(_ job: UnsafeRawPointer, worker w: Int, bounds: UnsafePointer<Int>, chunks: Int, next: borrowing Atomic<Int>) {
        while true {
            let c = next.wrappingAdd(1, ordering: .relaxed).oldValue
            guard c < chunks else { return }
            let lo = bounds[c], hi = bounds[c + 1]
            if lo < hi { job.assumingMemoryBound(to: J.self).pointee.run(worker: w, range: lo..<hi) }
        }
    }
}

/// A closure as a job (tests and cold paths; the closure context is boxed once per call).
private struct ClosureJob: RangeJob {
    let body: (Int, Range<Int>) -> Void
    func run(worker: Int, range: Range<Int>) { body(worker, range) }
}

package final class WorkerPool: @unchecked Sendable {  // the job is published through the generation counter
    package let threads: Int
    /// Polls of the generation counter before a worker goes to sleep (~100 µs).
    static let spinLimit = 50_000

    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private nonisolated(unsafe) var job: UnsafeRawPointer?
    private nonisolated(unsafe) var entry: (any JobEntry.Type)?
    private nonisolated(unsafe) var jobChunks = 0
    /// The current job's chunk boundaries (chunk c: bounds[c] ..< bounds[c + 1]).
    private let bounds: UnsafeMutablePointer<Int>
    /// Chunks per worker of a job, at most: slices claimed in turn balance uneven work (rows of different formats in
    /// one fused product, a core the VM lends elsewhere for a while) instead of waiting for the slowest static half.
    static let chunksPerWorker = 8
    private let callers = Mutex<Void>(())
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>

    private static let shared = Mutex<[Int: WorkerPool]>([:])

    /// The pool with `threads` workers, created on first use and shared.
    package static func shared(threads: Int) -> WorkerPool {
        let n = max(1, threads)
        return shared.withLock { pools in
            if let p = pools[n] { return p }
            let p = WorkerPool(threads: n)
            pools[n] = p
            return p
        }
    }

    /// A pool of its own with `threads` workers (its threads live as long as the process).
    package init(threads: Int) {
        self.threads = max(1, threads)
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        bounds = .allocate(capacity: self.threads * Self.chunksPerWorker + 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for w in 1..<self.threads {
            let ctx = Unmanaged.passRetained(WorkerContext(pool: self, worker: w)).toOpaque()
            var tid = pthread_t()
            pthread_create(&tid, nil, { p in
                let c = Unmanaged<WorkerContext>.fromOpaque(p!).takeRetainedValue()
                c.pool.workerLoop(c.worker)
            }, ctx)
            pthread_detach(tid)
        }
    }

    private final class WorkerContext {
        let pool: WorkerPool
        let worker: Int
        init(pool: WorkerPool, worker: Int) {
            self.pool = pool
            self.worker = worker
        }
    }

    private func workerLoop(_ worker: Int) -> Never {
        var seen = 0
        while true {
            var spins = 0
            var g = generation.load(ordering: .sequentiallyConsistent)
            while g == seen {
                spins += 1
                if spins > Self.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(wake, mutex) }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    spins = 0
                }
                g = generation.load(ordering: .sequentiallyConsistent)
            }
            seen = g
            entry!.call(job!, worker: worker, bounds: bounds, chunks: jobChunks, next: nextChunk)
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// Calls `job.run(worker:range:)` for contiguous slices of `0..<count` (up to `chunksPerWorker` per worker, none
    /// shorter than `minimumPerWorker` unless `count` is), which the workers claim in turn, and returns when all are
    /// done. A worker may run several slices; which worker runs which slice varies. Allocates nothing.
    package func parallelFor<J: RangeJob>(_ count: Int, minimumPerWorker: Int = 1, _ job: J) {
        let most = max(1, min(threads * Self.chunksPerWorker, count / max(minimumPerWorker, 1)))
        if most == 1 || threads == 1 {
            if count > 0 { job.run(worker: 0, range: 0..<count) }
            return
        }
        withUnsafePointer(to: job) { p in
            callers.withLock { _ in
                self.job = UnsafeRawPointer(p)
                entry = Entry<J>.self
                jobChunks = Self.guidedBounds(count, most: most, least: minimumPerWorker, threads: threads, into: bounds)
                nextChunk.store(0, ordering: .relaxed)
                remaining.store(threads - 1, ordering: .relaxed)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(mutex)
                    pthread_cond_broadcast(wake)
                    pthread_mutex_unlock(mutex)
                }
                Entry<J>.call(UnsafeRawPointer(p), worker: 0, bounds: bounds, chunks: jobChunks, next: nextChunk)
                var spins = 0
                while remaining.load(ordering: .acquiring) != 0 {
                    spins += 1
                    if spins > Self.spinLimit { sched_yield() }
                }
                self.job = nil
                entry = nil
            }
        }
    }

    /// Boundaries of at most `most` chunks of `0..<count` into `b` (b[0] = 0, ..., b[chunks] = count), returning the
    /// number of chunks: each takes 1 / (2 threads) of what is left ("guided" self-scheduling), none shorter than
    /// count / (4 most) or `least` but the last, so the first slices are long and the last ones short, and the workers
    /// finish within a short slice of each other (with equal slices the last one, 22 MB of the output head's rows,
    /// could run on one core while the other waited). Slices of 4 or more rows are cut at multiples of 4 (the
    /// four-row kernels). Depends on the counts alone.
    package static func guidedBounds(_ count: Int, most: Int, least minimum: Int, threads: Int, into b: UnsafeMutablePointer<Int>) -> Int {
        let least = max(1, minimum, count / (4 * most)), align = least >= 4 ? 4 : 1
        var n = 0, start = 0
        b[0] = 0
        while start < count && n < most - 1 {
            var size = max(least, (count - start) / (2 * threads))
            size = (size + align - 1) / align * align
            start = min(count, start + size)
            n += 1
            b[n] = start
        }
        if start < count { n += 1; b[n] = count }
        return n
    }

    /// `parallelFor` with a closure (boxes the closure's context once per call; hot paths use `RangeJob` structs).
    package func parallelFor(_ count: Int, minimumPerWorker: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        withoutActuallyEscaping(body) { b in parallelFor(count, minimumPerWorker: minimumPerWorker, ClosureJob(body: b)) }
    }
}
