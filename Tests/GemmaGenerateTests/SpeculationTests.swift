// Speculative decoding (issue 20), by prompt lookup and by a draft model: the output is the plain greedy output, token
// for token, on the 14 prompts of reference-greedy.json and on a copy-heavy prompt where most proposals are taken;
// speculative sampling keeps plain sampling's distribution (chi-square tests at one context of the real model).
import Foundation
import GemmaConvert
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct SpeculationTests {
    static func run(_ g: Generator, _ prompt: [Int], _ n: Int, draft: Int?, model: DraftModel? = nil) throws -> GenerationOutcome {
        let state = g.model.makeState(capacity: prompt.count + n + 1)
        var p = GenerationParameters(sampling: .greedy, maxTokens: n, ignoreStopTokens: true)
        p.draftMax = draft
        p.draftModel = model
        return try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil) { _ in }
    }

    static func referencePrompts() throws -> [[Int]] {
        let golden = try TestPaths.json("reference-greedy.json") as! [String: Any]
        var prompts = (golden["results"] as! [[String: Any]]).map { ($0["prompt_ids"] as! [NSNumber]).map(\.intValue) }
        let list = [2] + (0..<6).flatMap { [236770 + $0, 236787, 818, 3823] } + [108]
        prompts.append(list + list.dropFirst())
        return prompts
    }

    /// The plumbing of the draft-model proposer: the 270M drafting for itself (a second model object over the same
    /// file, its own caches, reused from one generation to the next) proposes what the target chooses, so every
    /// proposal is taken (all of them on an Intel Xeon: the draft runs its tokens with the kernels the target used;
    /// a reused draft cache may prefill in other steps, so 98% is what is asked); the ids are the plain ones.
    @Test func greedyIdsIdenticalWithADraftModel() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let draft = DraftModel(try Gemma3Model(path: path))
        var proposed = 0, accepted = 0
        for prompt in try Self.referencePrompts() {
            let plain = try Self.run(g, prompt, 40, draft: nil)
            for k in [2, 5] {
                let spec = try Self.run(g, prompt, 40, draft: k, model: draft)
                #expect(spec.tokens == plain.tokens, "draft model, \(k): \(spec.tokens) vs \(plain.tokens)")
                proposed += spec.stats.draftProposed
                accepted += spec.stats.draftAccepted
            }
        }
        print("draft model over 15 prompts x 2 draft lengths: \(accepted) of \(proposed) proposed tokens accepted")
        #expect(proposed > 300 && Double(accepted) >= 0.98 * Double(proposed))
    }

    /// A draft that disagrees: the 270M requantized to q4_0 (every weight matrix 4-bit again, relative RMSE ~0.1).
    /// Greedy ids stay the plain ones while proposals are refused and the draft's cache rolls back (rings too).
    @Test func greedyIdsIdenticalWithADisagreeingDraftModel() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let draft = try Self.requantized.get()
        var proposed = 0, accepted = 0
        for prompt in try Self.referencePrompts() {
            let plain = try Self.run(g, prompt, 40, draft: nil)
            let spec = try Self.run(g, prompt, 40, draft: 4, model: draft)
            #expect(spec.tokens == plain.tokens, "q4_0 draft: \(spec.tokens) vs \(plain.tokens)")
            proposed += spec.stats.draftProposed
            accepted += spec.stats.draftAccepted
        }
        print("q4_0 draft over 15 prompts: \(accepted) of \(proposed) proposed tokens accepted")
        #expect(accepted > proposed / 4 && accepted < proposed)
    }

    /// The 270M requantized to q4_0, loaded once (the file is written to the temporary folder and removed once
    /// loaded: the model keeps its own copy or its mapping).
    static let requantized: Result<DraftModel, any Error> = Result {
        guard let path = TestPaths.requireModel() else { throw ModelError.input("no model") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-draft-\(getpid())-q4_0.gguf").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Converter.convert(input: path, output: out, options: ConvertOptions(type: .q4_0, force: true))
        return DraftModel(try Gemma3Model(path: out))
    }

    /// Top-k sampling with a draft model that samples its proposals from its own distribution (q): seeded runs
    /// repeat; a draft that is the target (q = p) has every proposal taken (min(1, p/q) = 1), a disagreeing one
    /// (q4_0) has some refused.
    @Test func seededSamplingWithADraftModelRepeats() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        let same = DraftModel(try Gemma3Model(path: path))
        let other = try Self.requantized.get()
        let prompt = try Self.referencePrompts()[0]
        func run(_ draft: DraftModel) throws -> GenerationOutcome {
            let state = g.model.makeState(capacity: prompt.count + 65)
            var p = GenerationParameters(sampling: SamplingParameters(temperature: 1.0, topK: 40, topP: 1, minP: 0, seed: 7),
                                         maxTokens: 64, ignoreStopTokens: true)
            p.draftMax = 4
            p.draftModel = draft
            return try g.run(prompt: Prompt(tokens: prompt), state: state, parameters: p, tokenizer: nil) { _ in }
        }
        let a = try run(same), b = try run(same)
        #expect(a.tokens == b.tokens && a.tokens.count == 64)
        #expect(a.stats.draftProposed > 0 && a.stats.draftAccepted == a.stats.draftProposed,
                "\(a.stats.draftAccepted) of \(a.stats.draftProposed)")
        let c = try run(other), d = try run(other)
        #expect(c.tokens == d.tokens && c.tokens.count == 64)
        #expect(c.stats.draftAccepted > 0 && c.stats.draftAccepted < c.stats.draftProposed,
                "\(c.stats.draftAccepted) of \(c.stats.draftProposed)")
    }

    @Test func greedyIdsIdenticalWithAndWithoutPromptLookup() throws {
        guard let path = TestPaths.requireModel() else { return }
        let g = Generator(model: try Gemma3Model(path: path))
        // The last prompt is copy-heavy: a list to repeat, so that proposals are made and mostly accepted.
        let prompts = try Self.referencePrompts()
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

    /// Speculative sampling with a draft distribution q (a draft model's): the proposal is drawn from q, taken with
    /// probability min(1, p/q), else the token comes from the residual max(0, p - q). 20,000 seeded draws at one
    /// context, q the same logits at temperature 0.6 (sharper than p at 1.5: proposals of the likeliest tokens are
    /// refused often), against p by a chi-square test (99.9% level).
    @Test func speculativeSamplingWithADraftDistributionKeepsTheDistribution() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let state = model.makeState(capacity: 32)
        var logits: [Float] = []
        try model.forward([2, 818, 3823, 8864, 37423, 1378], state: state) { _, l in logits = Array(l) }
        let target = SamplingParameters(temperature: 1.5, topK: 40, topP: 0.95, minP: 0, seed: 0)
        let (ids, probs) = logits.withUnsafeBufferPointer { Sampler(target).distribution($0) }
        let q = logits.withUnsafeBufferPointer { Sampler(SamplingParameters(temperature: 0.6, topK: 40, topP: 1, minP: 0, seed: 0)).distribution($0) }
        let n = 20_000
        var counts = [Int: Int](), taken = 0
        for seed in 0..<UInt64(n) {
            var proposer = Sampler(SamplingParameters(temperature: 0.6, topK: 40, topP: 1, minP: 0, seed: seed &+ 1_000_000))
            let x = proposer.draw(from: q)
            var s = Sampler(SamplingParameters(temperature: 1.5, topK: 40, topP: 0.95, minP: 0, seed: seed))
            let (t, accepted) = logits.withUnsafeBufferPointer { s.sampleSpeculative($0, proposal: x, draft: q) }
            counts[t, default: 0] += 1
            if accepted { taken += 1 }
        }
        var chi = 0.0, bins = 0, restO = 0, restE = 0.0
        for (id, p) in zip(ids, probs) {
            let e = p * Double(n), o = counts[id] ?? 0
            if e >= 5 { chi += (Double(o) - e) * (Double(o) - e) / e; bins += 1 } else { restO += o; restE += e }
        }
        if restE > 0 { chi += (Double(restO) - restE) * (Double(restO) - restE) / restE; bins += 1 }
        let outside = n - counts.filter { ids.contains($0.key) }.values.reduce(0, +)
        let d = Double(bins - 1), z = 3.090
        let critical = d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
        print("draft distribution: \(taken) of \(n) proposals taken; chi-square \(chi) (df \(bins - 1)), 99.9% critical \(critical)")
        #expect(outside == 0)
        #expect(taken > n / 10 && taken < n * 9 / 10)
        #expect(chi < critical)
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
