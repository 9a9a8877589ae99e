// A chat session with an image, on the tiny vision fixture (Tests/Fixtures/gemma3-tiny-vision): the first turn's
// prompt is the processor's (fixtures.json input_ids), the image stays in the history as its soft tokens, the second
// turn reuses the cached conversation (the image included) and prefills only its new tokens, and every reply is a
// cold run's of the same prompt. Text-only models refuse an image part.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct ChatImageTests {
    static let folder = TestPaths.fixtures + "/gemma3-tiny-vision"
    static let loaded = Result { try LanguageModel.load(path: folder, options: ModelOptions(threads: 2)) }
    static let greedy = GenerationParameters(sampling: .greedy, maxTokens: 6)

    static func image(_ lm: LanguageModel, _ name: String = "wide.png") throws -> PromptImage {
        try lm.embedImage(bytes: try ImageSource.bytes(of: folder + "/images/" + name))
    }

    static func processorIDs() throws -> [Int] {
        let data = try #require(FileManager.default.contents(atPath: folder + "/fixtures.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(((json["processor"] as? [String: Any])?["single"] as? [String: Any])?["input_ids"] as? [Int])
    }

    @Test func theImageStaysInTheHistoryAndTheSecondTurnReusesIt() async throws {
        let lm = try Self.loaded.get()
        let image = try Self.image(lm)
        let chat = lm.makeChatSession(contextLength: 256)
        let parts: [ChatContent] = [.image(image), .text("Describe this image.")]
        let prompt1 = chat.prompt(parts: parts)
        #expect(prompt1.tokenIDs == (try Self.processorIDs()), "the processor's ids for one image and the question")
        let turn1 = try await collect(chat.send(parts: parts, Self.greedy))
        let s1 = try #require(turn1.stats)
        #expect(s1.promptTokens == 32 && s1.reusedPromptTokens == 0)
        let cold1 = try await collect(lm.generate(prompt: prompt1, Self.greedy))
        #expect(cold1.tokens == turn1.tokens)

        // The history holds the image: its soft tokens, keyed by the image's content.
        #expect(chat.messages.count == 2 && chat.messages[0].images == [image])
        #expect(chat.tokens.filter { $0 == 262 }.count == 16)

        let prompt2 = chat.prompt(parts: [.text("What colour is it?")])
        #expect(prompt2.bidirectionalSpans == prompt1.bidirectionalSpans)
        let turn2 = try await collect(chat.send("What colour is it?", Self.greedy))
        let s2 = try #require(turn2.stats)
        #expect(s2.promptTokens == prompt2.count)
        // Everything the cache held is reused: the first prompt, image included, and the reply but its last token.
        #expect(s2.reusedPromptTokens == prompt1.count + turn1.tokens.count - 1)
        let newTurn = ChatTemplate.closingTokens(tokenizer: lm.tokenizer).count
            + ChatTemplate.turnTokens(role: .user, content: "What colour is it?", tokenizer: lm.tokenizer).count
            + ChatTemplate.generationPrompt(tokenizer: lm.tokenizer).count
        #expect(s2.prefilledTokens == newTurn + (s1.stopReason == .stopToken ? 0 : 1))
        let cold2 = try await collect(lm.generate(prompt: prompt2, Self.greedy))
        #expect(cold2.tokens == turn2.tokens)
        #expect(cold2.stats?.reusedPromptTokens == 0)
        print("chat with an image: turn 1 prompt \(s1.promptTokens); turn 2 prompt \(s2.promptTokens), reused \(s2.reusedPromptTokens), prefilled \(s2.prefilledTokens)")

        // A different image in the third turn is new content: nothing after the conversation so far is reused.
        let other = try Self.image(lm, "tall.png")
        let prompt3 = chat.prompt(parts: [.image(other), .text("And this one?")])
        let turn3 = try await collect(chat.send(parts: [.image(other), .text("And this one?")], Self.greedy))
        let s3 = try #require(turn3.stats)
        #expect(s3.promptTokens == prompt3.count && s3.reusedPromptTokens == prompt2.count + turn2.tokens.count - 1)
        #expect(chat.messages.flatMap(\.images) == [image, other])
        #expect(try await collect(lm.generate(prompt: prompt3, Self.greedy)).tokens == turn3.tokens)
    }

    @Test func theSystemTextGoesBeforeTheImage() async throws {
        let lm = try Self.loaded.get()
        let image = try Self.image(lm)
        let chat = lm.makeChatSession(system: "Be brief.", contextLength: 256)
        let parts: [ChatContent] = [.image(image), .text("Describe this image.")]
        let expected = ChatTemplate.prompt([.system("Be brief."), ChatMessage(.user, parts: parts)], tokenizer: lm.tokenizer,
                                           imageTokens: try #require(lm.imageTokens))
        let prompt = chat.prompt(parts: parts)
        #expect(prompt.contentKeys == expected.contentKeys && prompt.bidirectionalSpans == expected.bidirectionalSpans)
    }

    @Test func aTextOnlyModelRefusesAnImagePart() async throws {
        let lm = try LanguageModel.load(path: TestPaths.fixtures + "/gemma3-tiny-text", options: ModelOptions(threads: 2))
        let chat = lm.makeChatSession(contextLength: 128)
        let image = PromptImage(views: [ImageEmbedding(rows: [Float](repeating: 0, count: 4 * lm.model.config.hiddenSize), count: 4, digest: "x")])
        await #expect(throws: ModelError.self) { _ = try await collect(chat.send(parts: [.image(image), .text("hi")], Self.greedy)) }
        #expect(chat.messages.isEmpty)
        // Text still works, and the failed turn left nothing behind.
        let turn = try await collect(chat.send("hi", Self.greedy))
        #expect(turn.stats?.reusedPromptTokens == 0 && chat.messages.count == 2)
    }
}
