// Picks the next token from logits. The chain follows llama.cpp's default sampler order (common/sampling.cpp):
// logit bias -> repetition / frequency / presence penalties over the last N tokens -> top-k -> top-p -> min-p ->
// temperature -> a seeded draw. As in llama.cpp, top-p and min-p look at the distribution at temperature 1 and the
// temperature only reshapes what survives them. Temperature 0 is greedy (argmax of the biased, penalised logits).
// Every buffer is allocated on first use and reused: sampling a token allocates nothing.
import GemmaModel

/// How to choose each next token. The defaults are llama.cpp's (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
/// penalties off).
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature applied after the filters; 0 means greedy.
    public var temperature: Float
    /// Keep only the `topK` most likely tokens; 0 keeps all.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability (at temperature 1, after top-k) reaches `topP`;
    /// 1 keeps all.
    public var topP: Float
    /// Drop tokens whose probability is below `minP` times the most likely token's; 0 keeps all.
    public var minP: Float
    /// llama.cpp's repetition penalty: a positive logit of a token seen in the window is divided by it, a negative one
    /// multiplied. 1 is off.
    public var repeatPenalty: Float
    /// How many of the most recent tokens (prompt included) the penalties look at; 0 turns them off, -1 means all
    /// (up to the last 65536).
    public var repeatLastN: Int
    /// Subtracted once from the logit of every token present in the window. 0 is off.
    public var presencePenalty: Float
    /// Subtracted from a token's logit once per occurrence in the window. 0 is off.
    public var frequencyPenalty: Float
    /// Added to the logits of the given token ids before anything else; `-.infinity` bans a token.
    public var logitBias: [Int: Float]
    /// Seed of the sampling stream: the same seed, settings and logits give the same tokens.
    public var seed: UInt64

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repeatPenalty: Float = 1, repeatLastN: Int = 64, presencePenalty: Float = 0,
                frequencyPenalty: Float = 0, logitBias: [Int: Float] = [:], seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
        self.seed = seed
    }

    /// Always the most likely token.
    public static let greedy = SamplingParameters(temperature: 0)

    /// The defaults for a checkpoint. When its generation_config.json sets sampling values (do_sample, temperature,
    /// top_k, top_p, min_p, repetition_penalty) they apply, with transformers' defaults for the ones it leaves out
    /// (temperature 1, top-k 50, top-p 1, min-p off, repetition penalty 1) and do_sample false meaning greedy;
    /// otherwise (GGUF files, folders without sampling values) llama.cpp's (temperature 0.8, top-k 40, top-p 0.95,
    /// min-p 0.05).
    public init(defaults g: GenerationDefaults) {
        self.init()
        guard g.setsSampling else { return }
        temperature = g.doSample == false ? 0 : g.temperature ?? 1
        topK = g.topK ?? 50
        topP = g.topP ?? 1
        minP = g.minP ?? 0
        repeatPenalty = g.repetitionPenalty ?? 1
    }

    /// Plain softmax sampling at `temperature`: no top-k, top-p or min-p.
    public static func unfiltered(temperature: Float, seed: UInt64 = 0) -> SamplingParameters {
        SamplingParameters(temperature: temperature, topK: 0, topP: 1, minP: 0, seed: seed)
    }

    /// True when any penalty is active (the sampler then keeps a window of recent tokens).
    public var hasPenalties: Bool {
        repeatLastN != 0 && (repeatPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0)
    }
}

