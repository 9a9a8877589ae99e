// The report's distillation: per token, 256 ids sampled from the teacher's distribution, weighted by the teacher's
// probabilities renormalized over the sample, and the student trained by cross-entropy against them. The teacher is
// any Gemma 3 the engine runs with the student's vocabulary; its targets are computed once per example.
import Foundation
import GemmaGenerate
import GemmaModel

/// A teacher distribution at one position: ids (distinct) and their probabilities, summing to 1.
public struct SoftTarget: Sendable, Equatable {
    public var ids: [Int]
    public var probabilities: [Float]

    public init(ids: [Int], probabilities: [Float]) {
        self.ids = ids
        self.probabilities = probabilities
    }
}

public enum Distillation {
    /// Soft targets from `teacher` for the positions of `example` that have a target: `samples` ids drawn (with
    /// replacement) from the teacher's softmax at temperature 1, the distinct ones kept with the teacher's
    /// probabilities renormalized over them.
    public static func targets(for example: TrainingExample, teacher: Gemma3Model, samples: Int = 256, seed: UInt64) throws -> [SoftTarget?] {
        let state = teacher.makeState(capacity: example.tokens.count + 1)
        var out = [SoftTarget?](repeating: nil, count: example.tokens.count)
        let wanted = example.targets.indices.filter { example.targets[$0] != nil }
        var rng = SeededGenerator(seed: seed)
        try teacher.forward(example.tokens, state: state, logits: .at(wanted)) { t, logits in
            // Softmax in f64, then inverse-CDF draws.
            let mx = Double(logits.max() ?? 0)
            var cdf = [Double](repeating: 0, count: logits.count)
            var sum = 0.0
            for j in 0..<logits.count { sum += exp(Double(logits[j]) - mx); cdf[j] = sum }
            var picked: [Int: Double] = [:]
            for _ in 0..<samples {
                let u = rng.unit() * sum
                var lo = 0, hi = cdf.count - 1
                while lo < hi { let mid = (lo + hi) / 2; if cdf[mid] < u { lo = mid + 1 } else { hi = mid } }
                picked[lo] = (cdf[lo] - (lo > 0 ? cdf[lo - 1] : 0)) / sum
            }
            let ids = picked.keys.sorted()
            let mass = ids.reduce(0) { $0 + picked[$1]! }
            out[t] = SoftTarget(ids: ids, probabilities: ids.map { Float(picked[$0]! / mass) })
        }
        return out
    }
}
