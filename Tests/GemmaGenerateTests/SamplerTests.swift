// Sampler: greedy is the argmax with ties to the lowest id; seeded sampling is reproducible; temperature, top-k,
// top-p and min-p follow the exact filtered distribution (chi-square tests against probabilities computed here
// independently, by sorting every token); penalties and logit bias change exactly the logits they should.
import Foundation
import GemmaGenerate
import GemmaTestSupport
import Testing

/// The distribution the sampler should draw from, computed the slow, obvious way (llama.cpp's order: top-k, then
/// top-p and min-p at temperature 1, then temperature over the survivors).
func exactDistribution(_ logits: [Float], _ p: SamplingParameters) -> [Double] {
    let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
    var keep = p.topK > 0 ? min(p.topK, logits.count) : logits.count
    let top = Double(logits[order[0]])
    if p.topP < 1 {
        let w = order.prefix(keep).map { exp(Double(logits[$0]) - top) }
        let total = w.reduce(0, +)
        var cum = 0.0, i = 0
        while i < keep { cum += w[i]; i += 1; if cum >= Double(p.topP) * total { break } }
        keep = i
    }
    if p.minP > 0 {
        var i = 1
        while i < keep && exp(Double(logits[order[i]]) - top) >= Double(p.minP) { i += 1 }
        keep = i
    }
    var probs = [Double](repeating: 0, count: logits.count)
    for id in order.prefix(keep) { probs[id] = exp((Double(logits[id]) - top) / Double(p.temperature)) }
    let s = probs.reduce(0, +)
    return probs.map { $0 / s }
}

/// Draws `n` samples and returns the chi-square statistic over the tokens with non-zero probability, the degrees of
/// freedom, and how many draws landed on a token of probability zero.
func chiSquare(_ logits: [Float], _ p: SamplingParameters, draws n: Int) -> (chi2: Double, dof: Int, outside: Int) {
    let exact = exactDistribution(logits, p)
    var s = Sampler(p)
    var counts = [Int](repeating: 0, count: logits.count)
    logits.withUnsafeBufferPointer { b in for _ in 0..<n { counts[s.sample(b)] += 1 } }
    var chi2 = 0.0, dof = -1, outside = 0
    for (c, q) in zip(counts, exact) {
        if q == 0 { outside += c; continue }
        let e = Double(n) * q
        chi2 += (Double(c) - e) * (Double(c) - e) / e
        dof += 1
    }
    return (chi2, dof, outside)
}

/// The 0.999 quantile of chi-square with `dof` degrees of freedom (Wilson-Hilferty), a loose bound for a fixed seed.
func chiSquareBound(_ dof: Int) -> Double {
    let k = Double(max(dof, 1)), z = 3.09
    return k * pow(1 - 2 / (9 * k) + z * (2 / (9 * k)).squareRoot(), 3)
}

@Suite struct SamplerTests {
    // Twelve distinct logits with a spread that every filter below cuts somewhere inside.
    static let logits: [Float] = [1.0, 0.0, -0.5, 2.0, 0.3, -2.0, 1.7, 0.9, -1.1, 2.4, 0.45, -0.2]

    @Test func greedyIsArgmaxWithLowestIdOnTies() {
        let logits: [Float] = [0.5, 2, -1, 2, 1.5]
        logits.withUnsafeBufferPointer { p in
            #expect(Sampler.argmax(p) == 1)
            var s = Sampler(.greedy)
            #expect(s.sample(p) == 1)
        }
    }

