// The generation loop: prefill the prompt (`Prefill`, reusing what the state's KV cache already holds), then sample
// and decode one token at a time (`GenerationCursor`) until a stop token, a stop string, the token limit, the
// context's end or cancellation. Each step reports the token (with optional log-probabilities) and the text it makes
// safe to show; the loop ends with statistics. Timings are measured around prefill and decode. The event and
// statistics types here are the only ones: the server streams the same events.
import Dispatch
import GemmaGrammar
import GemmaModel
import GemmaTokenizer

/// Why generation ended.
public enum StopReason: String, Sendable, Equatable {
    /// A stop token (`<eos>` or `<end_of_turn>`) was generated.
    case stopToken = "stop"
    /// A stop string appeared in the text (it is not part of the output).
    case stopString = "stop_string"
    /// The token limit (or the end of the state's context) was reached.
    case length
    /// The caller asked to stop.
    case cancelled
}

/// What to generate and when to stop.
public struct GenerationParameters: Sendable, Equatable {
    public var sampling: SamplingParameters
    /// Tokens to generate at most (a stop token counts as one).
    public var maxTokens: Int
    /// Generation ends when the text contains one of these; the stop string is never part of the output, even when
    /// it spans several tokens.
    public var stopStrings: [String]
    /// Keep going past `<eos>` and `<end_of_turn>`.
    public var ignoreStopTokens: Bool
    /// When set, each token event carries its log-probability and this many most likely alternatives (at
    /// temperature 1, before any sampling filter: the model's own distribution).
    public var topLogprobs: Int?
    /// Speculative decoding: up to this many proposed tokens (1-6) verified with the next one in a single forward
    /// step, proposed by `draftModel` or else by prompt lookup. Greedy (the output is the same token for token as
    /// without it) or top-k sampling (each token has plain sampling's distribution); no bias, penalties, grammar or
    /// log-probabilities, else ignored (see `Speculator`).
    public var draftMax: Int? = nil
    /// The draft model that proposes tokens when `draftMax` is set (nil: prompt lookup).
    public var draftModel: DraftModel? = nil
    /// When set, every token is chosen among those the grammar allows next (the others' logits are -inf before the
    /// sampler sees them), and stop tokens only where the grammar may end; generation ends when the grammar is
    /// complete. `LanguageModel.constraint(_:)` binds a grammar to the model's vocabulary.
    public var constraint: TokenConstraint?

    public init(sampling: SamplingParameters = SamplingParameters(), maxTokens: Int = 256, stopStrings: [String] = [],
                ignoreStopTokens: Bool = false, topLogprobs: Int? = nil, constraint: TokenConstraint? = nil) {
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stopStrings = stopStrings
        self.ignoreStopTokens = ignoreStopTokens
        self.topLogprobs = topLogprobs
        self.constraint = constraint
    }
}

/// A token and its log-probability.
public struct TokenLogprob: Sendable, Equatable {
    public var id: Int
    public var logprob: Float
}

/// One generated token.
public struct GeneratedToken: Sendable, Equatable {
    public var id: Int
    /// Natural-log probability of `id` under the model (only with `GenerationParameters.topLogprobs`).
    public var logprob: Float?
    /// The most likely tokens at this step, best first (only with `GenerationParameters.topLogprobs`).
    public var topLogprobs: [TokenLogprob]

