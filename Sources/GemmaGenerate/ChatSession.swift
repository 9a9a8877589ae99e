// A conversation that keeps its KV cache between turns: the history is kept as the exact token ids the model saw
// (a reply is stored as the ids it generated, not re-encoded text), so each new turn shares the whole conversation
// as a cached prefix and only the new turn is prefilled (plus the reply's last token when the reply ended without
// <end_of_turn>: it was sampled but never run through the model). When the context would overflow, the oldest
// turns are dropped (the system text moves to the new first user turn and the conversation is prefilled again)
// or, by choice, the turn is refused with `ChatError.contextFull`.
import Dispatch
import GemmaModel
import GemmaTokenizer
import Synchronization

/// Errors of a chat turn.
public enum ChatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The conversation plus room for the reply does not fit the session's context.
    case contextFull(needed: Int, capacity: Int)

    public var description: String {
        switch self {
        case let .contextFull(needed, capacity):
            "the conversation needs \(needed) tokens (history, new message and room for the reply) but the context holds \(capacity); reset the conversation, shorten the message or lower max tokens"
        }
    }
}

/// A multi-turn conversation in Gemma 3's chat format over one KV cache.
///
/// Turns run one at a time in the order `send` was called; a turn sent while another is still running waits for it.
///
/// ```swift
/// let chat = model.makeChatSession(system: "Answer briefly.")
/// for try await event in chat.send("Name a prime number.") {
///     if case let .text(piece) = event { print(piece, terminator: "") }
/// }
/// for try await event in chat.send("And another one?") {   // only this turn is prefilled
///     if case let .finished(stats) = event { print("\nprefilled \(stats.prefilledTokens) tokens") }
/// }
/// ```
public final class ChatSession: Sendable {
    /// What to do when a turn would not fit the context.
    public enum OverflowPolicy: Sendable, Equatable {
        /// Throw `ChatError.contextFull`.
        case error
        /// Drop the oldest user/model exchanges until the conversation and `maxTokens` of reply fit; the system text
        /// is kept (folded into the new first user turn). Only a single turn too long by itself is refused.
        case dropOldestTurns
    }

    public let model: LanguageModel
    /// Text folded into the first user turn.
    public let system: String?
    /// Positions of the session's KV cache.
    public let contextLength: Int
    public let overflow: OverflowPolicy

    /// A closed turn and the exact tokens the model saw for it.
    struct Entry: Sendable {
        var message: ChatMessage
        var tokens: [Int]
    }

    struct History: Sendable {
        var entries: [Entry] = []
        var droppedTurns = 0
    }

    private let history = Mutex(History())
    /// Serializes turns: held by the thread running a turn, and by `reset`.
    private let turnLock = DispatchSemaphore(value: 1)
    private let engine: Engine

    /// Creates a session; prefer `LanguageModel.makeChatSession`.
    public init(model: LanguageModel, system: String? = nil, contextLength: Int, overflow: OverflowPolicy = .dropOldestTurns) {
        self.model = model
        self.system = system.flatMap { $0.isEmpty ? nil : $0 }
        self.contextLength = max(2, min(contextLength, model.contextLength))
        self.overflow = overflow
        engine = Engine(model.model.makeState(capacity: self.contextLength))
    }

    /// The conversation so far (system message first when there is one).
    public var messages: [ChatMessage] {
        let entries = history.withLock { $0.entries.map(\.message) }
        return (system.map { [ChatMessage.system($0)] } ?? []) + entries
    }

    /// The token ids of the conversation so far: BOS and every closed turn.
    public var tokens: [Int] { bosTokens + history.withLock { $0.entries.flatMap(\.tokens) } }

    /// User/model exchanges dropped so far to fit the context.
    public var droppedTurns: Int { history.withLock { $0.droppedTurns } }

    /// Forgets the conversation (waits for a running turn to end). The cache keeps whatever prefix a new
    /// conversation shares with the old one.
    public func reset() {
        turnLock.wait()
        defer { turnLock.signal() }
        history.withLock { $0 = History() }
    }

