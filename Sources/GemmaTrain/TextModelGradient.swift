// The loss of the Gemma 3 text model on one sequence and its gradient with respect to every weight, in f32: the
// forward pass of transformers' Gemma3ForCausalLM (embedding x sqrt(hidden); per layer a sandwich-normed attention
// block with QK-norm, RoPE local or global and a causal, optionally sliding, window; a sandwich-normed GeGLU block
// with tanh GELU; final norm; tied head) keeping what the backward pass needs, then the backward pass written out op
// by op. The loss is the mean next-token cross-entropy over the positions whose target is given.
//
// One sequence at a time on one thread (a batch spreads its sequences over the cores). The products are `sgemm`'s
// register tiles, reading the weights as stored (transposed for the forward products). The head runs only on
// the positions that have a target: prompt positions cost nothing there, and the 262k-row head dominates the 270M.
import Foundation
import GemmaGenerate
import GemmaKernels
import GemmaModel

/// Loss and gradient of a Gemma 3 text model held as flat f32 parameters (`ParameterLayout`).
public struct TextModelGradient: Sendable {
    public let config: Gemma3Config
    public let layout: ParameterLayout
    /// Added to every norm weight (1 for Hugging Face weights, 0 for GGUF's).
    public let normOffset: Float
    /// With LoRA adapters: the base is frozen, and the gradient is the adapters'.
    public let lora: LoRALayout?
    let layers: [LayerAttention]
    let invFreq: [[Double]]  // per layer, head_dim / 2 inverse frequencies (linear scaling folded in)

    /// With LoRA, the frozen base's projections kept in their stored format (QLoRA); nil: all in the f32 parameters.
    public let stored: StoredBase?

    public init(config: Gemma3Config, normOffset: Float, lora: LoRAConfig? = nil, stored: StoredBase? = nil) {
        precondition(stored == nil || lora != nil, "a stored base is frozen: it needs LoRA")
        self.config = config
        self.stored = stored
        self.normOffset = normOffset
        layout = ParameterLayout(config: config)
        self.lora = lora.map { LoRALayout(model: config, lora: $0) }
        layers = config.layers
        invFreq = layers.map { a in
            (0..<config.headDim / 2).map { i in
                1 / pow(Double(a.ropeBase), Double(2 * i) / Double(config.headDim)) / Double(a.ropeScale)
            }
        }
    }

    /// Mean cross-entropy of predicting `targets[t]` after `tokens[0...t]` over the positions whose target is not
    /// nil, and (when `gradient` is given) its gradient added into `gradient`: of `layout.count` floats, or with
    /// LoRA of `lora.count` (the adapters'; `adapters` must then be given). The gradient added is that of `weight` x
    /// the loss (a batch weighs each example by its share of the targets). With `dropoutSeed` and a LoRA dropout,
    /// the adapters' inputs are dropped by the masks of that seed (the trainer gives each example of a step its own).
    ///
    /// With `soft`, a position that has a soft target learns it instead of its token: the cross-entropy of the
    /// student's distribution against the teacher's probabilities on the sampled ids, renormalized (distillation).
    public func loss(parameters: [Float], adapters: [Float]? = nil, tokens: [Int], targets: [Int?], soft: [SoftTarget?]? = nil,
                     gradient: UnsafeMutablePointer<Float>? = nil, weight: Float = 1,
                     dropoutSeed: UInt64? = nil) throws(TrainError) -> Float {
        try validate(parameters: parameters, adapters: adapters, tokens: tokens, targets: targets, soft: soft)
        let adapters = lora == nil ? [] : adapters!
        return parameters.withUnsafeBufferPointer { p in
            adapters.withUnsafeBufferPointer { a in
                var pass = Pass(self, p.baseAddress!, tokens: tokens, adapters: lora == nil ? nil : a.baseAddress)
                if lora == nil { pass.baseGrad = gradient } else { pass.loraGrad = gradient }
                pass.dropoutSeed = dropoutSeed
                pass.forward()
                let rows = pass.headRows(targets: targets, soft: soft)
                guard !rows.isEmpty else { return 0 }
                let H = config.hiddenSize
                var z = [Float](repeating: 0, count: rows.count * H)
                pass.gather(rows, into: &z)
                var dz = gradient == nil ? [] : [Float](repeating: 0, count: rows.count * H)
                let rowWeight = weight / Float(rows.count)
                let losses = z.withUnsafeBufferPointer { zp in
                    dz.withUnsafeMutableBufferPointer { dp in
                        headLoss(z: zp.baseAddress!, targets: rows.map { targets[$0] }, soft: rows.map { soft?[$0] },
                                 rowWeights: [Float](repeating: rowWeight, count: rows.count), parameters: p.baseAddress!,
                                 dz: gradient == nil ? nil : dp.baseAddress!,
                                 dE: lora == nil ? gradient.map { $0 + layout.offset(.embedding) } : nil, threads: 1)
                    }
                }
                if gradient != nil { pass.backward(dz: dz, rows: rows) }
                return Float(losses.reduce(0, +) / Double(rows.count))
            }
        }
    }

