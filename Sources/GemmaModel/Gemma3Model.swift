// The Gemma 3 text transformer, forward pass in f32 activations over memory-mapped quantized weights.
// Follows transformers' Gemma3DecoderLayer.forward (see ../shared/reference/gemma3-semantics.md): embeddings scaled
// by sqrt(hidden); per layer input norm -> attention (QK-norm before RoPE, GQA, query scale
// query_pre_attn_scalar^-0.5, sliding window that includes the current token on local layers) -> post-attention norm
// -> residual -> pre-FFN norm -> GeGLU (tanh GELU) -> post-FFN norm -> residual; final norm; tied output head.
import Foundation
import GemmaFormats
import GemmaKernels

/// A loaded model: immutable, safe to share between tasks. Per-sequence state lives in `Gemma3State`.
public final class Gemma3Model: Sendable {
    public let config: Gemma3Config
    public let weights: Gemma3Weights
    public let file: GGUFFile
    public let pool: WorkerPool
    let attention: [LayerAttention]
    /// RoPE inverse frequencies per distinct (base, scale), f64, and each layer's index into them.
    let ropeInvFreq: [[Double]]
    let ropeKindOfLayer: [Int]

    /// Loads a GGUF model: parses and maps the file, reads the config, binds every weight.
    public convenience init(path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                            embeddingScale: EmbeddingScale = .exact) throws(ModelError) {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .format(error) }
        var config = try Gemma3Config(gguf: file)
        config.embeddingScale = embeddingScale
        try self.init(file: file, config: config, threads: threads)
    }

    public init(file: GGUFFile, config: Gemma3Config, threads: Int) throws(ModelError) {
        self.file = file
        self.config = config
        weights = try Gemma3Weights(gguf: file, config: config)
        pool = WorkerPool(threads: max(1, threads))
        attention = config.layers
        var kinds: [[Double]] = [], keys: [String] = [], ofLayer: [Int] = []
        for a in attention {
            let key = "\(a.ropeBase)/\(a.ropeScale)"
            if let i = keys.firstIndex(of: key) { ofLayer.append(i); continue }
            let half = config.headDim / 2
            kinds.append((0..<half).map { i in
                1 / pow(Double(a.ropeBase), Double(2 * i) / Double(config.headDim)) / Double(a.ropeScale)
            })
            keys.append(key)
            ofLayer.append(kinds.count - 1)
        }
        ropeInvFreq = kinds
        ropeKindOfLayer = ofLayer
    }

    /// Fresh per-sequence state with a KV cache for up to `capacity` positions (the model's context at most).
    /// Local layers keep a ring of their window unless `ringLocalLayers` is false.
    public func makeState(capacity: Int, maxBatch: Int = 64, kvStorage: KVStorage = .f16,
                          ringLocalLayers: Bool = true) -> Gemma3State {
        Gemma3State(config: config,
                    cache: KVCache(config: config, capacity: capacity, storage: kvStorage, ringLocalLayers: ringLocalLayers),
                    maxBatch: maxBatch, workers: pool.threads, ropeKinds: ropeInvFreq.count)
    }

    /// Which positions of a forward call need logits.
    public enum Logits: Sendable {
        case none
        case last
        case all
        /// Indices into the tokens of this call.
        case at([Int])
    }

    /// Runs `tokens` through the model at the state's next positions, appending them to its cache, and calls
    /// `body(index, logits)` for each requested position (index into `tokens`; logits valid only during the call).
    public func forward(_ tokens: [Int], state s: Gemma3State, logits: Logits = .last,
                        _ body: (Int, UnsafeBufferPointer<Float>) -> Void = { _, _ in }) throws(ModelError) {
        guard !tokens.isEmpty else { return }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw .input("token id \(bad) is outside the vocabulary of \(config.vocabSize)")
        }
        guard s.cache.count + tokens.count <= s.cache.capacity else {
            throw .input("context overflow: \(s.cache.count) cached + \(tokens.count) new tokens = \(s.cache.count + tokens.count) positions, but the cache holds \(s.cache.capacity) (model context \(config.maxPositionEmbeddings))")
        }
        s.cache.reserve(s.cache.count + tokens.count)
        let wanted: [Int] = switch logits {
        case .none: []
        case .last: [tokens.count - 1]
        case .all: Array(tokens.indices)
        case let .at(list): list.filter { tokens.indices.contains($0) }.sorted()
        }
        var next = wanted.startIndex
        var start = 0
        while start < tokens.count {
            let n = min(s.maxBatch, tokens.count - start)
            forwardChunk(tokens[start..<start + n], state: s)
            // Logits for the requested positions inside this chunk, from the final hidden states.
            var rows: [Int] = []
            while next < wanted.endIndex, wanted[next] < start + n { rows.append(wanted[next]); next += 1 }
            if !rows.isEmpty { emitLogits(rows: rows, chunkStart: start, state: s, body) }
            start += n
        }
    }

    /// Makes the state hold `tokens`: keeps the longest prefix its cache can reuse (cutting back to a snapshot when
    /// rings have moved on), processes only the rest, and reports logits for the last token. With `snapshot`, the
    /// rings are saved at the end so that a later prompt sharing all of `tokens` can come back to this point.
    /// Returns how many tokens were reused.
    @discardableResult
    public func prefill(_ tokens: [Int], state s: Gemma3State, snapshot: Bool = false,
                        _ body: (Int, UnsafeBufferPointer<Float>) -> Void = { _, _ in }) throws(ModelError) -> Int {
        guard !tokens.isEmpty else { throw .input("nothing to prefill") }
        let reused = s.cache.reusablePrefix(of: tokens)
        s.cache.truncate(to: reused)
        try forward(Array(tokens[reused...]), state: s, logits: .last) { i, logits in body(reused + i, logits) }
        if snapshot { s.cache.snapshot() }
        return reused
    }

    // MARK: - One chunk

    private func forwardChunk(_ tokens: ArraySlice<Int>, state s: Gemma3State) {
        let c = config, n = tokens.count, h = c.hiddenSize, d = c.headDim
        let qDim = c.numAttentionHeads * d, kvDim = c.numKeyValueHeads * d, f = c.intermediateSize
        let p0 = s.cache.count
        let eps = c.rmsNormEps, off = weights.normOffset

        // x: (n, hidden) = embedding rows * sqrt(hidden)
        let scale = c.embeddingMultiplier
        for (t, id) in tokens.enumerated() {
            let row = s.x + t * h
            weights.embedding.dequantizeRow(id, into: row)
            for i in 0..<h { row[i] *= scale }
        }
        // RoPE angles for this chunk's positions, per distinct (base, scale).
        let half = d / 2
        for (k, inv) in ropeInvFreq.enumerated() {
            for t in 0..<n {
                let pos = Double(p0 + t)
                for i in 0..<half {
                    let theta = pos * inv[i]
                    s.ropeCos[k][t * half + i] = Float(cos(theta))
                    s.ropeSin[k][t * half + i] = Float(sin(theta))
                }
            }
        }

        for (l, w) in weights.layers.enumerated() {
            // Attention block.
            for t in 0..<n { rmsNorm(s.x + t * h, weight: w.inputNorm, offset: off, eps: eps, count: h, into: s.xb + t * h) }
            w.q.multiply(s.xb, xStride: h, batch: n, into: s.q, yStride: qDim, pool: pool, scratch: s.matmul)
            w.k.multiply(s.xb, xStride: h, batch: n, into: s.k, yStride: kvDim, pool: pool, scratch: s.matmul)
            w.v.multiply(s.xb, xStride: h, batch: n, into: s.v, yStride: kvDim, pool: pool, scratch: s.matmul)
            let kind = ropeKindOfLayer[l]
            for t in 0..<n {
                let cosT = s.ropeCos[kind] + t * half, sinT = s.ropeSin[kind] + t * half
                for hd in 0..<c.numAttentionHeads {
                    let q = s.q + t * qDim + hd * d
                    rmsNorm(q, weight: w.qNorm, offset: off, eps: eps, count: d, into: q)
                    applyRoPE(q, half: half, cos: cosT, sin: sinT)
                }
                for hd in 0..<c.numKeyValueHeads {
                    let k = s.k + t * kvDim + hd * d
                    rmsNorm(k, weight: w.kNorm, offset: off, eps: eps, count: d, into: k)
                    applyRoPE(k, half: half, cos: cosT, sin: sinT)
                }
            }
            // This chunk's keys and values are used at the cache's precision, read from the chunk buffers, and
            // stored only after attention: a ring of exactly the window then never loses a key a query needs.
            let layerKV = s.cache.layers[l]
            layerKV.storage.round(s.k, n * kvDim)
            layerKV.storage.round(s.v, n * kvDim)
            attend(layer: l, tokens: n, firstPosition: p0, state: s)
            for t in max(0, layerKV.isRing ? n - layerKV.slots : 0)..<n {
                layerKV.write(position: p0 + t, key: s.k + t * kvDim, value: s.v + t * kvDim)
            }
            w.o.multiply(s.attn, xStride: qDim, batch: n, into: s.xb, yStride: h, pool: pool, scratch: s.matmul)
            for t in 0..<n {
                let a = s.xb + t * h
                rmsNorm(a, weight: w.postAttentionNorm, offset: off, eps: eps, count: h, into: a)
                addInPlace(s.x + t * h, a, h)
            }
            // Feed-forward block: down(gelu_tanh(gate(x)) * up(x)).
            for t in 0..<n { rmsNorm(s.x + t * h, weight: w.preFeedforwardNorm, offset: off, eps: eps, count: h, into: s.xb + t * h) }
            w.gate.multiply(s.xb, xStride: h, batch: n, into: s.gate, yStride: f, pool: pool, scratch: s.matmul)
            w.up.multiply(s.xb, xStride: h, batch: n, into: s.up, yStride: f, pool: pool, scratch: s.matmul)
            gegluInPlace(s.gate, s.up, n * f)
            w.down.multiply(s.gate, xStride: f, batch: n, into: s.xb, yStride: h, pool: pool, scratch: s.matmul)
            for t in 0..<n {
                let m = s.xb + t * h
                rmsNorm(m, weight: w.postFeedforwardNorm, offset: off, eps: eps, count: h, into: m)
                addInPlace(s.x + t * h, m, h)
            }
        }
        s.cache.tokens.append(contentsOf: tokens)
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

    /// Causal attention of the chunk's queries: keys before the chunk come from the cache, the chunk's own from its
    /// buffers. Local layers see keys k with p - k < window (the current token included). Work is split over
    /// (token, key range) jobs with per-job softmax partials merged afterwards, so that a single decoded token still
    /// uses every core at long context; no T x T matrix is ever built.
    private func attend(layer l: Int, tokens n: Int, firstPosition p0: Int, state s: Gemma3State) {
        let c = config, d = c.headDim, heads = c.numAttentionHeads, kvDim = c.numKeyValueHeads * d
        let group = heads / c.numKeyValueHeads, qDim = heads * d, scale = c.queryScale
        let window: Int? = if case let .local(w) = attention[l].kind { w } else { nil }
        let layerKV = s.cache.layers[l]
        let longest = window.map { min($0, p0 + n) } ?? (p0 + n)
        let parts = n < pool.threads && longest >= 256 ? pool.threads : 1
        pool.parallelFor(n * parts) { worker, range in
            let scores = s.scores + worker * s.scoresStride, kbuf = s.kvScratch + worker * kvDim
            for job in range {
                let t = job / parts, part = job % parts, p = p0 + t
                let first = window.map { max(0, p - $0 + 1) } ?? 0
                let total = p - first + 1
                let lo = first + total * part / parts, hi = first + total * (part + 1) / parts
                let m = s.partials + job * s.partialStride  // heads maxima, heads sums, heads x d outputs
                let out = m + 2 * heads
                out.update(repeating: 0, count: heads * d)
                guard lo < hi else {
                    for h in 0..<heads { m[h] = -.infinity; m[heads + h] = 0 }
                    continue
                }
                let count = hi - lo
                for k in lo..<hi {
                    let kp = k >= p0 ? UnsafePointer(s.k + (k - p0) * kvDim) : layerKV.key(k, scratch: kbuf)
                    for h in 0..<heads {
                        scores[h * s.scoresHeadStride + k - lo] = dot(s.q + t * qDim + h * d, kp + (h / group) * d, d) * scale
                    }
                }
                for h in 0..<heads {
                    let row = scores + h * s.scoresHeadStride
                    var mx = -Float.infinity
                    for i in 0..<count { mx = max(mx, row[i]) }
                    var sum: Float = 0
                    for i in 0..<count {
                        let e = expf(row[i] - mx)
                        row[i] = e
                        sum += e
                    }
                    m[h] = mx
                    m[heads + h] = sum
                }
                for k in lo..<hi {
                    let vp = k >= p0 ? UnsafePointer(s.v + (k - p0) * kvDim) : layerKV.value(k, scratch: kbuf)
                    for h in 0..<heads {
                        let wgt = scores[h * s.scoresHeadStride + k - lo], v = vp + (h / group) * d, o = out + h * d
                        for i in 0..<d { o[i] += wgt * v[i] }
                    }
                }
            }
        }
        // Merge the partials of each token: out = sum_j e^(m_j - M) out_j / sum_j e^(m_j - M) sum_j.
        for t in 0..<n {
            for h in 0..<heads {
                var mx = -Float.infinity
                for part in 0..<parts { mx = max(mx, s.partials[(t * parts + part) * s.partialStride + h]) }
                var denom: Float = 0
                let dst = s.attn + t * qDim + h * d
                dst.update(repeating: 0, count: d)
                for part in 0..<parts {
                    let m = s.partials + (t * parts + part) * s.partialStride
                    guard m[heads + h] > 0 else { continue }
                    let f = expf(m[h] - mx)
                    denom += f * m[heads + h]
                    let o = m + 2 * heads + h * d
                    for i in 0..<d { dst[i] += f * o[i] }
                }
                let inv = 1 / denom
                for i in 0..<d { dst[i] *= inv }
            }
        }
    }

    /// Final norm and the tied output head for the given rows of the last chunk, in groups.
    private func emitLogits(rows: [Int], chunkStart: Int, state s: Gemma3State, _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        let h = config.hiddenSize, v = config.vocabSize
        var i = 0
        while i < rows.count {
            let g = min(s.logitGroup, rows.count - i)
            for j in 0..<g {
                let t = rows[i + j] - chunkStart
                rmsNorm(s.x + t * h, weight: weights.finalNorm, offset: weights.normOffset, eps: config.rmsNormEps,
                        count: h, into: s.xb + j * h)
            }
            weights.embedding.multiply(s.xb, xStride: h, batch: g, into: s.logits, yStride: v, pool: pool, scratch: s.matmul)
            for j in 0..<g { body(rows[i + j], UnsafeBufferPointer(start: s.logits + j * v, count: v)) }
            i += g
        }
    }
}

