// Gemma 3 hyperparameters, with HF config.json names in camelCase, read from GGUF metadata ("gemma3.*" keys) and
// completed with the values GGUF leaves out (local RoPE base 10,000; 27B's query_pre_attn_scalar 168).
// Per-layer attention (local window or global, RoPE base and scale) is computed once, as data.
import GemmaFormats

/// How the token embedding is scaled by sqrt(hiddenSize) (docs/gemma3-semantics.md item 1).
public enum EmbeddingScale: String, Sendable, CaseIterable {
    /// Exact f32 sqrt(hidden), as llama.cpp and ollama (and so the GGUF goldens).
    case exact
    /// sqrt(hidden) rounded to bf16, as transformers with bf16 weights, gemma.cpp and Google's JAX code.
    case bf16
}

/// The attention of one layer.
public struct LayerAttention: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Sliding window of `window` keys, the current token included: key k is seen from p iff p - k < window.
        case local(window: Int)
        case global
    }
    public let kind: Kind
    public let ropeBase: Float
    /// Linear RoPE scaling factor (positions are divided by it); 1 for none.
    public let ropeScale: Float

    public var isGlobal: Bool { kind == .global }
    /// Keys a cache must keep for this layer at context length `n`.
    public func keysNeeded(context n: Int) -> Int {
        if case let .local(w) = kind { return min(w, n) }
        return n
    }
}

/// The Gemma 3 sizes of the technical report.
public enum Gemma3Size: String, Sendable, CaseIterable {
    case m270 = "270m", b1 = "1b", b4 = "4b", b12 = "12b", b27 = "27b"
}

/// Gemma 3 text-model hyperparameters.
public struct Gemma3Config: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var maxPositionEmbeddings: Int
    public var slidingWindow: Int
    /// Every `slidingWindowPattern`-th layer is global; the rest are local (layer i global iff (i+1) % pattern == 0).
    public var slidingWindowPattern: Int
    /// Explicit per-layer kinds (HF `layer_types`); overrides the pattern when set.
    public var layerTypes: [Bool]?
    public var ropeTheta: Float
    public var ropeLocalBaseFreq: Float
    /// Linear scaling factor of global layers (nil for none).
    public var ropeScalingFactor: Float?
    public var queryPreAttnScalar: Float
    public var embeddingScale: EmbeddingScale = .exact
    public var bosTokenId = 2
    public var eosTokenIds = [1, 106]

    /// Per-layer attention, computed from the fields above.
    public var layers: [LayerAttention] {
        (0..<numHiddenLayers).map { i in
            let global = layerTypes.map { i < $0.count ? $0[i] : false } ?? ((i + 1) % slidingWindowPattern == 0)
            return global
                ? LayerAttention(kind: .global, ropeBase: ropeTheta, ropeScale: ropeScalingFactor ?? 1)
                : LayerAttention(kind: .local(window: slidingWindow), ropeBase: ropeLocalBaseFreq, ropeScale: 1)
        }
    }

    /// The multiplier applied to token embeddings.
    public var embeddingMultiplier: Float {
        let exact = Float(hiddenSize).squareRoot()
        switch embeddingScale {
        case .exact: return exact
        case .bf16: return Float(bf16Bits: Self.roundToBF16(exact))
        }
    }

    /// Query scale: query_pre_attn_scalar^-0.5 (not head_dim^-0.5: they differ on 27B).
    public var queryScale: Float { 1 / queryPreAttnScalar.squareRoot() }

    /// Parameters of the text model (embedding counted once: the output head is tied).
    public var parameterCount: Int {
        let attn = hiddenSize * headDim * (2 * numAttentionHeads + 2 * numKeyValueHeads) + 2 * headDim
        let mlp = 3 * hiddenSize * intermediateSize
        let norms = 4 * hiddenSize
        return vocabSize * hiddenSize + numHiddenLayers * (attn + mlp + norms) + hiddenSize
    }

    static func roundToBF16(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        return UInt16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)
    }
}

// MARK: - Known sizes

extension Gemma3Config {
    /// The report's configuration of each size (HF config.json values).
    public static func known(_ size: Gemma3Size) -> Gemma3Config {
        func make(_ hidden: Int, _ ffn: Int, _ layers: Int, _ heads: Int, _ kv: Int, _ headDim: Int, _ window: Int,
                  _ ctx: Int, _ qpas: Float, _ scale: Float?) -> Gemma3Config {
            Gemma3Config(vocabSize: 262_144, hiddenSize: hidden, intermediateSize: ffn, numHiddenLayers: layers,
                         numAttentionHeads: heads, numKeyValueHeads: kv, headDim: headDim, rmsNormEps: 1e-6,
                         maxPositionEmbeddings: ctx, slidingWindow: window, slidingWindowPattern: 6, layerTypes: nil,
                         ropeTheta: 1_000_000, ropeLocalBaseFreq: 10_000, ropeScalingFactor: scale,
                         queryPreAttnScalar: qpas)
        }
        switch size {
        case .m270: return make(640, 2048, 18, 4, 1, 256, 512, 32_768, 256, nil)
        case .b1: return make(1152, 6912, 26, 4, 1, 256, 512, 32_768, 256, nil)
        case .b4: return make(2560, 10_240, 34, 8, 4, 256, 1024, 131_072, 256, 8)
        case .b12: return make(3840, 15_360, 48, 16, 8, 256, 1024, 131_072, 256, 8)
        case .b27: return make(5376, 21_504, 62, 32, 16, 128, 1024, 131_072, 168, 8)
        }
    }