    /// Refuses inputs the passes cannot take.
    func validate(parameters: [Float], adapters: [Float]?, tokens: [Int], targets: [Int?], soft: [SoftTarget?]?) throws(TrainError) {
        if let soft {
            guard soft.count == tokens.count else { throw .input("soft targets must have the tokens' length") }
            if let bad = soft.compactMap({ $0 }).flatMap(\.ids).first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw .input("soft target id \(bad) is outside the vocabulary of \(config.vocabSize)")
            }
        }
        guard parameters.count == layout.count else { throw .input("\(parameters.count) parameters for a layout of \(layout.count)") }
        if let lora { guard adapters?.count == lora.count else { throw .input("LoRA needs \(lora.count) adapter values") } }
        guard !tokens.isEmpty, targets.count == tokens.count else { throw .input("tokens and targets must have the same, non-zero length") }
        if let bad = (tokens + targets.compactMap { $0 }).first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw .input("token id \(bad) is outside the vocabulary of \(config.vocabSize)")
        }
    }
}

/// One forward and backward pass over a sequence: activations per layer, then gradients.
struct Pass {
    let m: TextModelGradient
    let w: UnsafePointer<Float>
    let adapters: UnsafePointer<Float>?
    /// Where gradients go: the base's (full fine-tuning) or the adapters' (LoRA; the base is frozen).
    var baseGrad: UnsafeMutablePointer<Float>? = nil
    var loraGrad: UnsafeMutablePointer<Float>? = nil
    let tokens: [Int]
    let T: Int, H: Int, D: Int, NH: Int, NKV: Int, F: Int, V: Int
    let qDim: Int, kvDim: Int
    var saved: [Saved] = []
    /// Keep only each layer's input through the forward pass, and recompute the rest in the backward pass.
    var recompute = false
    /// With LoRA dropout: the seed of this pass's masks (nil: no dropout, as in evaluation). The mask of each
    /// adapter is a stream of its own from (seed, layer, module), drawn again in the backward pass instead of kept.
    var dropoutSeed: UInt64? = nil
    var x: [Float]      // residual stream, T x H
    var z: [Float] = []  // T x H, the final norm's output

    /// What a layer's backward pass needs.
    struct Saved {
        var xIn: [Float]      // T x H, the layer's input
        var a: [Float]        // input-normed
        var qRaw: [Float], kRaw: [Float]  // projections before QK-norm
        var q: [Float], k: [Float], v: [Float]  // q, k after norm and RoPE; v
        var p: [Float]        // NH x T x T attention probabilities
        var o: [Float]        // T x qDim attention output
        var b: [Float]        // T x H, o projection (before post-attention norm)
        var xMid: [Float]     // T x H, after the attention block
        var c: [Float]        // pre-feedforward-normed
        var g: [Float], u: [Float]  // T x F gate and up
        var mm: [Float]       // T x F gelu(gate) * up
        var d: [Float]        // T x H down projection (before post-feedforward norm)
        var lora: [Gemma3Weight.Layer: [Float]] = [:]  // x Aᵀ of each adapted projection (T x rank)
    }

    init(_ m: TextModelGradient, _ w: UnsafePointer<Float>, tokens: [Int], adapters: UnsafePointer<Float>?) {
        let c = m.config
        self.m = m
        self.w = w
        self.adapters = adapters
        self.tokens = tokens
        T = tokens.count; H = c.hiddenSize; D = c.headDim; NH = c.numAttentionHeads; NKV = c.numKeyValueHeads
        F = c.intermediateSize; V = c.vocabSize
        qDim = NH * D; kvDim = NKV * D
        x = [Float](repeating: 0, count: T * H)
    }

    func ptr(_ weight: Gemma3Weight) -> UnsafePointer<Float> { w + m.layout.offset(weight) }

