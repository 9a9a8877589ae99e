// The structs gemma.cpp serializes into an .sbs file, field for field in its order: `ModelConfig`, `LayerConfig`,
// `VitConfig` (gemma/configs.h) in the `config` blob, and one `MatPtr` (util/mat.h) per tensor in the `toc` blob.
// Enums are kept as their stored u32 and checked by `validate()` against the values gemma.cpp defines, so that a
// file with an unknown value is refused as gemma.cpp refuses it. gemma.cpp's `InternalModelConfig` and
// `InternalLayerConfig` visit their (so far no) fields inline, without a length word: nothing to read for them.

/// gemma.cpp's `Type` (compression/types.h): the element type of a tensor.
public enum SbsType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case unknown = 0, f32, bf16, sfp, nuq, f64, u32, u64, i8

    /// gemma.cpp's name (`kTypeStrings`).
    public var description: String { ["unknown", "f32", "bf16", "sfp", "nuq", "f64", "u32", "u64", "i8"][Int(rawValue)] }

    /// Bits per element (`kTypeBits`; NUQ is 4.5 bits in fact, stored as 4 plus tables).
    public var bits: Int { [0, 32, 16, 8, 4, 64, 32, 64, 8][Int(rawValue)] }

    /// Bytes per element as gemma.cpp stores `element_bytes` (bits rounded up to a byte).
    public var elementBytes: Int { (bits + 7) / 8 }

    /// The key prefix of pre-2025 files (gemma.cpp `TypePrefix::TypeFromChar`); only these five were written.
    public static func ofLegacyPrefix(_ c: Character) -> SbsType? {
        switch c {
        case "F": .f32
        case "B": .bf16
        case "$": .sfp
        case "2": .nuq
        case "I": .i8
        default: nil
        }
    }
}

/// One tensor's description in the `toc` blob (gemma.cpp `MatPtr::VisitFields`).
public struct SbsMatPtr: SbsFields, Equatable {
    public var name = ""
    public var type: UInt32 = 0
    public var elementBytes: UInt32 = 0
    /// Elements stored (for NUQ including its tables).
    public var numElements: UInt32 = 0
    public var rows: UInt32 = 0
    public var cols: UInt32 = 0
    /// Decoded values are multiplied by this (SFP's per-tensor scale; 1 otherwise).
    public var scale: Float = 1
    /// Elements from one row to the next in gemma.cpp's memory; the blob itself is always packed (stride = cols).
    public var stride: UInt32 = 0

    public init() {}

    public init(name: String, type: SbsType, rows: Int, cols: Int, scale: Float = 1) {
        self.name = name
        self.type = type.rawValue
        elementBytes = UInt32(type.elementBytes)
        numElements = UInt32(rows * cols)
        self.rows = UInt32(rows)
        self.cols = UInt32(cols)
        self.scale = scale
        stride = UInt32(cols)
    }

    public mutating func visitFields<V: SbsFieldVisitor>(_ v: inout V) throws(FormatError) {
        try v.visit(&name, "name")
        try v.visit(&type, "type")
        try v.visit(&elementBytes, "element_bytes")
        try v.visit(&numElements, "num_elements")
        try v.visit(&rows, "rows")
        try v.visit(&cols, "cols")
        try v.visit(&scale, "scale")
        try v.visit(&stride, "stride")
    }
}

/// gemma.cpp's `LayerConfig`.
public struct SbsLayerConfig: SbsFields, Equatable {
    public var modelDim: UInt32 = 0
    public var unusedGriffinDim: UInt32 = 0
    public var ffHiddenDim: UInt32 = 0
    public var heads: UInt32 = 0
    public var kvHeads: UInt32 = 0
    /// The length of each query, key and value vector (head dimension).
    public var qkvDim: UInt32 = 0
    public var unusedConv1dWidth: UInt32 = 0
    public var ffBiases = false
    public var unusedSoftmaxAttnOutputBiases = false
    public var optimizedGating = true
    /// `PostNormType`: 0 None, 1 Scale.
    public var postNorm: UInt32 = 0
    /// `LayerAttentionType`: 0 Gemma, 1 ViT.
    public var type: UInt32 = 0
    /// `ActivationType`: 0 GELU.
    public var activation: UInt32 = 0
    /// `PostQKType`: 0 RoPE, 1 half RoPE.
    public var postQK: UInt32 = 0
    public var useQKNorm = false

