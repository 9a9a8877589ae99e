// The parts of Hugging Face tokenizer files around the vocabulary: tokenizer.json's model options, normalizer,
// pre-tokenizer, post-processor and merges (tokenizers' serialization, tokenizers/src/*/mod.rs), and the keys of
// tokenizer_config.json that decide special tokens and framing (transformers' tokenization_utils_base.py). Each check
// accepts what Gemma's files contain and names anything else.
import GemmaFormats

/// Helpers for tokenizer.json; every error names the file.
enum HFJSON {
    static func parse(_ bytes: [UInt8], file: String) throws(TokenizerError) -> JSONValue {
        do throws(JSONParseError) { return try JSONValue.parse(bytes) } catch { throw .malformed(file: file, reason: error.description) }
    }

    /// A string for an error message: quoted, with control characters escaped, cut at 40 characters.
    static func quoted(_ s: String) -> String {
        let shown = JSONValue.string(String(s.prefix(40))).serialized
        return s.count > 40 ? shown + "…" : shown
    }

    /// `<0x00>` … `<0xFF>` with upper-case hex, the spelling tokenizers' byte fallback looks up.
    static func isBytePiece(_ piece: String) -> Bool {
        let u = Array(piece.utf8)
        func hex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) }
        return u.count == 6 && u[0] == 0x3C && u[1] == 0x30 && u[2] == 0x78 && hex(u[3]) && hex(u[4]) && u[5] == 0x3E
    }

    /// The BPE options that change ids must be the ones our encoder has.
    static func checkModel(_ model: JSONValue, file: String) throws(TokenizerError) {
        if let type = model["type"], type != .string("BPE") {
            throw .unsupported(file: file, reason: "model type \(type.serialized); only BPE is")
        }
        guard model["byte_fallback"] == .bool(true) else {
            throw .unsupported(file: file, reason: "model.byte_fallback is not true (unknown characters would become <unk>)")
        }
        switch model["dropout"] {
        case nil, .null?: break
        case let .number(p)? where p == 0: break
        case let other?: throw .unsupported(file: file, reason: "BPE dropout \(other.serialized) (random merges)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            switch model[key] {
            case nil, .null?, .string("")?: break
            case let other?: throw .unsupported(file: file, reason: "model.\(key) \(other.serialized)")
            }
        }
        if model["ignore_merges"] == .bool(true) {
            throw .unsupported(file: file, reason: "model.ignore_merges (whole words looked up before merging)")
        }
    }

    /// Whether the normalizer prepends "▁"; it must replace spaces with "▁" and do nothing else.
    static func spacePrefix(normalizer: JSONValue, file: String) throws(TokenizerError) -> Bool {
        var steps: [JSONValue]
        if normalizer["type"] == .string("Sequence"), case let .array(list)? = normalizer["normalizers"] {
            steps = list
        } else {
            steps = [normalizer]
        }
        var prepend = false, replace = false
        for step in steps {
            switch step["type"] {
            case .string("Prepend")? where step["prepend"] == .string("▁") && !prepend: prepend = true
            case .string("Replace")? where step["pattern"]?["String"] == .string(" ") && step["content"] == .string("▁") && !replace:
                replace = true
            default:
                throw .unsupported(file: file, reason: "normalizer step \(step["type"]?.serialized ?? step.serialized); only Replace(\" \", \"▁\") and Prepend(\"▁\") are")
            }
        }
        guard replace else { throw .unsupported(file: file, reason: "the normalizer does not replace spaces with \"▁\"") }
        return prepend
    }

    /// The pre-tokenizer must not split the normalized text: none, or Split on " " (of which none are left).
    static func checkPreTokenizer(_ pre: JSONValue, file: String) throws(TokenizerError) {
        var steps: [JSONValue] = []
        if pre == .null {
            return
        } else if pre["type"] == .string("Sequence"), case let .array(list)? = pre["pretokenizers"] {
            steps = list
        } else {
            steps = [pre]
        }
        for step in steps {
            guard step["type"] == .string("Split"), step["pattern"]?["String"] == .string(" "), step["invert"] != .bool(true) else {
                throw .unsupported(file: file, reason: "pre-tokenizer \(step["type"]?.serialized ?? step.serialized) (it would split the text before merging)")
            }
        }
    }

    /// The token ids TemplateProcessing puts before and after a single sequence (none without a post-processor).
    static func framing(postProcessor: JSONValue, file: String) throws(TokenizerError) -> (before: [Int], after: [Int]) {
        if postProcessor == .null { return ([], []) }
        guard postProcessor["type"] == .string("TemplateProcessing"), case let .array(single)? = postProcessor["single"] else {
            throw .unsupported(file: file, reason: "post-processor \(postProcessor["type"]?.serialized ?? "?"); only TemplateProcessing is")
        }
        var before: [Int] = [], after: [Int] = [], seenSequence = false
        for item in single {
            if item["Sequence"] != nil {
                guard !seenSequence else { throw .unsupported(file: file, reason: "a template repeating the sequence") }
                seenSequence = true
            } else if case let .string(name)? = item["SpecialToken"]?["id"] {
                guard case let .array(ids)? = postProcessor["special_tokens"]?[name]?["ids"] else {
                    throw .malformed(file: file, reason: "post-processor token \(quoted(name)) has no ids")
                }
                for id in ids {
                    guard case let .number(x) = id, x >= 0, x < Double(Int32.max), x == x.rounded() else {
                        throw .malformed(file: file, reason: "post-processor token \(quoted(name)) has id \(id.serialized)")
                    }
                    if seenSequence { after.append(Int(x)) } else { before.append(Int(x)) }
                }
            } else {
                throw .malformed(file: file, reason: "template item \(item.serialized)")
            }
        }
        return (before, after)
    }

    /// One merge: ["a", "b"] (tokenizers 0.20+) or "a b" (older files; pieces cannot contain the space).
    static func mergePair(_ merge: JSONValue, rank: Int, file: String) throws(TokenizerError) -> (String, String) {
        switch merge {
        case let .array(parts) where parts.count == 2:
            if case let .string(a) = parts[0], case let .string(b) = parts[1] { return (a, b) }
        case let .string(line):
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            if parts.count == 2 { return (String(parts[0]), String(parts[1])) }
        default: break
        }
        throw .malformed(file: file, reason: "merge \(rank) is \(merge.serialized), not two pieces")
    }
}

