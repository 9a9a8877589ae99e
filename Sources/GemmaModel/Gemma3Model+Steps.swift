// The steps of a forward pass (Gemma3Model+Forward.swift reads them in order): the step's plan, embedding, the
// per-row elementwise stages, the weight products, and attention with the cache.
import Foundation
import GemmaKernels

extension Gemma3Model {
    /// Lays out the step's rows: per row its position, the end of its visible keys (position + 1, or the end of its
    /// bidirectional span) and its segment; per segment its first row and position; runs of rows by kernel policy.
    /// Returns the row count.
    func plan<S: RandomAccessCollection<Segment>>(_ segments: S, _ w: Workspace) -> Int where S.Index == Int {
        let a = w.attention
        var n = 0
        for (i, seg) in segments.enumerated() {
            let p0 = seg.cache.count, count = seg.count
            a.segmentStartRow[i] = n
            a.segmentFirstPosition[i] = p0
            for t in 0..<count {
                a.rowPosition[n + t] = p0 + t
                a.rowKeyEnd[n + t] = p0 + t + 1
                a.rowSegment[n + t] = i
            }
            if case let .prompt(prompt, range) = seg.input {
                for span in prompt.bidirectionalSpans where span.overlaps(range) {
                    for p in span.clamped(to: range) { a.rowKeyEnd[n + p - p0] = span.upperBound }
                }
            }
            n += count
        }
        a.segmentStartRow[segments.count] = n

        // Rows of prompt-sized segments take the GEMM; rows of decode-sized segments always take the row kernels, so
        // that a sequence's arithmetic does not depend on what it is batched with.
        var runCount = 0
        for (i, seg) in segments.enumerated() {
            let r0 = a.segmentStartRow[i], big = seg.count >= WeightMatrix.gemmMinimumBatch
            if runCount > 0, w.runGemm[runCount - 1] == big, !big { w.runRows[runCount - 1] = w.runRows[runCount - 1].lowerBound..<(r0 + seg.count) }
            else { w.runRows[runCount] = r0..<(r0 + seg.count); w.runGemm[runCount] = big; runCount += 1 }
        }
        w.runCount = runCount
        return n
    }