    // MARK: Forward

    /// The forward pass through the final norm: `x` holds the last layer's output, `z` its normed rows.
    mutating func forward() {
        let scale = m.config.embeddingMultiplier
        let e = ptr(.embedding)
        for t in 0..<T { for i in 0..<H { x[t * H + i] = e[tokens[t] * H + i] * scale } }
        for l in 0..<m.config.numHiddenLayers { forwardLayer(l) }
        z = [Float](repeating: 0, count: T * H)
        rmsNormRows(x, ptr(.finalNorm), into: &z, rows: T, n: H)
    }

    /// The positions the head runs on: those with a target or a soft target.
    func headRows(targets: [Int?], soft: [SoftTarget?]?) -> [Int] {
        (0..<T).filter { targets[$0] != nil || soft?[$0] != nil }
    }

    /// The normed final states of `rows`, one after another.
    func gather(_ rows: [Int], into out: UnsafeMutablePointer<Float>) {
        for (j, t) in rows.enumerated() { for i in 0..<H { out[j * H + i] = z[t * H + i] } }
    }

    func gather(_ rows: [Int], into out: inout [Float]) {
        out.withUnsafeMutableBufferPointer { gather(rows, into: $0.baseAddress!) }
    }

    mutating func forwardLayer(_ l: Int) {
        let a0 = x
        var s = Saved(xIn: a0, a: [], qRaw: [], kRaw: [], q: [], k: [], v: [], p: [], o: [], b: [], xMid: [], c: [],
                      g: [], u: [], mm: [], d: [])
        s.a = [Float](repeating: 0, count: T * H)
        rmsNormRows(x, ptr(.layer(l, .inputNorm)), into: &s.a, rows: T, n: H)
        s.qRaw = [Float](repeating: 0, count: T * qDim)
        s.kRaw = [Float](repeating: 0, count: T * kvDim)
        s.v = [Float](repeating: 0, count: T * kvDim)
        s.lora[.q] = project(l, .q, s.a, into: &s.qRaw)
        s.lora[.k] = project(l, .k, s.a, into: &s.kRaw)
        s.lora[.v] = project(l, .v, s.a, into: &s.v)
        // QK-norm per head, then RoPE (rotate-half pairs i, i + D/2).
        s.q = [Float](repeating: 0, count: T * qDim)
        s.k = [Float](repeating: 0, count: T * kvDim)
        rmsNormRows(s.qRaw, ptr(.layer(l, .qNorm)), into: &s.q, rows: T * NH, n: D)
        rmsNormRows(s.kRaw, ptr(.layer(l, .kNorm)), into: &s.k, rows: T * NKV, n: D)
        rope(&s.q, heads: NH, layer: l, inverse: false)
        rope(&s.k, heads: NKV, layer: l, inverse: false)
        // Attention: scores over the visible keys, softmax, weighted values.
        s.p = [Float](repeating: 0, count: NH * T * T)
        s.o = [Float](repeating: 0, count: T * qDim)
        s.q.withUnsafeBufferPointer { q in
            s.k.withUnsafeBufferPointer { k in
                s.v.withUnsafeBufferPointer { v in
                    s.p.withUnsafeMutableBufferPointer { p in
                        s.o.withUnsafeMutableBufferPointer { o in
                            attentionForward(l, q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!, o.baseAddress!)
                        }
                    }
                }
            }
        }
        s.b = [Float](repeating: 0, count: T * H)
        s.lora[.o] = project(l, .o, s.o, into: &s.b)
        var nb = [Float](repeating: 0, count: T * H)
        rmsNormRows(s.b, ptr(.layer(l, .postAttentionNorm)), into: &nb, rows: T, n: H)
        for i in 0..<(T * H) { x[i] += nb[i] }
        s.xMid = x
        s.c = [Float](repeating: 0, count: T * H)
        rmsNormRows(x, ptr(.layer(l, .preFeedforwardNorm)), into: &s.c, rows: T, n: H)
        s.g = [Float](repeating: 0, count: T * F)
        s.u = [Float](repeating: 0, count: T * F)
        s.lora[.gate] = project(l, .gate, s.c, into: &s.g)
        s.lora[.up] = project(l, .up, s.c, into: &s.u)
        s.mm = [Float](repeating: 0, count: T * F)
        for i in 0..<(T * F) { s.mm[i] = geluTanh(s.g[i]) * s.u[i] }
        s.d = [Float](repeating: 0, count: T * H)
        s.lora[.down] = project(l, .down, s.mm, into: &s.d)
        var nd = [Float](repeating: 0, count: T * H)
        rmsNormRows(s.d, ptr(.layer(l, .postFeedforwardNorm)), into: &nd, rows: T, n: H)
        for i in 0..<(T * H) { x[i] += nd[i] }
        // Recomputation keeps only the layer's input; the backward pass runs the layer again from it.
        saved.append(recompute ? Saved(xIn: s.xIn, a: [], qRaw: [], kRaw: [], q: [], k: [], v: [], p: [], o: [], b: [],
                                       xMid: [], c: [], g: [], u: [], mm: [], d: []) : s)
    }

