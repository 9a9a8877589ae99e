// Attention as another encoder would use it: SigLIP's shape (16 heads of dimension 72, not a multiple of 32, no
// cache, every row sees every key), against a direct float64 softmax(q·kᵀ·scale)·v. Rows cross a key group
// (512 keys) and take both paths: the block path (a segment of many rows, GEMM micro-kernel with zero-padded value
// panels) and the row path (segments of one row). Also grouped KV heads with a causal mask and a window.
import Foundation
import GemmaKernels
import GemmaModel
import GemmaTestSupport
import Testing

struct AttentionTests {
    /// Runs `a` over n rows in segments of the given sizes, each a sequence of its own from position 0 with no cache
    /// (keyEnd maps a position to the end of its visible keys), and returns the largest |out - reference| relative
    /// to the largest |reference|.
    func relativeError(_ a: Attention, rows n: Int, segments: [Int], keyEnd: (Int) -> Int) -> Double {
        var rng = SplitMix64(seed: 7)
        let qd = a.heads * a.headDim, kvd = a.kvHeads * a.headDim
        var q = rng.floats(n * qd), k = rng.floats(n * kvd), v = rng.floats(n * kvd)
        var out = [Float](repeating: .nan, count: n * qd)
        let w = AttentionWorkspace(a, maxRows: n, maxContext: n, workers: 2)
        var row = 0
        for (s, count) in segments.enumerated() {
            w.segmentStartRow[s] = row
            w.segmentFirstPosition[s] = 0
            w.segmentCache[s] = nil
            for r in row..<(row + count) { w.rowPosition[r] = r - row; w.rowKeyEnd[r] = keyEnd(r - row); w.rowSegment[r] = s }
            row += count
        }
        w.segmentStartRow[segments.count] = n
        q.withUnsafeMutableBufferPointer { qp in k.withUnsafeMutableBufferPointer { kp in v.withUnsafeMutableBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in
                a(rows: n, segments: segments.count, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                  out: op.baseAddress!, workspace: w, pool: WorkerPool.shared(threads: 2))
            }
        } } }
        var worst = 0.0, scale = 0.0
        let group = a.heads / a.kvHeads
        var starts: [Int] = [], s0 = 0
        for c in segments { starts += Array(repeating: s0, count: c); s0 += c }
        for r in 0..<n {
            let p = r - starts[r], first = starts[r] + max(0, a.window.map { p - $0 + 1 } ?? 0), end = starts[r] + keyEnd(p)
            for h in 0..<a.heads {
                let kvh = h / group
                var scores: [Double] = []
                for key in first..<end {
                    var d = 0.0
                    for i in 0..<a.headDim { d += Double(q[r * qd + h * a.headDim + i]) * Double(k[key * kvd + kvh * a.headDim + i]) }
                    scores.append(d * Double(a.scale))
                }
                let m = scores.max()!
                let e = scores.map { exp($0 - m) }, sum = e.reduce(0, +)
                for i in 0..<a.headDim {
                    var o = 0.0
                    for (j, key) in (first..<end).enumerated() { o += e[j] / sum * Double(v[key * kvd + kvh * a.headDim + i]) }
                    worst = max(worst, abs(o - Double(out[r * qd + h * a.headDim + i])))
                    scale = max(scale, abs(o))
                }
            }
        }
        return worst / scale
    }

    @Test func siglipShapeNonCausalOverTwoKeyGroups() {
        let siglip = Attention(heads: 16, kvHeads: 16, headDim: 72, scale: 1 / Float(72).squareRoot(), window: nil)
        let n = 600
        let block = relativeError(siglip, rows: n, segments: [n], keyEnd: { _ in n })
        print("attention, 16 heads x 72, 600 rows all-visible: block path max relative error \(block)")
        #expect(block < 1e-5)
    }

    @Test func rowPathWithHeadDim72() {
        let siglip = Attention(heads: 4, kvHeads: 4, headDim: 72, scale: 0.1, window: nil)
        // A segment of fewer rows than the block path takes: one job per row (and head chunk), dot products.
        let rows = relativeError(siglip, rows: 6, segments: [6], keyEnd: { _ in 6 })
        #expect(rows < 1e-5)
    }

    @Test func groupedKVHeadsCausalWithWindow() {
        let a = Attention(heads: 8, kvHeads: 2, headDim: 128, scale: 1 / Float(168).squareRoot(), window: 300)
        let n = 700
        let e = relativeError(a, rows: n, segments: [n], keyEnd: { $0 + 1 })
        print("attention, 8 heads over 2 KV heads x 128, window 300, 700 causal rows: max relative error \(e)")
        #expect(e < 1e-5)
    }

    /// A decode row (one query at the end of a cached sequence) over a cache of each storage: the step's own key and
    /// value from its buffers, the rest from the cache (converted per KV head, or per row when a head's slice is not
    /// a whole number of q8_0 blocks), against a float64 softmax over the values the cache gives back. Contexts of
    /// one key group (heads split across the workers) and of many (one item per group, every head); a sliding window
    /// over a ring that has wrapped (batches of values that cross the ring's end).
    @Test(arguments: [KVStorage.f32, .f16, .bf16, .q8_0])
    func decodeRowOverACacheOfEveryStorage(storage: KVStorage) {
        for (heads, kvHeads, headDim) in [(8, 2, 64), (4, 2, 48)] {
            for (context, window) in [(300, nil), (2600, nil), (2600, 1003)] as [(Int, Int?)] {
                let a = Attention(heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 0.125, window: window)
                let qd = heads * headDim, kvd = kvHeads * headDim
                var rng = SplitMix64(seed: UInt64(context + headDim))
                let cache = LayerKV(kvDim: kvd, storage: storage, slots: window ?? context, isRing: window != nil)
                let firstKey = window.map { context - $0 } ?? 0
                var keys = rng.floats(context * kvd, scale: 2), values = rng.floats(context * kvd)
                var q = rng.floats(qd, scale: 2), out = [Float](repeating: .nan, count: qd)
                keys.withUnsafeBufferPointer { kp in values.withUnsafeBufferPointer { vp in
                    for p in 0..<(context - 1) { cache.write(position: p, key: kp.baseAddress! + p * kvd, value: vp.baseAddress! + p * kvd) }
                } }
                // What the cache gives back (the step's own key and value are used as they are).
                var scratch = [Float](repeating: 0, count: kvd)
                for p in firstKey..<(context - 1) {
                    let k = cache.key(p, scratch: &scratch)
                    for i in 0..<kvd { keys[p * kvd + i] = k[i] }
                    let v = cache.value(p, scratch: &scratch)
                    for i in 0..<kvd { values[p * kvd + i] = v[i] }
                }
                let w = AttentionWorkspace(a, maxRows: 1, maxContext: context, workers: 2)
                w.rowPosition[0] = context - 1; w.rowKeyEnd[0] = context; w.rowSegment[0] = 0
                w.segmentStartRow[0] = 0; w.segmentStartRow[1] = 1; w.segmentFirstPosition[0] = context - 1
                w.segmentCache[0] = Unmanaged.passUnretained(cache)
                keys.withUnsafeMutableBufferPointer { kp in values.withUnsafeMutableBufferPointer { vp in
                    a(rows: 1, segments: 1, q: &q, k: kp.baseAddress! + (context - 1) * kvd, v: vp.baseAddress! + (context - 1) * kvd,
                      out: &out, workspace: w, pool: WorkerPool.shared(threads: 2))
                } }
                var worst = 0.0, scale = 0.0
                for h in 0..<heads {
                    let kvh = h / (heads / kvHeads)
                    let scores = (firstKey..<context).map { p in
                        (0..<headDim).reduce(0.0) { $0 + Double(q[h * headDim + $1]) * Double(keys[p * kvd + kvh * headDim + $1]) } * 0.125
                    }
                    let m = scores.max()!, e = scores.map { exp($0 - m) }, sum = e.reduce(0, +)
                    for i in 0..<headDim {
                        let o = (firstKey..<context).reduce(0.0) { $0 + e[$1 - firstKey] / sum * Double(values[$1 * kvd + kvh * headDim + i]) }
                        worst = max(worst, abs(o - Double(out[h * headDim + i])))
                        scale = max(scale, abs(o))
                    }
                }
                #expect(worst / scale < 1e-5, "\(storage), \(heads) heads over \(kvHeads) x \(headDim), context \(context), window \(window ?? 0): \(worst / scale)")
            }
        }
    }
}
