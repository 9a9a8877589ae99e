// One forward step over rows of tokens from one or several sequences: the layer recipe, attention over each
// sequence's cache, and the tied output head for the rows whose logits are needed.
import Foundation
import GemmaKernels

extension Gemma3Model {
    /// Runs every segment's tokens through the model and appends them to its cache. Rows of a segment are
    /// contiguous; the caller has checked capacities and sizes.
    func forwardRows<S: RandomAccessCollection<Segment>>(_ segments: S, workspace w: Workspace) where S.Index == Int {
        let c = config, h = c.hiddenSize, d = c.headDim
        let qDim = c.numAttentionHeads * d, kvDim = c.numKeyValueHeads * d, f = c.intermediateSize
        var n = 0
        for (i, seg) in segments.enumerated() {
            w.segmentStartRow[i] = n
            w.segmentFirstPosition[i] = seg.cache.count
            for (t, _) in seg.tokens.enumerated() {
                w.rowPosition[n + t] = seg.cache.count + t
                w.rowSegment[n + t] = i
            }
            n += seg.tokens.count
        }

        // Rows of prompt-sized segments take the GEMM; rows of decode-sized segments always take the row kernels, so
        // that a sequence's arithmetic does not depend on what it is batched with.
        var runCount = 0
        for (i, seg) in segments.enumerated() {
            let r0 = w.segmentStartRow[i], big = seg.tokens.count >= WeightMatrix.gemmMinimumBatch
            if runCount > 0, w.runGemm[runCount - 1] == big, !big { w.runRows[runCount - 1] = w.runRows[runCount - 1].lowerBound..<(r0 + seg.tokens.count) }
            else { w.runRows[runCount] = r0..<(r0 + seg.tokens.count); w.runGemm[runCount] = big; runCount += 1 }
        }
        let runs = UnsafeBufferPointer(start: w.runRows, count: runCount), runGemm = w.runGemm

        // x: (n, hidden) = embedding rows * sqrt(hidden)
        let scale = c.embeddingMultiplier
        var row = 0
        for seg in segments {
            for id in seg.tokens {
                let xr = w.x + row * h
                weights.embedding.dequantizeRow(id, into: xr)
                for i in 0..<h { xr[i] *= scale }
                row += 1
            }
        }

        // The per-row elementwise stages (norms, RoPE, residual adds, GeGLU) are split by rows across the workers for
        // prompt-sized steps (serial, they left the other core idle: ~5% of a 512-token prefill); decode rows stay on
        // the caller (fewer than 2 x 16 rows is one slice). Each row gets the same operations either way.
        @inline(__always) func rows(_ stage: RowStage, _ l: Int) {
            pool.parallelFor(n, minimumPerWorker: 16, RowStageJob(model: self, w: w, layer: l, stage: stage))
        }
        rows(.ropeAngles, 0)
        for (l, lw) in weights.layers.enumerated() {
            // Attention block.
            rows(.attentionIn, l)
            for (i, rows) in runs.enumerated() {
                WeightMatrix.multiply((lw.q, lw.k, lw.v), w.xb + rows.lowerBound * h, xStride: h, batch: rows.count,
                                      into: (w.q + rows.lowerBound * qDim, w.k + rows.lowerBound * kvDim, w.v + rows.lowerBound * kvDim),
                                      yStride: (qDim, kvDim, kvDim), precision: precision, allowGemm: runGemm[i], pool: pool, scratch: w.matmul)
            }
            rows(.queryKeyNormRoPE, l)
            // The step's keys and values are used at their cache's precision, read from the step's buffers, and
            // stored only after attention: a ring of exactly the window then never loses a key a query needs.
            for (i, seg) in segments.enumerated() {
                let storage = seg.cache.layers[l].storage, r0 = w.segmentStartRow[i]
                storage.round(w.k + r0 * kvDim, seg.tokens.count * kvDim)
                storage.round(w.v + r0 * kvDim, seg.tokens.count * kvDim)
            }
            attend(layer: l, rows: n, segments: segments, workspace: w)
            for (i, seg) in segments.enumerated() {
                let layerKV = seg.cache.layers[l], r0 = w.segmentStartRow[i], p0 = w.segmentFirstPosition[i]
                let count = seg.tokens.count
                for t in max(0, layerKV.isRing ? count - layerKV.slots : 0)..<count {
                    layerKV.write(position: p0 + t, key: w.k + (r0 + t) * kvDim, value: w.v + (r0 + t) * kvDim)
                }
            }
            product(lw.o, runs, runGemm, w.attn, qDim, w.xb, h, w)
            // Post-attention norm and residual, then the feed-forward block: down(gelu_tanh(gate(x)) * up(x)).
            rows(.attentionOutFeedForwardIn, l)
            for (i, rows) in runs.enumerated() {
                WeightMatrix.multiply((lw.gate, lw.up, nil), w.xb + rows.lowerBound * h, xStride: h, batch: rows.count,
                                      into: (w.gate + rows.lowerBound * f, w.up + rows.lowerBound * f, nil),
                                      yStride: (f, f, 0), precision: precision, allowGemm: runGemm[i], pool: pool, scratch: w.matmul)
            }
            rows(.geglu, l)
            product(lw.down, runs, runGemm, w.gate, f, w.xb, h, w)
            rows(.feedForwardOut, l)
        }
        for seg in segments { seg.cache.tokens.append(contentsOf: seg.tokens) }
    }

