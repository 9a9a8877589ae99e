// One generation request as the scheduler sees it: prompt tokens, parameters, the stream its events go to, and a
// cancellation flag that the HTTP side raises when the client goes away.
import GemmaGenerate
import GemmaModel
import Synchronization

/// What a job reports, in order: zero or more `.token`, then exactly one `.finished` or `.failed`.
public enum JobEvent: Sendable {
    /// A generated token (never a stop token) and the text it releases (possibly empty: text is held back while it
    /// could still be part of a stop string or of a UTF-8 character).
    case token(TokenInfo, text: String)
    case finished(JobSummary)
    case failed(APIError)
}

/// A generated token with its log-probability and the most likely alternatives (when asked for).
public struct TokenInfo: Sendable {
    public var id: Int
    public var logprob: Float?
    public var topLogprobs: [TokenLogprob]
}

/// How a job ended.
public struct JobSummary: Sendable {
    /// Text released at the end (held back until then).
    public var text: String
    public var reason: StopReason
    public var promptTokens: Int
    public var reusedPromptTokens: Int
    /// Tokens generated, a final stop token included.
    public var generatedTokens: Int
    public var slot: Int

    /// OpenAI's finish_reason.
    public var finishReason: String { reason == .length ? "length" : "stop" }
}

/// A request waiting for, or holding, a slot.
public final class Job: Sendable {
    public let id: Int
    public let tokens: [Int]
    public let parameters: GenerationParameters
    /// The tokens as the model takes them.
    let prompt: Prompt
    let continuation: AsyncStream<JobEvent>.Continuation
    let enqueued: ContinuousClock.Instant
    private let cancelled = Atomic<Bool>(false)
    /// The scheduler's decode-step count when the job was cancelled (for the "freed within one step" evidence).
    let cancelledAtStep = Atomic<Int>(-1)
    private let onCancel: @Sendable (Job) -> Void

    init(id: Int, tokens: [Int], parameters: GenerationParameters, continuation: AsyncStream<JobEvent>.Continuation,
         onCancel: @escaping @Sendable (Job) -> Void) {
        self.id = id
        self.tokens = tokens
        prompt = Prompt(tokens: tokens)
        self.parameters = parameters
        self.continuation = continuation
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
