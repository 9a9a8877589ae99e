// A persistent worker pool for the many small parallel-fors of a forward step (decode runs ~150 per token): the
// caller runs worker 0 and `threads - 1` pthreads run the others. Workers poll an atomic generation counter for a
// short while after each job (a job's dispatch then costs about a microsecond), then sleep on a condition variable,
// so an idle pool uses no CPU. Callers from several threads are served one at a time. Pools are shared per thread
// count, so loading many models does not multiply threads.
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class WorkerPool: @unchecked Sendable {  // the job is published through the generation counter
    public let threads: Int
    /// Polls of the generation counter before a worker goes to sleep (~100 µs).
    static let spinLimit = 50_000

    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private let callers = Mutex<Void>(())
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>

    private static let shared = Mutex<[Int: WorkerPool]>([:])

    /// The pool with `threads` workers, created on first use and shared.
    public static func shared(threads: Int) -> WorkerPool {
        let n = max(1, threads)
        return shared.withLock { pools in
            if let p = pools[n] { return p }
            let p = WorkerPool(threads: n)
            pools[n] = p
            return p
        }
    }

    /// A pool of its own with `threads` workers (its threads live as long as the process).
    public init(threads: Int) {
        self.threads = max(1, threads)
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
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
            job!(worker)
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// Runs `body(w)` for every worker `w` in `0..<threads` and returns when all are done.
    public func run(_ body: (Int) -> Void) {
        if threads == 1 { body(0); return }
        callers.withLock { _ in
            withoutActuallyEscaping(body) { b in
                job = b
                remaining.store(threads - 1, ordering: .relaxed)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(mutex)
                    pthread_cond_broadcast(wake)
                    pthread_mutex_unlock(mutex)
                }
                b(0)
                var spins = 0
                while remaining.load(ordering: .acquiring) != 0 {
                    spins += 1
                    if spins > Self.spinLimit { sched_yield() }
                }
                job = nil
            }
        }
    }

    /// Calls `body(worker, range)` for contiguous slices of `0..<count`, one per worker (fewer when `count` is
    /// below `threads * minimumPerWorker`).
    public func parallelFor(_ count: Int, minimumPerWorker: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let workers = max(1, min(threads, count / max(minimumPerWorker, 1)))
        if workers == 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        run { w in
            guard w < workers else { return }
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(w, lo..<hi) }
        }
    }
}
