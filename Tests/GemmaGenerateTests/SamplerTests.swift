// Sampler: greedy is the argmax with ties to the lowest id; seeded sampling is reproducible and follows
// softmax(logits / T) (checked by a chi-square test against the exact probabilities).
import Foundation
import GemmaGenerate
import Testing

@Suite struct SamplerTests {
    @Test func greedyIsArgmaxWithLowestIdOnTies() {
        let logits: [Float] = [0.5, 2, -1, 2, 1.5]
        logits.withUnsafeBufferPointer { p in
            #expect(Sampler.argmax(p) == 1)
            var s = Sampler(.greedy)
            #expect(s.sample(p) == 1)
        }
    }

    @Test func sameSeedSameTokensOtherSeedOtherTokens() {
        let logits: [Float] = (0..<1000).map { Float(sin(Double($0))) * 3 }
        func run(_ seed: UInt64) -> [Int] {
            var s = Sampler(SamplingParameters(temperature: 1.0, seed: seed))
            return logits.withUnsafeBufferPointer { p in (0..<200).map { _ in s.sample(p) } }
        }
        #expect(run(7) == run(7))
        #expect(run(7) != run(8))
    }

    @Test(arguments: [Float(0.5), 1.0, 2.0])
    func temperatureSamplingFollowsTheExactDistribution(temperature: Float) {
        let logits: [Float] = [1.0, 0.0, -0.5, 2.0, 0.3, -2.0]
        let exact: [Double] = {
            let e = logits.map { exp(Double($0 / temperature)) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }()
        var s = Sampler(SamplingParameters(temperature: temperature, seed: 12345))
        let n = 60_000
        var counts = [Int](repeating: 0, count: logits.count)
        logits.withUnsafeBufferPointer { p in for _ in 0..<n { counts[s.sample(p)] += 1 } }
        let chi2 = zip(counts, exact).reduce(0.0) { acc, pair in
            let expected = Double(n) * pair.1
            return acc + (Double(pair.0) - expected) * (Double(pair.0) - expected) / expected
        }
        // 5 degrees of freedom: P(chi2 > 20.5) = 0.001.
        #expect(chi2 < 20.5, "counts \(counts) vs expected \(exact.map { $0 * Double(n) })")
    }
}