/// Stateful sampler: owns the random stream, the penalty window and its scratch buffers.
///
/// ```swift
/// var sampler = Sampler(SamplingParameters(temperature: 0.7, seed: 42))
/// sampler.accept(promptTokens)              // the penalties see the prompt too
/// let next = sampler.sample(logits)         // also records `next` in the penalty window
/// ```
public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator
    /// Logits after bias and penalties (only used when there are any).
    private var work: [Float] = []
    /// Candidate ids: the top-k selection, or a heap popped into a run sorted by descending logit.
    private var order: [Int32] = []
    /// Weights of the sorted prefix.
    private var weights: [Double] = []
    /// Penalty window: a ring of recent tokens and the count of each id in it.
    private var window: [Int32] = []
    private var windowStart = 0, windowCount = 0
    private var counts: [Int32] = []
    private let biasIDs: [Int]
    private let biasValues: [Float]

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed)
        let bias = parameters.logitBias.sorted { $0.key < $1.key }
        biasIDs = bias.map(\.key)
        biasValues = bias.map(\.value)
        if parameters.hasPenalties {
            window = [Int32](repeating: 0, count: parameters.repeatLastN < 0 ? 1 << 16 : parameters.repeatLastN)
        }
    }

    /// The argmax of `logits`, ties broken by the lowest id (0 when no logit exceeds -inf; NaN never wins).
    /// Two vector passes, the maximum then its first id: 23 µs over 262,144 logits, where the plain loop took 208
    /// (a decode step of the 270M model is ~12 ms).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let n = logits.count
        guard let base = logits.baseAddress, n > 0 else { return 0 }
        let raw = UnsafeRawPointer(base)
        var lanes = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i &+ 16 <= n {
            let v = raw.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD16<Float>.self)
            lanes = lanes.replacing(with: v, where: v .> lanes)  // false for NaN, as in a scalar `x > best`
            i &+= 16
        }
        var m = -Float.infinity
        for l in 0..<16 where lanes[l] > m { m = lanes[l] }
        while i < n {
            if base[i] > m { m = base[i] }
            i &+= 1
        }
        guard m > -.infinity else { return 0 }
        let target = SIMD16<Float>(repeating: m)
        i = 0
        while i &+ 16 <= n {
            if any(raw.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD16<Float>.self) .== target) { break }
            i &+= 16
        }
        while i < n {
            if base[i] == m { return i }
            i &+= 1
        }
        return 0
    }

    /// Records tokens in the penalty window (the prompt, before generating). `sample` records its own choices.
    public mutating func accept<S: Sequence>(_ tokens: S) where S.Element == Int {
        for t in tokens { accept(t) }
    }

    /// Records one token in the penalty window.
    public mutating func accept(_ token: Int) {
        guard !window.isEmpty, token >= 0 else { return }
        if counts.count <= token { counts += [Int32](repeating: 0, count: max(token + 1, 1 << 18) - counts.count) }
        if windowCount == window.count {
            counts[Int(window[windowStart])] -= 1
            window[windowStart] = Int32(token)
            windowStart = (windowStart + 1) % window.count
        } else {
            window[(windowStart + windowCount) % window.count] = Int32(token)
            windowCount += 1
        }
        counts[token] += 1
    }

    /// Chooses the next token and records it in the penalty window.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let token: Int
        if biasIDs.isEmpty && windowCount == 0 {
            token = choose(logits)
        } else if windowCount == 0, let t = greedyWithBias(logits) {
            token = t
        } else {
            if work.count != logits.count { work = [Float](repeating: 0, count: logits.count) }
            var buffer: [Float] = []
            swap(&buffer, &work)  // moved out (no copy) so that `self` can be mutated while it is borrowed
            token = buffer.withUnsafeMutableBufferPointer { w in
                _ = w.initialize(from: logits)
                adjust(w)
                return choose(UnsafeBufferPointer(w))
            }
            swap(&buffer, &work)
        }
        accept(token)
        return token
    }

    /// Greedy choice under a logit bias without copying the logits (nil when sampling is not greedy, or when the
    /// unbiased argmax is itself biased): the best unbiased logit is the plain argmax, so only the biased ids can
    /// beat it. Same result and tie rule (lowest id) as biasing a copy and taking its argmax.
    private func greedyWithBias(_ z: UnsafeBufferPointer<Float>) -> Int? {
        let t = parameters.temperature
        guard !(t > 0 && t.isFinite) else { return nil }
        var best = Self.argmax(z)
        if biasIDs.contains(best) { return nil }
        var bestValue: Float = !z.isEmpty && z[best] > -.infinity ? z[best] : -.infinity  // argmax's fallback 0 may be NaN
        for (id, b) in zip(biasIDs, biasValues) where id >= 0 && id < z.count {
            let v = z[id] + b
            if v > bestValue || (v == bestValue && id < best) { best = id; bestValue = v }
        }
        return best
    }

    /// Logit bias, then the penalties of every distinct token in the window (llama.cpp's
    /// `llama_sampler_penalties_apply`).
    private mutating func adjust(_ z: UnsafeMutableBufferPointer<Float>) {
        for (id, b) in zip(biasIDs, biasValues) where id >= 0 && id < z.count { z[id] += b }
        guard windowCount > 0 else { return }
        let p = parameters
        // Each id is penalised once: its count is negated while visited and restored afterwards.
        for i in 0..<windowCount {
            let id = Int(window[(windowStart + i) % window.count])
            let c = counts[id]
            guard c > 0, id < z.count else { continue }
            var x = z[id]
            if p.repeatPenalty != 1 { x = x <= 0 ? x * p.repeatPenalty : x / p.repeatPenalty }
            x -= Float(c) * p.frequencyPenalty + p.presencePenalty
            z[id] = x
            counts[id] = -c
        }
        for i in 0..<windowCount {
            let id = Int(window[(windowStart + i) % window.count])
            if counts[id] < 0 { counts[id] = -counts[id] }
        }
    }

    /// The filters and the draw over (adjusted) logits `z`.
    private mutating func choose(_ z: UnsafeBufferPointer<Float>) -> Int {
        let p = parameters
        let t = p.temperature
        guard t > 0, t.isFinite else { return Self.argmax(z) }
        let n = z.count
        let k = p.topK > 0 ? min(p.topK, n) : n
        let usesTopP = p.topP < 1, usesMinP = p.minP > 0
        // Nothing filtered: draw from the whole vocabulary without sorting.
        if k == n && !usesTopP && !usesMinP { return drawUnsorted(z, temperature: t) }

        if order.count != n { order = [Int32](repeating: 0, count: n) }
        if weights.count != n { weights = [Double](repeating: 0, count: n) }
        let u = rng.unit()
        return order.withUnsafeMutableBufferPointer { ord in
            weights.withUnsafeMutableBufferPointer { wts in
                // With top-k, one pass selects the k best into ord[0..<k], best first. Without, a heap is popped
                // lazily in descending order (the i-th largest ends up at ord[m - 1 - i]); with min-p it holds only
                // the tokens that can pass min-p, which removes the others whatever top-p keeps.
                var m = k
                var heap: CandidateHeap? = nil
                if k < n {
                    selectTopK(z, into: ord, k: k)
                } else {
                    m = 0
                    let floor = usesMinP ? (z.max() ?? 0) + logf(min(p.minP, 1)) : -Float.infinity
                    for i in 0..<n where z[i] >= floor || !usesMinP { ord[m] = Int32(i); m += 1 }
                    if m == 0 { return Self.argmax(z) }
                    heap = CandidateHeap(z: z, order: ord, count: m)
                }
                var sorted = k < n ? k : 0
                func ensure(_ count: Int) { while sorted < count { heap!.popMax(); sorted += 1 } }
                func id(_ i: Int) -> Int { Int(k < n ? ord[i] : ord[m - 1 - i]) }
                ensure(1)
                let top = z[id(0)]
                guard top > -Float.infinity else { return id(0) }
                var keep = m
                if usesTopP {
                    // Probabilities at temperature 1 over the top-k set; keep up to the token that reaches topP.
                    var total = 0.0
                    if k == n {
                        for x in z { total += Double(expf(x - top)) }
                    } else {
                        ensure(k)
                        for i in 0..<k { total += Double(expf(z[id(i)] - top)) }
                    }
                    let target = Double(p.topP) * total
                    var cum = 0.0, i = 0
                    while i < keep {
                        ensure(i + 1)
                        cum += Double(expf(z[id(i)] - top))
                        i += 1
                        if cum >= target { break }
                    }
                    keep = i
                }
                if usesMinP {
                    // p_i >= minP * p_max  <=>  z_i >= z_max + log(minP), at temperature 1.
                    let floor = top + logf(p.minP)
                    var i = 1
                    while i < keep {
                        ensure(i + 1)
                        if z[id(i)] < floor { break }
                        i += 1
                    }
                    keep = i
                }
                ensure(keep)
                var cum = 0.0
                for i in 0..<keep {
                    let x = z[id(i)]
                    cum += x == -.infinity ? 0 : exp(Double(x - top) / Double(t))
                    wts[i] = cum
                }
                let target = u * cum
                for i in 0..<keep where target < wts[i] { return id(i) }
                return id(0)
            }
        }
    }

    /// The distribution the filters and the temperature leave over `logits` (no bias or penalties, top-k > 0): the
    /// kept ids, best first, and their probabilities. The same rules as `choose` (top-k with ties to the lower id,
    /// top-p and min-p at temperature 1, then the temperature), computed plainly.
    public func distribution(_ z: UnsafeBufferPointer<Float>) -> (ids: [Int], probabilities: [Double]) {
        let p = parameters, t = p.temperature, n = z.count
        let k = min(max(p.topK, 1), n)
        var order = [Int32](repeating: 0, count: k)
        order.withUnsafeMutableBufferPointer { selectTopK(z, into: $0, k: k) }
        let ids = order.map(Int.init)
        let top = z[ids[0]]
        var keep = k
        if p.topP < 1 {
            var total = 0.0
            for id in ids { total += Double(expf(z[id] - top)) }
            let target = Double(p.topP) * total
            var cum = 0.0, i = 0
            while i < keep {
                cum += Double(expf(z[ids[i]] - top))
                i += 1
                if cum >= target { break }
            }
            keep = i
        }
        if p.minP > 0 {
            let floor = top + logf(p.minP)
            var i = 1
            while i < keep && z[ids[i]] >= floor { i += 1 }
            keep = i
        }
        var w = (0..<keep).map { i -> Double in
            let x = z[ids[i]]
            return x == -.infinity ? 0 : exp(Double(x - top) / Double(t))
        }
        let sum = w.reduce(0, +)
        for i in w.indices { w[i] /= sum }
        return (Array(ids.prefix(keep)), w)
    }

    /// Speculative sampling of one position whose proposal is `proposal`, drawn by the proposer from `draft` (its
    /// distribution q: ids and probabilities), or chosen deterministically when `draft` is nil (prompt lookup, a
    /// greedy draft: q a point mass). With p this sampler's distribution over `logits`, the proposal is taken with
    /// probability min(1, p(x)/q(x)), else a token is drawn from the residual max(0, p - q), normalized; the token's
    /// distribution is p, as a plain draw's (Leviathan et al. 2023, Chen et al. 2023). Returns the token and whether
    /// it is the proposal. Top-k sampling without bias or penalties only.
    public mutating func sampleSpeculative(_ logits: UnsafeBufferPointer<Float>, proposal: Int,
                                           draft: (ids: [Int], probabilities: [Double])? = nil) -> (token: Int, accepted: Bool) {
        let (ids, probs) = distribution(logits)
        let px = ids.firstIndex(of: proposal).map { probs[$0] } ?? 0
        // q(id): the draft's probability (a short list, searched), or the point mass on the proposal.
        func q(_ id: Int) -> Double {
            guard let draft else { return id == proposal ? 1 : 0 }
            return draft.ids.firstIndex(of: id).map { draft.probabilities[$0] } ?? 0
        }
        let qx = q(proposal)
        let token: Int, accepted: Bool
        if qx > 0, rng.unit() * qx < px {
            token = proposal
            accepted = true
        } else {
            // The residual max(0, p - q): its mass, then an inverse-CDF draw over it (ties cannot leave it empty when
            // the proposal was refused: p != q somewhere then; the fallback is p's best).
            var mass = 0.0
            for (id, p) in zip(ids, probs) { mass += max(0, p - q(id)) }
            var target = rng.unit() * mass
            var pick: Int? = nil, first: Int? = nil
            for (id, p) in zip(ids, probs) {
                let r = max(0, p - q(id))
                guard r > 0 else { continue }
                if first == nil { first = id }
                target -= r
                if target < 0 { pick = id; break }
            }
            token = pick ?? first ?? ids[0]
            accepted = false
        }
        accept(token)
        return (token, accepted)
    }

    /// Draws a token from a distribution (ids and probabilities, as `distribution` gives) with this sampler's random
    /// stream: a draft model's proposal under the same sampler chain.
    public mutating func draw(from d: (ids: [Int], probabilities: [Double])) -> Int {
        var target = rng.unit()
        for (id, w) in zip(d.ids, d.probabilities) {
            target -= w
            if target < 0 { return id }
        }
        return d.ids.last ?? 0
    }

    /// Inverse CDF over softmax(z / t) of the whole vocabulary.
    private mutating func drawUnsorted(_ z: UnsafeBufferPointer<Float>, temperature t: Float) -> Int {
        let m = z.max() ?? 0
        let invT = 1 / t
        var sum = 0.0
        for x in z { sum += Double(expf((x - m) * invT)) }
        var target = rng.unit() * sum
        for i in z.indices {
            target -= Double(expf((z[i] - m) * invT))
            if target < 0 { return i }
        }
        return Self.argmax(z)
    }
}

