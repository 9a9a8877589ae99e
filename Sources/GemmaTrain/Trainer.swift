// Full fine-tuning of a Gemma 3 text model in f32: batches of examples, the gradient of their mean loss per target
// token (examples spread over the cores, each with its own gradient buffer), clipping by global norm, AdamW with a
// warm-up and cosine schedule.
import Dispatch
import Foundation
import GemmaFormats
import GemmaGenerate
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
    /// The model's weights: trained in full fine-tuning, frozen with LoRA.
    public private(set) var parameters: [Float]
    /// The LoRA adapters (trained; empty without LoRA).
    public private(set) var adapters: [Float]
    public var optimizer: AdamW
    public var schedule: LearningRateSchedule
    /// Gradients with a larger global norm are scaled down to it (0: no clipping).
    public var maxGradientNorm: Float = 1
    /// Quantization-aware training: the forward pass sees the weights as this format stores them, and their
    /// gradient updates the f32 weights (straight-through). With LoRA, the frozen base is seen quantized.
    public var qat: QATFormat? = nil { didSet { quantizedAt = -1 } }
    /// Activation recomputation: each example keeps only its layers' inputs through the forward pass (hidden floats
    /// per token and layer instead of about twenty times that), and the backward pass runs each layer again.
    public var recompute = false
    /// The seed of LoRA dropout's masks: each step, micro-batch and example draws its own from it.
    public var dropoutSeed: UInt64 = 0
    /// Threads computing a batch's examples.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Steps taken.
    public private(set) var step = 0
    let decayRanges: [Range<Int>]

    /// - Parameter adapters: With a LoRA model, the starting adapters (default: `LoRALayout.initialAdapters(seed: 0)`).
    /// - Parameter optimizer: false for a trainer that only evaluates (no AdamW moments allocated).
    public init(model: TextModelGradient, parameters: [Float], adapters: [Float]? = nil, schedule: LearningRateSchedule,
                weightDecay: Float = 0, optimizer withOptimizer: Bool = true) {
        self.model = model
        self.parameters = parameters
        self.adapters = model.lora.map { adapters ?? $0.initialAdapters(seed: 0) } ?? []
        self.schedule = schedule
        if let lora = model.lora {
            optimizer = AdamW(count: lora.count, weightDecay: weightDecay)
            decayRanges = [0..<lora.count]
        } else {
            optimizer = AdamW(count: withOptimizer ? parameters.count : 0, weightDecay: weightDecay)
            decayRanges = model.layout.entries.filter { $0.shape.count == 2 }.map { $0.offset..<($0.offset + $0.count) }
        }
    }

    /// Values trained: the adapters with LoRA, else the parameters.
    var trainedCount: Int { model.lora?.count ?? parameters.count }

    /// The weights with the adapters merged in (W + scale B A), or the parameters without LoRA.
    public var mergedParameters: [Float] {
        var base = parameters
        mergeAdapters(into: &base)
        return base
    }

    /// With LoRA, the stored base filled in and the adapters merged into `base` (the trainer's parameters).
    private func mergeAdapters(into base: inout [Float]) {
        guard let lora = model.lora else { return }
        model.stored?.fill(&base, layout: model.layout)
        lora.merge(into: &base, layout: model.layout, adapters: adapters, threads: threads)
    }

    /// `mergedParameters` without a second copy of the weights: the merge is made in the trainer's own vector, which
    /// it gives up (at the end of a run: the trainer has no parameters afterwards, and a step then fails as invalid).
    public func takeMergedParameters() -> [Float] {
        var base: [Float] = []
        swap(&base, &parameters)
        quantizedParameters = nil
        mergeAdapters(into: &base)
        return base
    }

    /// Per worker, a gradient buffer of the parameters' size, allocated once (a fresh gigabyte a step for the 270M
    /// cost more in page faults than the arithmetic).
    private var buffers: [UnsafeMutablePointer<Float>] = []
    /// With `qat`: the step `quantizedParameters` are of.
    private var quantizedAt = -1
    /// The head's logits, kept across steps (see `TextModelGradient.headLoss`).
    private var scratch: UnsafeMutablePointer<Float>?
    private var scratchCount = 0

    private func headScratch(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > scratchCount {
            scratch?.deallocate()
            scratch = .allocate(capacity: count)
            scratchCount = count
        }
        return scratch!
    }
    /// With `qat`: the weights as the format stores them, of the same step.
    private var quantizedParameters: [Float]?
    /// With `qat` and LoRA: the adapters `quantizedParameters` were made with.
    private var quantizedAdapters: [Float] = []

    /// The gradient summed over micro-batches (`step(accumulating:)`).
    private var accumulated: UnsafeMutablePointer<Float>?

    deinit {
        accumulated?.deallocate()
        for b in buffers { b.deallocate() }
        scratch?.deallocate()
    }

    private func buffers(_ workers: Int) -> [UnsafeMutablePointer<Float>] {
        while buffers.count < workers { buffers.append(.allocate(capacity: trainedCount)) }
        return Array(buffers.prefix(workers))
    }

    /// The mean loss per target token over `examples`; with `gradient`, its gradient is left in the first worker
    /// buffer, which is returned. Three phases: the examples' forward passes spread over the workers; the head on
    /// every target position of the batch together (in groups of up to 256 rows, the vocabulary split among the
    /// threads), so that the head's weights are read once per group rather than once per example; the examples'
    /// backward passes spread over the workers, each into its own gradient buffer, summed at the end.
    private func compute(_ examples: [TrainingExample], gradient wantGradient: Bool, part: Int = 0) throws(TrainError)
        -> (loss: Float, gradient: UnsafeMutablePointer<Float>?) {
        let total = examples.reduce(0) { $0 + $1.targetCount }
        guard total > 0 else { throw .input("no example has a target") }
        let model = model, adapters: [Float] = model.lora == nil ? [] : adapters
        for e in examples {
            try model.validate(parameters: parameters, adapters: model.lora == nil ? nil : adapters, tokens: e.tokens,
                               targets: e.targets, soft: e.soft)
        }
        let used = examples.filter { $0.targetCount > 0 }
        let workers = max(1, min(threads, used.count))
        let n = trainedCount
        let grads = wantGradient ? buffers(workers) : []
        // With QAT, the weights the passes read: the format's values, after every update.
        if qat != nil, model.stored != nil {
            throw .input("quantization-aware training needs the base in f32, not kept in its stored format")
        }
        if let qat, quantizedAt != step || quantizedAdapters != adapters {
            if let lora = model.lora {
                // With LoRA the format will store the merged weight W + s B A: the forward pass sees Q(W + s B A), as
                // the base Q(W + s B A) - s B A plus the adapters' own term, so that the adapters' gradient is the
                // straight-through gradient of the merged weight (quantizing W alone and adding s B A after would
                // teach the adapters to correct Q(W), a correction the merged model then carries twice). The frozen
                // weights no adapter touches are quantized once; each step redoes only the adapted matrices.
                if quantizedAt < 0 { quantizedParameters = try qat.fakeQuantized(self.parameters, layout: model.layout, threads: threads) }
                try requantizeAdapted(qat, lora)
                quantizedAdapters = adapters
            } else {
                quantizedParameters = try qat.fakeQuantized(self.parameters, layout: model.layout, threads: threads)
            }
            quantizedAt = step
        }
        let parameters = qat == nil ? self.parameters : quantizedParameters!
        let pointers = PointerList(grads)
        DispatchQueue.concurrentPerform(iterations: pointers.list.count) { w in pointers.list[w].update(repeating: 0, count: n) }
        let threads = threads, recompute = recompute
        let dropout = (model.lora?.config.dropout ?? 0) > 0
        let maskSeeds = used.indices.map { maskSeed(part: part, example: $0) }
        var loss = 0.0
        parameters.withUnsafeBufferPointer { p in
            adapters.withUnsafeBufferPointer { a in
                let passes = PassList(used.count)
                let base = PointerBox(UnsafeMutablePointer(mutating: p.baseAddress!))
                let lora = model.lora == nil ? nil : PointerBox(UnsafeMutablePointer(mutating: a.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for (j, e) in used.enumerated() where j % workers == w {
                        var pass = Pass(model, base.pointer, tokens: e.tokens, adapters: lora.map { UnsafePointer($0.pointer) })
                        pass.recompute = recompute
                        if wantGradient && dropout { pass.dropoutSeed = maskSeeds[j] }
                        pass.forward()
                        passes.items[j] = pass
                    }
                }
                // The head over the batch's target positions.
                let H = model.config.hiddenSize
                let rowsOf = used.enumerated().map { j, e in passes.items[j]!.headRows(targets: e.targets, soft: e.soft) }
                var dzOf = rowsOf.map { wantGradient ? [Float](repeating: 0, count: $0.count * H) : [] }
                let all = rowsOf.enumerated().flatMap { j, rows in rows.enumerated().map { (j, $0.offset, $0.element) } }
                var start = 0
                while start < all.count {
                    let group = all[start..<min(all.count, start + TextModelGradient.headGroup)]
                    var z = [Float](repeating: 0, count: group.count * H)
                    z.withUnsafeMutableBufferPointer { zp in
                        for (r, (j, _, t)) in group.enumerated() { passes.items[j]!.gather([t], into: zp.baseAddress! + r * H) }
                    }
                    let targets = group.map { used[$0.0].targets[$0.2] }, soft = group.map { used[$0.0].soft?[$0.2] }
                    let weights = group.map { Float(used[$0.0].targetCount) / Float(total) / Float(rowsOf[$0.0].count) }
                    var dz = wantGradient ? [Float](repeating: 0, count: group.count * H) : []
                    let losses = z.withUnsafeBufferPointer { zp in
                        dz.withUnsafeMutableBufferPointer { dp in
                            model.headLoss(z: zp.baseAddress!, targets: targets, soft: soft, rowWeights: weights, parameters: p.baseAddress!,
                                           dz: wantGradient ? dp.baseAddress! : nil,
                                           dE: wantGradient && model.lora == nil ? pointers.list[0] + model.layout.offset(.embedding) : nil,
                                           threads: threads, scratch: headScratch(group.count * model.config.vocabSize))
                        }
                    }
                    for (r, (j, k, _)) in group.enumerated() {
                        loss += losses[r] * Double(weights[r])
                        if wantGradient { for i in 0..<H { dzOf[j][k * H + i] = dz[r * H + i] } }
                    }
                    start += group.count
                }
                guard wantGradient else { return }
                let dzList = dzOf
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for j in used.indices where j % workers == w {
                        var pass = passes.items[j]!
                        if model.lora == nil { pass.baseGrad = pointers.list[w] } else { pass.loraGrad = pointers.list[w] }
                        pass.backward(dz: dzList[j], rows: rowsOf[j])
                        passes.items[j] = nil
                    }
                }
            }
        }
        guard wantGradient else { return (Float(loss), nil) }
        // Sum the workers' buffers into the first, in slices across the workers.
        let slices = max(1, threads)
        DispatchQueue.concurrentPerform(iterations: slices) { s in
            let lo = n * s / slices, hi = n * (s + 1) / slices
            let g0 = pointers.list[0]
            for w in 1..<max(1, pointers.list.count) {
                let gw = pointers.list[w]
                for i in lo..<hi { g0[i] += gw[i] }
            }
        }
        return (Float(loss), grads[0])
    }

    /// The dropout masks' seed of an example of this step (a function of the step, so a resumed run draws the masks
    /// it would have drawn).
    private func maskSeed(part: Int, example: Int) -> UInt64 {
        var g = SeededGenerator(seed: dropoutSeed ^ UInt64(step) &* 0x100_0000_01B3 ^ UInt64(part) << 40 ^ UInt64(example) << 20)
        return g.next()
    }

    /// With QAT and LoRA: each adapted matrix of `quantizedParameters` set to Q(W + s B A) - s B A (as the difference
    /// W - (W + s B A), whose rounding `LoRALayout.merged` fixes), the matrices spread over the threads.
    private func requantizeAdapted(_ qat: QATFormat, _ lora: LoRALayout) throws(TrainError) {
        let layout = model.layout
        let jobs = lora.entries.sorted { $0.inDim * $0.outDim > $1.inDim * $1.outDim }
        let workers = max(1, min(threads, jobs.count))
        let failures = FailureList(jobs.count)
        let largest = jobs.map { $0.inDim * $0.outDim }.max() ?? 0
        self.parameters.withUnsafeBufferPointer { pp in
            adapters.withUnsafeBufferPointer { ap in
                quantizedParameters!.withUnsafeMutableBufferPointer { qp in
                    let p = PointerBox(UnsafeMutablePointer(mutating: pp.baseAddress!)), q = PointerBox(qp.baseAddress!)
                    let a = PointerBox(UnsafeMutablePointer(mutating: ap.baseAddress!))
                    DispatchQueue.concurrentPerform(iterations: workers) { t in
                        let merged = UnsafeMutablePointer<Float>.allocate(capacity: largest)
                        defer { merged.deallocate() }
                        for (j, e) in jobs.enumerated() where j % workers == t {
                            let entry = layout.entry(.layer(e.layer, e.module))
                            let n = entry.count, w = p.pointer + entry.offset, out = q.pointer + entry.offset
                            merged.update(from: w, count: n)
                            lora.merge(e, into: merged, adapters: a.pointer)
                            out.update(from: merged, count: n)
                            do throws(TrainError) { try qat.fakeQuantize(out, entry) } catch {
                                failures.items[j] = error
                                continue
                            }
                            for i in 0..<n where merged[i] != w[i] { out[i] += w[i] - merged[i] }
                        }
                    }
                }
            }
        }
        if let failure = failures.items.compactMap({ $0 }).first { throw failure }
    }

    /// One optimizer step on a batch.
    public func step(_ batch: [TrainingExample]) throws(TrainError) -> StepReport {
        try step(accumulating: [batch])
    }

    /// One optimizer step on the gradient accumulated over `batches` (micro-batches computed one after another, each
    /// weighed by its share of the targets): the step of their union, with one micro-batch's activations in memory at
    /// a time.
    public func step(accumulating batches: [[TrainingExample]]) throws(TrainError) -> StepReport {
        let all = batches.flatMap { $0 }
        let total = all.reduce(0) { $0 + $1.targetCount }
        guard total > 0 else { throw .input("no example has a target") }
        let parts = batches.filter { $0.contains { $0.targetCount > 0 } }
        var loss: Float = 0
        var g: UnsafeMutablePointer<Float>? = nil
        if parts.count == 1 {
            (loss, g) = try compute(parts[0], gradient: true)
        } else {
            if accumulated == nil { accumulated = .allocate(capacity: trainedCount) }
            let acc = accumulated!, n = trainedCount
            for (i, part) in parts.enumerated() {
                let share = Float(part.reduce(0) { $0 + $1.targetCount }) / Float(total)
                let (l, pg) = try compute(part, gradient: true, part: i)
                loss += l * share
                if i == 0 { for j in 0..<n { acc[j] = pg![j] * share } } else { for j in 0..<n { acc[j] += pg![j] * share } }
            }
            g = acc
        }
        let gradient = UnsafeMutableBufferPointer(start: g!, count: trainedCount)
        let norm = clipGradient(gradient, maxNorm: maxGradientNorm)
        let lr = schedule.rate(at: step)
        if model.lora != nil {
            optimizer.update(&adapters, gradient: UnsafeBufferPointer(gradient), lr: lr, decayRanges: decayRanges)
        } else {
            optimizer.update(&parameters, gradient: UnsafeBufferPointer(gradient), lr: lr, decayRanges: decayRanges)
        }
        step += 1
        return StepReport(loss: loss, gradientNorm: norm, learningRate: lr, tokens: all.reduce(0) { $0 + $1.tokens.count },
                          targets: total)
    }

    /// Mean loss per target token over `examples`, without a gradient (with `qat`, of the weights as the format stores
    /// them).
    /// Runs in chunks of 16 examples (a pass keeps its activations until the head has run).
    public func evaluate(_ examples: [TrainingExample]) throws(TrainError) -> Float {
        let total = examples.reduce(0) { $0 + $1.targetCount }
        guard total > 0 else { throw .input("no example has a target") }
        var loss = 0.0, start = 0
        while start < examples.count {
            let chunk = Array(examples[start..<min(examples.count, start + 16)])
            start += chunk.count
            let targets = chunk.reduce(0) { $0 + $1.targetCount }
            guard targets > 0 else { continue }
            loss += Double(try compute(chunk, gradient: false).loss) * Double(targets)
        }
        return Float(loss / Double(total))
    }
}

