// A conversation that keeps its KV cache between turns: the history is kept as the exact prompt parts the model saw
// (token ids, and each image's soft tokens keyed by its content; a reply is stored as the ids it generated, not
// re-encoded text), so each new turn shares the whole conversation, images included, as a cached prefix and only the
// new turn is prefilled (plus the reply's last token when the reply ended without
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

    /// A closed turn and exactly what the model saw for it: token ids and image soft tokens.
    struct Entry: Sendable {
        var message: ChatMessage
        var parts: [PromptPart]
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
        // Steps of a state hold a bidirectional span whole: an image view's soft tokens are one step.
        let rows = max(64, model.vision?.config.mmTokensPerImage ?? 0)
        engine = Engine(model.model.makeState(capacity: self.contextLength, maxBatch: rows))
    }

    /// The conversation so far (system message first when there is one).
    public var messages: [ChatMessage] {
        let entries = history.withLock { $0.entries.map(\.message) }
        return (system.map { [ChatMessage.system($0)] } ?? []) + entries
    }

    /// The token ids of the conversation so far: BOS and every closed turn (an image's soft tokens as its placeholder
    /// id).
    public var tokens: [Int] { bosTokens + Prompt(history.withLock { $0.entries.flatMap(\.parts) }).tokenIDs }

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
    public func prompt(for text: String) -> [Int] { prompt(for: .user(text)).tokenIDs }

    /// The prompt a message of text and images would be sent with.
    public func prompt(parts: [ChatContent]) -> Prompt { prompt(for: ChatMessage(.user, parts: parts)) }

    private func prompt(for message: ChatMessage) -> Prompt {
        let entries = history.withLock { $0.entries }
        return assemble(entries, userEntry(message, first: entries.isEmpty))
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
        send(message: .user(text), parameters)
    }

    /// Sends a user message of text and images, in order (images from `LanguageModel.embedImage`), and streams the
    /// reply. The images stay in the history as their soft tokens, keyed by content: later turns reuse their cached
    /// positions instead of running them again.
    ///
    /// ```swift
    /// let photo = try model.embedImage(bytes: ImageSource.bytes(of: "cat.jpg"))
    /// for try await event in chat.send(parts: [.image(photo), .text("What is this?")]) { ... }
    /// for try await event in chat.send("What colour is it?") { ... }   // the image is reused from the cache
    /// ```
    /// - Throws (in the stream): `ModelError.input` when the model reads no images.
    public func send(parts: [ChatContent], _ parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<GenerationEvent, any Error> {
        send(message: ChatMessage(.user, parts: parts), parameters)
    }

    private func send(message: ChatMessage, _ parameters: GenerationParameters) -> AsyncThrowingStream<GenerationEvent, any Error> {
        LanguageModel.stream { isCancelled, emit in
            self.turnLock.wait()
            defer { self.turnLock.signal() }
            try self.turn(message, parameters, isCancelled: isCancelled, emit: emit)
        }
    }

    private func turn(_ message: ChatMessage, _ parameters: GenerationParameters, isCancelled: () -> Bool,
                      emit: (GenerationEvent) -> Void) throws {
        if !message.images.isEmpty { _ = try model.requireVision() }
        var entries = history.withLock { $0.entries }
        var user = userEntry(message, first: entries.isEmpty)
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
                entries[0] = userEntry(first.message, first: true)
            } else {
                user = userEntry(message, first: true)
            }
            prompt = assemble(entries, user)
        }

        var finished: GenerationStats? = nil
        let outcome = try model.generator.run(prompt: prompt, state: engine.state, parameters: parameters,
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
                          parts: [.tokens(ChatTemplate.generationPrompt(tokenizer: tk) + replyIDs + ChatTemplate.closingTokens(tokenizer: tk))])
        history.withLock {
            $0.entries = entries + [user, reply]
            $0.droppedTurns += dropped
        }
        if let finished { emit(.finished(finished)) }
    }

    private var bosTokens: [Int] { [Int(model.tokenizer.vocabulary.bosID ?? 2)] }

    /// A user turn: text as the template's token ids; with images, as `ChatTemplate.prompt` renders it (the same ids
    /// for the text, each image's soft tokens where it stands). The first turn carries the system text.
    private func userEntry(_ message: ChatMessage, first: Bool) -> Entry {
        let system = first ? self.system : nil
        guard let parts = message.parts, !message.images.isEmpty else {
            let content = system.map { $0 + "\n\n" + message.content } ?? message.content
            return Entry(message: message, parts: [.tokens(ChatTemplate.turnTokens(role: .user, content: content, tokenizer: model.tokenizer))])
        }
        var b = PromptBuilder(tokenizer: model.tokenizer, imageTokens: model.imageTokens ?? ImageTokens())
        ChatTemplate.appendTurn(role: .user, parts: (system.map { [.text($0 + "\n\n")] } ?? []) + parts, to: &b)
        return Entry(message: message, parts: b.build().parts)
    }

    private func assemble(_ entries: [Entry], _ user: Entry) -> Prompt {
        Prompt([.tokens(bosTokens)] + entries.flatMap(\.parts) + user.parts
               + [.tokens(ChatTemplate.generationPrompt(tokenizer: model.tokenizer))])
    }
}

/// The session's per-sequence state. Not thread-safe by itself: only the thread holding the session's turn lock
/// touches it.
private final class Engine: @unchecked Sendable {
    let state: Gemma3State
    init(_ state: Gemma3State) { self.state = state }
}