    public init() {}

    public mutating func visitFields<V: SbsFieldVisitor>(_ v: inout V) throws(FormatError) {
        try v.visit(&modelDim, "model_dim")
        try v.visit(&unusedGriffinDim, "griffin_dim")
        try v.visit(&ffHiddenDim, "ff_hidden_dim")
        try v.visit(&heads, "heads")
        try v.visit(&kvHeads, "kv_heads")
        try v.visit(&qkvDim, "qkv_dim")
        try v.visit(&unusedConv1dWidth, "conv1d_width")
        try v.visit(&ffBiases, "ff_biases")
        try v.visit(&unusedSoftmaxAttnOutputBiases, "softmax_attn_output_biases")
        try v.visit(&optimizedGating, "optimized_gating")
        try v.visit(&postNorm, "post_norm")
        try v.visit(&type, "type")
        try v.visit(&activation, "activation")
        try v.visit(&postQK, "post_qk")
        try v.visit(&useQKNorm, "use_qk_norm")
    }

    func validate(_ path: String) throws(FormatError) {
        // The enum ranges gemma.cpp's `EnumValid` accepts (its PostQKType check compares with PostNormType's sentinel).
        for (field, value, limit) in [("post_norm", postNorm, 2), ("type", type, 2), ("activation", activation, 1),
                                      ("post_qk", postQK, 2)] as [(String, UInt32, UInt32)] where value >= limit {
            throw .badBlob(blob: "config", reason: "\(path).\(field) is \(value), not a value gemma.cpp defines (0..<\(limit))")
        }
    }
}

/// gemma.cpp's `VitConfig` (the image encoder; empty in a text-only model).
public struct SbsVitConfig: SbsFields, Equatable {
    public var modelDim: UInt32 = 0
    public var seqLen: UInt32 = 0
    public var numScales: UInt32 = 0
    public var patchWidth: UInt32 = 14
    public var imageSize: UInt32 = 224
    public var layerConfigs: [SbsLayerConfig] = []
    public var poolDim: UInt32 = 1

    public init() {}

    public mutating func visitFields<V: SbsFieldVisitor>(_ v: inout V) throws(FormatError) {
        try v.visit(&modelDim, "model_dim")
        try v.visit(&seqLen, "seq_len")
        try v.visit(&numScales, "num_scales")
        try v.visit(&patchWidth, "patch_width")
        try v.visit(&imageSize, "image_size")
        try v.visit(&layerConfigs, "layer_configs")
        try v.visit(&poolDim, "pool_dim")
    }
}

/// gemma.cpp's `ModelConfig`, as stored in the `config` blob.
public struct SbsModelConfig: SbsFields, Equatable {
    /// gemma.cpp's `Model` values that are Gemma 3 (the others are Gemma 2 and PaliGemma 2).
    public enum Gemma3Model: UInt32, Sendable, CaseIterable {
        case b4 = 14, b1 = 15, b12 = 16, b27 = 17, m270 = 18
    }

    public var modelFamilyVersion: UInt32 = 1
    public var displayName = ""
    /// `Model`: 0 unknown, 3-4 and 7 Gemma 2, 10-13 PaliGemma 2, 14-18 Gemma 3 (`Gemma3Model`).
    public var model: UInt32 = 0
    /// `PromptWrapping`: 0 Gemma IT, 1 Gemma PT, 2 Gemma VLM, 3 PaliGemma.
    public var wrapping: UInt32 = 1
    /// `Type` of the smallest weights (gemma.cpp checks it against the toc).
    public var weight: UInt32 = 0
    public var numLayers: UInt32 = 0
    public var modelDim: UInt32 = 0
    public var vocabSize: UInt32 = 0
    /// Global layers are those whose window equals this.
    public var maxSeqLen: UInt32 = 0
    public var unusedNumTensorScales: UInt32 = 0
    public var attCap: Float = 0
    public var finalCap: Float = 0
    public var absolutePE = false
    public var unusedUseLocalAttention = false
    /// `QueryScaleType`: 0 1/sqrt(qkv_dim), 1 1/sqrt(model_dim / heads).
    public var queryScale: UInt32 = 0
    public var layerConfigs: [SbsLayerConfig] = []
    /// Per layer: the sliding window, or `maxSeqLen` for a global layer.
    public var attentionWindowSizes: [UInt32] = []
    public var normNumGroups: UInt32 = 1
    public var vitConfig = SbsVitConfig()
    public var poolDim: UInt32 = 1
    public var eosId: Int32 = 1
    public var secondaryEosId: Int32 = 1
    /// Pre-2025 files: the base names of the tensors that take the `Fscales` blob's scales, in visit order.
    public var scaleBaseNames: [String] = []

