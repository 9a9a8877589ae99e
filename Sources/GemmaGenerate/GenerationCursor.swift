// The generation loop's state, one token at a time: the sampler (its penalty window fed with the prompt), log-
// probabilities, stop tokens, stop strings, the streaming detokenizer and the token limit. `Generator.run` steps one
// cursor alone; the server's scheduler steps one per slot and batches their model steps (`BatchDecoder`). Either way
// a token goes through the same three calls, so the same logits give the same tokens, events and statistics.
import Dispatch
import GemmaGrammar
import GemmaModel
import GemmaTokenizer

/// One sequence's generation, stepped by its driver:
///
/// ```swift
/// var cursor = GenerationCursor(prompt: ids, parameters: p, stopTokens: [1, 106], tokenizer: tk, room: room)
/// try prefill.run { cursor.accept($0) }             // the prompt's last logits choose the first token
/// var reason: StopReason? = cursor.limit == 0 ? .length : nil
/// var step = [0]                                     // one array for every decode step
/// while reason == nil {
///     reason = cursor.emit(emit)                     // .token, then its .text
///     step[0] = cursor.next
///     if reason == nil { try model.forward(step, state: s) { _, l in cursor.accept(l) } }
/// }
/// let stats = cursor.stats(cursor.finish(reason!, emit), ...)   // held-back text, then the statistics
/// ```
///
/// Decoding allocates nothing per token beyond the events' text (and the log-probability lists when asked for).
public struct GenerationCursor {
    public let parameters: GenerationParameters
    /// Token ids that end generation unless `parameters.ignoreStopTokens`.
    public let stopTokens: Set<Int>
    /// Tokens to generate at most: `parameters.maxTokens`, or the room left in the context if that is less.
    public let limit: Int
    /// The token chosen by the last `accept`, not yet emitted (then the one to run through the model).
    public private(set) var next = 0
    /// Tokens emitted so far, a final stop token included.
    public private(set) var generated = 0
    /// The stop string that ended generation, if one did.
    public private(set) var stopString: String? = nil
    private var sampler: Sampler
    private var detokenizer: StreamingDetokenizer?
    private var stops: StopStringMatcher
    private let topLogprobs: Int?
    private var nextLogprobs: (Float, [TokenLogprob])? = nil
    /// The grammar's state (with `parameters.constraint`), and the logits with the tokens it forbids at -inf.
    private var matcher: GrammarMatcher?
    private var masked: [Float] = []
    /// Set when the grammar allowed no token and could not end (a grammar no vocabulary token can continue).
    private var grammarStuck = false
    private var endedByGrammar = false
    private var candidates: [Int32] = []
    private var kept: [Int] = []
    private var constraintNanoseconds: UInt64 = 0

