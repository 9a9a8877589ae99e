// One generation request as the scheduler sees it: its prompt (token ids, and the soft tokens of its images),
// parameters, the stream its events go to, and a cancellation flag that the HTTP side raises when the client goes away.
import GemmaGenerate
import GemmaModel
import Synchronization

/// A request waiting for, or holding, a slot. Its stream carries the generation's own events (`GenerationEvent`,
/// as `Generator.run` emits them; no `.prefill` progress): for each token a `.token` and, unless it is the stop token
/// that ends generation, one `.text` with the text it releases (possibly empty: text is held back while it could
/// still be part of a stop string or of a UTF-8 character); then any held-back text as one more `.text`, and
/// `.finished`. A failed job's stream throws an `APIError`; a cancelled job's stream just ends.
public final class Job: Sendable {
    public let id: Int
    /// Token ids and image soft tokens, as the model takes them.
    public let prompt: Prompt
    public let parameters: GenerationParameters
    /// One stream per choice (OpenAI's `n`): the choices run one after another in the job's slot from one prefill
    /// (its cache restored to the prompt between them), choice i sampled with seed + i.
    let continuations: [AsyncThrowingStream<GenerationEvent, any Error>.Continuation]
    /// The choice being generated (model thread only).
    private let currentChoice = Atomic<Int>(0)
    var choices: Int { continuations.count }
    var choice: Int { currentChoice.load(ordering: .relaxed) }
    /// The stream of the choice being generated.
    var continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation { continuations[choice] }
    /// Moves to the next choice; false when this was the last.
    func nextChoice() -> Bool {
        let c = choice
        guard c + 1 < continuations.count else { return false }
        currentChoice.store(c + 1, ordering: .relaxed)
        return true
    }
    /// Ends every stream not yet ended (cancellation, failure, shutdown).
    func finishAll(throwing error: (any Error)? = nil) {
        for c in continuations[choice...] {
            if let error { c.finish(throwing: error) } else { c.finish() }
        }
    }
    let enqueued: ContinuousClock.Instant
    private let cancelled = Atomic<Bool>(false)
    /// The scheduler's decode-step count when the job was cancelled (for the "freed within one step" evidence).
    let cancelledAtStep = Atomic<Int>(-1)
    private let onCancel: @Sendable (Job) -> Void
    /// With `scorePrompt`, the prompt is run cold with logits at every position and each prompt token after the
    /// first gets its log-probability (and this many alternatives) in `promptScores`, set before the first event.
    public let scorePrompt: Int?
    public let promptScores = Mutex<[GeneratedToken]>([])
    /// An embedding job: the prompt is run once, cold, and `embedding` gets the mean of its positions' final-normed
    /// hidden states, scaled to unit length; nothing is generated.
    public let embed: Bool
    public let embedding = Mutex<[Float]>([])

    init(id: Int, prompt: Prompt, parameters: GenerationParameters, scorePrompt: Int? = nil, embed: Bool = false,
         continuations: [AsyncThrowingStream<GenerationEvent, any Error>.Continuation], onCancel: @escaping @Sendable (Job) -> Void) {
        self.id = id
        self.prompt = prompt
        self.parameters = parameters
        self.scorePrompt = scorePrompt
        self.embed = embed
        self.continuations = continuations
        self.onCancel = onCancel
        enqueued = .now
    }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Stops the job: a waiting job leaves the queue, a running one frees its slot before the next decode step.
    public func cancel() {
        let (exchanged, _) = cancelled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
        if exchanged { onCancel(self) }
    }
}

extension GenerationStats {
    /// OpenAI's finish_reason.
    var finishReason: String { stopReason == .length ? "length" : "stop" }
}