/// Pointers handed to concurrent workers (each writes only its own buffer or slice).
private struct PointerList: @unchecked Sendable {
    let list: [UnsafeMutablePointer<Float>]
    init(_ list: [UnsafeMutablePointer<Float>]) { self.list = list }
}

/// The batch's passes between the phases (each worker writes only its own entries).
private final class PassList: @unchecked Sendable {
    let items: UnsafeMutablePointer<Pass?>
    let count: Int
    init(_ count: Int) {
        self.count = count
        items = .allocate(capacity: max(1, count))
        items.initialize(repeating: nil, count: count)
    }
    deinit {
        items.deinitialize(count: count)
        items.deallocate()
    }
}

// MARK: Checkpoints

extension Trainer {
    /// Writes what resuming needs to `path` (safetensors, under a temporary name, then renamed): the trained values
    /// (the weights, or the LoRA adapters), AdamW's moments and step counts, and `extra` metadata (the caller's
    /// description of the run, compared when resuming).
    public func saveState(to path: String, extra: [String: String] = [:]) throws(TrainError) {
        var writer = SafetensorsWriter()
        writer.setMetadata("\(step)", forKey: "step")
        writer.setMetadata("\(optimizer.steps)", forKey: "optimizer_steps")
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { writer.setMetadata(v, forKey: k) }
        func bytes(_ a: [Float]) -> [UInt8] { a.withUnsafeBytes { [UInt8]($0) } }
        do {
            try writer.addTensor(name: "trained", dtype: .F32, shape: [trainedCount], data: bytes(model.lora == nil ? parameters : adapters))
            try writer.addTensor(name: "adam_m", dtype: .F32, shape: [trainedCount], data: bytes(optimizer.m))
            try writer.addTensor(name: "adam_v", dtype: .F32, shape: [trainedCount], data: bytes(optimizer.v))
            try writer.write(to: path)
        } catch { throw .weight("\(path): \(error)") }
    }

    /// Restores a state `saveState` wrote; returns its metadata. Refuses a state of another size.
    @discardableResult
    public func restoreState(from path: String) throws(TrainError) -> [String: String] {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw .input("\(path): \(error)") }
        func floats(_ name: String) throws(TrainError) -> [Float] {
            guard let t = file.tensor(named: name), t.dtype == .F32, t.shape == [trainedCount] else {
                throw .input("\(path): no \(name) of \(trainedCount) f32 values (another model or mode?)")
            }
            return Array(file.data(for: t).bindMemory(to: Float.self))
        }
        let trained = try floats("trained"), m = try floats("adam_m"), v = try floats("adam_v")
        var meta: [String: String] = [:]
        for (k, v) in file.metadata { meta[k] = v }
        guard let s = meta["step"].flatMap(Int.init), let o = meta["optimizer_steps"].flatMap(Int.init) else {
            throw .input("\(path): no step counts in the metadata")
        }
        if model.lora == nil { parameters = trained } else { adapters = trained }
        quantizedAt = -1
        optimizer = AdamW(m: m, v: v, steps: o, weightDecay: optimizer.weightDecay)
        step = s
        return meta
    }
}