    /// x: token rows = embedding * sqrt(hidden); embedding-span rows as given (not scaled).
    func embed<S: RandomAccessCollection<Segment>>(_ segments: S, _ w: Workspace) where S.Index == Int {
        let h = config.hiddenSize, scale = config.embeddingMultiplier
        var row = 0
        func token(_ id: Int) {
            let xr = w.x + row * h
            weights.embedding.dequantizeRow(id, into: xr)
            for i in 0..<h { xr[i] *= scale }
            row += 1
        }
        for seg in segments {
            switch seg.input {
            case let .tokens(ids): for id in ids { token(id) }
            case let .prompt(prompt, range):
                var p = 0
                for part in prompt.parts {
                    let span = p..<(p + part.count)
                    defer { p = span.upperBound }
                    guard span.overlaps(range) else { continue }
                    let mine = span.clamped(to: range)
                    switch part {
                    case let .tokens(ids): for q in mine { token(ids[q - span.lowerBound]) }
                    case let .embeddings(e):
                        e.rows.withUnsafeBufferPointer { src in
                            for q in mine {
                                (w.x + row * h).update(from: src.baseAddress! + (q - span.lowerBound) * h, count: h)
                                row += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Records what the segment's rows hold in its cache (for prefix reuse).
    func appendContent(of seg: Segment) {
        switch seg.input {
        case let .tokens(ids): seg.cache.append(tokens: ids)
        case let .prompt(prompt, range): seg.cache.append(prompt, positions: range)
        }
    }

    /// The per-row elementwise stages of a layer.
    enum RowStage { case ropeAngles, inputNorm, queryKeyNormRoPE, postAttentionResidual, preFeedforwardNorm, geglu, postFeedforwardResidual }

    /// Runs a stage over rows 0..<n: split by rows across the workers for prompt-sized steps (serial, they left the
    /// other core idle: ~5% of a 512-token prefill); decode rows stay on the caller (fewer than 2 x 16 rows is one
    /// slice). Each row gets the same operations either way.
    @inline(__always)
    func rows(_ stage: RowStage, layer l: Int, _ n: Int, _ w: Workspace) {
        pool.parallelFor(n, minimumPerWorker: 16, RowStageJob(model: self, w: w, layer: l, stage: stage))
    }

    /// Rows `range` of one stage of layer `l`.
    fileprivate func rowStage(_ stage: RowStage, layer l: Int, rows range: Range<Int>, _ w: Workspace) {
        let c = config, h = c.hiddenSize, d = c.headDim, half = d / 2
        let qDim = c.numAttentionHeads * d, kvDim = c.numKeyValueHeads * d, f = c.intermediateSize
        // The layer's fields are read in place below (a copy of the layer retains 13 objects).
        let eps = c.rmsNormEps, off = weights.normOffset
        switch stage {
        case .ropeAngles:
            // RoPE angles of each row's position, per distinct (base, scale), in f64 (layer-independent).
            for (kind, inv) in ropeInvFreq.enumerated() {
                for r in range {
                    let pos = Double(w.attention.rowPosition[r])
                    for i in 0..<half {
                        let theta = pos * inv[i]
                        w.ropeCos[kind][r * half + i] = Float(cos(theta))
                        w.ropeSin[kind][r * half + i] = Float(sin(theta))
                    }
                }
            }
        case .inputNorm:
            for r in range {
                rmsNorm(w.x + r * h, weight: weights.layers[l].inputNorm, offset: off, eps: eps, count: h, into: w.normed + r * h)
            }
        case .queryKeyNormRoPE:
            let kind = ropeKindOfLayer[l]
            for r in range {
                let cosR = w.ropeCos[kind] + r * half, sinR = w.ropeSin[kind] + r * half
                for hd in 0..<c.numAttentionHeads {
                    let q = w.q + r * qDim + hd * d
                    rmsNorm(q, weight: weights.layers[l].qNorm, offset: off, eps: eps, count: d, into: q)
                    applyRoPE(q, half: half, cos: cosR, sin: sinR)
                }
                for hd in 0..<c.numKeyValueHeads {
                    let k = w.k + r * kvDim + hd * d
                    rmsNorm(k, weight: weights.layers[l].kNorm, offset: off, eps: eps, count: d, into: k)
                    applyRoPE(k, half: half, cos: cosR, sin: sinR)
                }
            }
        case .postAttentionResidual:
            for r in range {
                let b = w.branch + r * h
                rmsNorm(b, weight: weights.layers[l].postAttentionNorm, offset: off, eps: eps, count: h, into: b)
                addInPlace(w.x + r * h, b, h)
            }
        case .preFeedforwardNorm:
            for r in range {
                rmsNorm(w.x + r * h, weight: weights.layers[l].preFeedforwardNorm, offset: off, eps: eps, count: h, into: w.normed + r * h)
            }
        case .geglu:
            gegluInPlace(w.gate + range.lowerBound * f, w.up + range.lowerBound * f, range.count * f)
        case .postFeedforwardResidual:
            for r in range {
                let b = w.branch + r * h
                rmsNorm(b, weight: weights.layers[l].postFeedforwardNorm, offset: off, eps: eps, count: h, into: b)
                addInPlace(w.x + r * h, b, h)
            }
        }
    }

    /// A row stage split across the workers (a struct: dispatching it allocates nothing).
    fileprivate struct RowStageJob: RangeJob {
        let model: Gemma3Model, w: Workspace, layer: Int, stage: RowStage
        func run(worker: Int, range: Range<Int>) { model.rowStage(stage, layer: layer, rows: range, w) }
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

    /// q, k, v = normed · Wq, Wk, Wv for every run of rows, as one product per run.
    func projectQKV(layer l: Int, _ w: Workspace) {
        let h = config.hiddenSize
        let qDim = config.numAttentionHeads * config.headDim, kvDim = config.numKeyValueHeads * config.headDim
        for i in 0..<w.runCount {
            let rows = w.runRows[i]
            WeightMatrix.multiply((weights.layers[l].q, weights.layers[l].k, weights.layers[l].v), w.normed + rows.lowerBound * h,
                                  xStride: h, batch: rows.count,
                                  into: (w.q + rows.lowerBound * qDim, w.k + rows.lowerBound * kvDim, w.v + rows.lowerBound * kvDim),
                                  yStride: (qDim, kvDim, kvDim), precision: precision, allowGemm: w.runGemm[i], pool: pool, scratch: w.matmul)
        }
    }

    /// gate, up = normed · Wgate, Wup for every run of rows, as one product per run.
    func projectGateUp(layer l: Int, _ w: Workspace) {
        let h = config.hiddenSize, f = config.intermediateSize
        for i in 0..<w.runCount {
            let rows = w.runRows[i]
            WeightMatrix.multiply((weights.layers[l].gate, weights.layers[l].up, nil), w.normed + rows.lowerBound * h, xStride: h, batch: rows.count,
                                  into: (w.gate + rows.lowerBound * f, w.up + rows.lowerBound * f, nil),
                                  yStride: (f, f, 0), precision: precision, allowGemm: w.runGemm[i], pool: pool, scratch: w.matmul)
        }
    }

    /// y = x · Wᵀ for every run of rows, each with its kernel policy (x rows m.cols wide, y rows m.rows wide).
    func project(_ m: WeightMatrix, _ x: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>, _ w: Workspace) {
        for i in 0..<w.runCount {
            let rows = w.runRows[i]
            m.multiply(x + rows.lowerBound * m.cols, xStride: m.cols, batch: rows.count,
                       into: y + rows.lowerBound * m.rows, yStride: m.rows, precision: precision, allowGemm: w.runGemm[i],
                       pool: pool, scratch: w.matmul)
        }
    }

    /// Attention of layer `l` for every row, then the step's keys and values stored in each sequence's cache.
    /// The step's keys and values are used at their cache's precision, read from the step's buffers, and stored only
    /// after attention: a ring of exactly the window then never loses a key a query needs.
    func attend<S: RandomAccessCollection<Segment>>(layer l: Int, rows n: Int, _ segments: S, _ w: Workspace) where S.Index == Int {
        let kvDim = config.numKeyValueHeads * config.headDim, a = w.attention
        for (i, seg) in segments.enumerated() {
            let storage = seg.cache.layers[l].storage, r0 = a.segmentStartRow[i]
            storage.round(w.k + r0 * kvDim, seg.count * kvDim)
            storage.round(w.v + r0 * kvDim, seg.count * kvDim)
            a.segmentCache[i] = Unmanaged.passUnretained(seg.cache.layers[l])
        }
        layerAttention[l](rows: n, segments: segments.count, q: w.q, k: w.k, v: w.v, out: w.attn, workspace: a, pool: pool)
        for (i, seg) in segments.enumerated() {
            let layerKV = seg.cache.layers[l], r0 = a.segmentStartRow[i], p0 = a.segmentFirstPosition[i]
            for t in max(0, layerKV.isRing ? seg.count - layerKV.slots : 0)..<seg.count {
                layerKV.write(position: p0 + t, key: w.k + (r0 + t) * kvDim, value: w.v + (r0 + t) * kvDim)
            }
        }
    }
}
