// The tokenizer of a Hugging Face model folder. tokenizer.model comes first: it is the canonical file, and llama.cpp's
// converter builds GGUF vocabularies from it, applying added_tokens.json and tokenizer_config.json's
// added_tokens_decoder on top (convert_hf_to_gguf.py, _create_vocab_sentencepiece), as we do here, so that a folder
// and the GGUF made from it tokenize alike. Without it, tokenizer.json (+ tokenizer_config.json) is read, with the
// tokenizers library's semantics.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import GemmaFormats

extension Tokenizer {
    /// Builds the tokenizer of a Hugging Face model folder (see `Vocabulary(directory:)`).
    ///
    /// - Parameter directory: The folder holding `tokenizer.model` and/or `tokenizer.json`.
    /// - Throws: `TokenizerError`, naming the file and the problem.
    public init(directory: String) throws(TokenizerError) {
        try self.init(vocabulary: Vocabulary(directory: directory))
    }
}

extension Vocabulary {
    /// Reads the vocabulary of a Hugging Face model folder: `tokenizer.model` with the folder's `added_tokens.json`
    /// and `tokenizer_config.json` applied as llama.cpp's converter applies them (see
    /// `applyingHuggingFaceAdditions`), else `tokenizer.json` with `tokenizer_config.json`.
    ///
    /// - Parameter directory: The folder.
    /// - Throws: `TokenizerError.noTokenizerFile` if neither file is there, `.unreadable` for a file that cannot be
    ///   read, or the reading errors of the file used.
    public init(directory: String) throws(TokenizerError) {
        let config = try Self.file(directory, "tokenizer_config.json")
        if let model = try Self.file(directory, "tokenizer.model") {
            self = try Vocabulary(sentencePieceModel: model).applyingHuggingFaceAdditions(
                addedTokens: Self.file(directory, "added_tokens.json"), config: config)
        } else if let json = try Self.file(directory, "tokenizer.json") {
            self = try Vocabulary(tokenizerJSON: json, config: config)
        } else {
            throw .noTokenizerFile(directory: directory)
        }
    }