    /// The vectorized argmax and the copy-free greedy-with-bias path against the plain definitions, on vectors with
    /// ties, -inf, NaN and lengths around the 16-lane blocks, and on a vocabulary-sized one.
    @Test func argmaxAndBiasedGreedyMatchThePlainDefinitions() {
        func plainArgmax(_ z: [Float]) -> Int {
            var best = 0, bestValue = -Float.infinity
            for i in z.indices where z[i] > bestValue { best = i; bestValue = z[i] }
            return best
        }
        var rng = SplitMix64(seed: 7)
        var checked = 0
        for n in Array(0...70) + [255, 256, 257, 262_144] {
            for trial in 0..<(n > 1000 ? 4 : 12) {
                var z: [Float] = (0..<n).map { _ in Float(rng.next() % 9) - 4 }  // few distinct values: many ties
                for i in z.indices where rng.next() % 17 == 0 { z[i] = rng.next() % 2 == 0 ? -.infinity : .nan }
                if trial == 0 { z = z.map { _ in -.infinity } }
                if trial == 1 && n > 0 { z[n - 1] = 100 }
                let got = z.withUnsafeBufferPointer { Sampler.argmax($0) }
                #expect(got == plainArgmax(z), "n \(n) trial \(trial)")
                // Greedy with a bias on a few ids (sometimes the unbiased argmax itself) vs biasing a copy.
                var bias: [Int: Float] = [:]
                if n > 0 {
                    for _ in 0..<3 { bias[Int(rng.next() % UInt64(n))] = Float(rng.next() % 7) - 3 }
                    if trial % 3 == 0 { bias[plainArgmax(z)] = -1 }
                    if trial % 4 == 1 { bias[Int(rng.next() % UInt64(n))] = .infinity }
                }
                var biased = z
                for (id, b) in bias { biased[id] += b }
                var s = Sampler(SamplingParameters(temperature: 0, logitBias: bias))
                #expect(z.withUnsafeBufferPointer { s.sample($0) } == plainArgmax(biased), "biased n \(n) trial \(trial)")
                checked += 1
            }
        }
        print("argmax / biased greedy: \(checked) vectors agree with the plain definitions")
    }

    @Test func sameSeedSameTokensOtherSeedOtherTokens() {
        let logits: [Float] = (0..<1000).map { Float(sin(Double($0))) * 3 }
        func run(_ p: SamplingParameters) -> [Int] {
            var s = Sampler(p)
            return logits.withUnsafeBufferPointer { b in (0..<200).map { _ in s.sample(b) } }
        }
        for base in [SamplingParameters.unfiltered(temperature: 1), SamplingParameters(temperature: 1.2),
                     SamplingParameters(temperature: 0.9, topK: 0, topP: 0.8, minP: 0.01, repeatPenalty: 1.1, presencePenalty: 0.2)] {
            var a = base, b = base
            a.seed = 7
            b.seed = 8
            #expect(run(a) == run(a))
            #expect(run(a) != run(b))
        }
    }

    @Test(arguments: [Float(0.5), 1.0, 2.0])
    func temperatureSamplingFollowsTheExactDistribution(temperature: Float) {
        let r = chiSquare(Self.logits, .unfiltered(temperature: temperature, seed: 12345), draws: 60_000)
        #expect(r.dof == Self.logits.count - 1)
        #expect(r.chi2 < chiSquareBound(r.dof), "chi2 \(r.chi2) with \(r.dof) dof")
        print("temperature \(temperature): chi2 \(String(format: "%.1f", r.chi2)) (\(r.dof) dof, bound \(String(format: "%.1f", chiSquareBound(r.dof))))")
    }

    @Test(arguments: [1, 3, 5])
    func topKKeepsExactlyTheKMostLikely(k: Int) {
        let p = SamplingParameters(temperature: 1, topK: k, topP: 1, minP: 0, seed: 99)
        let r = chiSquare(Self.logits, p, draws: 40_000)
        #expect(r.outside == 0)
        #expect(r.dof == k - 1)
        #expect(r.chi2 < chiSquareBound(r.dof), "chi2 \(r.chi2) with \(r.dof) dof")
        print("top-k \(k): chi2 \(String(format: "%.1f", r.chi2)) (\(r.dof) dof, bound \(String(format: "%.1f", chiSquareBound(r.dof)))), \(r.outside) outside")
    }

