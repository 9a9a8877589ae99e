// The generation loop's state, one token at a time: the sampler (its penalty window fed with the prompt), log-
// probabilities, stop tokens, stop strings, the streaming detokenizer and the token limit. `Generator.run` steps one
// cursor alone; the server's scheduler steps one per slot and batches their model steps (`BatchDecoder`). Either way
// a token goes through the same three calls, so the same logits give the same tokens, events and statistics.
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
    }

    /// Chooses the next token from the logits of the last position run (and its log-probabilities when asked for).
    public mutating func accept(_ logits: UnsafeBufferPointer<Float>) {
        next = sampler.sample(logits)
        if let n = topLogprobs { nextLogprobs = Sampler.logprobs(logits, chosen: next, top: n) }
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
                        stopReason: reason, stopString: stopString)
    }
}