/// The `k` best ids of `z` (ties: the lower id first) into `a[0..<k]`, best first: a min-heap of the k best so far
/// (its root the worst of them), so that most ids are rejected by one comparison; then a heapsort.
func selectTopK(_ z: UnsafeBufferPointer<Float>, into a: UnsafeMutableBufferPointer<Int32>, k: Int) {
    @inline(__always) func above(_ x: Int32, _ y: Int32) -> Bool {
        let zx = z[Int(x)], zy = z[Int(y)]
        return zx > zy || (zx == zy && x < y)
    }
    // Sift `item` down from slot i of a min-heap (by `above` reversed) of `size` elements.
    func siftDown(_ start: Int, _ item: Int32, _ size: Int) {
        var i = start
        while true {
            var c = 2 * i + 1
            if c >= size { break }
            if c + 1 < size && above(a[c], a[c + 1]) { c += 1 }
            if !above(item, a[c]) { break }
            a[i] = a[c]
            i = c
        }
        a[i] = item
    }
    for i in 0..<k { a[i] = Int32(i) }
    var i = k / 2 - 1
    while i >= 0 { siftDown(i, a[i], k); i -= 1 }
    var worst = z[Int(a[0])]
    for id in k..<z.count where z[id] > worst {
        siftDown(0, Int32(id), k)
        worst = z[Int(a[0])]
    }
    // Heapsort: the worst goes to the end each time, leaving a[0..<k] best first.
    var size = k
    while size > 1 {
        let root = a[0]
        size -= 1
        siftDown(0, a[size], size)
        a[size] = root
    }
}