    /// The known size with this many layers and this width, if any.
    public var knownSize: Gemma3Size? {
        Gemma3Size.allCases.first { Self.known($0).numHiddenLayers == numHiddenLayers && Self.known($0).hiddenSize == hiddenSize }
    }
}

// MARK: - GGUF

extension Gemma3Config {
    /// The query_pre_attn_scalar llama.cpp derives for a GGUF file (which does not store it): hidden / heads when the
    /// model has 62 layers (its test for the 27B), head_dim otherwise.
    public static func llamaCppQueryPreAttnScalar(_ c: Gemma3Config) -> Float {
        c.numHiddenLayers == 62 ? Float(c.hiddenSize / c.numAttentionHeads) : Float(c.headDim)
    }

    /// Reads the config from a GGUF file's metadata (architecture "gemma3").
    public init(gguf file: GGUFFile) throws(ModelError) {
        let m = file.metadata
        guard let arch = m["general.architecture"]?.string else {
            throw .config("metadata general.architecture is missing")
        }
        guard arch == "gemma3" else { throw .config("architecture is \"\(arch)\", not gemma3") }
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = m["gemma3." + key]?.int, v > 0 else {
                throw .config("metadata gemma3.\(key) is missing or not a positive integer")
            }
            return v
        }
        func float(_ key: String) -> Float? { m["gemma3." + key]?.double.map(Float.init) }

        let hidden = try int("embedding_length")
        let layers = try int("block_count")
        let heads = try int("attention.head_count")
        let kvHeads = m["gemma3.attention.head_count_kv"]?.int ?? heads
        let keyLength = m["gemma3.attention.key_length"]?.int ?? hidden / heads
        guard kvHeads > 0, heads % kvHeads == 0, keyLength > 0, keyLength % 2 == 0 else {
            throw .config("attention heads \(heads), KV heads \(kvHeads), key length \(keyLength) are inconsistent")
        }
        if let v = m["gemma3.attention.value_length"]?.int, v != keyLength {
            throw .config("value length \(v) differs from key length \(keyLength)")
        }
        let vocab: Int
        if let tokens = m["tokenizer.ggml.tokens"]?.array?.count { vocab = tokens }
        else if let e = file.tensor(named: "token_embd.weight"), e.dimensions.count == 2 { vocab = e.dimensions[1] }
        else { throw .config("vocabulary size unknown: no tokenizer.ggml.tokens and no token_embd.weight") }

        var c = Gemma3Config(
            vocabSize: vocab, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            numHiddenLayers: layers, numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: keyLength,
            rmsNormEps: float("attention.layer_norm_rms_epsilon") ?? 1e-6,
            maxPositionEmbeddings: m["gemma3.context_length"]?.int ?? 131_072,
            slidingWindow: m["gemma3.attention.sliding_window"]?.int ?? 1024,
            slidingWindowPattern: 6, layerTypes: nil,
            ropeTheta: float("rope.freq_base") ?? 1_000_000,
            ropeLocalBaseFreq: float("rope.freq_base_swa") ?? 10_000,
            ropeScalingFactor: nil,
            queryPreAttnScalar: Float(keyLength))
        // Newer converters may store the pattern as a per-layer bool array (true = sliding window).
        if let pattern = m["gemma3.attention.sliding_window_pattern"] {
            if case let .array(.bool(flags)) = pattern, flags.count == layers { c.layerTypes = flags.map { !$0 } }
            else if let n = pattern.int, n > 0 { c.slidingWindowPattern = n }
        }
        if let type = m["gemma3.rope.scaling.type"]?.string, type != "none" {
            guard type == "linear" else { throw .config("RoPE scaling \"\(type)\" is not supported (Gemma 3 uses linear)") }
            if let f = float("rope.scaling.factor"), f > 0, f != 1 { c.ropeScalingFactor = f }
        }
        // llama.cpp's GGUF does not store query_pre_attn_scalar: it is head_dim except on 27B (hidden / heads = 168).
        // `gemma convert` stores it (a key llama.cpp ignores) only for a model where that rule gives another value.
        c.queryPreAttnScalar = Self.llamaCppQueryPreAttnScalar(c)
        if let v = float("attention.query_pre_attn_scalar") {
            guard v > 0, v.isFinite else { throw .config("metadata gemma3.attention.query_pre_attn_scalar \(v) is not positive") }
            c.queryPreAttnScalar = v
        }
        guard c.slidingWindow > 0, c.rmsNormEps > 0, c.rmsNormEps.isFinite, c.ropeTheta > 0 else {
            throw .config("sliding window \(c.slidingWindow), RMS eps \(c.rmsNormEps) or RoPE base \(c.ropeTheta) is invalid")
        }
        self = c
    }
}
