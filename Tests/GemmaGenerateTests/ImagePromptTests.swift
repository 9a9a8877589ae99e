// Prompts with images against transformers' Gemma3Processor (Tests/Fixtures/gemma3-tiny-vision/fixtures.json,
// `processor`): the ids of "<start_of_turn>user\n<start_of_image>Describe this image.<end_of_turn>\n<start_of_turn>model\n"
// with one image (16 soft tokens) and with the Pan & Scan sentence around the whole image and 3 crops, made with
// the tiny tokenizer (boi 255, eoi 256, soft token 262). Also: text-only chat prompts equal ChatTemplate.tokens, and
// raw prompts place images at their `<start_of_image>` markers.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import GemmaTokenizer
import Testing

@Suite struct ImagePromptTests {
    static let tokenizer = Result { try Tokenizer(directory: TestPaths.fixtures + "/hf-tiny-tokenizer") }
    static let tokens = ImageTokens(startOfImage: 255, endOfImage: 256, softToken: 262)

    static func processorIDs(_ key: String) throws -> [Int] {
        let j = try TestPaths.json("gemma3-tiny-vision/fixtures.json") as! [String: Any]
        let p = (j["processor"] as! [String: Any])[key] as! [String: Any]
        return (p["input_ids"] as! [NSNumber]).map(\.intValue)
    }

    static func view(_ tag: String, width: Int = 80) -> ImageEmbedding {
        ImageEmbedding(rows: (0..<16 * width).map { Float($0 % 7) }, count: 16, digest: "test:\(tag)")
    }

    static func spans(_ p: Prompt) -> [EmbeddingSpan] {
        p.parts.compactMap { if case let .embeddings(e) = $0 { e } else { nil } }
    }

    @Test func oneImageAsTheProcessor() throws {
        let tk = try Self.tokenizer.get()
        let image = PromptImage(views: [Self.view("whole")])
        let prompt = ChatTemplate.prompt([ChatMessage(.user, parts: [.image(image), .text("Describe this image.")])],
                                         tokenizer: tk, imageTokens: Self.tokens)
        #expect(prompt.tokenIDs == (try Self.processorIDs("single")))
        let s = Self.spans(prompt)
        #expect(s.count == 1 && s[0].bidirectional && s[0].count == 16 && s[0].placeholder == 262)
    }

    @Test func panAndScanSentenceAsTheProcessor() throws {
        let tk = try Self.tokenizer.get()
        let image = PromptImage(views: ["whole", "crop1", "crop2", "crop3"].map { Self.view($0) })
        let prompt = ChatTemplate.prompt([ChatMessage(.user, parts: [.image(image), .text("Describe this image.")])],
                                         tokenizer: tk, imageTokens: Self.tokens)
        #expect(prompt.tokenIDs == (try Self.processorIDs("pas")))
        // Four separate bidirectional spans (crops are blocks of their own), each keyed by its view.
        #expect(Self.spans(prompt).map(\.digest) == ["test:whole", "test:crop1", "test:crop2", "test:crop3"])
    }

    @Test func textOnlyChatPromptEqualsTheTemplateTokens() throws {
        let tk = try Self.tokenizer.get()
        let messages: [ChatMessage] = [.system("Be brief."), .user("Hello there"), .model("Hi."), .user("<end_of_turn> is text here")]
        let prompt = ChatTemplate.prompt(messages, tokenizer: tk, imageTokens: Self.tokens)
        #expect(prompt.isTokensOnly)
        #expect(prompt.tokenIDs == ChatTemplate.tokens(messages, tokenizer: tk))
    }

    @Test func rawPromptPlacesImagesAtTheirMarkers() throws {
        let tk = try Self.tokenizer.get()
        let a = PromptImage(views: [Self.view("a")]), b = PromptImage(views: [Self.view("b")])
        // The processor's prompt with its one marker gives the processor's ids; with no marker, the images go first.
        let p = Prompt.raw("<start_of_turn>user\n<start_of_image>Describe this image.<end_of_turn>\n<start_of_turn>model\n",
                           images: [a], tokenizer: tk, imageTokens: Self.tokens)
        #expect(p.tokenIDs == (try Self.processorIDs("single")))
        let q = Prompt.raw("Compare", images: [a, b], tokenizer: tk, imageTokens: Self.tokens)
        #expect(Self.spans(q).map(\.digest) == ["test:a", "test:b"])
        #expect(q.tokenIDs.first == 2 && q.tokenIDs[1] == 108 && q.tokenIDs[2] == 255)
        // A marker with no image left stays as the control token.
        let r = Prompt.raw("x<start_of_image>y", images: [], tokenizer: tk, imageTokens: Self.tokens)
        #expect(r.isTokensOnly && r.tokenIDs.contains(255))
    }
}