    /// Causal (windowed) attention of every head: p (NH x T x T) the probabilities, o (T x qDim, zeroed) the output.
    func attentionForward(_ l: Int, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                          _ p: UnsafeMutablePointer<Float>, _ o: UnsafeMutablePointer<Float>) {
        let scale = m.config.queryScale, group = NH / NKV
        for h in 0..<NH {
            let kv = h / group
            for t in 0..<T {
                let first = firstKey(l, t), prow = p + (h * T + t) * T, qt = q + t * qDim + h * D
                var mx = -Float.infinity
                for u in first...t {
                    let sc = dot(qt, k + u * kvDim + kv * D, D) * scale
                    prow[u] = sc
                    mx = max(mx, sc)
                }
                var sum: Float = 0
                for u in first...t { let e = expf(prow[u] - mx); prow[u] = e; sum += e }
                let inv = 1 / sum
                let ot = o + t * qDim + h * D
                for u in first...t {
                    prow[u] *= inv
                    let pu = prow[u], vu = v + u * kvDim + kv * D
                    for i in 0..<D { ot[i] += pu * vu[i] }
                }
            }
        }
    }

    /// The attention's backward pass: from dO (T x qDim) to dq, dk, dv (added into).
    func attentionBackward(_ l: Int, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                           _ p: UnsafePointer<Float>, _ dO: UnsafePointer<Float>, _ dq: UnsafeMutablePointer<Float>,
                           _ dk: UnsafeMutablePointer<Float>, _ dv: UnsafeMutablePointer<Float>) {
        let scale = m.config.queryScale, group = NH / NKV
        let dp = UnsafeMutablePointer<Float>.allocate(capacity: T)
        defer { dp.deallocate() }
        for h in 0..<NH {
            let kv = h / group
            for t in 0..<T {
                let first = firstKey(l, t), prow = p + (h * T + t) * T
                let dOt = dO + t * qDim + h * D, qt = q + t * qDim + h * D, dqt = dq + t * qDim + h * D
                var sum: Float = 0
                for u in first...t {
                    let d = dot(dOt, v + u * kvDim + kv * D, D)
                    dp[u] = d
                    sum += prow[u] * d
                    let pu = prow[u], dvu = dv + u * kvDim + kv * D
                    for i in 0..<D { dvu[i] += pu * dOt[i] }
                }
                for u in first...t {
                    let ds = prow[u] * (dp[u] - sum) * scale
                    let ku = k + u * kvDim + kv * D, dku = dk + u * kvDim + kv * D
                    for i in 0..<D {
                        dqt[i] += ds * ku[i]
                        dku[i] += ds * qt[i]
                    }
                }
            }
        }
    }

    /// A layer's activations, computed again from its saved input (recomputation).
    func recomputed(_ l: Int) -> Saved {
        var again = self
        again.x = saved[l].xIn
        again.saved = []
        again.recompute = false
        again.forwardLayer(l)
        return again.saved[0]
    }

    /// The widths (in, out) of a layer's projection.
    func dims(_ module: Gemma3Weight.Layer) -> (Int, Int) {
        switch module {
        case .q: (H, qDim)
        case .k, .v: (H, kvDim)
        case .o: (qDim, H)
        case .gate, .up: (H, F)
        default: (F, H)  // down
        }
    }