/// Per-sequence state: the KV cache and every activation buffer, allocated once (the forward pass allocates nothing
/// except when a full-length cache layer grows).
public final class Gemma3State {
    public let cache: KVCache
    public let maxBatch: Int
    let logitGroup: Int
    let x, xb, q, k, v, attn, gate, up, logits: UnsafeMutablePointer<Float>
    /// Attention scratch: per worker, heads rows of scores over up to `capacity` keys, and one converted K/V row.
    let scores, kvScratch, partials: UnsafeMutablePointer<Float>
    let scoresHeadStride, scoresStride, partialStride: Int
    let ropeCos, ropeSin: [UnsafeMutablePointer<Float>]
    let matmul: MatmulScratch
    private var owned: [UnsafeMutablePointer<Float>] = []

    init(config c: Gemma3Config, cache: KVCache, maxBatch: Int, workers: Int, ropeKinds: Int) {
        self.cache = cache
        self.maxBatch = max(1, maxBatch)
        logitGroup = min(self.maxBatch, 8)
        let b = self.maxBatch, h = c.hiddenSize, heads = c.numAttentionHeads, qd = heads * c.headDim
        let kvd = c.numKeyValueHeads * c.headDim, f = c.intermediateSize
        var owned: [UnsafeMutablePointer<Float>] = []
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            owned.append(p)
            return p
        }
        x = alloc(b * h); xb = alloc(b * max(h, qd)); q = alloc(b * qd); k = alloc(b * kvd); v = alloc(b * kvd)
        attn = alloc(b * qd); gate = alloc(b * f); up = alloc(b * f)
        scoresHeadStride = cache.capacity
        scoresStride = heads * cache.capacity
        scores = alloc(workers * scoresStride)
        kvScratch = alloc(workers * kvd)
        partialStride = 2 * heads + qd
        partials = alloc(max(b, workers) * workers * partialStride)
        logits = alloc(logitGroup * c.vocabSize)
        ropeCos = (0..<ropeKinds).map { _ in alloc(b * c.headDim / 2) }
        ropeSin = (0..<ropeKinds).map { _ in alloc(b * c.headDim / 2) }
        matmul = MatmulScratch(workers: workers, maxCols: max(h, f, qd))
        self.owned = owned
    }

    deinit { for p in owned { p.deallocate() } }

    /// Positions processed so far.
    public var position: Int { cache.count }
}