/// A binary max-heap of token ids by logit (ties: the lower id first), built in place in O(n) over a[0..<n]. Each
/// pop frees the heap's last slot, where the caller stores the popped id (as in heapsort): the ids popped so far
/// sit at the end of the buffer in descending order, a[n-1] being the largest.
private struct CandidateHeap {
    let z: UnsafeBufferPointer<Float>
    let a: UnsafeMutableBufferPointer<Int32>
    private(set) var size: Int

    /// Heapifies the ids already in order[0..<n].
    init(z: UnsafeBufferPointer<Float>, order: UnsafeMutableBufferPointer<Int32>, count n: Int) {
        self.z = z
        a = order
        size = n
        var i = n / 2 - 1
        while i >= 0 { siftDown(i); i -= 1 }
    }

    @inline(__always) private func above(_ x: Int32, _ y: Int32) -> Bool {
        let zx = z[Int(x)], zy = z[Int(y)]
        return zx > zy || (zx == zy && x < y)
    }

    private func siftDown(_ start: Int) {
        var i = start
        let item = a[i]
        while true {
            var c = 2 * i + 1
            if c >= size { break }
            if c + 1 < size && above(a[c + 1], a[c]) { c += 1 }
            if !above(a[c], item) { break }
            a[i] = a[c]
            i = c
        }
        a[i] = item
    }

