// Multi-head attention with grouped key/value heads over the rows of one step: softmax(q·kᵀ · scale + mask) · v.
// Keys before the step come from each sequence's cache, the step's own from its buffers. The mask is data: row r
// sees keys [firstKey(r), keyEnd[r]), where firstKey is 0 or, with a sliding window W, position - W + 1, and
// keyEnd is position + 1 (causal) or the end of the row's bidirectional span (an image's rows see each other), or
// anything the caller sets (an encoder: every row sees every key). Head dims need not be multiples of 32.
//
// Each row's keys are cut into groups at multiples of `keyGroup` (absolute positions; `splitKeyGroup` for decode
// rows over few keys), whose softmax partials merge in group order, so a row's arithmetic depends only on its own
// keys, never on the thread count or on the other rows of the step. Rows of decode-sized segments are one job per
// (row, group), or per (row, group, chunk of heads) when groups are fewer than twice the head chunks, scored by dot
// products; rows of prompt-sized segments go in blocks of `rowBlock` per group, with the group's keys packed once
// into 32-key panels and scored by the GEMM micro-kernel. No T x T matrix is ever built.
import GemmaKernels

/// The shape of an attention: heads, key/value heads (query head h uses kv head h / (heads / kvHeads)), head dim,
/// query scale, and an optional sliding window (key k is seen from position p iff p - k < window, or k >= p).
package struct Attention: Sendable {
    package let heads: Int
    package let kvHeads: Int
    package let headDim: Int
    package let scale: Float
    package let window: Int?

    package init(heads: Int, kvHeads: Int, headDim: Int, scale: Float, window: Int?) {
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && headDim > 0)
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.scale = scale
        self.window = window
    }

    /// Keys per group: a row's keys are split at multiples of this absolute position.
    package static let keyGroup = 512
    /// Keys per group of a decode row that sees at most `splitGroups` groups (a local layer's window, a global layer
    /// early in a context): its keys are split at multiples of this instead, so that the workers share the row by
    /// keys and each key and value row is read once (split by heads, each worker would read every row). Fixed, not
    /// chosen by the thread count: a row's arithmetic stays the same whatever the workers.
    static let splitKeyGroup = 128
    static let splitGroups = 4
    /// Query rows of a prompt-sized segment that share each key group's packed keys.
    static let rowBlock = 48
    /// Segments of at least this many rows take the block (GEMM) path.
    static let blockMinimumRows = WeightMatrix.gemmMinimumBatch

    /// Head dim rounded up to the 32-wide panels of the block path's P x V.
    var paddedHeadDim: Int { (headDim + 31) / 32 * 32 }

    @inline(__always) func firstKey(_ r: Int, _ w: AttentionWorkspace) -> Int {
        window.map { max(0, w.rowPosition[r] - $0 + 1) } ?? 0
    }

    /// The key group size of row `r`: `splitKeyGroup` for a decode row (of a segment below the block path's size)
    /// whose keys span at most `splitGroups` groups of `keyGroup`, else `keyGroup`.
    @inline(__always) func keyUnit(_ r: Int, _ w: AttentionWorkspace) -> Int {
        let seg = w.rowSegment[r], G = Self.keyGroup
        guard w.segmentStartRow[seg + 1] - w.segmentStartRow[seg] < Self.blockMinimumRows else { return G }
        return (w.rowKeyEnd[r] - 1) / G - firstKey(r, w) / G < Self.splitGroups ? Self.splitKeyGroup : G
    }

    /// Attention of rows 0..<n: queries `q` (n x heads*headDim), the step's keys and values `k`, `v`
    /// (n x kvHeads*headDim, already at the cache's precision), output `out` (n x heads*headDim). `w` holds each
    /// row's position, key end and segment, and each segment's first row, first position and cache layer (nil:
    /// no cache, every key is in the step).
    package func callAsFunction(rows n: Int, segments: Int, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
                                v: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, workspace w: AttentionWorkspace,
                                pool: WorkerPool) {
        let G = Self.keyGroup
        // Partial slots: row r owns one per key group it touches, in order.
        var slots = 0
        for r in 0..<n {
            w.rowFirstJob[r] = slots
            let u = keyUnit(r, w)
            slots += (w.rowKeyEnd[r] - 1) / u - firstKey(r, w) / u + 1
        }
        w.rowFirstJob[n] = slots
        // Work items: (first row, rows, group, head chunk).
        var items = 0
        for s in 0..<segments {
            let r0 = w.segmentStartRow[s], count = w.segmentStartRow[s + 1] - r0
            let block = count >= Self.blockMinimumRows ? Self.rowBlock : 1
            var rb = r0
            while rb < r0 + count {
                let re = min(rb + block, r0 + count)
                let u = block == 1 ? keyUnit(rb, w) : G
                let groups = firstKey(rb, w) / u...((w.rowKeyEnd[re - 1] - 1) / u)
                // Single rows (decode): one item per key group with every head, so that each key is read once;
                // over fewer groups than twice the workers' share of heads, one item per group and chunk of query
                // heads, so that the workers share the row. Each head's arithmetic is the same whichever item
                // computes it.
                let chunks = block == 1 && groups.count < 2 * w.headChunks ? w.headChunks : 1
                for g in groups {
                    for chunk in 0..<chunks {
                        w.itemRow[items] = rb
                        w.itemRows[items] = re - rb
                        w.itemGroup[items] = g
                        w.itemHeadChunk[items] = chunk
                        w.itemHeadChunks[items] = chunks
                        items += 1
                    }
                }
                rb = re
            }
        }
        let io = IO(q: q, k: k, v: v, out: out)
        pool.parallelFor(items, Job(a: self, w: w, io: io))
        // Merge each row's groups in order (rows split across the workers for prompt-sized steps).
        pool.parallelFor(n, minimumPerWorker: 16, MergeJob(a: self, w: w, io: io))
    }

    struct IO {
        let q, k, v, out: UnsafeMutablePointer<Float>
    }

    /// The work items of a step, split across the workers (a struct: dispatching it allocates nothing).
    private struct Job: RangeJob {
        let a: Attention, w: AttentionWorkspace, io: IO
        func run(worker: Int, range: Range<Int>) {
            for item in range {
                let r = w.itemRow[item]
                if w.itemRows[item] == 1 {
                    let chunk = w.itemHeadChunk[item], heads = a.heads
                    let chunks = w.itemHeadChunks[item]
                    a.attendRow(r, group: w.itemGroup[item], heads: (chunk * heads / chunks)..<((chunk + 1) * heads / chunks),
                                worker: worker, w, io)
                } else {
                    a.attendBlock(r, rows: w.itemRows[item], group: w.itemGroup[item], worker: worker, w, io)
                }
            }
        }
    }

    private struct MergeJob: RangeJob {
        let a: Attention, w: AttentionWorkspace, io: IO
        func run(worker: Int, range: Range<Int>) { a.merge(rows: range, w, io) }
    }

    /// Values of decode rows multiplied in batches of this many keys (each output element read and written once per
    /// batch).
    static let valueRows = 8
    /// Keys ahead of the one being read whose cache lines decode rows ask for.
    static let prefetchDistance = 8

    /// Key (or value) `k`'s slice for KV head `kvh` as f32: from the step's buffer when the step holds it, else
    /// from the cache, converted into `scratch` (`headDim` floats; the whole row, kvHeads x headDim, when the
    /// storage cannot convert one head alone).
    @inline(__always)
    private func head(_ values: Bool, _ k: Int, _ kvh: Int, _ p0: Int, _ r0: Int, _ cache: KVView?, _ io: IO,
                      _ scratch: UnsafeMutablePointer<Float>, _ rowScratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let d = headDim
        if k >= p0 { return UnsafePointer((values ? io.v : io.k) + (r0 + k - p0) * kvHeads * d + kvh * d) }
        let c = cache!
        if c.sliceable(d) {
            return values ? c.value(k, offset: kvh * d, count: d, scratch: scratch) : c.key(k, offset: kvh * d, count: d, scratch: scratch)
        }
        return (values ? c.value(k, scratch: rowScratch) : c.key(k, scratch: rowScratch)) + kvh * d
    }

    /// One row's softmax partial over key group `g` for heads `hs` (decode rows): each key of each KV head is read
    /// once and dotted with all of the head's queries in `hs` together; values go in batches of `valueRows` keys
    /// into the outputs. Caches are read as stored (converted in registers), except q8_0 rows whose heads are not a
    /// whole number of blocks (converted into a scratch row first).
    @inline(__always)
    private func attendRow(_ r: Int, group g: Int, heads hs: Range<Int>, worker: Int, _ w: AttentionWorkspace, _ io: IO) {
        guard let cache = w.segmentCache[w.rowSegment[r]]?.takeUnretainedValue().view, cache.sliceable(headDim) else {
            return attendRow(r, group: g, heads: hs, worker: worker, w, io, F32Elements.self, direct: false)
        }
        switch cache.storage {
        case .f16: attendRow(r, group: g, heads: hs, worker: worker, w, io, F16Elements.self, direct: true)
        case .bf16: attendRow(r, group: g, heads: hs, worker: worker, w, io, BF16Elements.self, direct: true)
        case .f32: attendRow(r, group: g, heads: hs, worker: worker, w, io, F32Elements.self, direct: true)
        case .q8_0: attendRow(r, group: g, heads: hs, worker: worker, w, io, Q8_0Elements.self, direct: true)
        }
    }

    @inline(__always)
    private func attendRow<E: StoredElements>(_ r: Int, group g: Int, heads hs: Range<Int>, worker: Int, _ w: AttentionWorkspace,
                                              _ io: IO, _: E.Type, direct: Bool) {
        // Scores are laid out keyGroup apart per head; this row's groups are `u` keys (keyUnit).
        let d = headDim, group = heads / kvHeads, qDim = heads * d, kvDim = kvHeads * d, G = Self.keyGroup
        let scores = w.scores + worker * w.scoresStride, kbuf = w.kvScratch + worker * w.kvScratchStride
        let vbuf = w.valueRows + worker * Self.valueRows * d
        let seg = w.rowSegment[r], p0 = w.segmentFirstPosition[seg], r0 = w.segmentStartRow[seg]
        let cache = w.segmentCache[seg]?.takeUnretainedValue().view
        let first = firstKey(r, w), u = keyUnit(r, w)
        let lo = max(first, g * u), hi = min(w.rowKeyEnd[r], (g + 1) * u)
        let m = w.partials + (w.rowFirstJob[r] + g - first / u) * w.partialStride  // maxima, sums, outputs
        let out = m + 2 * heads
        (out + hs.lowerBound * d).update(repeating: 0, count: hs.count * d)
        let count = hi - lo, cached = min(hi, p0)  // keys lo..<cached are in the cache, cached..<hi in the step
        let q = io.q + r * qDim
        for kvh in hs.lowerBound / group...((hs.upperBound - 1) / group) {
            let h0 = max(hs.lowerBound, kvh * group), h1 = min(hs.upperBound, (kvh + 1) * group)
            let qh = q + h0 * d, sh = scores + h0 * G - lo
            var slot = lo < cached ? cache!.slot(lo) : 0  // key k's slot, stepped along (no division per key)
            for k in lo..<hi {
                if k < cached {
                    let c = cache!
                    if k + Self.prefetchDistance < cached { c.prefetch(values: false, slot: slot + Self.prefetchDistance, offset: kvh * d, count: d) }
                    if direct {
                        dotHeads(qh, qStride: d, count: h1 - h0, key: UnsafeRawPointer(c.keys + slot * c.rowBytes) + E.byteOffset(kvh * d),
                                 as: E.self, d, scale: scale, into: sh + k, outStride: G)
                    } else {
                        dotHeads(qh, qStride: d, count: h1 - h0, key: head(false, k, kvh, p0, r0, cache, io, kbuf, kbuf), d,
                                 scale: scale, into: sh + k, outStride: G)
                    }
                } else {
                    dotHeads(qh, qStride: d, count: h1 - h0, key: io.k + (r0 + k - p0) * kvDim + kvh * d, d, scale: scale,
                             into: sh + k, outStride: G)
                }
                slot += 1
                if let c = cache, slot == c.slots { slot = 0 }
            }
        }
        for hd in hs { (m[hd], m[heads + hd]) = expShifted(scores + hd * G, count) }
        for kvh in hs.lowerBound / group...((hs.upperBound - 1) / group) {
            let h0 = max(hs.lowerBound, kvh * group), h1 = min(hs.upperBound, (kvh + 1) * group)
            let oh = out + h0 * d, wh = scores + h0 * G - lo, nh = h1 - h0
            var k = lo
            while k < hi {
                let n = min(Self.valueRows, hi - k)
                if k + n <= cached, direct, let c = cache, !c.isRing || c.slot(k) + n <= c.slots {
                    // Consecutive slots of the cache: the batch's rows are read where they are stored.
                    let s0 = c.slot(k)
                    for j in 0..<n where k + j + Self.prefetchDistance < cached {
                        c.prefetch(values: true, slot: s0 + j + Self.prefetchDistance, offset: kvh * d, count: d)
                    }
                    accumulateHeads(oh, outStride: d, count: nh, weights: wh + k, wStride: G,
                                    values: UnsafeRawPointer(c.values + s0 * c.rowBytes) + E.byteOffset(kvh * d), as: E.self,
                                    vStrideBytes: c.rowBytes, keys: n, d)
                } else {
                    // Across the ring's end or the step's start, or q8_0 heads of partial blocks: rows converted to f32
                    // one by one.
                    for j in 0..<n {
                        let dst = vbuf + j * d
                        let vp = head(true, k + j, kvh, p0, r0, cache, io, dst, kbuf)
                        if vp != UnsafePointer(dst) { dst.update(from: vp, count: d) }
                    }
                    accumulateHeads(oh, outStride: d, count: nh, weights: wh + k, wStride: G, values: vbuf, vStride: d, keys: n, d)
                }
                k += n
            }
        }
    }

    /// Softmax partials over key group `g` for `rc` consecutive rows of one prompt segment: the group's keys are
    /// packed once per KV head into 32-key panels and scored against every query of the block by the GEMM
    /// micro-kernel; each row then keeps only its own visible range of the group.
    private func attendBlock(_ ra: Int, rows rc: Int, group g: Int, worker: Int, _ w: AttentionWorkspace, _ io: IO) {
        let d = headDim, dp32 = paddedHeadDim, group = heads / kvHeads, qDim = heads * d, G = Self.keyGroup
        let scores = w.scores + worker * w.scoresStride, kbuf = w.kvScratch + worker * w.kvScratchStride
        let panel = w.keyPanels + worker * 32 * d
        let seg = w.rowSegment[ra], p0 = w.segmentFirstPosition[seg], r0 = w.segmentStartRow[seg]
        let cache = w.segmentCache[seg]?.takeUnretainedValue().view
        // Key ends never decrease along a segment's rows, so the block's last row sees furthest.
        let lo = max(g * G, firstKey(ra, w)), hi = min((g + 1) * G, w.rowKeyEnd[ra + rc - 1])
        let panels = (hi - lo + 31) / 32
        let rowStride = heads * G  // scores[(t * heads + h) * G + key - lo]
        let rows = w.valueRows + worker * Self.valueRows * d  // 8 keys as f32, transposed into the panel
        for kvh in 0..<kvHeads {
            for pi in 0..<panels {
                for i0 in stride(from: 0, to: 32, by: 8) {
                    for i in 0..<8 {
                        let k = lo + 32 * pi + i0 + i, dst = rows + i * d
                        if k < hi {
                            let kp = head(false, k, kvh, p0, r0, cache, io, dst, kbuf)  // this KV head's slice only
                            if kp != UnsafePointer(dst) { dst.update(from: kp, count: d) }
                        } else {
                            dst.update(repeating: 0, count: d)
                        }
                    }
                    transposeEightRows(rows, srcStride: d, k: d, into: panel + i0)
                }
                for h in kvh * group..<(kvh + 1) * group {
                    var t = 0
                    while t < rc {
                        gemmTile32x6(panel, io.q + (ra + t) * qDim + h * d, qDim, d,
                                      scores + (t * heads + h) * G + 32 * pi, rowStride, min(6, rc - t))
                        t += 6
                    }
                }
            }
        }
        // Each row's own range of this group: scale, softmax statistics, and the partial's slot. Probabilities
        // outside a row's range are zeroed, so that P x V can run over the whole group as one product.
        for t in 0..<rc {
            let r = ra + t, first = firstKey(r, w), end = w.rowKeyEnd[r]
            let inGroup = g >= first / G && g <= (end - 1) / G
            let rlo = inGroup ? max(lo, first) : hi, rhi = inGroup ? min(hi, end) : hi
            for h in 0..<heads {
                let sRow = scores + (t * heads + h) * G - lo
                for k in rlo..<rhi { sRow[k] *= scale }
                let (mx, sum) = expShifted(sRow + rlo, rhi - rlo)  // max, exponentials and sum in 8 lanes
                for k in lo..<rlo { sRow[k] = 0 }
                for k in rhi..<hi { sRow[k] = 0 }
                if inGroup {
                    let m = w.partials + (w.rowFirstJob[r] + g - first / G) * w.partialStride
                    m[h] = mx
                    m[heads + h] = sum
                }
            }
        }
        // P x V per KV head: the group's values packed once into 32-dimension panels (vp[dp][key][32], the last
        // panel zero-padded when the head dim is not a multiple of 32), multiplied by each query head's
        // probability rows with the GEMM micro-kernel into a block-sized output of padded heads.
        let vp = w.valuePanels + worker * G * dp32, out = w.blockOut + worker * Self.rowBlock * heads * dp32
        let keys = hi - lo, dPanels = dp32 / 32
        for kvh in 0..<kvHeads {
            for k in lo..<hi {
                let vr = head(true, k, kvh, p0, r0, cache, io, kbuf, kbuf)
                for dp in 0..<dPanels {
                    let dst = vp + (dp * G + (k - lo)) * 32, src = vr + dp * 32, width = min(32, d - dp * 32)
                    for i in 0..<width { dst[i] = src[i] }
                    for i in width..<32 { dst[i] = 0 }
                }
            }
            for h in kvh * group..<(kvh + 1) * group {
                for dp in 0..<dPanels {
                    var t = 0
                    while t < rc {
                        gemmTile32x6(vp + dp * G * 32, scores + (t * heads + h) * G, heads * G, keys,
                                      out + t * heads * dp32 + h * dp32 + dp * 32, heads * dp32, min(6, rc - t))
                        t += 6
                    }
                }
            }
        }
        for t in 0..<rc {
            let r = ra + t, first = firstKey(r, w)
            guard g >= first / G, g <= (w.rowKeyEnd[r] - 1) / G else { continue }
            let dst = w.partials + (w.rowFirstJob[r] + g - first / G) * w.partialStride + 2 * heads
            if dp32 == d {
                dst.update(from: out + t * qDim, count: qDim)
            } else {
                for h in 0..<heads { (dst + h * d).update(from: out + t * heads * dp32 + h * dp32, count: d) }
            }
        }
    }

    /// Rows `range`: out = sum_j e^(m_j - M) out_j / sum_j e^(m_j - M) sum_j over each row's key groups j, in order.
    private func merge(rows range: Range<Int>, _ w: AttentionWorkspace, _ io: IO) {
        let d = headDim, qDim = heads * d
        for r in range {
            let firstJob = w.rowFirstJob[r], lastJob = w.rowFirstJob[r + 1]
            for hd in 0..<heads {
                let dst = io.out + r * qDim + hd * d
                if lastJob - firstJob == 1 {
                    let m = w.partials + firstJob * w.partialStride, inv = 1 / m[heads + hd], o = m + 2 * heads + hd * d
                    for i in 0..<d { dst[i] = o[i] * inv }
                    continue
                }
                var mx = -Float.infinity
                for job in firstJob..<lastJob { mx = max(mx, w.partials[job * w.partialStride + hd]) }
                var denom: Float = 0
                dst.update(repeating: 0, count: d)
                for job in firstJob..<lastJob {
                    let m = w.partials + job * w.partialStride
                    let f = expFast(m[hd] - mx)
                    denom += f * m[heads + hd]
                    let o = m + 2 * heads + hd * d
                    for i in 0..<d { dst[i] += f * o[i] }
                }
                let inv = 1 / denom
                for i in 0..<d { dst[i] *= inv }
            }
        }
    }
}