    /// The prompt a message would be sent with: the conversation so far, the user turn and `<start_of_turn>model\n`.
    public func prompt(for text: String) -> [Int] {
        let entries = history.withLock { $0.entries }
        return assemble(entries, userEntry(text, first: entries.isEmpty))
    }

    /// Sends a user message and streams the reply. The reply joins the history when the turn ends, however it
    /// ends (a cancelled reply is kept as far as it went).
    ///
    /// - Parameters:
    ///   - text: The user's message.
    ///   - parameters: Sampling and limits of the reply; `<end_of_turn>` ends it.
    /// - Returns: The events of the reply; the `.finished` stats report how many prompt tokens were reused from the
    ///   cache and how many were prefilled.
    public func send(_ text: String, _ parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        LanguageModel.stream { isCancelled, emit in
            self.turnLock.wait()
            defer { self.turnLock.signal() }
            try self.turn(text, parameters, isCancelled: isCancelled, emit: emit)
        }
    }

    private func turn(_ text: String, _ parameters: GenerationParameters, isCancelled: () -> Bool,
                      emit: (GenerationEvent) -> Void) throws {
        var entries = history.withLock { $0.entries }
        var user = userEntry(text, first: entries.isEmpty)
        var prompt = assemble(entries, user)
        let room = min(max(parameters.maxTokens, 1), contextLength - 1)
        var dropped = 0
        while prompt.count + room > contextLength {
            guard overflow == .dropOldestTurns, !entries.isEmpty else {
                if entries.isEmpty && prompt.count < contextLength && overflow == .dropOldestTurns { break }
                throw ChatError.contextFull(needed: prompt.count + room, capacity: contextLength)
            }
            // Drop the oldest exchange (a user turn and the model turn after it).
            entries.removeFirst(min(2, entries.count))
            dropped += 1
            if let first = entries.first {
                entries[0] = userEntry(first.message.content, first: true)
            } else {
                user = userEntry(text, first: true)
            }
            prompt = assemble(entries, user)
        }

        var finished: GenerationStats? = nil
        let outcome = try model.generator.run(prompt: Prompt(tokens: prompt), state: engine.state, parameters: parameters,
                                              tokenizer: model.tokenizer, reuse: .longest, snapshot: true,
                                              isCancelled: isCancelled) { event in
            if case let .finished(stats) = event { finished = stats } else { emit(event) }
        }
        // The reply as the model saw it: generated ids (the stop token becomes the template's <end_of_turn>);
        // after a stop string, the shown text re-encoded, since the stop string's tokens are not part of the reply.
        let tk = model.tokenizer
        let replyIDs: [Int] = switch outcome.stats.stopReason {
        case .stopToken: Array(outcome.tokens.dropLast())
        case .stopString: ChatTemplate.encode(outcome.text, tk)
        case .length, .cancelled: outcome.tokens
        }
        let reply = Entry(message: .model(outcome.text),
                          tokens: ChatTemplate.generationPrompt(tokenizer: tk) + replyIDs + ChatTemplate.closingTokens(tokenizer: tk))
        history.withLock {
            $0.entries = entries + [user, reply]
            $0.droppedTurns += dropped
        }
        if let finished { emit(.finished(finished)) }
    }

    private var bosTokens: [Int] { [Int(model.tokenizer.vocabulary.bosID ?? 2)] }

    private func userEntry(_ text: String, first: Bool) -> Entry {
        let content = first ? (system.map { $0 + "\n\n" + text } ?? text) : text
        return Entry(message: .user(text), tokens: ChatTemplate.turnTokens(role: .user, content: content, tokenizer: model.tokenizer))
    }

    private func assemble(_ entries: [Entry], _ user: Entry) -> [Int] {
        bosTokens + entries.flatMap(\.tokens) + user.tokens + ChatTemplate.generationPrompt(tokenizer: model.tokenizer)
    }
}

/// The session's per-sequence state. Not thread-safe by itself: only the thread holding the session's turn lock
/// touches it.
private final class Engine: @unchecked Sendable {
    let state: Gemma3State
    init(_ state: Gemma3State) { self.state = state }
}