    /// The per-row elementwise stages of a layer (see forwardRows).
    enum RowStage { case ropeAngles, attentionIn, queryKeyNormRoPE, attentionOutFeedForwardIn, geglu, feedForwardOut }

    /// Rows `range` of one stage of layer `l`.
    fileprivate func rowStage(_ stage: RowStage, layer l: Int, rows range: Range<Int>, _ w: Workspace) {
        let c = config, h = c.hiddenSize, d = c.headDim, half = d / 2
        let qDim = c.numAttentionHeads * d, kvDim = c.numKeyValueHeads * d, f = c.intermediateSize
        let eps = c.rmsNormEps, off = weights.normOffset, lw = weights.layers[l]
        switch stage {
        case .ropeAngles:
            // RoPE angles of each row's position, per distinct (base, scale), in f64 (layer-independent).
            for (kind, inv) in ropeInvFreq.enumerated() {
                for r in range {
                    let pos = Double(w.rowPosition[r])
                    for i in 0..<half {
                        let theta = pos * inv[i]
                        w.ropeCos[kind][r * half + i] = Float(cos(theta))
                        w.ropeSin[kind][r * half + i] = Float(sin(theta))
                    }
                }
            }
        case .attentionIn:
            for r in range { rmsNorm(w.x + r * h, weight: lw.inputNorm, offset: off, eps: eps, count: h, into: w.xb + r * h) }
        case .queryKeyNormRoPE:
            let kind = ropeKindOfLayer[l]
            for r in range {
                let cosR = w.ropeCos[kind] + r * half, sinR = w.ropeSin[kind] + r * half
                for hd in 0..<c.numAttentionHeads {
                    let q = w.q + r * qDim + hd * d
                    rmsNorm(q, weight: lw.qNorm, offset: off, eps: eps, count: d, into: q)
                    applyRoPE(q, half: half, cos: cosR, sin: sinR)
                }
                for hd in 0..<c.numKeyValueHeads {
                    let k = w.k + r * kvDim + hd * d
                    rmsNorm(k, weight: lw.kNorm, offset: off, eps: eps, count: d, into: k)
                    applyRoPE(k, half: half, cos: cosR, sin: sinR)
                }
            }
        case .attentionOutFeedForwardIn:
            for r in range {
                let a = w.xb + r * h
                rmsNorm(a, weight: lw.postAttentionNorm, offset: off, eps: eps, count: h, into: a)
                addInPlace(w.x + r * h, a, h)
                rmsNorm(w.x + r * h, weight: lw.preFeedforwardNorm, offset: off, eps: eps, count: h, into: a)
            }
        case .geglu:
            gegluInPlace(w.gate + range.lowerBound * f, w.up + range.lowerBound * f, range.count * f)
        case .feedForwardOut:
            for r in range {
                let m = w.xb + r * h
                rmsNorm(m, weight: lw.postFeedforwardNorm, offset: off, eps: eps, count: h, into: m)
                addInPlace(w.x + r * h, m, h)
            }
        }
    }

    /// A row stage split across the workers (a struct: dispatching it allocates nothing).
    fileprivate struct RowStageJob: RangeJob {
        let model: Gemma3Model, w: Workspace, layer: Int, stage: RowStage
        func run(worker: Int, range: Range<Int>) { model.rowStage(stage, layer: layer, rows: range, w) }
    }

    /// `y = W x` for every run of rows, each with its kernel policy.
    @inline(__always)
    private func product(_ m: WeightMatrix, _ runs: UnsafeBufferPointer<Range<Int>>, _ runGemm: UnsafePointer<Bool>, _ x: UnsafeMutablePointer<Float>, _ xStride: Int,
                         _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ w: Workspace) {
        for (i, rows) in runs.enumerated() {
            m.multiply(x + rows.lowerBound * xStride, xStride: xStride, batch: rows.count,
                       into: y + rows.lowerBound * yStride, yStride: yStride, precision: precision, allowGemm: runGemm[i],
                       pool: pool, scratch: w.matmul)
        }
    }

