// A Hugging Face model folder as a checkpoint: config.json (Gemma3Config(huggingFace:)), the safetensors weights (one
// file or shards under model.safetensors.index.json), generation_config.json, and whichever published name layout
// the tensors use (model.*, language_model.model.*, model.language_model.*). Norm weights are stored as w and
// applied as 1 + w (normOffset 1). A missing lm_head means tied; a present one must equal the embedding.
import Foundation
import GemmaFormats

/// Generation settings a checkpoint ships (generation_config.json): end-of-generation ids and sampling defaults.
public struct GenerationDefaults: Sendable, Equatable {
    public var eosTokenIds: [Int]?
    public var doSample: Bool?
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?

    public init(eosTokenIds: [Int]? = nil, doSample: Bool? = nil, temperature: Float? = nil, topK: Int? = nil,
                topP: Float? = nil, minP: Float? = nil, repetitionPenalty: Float? = nil) {
        self.eosTokenIds = eosTokenIds
        self.doSample = doSample
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    /// True when any sampling value is set.
    public var setsSampling: Bool {
        doSample != nil || temperature != nil || topK != nil || topP != nil || minP != nil || repetitionPenalty != nil
    }

    /// Reads a generation_config.json document.
    public init(huggingFace root: JSONValue, file: String = "generation_config.json") throws(ModelError) {
        guard case .object = root else { throw .config("\(file): not a JSON object") }
        let r = ConfigReader(object: root, file: file, path: "")
        self.init()
        eosTokenIds = try Gemma3Config.tokenIDs(root["eos_token_id"], file: file, key: "eos_token_id")
        doSample = root["do_sample"] == nil || root["do_sample"] == .null ? nil : try r.bool("do_sample", default: false)
        temperature = try r.float("temperature", default: nil)
        topK = try r.int("top_k", default: nil)
        topP = try r.float("top_p", default: nil)
        minP = try r.float("min_p", default: nil)
        repetitionPenalty = try r.float("repetition_penalty", default: nil)
    }
}

extension Checkpoint {
    /// The tensor-name prefixes of the published layouts, tried in order.
    static let huggingFacePrefixes = ["model.", "model.language_model.", "language_model.model.", ""]

    /// Opens a Hugging Face model folder.
    public static func openHuggingFace(directory: String) throws(ModelError) -> Checkpoint {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        guard let configJSON = try readJSON(dir + "/config.json") else {
            throw .config("\(dir) has no config.json (a Hugging Face model folder needs one)")
        }
        var config = try Gemma3Config(huggingFace: configJSON)
        var generation = GenerationDefaults()
        if let g = try readJSON(dir + "/generation_config.json") {
            generation = try GenerationDefaults(huggingFace: g)
            if let eos = generation.eosTokenIds, !eos.isEmpty { config.eosTokenIds = Array(Set(config.eosTokenIds + eos)).sorted() }
        }
        let source: SafetensorsCheckpoint
        do { source = try SafetensorsCheckpoint(directory: dir) } catch { throw .format(error) }
        guard let prefix = huggingFacePrefixes.first(where: { source.sourceTensor(named: $0 + "embed_tokens.weight") != nil }) else {
            throw .missingWeight("embed_tokens.weight (under model., model.language_model. or language_model.model.) in \(dir)")
        }
        // The tied head: a stored lm_head must be the embedding itself.
        for head in ["lm_head.weight", "language_model.lm_head.weight"] {
            guard let h = source.sourceTensor(named: head), let e = source.sourceTensor(named: prefix + "embed_tokens.weight") else { continue }
            guard h.shape == e.shape, h.storedType == e.storedType, h.bytes.elementsEqual(e.bytes) else {
                throw .config("\(head) differs from the token embedding: untied output heads are not supported (Gemma 3 ties them)")
            }
        }
        return Checkpoint(path: dir, source: source, config: config, naming: .huggingFace(prefix: prefix), normOffset: 1,
                          generation: generation)
    }

    /// The parsed JSON file at `path`, or nil when there is none.
    static func readJSON(_ path: String) throws(ModelError) -> JSONValue? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw .config("\(path) cannot be read") }
        guard data.count <= 64 << 20 else { throw .config("\(path) is \(data.count) bytes, more than a config can be") }
        do { return try JSONValue.parse([UInt8](data)) } catch { throw .config("\(path) is not valid JSON: \(error)") }
    }
}
