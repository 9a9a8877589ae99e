// What a conversion writes besides the weights, against independent references: the GGUF metadata of the real 270M
// (written by llama.cpp's converter and llama-quantize) rebuilt from its own config and vocabulary, the tiny folder's
// config.json values in the GGUF made from it and in the config.json made back, and the refusals.
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import GemmaTokenizer
import Testing

@Suite(.serialized) struct ConvertMetadataTests {
    /// Every gemma3.* and tokenizer.ggml.* key llama.cpp wrote into the 270M, and the general keys we write, come out
    /// of our builder with the same type and value.
    @Test func realModelMetadataIsWhatLlamaCppWrote() throws {
        guard let path = TestPaths.requireModel() else { return }
        let file = try GGUFFile(path: path)
        let ours = GGUFExport.metadata(config: try Gemma3Config(gguf: file), vocabulary: try Vocabulary(gguf: file.metadata),
                                       type: .q8_0, name: file.metadata["general.name"]?.string)
        // add_sep_token comes from a tokenizer_config.json flag this engine does not keep (false for Gemma).
        let skipped: Set = ["tokenizer.ggml.add_sep_token", "general.file_type"]
        let theirs = file.metadata.entries.filter {
            ($0.key.hasPrefix("gemma3.") || $0.key.hasPrefix("tokenizer.") || ["general.architecture", "general.type",
             "general.name", "general.quantization_version"].contains($0.key)) && !skipped.contains($0.key)
        }
        #expect(theirs.count == 27)
        for (key, value) in theirs { #expect(ours[key] == value, "\(key)") }
        let extra = ours.entries.map(\.key).filter { file.metadata[$0] == nil }
        #expect(extra.isEmpty, "keys llama.cpp did not write: \(extra)")
        #expect(ours["general.file_type"] == .uint32(7))
    }

    @Test func tinyGGUFCarriesTheConfigJSONValues() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        try Converter.convert(input: Tiny.folder, output: s["tiny.gguf"], options: ConvertOptions(type: .q8_0))
        let m = try GGUFFile(path: s["tiny.gguf"]).metadata
        // Tests/Fixtures/gemma3-tiny-text/config.json, tokenizer_config.json.
        let expected: [(String, GGUFValue)] = [
            ("general.architecture", .string("gemma3")), ("general.name", .string("gemma3-tiny-text")),
            ("gemma3.context_length", .uint32(32768)), ("gemma3.embedding_length", .uint32(72)),
            ("gemma3.block_count", .uint32(8)), ("gemma3.feed_forward_length", .uint32(144)),
            ("gemma3.attention.head_count", .uint32(4)), ("gemma3.attention.head_count_kv", .uint32(1)),
            ("gemma3.attention.layer_norm_rms_epsilon", .float32(1e-6)), ("gemma3.attention.key_length", .uint32(32)),
            ("gemma3.attention.value_length", .uint32(32)), ("gemma3.rope.freq_base", .float32(1_000_000)),
            ("gemma3.attention.sliding_window", .uint32(6)), ("gemma3.rope.scaling.type", .string("linear")),
            ("gemma3.rope.scaling.factor", .float32(8)), ("gemma3.attention.query_pre_attn_scalar", .float32(48)),
            ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.bos_token_id", .uint32(2)), ("tokenizer.ggml.eos_token_id", .uint32(1)),
            ("tokenizer.ggml.unknown_token_id", .uint32(3)), ("tokenizer.ggml.padding_token_id", .uint32(0)),
            ("tokenizer.ggml.add_bos_token", .bool(true)), ("tokenizer.ggml.add_eos_token", .bool(false)),
            ("tokenizer.ggml.add_space_prefix", .bool(false)),
            ("general.quantization_version", .uint32(2)), ("general.file_type", .uint32(7)),
        ]
        for (key, value) in expected { #expect(m[key] == value, "\(key)") }
        #expect(m["tokenizer.ggml.tokens"]?.array?.count == 1024 && m["tokenizer.ggml.scores"]?.array?.count == 1024)
        #expect(m["tokenizer.ggml.token_type"]?.array?.elementType == .int32)
        // Local base 10000 and every 6th layer global: what llama.cpp assumes, so not written.
        #expect(m["gemma3.rope.freq_base_swa"] == nil && m["gemma3.attention.sliding_window_pattern"] == nil)
        #expect(m["general.sampling.temp"] == nil)
    }

    @Test func exportedConfigJSONHasTheFolderValues() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        try Converter.convert(input: Tiny.folder, output: s["tiny.gguf"], options: ConvertOptions(type: .f32))
        try Converter.convert(input: s["tiny.gguf"], output: s["back"], options: ConvertOptions(type: .bf16))
        let ours = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: s["back/config.json"]))))
        let theirs = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Tiny.folder + "/config.json"))))
        // Every key transformers 5.23 wrote for the tiny model with the same value, and no other key; but the dtype,
        // the version, and cache_implementation (a generation setting transformers defaults to "hybrid" itself).
        for case let (key, value) in theirs.objectPairs where !["dtype", "transformers_version", "cache_implementation"].contains(key) {
            #expect(ours[key] == value, "\(key)")
        }
        #expect(ours.objectPairs.map(\.0).filter { theirs[$0] == nil }.isEmpty)
        #expect(ours["dtype"] == "bfloat16")
        let generation = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: s["back/generation_config.json"]))))
        #expect(generation == ["bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0])
        let weights = try SafetensorsFile(path: s["back/model.safetensors"])
        #expect(weights.tensors.allSatisfy { $0.dtype == .BF16 } && weights.metadata.map(\.key) == ["format"])
    }

    @Test func refusesWhatItCannotOrMustNotDo() throws {
        let s = try Scratch()
        defer { s.cleanup() }
        #expect(throws: ConvertError.unknownType("q3_k")) { try ConvertType.named("q3_k") }
        #expect(try ConvertType.named("Q4_K") == .q4_k)
        #expect(ConvertError.unknownType("x").description == "unknown weight type \"x\": the types are f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k, int4_channel")

        // A quantized type for a folder.
        #expect(throws: ConvertError.typeNotForFormat(type: .q8_0, format: .huggingFace)) {
            try Converter.convert(input: Tiny.folder, output: s["out"], options: ConvertOptions(type: .q8_0))
        }
        // A folder without config.json.
        try FileManager.default.createDirectory(atPath: s["empty"], withIntermediateDirectories: false)
        let noConfig = #expect(throws: ConvertError.self) { try Converter.convert(input: s["empty"], output: s["x.gguf"]) }
        #expect(noConfig?.description.hasPrefix("\(s["empty"]): model config: \(s["empty"]) has no config.json") == true,
                "\(String(describing: noConfig))")
        // An existing output, without --force; with it, only what the conversion writes.
        #expect(FileManager.default.createFile(atPath: s["taken.gguf"], contents: Data("keep".utf8)))
        #expect(throws: ConvertError.outputExists(s["taken.gguf"])) { try Converter.convert(input: Tiny.folder, output: s["taken.gguf"]) }
        #expect(throws: ConvertError.cannotReplace(path: s["empty"], reason: "it is not a model folder (it has no config.json)")) {
            try Converter.convert(input: Tiny.folder, output: s["empty"], options: ConvertOptions(force: true))
        }
        #expect(throws: ConvertError.cannotReplace(path: Tiny.folder, reason: "it is the input")) {
            try Converter.convert(input: Tiny.folder, output: Tiny.folder, options: ConvertOptions(force: true))
        }
        #expect(throws: ConvertError.self) { try Converter.convert(input: Tiny.folder, output: s["no/such/folder.gguf"]) }
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: s["taken.gguf"])), as: UTF8.self) == "keep")
        // Nothing was left behind by the refusals.
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: s.path)) == ["empty", "taken.gguf"])

        // --force replaces a file and a model folder (whose other files go with it).
        try Converter.convert(input: Tiny.folder, output: s["taken.gguf"], options: ConvertOptions(type: .q8_0, force: true))
        #expect(try GGUFFile(path: s["taken.gguf"]).tensors.count == 106)
        try Converter.convert(input: s["taken.gguf"], output: s["model"])
        #expect(FileManager.default.createFile(atPath: s["model/stale.txt"], contents: Data()))
        #expect(throws: ConvertError.outputExists(s["model"])) { try Converter.convert(input: s["taken.gguf"], output: s["model"]) }
        try Converter.convert(input: s["taken.gguf"], output: s["model"], options: ConvertOptions(force: true))
        #expect(!FileManager.default.fileExists(atPath: s["model/stale.txt"]))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: s.path)) == ["empty", "taken.gguf", "model"])
    }
}

extension JSONValue {
    /// The members of an object (none otherwise).
    var objectPairs: [(String, JSONValue)] { if case let .object(p) = self { p } else { [] } }
}