/// What tokenizer_config.json says about special tokens and framing (each key optional).
struct HFTokenizerConfig {
    static let file = "tokenizer_config.json"
    var addBOS: Bool?
    var addEOS: Bool?
    var bosToken: String?
    var eosToken: String?
    var unknownToken: String?
    var paddingToken: String?
    /// `added_tokens_decoder`: id → (content, special), as transformers 4 writes it.
    var addedTokens: [(id: Int, content: String, special: Bool)] = []

    init(_ json: JSONValue) throws(TokenizerError) {
        guard case .object = json else { throw .malformed(file: Self.file, reason: "not a JSON object") }
        func flag(_ key: String) throws(TokenizerError) -> Bool? {
            switch json[key] {
            case nil, .null?: return nil
            case let .bool(value)?: return value
            case let other?: throw .malformed(file: Self.file, reason: "\(key) is a \(other.typeName), not a boolean")
            }
        }
        // A token is a string, or an AddedToken object with "content" (transformers 4's {"__type": "AddedToken", ...}).
        func token(_ key: String) throws(TokenizerError) -> String? {
            switch json[key] {
            case nil, .null?: return nil
            case let .string(s)?: return s
            case let value? where value["content"] != nil:
                guard case let .string(s)? = value["content"] else { break }
                return s
            default: break
            }
            throw .malformed(file: Self.file, reason: "\(key) is neither a string nor an object with a string \"content\"")
        }
        addBOS = try flag("add_bos_token")
        addEOS = try flag("add_eos_token")
        bosToken = try token("bos_token")
        eosToken = try token("eos_token")
        unknownToken = try token("unk_token")
        paddingToken = try token("pad_token")
        switch json["added_tokens_decoder"] {
        case nil, .null?: break
        case let .object(entries)?:
            for (key, entry) in entries {
                guard let id = Int(key), id >= 0, id < Int(Int32.max), case let .string(content)? = entry["content"] else {
                    throw .malformed(file: Self.file, reason: "added_tokens_decoder[\(HFJSON.quoted(key))] needs an id key and a string \"content\"")
                }
                var special = false
                if case let .bool(value)? = entry["special"] { special = value }
                addedTokens.append((id, content, special))
            }
        case let other?: throw .malformed(file: Self.file, reason: "added_tokens_decoder is a \(other.typeName), not an object")
        }
    }
}
