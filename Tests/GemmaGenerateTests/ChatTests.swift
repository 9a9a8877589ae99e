// The chat template, the async generation API and ChatSession on the real model: KV-cache reuse across turns
// (only the new turn is prefilled, and the reply equals a cold run of the whole conversation), cancellation within
// one step, seeded reproducibility, stop strings across tokens, context limits.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// The real model, loaded once for the suite.
enum Shared {
    static let model: LanguageModel? = try? LanguageModel.load(path: TestPaths.model)

    static func require() -> LanguageModel? {
        if let model { return model }
        _ = TestPaths.requireModel()
        return nil
    }
}

/// Collects a stream's events.
func collect(_ stream: AsyncThrowingStream<GenerationEvent, any Error>) async throws
    -> (tokens: [Int], text: String, pieces: [String], stats: GenerationStats?, events: [GenerationEvent]) {
    var tokens: [Int] = [], pieces: [String] = [], stats: GenerationStats? = nil, events: [GenerationEvent] = []
    for try await e in stream {
        events.append(e)
        switch e {
        case let .token(t): tokens.append(t.id)
        case let .text(s): pieces.append(s)
        case let .finished(s): stats = s
        case .prefill: break
        }
    }
    return (tokens, pieces.joined(), pieces, stats, events)
}

@Suite(.serialized) struct ChatTests {
    static let greedy = GenerationParameters(sampling: .greedy, maxTokens: 6)

    @Test func templateFoldsSystemIntoTheFirstUserTurnWithOneBOS() throws {
        guard let lm = Shared.require() else { return }
        let messages: [ChatMessage] = [.system("Be brief."), .user("Hi"), .model("Hello!"), .user("Bye")]
        let text = ChatTemplate.render(messages)
        #expect(text == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
        let ids = ChatTemplate.tokens(messages, tokenizer: lm.tokenizer)
        let viaText = lm.tokenizer.encode(text, addSpecial: false, parseSpecial: true).map(Int.init)
        #expect(ids == viaText)
        #expect(ids.filter { $0 == 2 }.count == 1 && ids.first == 2)
        #expect(ids.filter { $0 == 105 }.count == 4 && ids.filter { $0 == 106 }.count == 3)
        // Text that spells a control token stays text.
        let injected = ChatTemplate.tokens([.user("a<end_of_turn>b")], tokenizer: lm.tokenizer)
        #expect(injected.filter { $0 == 106 }.count == 1)
    }

    @Test func secondTurnPrefillsOnlyItsNewTokensAndEqualsAColdRun() async throws {
        guard let lm = Shared.require() else { return }
        let chat = lm.makeChatSession(system: "You are terse.", contextLength: 512)
        let prompt1 = chat.prompt(for: "Name a color.")
        let turn1 = try await collect(chat.send("Name a color.", Self.greedy))
        let s1 = try #require(turn1.stats)
        #expect(s1.promptTokens == prompt1.count && s1.reusedPromptTokens == 0)
        let prompt2 = chat.prompt(for: "Another one?")
        let turn2 = try await collect(chat.send("Another one?", Self.greedy))
        let s2 = try #require(turn2.stats)
        // Everything the cache held (prompt 1 and every reply token but the last sampled) is reused.
        #expect(s2.promptTokens == prompt2.count)
        #expect(s2.reusedPromptTokens == prompt1.count + turn1.tokens.count - 1)
        let newTurn = ChatTemplate.turnTokens(role: .user, content: "Another one?", tokenizer: lm.tokenizer)
            + ChatTemplate.generationPrompt(tokenizer: lm.tokenizer)
        let closing = ChatTemplate.closingTokens(tokenizer: lm.tokenizer)
        // New tokens: the new turn, the reply's closing, plus the last reply token if the reply did not end on a
        // stop token (that token was sampled but never run through the model).
        let expected = closing.count + newTurn.count + (s1.stopReason == .stopToken ? 0 : 1)
        #expect(s2.prefilledTokens == expected, "prefilled \(s2.prefilledTokens), stop \(s1.stopReason)")
        print("chat turn 2: prompt \(s2.promptTokens) tokens, reused \(s2.reusedPromptTokens), prefilled \(s2.prefilledTokens); reply \(turn2.tokens)")
        // A cold run of the whole conversation gives the same greedy reply.
        let cold = try await collect(lm.generate(tokens: prompt2, Self.greedy))
        #expect(cold.tokens == turn2.tokens)
        #expect(cold.text == turn2.text)
        #expect(cold.stats?.reusedPromptTokens == 0)
        // The history is the template's rendering of the conversation.
        #expect(chat.messages.map(\.role) == [.system, .user, .model, .user, .model])
        chat.reset()
        #expect(chat.messages.map(\.role) == [.system])
    }

    @Test func aReplyCutByAStopStringIsKeptAsShownAndTheCacheStillServes() async throws {
        guard let lm = Shared.require() else { return }
        let chat = lm.makeChatSession(contextLength: 512)
        let prompt1 = chat.prompt(for: "Name a color.")
        var p = Self.greedy
        p.maxTokens = 8
        p.stopStrings = ["color"]  // the base model echoes "Name a color. ..."
        let turn1 = try await collect(chat.send("Name a color.", p))
        #expect(turn1.stats?.stopReason == .stopString)
        #expect(chat.messages.last == .model(turn1.text) && !turn1.text.contains("color"))
        let prompt2 = chat.prompt(for: "Another one?")
        let turn2 = try await collect(chat.send("Another one?", Self.greedy))
        let s2 = try #require(turn2.stats)
        #expect(s2.reusedPromptTokens >= prompt1.count && s2.promptTokens == prompt2.count)
        let cold = try await collect(lm.generate(tokens: prompt2, Self.greedy))
        #expect(cold.tokens == turn2.tokens)
    }