    /// NeoX-style rotation of one head: pairs (i, i + half).
    @inline(__always)
    private func applyRoPE(_ x: UnsafeMutablePointer<Float>, half: Int, cos c: UnsafePointer<Float>, sin sn: UnsafePointer<Float>) {
        for i in 0..<half {
            let x1 = x[i], x2 = x[i + half]
            x[i] = x1 * c[i] - x2 * sn[i]
            x[i + half] = x2 * c[i] + x1 * sn[i]
        }
    }

    /// Keys per attention job: a row's keys are split at multiples of this absolute position, so the arithmetic
    /// of a row depends only on its position, never on the thread count or on the other rows of the step.
    static let attentionKeyGroup = 512
    /// Query rows of a prompt-sized segment that share each key group's packed keys.
    static let attentionRowBlock = 48

    /// Causal attention of each row's queries: keys before the step come from the row's sequence cache, the step's
    /// own from its buffers. Local layers see keys k with p - k < window (the current token included). Each row's
    /// keys are cut into groups at multiples of `attentionKeyGroup`, whose softmax partials merge in group order.
    /// Rows of decode-sized segments are one job per (row, group), scored by dot products; rows of prompt-sized
    /// segments go in blocks of `attentionRowBlock` per group, with the group's keys packed once into 32-key panels
    /// and scored by the GEMM micro-kernel. Jobs run on every core; no T x T matrix is ever built.
    private func attend<S: RandomAccessCollection<Segment>>(layer l: Int, rows n: Int, segments: S, workspace w: Workspace) where S.Index == Int {
        let G = Self.attentionKeyGroup
        let window: Int? = if case let .local(win) = attention[l].kind { win } else { nil }
        @inline(__always) func firstKey(_ r: Int) -> Int { window.map { max(0, w.rowPosition[r] - $0 + 1) } ?? 0 }
        // Partial slots: row r owns one per key group it touches, in order.
        var slots = 0
        for r in 0..<n {
            w.rowFirstJob[r] = slots
            slots += w.rowPosition[r] / G - firstKey(r) / G + 1
        }
        w.rowFirstJob[n] = slots
        // Work items: (first row, rows, group).
        var items = 0
        for (i, seg) in segments.enumerated() {
            let r0 = w.segmentStartRow[i], count = seg.tokens.count
            let block = count >= WeightMatrix.gemmMinimumBatch ? Self.attentionRowBlock : 1
            var rb = r0
            while rb < r0 + count {
                let re = min(rb + block, r0 + count)
                for g in firstKey(rb) / G...(w.rowPosition[re - 1] / G) {
                    // Single rows (decode): one item per chunk of query heads, so that both workers share a step's
                    // attention (each head's arithmetic is the same whichever item computes it).
                    for chunk in 0..<(block == 1 ? w.headChunks : 1) {
                        w.itemRow[items] = rb
                        w.itemRows[items] = re - rb
                        w.itemGroup[items] = g
                        w.itemHeadChunk[items] = chunk
                        items += 1
                    }
                }
                rb = re
            }
        }
        for (i, seg) in segments.enumerated() { w.segmentCache[i] = Unmanaged.passUnretained(seg.cache.layers[l]) }
        pool.parallelFor(items, AttentionJob(model: self, w: w, window: window))
        // Merge each row's groups in order (rows split across the workers for prompt-sized steps).
        pool.parallelFor(n, minimumPerWorker: 16, AttentionMergeJob(model: self, w: w))
    }

