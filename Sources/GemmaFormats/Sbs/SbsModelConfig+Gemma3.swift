// gemma.cpp's canonical Gemma 3 configs (gemma/configs.cc: ConfigGemma3_270M, _1B, _4B_LM, _12B_LM, _27B_LM), text
// model only: what a pre-2025 file without a `config` blob is read with (gemma.cpp deduces the model from the layer
// count), and what the writer starts from for a model of a published size. Values as gemma.cpp has them, including
// where they differ from the JAX reference: max_seq_len capped at 32K, and the 27B's query scale 1/sqrt(qkv_dim)
// (= 1/sqrt(128); the reference uses 1/sqrt(168), see formats.md 1.6).

extension SbsModelConfig {
    /// The canonical text config of a Gemma 3 size, with `weight` as its weight type.
    public static func gemma3(_ model: Gemma3Model, weight: SbsType) -> SbsModelConfig {
        let (name, layers, dim, ff, heads, kvHeads, qkvDim, window): (String, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            switch model {
            case .m270: ("Gemma3_270M", 18, 640, 2048, 4, 1, 256, 512)
            case .b1: ("Gemma3_1B", 26, 1152, 6912, 4, 1, 256, 512)
            case .b4: ("Gemma3_4B", 34, 2560, 10240, 8, 4, 256, 1024)
            case .b12: ("Gemma3_12B", 48, 3840, 15360, 16, 8, 256, 1024)
            case .b27: ("Gemma3_27B", 62, 5376, 21504, 32, 16, 128, 1024)
            }
        var c = SbsModelConfig()
        c.displayName = name
        c.model = model.rawValue
        c.wrapping = model == .m270 ? 0 : 2  // GEMMA_IT for the 270M, GEMMA_VLM for the others
        c.weight = weight.rawValue
        c.numLayers = layers
        c.modelDim = dim
        c.vocabSize = 262_144
        c.maxSeqLen = 32 * 1024
        var layer = SbsLayerConfig()
        layer.modelDim = dim
        layer.ffHiddenDim = ff
        layer.heads = heads
        layer.kvHeads = kvHeads
        layer.qkvDim = qkvDim
        layer.optimizedGating = true
        layer.postNorm = 1  // Scale
        layer.useQKNorm = true
        c.layerConfigs = Array(repeating: layer, count: Int(layers))
        c.attentionWindowSizes = (0..<layers).map { ($0 + 1) % 6 == 0 ? c.maxSeqLen : window }
        c.eosId = 1
        c.secondaryEosId = 106
        c.scaleBaseNames = ["att_ein", "qkv_ein", "gr_lin_x_w", "gr_lin_y_w", "gr_lin_out_w", "gr_gate_w", "gating_ein", "linear_w"]
        return c
    }

    /// The Gemma 3 size with this many layers and this width. (gemma.cpp's `DeduceModel` looks at the layer count
    /// only, and takes 26 layers for Gemma 2 2B unless ViT tensors are present; the width tells them apart here.)
    public static func gemma3Model(layers: Int, modelDim: Int) -> Gemma3Model? {
        Gemma3Model.allCases.first {
            let c = gemma3($0, weight: .bf16)
            return Int(c.numLayers) == layers && Int(c.modelDim) == modelDim
        }
    }
}
