// LoRA (issue 21): the adapters' gradients against finite differences, the merged weights giving the adapted
// model's loss, fresh adapters leaving the base model as it was, and the tiny model learning its mapping with the
// base frozen.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaTestSupport
import GemmaTokenizer
import GemmaTrain
import Testing

@Suite struct LoRATests {
    static func randomModel(lora: LoRAConfig) throws -> (TextModelGradient, [Float], [Float]) {
        let config = try GradientTests.smallConfig()
        let model = TextModelGradient(config: config, normOffset: 1, lora: lora)
        var random = TestRandom(seed: 777)
        func gaussian() -> Float { random.gaussian() }
        let params = (0..<model.layout.count).map { _ in gaussian() * 0.3 }
        // Non-zero B as well, so that A's gradient is not zero.
        let adapters = (0..<model.lora!.count).map { _ in gaussian() * 0.2 }
        return (model, params, adapters)
    }

    static let tokens = [2, 7, 13, 7, 31, 5, 22, 39]
    static let targets: [Int?] = [nil, 13, 7, 31, 5, 22, 39, 1]

    /// Central differences of `loss` on `perEntry` values of each adapter's A and of its B against `grad`; the worst
    /// relative error where the difference is not tiny, and the count checked.
    static func checkAgainstFiniteDifferences(_ lora: LoRALayout, _ adapters: [Float], _ grad: [Float], perEntry: Int,
                                              loss: ([Float]) throws -> Double) throws -> (worst: Double, checked: Int) {
        var worst = 0.0, checked = 0
        for e in lora.entries {
            for (base, size) in [(e.a, lora.config.rank * e.inDim), (e.b, e.outDim * lora.config.rank)] {
                for k in 0..<perEntry {
                    let i = base + (k * 37 + 5) % size
                    var plus = adapters, minus = adapters
                    plus[i] += 1e-2
                    minus[i] -= 1e-2
                    let fd = (try loss(plus) - loss(minus)) / 2e-2
                    #expect(abs(fd - Double(grad[i])) <= 2e-4 + 1e-2 * abs(fd), "layer \(e.layer) \(e.module): analytic \(grad[i]), finite difference \(fd)")
                    if abs(fd) > 1e-2 { worst = max(worst, abs(fd - Double(grad[i])) / abs(fd)) }
                    checked += 1
                }
            }
        }
        return (worst, checked)
    }

    @Test func adapterGradientsMatchFiniteDifferences() throws {
        let (model, params, adapters) = try Self.randomModel(lora: LoRAConfig(rank: 2, alpha: 3))
        let lora = model.lora!
        var grad = [Float](repeating: 0, count: lora.count)
        _ = try grad.withUnsafeMutableBufferPointer { g in
            try model.loss(parameters: params, adapters: adapters, tokens: Self.tokens, targets: Self.targets, gradient: g.baseAddress!)
        }
        let (worst, checked) = try Self.checkAgainstFiniteDifferences(lora, adapters, grad, perEntry: 2) { a in
            Double(try model.loss(parameters: params, adapters: a, tokens: Self.tokens, targets: Self.targets))
        }
        print("LoRA finite differences: \(checked) entries of \(lora.entries.count) adapters, worst relative error \(worst)")
    }

    /// LoRA dropout: with a fixed seed the masked loss is a deterministic function of the adapters, so its gradient
    /// (masked in A's gradient and in the input's gradient through the adapter) is checked by finite differences of
    /// that same loss; every adapter of every layer sees its own mask.
    @Test func dropoutGradientsMatchFiniteDifferencesOfTheMaskedLoss() throws {
        let (model, params, adapters) = try Self.randomModel(lora: LoRAConfig(rank: 2, alpha: 3, dropout: 0.3))
        let lora = model.lora!, seed: UInt64 = 41
        func loss(_ a: [Float]) throws -> Double {
            Double(try model.loss(parameters: params, adapters: a, tokens: Self.tokens, targets: Self.targets, dropoutSeed: seed))
        }
        var grad = [Float](repeating: 0, count: lora.count)
        let masked = try grad.withUnsafeMutableBufferPointer { g in
            try model.loss(parameters: params, adapters: adapters, tokens: Self.tokens, targets: Self.targets,
                           gradient: g.baseAddress!, dropoutSeed: seed)
        }
        let plain = try model.loss(parameters: params, adapters: adapters, tokens: Self.tokens, targets: Self.targets)
        #expect(abs(masked - plain) > 1e-3, "the masks change the loss: \(masked) vs \(plain)")
        #expect(Double(masked) == (try loss(adapters)), "the same seed draws the same masks")
        let (worst, checked) = try Self.checkAgainstFiniteDifferences(lora, adapters, grad, perEntry: 3, loss: loss)
        print("LoRA dropout finite differences: \(checked) entries of \(lora.entries.count) adapters, worst relative error \(worst)")
    }