    /// Removes the largest and stores it in the slot the heap just gave up, a[size].
    mutating func popMax() {
        precondition(size > 0)
        let top = a[0]
        size -= 1
        a[0] = a[size]
        if size > 0 { siftDown(0) }
        a[size] = top
    }
}

extension Sampler {
    /// Log-probabilities under softmax(logits) (temperature 1, no filter): the chosen token's, and the `top` most
    /// likely tokens, best first (ties to the lower id).
    public static func logprobs(_ logits: UnsafeBufferPointer<Float>, chosen: Int, top n: Int) -> (Float, [TokenLogprob]) {
        let m = logits.max() ?? 0
        var sum = 0.0
        for x in logits { sum += Double(expf(x - m)) }
        let logZ = m + Float(log(sum))
        var best: [TokenLogprob] = []
        if n > 0 {
            best.reserveCapacity(n + 1)
            var floor = -Float.infinity
            for (i, x) in logits.enumerated() where best.count < n || x > floor {
                var j = best.count
                while j > 0 && best[j - 1].logprob < x { j -= 1 }
                best.insert(TokenLogprob(id: i, logprob: x), at: j)
                if best.count > n { best.removeLast() }
                if best.count == n { floor = best[n - 1].logprob }
            }
            for j in best.indices { best[j].logprob -= logZ }
        }
        let chosenLogprob = chosen >= 0 && chosen < logits.count ? logits[chosen] - logZ : -.infinity
        return (chosenLogprob, best)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