    public init() {}

    public mutating func visitFields<V: SbsFieldVisitor>(_ v: inout V) throws(FormatError) {
        try v.visit(&modelFamilyVersion, "model_family_version")
        try v.visit(&displayName, "display_name")
        try v.visit(&model, "model")
        try v.visit(&wrapping, "wrapping")
        try v.visit(&weight, "weight")
        try v.visit(&numLayers, "num_layers")
        try v.visit(&modelDim, "model_dim")
        try v.visit(&vocabSize, "vocab_size")
        try v.visit(&maxSeqLen, "max_seq_len")
        try v.visit(&unusedNumTensorScales, "num_tensor_scales")
        try v.visit(&attCap, "att_cap")
        try v.visit(&finalCap, "final_cap")
        try v.visit(&absolutePE, "absolute_pe")
        try v.visit(&unusedUseLocalAttention, "use_local_attention")
        try v.visit(&queryScale, "query_scale")
        try v.visit(&layerConfigs, "layer_configs")
        try v.visit(&attentionWindowSizes, "attention_window_sizes")
        try v.visit(&normNumGroups, "norm_num_groups")
        try v.visit(&vitConfig, "vit_config")
        try v.visit(&poolDim, "pool_dim")
        try v.visit(&eosId, "eos_id")
        try v.visit(&secondaryEosId, "secondary_eos_id")
        try v.visit(&scaleBaseNames, "scale_base_names")
    }

    /// The gemma.cpp model name (`ModelPrefix`), or "model N" for a value without one here.
    public var modelName: String {
        switch model {
        case 0: "unknown"
        case 3: "9b"
        case 4: "27b"
        case 7: "gemma2-2b"
        case 10: "paligemma2-3b-224"
        case 11: "paligemma2-3b-448"
        case 12: "paligemma2-10b-224"
        case 13: "paligemma2-10b-448"
        case 14: "gemma3-4b"
        case 15: "gemma3-1b"
        case 16: "gemma3-12b"
        case 17: "gemma3-27b"
        case 18: "gemma3-270m"
        default: "model \(model)"
        }
    }

    /// The prompt wrapping's name (gemma.cpp `WrappingSuffix` without the dash).
    public var wrappingName: String { wrapping < 4 ? ["it", "pt", "vlm", "pg"][Int(wrapping)] : "?" }

    /// Checks the enums against the values gemma.cpp defines (its reader refuses others).
    public func validate() throws(FormatError) {
        let models: Set<UInt32> = [0, 3, 4, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18]
        guard models.contains(model) else {
            throw .badBlob(blob: "config", reason: "model is \(model), not a model gemma.cpp defines")
        }
        guard wrapping < 4 else { throw .badBlob(blob: "config", reason: "wrapping is \(wrapping), not a value gemma.cpp defines (0..<4)") }
        guard SbsType(rawValue: weight) != nil else {
            throw .badBlob(blob: "config", reason: "weight type is \(weight), not a type gemma.cpp defines (0..<9)")
        }
        guard queryScale < 2 else { throw .badBlob(blob: "config", reason: "query_scale is \(queryScale), not a value gemma.cpp defines (0..<2)") }
        for (i, l) in layerConfigs.enumerated() { try l.validate("layer_configs[\(i)]") }
        for (i, l) in vitConfig.layerConfigs.enumerated() { try l.validate("vit_config.layer_configs[\(i)]") }
    }
}