    /// Dropout acts on the adapters' path only: with B = 0 the masked loss is the base model's, bit for bit; the share
    /// dropped is the probability asked; and evaluation (no seed) has no dropout.
    @Test func dropoutLeavesTheBasePathAndDropsTheShareAsked() throws {
        let (model, params, adapters) = try Self.randomModel(lora: LoRAConfig(rank: 4, dropout: 0.25))
        let fresh = model.lora!.initialAdapters(seed: 5)
        let base = try TextModelGradient(config: model.config, normOffset: 1).loss(parameters: params, tokens: Self.tokens, targets: Self.targets)
        #expect(try model.loss(parameters: params, adapters: fresh, tokens: Self.tokens, targets: Self.targets, dropoutSeed: 9) == base)
        let noDropout = TextModelGradient(config: model.config, normOffset: 1, lora: LoRAConfig(rank: 4))
        #expect(try model.loss(parameters: params, adapters: adapters, tokens: Self.tokens, targets: Self.targets)
            == noDropout.loss(parameters: params, adapters: adapters, tokens: Self.tokens, targets: Self.targets))
        // The masks: 0 or 1 / (1 - p), the share dropped within 4 standard deviations of p, and a stream per
        // (seed, layer, module).
        let n = 100_000
        let mask = LoRALayout.dropoutMask(seed: 123, layer: 1, module: .gate, count: n, probability: 0.25)
        #expect(mask.allSatisfy { $0 == 0 || $0 == Float(1) / 0.75 })
        let dropped = Double(mask.filter { $0 == 0 }.count) / Double(n)
        #expect(abs(dropped - 0.25) < 4 * (0.25 * 0.75 / Double(n)).squareRoot(), "dropped \(dropped)")
        #expect(mask != LoRALayout.dropoutMask(seed: 123, layer: 1, module: .up, count: n, probability: 0.25))
        #expect(mask != LoRALayout.dropoutMask(seed: 124, layer: 1, module: .gate, count: n, probability: 0.25))
        #expect(mask == LoRALayout.dropoutMask(seed: 123, layer: 1, module: .gate, count: n, probability: 0.25))
    }

    @Test func mergedWeightsGiveTheAdaptedLossAndFreshAdaptersTheBase() throws {
        let (model, params, adapters) = try Self.randomModel(lora: LoRAConfig(rank: 4, targets: [.q, .v, .o, .down]))
        let adapted = try model.loss(parameters: params, adapters: adapters, tokens: Self.tokens, targets: Self.targets)
        let plain = TextModelGradient(config: model.config, normOffset: 1)
        let merged = try plain.loss(parameters: model.lora!.merged(params, layout: model.layout, adapters: adapters),
                                    tokens: Self.tokens, targets: Self.targets)
        #expect(abs(adapted - merged) <= 1e-5 * abs(adapted), "\(adapted) vs \(merged)")
        let base = try plain.loss(parameters: params, tokens: Self.tokens, targets: Self.targets)
        let fresh = try model.loss(parameters: params, adapters: model.lora!.initialAdapters(seed: 3), tokens: Self.tokens, targets: Self.targets)
        #expect(fresh == base)  // B = 0: the product adds exactly zero
        #expect(model.lora!.entries.count == 3 * 4)
    }

    @Test func loraLearnsAMappingWithTheBaseFrozen() throws {
        let fixture = TrainerTests.fixture
        let tk = try Tokenizer(directory: fixture)
        let checkpoint = try Checkpoint.open(path: fixture)
        let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: LoRAConfig(rank: 8))
        let words = [("one", "red"), ("two", "green"), ("three", "blue"), ("four", "black")]
        let (examples, _) = TrainingData.parse(words.map { #"{"prompt": "\#($0.0)", "completion": "\#($0.1)"}"# }.joined(separator: "\n"),
                                               tokenizer: tk, maxTokens: 64)
        let base = try checkpoint.trainableParameters(model.layout)
        let trainer = Trainer(model: model, parameters: base, schedule: LearningRateSchedule(peak: 2e-2, warmup: 2, total: 60))
        let before = try trainer.evaluate(examples)
        for _ in 0..<60 { _ = try trainer.step(examples) }
        let after = try trainer.evaluate(examples)
        print("LoRA rank 8 (\(model.lora!.count) values, \(model.layout.count) frozen): loss \(before) -> \(after)")
        #expect(trainer.parameters == base)
        #expect(after < 0.1 * before)
        // The merged model without adapters has the same loss.
        let plain = Trainer(model: TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset),
                            parameters: trainer.mergedParameters, schedule: LearningRateSchedule(peak: 0, warmup: 0, total: 1))
        let merged = try plain.evaluate(examples)
        #expect(abs(merged - after) <= 1e-3 * max(after, 1e-3) + 1e-5, "\(merged) vs \(after)")
    }
}