    /// y = x Wᵀ (+ scale (x Aᵀ) Bᵀ with an adapter, whose x Aᵀ is returned for the backward pass).
    func project(_ l: Int, _ module: Gemma3Weight.Layer, _ x: [Float], into y: inout [Float]) -> [Float]? {
        let (inDim, outDim) = dims(module)
        let source: GemmB.Source = m.stored?.matrix(l, module).map { .stored($0) } ?? .f32(ptr(.layer(l, module)), ld: inDim)
        gemm(T, outDim, inDim, x, lda: inDim, .transposed(source), into: &y, ldc: outDim, accumulate: false)
        guard let adapters, let e = m.lora?.entry(l, module) else { return nil }
        // u = x Aᵀ, y += (scale u) Bᵀ.
        let r = m.lora!.config.rank, scale = m.lora!.config.scale
        var u = [Float](repeating: 0, count: T * r)
        let xd = dropped(l, module, x) ?? x
        gemm(T, r, inDim, xd, lda: inDim, .transposed(adapters + e.a, ld: inDim), into: &u, ldc: r, accumulate: false)
        gemm(T, outDim, r, u.map { $0 * scale }, lda: r, .transposed(adapters + e.b, ld: r), into: &y, ldc: outDim, accumulate: true)
        return u
    }

    /// The backward pass of `project`: dx += dy W (and the adapter's path); dW, or dA and dB, added.
    func projectBackward(_ l: Int, _ module: Gemma3Weight.Layer, _ dy: [Float], x: [Float], into dx: inout [Float], _ s: Saved) {
        let (inDim, outDim) = dims(module)
        let source: GemmB.Source = m.stored?.matrix(l, module).map { .stored($0) } ?? .f32(ptr(.layer(l, module)), ld: inDim)
        gemm(T, inDim, outDim, dy, lda: outDim, .rows(source), into: &dx, ldc: inDim, accumulate: true)
        if let baseGrad { matmulTNAdd(dy, x, into: baseGrad + m.layout.offset(.layer(l, module)), rows: T, outs: outDim, inner: inDim) }
        guard let adapters, let e = m.lora?.entry(l, module), let u = s.lora[module] else { return }
        let r = m.lora!.config.rank, scale = m.lora!.config.scale
        var dyScaled = dy
        for i in dyScaled.indices { dyScaled[i] *= scale }
        var du = [Float](repeating: 0, count: T * r)
        matmulNN(dyScaled, adapters + e.b, into: &du, rows: T, inner: outDim, outs: r)
        let mask = dropoutMask(l, module, count: T * inDim)
        if let loraGrad {
            matmulTNAdd(dyScaled, u, into: loraGrad + e.b, rows: T, outs: outDim, inner: r)
            matmulTNAdd(du, mask.map { m in zip(x, m).map { $0 * $1 } } ?? x, into: loraGrad + e.a, rows: T, outs: r, inner: inDim)
        }
        guard let mask else { return matmulNN(du, adapters + e.a, into: &dx, rows: T, inner: r, outs: inDim) }
        // dx += (du A) ∘ mask: the dropped inputs get no gradient through the adapter.
        var dxd = [Float](repeating: 0, count: T * inDim)
        matmulNN(du, adapters + e.a, into: &dxd, rows: T, inner: r, outs: inDim)
        for i in dx.indices { dx[i] += dxd[i] * mask[i] }
    }

    /// The dropout mask of an adapter's input (T x its width): 0 where dropped, 1 / (1 - p) where kept; nil when
    /// this pass has no dropout.
    func dropoutMask(_ l: Int, _ module: Gemma3Weight.Layer, count: Int) -> [Float]? {
        guard let dropoutSeed, let p = m.lora?.config.dropout, p > 0 else { return nil }
        return LoRALayout.dropoutMask(seed: dropoutSeed, layer: l, module: module, count: count, probability: p)
    }

    /// An adapter's input after dropout, or nil when this pass has no dropout.
    func dropped(_ l: Int, _ module: Gemma3Weight.Layer, _ x: [Float]) -> [Float]? {
        dropoutMask(l, module, count: x.count).map { mask in zip(x, mask).map { $0 * $1 } }
    }

    /// The first key position visible from position t in layer l.
    func firstKey(_ l: Int, _ t: Int) -> Int {
        if case let .local(window) = m.layers[l].kind { return max(0, t - window + 1) }
        return 0
    }

    /// RoPE on rows of `heads` heads of D (rotate-half), or its inverse (the transpose: rotation by -theta).
    func rope(_ a: inout [Float], heads: Int, layer l: Int, inverse: Bool) {
        let half = D / 2, inv = m.invFreq[l], width = heads * D
        for t in 0..<T {
            for i in 0..<half {
                let theta = Double(t) * inv[i]
                let cs = Float(cos(theta)), sn = Float(inverse ? -sin(theta) : sin(theta))
                for h in 0..<heads {
                    let base = t * width + h * D
                    let x0 = a[base + i], x1 = a[base + i + half]
                    a[base + i] = x0 * cs - x1 * sn
                    a[base + i + half] = x1 * cs + x0 * sn
                }
            }
        }
    }

