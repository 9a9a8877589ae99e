// Gemma3VisionConfig from a Hugging Face config.json of Gemma3ForConditionalGeneration (model_type "gemma3"): its
// vision_config (SiglipVisionConfig) and the top-level projector keys, with transformers' class defaults (5.23:
// SiglipVisionConfig, Gemma3Config, Gemma3TextConfig) for keys a file leaves out. The hub's files (legacy layout) and
// transformers 5's save_pretrained name the vision keys the same way; they differ in the text config only.
import GemmaFormats

extension Gemma3VisionConfig {
    /// Reads a config.json document. `file` names it in errors. A text-only config (model_type "gemma3_text")
    /// throws `.noVisionTower`.
    public init(huggingFace root: JSONValue, file: String = "config.json") throws(VisionEncoderError) {
        guard case .object = root else { throw .config("\(file): not a JSON object") }
        let top = JSONReader(object: root, file: file, path: "")
        switch try top.string("model_type", default: nil) {
        case "gemma3": break
        case "gemma3_text":
            throw .noVisionTower("\(file) is a text-only Gemma 3 (model_type gemma3_text: 270M and 1B have no vision tower)")
        case let other?: throw .config("\(file): model_type \"\(other)\" is not Gemma 3 with vision (gemma3)")
        case nil: throw .config("\(file): no model_type (Gemma3ForConditionalGeneration has \"gemma3\")")
        }
        // transformers: a missing vision_config is SiglipVisionConfig() (all defaults below).
        let visionJSON = root["vision_config"] ?? .null
        let vision: JSONValue = visionJSON == .null ? .object([]) : visionJSON
        guard case .object = vision else { throw .config("\(file): vision_config is not an object") }
        let v = JSONReader(object: vision, file: file, path: "vision_config.")
        if let type = try v.string("model_type", default: nil), type != "siglip_vision_model" {
            throw .config("\(file): vision_config.model_type \"\(type)\" is not siglip_vision_model")
        }
        let act = try v.string("hidden_act", default: "gelu_pytorch_tanh")!
        guard act == "gelu_pytorch_tanh" else {
            throw .config("\(file): vision_config.hidden_act \"\(act)\" is not supported (SigLIP in Gemma 3 uses gelu_pytorch_tanh)")
        }
        let siglip = SiglipConfig(
            hiddenSize: try v.int("hidden_size", default: 768)!,
            intermediateSize: try v.int("intermediate_size", default: 3072)!,
            numHiddenLayers: try v.int("num_hidden_layers", default: 12)!,
            numAttentionHeads: try v.int("num_attention_heads", default: 12)!,
            numChannels: try v.int("num_channels", default: 3)!,
            imageSize: try v.int("image_size", default: 224)!,
            patchSize: try v.int("patch_size", default: 16)!,
            layerNormEps: try v.float("layer_norm_eps", default: 1e-6)!)
        let textJSON = root["text_config"] ?? .null
        let text: JSONValue = textJSON == .null ? .object([]) : textJSON
        guard case .object = text else { throw .config("\(file): text_config is not an object") }
        let t = JSONReader(object: text, file: file, path: "text_config.")
        self.init(siglip: siglip,
                  mmTokensPerImage: try top.int("mm_tokens_per_image", default: 256)!,
                  textHiddenSize: try t.int("hidden_size", default: 2304)!,
                  boiTokenIndex: try top.int("boi_token_index", default: 255_999)!,
                  eoiTokenIndex: try top.int("eoi_token_index", default: 256_000)!,
                  imageTokenIndex: try top.int("image_token_index", default: 262_144)!)
        try validate(file)
    }
}

/// Typed reads of one JSON object's keys, with a default for absent or null keys; errors name file and key path.
struct JSONReader {
    let object: JSONValue
    let file: String
    let path: String

    /// A positive integer, or `fallback` when absent or null.
    func int(_ key: String, default fallback: Int?) throws(VisionEncoderError) -> Int? {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .number(x) = v, x == x.rounded(), x >= 1, x < 1e12 else {
            throw .config("\(file): \(path)\(key) is \(v.serialized), not a positive integer")
        }
        return Int(x)
    }

    func float(_ key: String, default fallback: Float?) throws(VisionEncoderError) -> Float? {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .number(x) = v, x.isFinite else { throw .config("\(file): \(path)\(key) is \(v.serialized), not a number") }
        return Float(x)
    }

    func string(_ key: String, default fallback: String?) throws(VisionEncoderError) -> String? {
        guard let v = object[key], v != .null else { return fallback }
        guard case let .string(s) = v else { throw .config("\(file): \(path)\(key) is \(v.serialized), not a string") }
        return s
    }
}
