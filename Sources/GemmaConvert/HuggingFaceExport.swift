// The files of a Hugging Face Gemma3ForCausalLM folder besides its weights: config.json in the schema transformers 5
// writes (the one Tests/Fixtures/gemma3-tiny-text/config.json was saved in by transformers 5.23: `layer_types`,
// `rope_parameters` per attention kind, `dtype`), generation_config.json, and how the weights are split into
// safetensors shards (huggingface_hub's `split_torch_state_dict_into_shards`: tensors in model order, a new shard when
// the next tensor would pass the limit; model.safetensors when one shard holds everything).
import GemmaFormats
import GemmaModel
import GemmaTokenizer

public enum HuggingFaceExport {
    /// config.json for `c` with weights of `dtype`.
    public static func config(_ c: Gemma3Config, dtype: ConvertType, paddingID: Int?) -> JSONValue {
        let layers = c.layers
        var fullRope: [(String, JSONValue)] = []
        if let f = c.ropeScalingFactor { fullRope.append(("factor", number(f))) }
        fullRope += [("rope_theta", number(c.ropeTheta)), ("rope_type", .string(c.ropeScalingFactor == nil ? "default" : "linear"))]
        var pairs: [(String, JSONValue)] = []
        // Keys in sorted order, as transformers writes them (json.dumps(sort_keys=True)).
        let pattern = c.slidingWindowPattern
        let followsPattern = layers.enumerated().allSatisfy { i, l in l.isGlobal == ((i + 1) % pattern == 0) }
        if followsPattern { pairs.append(("_sliding_window_pattern", .int(pattern))) }
        pairs += [
            ("architectures", ["Gemma3ForCausalLM"]),
            ("attention_bias", false),
            ("attention_dropout", 0),
            ("attn_logit_softcapping", nil),
            ("bos_token_id", .int(c.bosTokenId)),
            ("dtype", .string(torchName(dtype))),
            ("eos_token_id", .array(c.eosTokenIds.map { .int($0) })),
            ("final_logit_softcapping", nil),
            ("head_dim", .int(c.headDim)),
            ("hidden_activation", "gelu_pytorch_tanh"),
            ("hidden_size", .int(c.hiddenSize)),
            ("initializer_range", 0.02),
            ("intermediate_size", .int(c.intermediateSize)),
            ("layer_types", .array(layers.map { $0.isGlobal ? "full_attention" : "sliding_attention" })),
            ("max_position_embeddings", .int(c.maxPositionEmbeddings)),
            ("model_type", "gemma3_text"),
            ("num_attention_heads", .int(c.numAttentionHeads)),
            ("num_hidden_layers", .int(c.numHiddenLayers)),
            ("num_key_value_heads", .int(c.numKeyValueHeads)),
        ]
        if let paddingID { pairs.append(("pad_token_id", .int(paddingID))) }
        pairs += [
            ("query_pre_attn_scalar", number(c.queryPreAttnScalar)),
            ("rms_norm_eps", number(c.rmsNormEps)),
            ("rope_parameters", .object([
                ("full_attention", .object(fullRope)),
                ("sliding_attention", .object([("rope_theta", number(c.ropeLocalBaseFreq)), ("rope_type", "default")])),
            ])),
            ("sliding_window", .int(c.slidingWindow)),
        ]
        if followsPattern { pairs.append(("sliding_window_pattern", .int(pattern))) }
        pairs += [
            ("tie_word_embeddings", true),
            ("use_bidirectional_attention", false),
            ("use_cache", true),
            ("vocab_size", .int(c.vocabSize)),
        ]
        return .object(pairs)
    }

    /// generation_config.json: the special ids, and sampling values only when the input set some.
    public static func generationConfig(_ c: Gemma3Config, paddingID: Int?, sampling: SamplingDefaults) -> JSONValue {
        var pairs: [(String, JSONValue)] = [("bos_token_id", .int(c.bosTokenId))]
        if !sampling.isEmpty { pairs.append(("do_sample", .bool(sampling.temperature != 0))) }
        pairs.append(("eos_token_id", .array(c.eosTokenIds.map { .int($0) })))
        if let x = sampling.minP { pairs.append(("min_p", number(x))) }
        if let paddingID { pairs.append(("pad_token_id", .int(paddingID))) }
        if let x = sampling.repetitionPenalty { pairs.append(("repetition_penalty", number(x))) }
        if let x = sampling.temperature, x != 0 { pairs.append(("temperature", number(x))) }
        if let x = sampling.topK { pairs.append(("top_k", .int(x))) }
        if let x = sampling.topP { pairs.append(("top_p", number(x))) }
        return .object(pairs)
    }

    /// The shards of weights totalling more than `maxShardBytes`: groups of consecutive tensors, a new group when the
    /// next tensor would take the current one past the limit (a tensor larger than the limit gets a group of its own).
    public static func shards(_ tensors: [PlannedTensor], maxShardBytes: Int) -> [[PlannedTensor]] {
        var groups: [[PlannedTensor]] = [[]]
        var size = 0
        for t in tensors {
            if !groups[groups.count - 1].isEmpty && size + t.byteCount > maxShardBytes {
                groups.append([])
                size = 0
            }
            groups[groups.count - 1].append(t)
            size += t.byteCount
        }
        return groups
    }

    /// transformers' shard file names: model.safetensors alone, else model-00001-of-0000N.safetensors.
    public static func shardName(_ index: Int, of count: Int) -> String {
        if count == 1 { return SafetensorsCheckpoint.singleFileName }
        func five(_ n: Int) -> String { String(repeating: "0", count: max(0, 5 - String(n).count)) + String(n) }
        return "model-\(five(index + 1))-of-\(five(count)).safetensors"
    }

    /// model.safetensors.index.json: {"metadata": {"total_size": bytes}, "weight_map": {tensor: file}} with sorted
    /// keys, as transformers writes it.
    public static func index(_ shards: [[PlannedTensor]]) -> JSONValue {
        var map: [(String, JSONValue)] = []
        for (i, shard) in shards.enumerated() {
            for t in shard { map.append((t.name, .string(shardName(i, of: shards.count)))) }
        }
        map.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        let total = shards.joined().reduce(0) { $0 + $1.byteCount }
        return ["metadata": ["total_size": .int(total)], "weight_map": .object(map)]
    }

    static func torchName(_ t: ConvertType) -> String {
        switch t {
        case .bf16: "bfloat16"
        case .f16: "float16"
        default: "float32"
        }
    }

    /// A float as JSON with its shortest decimal spelling (1e-06, not 9.999999974752427e-07), which reads back as the
    /// same f32.
    static func number(_ x: Float) -> JSONValue { .number(Double("\(x)") ?? Double(x)) }
}