    /// y = x * rsqrt(mean(x^2) + eps) * (offset + w), per row of n.
    func rmsNormRows(_ xs: [Float], _ weight: UnsafePointer<Float>, into y: inout [Float], rows: Int, n: Int) {
        let eps = m.config.rmsNormEps, off = m.normOffset
        for r in 0..<rows {
            var ss: Float = 0
            for i in 0..<n { ss += xs[r * n + i] * xs[r * n + i] }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            for i in 0..<n { y[r * n + i] = xs[r * n + i] * inv * (off + weight[i]) }
        }
    }

    // MARK: Backward

    /// Adds to dw (of `weight`'s norm) and returns dx for y = rmsnorm(x) * (off + w) per row, given dy.
    func rmsNormBackward(_ xs: [Float], _ dy: [Float], _ weight: Gemma3Weight, rows: Int, n: Int) -> [Float] {
        let eps = m.config.rmsNormEps, off = m.normOffset
        let wv = ptr(weight), dw = baseGrad.map { $0 + m.layout.offset(weight) }
        var dx = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows {
            var ss: Float = 0
            for i in 0..<n { ss += xs[r * n + i] * xs[r * n + i] }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            var dot: Float = 0  // sum_j dy_j (off + w_j) x_j
            for i in 0..<n {
                let xi = xs[r * n + i], dyi = dy[r * n + i]
                dw?[i] += dyi * xi * inv
                dot += dyi * (off + wv[i]) * xi
            }
            let k = inv * inv * inv / Float(n) * dot
            for i in 0..<n { dx[r * n + i] = inv * (off + wv[i]) * dy[r * n + i] - xs[r * n + i] * k }
        }
        return dx
    }

    /// The backward pass from the gradient of the normed final states of `rows` (`dz`, one row of hidden after
    /// another); weight gradients go to `baseGrad` or `loraGrad` (the head's own part of the embedding's gradient is
    /// `headLoss`'s).
    func backward(dz dzRows: [Float], rows: [Int]) {
        let de = baseGrad.map { $0 + m.layout.offset(.embedding) }
        var dz = [Float](repeating: 0, count: T * H)
        for (j, t) in rows.enumerated() { for i in 0..<H { dz[t * H + i] = dzRows[j * H + i] } }
        var dx = rmsNormBackward(x, dz, .finalNorm, rows: T, n: H)
        for l in stride(from: m.config.numHiddenLayers - 1, through: 0, by: -1) { dx = backwardLayer(l, dx) }
        // x0 = E[token] * scale.
        let scale = m.config.embeddingMultiplier
        if let de { for t in 0..<T { for i in 0..<H { de[tokens[t] * H + i] += dx[t * H + i] * scale } } }
    }