    @Test(arguments: [Float(0.3), 0.6, 0.9, 0.99])
    func topPKeepsTheSmallestSetReachingP(topP: Float) {
        for (topK, minP) in [(0, Float(0)), (6, 0), (0, 0.15), (5, 0.15)] {
            let p = SamplingParameters(temperature: 0.7, topK: topK, topP: topP, minP: minP, seed: 2024)
            let kept = exactDistribution(Self.logits, p).filter { $0 > 0 }.count
            let r = chiSquare(Self.logits, p, draws: 40_000)
            #expect(r.outside == 0)
            #expect(r.dof == kept - 1)
            #expect(r.chi2 < chiSquareBound(r.dof), "top-p \(topP) top-k \(topK) min-p \(minP): chi2 \(r.chi2) with \(r.dof) dof")
            print("top-p \(topP) top-k \(topK) min-p \(minP): \(kept) kept, chi2 \(String(format: "%.1f", r.chi2)) (\(r.dof) dof, bound \(String(format: "%.1f", chiSquareBound(r.dof)))), \(r.outside) outside")
        }
    }

    @Test(arguments: [Float(0.05), 0.2, 0.5])
    func minPDropsTokensBelowAFractionOfTheBest(minP: Float) {
        let p = SamplingParameters(temperature: 1.5, topK: 0, topP: 1, minP: minP, seed: 31337)
        let kept = exactDistribution(Self.logits, p).filter { $0 > 0 }.count
        #expect(kept < Self.logits.count)
        let r = chiSquare(Self.logits, p, draws: 40_000)
        #expect(r.outside == 0)
        #expect(r.dof == kept - 1)
        #expect(r.chi2 < chiSquareBound(r.dof), "min-p \(minP): chi2 \(r.chi2) with \(r.dof) dof")
        print("min-p \(minP): \(kept) kept, chi2 \(String(format: "%.1f", r.chi2)) (\(r.dof) dof, bound \(String(format: "%.1f", chiSquareBound(r.dof)))), \(r.outside) outside")
    }

    @Test func llamaDefaultsOverALargeVocabulary() {
        // 5000 logits: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8 (llama.cpp's defaults) all bite.
        var g = SeededGenerator(seed: 5)
        let logits: [Float] = (0..<5000).map { _ in Float(g.unit() * 8) }
        let p = SamplingParameters(seed: 77)
        let kept = exactDistribution(logits, p).filter { $0 > 0 }.count
        #expect(kept > 5 && kept < 40)
        let r = chiSquare(logits, p, draws: 40_000)
        #expect(r.outside == 0)
        #expect(r.chi2 < chiSquareBound(r.dof), "chi2 \(r.chi2) with \(r.dof) dof, \(kept) kept")
        print("llama defaults over 5000 logits: \(kept) kept, chi2 \(String(format: "%.1f", r.chi2)) (\(r.dof) dof, bound \(String(format: "%.1f", chiSquareBound(r.dof)))), \(r.outside) outside")
    }

    /// A measurement, not a timing assertion (CI never asserts speed): each sampler configuration must still pick a
    /// token in the vocabulary over 262144 logits (Gemma 3's vocabulary); the cost per step is printed.
    @Test func aStepOverTheFullVocabularyPicksAValidToken() {
        var g = SeededGenerator(seed: 1)
        let logits: [Float] = (0..<262_144).map { _ in Float(g.unit() * 20 - 10) }
        for p in [SamplingParameters(seed: 1), SamplingParameters(topK: 0, seed: 1),
                  SamplingParameters(repeatPenalty: 1.1, presencePenalty: 0.1, logitBias: [5: 2], seed: 1)] {
            var s = Sampler(p)
            s.accept(0..<64)
            let steps = 50
            let clock = ContinuousClock()
            var picked: [Int] = []
            let t = clock.measure { logits.withUnsafeBufferPointer { b in for _ in 0..<steps { picked.append(s.sample(b)) } } }
            let ms = Double(t.components.attoseconds) / 1e15 / Double(steps) + Double(t.components.seconds) * 1000 / Double(steps)
            print("sampler step over 262144 logits, top-k \(p.topK), penalties \(p.hasPenalties): \(String(format: "%.2f", ms)) ms")
            #expect(picked.allSatisfy { (0..<262_144).contains($0) })
        }
    }

