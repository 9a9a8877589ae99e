// Gemma 3 hyperparameters from a gemma.cpp .sbs `config` blob (gemma/configs.h `ModelConfig`), and back for the
// writer. What gemma.cpp stores maps directly: widths, heads, head dimension, FFN, vocabulary, per-layer windows (a
// window equal to max_seq_len is a global layer), the query scale rule, the two end-of-turn ids.
// What it does not store, gemma.cpp hard-codes, and so does this reader (source in parentheses):
//   RoPE bases 10,000 local and 1,000,000 global (ops/ops.h `CreateInvTimescale`, gemma/activations.h),
//   RMS norm epsilon 1e-6 (ops/ops-inl.h), BOS id 2 (gemma.cpp's tokenizer),
//   no linear RoPE scaling: gemma.cpp applies none, but the published 4B, 12B and 27B were trained with x8 on global
//   layers, so a file of one of those sizes (same layers and width) gets x8, as from their config.json; the file
//   cannot say otherwise. Everything else the engine does not implement (soft-capping, ViT layers, half RoPE,
//   biases, no QK norm, layers of different shapes) is an error naming the field.
import GemmaFormats

extension Gemma3Config {
    /// Reads a config stored in (or deduced for) an .sbs file.
    public init(sbs c: SbsModelConfig) throws(ModelError) {
        func bad(_ s: String) -> ModelError { .config(".sbs config: \(s)") }
        let n = Int(c.numLayers)
        guard n > 0, c.layerConfigs.count == n else {
            throw bad("num_layers is \(c.numLayers) but \(c.layerConfigs.count) layer configs are stored")
        }
        guard c.attentionWindowSizes.count == n else {
            throw bad("\(c.attentionWindowSizes.count) attention window sizes for \(n) layers")
        }
        let first = c.layerConfigs[0]
        for (i, l) in c.layerConfigs.enumerated() {
            guard (l.modelDim, l.ffHiddenDim, l.heads, l.kvHeads, l.qkvDim) == (c.modelDim, first.ffHiddenDim, first.heads, first.kvHeads, first.qkvDim) else {
                throw bad("layer \(i) differs in shape from layer 0 (or its model_dim \(l.modelDim) from \(c.modelDim)); only uniform layers are supported")
            }
            guard l.type == 0 else { throw bad("layer \(i) is a ViT layer; only the Gemma text model is supported") }
            guard l.postNorm == 1 else { throw bad("layer \(i) has post_norm \(l.postNorm), but Gemma 3 scales after attention and FFN (1)") }
            guard l.useQKNorm else { throw bad("layer \(i) has no QK norm, which Gemma 3 has") }
            guard l.postQK == 0 else { throw bad("layer \(i) uses half RoPE (post_qk \(l.postQK)), which is not supported") }
            guard !l.ffBiases else { throw bad("layer \(i) has FFN biases, which Gemma 3 has not") }
        }
        guard c.attCap == 0, c.finalCap == 0 else {
            throw bad("soft-capping (att_cap \(c.attCap), final_cap \(c.finalCap)) is set; Gemma 3 uses none and this engine has none")
        }
        guard !c.absolutePE else { throw bad("absolute_pe is set; Gemma 3 uses RoPE only") }
        let hidden = Int(c.modelDim), heads = Int(first.heads), kvHeads = Int(first.kvHeads), headDim = Int(first.qkvDim)
        guard hidden > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, headDim > 0, headDim % 2 == 0, first.ffHiddenDim > 0,
              c.vocabSize > 0, c.maxSeqLen > 0 else {
            throw bad("model_dim \(hidden), heads \(heads), kv_heads \(kvHeads), qkv_dim \(headDim), ff_hidden_dim \(first.ffHiddenDim), vocab_size \(c.vocabSize) or max_seq_len \(c.maxSeqLen) is invalid")
        }
        let local = Set(c.attentionWindowSizes.filter { $0 != c.maxSeqLen })
        guard local.count <= 1, let window = local.first ?? Optional(c.maxSeqLen), window > 0, window <= c.maxSeqLen else {
            throw bad("local layers have windows \(local.sorted()); one window for all local layers is supported")
        }
        let queryScalar: Float = c.queryScale == 0 ? Float(headDim) : Float(hidden / heads)  // gemma.cpp: integer division
        var config = Gemma3Config(
            vocabSize: Int(c.vocabSize), hiddenSize: hidden, intermediateSize: Int(first.ffHiddenDim), numHiddenLayers: n,
            numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: headDim, rmsNormEps: 1e-6,
            maxPositionEmbeddings: Int(c.maxSeqLen), slidingWindow: Int(window), slidingWindowPattern: 6,
            layerTypes: c.attentionWindowSizes.map { $0 == c.maxSeqLen },
            ropeTheta: 1_000_000, ropeLocalBaseFreq: 10_000, ropeScalingFactor: nil, queryPreAttnScalar: queryScalar)
        if let size = config.knownSize, config.numAttentionHeads == Self.known(size).numAttentionHeads {
            config.ropeScalingFactor = Self.known(size).ropeScalingFactor
        }
        config.eosTokenIds = Array(Set([Int(c.eosId), Int(c.secondaryEosId)].filter { $0 >= 0 })).sorted()
        for (key, value, limit) in [("num_layers", n, 1024), ("heads", heads, 1024), ("qkv_dim", headDim, 4096),
                                    ("model_dim", hidden, 1 << 17), ("ff_hidden_dim", config.intermediateSize, 1 << 20),
                                    ("vocab_size", config.vocabSize, 1 << 24), ("max_seq_len", config.maxPositionEmbeddings, 1 << 24)]
            where value > limit {
            throw bad("\(key) \(value) is past what this engine accepts (\(limit))")
        }
        self = config
    }
}

