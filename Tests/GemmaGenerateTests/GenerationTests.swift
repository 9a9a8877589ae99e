// The generation loop on the real model: stop tokens, limits, refusal of bad prompts, seeded reproducibility.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct GenerationTests {
    // "The quick brown fox" with BOS, as llama.cpp tokenizes it (reference-greedy.json, prompt prose_fox).
    static let foxPrompt = [2, 818, 3823, 8864, 37423]
    static let foxGreedy = [38167, 1024, 506, 31770, 4799, 236761, 108, 818]

    @Test func stopsAtAStopTokenUnlessTold() throws {
        guard let path = TestPaths.requireModel() else { return }
        var g = Generator(model: try Gemma3Model(path: path))
        #expect(g.stopTokens == [1, 106])
        g.stopTokens = [506]  // greedy produces " the" third
        let stopped = try g.generate(prompt: Self.foxPrompt, maxTokens: 8, sampling: .greedy)
        #expect(stopped.tokens == Array(Self.foxGreedy.prefix(3)))
        #expect(stopped.stopReason == .stopToken)
        let ignored = try g.generate(prompt: Self.foxPrompt, maxTokens: 8, sampling: .greedy, ignoreStopTokens: true)
        #expect(ignored.tokens == Self.foxGreedy)
        #expect(ignored.stopReason == .length)
        var seen = 0
        let cancelled = try g.generate(prompt: Self.foxPrompt, maxTokens: 8, sampling: .greedy) { _ in seen += 1; return seen < 2 }
        #expect(cancelled.tokens.count == 2 && cancelled.stopReason == .cancelled)
    }

    @Test func promptsPastTheContextAreRefused() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        #expect(throws: ModelError.self) { try g.generate(prompt: [2], maxTokens: 40_000, sampling: .greedy) }
        #expect(throws: ModelError.self) { try g.generate(prompt: [], maxTokens: 1, sampling: .greedy) }
        #expect(throws: ModelError.self) { try g.generate(prompt: [2, 300_000], maxTokens: 1, sampling: .greedy) }
    }

    @Test func seededSamplingIsReproducible() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let p = SamplingParameters(temperature: 1, seed: 99)
        let a = try g.generate(prompt: Self.foxPrompt, maxTokens: 12, sampling: p)
        let b = try g.generate(prompt: Self.foxPrompt, maxTokens: 12, sampling: p)
        #expect(a.tokens == b.tokens)
    }

    @Test func aStateIsReusedAcrossCalls() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let g = Generator(model: model)
        let state = model.makeState(capacity: 64)
        let p = GenerationParameters(sampling: .greedy, maxTokens: 3, ignoreStopTokens: true)
        let first = try g.run(prompt: Self.foxPrompt, state: state, parameters: p, tokenizer: nil) { _ in }
        #expect(first.tokens == Array(Self.foxGreedy.prefix(3)))
        // Continuing from the same state reuses every cached position.
        let longer = Self.foxPrompt + first.tokens
        let second = try g.run(prompt: longer, state: state, parameters: p, tokenizer: nil) { _ in }
        #expect(second.stats.reusedPromptTokens == longer.count - 1)
        #expect(second.tokens == Array(Self.foxGreedy[3..<6]))
    }
}