    @Test func penaltiesFollowLlamaCpp() {
        // Token 0 (logit 2, positive) is divided by the repeat penalty, token 2 (negative) multiplied; frequency
        // and presence subtract per occurrence and once.
        let logits: [Float] = [2.0, 1.9, -0.5, -0.6]
        logits.withUnsafeBufferPointer { b in
            var s = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.1))
            #expect(s.sample(b) == 0)  // nothing seen yet
            s = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.1))
            s.accept([0])
            #expect(s.sample(b) == 1)  // 2 / 1.1 = 1.82 < 1.9

            let small: [Float] = [-0.5, -0.52]
            small.withUnsafeBufferPointer { c in
                var t = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.1))
                t.accept([0])
                #expect(t.sample(c) == 1)  // -0.5 * 1.1 = -0.55 < -0.52
            }

            var f = Sampler(SamplingParameters(temperature: 0, frequencyPenalty: 0.06))
            f.accept([0])
            #expect(f.sample(b) == 0)  // 2 - 0.06 = 1.94 > 1.9
            f = Sampler(SamplingParameters(temperature: 0, frequencyPenalty: 0.06))
            f.accept([0, 0])
            #expect(f.sample(b) == 1)  // 2 - 0.12 = 1.88 < 1.9
            var pr = Sampler(SamplingParameters(temperature: 0, presencePenalty: 0.2))
            pr.accept([0, 0, 0])
            #expect(pr.sample(b) == 1)  // 2 - 0.2 once = 1.8

            // The window: only the last N tokens count.
            var w = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.5, repeatLastN: 2))
            w.accept([0, 3, 3])
            #expect(w.sample(b) == 0)
            // repeat-last-n 0 turns penalties off.
            var off = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.5, repeatLastN: 0))
            off.accept([0])
            #expect(off.sample(b) == 0)
        }
    }

    @Test func sampleRecordsItsChoiceInTheWindow() {
        // With a strong penalty, greedy cannot pick the same token twice in a row.
        let logits: [Float] = [3, 2.9, 2.8]
        var s = Sampler(SamplingParameters(temperature: 0, repeatPenalty: 2))
        let picks = logits.withUnsafeBufferPointer { b in (0..<3).map { _ in s.sample(b) } }
        #expect(picks == [0, 1, 2])
    }

    @Test func logitBiasAddsAndBans() {
        let logits: [Float] = [2.0, 1.0, 0.5]
        logits.withUnsafeBufferPointer { b in
            var ban = Sampler(SamplingParameters(temperature: 0, logitBias: [0: -.infinity]))
            #expect(ban.sample(b) == 1)
            var boost = Sampler(SamplingParameters(temperature: 0, logitBias: [2: 1.6]))
            #expect(boost.sample(b) == 2)
            // A banned token is never drawn when sampling either.
            var sampled = Sampler(SamplingParameters(temperature: 5, topK: 0, topP: 1, minP: 0, logitBias: [1: -.infinity], seed: 3))
            #expect(!(0..<2000).map { _ in sampled.sample(b) }.contains(1))
        }
    }

    @Test func logprobsAreTheModelsLogSoftmax() {
        let logits: [Float] = [1, 3, 2, 3]
        logits.withUnsafeBufferPointer { b in
            let (chosen, top) = Sampler.logprobs(b, chosen: 2, top: 3)
            let z = log(logits.map { exp(Double($0)) }.reduce(0, +))
            #expect(abs(Double(chosen) - (2 - z)) < 1e-5)
            #expect(top.map(\.id) == [1, 3, 2])
            #expect(abs(Double(top[0].logprob) - (3 - z)) < 1e-5)
        }
    }
}