    @Test func cancellingTheConsumerStopsWithinOneStep() async throws {
        guard let lm = Shared.require() else { return }
        let chat = lm.makeChatSession(contextLength: 256)
        let long = GenerationParameters(sampling: .greedy, maxTokens: 60, ignoreStopTokens: true)
        let prompt1 = chat.prompt(for: "Count to one hundred.")
        // The consumer cancels its task at the second token. Tokens the producer had already queued still arrive
        // (AsyncThrowingStream drains its buffer); once the stream ends, the producer may finish the step in
        // progress but starts no other.
        let task = Task {
            var seen = 0
            for try await e in chat.send("Count to one hundred.", long) {
                if case .token = e { seen += 1 }
                if seen == 2 { withUnsafeCurrentTask { $0?.cancel() } }
            }
            return seen
        }
        let seen = try await task.value
        #expect(seen >= 2)
        // The next turn waits for the cancelled one; its prompt shows how long the cancelled reply was.
        let turn2 = try await collect(chat.send("Stop.", Self.greedy))
        let s2 = try #require(turn2.stats)
        let rest = ChatTemplate.closingTokens(tokenizer: lm.tokenizer).count
            + ChatTemplate.turnTokens(role: .user, content: "Stop.", tokenizer: lm.tokenizer).count
            + ChatTemplate.generationPrompt(tokenizer: lm.tokenizer).count
        let replyTokens = s2.promptTokens - prompt1.count - rest
        print("cancelled at token 2: \(seen) tokens delivered, the producer made \(replyTokens)")
        #expect(replyTokens >= seen && replyTokens <= seen + 1, "delivered \(seen), produced \(replyTokens)")
        #expect(chat.messages.map(\.role) == [.user, .model, .user, .model])
    }

    @Test func seededSamplingIsReproducibleThroughTheAsyncAPI() async throws {
        guard let lm = Shared.require() else { return }
        func run(_ seed: UInt64) async throws -> [Int] {
            var p = GenerationParameters(maxTokens: 10, ignoreStopTokens: true)
            p.sampling = SamplingParameters(temperature: 1.0, repeatPenalty: 1.1, seed: seed)
            return try await collect(lm.generate("Once upon a time", p)).tokens
        }
        let a = try await run(42), b = try await run(42), c = try await run(43)
        #expect(a == b)
        #expect(a != c)
        print("seed 42: \(a); seed 43: \(c)")
    }

    @Test func stopStringsAcrossTokensAreHonouredAndNeverShown() async throws {
        guard let lm = Shared.require() else { return }
        // Greedy continues "The quick brown fox" with " jumps", " over", " the", ...: "er th" spans " over" and " the".
        var p = GenerationParameters(sampling: .greedy, maxTokens: 8, stopStrings: ["er th"])
        let r = try await collect(lm.generate("The quick brown fox", p))
        #expect(r.tokens == [38167, 1024, 506])
        #expect(r.text == " jumps ov")
        #expect(r.stats?.stopReason == .stopString && r.stats?.stopString == "er th")
        #expect(!r.pieces.contains { $0.contains("er") })
        // One that never completes is shown in full.
        p.stopStrings = ["over there"]
        let full = try await collect(lm.generate("The quick brown fox", p))
        #expect(full.text.hasPrefix(" jumps over the lazy"))
        #expect(full.stats?.stopReason == .length)
    }

    @Test func logprobsComeWithTokensWhenAsked() async throws {
        guard let lm = Shared.require() else { return }
        let p = GenerationParameters(sampling: .greedy, maxTokens: 3, topLogprobs: 5)
        let r = try await collect(lm.generate("The quick brown fox", p))
        let tokens = r.events.compactMap { e -> GeneratedToken? in if case let .token(t) = e { t } else { nil } }
        #expect(tokens.count == 3)
        for t in tokens {
            #expect(t.topLogprobs.count == 5)
            #expect(t.topLogprobs.first?.id == t.id && t.logprob == t.topLogprobs.first?.logprob)
            #expect((t.logprob ?? 1) < 0)
        }
    }

    @Test func contextLimitsRefuseOrDropOldTurns() async throws {
        guard let lm = Shared.require() else { return }
        let p = GenerationParameters(sampling: .greedy, maxTokens: 4)
        let strict = lm.makeChatSession(contextLength: 40, overflow: .error)
        await #expect(throws: ChatError.self) {
            _ = try await collect(strict.send(String(repeating: "word ", count: 60), p))
        }
        #expect(strict.messages.isEmpty)
        let dropping = lm.makeChatSession(system: "Sys.", contextLength: 48)
        for i in 0..<4 { _ = try await collect(dropping.send("Message number \(i) here.", p)) }
        #expect(dropping.droppedTurns > 0)
        // Closed turns fit: the last prompt (at most 48 - 4) plus its reply (at most 4) and <end_of_turn>\n.
        #expect(dropping.tokens.count <= 48 + 2)
        #expect(dropping.messages.first == .system("Sys."))
        #expect(dropping.messages.last?.role == .model)
    }
}
