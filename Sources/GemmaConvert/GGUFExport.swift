// The metadata of a Gemma 3 GGUF file as llama.cpp's converter writes it (conversion/gemma.py `Gemma3Model` over
// `TextModel.set_gguf_parameters`, gguf-py's key names and value types; docs in formats.md section 4): the gemma3.*
// hyperparameters, the SentencePiece vocabulary under tokenizer.ggml.*, then general.quantization_version and
// general.file_type. What llama.cpp hard-codes for gemma3 (local RoPE base 10000, every 6th layer global, the query
// scale) is written only when the model differs from it, under keys this engine reads and llama.cpp ignores.
import GemmaFormats
import GemmaModel
import GemmaTokenizer

/// Sampling defaults to carry between generation_config.json and GGUF's general.sampling.* keys.
public struct SamplingDefaults: Sendable, Equatable {
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?

    public init(temperature: Float? = nil, topK: Int? = nil, topP: Float? = nil, minP: Float? = nil, repetitionPenalty: Float? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    public var isEmpty: Bool { self == SamplingDefaults() }

    /// What a generation_config.json says; do_sample false is greedy (temperature 0).
    public init(_ g: GenerationDefaults) {
        self.init(temperature: g.doSample == false ? 0 : g.temperature, topK: g.topK, topP: g.topP, minP: g.minP,
                  repetitionPenalty: g.repetitionPenalty)
    }

    /// The general.sampling.* keys of a GGUF file (gguf-py's Keys.General.SAMPLING_*).
    public init(gguf m: GGUFMetadata) {
        func f(_ k: String) -> Float? { m["general.sampling." + k]?.double.map(Float.init) }
        self.init(temperature: f("temp"), topK: m["general.sampling.top_k"]?.int, topP: f("top_p"), minP: f("min_p"),
                  repetitionPenalty: f("penalty_repeat"))
    }
}

/// Builds GGUF metadata for a Gemma 3 text model.
public enum GGUFExport {
    /// The metadata of a GGUF file holding `config`'s model at `type`, with `vocabulary` (whose size must be the
    /// embedding's rows).
    public static func metadata(config c: Gemma3Config, vocabulary v: Vocabulary, type: ConvertType, name: String? = nil,
                                chatTemplate: String? = nil, sampling: SamplingDefaults = SamplingDefaults()) -> GGUFMetadata {
        var m = GGUFMetadata()
        let a = "gemma3."
        m["general.architecture"] = .string("gemma3")
        m["general.type"] = .string("model")
        if let name, !name.isEmpty { m["general.name"] = .string(name) }
        m[a + "context_length"] = .uint32(UInt32(c.maxPositionEmbeddings))
        m[a + "embedding_length"] = .uint32(UInt32(c.hiddenSize))
        m[a + "block_count"] = .uint32(UInt32(c.numHiddenLayers))
        m[a + "feed_forward_length"] = .uint32(UInt32(c.intermediateSize))
        m[a + "attention.head_count"] = .uint32(UInt32(c.numAttentionHeads))
        m[a + "attention.layer_norm_rms_epsilon"] = .float32(c.rmsNormEps)
        m[a + "attention.key_length"] = .uint32(UInt32(c.headDim))
        m[a + "attention.value_length"] = .uint32(UInt32(c.headDim))
        m[a + "rope.freq_base"] = .float32(c.ropeTheta)
        m[a + "attention.sliding_window"] = .uint32(UInt32(c.slidingWindow))
        m[a + "attention.head_count_kv"] = .uint32(UInt32(c.numKeyValueHeads))
        if let f = c.ropeScalingFactor {
            // Linear scaling of the global layers; llama.cpp applies rope.scaling.* to non-SWA layers only.
            m[a + "rope.scaling.type"] = .string("linear")
            m[a + "rope.scaling.factor"] = .float32(f)
        }
        if c.ropeLocalBaseFreq != 10_000 { m[a + "rope.freq_base_swa"] = .float32(c.ropeLocalBaseFreq) }
        if !ConversionPlan.followsPatternOfSix(c) {
            m[a + "attention.sliding_window_pattern"] = .array(.bool(c.layers.map { !$0.isGlobal }))
        }
        if c.queryPreAttnScalar != Gemma3Config.llamaCppQueryPreAttnScalar(c) {
            m[a + "attention.query_pre_attn_scalar"] = .float32(c.queryPreAttnScalar)
        }

        let t = "tokenizer.ggml."
        m[t + "model"] = .string("llama")
        m[t + "pre"] = .string("default")
        m[t + "tokens"] = .array(.string(v.pieces))
        m[t + "scores"] = .array(.float32(v.scores))
        m[t + "token_type"] = .array(.int32(v.types.map(\.rawValue)))
        for (key, id) in [("bos_token_id", v.bosID), ("eos_token_id", v.eosID), ("unknown_token_id", v.unknownID),
                          ("padding_token_id", v.paddingID)] {
            if let id { m[t + key] = .uint32(UInt32(id)) }
        }
        m[t + "add_bos_token"] = .bool(v.addBOS)
        m[t + "add_eos_token"] = .bool(v.addEOS)
        m[t + "add_space_prefix"] = .bool(v.addSpacePrefix)
        if let chatTemplate { m["tokenizer.chat_template"] = .string(chatTemplate) }

        let s = "general.sampling."
        if let x = sampling.topK { m[s + "top_k"] = .int32(Int32(clamping: x)) }
        if let x = sampling.topP { m[s + "top_p"] = .float32(x) }
        if let x = sampling.minP { m[s + "min_p"] = .float32(x) }
        if let x = sampling.temperature { m[s + "temp"] = .float32(x) }
        if let x = sampling.repetitionPenalty { m[s + "penalty_repeat"] = .float32(x) }

        if !type.isFloat { m["general.quantization_version"] = .uint32(2) }  // GGML_QNT_VERSION
        m["general.file_type"] = .uint32(type.fileType)
        return m
    }
}