    /// - Parameters:
    ///   - prompt: The prompt's token ids (penalties look back over them too).
    ///   - parameters: Sampling, limit, stop strings, log-probabilities.
    ///   - stopTokens: Ids that end generation (Gemma 3: `<eos>` and `<end_of_turn>`).
    ///   - tokenizer: Turns tokens into `.text` events and enables stop strings; nil emits tokens only.
    ///   - room: Positions left in the context after the prompt.
    public init(prompt: [Int], parameters: GenerationParameters, stopTokens: Set<Int>, tokenizer: Tokenizer?, room: Int) {
        self.parameters = parameters
        self.stopTokens = stopTokens
        limit = max(0, min(parameters.maxTokens, room))
        sampler = Sampler(parameters.sampling)
        if parameters.sampling.hasPenalties { sampler.accept(prompt) }
        detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }
        stops = StopStringMatcher(tokenizer == nil ? [] : parameters.stopStrings)
        topLogprobs = parameters.topLogprobs.map { max(0, $0) }
        matcher = parameters.constraint.map { GrammarMatcher($0.index) }
    }

    /// Chooses the next token from the logits of the last position run (and its log-probabilities when asked for).
    public mutating func accept(_ logits: UnsafeBufferPointer<Float>) {
        if matcher != nil { next = sampleConstrained(logits) } else { next = sampler.sample(logits) }
        if let n = topLogprobs { nextLogprobs = Sampler.logprobs(logits, chosen: next, top: n) }
    }

    /// Speculative decoding: chooses the next token where `proposal` was proposed, drawn from `draft` (a draft
    /// model's distribution) or chosen deterministically when nil (see `Sampler.sampleSpeculative`); returns whether
    /// the proposal was taken. Plain top-k sampling only.
    public mutating func acceptSpeculative(_ logits: UnsafeBufferPointer<Float>, proposal: Int,
                                           draft: (ids: [Int], probabilities: [Double])? = nil) -> Bool {
        let (t, taken) = sampler.sampleSpeculative(logits, proposal: proposal, draft: draft)
        next = t
        if let n = topLogprobs { nextLogprobs = Sampler.logprobs(logits, chosen: next, top: n) }
        return taken
    }

    /// Sampling under the grammar, with the same result as sampling logits whose forbidden tokens are -inf (stop
    /// tokens allowed only where the grammar may end). Greedy without bias or penalties takes the plain argmax when
    /// the grammar allows it (the masked argmax is then the same token); otherwise the state's mask (computed once
    /// per state and shared by every generation under the same constraint) sets the forbidden logits of a copy.
    private mutating func sampleConstrained(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let start = DispatchTime.now().uptimeNanoseconds
        var samplerTime: UInt64 = 0
        defer { constraintNanoseconds &+= DispatchTime.now().uptimeNanoseconds &- start &- samplerTime }
        let stopsAllowed = matcher!.canEnd && !parameters.ignoreStopTokens
        let p = parameters.sampling
        let n = logits.count
        // The sampler over `masked`; a token the grammar refuses (every allowed token at -inf after a logit bias:
        // the sampler's fallback is not the grammar's) ends generation here.
        func draw() -> Int {
            let s0 = DispatchTime.now().uptimeNanoseconds
            let t = masked.withUnsafeBufferPointer { sampler.sample($0) }
            samplerTime = DispatchTime.now().uptimeNanoseconds &- s0
            if !stopTokens.contains(t) && !matcher!.accept(t) {
                grammarStuck = true
                return stopTokens.min() ?? t
            }
            return t
        }
        if !(p.temperature > 0 && p.temperature.isFinite) && p.logitBias.isEmpty && !p.hasPenalties {
            let t = Sampler.argmax(logits)
            if stopTokens.contains(t) ? stopsAllowed : matcher!.allows(t) {
                if !stopTokens.contains(t) { matcher!.accept(t) }
                sampler.accept(t)
                return t
            }
        }
        // Top-k without bias or penalties, and no mask for this state yet: the k best-ranked allowed tokens (logit
        // order, lower id first on ties, as top-k ranks them) found among the best few hundred tokens, each checked
        // alone, are exactly the k tokens top-k keeps from fully masked logits; top-p, min-p and the draw then see
        // the same values. Saves the whole-vocabulary walk of a state seen once (inside a bounded string, every
        // character is a new state). Found fewer than k: the full mask.
        if p.topK > 0 && p.topK <= 256 && p.logitBias.isEmpty && !p.hasPenalties && p.temperature > 0 && !matcher!.hasMask {
            var want = min(max(64, 2 * p.topK), n)
            while true {
                if candidates.count < want { candidates = [Int32](repeating: 0, count: want) }
                candidates.withUnsafeMutableBufferPointer { selectTopK(logits, into: $0, k: want) }
                kept.removeAll(keepingCapacity: true)
                for c in candidates.prefix(want) {
                    let t = Int(c)
                    if stopTokens.contains(t) ? stopsAllowed : matcher!.allows(t) {
                        kept.append(t)
                        if kept.count == p.topK { break }
                    }
                }
                if kept.count == p.topK {
                    if masked.count != n { masked = [Float](repeating: -.infinity, count: n) }
                    masked.withUnsafeMutableBufferPointer { m in
                        m.update(repeating: -.infinity)
                        for t in kept { m[t] = logits[t] }
                    }
                    return draw()
                }
                if want >= min(1024, n) { break }
                want = min(want * 4, n)
            }
        }
        let mask = matcher!.mask()
        if masked.count != n { masked = [Float](repeating: 0, count: n) }
        var any = false
        masked.withUnsafeMutableBufferPointer { m in
            if let ids = mask.ids {
                m.update(repeating: -.infinity)
                for t in ids where Int(t) < n { m[Int(t)] = logits[Int(t)] }
                any = !ids.isEmpty
            } else {
                let bits = mask.bits
                for w in 0..<((n + 63) / 64) {
                    let word = w < bits.count ? bits[w] : 0
                    let base = w * 64, end = min(base + 64, n)
                    if word == ~0 && end == base + 64 {
                        UnsafeMutableRawPointer(m.baseAddress! + base).copyMemory(from: logits.baseAddress! + base, byteCount: 256)
                    } else {
                        for i in base..<end { m[i] = word >> UInt64(i - base) & 1 == 1 ? logits[i] : -.infinity }
                    }
                }
                any = true
            }
            if stopsAllowed {
                for t in stopTokens where t >= 0 && t < n { m[t] = logits[t]; any = true }
            }
        }
        guard any else {
            grammarStuck = true
            return stopTokens.min() ?? 0
        }
        return draw()
    }

    /// Reports the chosen token: a `.token`, then (with a tokenizer, unless the token ends generation as a stop
    /// token) one `.text` with the text it releases, possibly empty: text is held back while it could still be part
    /// of a stop string or of a UTF-8 character. `isCancelled` is polled after the `.token`.
    ///
    /// - Returns: Why generation ends (then call `finish`), or nil: `next` is to be run through the model and its
    ///   logits given to `accept`.
    public mutating func emit(isCancelled: () -> Bool = { false }, _ sink: (GenerationEvent) -> Void) -> StopReason? {
        generated += 1
        sink(.token(GeneratedToken(id: next, logprob: nextLogprobs?.0, topLogprobs: nextLogprobs?.1 ?? [])))
        if isCancelled() { return .cancelled }
        if !parameters.ignoreStopTokens && stopTokens.contains(next) { return .stopToken }
        if grammarStuck { return .stopToken }
        if detokenizer != nil {
            let piece = (try? detokenizer!.append(TokenID(next))) ?? ""
            switch stops.append(piece) {
            case let .text(s):
                sink(.text(s))
            case let .stop(before, matched):
                sink(.text(before))
                stopString = matched
                return .stopString
            }
        }
        // A complete grammar with nothing left to add ends here, as its stop token would.
        if let m = matcher, m.mustEnd { endedByGrammar = true; return .stopToken }
        return generated >= limit ? .length : nil
    }

    /// Ends generation for `reason`: releases the held-back text as one last `.text` (unless a stop string ended
    /// generation, or it was cancelled), which may still complete a stop string. Returns the final reason.
    public mutating func finish(_ reason: StopReason, _ sink: (GenerationEvent) -> Void) -> StopReason {
        guard reason != .stopString && reason != .cancelled, detokenizer != nil else { return reason }
        switch stops.append(detokenizer!.finish()) {
        case let .text(s):
            let tail = s + stops.flush()
            if !tail.isEmpty { sink(.text(tail)) }
            return reason
        case let .stop(before, matched):
            if !before.isEmpty { sink(.text(before)) }
            stopString = matched
            return .stopString
        }
    }

    /// The statistics of a generation that ended for `reason` (as `finish` returned it).
    public func stats(_ reason: StopReason, promptTokens: Int, reusedPromptTokens: Int, promptNanoseconds: UInt64,
                      generateNanoseconds: UInt64) -> GenerationStats {
        GenerationStats(promptTokens: promptTokens, reusedPromptTokens: reusedPromptTokens, generatedTokens: generated,
                        promptNanoseconds: promptNanoseconds, generateNanoseconds: generateNanoseconds,
                        stopReason: reason, stopString: stopString, constraintNanoseconds: constraintNanoseconds,
                        endedByGrammar: endedByGrammar)
    }
}
