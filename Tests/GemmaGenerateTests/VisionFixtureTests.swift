// The whole image path against transformers (Tests/Fixtures/gemma3-tiny-vision: a tiny random
// Gemma3ForConditionalGeneration, f32, eager attention): the fixture's pixel values through the vision encoder and
// projector, the soft tokens placed by the chat template as the processor places them, and the decoder's logits at
// every position with the bidirectional image mask (`{case}.logits`, made with token_type_ids) — for one image, for
// the whole image and 3 Pan & Scan crops (four image blocks), and for the hand-built `mm_single` prompt with its
// greedy tokens. A causal control shows the mask is seen: the same rows without the span's mask give
// `logits_causal_only`, and the two references differ by up to ~6.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaKernels
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct VisionFixtureTests {
    static let folder = TestPaths.fixtures + "/gemma3-tiny-vision"
    static let reference: SafetensorsFile? = try? SafetensorsFile(path: folder + "/fixtures.safetensors")
    static let loaded = Result {
        try LanguageModel.load(path: folder, options: ModelOptions(threads: 2, precision: .exact, placement: .mapped, kvStorage: .f32))
    }

    static func floats(_ name: String) throws -> [Float] {
        let t = try #require(reference?.sourceTensor(named: name), "fixture tensor \(name)")
        return Array(t.bytes.bindMemory(to: Float.self))
    }

    static func ids(_ name: String) throws -> [Int] {
        let t = try #require(reference?.sourceTensor(named: name), "fixture tensor \(name)")
        return t.bytes.bindMemory(to: Int64.self).map(Int.init)
    }

    /// Every position's logits of `prompt` in one pass (the state's steps hold the image spans whole).
    static func logits(_ lm: LanguageModel, _ prompt: Prompt) throws -> [Float] {
        let state = lm.makeState(capacity: prompt.count, for: prompt)
        let vocab = lm.model.config.vocabSize
        var out = [Float](repeating: .nan, count: prompt.count * vocab)
        try lm.model.forward(prompt, positions: 0..<prompt.count, state: state, logits: .all) { i, l in
            for (j, x) in l.enumerated() { out[i * vocab + j] = x }
        }
        return out
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static let question = "Describe this image."

    @Test func oneImageGivesTransformersLogits() throws {
        let lm = try Self.loaded.get()
        let tokens = try #require(lm.imageTokens)
        #expect(tokens == ImageTokens(startOfImage: 255, endOfImage: 256, softToken: 262))
        let image = try lm.embedImage(pixelValues: try Self.floats("pixel_values.single"), views: 1, digest: "wide")
        #expect(Self.maxDifference(image.views[0].rows, try Self.floats("projector.soft_tokens.single")) <= 1e-5)
        let prompt = ChatTemplate.prompt([ChatMessage(.user, parts: [.image(image), .text(Self.question)])],
                                         tokenizer: lm.tokenizer, imageTokens: tokens)
        #expect(prompt.tokenIDs == (try Self.ids("proc_single.input_ids")))
        let d = Self.maxDifference(try Self.logits(lm, prompt), try Self.floats("proc_single.logits"))
        print("vision fixture, one image: max |logit - transformers| \(d) over \(prompt.count) positions")
        #expect(d <= 1e-4)
    }

    @Test func panAndScanCropsGiveTransformersLogits() throws {
        let lm = try Self.loaded.get()
        let image = try lm.embedImage(pixelValues: try Self.floats("pixel_values.pas"), views: 4, digest: "wide")
        let prompt = ChatTemplate.prompt([ChatMessage(.user, parts: [.image(image), .text(Self.question)])],
                                         tokenizer: lm.tokenizer, imageTokens: try #require(lm.imageTokens))
        #expect(prompt.tokenIDs == (try Self.ids("proc_pas.input_ids")))
        #expect(prompt.bidirectionalSpans.count == 4)
        let d = Self.maxDifference(try Self.logits(lm, prompt), try Self.floats("proc_pas.logits"))
        print("vision fixture, Pan & Scan (whole + 3 crops): max |logit - transformers| \(d) over \(prompt.count) positions")
        #expect(d <= 1e-4)
    }

    /// `mm_single`: hand-built ids with 16 soft tokens at positions 9 ..< 25; the image block is wider than the
    /// sliding window (8), so on sliding layers its tokens see later tokens of their block beyond the window.
    func mmSinglePrompt(_ lm: LanguageModel, bidirectional: Bool) throws -> Prompt {
        let ids = try Self.ids("mm_single.input_ids")
        let image = try lm.embedImage(pixelValues: try Self.floats("pixel_values.single"), views: 1, digest: "wide")
        let first = try #require(ids.firstIndex(of: 262)), last = try #require(ids.lastIndex(of: 262))
        #expect(last - first + 1 == 16)
        let v = image.views[0]
        return Prompt([.tokens(Array(ids[..<first])),
                       .embeddings(EmbeddingSpan(rows: v.rows, count: v.count, digest: v.digest, bidirectional: bidirectional, placeholder: 262)),
                       .tokens(Array(ids[(last + 1)...]))])
    }

    @Test func handBuiltPromptMatchesWithItsMaskAndWithout() throws {
        let lm = try Self.loaded.get()
        let bidirectional = try Self.logits(lm, try mmSinglePrompt(lm, bidirectional: true))
        let causal = try Self.logits(lm, try mmSinglePrompt(lm, bidirectional: false))
        let d = Self.maxDifference(bidirectional, try Self.floats("mm_single.logits"))
        let c = Self.maxDifference(causal, try Self.floats("mm_single.logits_causal_only"))
        let crossed = Self.maxDifference(bidirectional, try Self.floats("mm_single.logits_causal_only"))
        print("vision fixture, mm_single: max |Δ| \(d) (bidirectional), \(c) (causal control); bidirectional vs causal reference \(crossed)")
        #expect(d <= 1e-4 && c <= 1e-4)
        #expect(crossed > 0.5, "the image mask made no visible difference")
    }

    /// llama.cpp's text GGUFs of the 4B-27B have no row for the image soft token (262144 = the vocabulary size): a
    /// span whose placeholder id is past the vocabulary runs, and gives the same logits, greedy tokens included.
    @Test func placeholderPastTheVocabulary() async throws {
        let lm = try Self.loaded.get()
        let inside = try mmSinglePrompt(lm, bidirectional: true)
        let vocab = lm.model.config.vocabSize
        let past = Prompt(inside.parts.map { part -> PromptPart in
            guard case let .embeddings(e) = part else { return part }
            return .embeddings(EmbeddingSpan(rows: e.rows, count: e.count, digest: e.digest, bidirectional: true, placeholder: vocab))
        })
        #expect(past.tokenIDs.contains(vocab))
        #expect(try Self.logits(lm, past) == (try Self.logits(lm, inside)))
        var params = GenerationParameters(maxTokens: 8)
        params.sampling.temperature = 0
        params.sampling.repeatPenalty = 1.1  // the penalty window holds the placeholder ids too
        var ids: [Int] = []
        for try await event in lm.generate(prompt: past, params) { if case let .token(t) = event { ids.append(t.id) } }
        #expect(ids.count == 8 && ids.allSatisfy { $0 < vocab })
    }

    @Test func greedyTokensWithAnImage() async throws {
        let lm = try Self.loaded.get()
        let prompt = try mmSinglePrompt(lm, bidirectional: true)
        var params = GenerationParameters(maxTokens: 8)
        params.sampling.temperature = 0
        var ids: [Int] = []
        for try await event in lm.generate(prompt: prompt, params) {
            if case let .token(t) = event { ids.append(t.id) }
        }
        #expect(ids == (try Self.ids("mm_single.greedy.new_tokens")))
    }

    @Test func textOnlyModelsRefuseImages() throws {
        let lm = try LanguageModel.load(path: TestPaths.fixtures + "/gemma3-tiny-text",
                                        options: ModelOptions(threads: 2, precision: .exact, placement: .mapped, kvStorage: .f32))
        #expect(lm.vision == nil && lm.imageTokens == nil)
        #expect(throws: ModelError.self) { try lm.embedImage(pixelValues: [0], views: 1, digest: "x") }
    }
}