    /// The gradient of the layer's output `dOut` back to its input; weight gradients added as `backward` says.
    func backwardLayer(_ l: Int, _ dOut: [Float]) -> [Float] {
        let s = saved[l].a.isEmpty ? recomputed(l) : saved[l]
        // Feed-forward block: x = xMid + norm_post(d), d = mm Wd^T, mm = gelu(g) * u, g/u = c W^T, c = norm_pre(xMid).
        var dx = dOut
        let dd = rmsNormBackward(s.d, dOut, .layer(l, .postFeedforwardNorm), rows: T, n: H)
        var dmm = [Float](repeating: 0, count: T * F)
        projectBackward(l, .down, dd, x: s.mm, into: &dmm, s)
        var dg = [Float](repeating: 0, count: T * F), du = [Float](repeating: 0, count: T * F)
        for i in 0..<(T * F) {
            dg[i] = dmm[i] * s.u[i] * geluTanhDerivative(s.g[i])
            du[i] = dmm[i] * geluTanh(s.g[i])
        }
        var dc = [Float](repeating: 0, count: T * H)
        projectBackward(l, .gate, dg, x: s.c, into: &dc, s)
        projectBackward(l, .up, du, x: s.c, into: &dc, s)
        let dxMid = rmsNormBackward(s.xMid, dc, .layer(l, .preFeedforwardNorm), rows: T, n: H)
        for i in 0..<(T * H) { dx[i] += dxMid[i] }
        // Attention block: xMid = xIn + norm_post(b), b = o Wo^T.
        let db = rmsNormBackward(s.b, dx, .layer(l, .postAttentionNorm), rows: T, n: H)
        var dO = [Float](repeating: 0, count: T * qDim)
        projectBackward(l, .o, db, x: s.o, into: &dO, s)
        // o[t] = sum_u p[t][u] v[u]; p = softmax(scale q k^T) over the visible keys.
        var dq = [Float](repeating: 0, count: T * qDim)
        var dk = [Float](repeating: 0, count: T * kvDim), dv = [Float](repeating: 0, count: T * kvDim)
        s.q.withUnsafeBufferPointer { q in
            s.k.withUnsafeBufferPointer { k in
                s.v.withUnsafeBufferPointer { v in
                    s.p.withUnsafeBufferPointer { p in
                        dO.withUnsafeBufferPointer { dOp in
                            dq.withUnsafeMutableBufferPointer { dqp in
                                dk.withUnsafeMutableBufferPointer { dkp in
                                    dv.withUnsafeMutableBufferPointer { dvp in
                                        attentionBackward(l, q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!,
                                                          dOp.baseAddress!, dqp.baseAddress!, dkp.baseAddress!, dvp.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Through RoPE (its transpose) and the QK-norms to the raw projections.
        rope(&dq, heads: NH, layer: l, inverse: true)
        rope(&dk, heads: NKV, layer: l, inverse: true)
        let dqRaw = rmsNormBackward(s.qRaw, dq, .layer(l, .qNorm), rows: T * NH, n: D)
        let dkRaw = rmsNormBackward(s.kRaw, dk, .layer(l, .kNorm), rows: T * NKV, n: D)
        var da = [Float](repeating: 0, count: T * H)
        projectBackward(l, .q, dqRaw, x: s.a, into: &da, s)
        projectBackward(l, .k, dkRaw, x: s.a, into: &da, s)
        projectBackward(l, .v, dv, x: s.a, into: &da, s)
        let dxIn = rmsNormBackward(s.xIn, da, .layer(l, .inputNorm), rows: T, n: H)
        for i in 0..<(T * H) { dx[i] += dxIn[i] }
        return dx
    }
}

// MARK: Elementwise and matrix helpers (row-major)

/// The derivative of GemmaKernels' `geluTanh` (transformers' gelu_pytorch_tanh), with the same tanh on `expFast`.
@inline(__always) func geluTanhDerivative(_ x: Float) -> Float {
    let c: Float = 0.7978845608028654
    let th = 1 - 2 / (expFast(2 * c * (x + 0.044715 * x * x * x)) + 1)
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x)
}

/// `sgemm` on arrays: c (+)= A B with A(m, k) = a[m * lda + k * aStep].
func gemm(_ M: Int, _ N: Int, _ K: Int, _ a: [Float], lda: Int, aStep: Int = 1, _ b: GemmB, into c: inout [Float], ldc: Int,
          accumulate: Bool) {
    a.withUnsafeBufferPointer { ap in
        c.withUnsafeMutableBufferPointer { cp in
            sgemm(M, N, K, a: ap.baseAddress!, lda: lda, aStep: aStep, b: b, c: cp.baseAddress!, ldc: ldc, accumulate: accumulate)
        }
    }
}

/// y[r][k] += sum_o dy[r][o] w[o][k]  (dy: rows x inner, w: inner x outs).
func matmulNN(_ dy: [Float], _ w: UnsafePointer<Float>, into y: inout [Float], rows: Int, inner: Int, outs: Int) {
    gemm(rows, outs, inner, dy, lda: inner, .rows(w, ld: outs), into: &y, ldc: outs, accumulate: true)
}

/// dw[o][k] += sum_r dy[r][o] x[r][k]  (dy: rows x outs, x: rows x inner, dw: outs x inner).
func matmulTNAdd(_ dy: [Float], _ x: [Float], into dw: UnsafeMutablePointer<Float>, rows: Int, outs: Int, inner: Int) {
    dy.withUnsafeBufferPointer { dp in
        x.withUnsafeBufferPointer { xp in
            sgemm(outs, inner, rows, a: dp.baseAddress!, lda: 1, aStep: outs, b: xp.baseAddress!, ldb: inner, c: dw, ldc: inner,
                  accumulate: true)
        }
    }
}