extension SbsModelConfig {
    /// The gemma.cpp config of a model with `config`: the canonical one of its published size when it matches
    /// (display name, model id, prompt wrapping), else a generic one with model 0 ("unknown", which gemma.cpp's
    /// loader refuses; this engine reads it). Throws for what gemma.cpp cannot express: RoPE bases other than
    /// 10,000 / 1,000,000, an epsilon other than 1e-6, a query scale from neither head_dim nor hidden / heads, a local
    /// window not below the context. A linear RoPE factor is not stored (gemma.cpp applies none).
    public init(gemma3 config: Gemma3Config, weight: SbsType) throws(ModelError) {
        func bad(_ s: String) -> ModelError { .config("cannot write an .sbs config: \(s)") }
        guard config.ropeTheta == 1_000_000, config.ropeLocalBaseFreq == 10_000 else {
            throw bad("RoPE bases \(config.ropeLocalBaseFreq) / \(config.ropeTheta); gemma.cpp hard-codes 10000 (local) and 1000000 (global)")
        }
        guard config.rmsNormEps == 1e-6 else { throw bad("RMS norm epsilon \(config.rmsNormEps); gemma.cpp hard-codes 1e-6") }
        let queryScale: UInt32
        if config.queryPreAttnScalar == Float(config.headDim) { queryScale = 0 }
        else if config.queryPreAttnScalar == Float(config.hiddenSize / config.numAttentionHeads) { queryScale = 1 }
        else {
            throw bad("query_pre_attn_scalar \(config.queryPreAttnScalar) is neither head_dim \(config.headDim) nor hidden / heads \(config.hiddenSize / config.numAttentionHeads)")
        }
        let layers = config.layers
        guard config.slidingWindow < config.maxPositionEmbeddings || layers.allSatisfy(\.isGlobal) else {
            throw bad("the sliding window \(config.slidingWindow) is not below the context \(config.maxPositionEmbeddings) (gemma.cpp tells global layers by a window equal to it)")
        }
        let fields = [config.vocabSize, config.hiddenSize, config.intermediateSize, config.numHiddenLayers, config.maxPositionEmbeddings]
        guard fields.allSatisfy({ $0 > 0 && $0 <= Int(UInt32.max) }) else { throw bad("a dimension does not fit 32 bits") }

        var c: SbsModelConfig
        if let size = config.knownSize, let model = Gemma3Model(size), Gemma3Config.known(size).numAttentionHeads == config.numAttentionHeads {
            c = .gemma3(model, weight: weight)
        } else {
            c = SbsModelConfig()
            c.displayName = "Gemma3"
            c.scaleBaseNames = SbsModelConfig.gemma3(.b1, weight: weight).scaleBaseNames
        }
        c.weight = weight.rawValue
        c.numLayers = UInt32(config.numHiddenLayers)
        c.modelDim = UInt32(config.hiddenSize)
        c.vocabSize = UInt32(config.vocabSize)
        c.maxSeqLen = UInt32(config.maxPositionEmbeddings)
        c.queryScale = queryScale
        var layer = SbsLayerConfig()
        layer.modelDim = UInt32(config.hiddenSize)
        layer.ffHiddenDim = UInt32(config.intermediateSize)
        layer.heads = UInt32(config.numAttentionHeads)
        layer.kvHeads = UInt32(config.numKeyValueHeads)
        layer.qkvDim = UInt32(config.headDim)
        layer.postNorm = 1
        layer.useQKNorm = true
        c.layerConfigs = Array(repeating: layer, count: config.numHiddenLayers)
        c.attentionWindowSizes = layers.map { $0.isGlobal ? c.maxSeqLen : UInt32(config.slidingWindow) }
        let eos = config.eosTokenIds.sorted()
        c.eosId = Int32(clamping: eos.first ?? 1)
        c.secondaryEosId = Int32(clamping: eos.dropFirst().first ?? eos.first ?? 1)
        self = c
    }
}

extension SbsModelConfig.Gemma3Model {
    init?(_ size: Gemma3Size) {
        switch size {
        case .m270: self = .m270
        case .b1: self = .b1
        case .b4: self = .b4
        case .b12: self = .b12
        case .b27: self = .b27
        }
    }
}