    public init(id: Int, logprob: Float?, topLogprobs: [TokenLogprob]) {
        self.id = id
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

/// What a generation reports, in order: `.prefill` progress for long prompts; for each generated token a `.token`
/// and then (when a tokenizer turns tokens into text, unless the token is the stop token that ends generation) one
/// `.text` with the text it releases, possibly empty; at the end, any held-back text as one more `.text`, and
/// `.finished` (not after a cancelled server job: its stream just ends).
public enum GenerationEvent: Sendable, Equatable {
    /// Prefill progress of a long prompt: `done` of `total` new prompt tokens processed (sent between chunks).
    case prefill(done: Int, total: Int)
    case token(GeneratedToken)
    /// Text safe to show: whole UTF-8 characters, never part of a stop string (empty while text is held back).
    case text(String)
    case finished(GenerationStats)
}

/// Counts and timings of one generation.
public struct GenerationStats: Sendable, Equatable {
    /// Tokens in the prompt.
    public var promptTokens: Int
    /// Prompt tokens whose keys and values were already in the cache (a chat turn reuses the conversation so far).
    public var reusedPromptTokens: Int
    /// Prompt tokens run through the model now.
    public var prefilledTokens: Int { promptTokens - reusedPromptTokens }
    /// Tokens generated, a final stop token included.
    public var generatedTokens: Int
    public var promptNanoseconds: UInt64
    public var generateNanoseconds: UInt64
    public var stopReason: StopReason
    /// The stop string that ended generation, if one did.
    public var stopString: String?
    /// Time spent choosing tokens under `GenerationParameters.constraint` beyond plain sampling (grammar masks and
    /// checks), part of `generateNanoseconds`; 0 without a constraint.
    public var constraintNanoseconds: UInt64 = 0
    /// True when generation ended because the grammar was complete (`stopReason` is `.stopToken`, but the last
    /// token is part of the answer, not a stop token).
    public var endedByGrammar = false
    /// The stop token that ended generation is counted in `generatedTokens` but is not part of the answer.
    public var answerTokens: Int { generatedTokens - (stopReason == .stopToken && !endedByGrammar ? 1 : 0) }
    /// Speculative decoding: tokens proposed and tokens of them accepted (0 without it).
    public var draftProposed = 0, draftAccepted = 0

    /// Prefill speed over the tokens actually processed.
    public var promptTokensPerSecond: Double { Double(prefilledTokens) / max(Double(promptNanoseconds) / 1e9, 1e-9) }
    /// Decode speed.
    public var generatedTokensPerSecond: Double {
        Double(generatedTokens) / max(Double(generateNanoseconds) / 1e9, 1e-9)
    }
}

/// The full outcome of `Generator.run`.
public struct GenerationOutcome: Sendable {
    public var stats: GenerationStats
    /// Every sampled token, a final stop token included.
    public var tokens: [Int]
    /// The text shown (stop string and what follows it excluded).
    public var text: String
}

/// Generates from a loaded model.
public struct Generator: Sendable {
    public let model: Gemma3Model
    /// Token ids that end generation (Gemma 3: `<eos>` 1 and `<end_of_turn>` 106).
    public var stopTokens: Set<Int>
    /// Prompts longer than this are prefilled in chunks of this size, with progress reported between chunks.
    public var prefillChunk = 256

    public init(model: Gemma3Model) {
        self.model = model
        stopTokens = Set(model.config.eosTokenIds)
    }

    /// The generation loop over a caller-owned state: the prompt is prefilled after the prefix of the state's cache
    /// that `reuse` keeps, then tokens are sampled until a stop condition.
    ///
    /// - Parameters:
    ///   - prompt: Token ids (BOS first) or other parts.
    ///   - state: Holds the KV cache; after the call it holds the prompt and every generated token but the last.
    ///   - parameters: Sampling, limits, stop strings, log-probabilities.
    ///   - tokenizer: Turns tokens into `.text` events and enables stop strings; nil emits tokens only.
    ///   - reuse: Which cached positions the prompt may keep: `.longest` (default: everything with the same content,
    ///     decoded positions included, as a chat turn wants) or `.exact` (only what gives a cold run's result bit
    ///     for bit, as the server does).
    ///   - snapshot: Save the cache's rings after the prompt, so that a later prompt that shares the prompt but not
    ///     the reply (a chat turn whose reply was re-encoded) can come back to this point without a full prefill.
    ///   - isCancelled: Polled before each model step; true ends generation with `.cancelled` within one step.
    ///   - emit: Receives the events, in order, on the calling thread.
    /// - Returns: The statistics (also emitted as `.finished`), every sampled token, and the text shown.
    /// - Throws: `ModelError.input` for an empty prompt, a bad token id or a prompt longer than the state's context.
    public func run(prompt: Prompt, state: Gemma3State, parameters: GenerationParameters, tokenizer: Tokenizer?,
                    reuse: PrefixReuse = .longest, snapshot: Bool = false, isCancelled: () -> Bool = { false },
                    emit: (GenerationEvent) -> Void) throws(ModelError) -> GenerationOutcome {
        guard !prompt.isEmpty else { throw .input("the prompt is empty (at least BOS is needed)") }
        let capacity = state.cache.capacity
        guard prompt.count < capacity else {
            throw .input("the prompt has \(prompt.count) tokens but the context holds \(capacity) (one more is needed to generate)")
        }
        var cursor = GenerationCursor(prompt: prompt.tokenIDs, parameters: parameters, stopTokens: stopTokens,
                                      tokenizer: tokenizer, room: capacity - prompt.count)

        // Prefill: keep the reusable prefix, run the rest a chunk at a time, snapshot the rings if asked.
        let t0 = DispatchTime.now().uptimeNanoseconds
        var prefill = try Prefill(prompt, model: model, state: state, chunk: prefillChunk, reuse: reuse, snapshot: snapshot)
        let reused = prefill.reused, total = prompt.count - reused
        var reason: StopReason? = nil
        while !prefill.isComplete {
            if isCancelled() { reason = .cancelled; break }
            try prefill.runChunk { cursor.accept($0) }
            if total > prefillChunk { emit(.prefill(done: prefill.done - reused, total: total)) }
        }
        let t1 = DispatchTime.now().uptimeNanoseconds

        var tokens: [Int] = []
        var text = ""
        func show(_ event: GenerationEvent) {
            if case let .text(s) = event { text += s }
            emit(event)
        }
        if reason == nil && cursor.limit == 0 { reason = .length }
        var step = [0]  // reused for every decode step
        var speculator = Speculator(parameters: parameters, prompt: prompt, capacity: capacity)
        defer { speculator?.close() }
        while reason == nil {
            tokens.append(cursor.next)
            reason = cursor.emit(isCancelled: isCancelled, show)
            if reason != nil { break }
            if isCancelled() { reason = .cancelled; break }
            if speculator != nil {
                let proposals = speculator!.propose(for: cursor, cache: state.cache)
                if !proposals.isEmpty {
                    // One step over the token to run and the proposals; each row's logits are what decoding them one
                    // at a time gives (the same row kernels and attention). Rejected rows leave the cache.
                    var kept = 0, matching = true
                    try model.forward([cursor.next] + proposals, state: state, logits: .all) { i, l in
                        guard matching, reason == nil else { return }
                        kept = i + 1
                        if speculator!.verify(row: i, l, cursor: &cursor) {
                            tokens.append(cursor.next)
                            reason = cursor.emit(isCancelled: isCancelled, show)
                        } else {
                            matching = false
                        }
                    }
                    speculator!.finishStep(kept: kept, cache: state.cache)
                    continue
                }
            }
            step[0] = cursor.next
            try model.forward(step, state: state, logits: .last) { _, l in cursor.accept(l) }
        }
        let final = cursor.finish(reason ?? .length, show)
        let t2 = DispatchTime.now().uptimeNanoseconds
        var stats = cursor.stats(final, promptTokens: prompt.count, reusedPromptTokens: reused,
                                 promptNanoseconds: t1 - t0, generateNanoseconds: t2 - t1)
        stats.draftProposed = speculator?.proposed ?? 0
        stats.draftAccepted = speculator?.accepted ?? 0
        emit(.finished(stats))
        return GenerationOutcome(stats: stats, tokens: tokens, text: text)
    }
}
