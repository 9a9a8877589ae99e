// Gemma 3 hyperparameters from a Hugging Face config.json: the top-level text config of Gemma3ForCausalLM
// (model_type "gemma3_text") or the `text_config` of Gemma3ForConditionalGeneration ("gemma3"), with transformers'
// class defaults (Gemma3TextConfig, transformers 5.23) for the fields Google's configs leave out, and both RoPE
// schemas: rope_theta / rope_local_base_freq / rope_scaling (the hub's files) and rope_parameters / layer_types
// (transformers 5). What the engine does not implement (softcapping, another activation, bidirectional attention,
// an unknown RoPE type) is an error naming the field.
import GemmaFormats

extension Gemma3Config {
    /// Reads a config.json document. `file` names it in errors.
    public init(huggingFace root: JSONValue, file: String = "config.json") throws(ModelError) {
        guard case .object = root else { throw .config("\(file): not a JSON object") }
        let modelType = root["model_type"]?.stringValue
        var text = root, path = ""
        switch modelType {
        case "gemma3":
            // Gemma3ForConditionalGeneration: the text model's fields are under text_config (absent = all defaults).
            text = root["text_config"] ?? .object([])
            guard case .object = text else { throw .config("\(file): text_config is not an object") }
            path = "text_config."
        case "gemma3_text", nil:
            if let nested = root["text_config"], case .object = nested { text = nested; path = "text_config." }
        case let other?:
            throw .config("\(file): model_type \"\(other)\" is not Gemma 3 (gemma3_text or gemma3)")
        }
        let r = ConfigReader(object: text, file: file, path: path)

        let layers = try r.int("num_hidden_layers", default: 26)!
        let heads = try r.int("num_attention_heads", default: 8)!
        let kvHeads = try r.int("num_key_value_heads", default: 4)!
        let headDim = try r.int("head_dim", default: 256)!
        guard heads % kvHeads == 0 else {
            throw .config("\(file): num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        guard headDim % 2 == 0 else { throw .config("\(file): \(path)head_dim \(headDim) is odd (RoPE rotates pairs)") }

        for key in ["final_logit_softcapping", "attn_logit_softcapping"] {
            if let v = text[key], v != .null {
                throw .config("\(file): \(path)\(key) is set (\(v.serialized)); Gemma 3 uses no softcapping and this engine has none")
            }
        }
        let act = try r.string("hidden_act", default: "gelu_pytorch_tanh")!
        let activation = try r.string("hidden_activation", default: act)!
        guard activation == "gelu_pytorch_tanh" else {
            throw .config("\(file): \(path)hidden_activation \"\(activation)\" is not supported (Gemma 3 uses gelu_pytorch_tanh)")
        }
        if try r.bool("use_bidirectional_attention", default: false) {
            throw .config("\(file): \(path)use_bidirectional_attention is true (an embedding model); only causal Gemma 3 is supported")
        }

        // Attention kinds per layer: layer_types, else every sliding_window_pattern-th layer is global.
        var layerTypes: [Bool]? = nil
        if let types = text["layer_types"], types != .null {
            guard case let .array(items) = types, items.count == layers else {
                throw .config("\(file): \(path)layer_types must list \(layers) layer types (num_hidden_layers)")
            }
            layerTypes = []
            for (i, item) in items.enumerated() {
                switch item.stringValue {
                case "full_attention": layerTypes!.append(true)
                case "sliding_attention": layerTypes!.append(false)
                default: throw .config("\(file): \(path)layer_types[\(i)] is \(item.serialized), not \"full_attention\" or \"sliding_attention\"")
                }
            }
        }
        let privatePattern = try r.int("_sliding_window_pattern", default: 6)!
        let pattern = try r.int("sliding_window_pattern", default: privatePattern)!

        // RoPE: transformers 5's rope_parameters per attention kind, or the hub's flat keys.
        var globalTheta: Float = 1_000_000, localTheta: Float = 10_000, factor: Float? = nil
        if let params = text["rope_parameters"], params != .null {
            guard case .object = params else { throw .config("\(file): \(path)rope_parameters is not an object") }
            if let full = params["full_attention"] {
                let f = ConfigReader(object: full, file: file, path: path + "rope_parameters.full_attention.")
                globalTheta = try f.float("rope_theta", default: globalTheta)!
                factor = try Self.ropeFactor(f)
            }
            if let sliding = params["sliding_attention"] {
                let s = ConfigReader(object: sliding, file: file, path: path + "rope_parameters.sliding_attention.")
                localTheta = try s.float("rope_theta", default: localTheta)!
                if let f = try Self.ropeFactor(s) {
                    throw .config("\(file): \(path)rope_parameters.sliding_attention scales RoPE by \(f); Gemma 3 scales only global layers")
                }
            }
        } else {
            globalTheta = try r.float("rope_theta", default: globalTheta)!
            localTheta = try r.float("rope_local_base_freq", default: localTheta)!
            if let scaling = text["rope_scaling"], scaling != .null {
                factor = try Self.ropeFactor(ConfigReader(object: scaling, file: file, path: path + "rope_scaling."))
            }
        }

        var c = Gemma3Config(
            vocabSize: try r.int("vocab_size", default: 262_208)!,
            hiddenSize: try r.int("hidden_size", default: 2304)!,
            intermediateSize: try r.int("intermediate_size", default: 9216)!,
            numHiddenLayers: layers, numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: headDim,
            rmsNormEps: try r.float("rms_norm_eps", default: 1e-6)!,
            maxPositionEmbeddings: try r.int("max_position_embeddings", default: 131_072)!,
            slidingWindow: try r.int("sliding_window", default: 4096)!,
            slidingWindowPattern: pattern, layerTypes: layerTypes,
            ropeTheta: globalTheta, ropeLocalBaseFreq: localTheta, ropeScalingFactor: factor,
            queryPreAttnScalar: try r.float("query_pre_attn_scalar", default: 256)!)
        let rootBOS = try ConfigReader(object: root, file: file, path: "").int("bos_token_id", default: 2)!
        c.bosTokenId = try r.int("bos_token_id", default: rootBOS)!
        if let eos = try Self.tokenIDs(text["eos_token_id"] ?? root["eos_token_id"], file: file, key: "eos_token_id") { c.eosTokenIds = eos }
        // Bounds far past any Gemma (27B: 62 layers, 32 heads, width 5376, 262,208 tokens), so that a damaged file
        // fails here rather than in an allocation sized by it.
        for (key, value, limit) in [("num_hidden_layers", c.numHiddenLayers, 1024), ("num_attention_heads", c.numAttentionHeads, 1024),
                                    ("head_dim", c.headDim, 4096), ("hidden_size", c.hiddenSize, 1 << 17),
                                    ("intermediate_size", c.intermediateSize, 1 << 20), ("vocab_size", c.vocabSize, 1 << 24),
                                    ("max_position_embeddings", c.maxPositionEmbeddings, 1 << 24)] where value > limit {
            throw .config("\(file): \(path)\(key) \(value) is past what this engine accepts (\(limit))")
        }
        guard c.rmsNormEps > 0, c.rmsNormEps.isFinite, c.ropeTheta > 0, c.ropeLocalBaseFreq > 0, c.queryPreAttnScalar > 0 else {
            throw .config("\(file): rms_norm_eps \(c.rmsNormEps), RoPE bases \(c.ropeTheta)/\(c.ropeLocalBaseFreq) or query_pre_attn_scalar \(c.queryPreAttnScalar) is not positive")
        }
        self = c
    }

    /// The linear factor of a RoPE parameter object (`rope_type` or the older `type`): nil for "default" or a factor of 1.
    private static func ropeFactor(_ r: ConfigReader) throws(ModelError) -> Float? {
        let legacyType = try r.string("type", default: "default")!
        let type = try r.string("rope_type", default: legacyType)!
        switch type {
        case "default": return nil
        case "linear":
            guard let f = try r.float("factor", default: nil), f > 0, f.isFinite else {
                throw .config("\(r.file): \(r.path)factor must be a positive number for linear RoPE scaling")
            }
            return f == 1 ? nil : f
        default:
            throw .config("\(r.file): \(r.path)rope_type \"\(type)\" is not supported (Gemma 3 uses default and linear)")
        }
    }

    /// An id or a list of ids (eos_token_id); nil when absent or null.
    static func tokenIDs(_ v: JSONValue?, file: String, key: String) throws(ModelError) -> [Int]? {
        switch v {
        case nil, .null?: return nil
        case let .number(x)? where x >= 0 && x == x.rounded() && x < 1e9: return [Int(x)]
        case let .array(items)?:
            var ids: [Int] = []
            for item in items {
                guard case let .number(x) = item, x >= 0, x == x.rounded(), x < 1e9 else {
                    throw .config("\(file): \(key) holds \(item.serialized), not a token id")
                }
                ids.append(Int(x))
            }
            return ids
        case let other?: throw .config("\(file): \(key) is \(other.serialized), not a token id or a list of them")
        }
    }
}

/// Typed field access with errors that name the file and the field.
struct ConfigReader {
    let object: JSONValue
    let file: String
    let path: String

    /// The integer at `key`, `fallback` when absent or null; a positive integer is required when present.
    func int(_ key: String, default fallback: Int?) throws(ModelError) -> Int? {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .number(x) = v, x == x.rounded(), x >= 1, x < 1e12 else {
            throw .config("\(file): \(path)\(key) is \(v.serialized), not a positive integer")
        }
        return Int(x)
    }

    func float(_ key: String, default fallback: Float?) throws(ModelError) -> Float? {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .number(x) = v, x.isFinite else { throw .config("\(file): \(path)\(key) is \(v.serialized), not a number") }
        return Float(x)
    }

    func string(_ key: String, default fallback: String?) throws(ModelError) -> String? {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .string(s) = v else { throw .config("\(file): \(path)\(key) is \(v.serialized), not a string") }
        return s
    }

    func bool(_ key: String, default fallback: Bool) throws(ModelError) -> Bool {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .bool(b) = v else { throw .config("\(file): \(path)\(key) is \(v.serialized), not true or false") }
        return b
    }
}

extension JSONValue {
    /// The string, if this is one.
    var stringValue: String? { if case let .string(s) = self { s } else { nil } }
}
