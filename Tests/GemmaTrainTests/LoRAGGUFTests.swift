// The LoRA adapter as a llama.cpp adapter GGUF (issue 21): read back by the project's GGUF reader, the file has the
// keys llama.cpp's src/llama-adapter.cpp requires, one lora_a/lora_b pair per adapted base tensor with the shapes it
// checks, and the values: alpha / rank B A read from the file in ggml's order is the merged model's change to W.
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import GemmaTrain
import Testing

@Suite struct LoRAGGUFTests {
    @Test func adapterGGUFHasLlamaCppLayoutAndTheMergedDelta() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-lora-gguf-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Converter.convert(input: TrainerTests.fixture, output: dir + "/tiny.gguf", options: ConvertOptions(type: .f32))
        let base = try Checkpoint.open(path: dir + "/tiny.gguf")
        let lora = LoRALayout(model: base.config, lora: LoRAConfig(rank: 3, alpha: 5, targets: [.q, .k, .v, .o, .gate, .up, .down]))
        var random = TestRandom(seed: 21)
        let adapters = (0..<lora.count).map { _ in random.gaussian() * 0.2 }
        try lora.writeGGUF(adapters, to: dir + "/adapter.gguf", like: base)

        let file = try GGUFFile(path: dir + "/adapter.gguf")
        #expect(file.metadata["general.type"]?.string == "adapter")
        #expect(file.metadata["general.architecture"]?.string == "gemma3")
        #expect(file.metadata["adapter.type"]?.string == "lora")
        #expect(file.metadata["adapter.lora.alpha"] == .float32(5))
        #expect(file.tensors.count == 2 * lora.entries.count && lora.entries.count == 7 * base.config.numHiddenLayers)
        #expect(file.tensors.allSatisfy { $0.type == .f32 })
        #expect(file.tensors[0].name == "blk.0.attn_q.weight.lora_a" && file.tensors[1].name == "blk.0.attn_q.weight.lora_b")
        let layout = ParameterLayout(config: base.config)
        let params = try base.trainableParameters(layout)
        let merged = lora.merged(params, layout: layout, adapters: adapters)
        var worst: Float = 0
        for e in lora.entries {
            let name = base.naming.name(of: .layer(e.layer, e.module))
            let w = try #require(base.gguf?.tensor(named: name))
            let a = try #require(file.tensor(named: name + ".lora_a")), b = try #require(file.tensor(named: name + ".lora_b"))
            // llama.cpp's checks: A's ne0 is W's ne0 (in), B's ne1 is W's ne1 (out), A's ne1 is B's ne0 (the rank).
            #expect(a.dimensions == [w.dimensions[0], 3] && b.dimensions == [3, w.dimensions[1]], "\(name)")
            let av = Array(file.data(for: a).bindMemory(to: Float.self)), bv = Array(file.data(for: b).bindMemory(to: Float.self))
            #expect(av == Array(adapters[e.a..<(e.a + 3 * e.inDim)]) && bv == Array(adapters[e.b..<(e.b + e.outDim * 3)]), "\(name)")
            // Row o of W (ggml's ne1 index) changes by alpha / rank * sum over k of B[o, k] A[k, :].
            let offset = layout.offset(.layer(e.layer, e.module))
            for o in 0..<e.outDim {
                for i in 0..<e.inDim {
                    var d: Float = 0
                    for k in 0..<3 { d += bv[o * 3 + k] * av[k * e.inDim + i] }
                    let p = offset + o * e.inDim + i
                    worst = max(worst, abs(5 / 3 * d - (merged[p] - params[p])))
                }
            }
        }
        #expect(worst < 1e-5, "worst difference from the merged weights \(worst)")
    }

    @Test func aBaseThatIsNotGGUFIsRefused() throws {
        let hf = try Checkpoint.open(path: TrainerTests.fixture)
        let lora = LoRALayout(model: hf.config, lora: LoRAConfig(rank: 2))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swift-gemma-lora-\(getpid()).gguf").path
        #expect(throws: TrainError.self) { try lora.writeGGUF(lora.initialAdapters(seed: 1), to: path, like: hf) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