    /// Rows `range`: out = sum_j e^(m_j - M) out_j / sum_j e^(m_j - M) sum_j over each row's key groups j, in order.
    fileprivate func mergeAttention(rows range: Range<Int>, _ w: Workspace) {
        let heads = config.numAttentionHeads, d = config.headDim, qDim = heads * d
        for r in range {
            let firstJob = w.rowFirstJob[r], lastJob = w.rowFirstJob[r + 1]
            for hd in 0..<heads {
                let dst = w.attn + r * qDim + hd * d
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

    fileprivate struct AttentionMergeJob: RangeJob {
        let model: Gemma3Model, w: Workspace
        func run(worker: Int, range: Range<Int>) { model.mergeAttention(rows: range, w) }
    }

    /// The attention work items of a step, split across the workers (a struct: dispatching it allocates nothing).
    private struct AttentionJob: RangeJob {
        let model: Gemma3Model, w: Workspace, window: Int?
        func run(worker: Int, range: Range<Int>) {
            for item in range {
                let r = w.itemRow[item]
                if w.itemRows[item] == 1 {
                    let first = window.map { max(0, w.rowPosition[r] - $0 + 1) } ?? 0
                    let heads = model.config.numAttentionHeads, chunk = w.itemHeadChunk[item]
                    model.attendRow(r, group: w.itemGroup[item], firstKey: first,
                                    heads: (chunk * heads / w.headChunks)..<((chunk + 1) * heads / w.headChunks), worker: worker, w)
                } else {
                    model.attendBlock(r, rows: w.itemRows[item], group: w.itemGroup[item], window: window, worker: worker, w)
                }
            }
        }
    }

    /// One row's softmax partial over key group `g` (dot products; decode rows).
    @inline(__always)
    private func attendRow(_ r: Int, group g: Int, firstKey first: Int, heads hs: Range<Int>, worker: Int, _ w: Workspace) {
        let c = config, d = c.headDim, heads = c.numAttentionHeads, kvDim = c.numKeyValueHeads * d
        let group = heads / c.numKeyValueHeads, qDim = heads * d, scale = c.queryScale, G = Self.attentionKeyGroup
        let scores = w.scores + worker * w.scoresStride, kbuf = w.kvScratch + worker * kvDim
        let p = w.rowPosition[r], seg = w.rowSegment[r], p0 = w.segmentFirstPosition[seg], r0 = w.segmentStartRow[seg]
        let layerKV = w.segmentCache[seg].takeUnretainedValue()
        let lo = max(first, g * G), hi = min(p + 1, (g + 1) * G)
        let m = w.partials + (w.rowFirstJob[r] + g - first / G) * w.partialStride  // maxima, sums, outputs
        let out = m + 2 * heads
        (out + hs.lowerBound * d).update(repeating: 0, count: hs.count * d)
        let count = hi - lo
        for k in lo..<hi {
            let kp = k >= p0 ? UnsafePointer(w.k + (r0 + k - p0) * kvDim) : layerKV.key(k, scratch: kbuf)
            for hd in hs {
                scores[hd * G + k - lo] = dot(w.q + r * qDim + hd * d, kp + (hd / group) * d, d) * scale
            }
        }
        for hd in hs {
            let sRow = scores + hd * G
            var mx = -Float.infinity
            for i in 0..<count { mx = max(mx, sRow[i]) }
            for i in 0..<count { sRow[i] = expFast(sRow[i] - mx) }
            var sum: Float = 0
            for i in 0..<count { sum += sRow[i] }
            m[hd] = mx
            m[heads + hd] = sum
        }
        for k in lo..<hi {
            let vp = k >= p0 ? UnsafePointer(w.v + (r0 + k - p0) * kvDim) : layerKV.value(k, scratch: kbuf)
            for hd in hs {
                let wgt = scores[hd * G + k - lo], v = vp + (hd / group) * d, o = out + hd * d
                for i in 0..<d { o[i] += wgt * v[i] }
            }
        }
    }

    /// Softmax partials over key group `g` for `rows` consecutive rows of one prompt segment: the group's keys are
    /// packed once per KV head into 32-key panels and scored against every query of the block by the GEMM
    /// micro-kernel; each row then keeps only its own causal (and window) range of the group.
    private func attendBlock(_ ra: Int, rows rc: Int, group g: Int, window: Int?,
                             worker: Int, _ w: Workspace) {
        let c = config, d = c.headDim, heads = c.numAttentionHeads, kvDim = c.numKeyValueHeads * d
        let group = heads / c.numKeyValueHeads, qDim = heads * d, scale = c.queryScale, G = Self.attentionKeyGroup
        let scores = w.scores + worker * w.scoresStride, kbuf = w.kvScratch + worker * kvDim
        let panel = w.keyPanels + worker * 32 * d
        let seg = w.rowSegment[ra], p0 = w.segmentFirstPosition[seg], r0 = w.segmentStartRow[seg]
        let layerKV = w.segmentCache[seg].takeUnretainedValue()
        @inline(__always) func firstKey(_ r: Int) -> Int { window.map { max(0, w.rowPosition[r] - $0 + 1) } ?? 0 }
        let lo = max(g * G, firstKey(ra)), hi = min((g + 1) * G, w.rowPosition[ra + rc - 1] + 1)
        let panels = (hi - lo + 31) / 32
        let rowStride = heads * G  // scores[(t * heads + h) * G + key - lo]
        for kvh in 0..<c.numKeyValueHeads {
            for pi in 0..<panels {
                for i in 0..<32 {
                    let k = lo + 32 * pi + i
                    if k < hi {
                        let kp = k >= p0 ? UnsafePointer(w.k + (r0 + k - p0) * kvDim) : layerKV.key(k, scratch: kbuf)
                        for j in 0..<d { panel[j * 32 + i] = kp[kvh * d + j] }
                    } else {
                        for j in 0..<d { panel[j * 32 + i] = 0 }
                    }
                }
                for h in kvh * group..<(kvh + 1) * group {
                    var t = 0
                    while t < rc {
                        gemmMicro32x6(panel, w.q + (ra + t) * qDim + h * d, qDim, d,
                                      scores + (t * heads + h) * G + 32 * pi, rowStride, min(6, rc - t))
                        t += 6
                    }
                }
            }
        }
        // Each row's own range of this group: scale, softmax statistics, and the partial's slot. Probabilities
        // outside a row's range are zeroed, so that P x V can run over the whole group as one product.
        for t in 0..<rc {
            let r = ra + t, p = w.rowPosition[r], first = firstKey(r)
            let inGroup = g >= first / G && g <= p / G
            let rlo = inGroup ? max(lo, first) : hi, rhi = inGroup ? min(hi, p + 1) : hi
            for h in 0..<heads {
                let sRow = scores + (t * heads + h) * G - lo
                var mx = -Float.infinity
                for k in rlo..<rhi {
                    sRow[k] *= scale
                    mx = max(mx, sRow[k])
                }
                for k in rlo..<rhi { sRow[k] = expFast(sRow[k] - mx) }
                var sum: Float = 0
                for k in rlo..<rhi { sum += sRow[k] }
                for k in lo..<rlo { sRow[k] = 0 }
                for k in rhi..<hi { sRow[k] = 0 }
                if inGroup {
                    let m = w.partials + (w.rowFirstJob[r] + g - first / G) * w.partialStride
                    m[h] = mx
                    m[heads + h] = sum
                }
            }
        }
        // P x V per KV head: the group's values packed once into 32-dimension panels (vp[dp][key][32]), multiplied
        // by each query head's probability rows with the GEMM micro-kernel into a block-sized output.
        let vp = w.valuePanels + worker * G * d, out = w.blockOut + worker * Self.attentionRowBlock * qDim
        let keys = hi - lo, dPanels = d / 32
        for kvh in 0..<c.numKeyValueHeads {
            for k in lo..<hi {
                let vr = (k >= p0 ? UnsafePointer(w.v + (r0 + k - p0) * kvDim) : layerKV.value(k, scratch: kbuf)) + kvh * d
                for dp in 0..<dPanels {
                    let dst = vp + (dp * G + (k - lo)) * 32, src = vr + dp * 32
                    for i in 0..<32 { dst[i] = src[i] }
                }
            }
            for h in kvh * group..<(kvh + 1) * group {
                for dp in 0..<dPanels {
                    var t = 0
                    while t < rc {
                        gemmMicro32x6(vp + dp * G * 32, scores + (t * heads + h) * G, heads * G, keys,
                                      out + t * qDim + h * d + dp * 32, qDim, min(6, rc - t))
                        t += 6
                    }
                }
            }
        }
        for t in 0..<rc {
            let r = ra + t, p = w.rowPosition[r], first = firstKey(r)
            guard g >= first / G, g <= p / G else { continue }
            let dst = w.partials + (w.rowFirstJob[r] + g - first / G) * w.partialStride + 2 * heads
            dst.update(from: out + t * qDim, count: qDim)
        }
    }

    /// Final norm and the tied output head for the given rows of the last step, in groups. With `allowGemm` false
    /// each row gets the row kernel whatever the group size (rows of decoded sequences stepped together).
    func emitLogits<R: RandomAccessCollection<Int>>(rows: R, workspace w: Workspace, allowGemm: Bool = true, _ body: (Int, UnsafeBufferPointer<Float>) -> Void) where R.Index == Int {
        let h = config.hiddenSize, v = config.vocabSize
        var i = 0
        while i < rows.count {
            let g = min(w.logitGroup, rows.count - i)
            for j in 0..<g {
                rmsNorm(w.x + rows[i + j] * h, weight: weights.finalNorm, offset: weights.normOffset, eps: config.rmsNormEps,
                        count: h, into: w.xb + j * h)
            }
            weights.embedding.multiply(w.xb, xStride: h, batch: g, into: w.logits, yStride: v, precision: precision,
                                       allowGemm: allowGemm, pool: pool, scratch: w.matmul)
            for j in 0..<g { body(rows[i + j], UnsafeBufferPointer(start: w.logits + j * v, count: v)) }
            i += g
        }
    }
}
