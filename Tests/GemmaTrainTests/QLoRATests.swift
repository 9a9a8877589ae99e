// LoRA over a base kept in its stored format (issue 21, QLoRA): the tiny model converted to a q8_0 GGUF (the widths
// that are not whole blocks fall back per tensor, so q8_0 and f16 matrices both occur), trained with its projections
// read from the file through the products' dequantizing packing, gives the loss, adapter gradient and merged weights
// of the same model with every weight dequantized to f32 up front, and leaves those weights out of the parameter
// vector.
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaModel
import GemmaTrain
import Testing

@Suite struct QLoRATests {
    @Test func aStoredBaseGivesTheF32BasesLossGradientAndMergedModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-qlora-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Converter.convert(input: TrainerTests.fixture, output: dir + "/tiny.gguf", options: ConvertOptions(type: .q8_0))
        let types = Set(try GGUFFile(path: dir + "/tiny.gguf").tensors.filter { $0.name.hasPrefix("blk.") && $0.dimensions.count == 2 }.map(\.type))
        #expect(types.contains(.q8_0) && types.count > 1, "stored types \(types)")

        let checkpoint = try Checkpoint.open(path: dir + "/tiny.gguf")
        let stored = try StoredBase(checkpoint)
        let lora = LoRAConfig(rank: 4)
        let plain = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: lora)
        let kept = TextModelGradient(config: checkpoint.config, normOffset: checkpoint.normOffset, lora: lora, stored: stored)
        let full = try checkpoint.trainableParameters(plain.layout)
        let partial = try checkpoint.trainableParameters(kept.layout, leaving: stored)
        var random = TestRandom(seed: 99)
        let adapters = (0..<plain.lora!.count).map { _ in random.gaussian() * 0.1 }
        let tokens = [2, 105, 236, 107, 17, 300, 41, 106, 107, 105, 436, 107, 77, 512, 106]
        let targets: [Int?] = tokens.indices.map { $0 >= 11 && $0 + 1 < tokens.count ? tokens[$0 + 1] : nil }
        func run(_ m: TextModelGradient, _ p: [Float]) throws -> (Float, [Float]) {
            var g = [Float](repeating: 0, count: m.lora!.count)
            let l = try g.withUnsafeMutableBufferPointer { gp in
                try m.loss(parameters: p, adapters: adapters, tokens: tokens, targets: targets, gradient: gp.baseAddress!)
            }
            return (l, g)
        }
        let (l0, g0) = try run(plain, full), (l1, g1) = try run(kept, partial)
        #expect(l0 == l1, "loss \(l0) vs \(l1)")
        let worst = zip(g0, g1).map { abs($0 - $1) }.max() ?? 0, scale = g0.map(abs).max() ?? 1
        #expect(worst <= 1e-6 * scale, "adapter gradients differ by \(worst) (largest \(scale))")

        // The merged models agree too: the stored matrices come back dequantized before the adapters are added.
        let schedule = LearningRateSchedule(peak: 1e-3, warmup: 0, total: 1)
        let a = Trainer(model: plain, parameters: full, adapters: adapters, schedule: schedule)
        let b = Trainer(model: kept, parameters: partial, adapters: adapters, schedule: schedule)
        #expect(a.mergedParameters == b.mergedParameters)
        // And quantization-aware training, which needs the f32 base, is refused.
        b.qat = .int4Block
        let example = TrainingExample(tokens: tokens, targets: targets)
        #expect(throws: TrainError.self) { try b.evaluate([example]) }
    }
}