/// The rows of an attention call and the buffers it works in, for up to `maxRows` rows over up to `maxContext`
/// keys per row, allocated once (an attention call allocates nothing).
package final class AttentionWorkspace {
    package let maxRows: Int
    // Filled by the caller, per row: its position, the end of its visible keys, its segment.
    package let rowPosition, rowKeyEnd, rowSegment: UnsafeMutablePointer<Int>
    // Per segment: its first row (segmentStartRow[segments] = rows), its first position, its cache layer.
    package let segmentStartRow, segmentFirstPosition: UnsafeMutablePointer<Int>
    package let segmentCache: UnsafeMutablePointer<Unmanaged<LayerKV>?>
    /// Per row: its first partial slot (rowFirstJob[rows] = slots in all).
    let rowFirstJob: UnsafeMutablePointer<Int>
    /// Work items: first row, rows, key group, and for single-row items the chunk of query heads and the number of
    /// chunks (a decode row's attention over one key group may be split by heads across the workers).
    let itemRow, itemRows, itemGroup, itemHeadChunk, itemHeadChunks: UnsafeMutablePointer<Int>
    let headChunks: Int
    /// Per worker: scores of a block of rows x heads over a key group (scoresStride); a converted K/V row.
    let scores, kvScratch: UnsafeMutablePointer<Float>
    let scoresStride, kvScratchStride: Int
    /// Per worker: 32 keys packed dimension-major (32 x headDim), a key group's values in 32-dimension panels
    /// (keyGroup x paddedHeadDim), a row block's output (rowBlock x heads x paddedHeadDim).
    let keyPanels, valuePanels, blockOut: UnsafeMutablePointer<Float>
    /// Per worker: `Attention.valueRows` (8) rows of one KV head as f32: values for decode rows' P x V, keys on their
    /// way into the block path's transposed panels.
    let valueRows: UnsafeMutablePointer<Float>
    /// Per (row, key group): softmax partials [maxima (heads), sums (heads), outputs (heads x headDim)].
    let partials: UnsafeMutablePointer<Float>
    let partialStride: Int
    private let allocations: Allocations

    package init(_ a: Attention, maxRows: Int, maxContext: Int, workers: Int) {
        let m = Allocations()
        self.maxRows = max(1, maxRows)
        let b = self.maxRows, G = Attention.keyGroup
        let groupsPerRow = max(max(1, maxContext) / G + 2, (Attention.splitGroups + 1) * G / Attention.splitKeyGroup + 1)
        rowPosition = m.alloc(b, Int.self); rowKeyEnd = m.alloc(b, Int.self); rowSegment = m.alloc(b, Int.self)
        segmentStartRow = m.alloc(b + 1, Int.self); segmentFirstPosition = m.alloc(b, Int.self)
        segmentCache = m.alloc(b, Unmanaged<LayerKV>?.self)
        rowFirstJob = m.alloc(b + 1, Int.self)
        headChunks = max(1, min(a.heads, workers))
        let itemCount = b * groupsPerRow * headChunks
        itemRow = m.alloc(itemCount, Int.self); itemRows = m.alloc(itemCount, Int.self)
        itemGroup = m.alloc(itemCount, Int.self); itemHeadChunk = m.alloc(itemCount, Int.self)
        itemHeadChunks = m.alloc(itemCount, Int.self)
        scoresStride = Attention.rowBlock * a.heads * G
        scores = m.alloc(workers * scoresStride)
        kvScratchStride = a.kvHeads * a.headDim
        kvScratch = m.alloc(workers * kvScratchStride)
        keyPanels = m.alloc(workers * 32 * a.headDim)
        valueRows = m.alloc(workers * Attention.valueRows * a.headDim)
        valuePanels = m.alloc(workers * G * a.paddedHeadDim)
        blockOut = m.alloc(workers * Attention.rowBlock * a.heads * a.paddedHeadDim)
        partialStride = 2 * a.heads + a.heads * a.headDim
        partials = m.alloc(b * groupsPerRow * partialStride)
        allocations = m
    }
}
