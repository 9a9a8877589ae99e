// The generation loop on the real model: stop tokens, limits, refusal of bad prompts, seeded reproducibility, state
// reuse, and exact prefix reuse for any prefill chunk size (a warm state gives a cold state's tokens bit for bit).
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct GenerationTests {
    // "The quick brown fox" with BOS, as llama.cpp tokenizes it (reference-greedy.json, prompt prose_fox).
    static let foxPrompt = [2, 818, 3823, 8864, 37423]
    static let foxGreedy = [38167, 1024, 506, 31770, 4799, 236761, 108, 818]

    /// Runs `prompt` on a fresh state with room for `maxTokens`; `stopAfter` cancels after that many tokens.
    static func generate(_ g: Generator, _ prompt: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy,
                         ignoreStopTokens: Bool = false, stopAfter: Int = .max) throws(ModelError) -> GenerationOutcome {
        let state = g.model.makeState(capacity: prompt.count + maxTokens + 1)
        let p = GenerationParameters(sampling: sampling, maxTokens: maxTokens, ignoreStopTokens: ignoreStopTokens)
        var seen = 0
        return try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil,
                         isCancelled: { seen >= stopAfter }) { event in
            if case .token = event { seen += 1 }
        }
    }

    @Test func stopsAtAStopTokenUnlessTold() throws {
        guard let path = TestPaths.requireModel() else { return }
        var g = Generator(model: try Gemma3Model(path: path))
        #expect(g.stopTokens == [1, 106])
        g.stopTokens = [506]  // greedy produces " the" third
        let stopped = try Self.generate(g, Self.foxPrompt, maxTokens: 8)
        #expect(stopped.tokens == Array(Self.foxGreedy.prefix(3)))
        #expect(stopped.stats.stopReason == .stopToken)
        let ignored = try Self.generate(g, Self.foxPrompt, maxTokens: 8, ignoreStopTokens: true)
        #expect(ignored.tokens == Self.foxGreedy)
        #expect(ignored.stats.stopReason == .length)
        let cancelled = try Self.generate(g, Self.foxPrompt, maxTokens: 8, stopAfter: 2)
        #expect(cancelled.tokens.count == 2 && cancelled.stats.stopReason == .cancelled)
    }

    @Test func promptsPastTheContextAreRefused() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let g = Generator(model: model)
        let p = GenerationParameters(sampling: .greedy, maxTokens: 1)
        func run(_ prompt: [Int], capacity: Int) throws(ModelError) {
            _ = try g.run(prompt: Prompt(tokens: prompt), state: model.makeState(capacity: capacity), parameters: p,
                          tokenizer: nil) { _ in }
        }
        #expect(throws: ModelError.self) { try run(Self.foxPrompt, capacity: 5) }  // no room to generate
        #expect(throws: ModelError.self) { try run([], capacity: 8) }
        #expect(throws: ModelError.self) { try run([2, 300_000], capacity: 8) }
    }

    @Test func seededSamplingIsReproducible() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let p = SamplingParameters(temperature: 1, seed: 99)
        let a = try Self.generate(g, Self.foxPrompt, maxTokens: 12, sampling: p)
        let b = try Self.generate(g, Self.foxPrompt, maxTokens: 12, sampling: p)
        #expect(a.tokens == b.tokens)
    }

    @Test func aStateIsReusedAcrossCalls() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let g = Generator(model: model)
        let state = model.makeState(capacity: 64)
        let p = GenerationParameters(sampling: .greedy, maxTokens: 3, ignoreStopTokens: true)
        let first = try g.run(prompt: Prompt(tokens: Self.foxPrompt), state: state, parameters: p, tokenizer: nil) { _ in }
        #expect(first.tokens == Array(Self.foxGreedy.prefix(3)))
        // Continuing from the same state reuses every cached position (`.longest`, the default).
        let longer = Self.foxPrompt + first.tokens
        let second = try g.run(prompt: Prompt(tokens: longer), state: state, parameters: p, tokenizer: nil) { _ in }
        #expect(second.stats.reusedPromptTokens == longer.count - 1)
        #expect(second.tokens == Array(Self.foxGreedy[3..<6]))
    }

    /// With `.exact` reuse and prefill chunks of 100 or 37 (neither a multiple of the 64-row steps), a prompt that
    /// shares a prefix with what a state holds (a prefill, then decoded tokens) gives exactly the tokens of a cold
    /// state, under sampling; the shared prefix ends inside a step, and reuse stops at the step before it.
    @Test(arguments: [100, 37]) func exactReuseGivesTheColdTokensForAnyChunk(_ chunk: Int) throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        var g = Generator(model: model)
        g.prefillChunk = chunk
        let ids = try KnownText.ids()
        let first = Array(ids[0..<150]), second = Array(ids[0..<130]) + Array(ids[400..<440])
        var p = GenerationParameters(maxTokens: 12, ignoreStopTokens: true)
        p.sampling = SamplingParameters(temperature: 1, seed: 7)
        func run(_ prompt: [Int], _ state: Gemma3State) throws -> GenerationOutcome {
            try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil, reuse: .exact) { _ in }
        }
        let warm = model.makeState(capacity: 512)
        let a = try run(first, warm)
        // The first prompt's decoded tokens then more text: decoded positions must not be kept.
        let third = first + a.tokens + Array(ids[500..<520])
        for prompt in [third, second, first] {
            let hot = try run(prompt, warm)
            let cold = try run(prompt, model.makeState(capacity: 512))
            let steps = try PrefillSchedule(chunk: chunk, maxRows: warm.maxBatch).steps(of: Prompt(tokens: prompt))
            print("chunk \(chunk): \(prompt.count)-token prompt, reused \(hot.stats.reusedPromptTokens); cold steps \(steps.map { "\($0.lowerBound)" }.joined(separator: ","))")
            #expect(hot.tokens == cold.tokens, "chunk \(chunk), prompt of \(prompt.count)")
            #expect(hot.stats.reusedPromptTokens > 0)
            #expect(steps.contains { $0.lowerBound == hot.stats.reusedPromptTokens })
        }
        // The second prompt shares 130 positions with the first: reuse stops at a step boundary below them.
        let hot = try run(second, warm)
        #expect(hot.stats.reusedPromptTokens == (chunk == 100 ? 100 : 111))
    }
}

/// A long natural text, tokenized by llama.cpp (Tests/Fixtures/reference-topk.json).
enum KnownText {
    static func ids() throws -> [Int] {
        let golden = try TestPaths.json("reference-topk.json") as! [String: Any]
        return (golden["input_ids"] as! [NSNumber]).map(\.intValue)
    }
}
