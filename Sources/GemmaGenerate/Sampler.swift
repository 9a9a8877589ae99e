// Picks the next token from logits: greedy (argmax, ties to the lowest id) or seeded temperature sampling.
// The parameters leave room for the samplers of the chat issue (top-k, top-p, min-p, penalties, logit bias).

/// How to choose each next token.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy.
    public var temperature: Float
    /// Seed of the sampling stream; the same seed and settings give the same output.
    public var seed: UInt64

    public init(temperature: Float = 0.8, seed: UInt64 = 0) {
        self.temperature = temperature
        self.seed = seed
    }

    public static let greedy = SamplingParameters(temperature: 0)
}

/// Stateful sampler: owns the random stream and a probability buffer (no allocation per token).
public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator
    private var probs: [Float] = []

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed)
    }

    /// The argmax of `logits`, ties broken by the lowest id.
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in logits.indices where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    /// Chooses the next token.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let t = parameters.temperature
        guard t > 0, t.isFinite else { return Self.argmax(logits) }
        if probs.count != logits.count { probs = [Float](repeating: 0, count: logits.count) }
        let m = logits.max() ?? 0
        let invT = 1 / t
        var sum: Double = 0
        for i in logits.indices {
            let e = expf((logits[i] - m) * invT)
            probs[i] = e
            sum += Double(e)
        }
        // Inverse CDF over the unnormalized weights.
        var target = rng.unit() * sum
        for i in probs.indices {
            target -= Double(probs[i])
            if target < 0 { return i }
        }
        return Self.argmax(logits)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