/// Quantization-aware training: the forward pass sees the weights as the release format stores them (straight-through
/// gradients), so the quantized result keeps the task better than quantizing after training. A random model whose
/// widths are whole blocks of 32 (64 wide, heads of 32, FFN 128) learns to map 16 tokens to 16 others.
@Suite struct QATTests {
    static func model() throws -> (TextModelGradient, [Float]) {
        let json = #"""
        {"model_type": "gemma3_text", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
         "rms_norm_eps": 1e-6, "max_position_embeddings": 64, "sliding_window": 4, "sliding_window_pattern": 2,
         "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "query_pre_attn_scalar": 32}
        """#
        let config = try Gemma3Config(huggingFace: JSONValue.parse(Array(json.utf8)))
        let model = TextModelGradient(config: config, normOffset: 1)
        var random = TestRandom(seed: 99)
        func gaussian() -> Float { random.gaussian() }
        var params = [Float](repeating: 0, count: model.layout.count)
        for e in model.layout.entries where e.shape.count == 2 {
            for i in 0..<e.count { params[e.offset + i] = gaussian() * 0.1 }
        }
        return (model, params)
    }

    @Test(arguments: [QATFormat.int4Block, .int4Channel, .sfp8]) func qatBeatsQuantizingAfterTraining(_ format: QATFormat) throws {
        let (model, start) = try Self.model()
        // 48 tokens each mapped to one of 48 (a permutation): 48 classes in 64 dimensions leave small margins, which
        // quantization noise disturbs.
        let examples = (0..<48).map { i in TrainingExample(tokens: [2, 3 + i], targets: [nil, 3 + (i * 7) % 48], line: i + 1) }
        func train(qat: QATFormat?) throws -> Trainer {
            let t = Trainer(model: model, parameters: start, schedule: LearningRateSchedule(peak: 3e-3, warmup: 3, total: 80))
            t.qat = qat
            for _ in 0..<80 { _ = try t.step(examples) }
            return t
        }
        let ptq = try train(qat: nil), qat = try train(qat: format)
        let ptqFloat = try ptq.evaluate(examples)
        ptq.qat = format  // evaluated as the format stores it
        let ptqQuantized = try ptq.evaluate(examples), qatQuantized = try qat.evaluate(examples)
        print("\(format.rawValue): trained in f32 \(ptqFloat), quantized after training \(ptqQuantized), trained quantization-aware \(qatQuantized)")
        if format == .sfp8 {
            // SFP8 barely hurts this model (0.0151 against 0.0148 in f32): quantization-aware training is not worse.
            #expect(qatQuantized <= ptqQuantized * 1.02)
        } else {
            // int4: 0.0174 (per block) and 0.0192 (per channel) after training in f32, 0.0150 and 0.0149 with QAT.
            #expect(qatQuantized < ptqQuantized - 0.1 * (ptqQuantized - ptqFloat))
        }
        // Per block of 32, quantizing what the format stores again changes nothing (a fixed point).
        if format == .int4Block {
            let once = try format.fakeQuantized(qat.parameters, layout: model.layout)
            let twice = try format.fakeQuantized(once, layout: model.layout)
            #expect(zip(once, twice).filter { $0 != $1 }.count == 0)
        }
    }

    /// QAT with LoRA: the forward pass sees the merged weight quantized, Q(W + s B A) - s B A plus the adapters'
    /// term, and the weights without an adapter quantized as they are. The trainer quantizes the latter once and redoes
    /// only the adapted matrices, on two threads, after each step; the loss it evaluates is the one computed from the
    /// whole model merged and quantized on one thread, before and after a step.
    @Test(arguments: [QATFormat.int4Block, .sfp8]) func qatWithLoRARequantizesTheAdaptedMatrices(_ format: QATFormat) throws {
        let (plain, start) = try Self.model()
        let model = TextModelGradient(config: plain.config, normOffset: 1, lora: LoRAConfig(rank: 4, targets: [.q, .v, .down]))
        let lora = model.lora!
        var random = TestRandom(seed: 5)
        let adapters = (0..<lora.count).map { _ in random.gaussian() * 0.05 }
        let examples = (0..<12).map { i in TrainingExample(tokens: [2, 3 + i, 5], targets: [nil, 3 + (i * 7) % 48, 4], line: i + 1) }
        func reference(_ adapters: [Float]) throws -> Float {
            let merged = lora.merged(start, layout: model.layout, adapters: adapters)
            var base = try format.fakeQuantized(merged, layout: model.layout)
            for i in base.indices where merged[i] != start[i] { base[i] += start[i] - merged[i] }
            var sum = 0.0
            for e in examples { sum += Double(try model.loss(parameters: base, adapters: adapters, tokens: e.tokens, targets: e.targets)) }
            return Float(sum / Double(examples.count))
        }
        let t = Trainer(model: model, parameters: start, adapters: adapters, schedule: LearningRateSchedule(peak: 1e-2, warmup: 0, total: 4))
        t.qat = format
        t.threads = 2
        let before = try t.evaluate(examples), expected = try reference(adapters)
        #expect(abs(before - expected) <= 1e-6 * abs(expected), "\(before) vs \(expected)")
        // Not the loss of the unquantized model: the quantization shows.
        let unquantized = try examples.map { try model.loss(parameters: start, adapters: adapters, tokens: $0.tokens, targets: $0.targets) }
            .reduce(0, +) / Float(examples.count)
        #expect(abs(before - unquantized) > 1e-4, "\(before) vs \(unquantized)")
        _ = try t.step(examples)
        #expect(t.adapters != adapters)
        let after = try t.evaluate(examples), expectedAfter = try reference(t.adapters)
        #expect(abs(after - expectedAfter) <= 1e-6 * abs(expectedAfter), "\(after) vs \(expectedAfter)")
        // The merged weights, one thread or two, are the same bits.
        #expect(lora.merged(start, layout: model.layout, adapters: t.adapters, threads: 2)
            == lora.merged(start, layout: model.layout, adapters: t.adapters))
    }

    @Test func widthsThatAreNotWholeBlocksAreRefused() throws {
        let checkpoint = try Checkpoint.open(path: TrainerTests.fixture)  // 72 wide
        let layout = ParameterLayout(config: checkpoint.config)
        #expect(throws: TrainError.self) { try QATFormat.int4Block.fakeQuantized(try checkpoint.trainableParameters(layout), layout: layout) }
    }
}

/// The report's distillation: the teacher's probabilities on 256 sampled ids, renormalized, learned by cross-entropy.
@Suite struct DistillationTests {
    @Test func softTargetGradientsMatchFiniteDifferencesAndOneHotIsCrossEntropy() throws {
        let config = try GradientTests.smallConfig()
        let model = TextModelGradient(config: config, normOffset: 1)
        var random = TestRandom(seed: 4242)
        func unit() -> Float { random.unitFloat() }
        let params = (0..<model.layout.count).map { _ in (unit() - 0.5) * 0.8 }
        let tokens = LoRATests.tokens, targets = LoRATests.targets
        var soft = [SoftTarget?](repeating: nil, count: tokens.count)
        for t in 2..<tokens.count {
            let ids = [Int](Set((0..<6).map { _ in Int(unit() * 40) })).sorted()
            let w = ids.map { _ in unit() + 0.1 }
            let total = w.reduce(0, +)
            soft[t] = SoftTarget(ids: ids, probabilities: w.map { $0 / total })
        }
        var grad = [Float](repeating: 0, count: params.count)
        _ = try grad.withUnsafeMutableBufferPointer { g in
            try model.loss(parameters: params, tokens: tokens, targets: targets, soft: soft, gradient: g.baseAddress!)
        }
        var checked = 0
        for e in model.layout.entries where [Gemma3Weight.embedding, .finalNorm, .layer(2, .down), .layer(0, .q)].contains(e.weight) {
            for k in 0..<3 {
                checked += 1
                let i = e.offset + (k * 101 + 3) % e.count
                var plus = params, minus = params
                plus[i] += 1e-2
                minus[i] -= 1e-2
                let fd = (Double(try model.loss(parameters: plus, tokens: tokens, targets: targets, soft: soft))
                    - Double(try model.loss(parameters: minus, tokens: tokens, targets: targets, soft: soft))) / 2e-2
                #expect(abs(fd - Double(grad[i])) <= 2e-4 + 1e-2 * abs(fd), "\(e.weight): analytic \(grad[i]), finite difference \(fd)")
            }
        }
        #expect(checked == 12)
        // A one-hot teacher is the token's cross-entropy.
        let oneHot: [SoftTarget?] = targets.map { $0.map { SoftTarget(ids: [$0], probabilities: [1]) } }
        let a = try model.loss(parameters: params, tokens: tokens, targets: targets)
        let b = try model.loss(parameters: params, tokens: tokens, targets: targets, soft: oneHot)
        #expect(a == b)
    }

    /// A teacher (the tiny model fine-tuned on the mapping, run by the engine from its written folder) teaches the
    /// base tiny model through 256 sampled logits per position, without the student seeing the answers' tokens.
    @Test func aStudentLearnsFromATeacherTheEngineRuns() throws {
        let fixture = TrainerTests.fixture
        let tk = try Tokenizer(directory: fixture)
        let checkpoint = try Checkpoint.open(path: fixture)
        let model = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset)
        let words = [("one", "red"), ("two", "green"), ("three", "blue"), ("four", "black")]
        let (examples, _) = TrainingData.parse(words.map { #"{"prompt": "\#($0.0)", "completion": "\#($0.1)"}"# }.joined(separator: "\n"),
                                               tokenizer: tk, maxTokens: 64)
        let base = try checkpoint.trainableParameters(model.layout)
        let teacherTrainer = Trainer(model: model, parameters: base, schedule: LearningRateSchedule(peak: 1e-2, warmup: 3, total: 40))
        for _ in 0..<40 { _ = try teacherTrainer.step(examples) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-teacher-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TrainedModel.write(teacherTrainer.parameters, layout: model.layout, like: checkpoint, to: dir)
        let teacher = try Gemma3Model(path: dir)
        var distilled = examples
        for i in distilled.indices {
            distilled[i].soft = try Distillation.targets(for: distilled[i], teacher: teacher, seed: UInt64(i))
            let firstSoft = distilled[i].soft!.compactMap { $0 }.first!
            #expect(abs(firstSoft.probabilities.reduce(0, +) - 1) < 1e-5 && firstSoft.ids.count <= 256)
        }
        let student = Trainer(model: model, parameters: base, schedule: LearningRateSchedule(peak: 1e-2, warmup: 3, total: 40))
        let before = try student.evaluate(examples)
        for _ in 0..<40 { _ = try student.step(distilled) }
        let after = try student.evaluate(examples)  // the answers' own cross-entropy, never trained on directly
        print("distillation: the student's loss on the answers \(before) -> \(after)")
        #expect(after < 0.1 * before)
    }
}
