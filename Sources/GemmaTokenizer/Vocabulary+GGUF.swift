// Reading a vocabulary from GGUF metadata (the `tokenizer.ggml.*` keys written by llama.cpp's convert scripts),
// with llama.cpp's defaults for the optional keys (llama-vocab.cpp llama_vocab::impl::load).
import GemmaFormats

extension Vocabulary {
    /// Reads a SentencePiece vocabulary from GGUF metadata.
    ///
    /// Requires `tokenizer.ggml.model` = "llama" and `tokenizer.ggml.tokens`; scores default to 0, types to
    /// normal, `add_bos_token` to true, `add_eos_token` to false and `add_space_prefix` to true, as in llama.cpp.
    ///
    /// - Parameter metadata: The metadata of a GGUF file.
    /// - Throws: `TokenizerError` if a key is missing or mis-typed, or the vocabulary is inconsistent.
    public init(gguf metadata: GGUFMetadata) throws(TokenizerError) {
        let modelKey = "tokenizer.ggml.model"
        guard let model = metadata[modelKey] else { throw .metadata(key: modelKey, reason: "missing") }
        guard let modelName = model.string else { throw .metadata(key: modelKey, reason: "not a string") }
        guard modelName == "llama" else { throw .unsupportedModel(modelName) }

        let tokensKey = "tokenizer.ggml.tokens"
        guard case let .array(.string(pieces))? = metadata[tokensKey] else {
            throw .metadata(key: tokensKey, reason: metadata[tokensKey] == nil ? "missing" : "not an array of strings")
        }

        let scoresKey = "tokenizer.ggml.scores"
        let scores: [Float]
        switch metadata[scoresKey] {
        case nil: scores = [Float](repeating: 0, count: pieces.count)
        case let .array(.float32(values))?: scores = values
        default: throw .metadata(key: scoresKey, reason: "not an array of float32")
        }

        let typesKey = "tokenizer.ggml.token_type"
        var types: [TokenType]
        switch metadata[typesKey] {
        case nil: types = [TokenType](repeating: .normal, count: pieces.count)
        case let .array(array)?:
            guard let values = array.ints else { throw .metadata(key: typesKey, reason: "not an array of integers") }
            types = []
            types.reserveCapacity(values.count)
            for (id, value) in values.enumerated() {
                guard let type = Int32(exactly: value).flatMap(TokenType.init(rawValue:)) else {
                    throw .invalidTokenType(id: id, value: value)
                }
                types.append(type)
            }
        default: throw .metadata(key: typesKey, reason: "not an array")
        }

        func id(_ key: String) throws(TokenizerError) -> TokenID? {
            guard let value = metadata["tokenizer.ggml." + key] else { return nil }
            guard let int = value.int else { throw .metadata(key: "tokenizer.ggml." + key, reason: "not an integer") }
            guard let id = TokenID(exactly: int), id >= 0, Int(id) < pieces.count else {
                throw .specialIDOutOfRange(name: key, id: int, vocabularySize: pieces.count)
            }
            return id
        }
        func flag(_ key: String, default value: Bool) throws(TokenizerError) -> Bool {
            guard let stored = metadata["tokenizer.ggml." + key] else { return value }
            guard let bool = stored.bool else { throw .metadata(key: "tokenizer.ggml." + key, reason: "not a bool") }
            return bool
        }

        try self.init(
            pieces: pieces, scores: scores, types: types,
            bosID: try id("bos_token_id"), eosID: try id("eos_token_id"),
            unknownID: try id("unknown_token_id"), paddingID: try id("padding_token_id"),
            addBOS: try flag("add_bos_token", default: true), addEOS: try flag("add_eos_token", default: false),
            addSpacePrefix: try flag("add_space_prefix", default: true))
    }
}

extension Tokenizer {
    /// Builds the tokenizer of a GGUF model file.
    ///
    /// - Parameter modelPath: Path to a GGUF file whose vocabulary is SentencePiece ("llama").
    /// - Throws: `TokenizerError.format` if the file cannot be read, or any vocabulary error.
    public init(modelPath: String) throws(TokenizerError) {
        let file: GGUFFile
        do { file = try GGUFFile(path: modelPath) } catch { throw .format(error) }
        try self.init(vocabulary: Vocabulary(gguf: file.metadata))
    }
}
