// Runs work on every core: a parallel-for over a fixed number of workers, each with a stable index (so that it can
// own scratch memory). Backed by Dispatch's persistent thread pool; no thread is created per operation.
import Dispatch

public final class WorkerPool: Sendable {
    public let threads: Int

    public init(threads: Int) {
        precondition(threads >= 1)
        self.threads = threads
    }

    /// Calls `body(worker, range)` for `threads` contiguous slices of `0..<count` (fewer when count is small).
    public func parallelFor(_ count: Int, minimumPerWorker: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let workers = max(1, min(threads, count / max(minimumPerWorker, 1)))
        if workers == 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = count * w / workers, hi = count * (w + 1) / workers
                if lo < hi { box.value(w, lo..<hi) }
            }
        }
    }
}

/// Carries a non-Sendable closure into concurrentPerform; each worker touches disjoint memory.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
