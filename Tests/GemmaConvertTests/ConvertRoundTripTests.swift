// Conversions of the tiny Gemma3ForCausalLM of Tests/Fixtures/gemma3-tiny-text (f32 weights saved by transformers),
// checked through our loader against the folder itself: HF -> GGUF f32 -> HF f32 gives the same logits bit for bit
// (and the same config and vocabulary), quantized GGUFs stay within a measured distance, shards load as one file.
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import GemmaTokenizer
import Testing

/// A fresh folder under the temporary directory, removed by `cleanup()`.
struct Scratch {
    let path = NSTemporaryDirectory() + "gemma-convert-\(UUID().uuidString)"
    init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    subscript(_ name: String) -> String { path + "/" + name }
}

enum Tiny {
    static let folder = TestPaths.fixtures + "/gemma3-tiny-text"
    static let reference = try? SafetensorsFile(path: folder + "/fixtures.safetensors")

    /// A fixture sequence's token ids ("chat" 17, "window_plus" 24, "long" 64: past the window of 6).
    static func ids(_ name: String) throws -> [Int] {
        let t = try #require(reference?.sourceTensor(named: name + ".input_ids"), "fixture \(name).input_ids")
        return t.bytes.bindMemory(to: Int64.self).map(Int.init)
    }

    static func load(_ path: String) throws -> Gemma3Model {
        try Gemma3Model(path: path, options: ModelOptions(threads: 2, precision: .exact, placement: .mapped, kvStorage: .f32))
    }

    /// Every position's logits of `ids`, as one causal sequence.
    static func logits(_ path: String, _ ids: [Int]) throws -> [Float] {
        let model = try load(path)
        let state = model.makeState(capacity: ids.count, maxBatch: 64)
        var out = [Float](repeating: .nan, count: ids.count * model.config.vocabSize)
        try model.forward(ids, state: state, logits: .all) { i, l in
            for (j, x) in l.enumerated() { out[i * l.count + j] = x }
        }
        return out
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }
}

@Suite(.serialized) struct ConvertRoundTripTests {
    @Test func huggingFaceToGGUFAndBackIsBitExact() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        var notes: [String] = []
        var progress: [Int] = []
        let toGGUF = try Converter.convert(input: Tiny.folder, output: s["tiny.gguf"], options: ConvertOptions(type: .f32)) { e in
            switch e {
            case let .note(n): notes.append(n)
            case let .tensor(i, n, _, _): progress.append(i); #expect(n == 106)
            }
        }
        #expect(progress == Array(1...106))
        #expect(toGGUF.plan.type == .f32 && toGGUF.tensorBytes > 0)
        // The tokenizer has 591 pieces for 1024 embedding rows; query_pre_attn_scalar 48 is not head_dim 32.
        #expect(notes.contains { $0.contains("[PAD1]...[PAD433]") })
        #expect(notes.contains { $0.contains("query_pre_attn_scalar 48.0") })
        try Converter.convert(input: s["tiny.gguf"], output: s["back"], options: ConvertOptions(type: .f32))

        let original = try Checkpoint.open(path: Tiny.folder), back = try Checkpoint.open(path: s["back"])
        let gguf = try Checkpoint.open(path: s["tiny.gguf"])
        // GGUF keeps the layer kinds as llama.cpp's rule (every 6th global), the folder lists them.
        var listed = gguf.config
        listed.layerTypes = original.config.layers.map(\.isGlobal)
        #expect(listed == original.config && gguf.config.layers == original.config.layers)
        #expect(back.config == original.config)
        #expect(back.generation.eosTokenIds == [1, 106] && !back.generation.setsSampling)

        for sequence in ["chat", "long"] {
            let ids = try Tiny.ids(sequence)
            let expected = try Tiny.logits(Tiny.folder, ids)
            #expect(Tiny.bits(try Tiny.logits(s["tiny.gguf"], ids)) == Tiny.bits(expected), "\(sequence): GGUF f32")
            #expect(Tiny.bits(try Tiny.logits(s["back"], ids)) == Tiny.bits(expected), "\(sequence): back to HF f32")
        }

        // Matrices come back byte for byte; a norm w comes back as (1 + w) - 1, whose 1 + is the original's 1 + w.
        for name in original.source.tensorNames {
            let a = try #require(original.source.sourceTensor(named: name)), b = try #require(back.source.sourceTensor(named: name))
            #expect(a.shape == b.shape && a.storedType == "F32" && b.storedType == "F32", "\(name)")
            let x = Array(a.bytes.bindMemory(to: Float.self)), y = Array(b.bytes.bindMemory(to: Float.self))
            if a.shape.count == 2 { #expect(x == y, "\(name)") } else { #expect(x.map { 1 + $0 } == y.map { 1 + $0 }, "\(name)") }
        }

        // The vocabulary: the folder's tokenizer.json padded as llama.cpp pads it, in the GGUF and in the exported
        // tokenizer.model + tokenizer_config.json alike.
        let folderVocabulary = try Vocabulary(directory: Tiny.folder)
        let ggufVocabulary = try Vocabulary(gguf: try #require(gguf.gguf).metadata)
        #expect(ggufVocabulary.count == 1024 && Array(ggufVocabulary.pieces.prefix(591)) == folderVocabulary.pieces)
        #expect(Array(ggufVocabulary.types.prefix(591)) == folderVocabulary.types)
        // Scores as the folder's, but -1000 for the control and user-defined pieces, as llama.cpp's converter has them.
        for i in 0..<591 {
            let t = folderVocabulary.types[i]
            #expect(ggufVocabulary.scores[i] == (t == .control || t == .userDefined ? -1000 : folderVocabulary.scores[i]))
        }
        #expect(ggufVocabulary.pieces[591] == "[PAD1]" && ggufVocabulary.types[1023] == .unused && ggufVocabulary.scores[700] == -1000)
        #expect(try Vocabulary(directory: s["back"]) == ggufVocabulary)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: s["back"])) ==
                ["config.json", "generation_config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"])
    }

