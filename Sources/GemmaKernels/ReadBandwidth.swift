// This machine's memory read bandwidth, the limit of decoding (each token reads every weight once): `threads`
// workers each stream their slice of a buffer far larger than the caches, summing 64-bit words (integer sums
// vectorize; nothing is written back). Best of `reps` passes after one that faults the pages in. On 2 MB pages when
// the kernel offers transparent huge pages, as the weights' own copy is (`WeightPlacement.hugePages`).
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

public enum ReadBandwidth {
    /// Bytes per second read by `threads` threads together over `bytes` of memory.
    public static func measure(threads: Int, bytes: Int = 1 << 30, reps: Int = 5) -> Double {
        let probe = Probe(threads: threads, bytes: bytes)
        return (0..<(reps + 1)).reduce(0) { best, _ in max(best, probe.rate(passes: 1)) }
    }

    /// A buffer of `bytes` (first touched by the threads that read it) for repeated measurements: `rate(passes:)` is
    /// the mean bandwidth over `passes` passes (all bytes / all the time), a time average like a decode step's rate,
    /// for readings taken right before and after each timed run (`gemma bench --roofline`).
    public final class Probe: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer?
        let words: Int, threads: Int
        let sink: Sink

        public init(threads: Int, bytes: Int = 512 << 20) {
            words = bytes / 8
            self.threads = max(1, threads)
            sink = Sink(self.threads)
            let m = mmap(nil, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            raw = m == MAP_FAILED ? nil : m
            guard let raw else { return }
            #if os(Linux)
            _ = madvise(raw, words * 8, 14)  // MADV_HUGEPAGE
            #endif
            let base = UInt(bitPattern: raw), n = self.threads, words = words
            DispatchQueue.concurrentPerform(iterations: n) { t in
                let q = UnsafeMutablePointer<UInt64>(bitPattern: base)!
                for i in (words * t / n)..<(words * (t + 1) / n) { q[i] = UInt64(i) }
            }
        }

        deinit { if let raw { munmap(raw, words * 8) } }

        /// Bytes per second over `passes` passes of the whole buffer (0 if it could not be mapped).
        public func rate(passes: Int = 2) -> Double {
            guard let raw else { return 0 }
            let base = UInt(bitPattern: raw), n = threads, words = words, sink = sink
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<max(1, passes) {
                DispatchQueue.concurrentPerform(iterations: n) { t in
                    let q = UnsafePointer<UInt64>(bitPattern: base)!
                    sink.values[t] = sum(q + words * t / n, count: words * (t + 1) / n - words * t / n)
                }
            }
            return Double(max(1, passes) * words * 8) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
    }

    /// The wrapping sum of `count` words (a plain loop: LLVM unrolls it into vector adds over several registers).
    @inline(never)
    static func sum(_ p: UnsafePointer<UInt64>, count: Int) -> UInt64 {
        var s: UInt64 = 0
        for i in 0..<count { s &+= p[i] }
        return s
    }

    /// Where the sums go, so that the reads are not optimized away.
    final class Sink: @unchecked Sendable {
        let values: UnsafeMutablePointer<UInt64>
        init(_ n: Int) { values = .allocate(capacity: n); values.initialize(repeating: 0, count: n) }
        deinit { values.deallocate() }
    }
}