    /// This vocabulary (read from a tokenizer.model) with a Hugging Face folder's additions, as llama.cpp's converter
    /// makes a GGUF vocabulary: each `added_tokens.json` entry becomes a user-defined piece; each
    /// `tokenizer_config.json` `added_tokens_decoder` entry a control piece if it is special (or looks special:
    /// `<unused…>`, `<mask>`, `<|…|>`), else a user-defined piece with "▁" written as a space; all of them score
    /// -1000. Ids past the end extend the vocabulary (skipped ids become unused `[PAD<id>]` pieces). The config's
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token`, `add_bos_token` and `add_eos_token` override the rest.
    ///
    /// - Parameters:
    ///   - addedTokens: The bytes of `added_tokens.json` (an object from content to id), if any.
    ///   - config: The bytes of `tokenizer_config.json`, if any.
    /// - Throws: `TokenizerError.malformed` for a file that is not what it should be.
    public func applyingHuggingFaceAdditions(addedTokens: [UInt8]?, config: [UInt8]?) throws(TokenizerError) -> Vocabulary {
        var pieces = self.pieces, scores = self.scores, types = self.types
        func set(_ id: Int, _ piece: String, _ type: TokenType, file: String) throws(TokenizerError) {
            if id >= pieces.count {
                let gaps = id - pieces.count + types.lazy.filter { $0 == .unused }.count
                guard gaps <= PieceTable.maxGaps else {
                    throw .malformed(file: file, reason: "token id \(id) is far past the vocabulary's \(pieces.count) pieces")
                }
                for pad in pieces.count..<id {
                    pieces.append("[PAD\(pad)]")
                    scores.append(-1000)
                    types.append(.unused)
                }
                pieces.append(piece)
                scores.append(-1000)
                types.append(type)
            } else {
                pieces[id] = piece
                scores[id] = -1000
                types[id] = type
            }
        }

        if let addedTokens {
            let file = "added_tokens.json"
            guard case let .object(entries) = try HFJSON.parse(addedTokens, file: file) else {
                throw .malformed(file: file, reason: "not a JSON object")
            }
            for (content, value) in entries {
                guard case let .number(x) = value, x >= 0, x < Double(Int32.max), x == x.rounded() else {
                    throw .malformed(file: file, reason: "\(HFJSON.quoted(content)) has id \(value.serialized)")
                }
                try set(Int(x), content, .userDefined, file: file)
            }
        }
        let settings = try config.map { bytes throws(TokenizerError) in
            try HFTokenizerConfig(HFJSON.parse(bytes, file: HFTokenizerConfig.file))
        }
        for token in settings?.addedTokens ?? [] {
            if token.special || Self.looksSpecial(token.content) {
                try set(token.id, token.content, .control, file: HFTokenizerConfig.file)
            } else {
                try set(token.id, token.content.replacing("▁", with: " "), .userDefined, file: HFTokenizerConfig.file)
            }
        }

        func named(_ name: String?, _ key: String, _ current: TokenID?) throws(TokenizerError) -> TokenID? {
            guard let name else { return current }
            guard let id = pieces.firstIndex(where: { $0.utf8.elementsEqual(name.utf8) }) else {
                throw .malformed(file: HFTokenizerConfig.file, reason: "\(key) \(HFJSON.quoted(name)) is not in the vocabulary")
            }
            return TokenID(id)
        }
        return try Vocabulary(
            pieces: pieces, scores: scores, types: types,
            bosID: named(settings?.bosToken, "bos_token", bosID), eosID: named(settings?.eosToken, "eos_token", eosID),
            unknownID: named(settings?.unknownToken, "unk_token", unknownID),
            paddingID: named(settings?.paddingToken, "pad_token", paddingID),
            addBOS: settings?.addBOS ?? addBOS, addEOS: settings?.addEOS ?? addEOS, addSpacePrefix: addSpacePrefix)
    }

    /// A tokenizer_config.json to go with `sentencePieceModel()` in an exported Hugging Face folder: the special
    /// tokens, `add_bos_token`/`add_eos_token`, and an `added_tokens_decoder` entry for every control piece
    /// (special) and user-defined piece (not special, spaces written "▁" as in Google's files). A folder holding both
    /// reads back as this vocabulary exactly when its control and user-defined pieces score -1000, as every GGUF
    /// vocabulary made by llama.cpp's converter does; in particular the unknown piece is CONTROL again.
    public func huggingFaceTokenizerConfig() -> JSONValue {
        var added: [(String, JSONValue)] = []
        for id in 0..<count where types[id] == .control || types[id] == .userDefined {
            let special = types[id] == .control
            let content = special ? pieces[id] : pieces[id].replacing(" ", with: "▁")
            added.append((String(id), [
                "content": .string(content), "lstrip": false, "normalized": false, "rstrip": false,
                "single_word": false, "special": .bool(special),
            ]))
        }
        var config: [(String, JSONValue)] = [
            ("add_bos_token", .bool(addBOS)), ("add_eos_token", .bool(addEOS)), ("added_tokens_decoder", .object(added)),
        ]
        for (key, id) in [("bos_token", bosID), ("eos_token", eosID), ("unk_token", unknownID), ("pad_token", paddingID)] {
            if let id { config.append((key, .string(pieces[Int(id)]))) }
        }
        config.append(("tokenizer_class", "GemmaTokenizer"))
        return .object(config)
    }

    /// llama.cpp's does_token_look_special, for tokens some models (Gemma among them) do not mark special.
    static func looksSpecial(_ token: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token)
            || (token.hasPrefix("<|") && token.hasSuffix("|>"))
            || (token.hasPrefix("<｜") && token.hasSuffix("｜>"))
            || (token.hasPrefix("<unused") && token.hasSuffix(">"))
    }

    /// The bytes of `directory/name`, or nil if there is no such file.
    static func file(_ directory: String, _ name: String) throws(TokenizerError) -> [UInt8]? {
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        do throws(FormatError) {
            // The mapping must outlive the copy: a temporary could be released as soon as `buffer` is read.
            let storage = try ByteStorage(mapping: path)
            return withExtendedLifetime(storage) { Array(storage.buffer) }
        } catch {
            throw .unreadable(path: path, reason: error.description)
        }
    }
}
