// AdamW (Loshchilov & Hutter: decoupled weight decay) with a linear warm-up and cosine decay of the learning rate,
// and gradient clipping by global norm, over flat f32 vectors.
import Foundation

/// The learning rate at each step: linear warm-up from 0 to `peak` over `warmup` steps, then cosine decay to
/// `floor` x peak at `total` steps (and `floor` x peak after).
public struct LearningRateSchedule: Sendable, Equatable {
    public var peak: Float
    public var warmup: Int
    public var total: Int
    public var floor: Float

    public init(peak: Float, warmup: Int, total: Int, floor: Float = 0.1) {
        self.peak = peak
        self.warmup = max(0, warmup)
        self.total = max(1, total)
        self.floor = floor
    }

    /// The rate of step `step` (from 0).
    public func rate(at step: Int) -> Float {
        if step < warmup { return peak * Float(step + 1) / Float(warmup + 1) }
        let span = max(1, total - warmup)
        let progress = min(1, Float(step - warmup) / Float(span))
        let cosine = 0.5 * (1 + cos(Float.pi * progress))
        return peak * (floor + (1 - floor) * cosine)
    }
}

/// AdamW over a flat parameter vector: m and v moments, bias correction, weight decay applied to the parameters
/// the mask selects (matrices; not norms, as is usual).
public struct AdamW: Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float
    /// Updates taken so far.
    public private(set) var steps = 0
    public private(set) var m: [Float]
    public private(set) var v: [Float]

    public init(count: Int, weightDecay: Float = 0) {
        self.weightDecay = weightDecay
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    /// Resumes with saved moments.
    public init(m: [Float], v: [Float], steps: Int, weightDecay: Float) {
        precondition(m.count == v.count)
        self.m = m
        self.v = v
        self.steps = steps
        self.weightDecay = weightDecay
    }

    /// One update of `parameters` by `gradient` at learning rate `lr`; `decays(i)` tells which entries decay.
    public mutating func update(_ parameters: inout [Float], gradient: UnsafeBufferPointer<Float>, lr: Float,
                                decayRanges: [Range<Int>] = []) {
        precondition(parameters.count == m.count && gradient.count == m.count)
        steps += 1
        let c1 = 1 - pow(beta1, Float(steps)), c2 = 1 - pow(beta2, Float(steps))
        let b1 = beta1, b2 = beta2, eps = epsilon
        m.withUnsafeMutableBufferPointer { mp in
            v.withUnsafeMutableBufferPointer { vp in
                parameters.withUnsafeMutableBufferPointer { p in
                    do {
                        let g = gradient
                        for i in 0..<p.count {
                            mp[i] = b1 * mp[i] + (1 - b1) * g[i]
                            vp[i] = b2 * vp[i] + (1 - b2) * g[i] * g[i]
                            let mHat = mp[i] / c1, vHat = vp[i] / c2
                            p[i] -= lr * mHat / (vHat.squareRoot() + eps)
                        }
                        if weightDecay > 0 {
                            let keep = 1 - lr * weightDecay
                            for r in decayRanges { for i in r { p[i] *= keep } }
                        }
                    }
                }
            }
        }
    }
}

/// Scales `gradient` so that its L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradient(_ gradient: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Float {
    // Sums of squares in f32 over blocks of 4,096, added in f64 (accurate, and the inner loop vectorizes).
    var sum = 0.0, i = 0
    while i < gradient.count {
        let end = min(gradient.count, i + 4096)
        var block: Float = 0
        for j in i..<end { block += gradient[j] * gradient[j] }
        sum += Double(block)
        i = end
    }
    let norm = Float(sum.squareRoot())
    if maxNorm > 0, norm > maxNorm {
        let s = maxNorm / norm
        for j in 0..<gradient.count { gradient[j] *= s }
    }
    return norm
}