    @Test func quantizedGGUFsStayCloseToTheFolder() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        let ids = try Tiny.ids("long")
        let expected = try Tiny.logits(Tiny.folder, ids)
        // Max |Δlogit| measured over the 64 positions x 1024 logits (|logit| up to 7.05; the random tiny model is
        // sensitive): bf16 0.064 (transformers measured 0.062 for these bf16 weights: fixtures.json), q8_0 0.104
        // (rows of 72 and 144 are not whole blocks of 32: only o_proj is q8_0, the rest f16), q4_k 0.70 (o_proj at
        // q5_0), q4_0 1.34. The bounds leave 1.5x room.
        var errors: [ConvertType: Float] = [:]
        for (type, bound): (ConvertType, Float) in [(.bf16, 0.1), (.q8_0, 0.15), (.q4_k, 1.0), (.q4_0, 2.0)] {
            let path = s["tiny-\(type).gguf"]
            try Converter.convert(input: Tiny.folder, output: path, options: ConvertOptions(type: type))
            let got = try Tiny.logits(path, ids)
            let d = Tiny.maxDifference(got, expected)
            print("tiny \(type): max |Δlogit| \(d)")
            #expect(d < bound, "\(type)")
            #expect(d > 0, "\(type): the exact logits would mean nothing was quantized")
            errors[type] = d
            // Back to an f32 folder: the file's weights dequantized. In exact precision our kernels dequantize a
            // quantized row to f32 and multiply it as they multiply an f32 row, so the logits are the file's, bit
            // for bit.
            try Converter.convert(input: path, output: s["tiny-\(type)-f32"], options: ConvertOptions(type: .f32))
            #expect(Tiny.bits(try Tiny.logits(s["tiny-\(type)-f32"], ids)) == Tiny.bits(got), "\(type) -> f32 folder")
        }
        // More bits, less error.
        #expect(errors[.q8_0]! < errors[.q4_k]! && errors[.q4_k]! < errors[.q4_0]!)
    }

    @Test func quantizedTypesFallBackPerTensorAsLlamaCpp() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        var notes: [String] = []
        let report = try Converter.convert(input: Tiny.folder, output: s["q4k.gguf"], options: ConvertOptions(type: .q4_k)) { e in
            if case let .note(n) = e { notes.append(n) }
        }
        let file = try GGUFFile(path: s["q4k.gguf"])
        func type(_ name: String) -> TensorType? { file.tensor(named: name)?.type }
        // Rows of 72 (hidden) fit neither Q4_K (256) nor Q5_0 (32): f16. o_proj's rows of 128 fall back to q5_0.
        // The embedding (rows of 72) fits neither q6_K nor q8_0: f16. Norms stay f32.
        #expect(type("blk.0.attn_q.weight") == .f16 && type("blk.0.ffn_down.weight") == .f16)
        #expect(type("blk.0.attn_output.weight") == .q5_0)
        #expect(type("token_embd.weight") == .f16)
        #expect(type("blk.0.attn_norm.weight") == .f32 && type("output_norm.weight") == .f32)
        #expect(file.tensors.count == 106 && report.plan.tensors.count == 106)
        #expect(notes.contains("8 tensors: rows of 128 are not whole Q4_K blocks of 256: Q5_0, as llama.cpp falls back"))
        #expect(file.metadata["general.file_type"] == .uint32(14) && file.metadata["general.quantization_version"] == .uint32(2))
    }

    @Test func shardedFolderLoadsAsTheSingleFile() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        var options = ConvertOptions(type: .f32)
        options.maxShardBytes = 700_000  // 2,045,984 bytes of weights: 3 shards
        let report = try Converter.convert(input: Tiny.folder, output: s["sharded"], options: options)
        #expect(report.files.contains("model-00001-of-00003.safetensors") && report.files.contains("model.safetensors.index.json"))
        let checkpoint = try SafetensorsCheckpoint(directory: s["sharded"])
        #expect(checkpoint.shardNames == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
        #expect(checkpoint.totalSize == report.tensorBytes)
        #expect(checkpoint.shards.allSatisfy { $0.storage.count <= 700_000 + 20_000 })
        let ids = try Tiny.ids("window_plus")
        #expect(Tiny.bits(try Tiny.logits(s["sharded"], ids)) == Tiny.bits(try Tiny.logits(Tiny.folder, ids)))
    }

    @Test func bf16FolderConvertsLosslesslyByDefault() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        // The bf16 weights with the folder's tokenizer.
        try FileManager.default.createDirectory(atPath: s["bf16"], withIntermediateDirectories: false)
        for (file, from) in [("config.json", "bf16/"), ("model.safetensors", "bf16/"), ("tokenizer.json", ""), ("tokenizer_config.json", "")] {
            try FileManager.default.createSymbolicLink(atPath: s["bf16/" + file], withDestinationPath: Tiny.folder + "/" + from + file)
        }
        let report = try Converter.convert(input: s["bf16"], output: s["bf16.gguf"])
        #expect(report.plan.type == .bf16)
        let file = try GGUFFile(path: s["bf16.gguf"])
        #expect(file.tensor(named: "blk.3.ffn_up.weight")?.type == .bf16 && file.tensor(named: "blk.3.ffn_norm.weight")?.type == .f32)
        let ids = try Tiny.ids("chat")
        #expect(Tiny.bits(try Tiny.logits(s["bf16.gguf"], ids)) == Tiny.bits(try Tiny.logits(Tiny.folder + "/bf16", ids)))
    }
}
