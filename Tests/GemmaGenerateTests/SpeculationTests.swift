// Speculative decoding by prompt lookup (issue 20): the output is the plain greedy output, token for token, on the
// 14 prompts of reference-greedy.json and on a copy-heavy prompt where most proposals are taken.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct SpeculationTests {
    static func run(_ g: Generator, _ prompt: [Int], _ n: Int, draft: Int?) throws -> GenerationOutcome {
        let state = g.model.makeState(capacity: prompt.count + n + 1)
        var p = GenerationParameters(sampling: .greedy, maxTokens: n, ignoreStopTokens: true)
        p.draftMax = draft
        return try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil) { _ in }
    }

    @Test func greedyIdsIdenticalWithAndWithoutPromptLookup() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let golden = try TestPaths.json("reference-greedy.json") as! [String: Any]
        var prompts = (golden["results"] as! [[String: Any]]).map { ($0["prompt_ids"] as! [NSNumber]).map(\.intValue) }
        // Copy-heavy: a list to repeat, so that proposals are made and mostly accepted.
        let list = [2] + (0..<6).flatMap { [236770 + $0, 236787, 818, 3823] } + [108]
        prompts.append(list + list.dropFirst())
        var proposed = 0, accepted = 0
        for prompt in prompts {
            let plain = try Self.run(g, prompt, 48, draft: nil)
            for draft in [1, 4, 6] {
                let spec = try Self.run(g, prompt, 48, draft: draft)
                #expect(spec.tokens == plain.tokens, "draft \(draft): \(spec.tokens) vs \(plain.tokens)")
                proposed += spec.stats.draftProposed
                accepted += spec.stats.draftAccepted
            }
            #expect(plain.stats.draftProposed == 0)
        }
        print("prompt lookup over \(prompts.count) prompts x 3 draft lengths: \(accepted) of \(proposed) proposed tokens accepted")
        #expect(proposed > 0 && accepted > 0 && accepted < proposed)  // both outcomes exercised
    }

    /// Speculative sampling with a deterministic proposal keeps plain sampling's distribution: 20,000 seeded draws of
    /// each at one context of the real model, against the exact distribution of the sampler chain (top-k 40, top-p
    /// 0.95, temperature 1.5: a flat one), by a chi-square test (bins of expected count below 5 merged; 99.9% level).
    @Test func speculativeSamplingKeepsTheDistribution() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let state = model.makeState(capacity: 32)
        var logits: [Float] = []
        try model.forward([2, 818, 3823, 8864, 37423, 1378], state: state) { _, l in logits = Array(l) }
        let params = SamplingParameters(temperature: 1.5, topK: 40, topP: 0.95, minP: 0, seed: 0)
        let (ids, probs) = logits.withUnsafeBufferPointer { Sampler(params).distribution($0) }
        #expect(ids.count >= 3)
        let proposal = ids[1]  // the second most likely: taken sometimes, refused often
        func chiSquare(_ draw: (UInt64) -> Int) -> (Double, Int) {
            var counts = [Int: Int]()
            let n = 20_000
            for seed in 0..<UInt64(n) { counts[draw(seed), default: 0] += 1 }
            var chi = 0.0, bins = 0, restObserved = 0, restExpected = 0.0
            for (id, p) in zip(ids, probs) {
                let e = p * Double(n), o = counts[id] ?? 0
                if e >= 5 { chi += (Double(o) - e) * (Double(o) - e) / e; bins += 1 } else { restObserved += o; restExpected += e }
            }
            let outside = n - counts.filter { ids.contains($0.key) }.values.reduce(0, +)
            #expect(outside == 0, "draws outside the kept set: \(outside)")
            if restExpected > 0 {
                chi += (Double(restObserved) - restExpected) * (Double(restObserved) - restExpected) / max(restExpected, 1e-9)
                bins += 1
            }
            return (chi, bins - 1)
        }
        // 99.9% quantile of chi-square with df degrees of freedom (Wilson-Hilferty).
        func critical(_ df: Int) -> Double {
            let d = Double(df), z = 3.090
            return d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
        }
        let (specChi, specDf) = chiSquare { seed in
            var s = Sampler(SamplingParameters(temperature: 1.5, topK: 40, topP: 0.95, minP: 0, seed: seed))
            return logits.withUnsafeBufferPointer { s.sampleSpeculative($0, proposal: proposal).token }
        }
        let (plainChi, plainDf) = chiSquare { seed in
            var s = Sampler(SamplingParameters(temperature: 1.5, topK: 40, topP: 0.95, minP: 0, seed: seed))
            return logits.withUnsafeBufferPointer { s.sample($0) }
        }
        print("chi-square over \(ids.count) kept tokens: speculative \(specChi) (df \(specDf)), plain \(plainChi) (df \(plainDf)), 99.9% critical \(critical(specDf))")
        #expect(specChi < critical(specDf))
        #expect(plainChi < critical(plainDf))
    }

    /// Top-k sampling with prompt lookup: seeded runs repeat exactly, and proposals are taken.
    @Test func seededSpeculativeSamplingRepeats() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let list = [2] + (0..<6).flatMap { [236770 + $0, 236787, 818, 3823] } + [108]
        let prompt = list + list.dropFirst()
        func run() throws -> GenerationOutcome {
            let state = g.model.makeState(capacity: prompt.count + 65)
            var p = GenerationParameters(sampling: SamplingParameters(temperature: 0.8, topK: 40, seed: 42), maxTokens: 64,
                                         ignoreStopTokens: true)
            p.draftMax = 3
            return try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil) { _ in }
        }
        let a = try run(), b = try run()
        #expect(a.tokens == b.tokens && a.tokens.count == 64)
        #expect(a.stats.draftProposed > 0 && a.stats.draftAccepted > 0)
    }
}
