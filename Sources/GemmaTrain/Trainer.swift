// Full fine-tuning of a Gemma 3 text model in f32: batches of examples, the gradient of their mean loss per target
// token (examples spread over the cores, each with its own gradient buffer), clipping by global norm, AdamW with a
// warm-up and cosine schedule.
import Dispatch
import Foundation
import GemmaModel

/// What one optimizer step did.
public struct StepReport: Sendable {
    /// Mean cross-entropy per target token of the batch, before the update.
    public var loss: Float
    public var gradientNorm: Float
    public var learningRate: Float
    /// Tokens run through the model, and those with a loss.
    public var tokens: Int
    public var targets: Int
}

public final class Trainer: @unchecked Sendable {
    public let model: TextModelGradient
    public private(set) var parameters: [Float]
    public var optimizer: AdamW
    public var schedule: LearningRateSchedule
    /// Gradients with a larger global norm are scaled down to it (0: no clipping).
    public var maxGradientNorm: Float = 1
    /// Threads computing a batch's examples.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Steps taken.
    public private(set) var step = 0
    let decayRanges: [Range<Int>]

    public init(model: TextModelGradient, parameters: [Float], schedule: LearningRateSchedule, weightDecay: Float = 0) {
        self.model = model
        self.parameters = parameters
        self.schedule = schedule
        optimizer = AdamW(count: parameters.count, weightDecay: weightDecay)
        decayRanges = model.layout.entries.filter { $0.shape.count == 2 }.map { $0.offset..<($0.offset + $0.count) }
    }

    /// The mean loss per target token over `examples` and, when `gradient` is given, its gradient (overwritten).
    public func loss(_ examples: [TrainingExample], gradient: inout [Float]?) throws(TrainError) -> Float {
        let total = examples.reduce(0) { $0 + $1.targetCount }
        guard total > 0 else { throw .input("no example has a target") }
        let workers = max(1, min(threads, examples.count))
        let n = parameters.count, wantGradient = gradient != nil
        let results = WorkerResults(workers)
        let parameters = parameters, model = model
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var g = wantGradient ? [Float](repeating: 0, count: n) : []
            var sum = 0.0
            for (i, e) in examples.enumerated() where i % workers == w && e.targetCount > 0 {
                let weight = Float(e.targetCount) / Float(total)
                do {
                    let l = try g.withUnsafeMutableBufferPointer { gp in
                        try model.loss(parameters: parameters, tokens: e.tokens, targets: e.targets,
                                       gradient: wantGradient ? gp.baseAddress! : nil, weight: weight)
                    }
                    sum += Double(l) * Double(weight)
                } catch {
                    results.fail((error as? TrainError) ?? .input("\(error)"))
                }
            }
            results.set(w, gradient: g, loss: sum)
        }
        let (partial, losses, failure) = (results.gradients, results.losses, results.failure)
        if let failure { throw failure }
        if wantGradient {
            var g = partial[0]
            for w in 1..<workers { for i in 0..<n { g[i] += partial[w][i] } }
            gradient = g
        }
        return Float(losses.reduce(0, +))
    }

    /// One optimizer step on a batch.
    public func step(_ batch: [TrainingExample]) throws(TrainError) -> StepReport {
        var gradient: [Float]? = []
        let loss = try loss(batch, gradient: &gradient)
        var g = gradient!
        let norm = clipGradient(&g, maxNorm: maxGradientNorm)
        let lr = schedule.rate(at: step)
        optimizer.update(&parameters, gradient: g, lr: lr, decayRanges: decayRanges)
        step += 1
        return StepReport(loss: loss, gradientNorm: norm, learningRate: lr, tokens: batch.reduce(0) { $0 + $1.tokens.count },
                          targets: batch.reduce(0) { $0 + $1.targetCount })
    }

    /// Mean loss per target token over `examples`, without a gradient.
    public func evaluate(_ examples: [TrainingExample]) throws(TrainError) -> Float {
        var none: [Float]? = nil
        return try loss(examples, gradient: &none)
    }
}

/// Each worker's gradient and loss, and the first failure.
private final class WorkerResults: @unchecked Sendable {
    private let lock = NSLock()
    var gradients: [[Float]]
    var losses: [Double]
    var failure: TrainError?

    init(_ workers: Int) {
        gradients = [[Float]](repeating: [], count: workers)
        losses = [Double](repeating: 0, count: workers)
    }

    func set(_ w: Int, gradient: [Float], loss: Double) {
        lock.lock(); defer { lock.unlock() }
        gradients[w] = gradient
        losses[w] = loss
    }

    func fail(_ e: TrainError) {
        lock.lock(); defer { lock.unlock() }
        if failure == nil { failure = e }
    }
}
