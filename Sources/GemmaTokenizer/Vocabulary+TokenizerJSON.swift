// Reading a Hugging Face tokenizer.json (the tokenizers library's serialization) of the shape Gemma's have: model BPE
// with byte fallback, normalizer Replace(" ", "▁") (after Prepend("▁") for a space prefix), a pre-tokenizer that
// cannot split (Split on " ", which the normalizer has already replaced), added tokens matched whole in the raw text.
// Anything else would tokenize differently, so it is refused rather than approximated.
//
// Merge ranks become scores, so that our SentencePiece encoder gives tokenizers' BPE ids. tokenizers
// (models/bpe/word.rs, merge_all) repeatedly merges the adjacent pair with the lowest rank, leftmost on ties;
// SentencePiece merges the adjacent pair whose concatenation scores highest, leftmost on ties. With
// score(p) = -(rank of p's first merge) both take the same pair at every step, provided that
//   1. every adjacent pair whose concatenation is a piece is a listed merge (SentencePiece merges by concatenation,
//      tokenizers only listed pairs), and
//   2. the merges producing one piece have consecutive ranks, and when two overlapping pairs spell the same piece
//      (possible only for a periodic piece such as "ababa" from [ab][aba][ba]) the lower rank is the left one.
// Files converted from a SentencePiece model (every Gemma tokenizer.json) list every split of every piece, sorted by
// piece (transformers' generate_merges), which gives 1 and 2 except in that periodic corner. A BPE trained by
// tokenizers can leave out a split whose halves never meet in practice (the tiny fixture has two); the fixtures
// (Tests/Fixtures/tokenizer-hf-*.json) measure agreement with tokenizers itself on both kinds of file.
import GemmaFormats

extension Vocabulary {
    /// Reads a BPE vocabulary from the bytes of a `tokenizer.json`, and of `tokenizer_config.json` when present.
    ///
    /// Pieces are the model's vocab plus the added tokens (special ones become control tokens, others user-defined),
    /// at the ids the file gives; ids the file skips are filled with unused `[PAD<id>]` pieces. `<0xXX>` pieces are
    /// byte pieces. Scores come from merge ranks (see the top of this file); pieces no merge produces score below all
    /// merges. BOS/EOS framing comes from the TemplateProcessing post-processor, overridden by the config's
    /// `add_bos_token`/`add_eos_token`; special ids from the config's `bos_token`, `eos_token`, `unk_token` and
    /// `pad_token`, else the model's `unk_token` and the names `<bos>`, `<eos>`, `<pad>`.
    ///
    /// - Parameters:
    ///   - tokenizerJSON: The bytes of `tokenizer.json`.
    ///   - config: The bytes of `tokenizer_config.json`, if the folder has one.
    /// - Throws: `TokenizerError.malformed` for invalid JSON or an inconsistent file, `.unsupported` for a pipeline
    ///   this encoder would not reproduce, or a vocabulary error.
    public init(tokenizerJSON: [UInt8], config: [UInt8]? = nil) throws(TokenizerError) {
        let file = "tokenizer.json"
        let root = try HFJSON.parse(tokenizerJSON, file: file)
        let settings = try config.map { bytes throws(TokenizerError) in
            try HFTokenizerConfig(HFJSON.parse(bytes, file: HFTokenizerConfig.file))
        }
        guard case let .object(model)? = root["model"] else { throw .malformed(file: file, reason: "no \"model\" object") }
        let bpe = JSONValue.object(model)
        try HFJSON.checkModel(bpe, file: file)
        let addSpacePrefix = try HFJSON.spacePrefix(normalizer: root["normalizer"] ?? .null, file: file)
        try HFJSON.checkPreTokenizer(root["pre_tokenizer"] ?? .null, file: file)

        // Pieces at their ids: the model's vocab, then the added tokens.
        var table = PieceTable(file: file)
        guard case let .object(vocab)? = bpe["vocab"] else { throw .malformed(file: file, reason: "model.vocab is not an object") }
        for (piece, value) in vocab { try table.place(piece, id: value, what: "model.vocab[\(HFJSON.quoted(piece))]") }
        var added: [(id: Int, special: Bool)] = []
        switch root["added_tokens"] {
        case nil, .null?: break
        case let .array(tokens)?:
            for (i, token) in tokens.enumerated() {
                added.append(try table.placeAddedToken(token, index: i))
            }
        case let other?: throw .malformed(file: file, reason: "added_tokens is a \(other.typeName), not an array")
        }
        let (pieces, gaps) = try table.finish()

        // Types: byte pieces by spelling, the unknown token, then the added tokens' kinds.
        var types = [TokenType](repeating: .normal, count: pieces.count)
        for id in gaps { types[id] = .unused }
        for id in pieces.indices where HFJSON.isBytePiece(pieces[id]) { types[id] = .byte }
        let index = PieceIndex(pieces: pieces)
        func id(of piece: String) -> Int? {
            var piece = piece
            return piece.withUTF8 { index.id(of: $0) }.map(Int.init)
        }
        if case let .string(unk)? = bpe["unk_token"], let unkID = id(of: unk) { types[unkID] = .unknown }
        for (tokenID, special) in added { types[tokenID] = special ? .control : .userDefined }
        // The index keeps the last id of a repeated piece (and never matches the empty piece).
        for tokenID in pieces.indices where !pieces[tokenID].isEmpty && !gaps.contains(tokenID) {
            if let other = id(of: pieces[tokenID]), other != tokenID {
                throw .malformed(file: file, reason: "piece \(HFJSON.quoted(pieces[tokenID])) has two ids, \(tokenID) and \(other)")
            }
        }

        // Scores from merge ranks.
        let merges: [JSONValue]
        switch bpe["merges"] {
        case nil, .null?: merges = []
        case let .array(list)?: merges = list
        case let other?: throw .malformed(file: file, reason: "model.merges is a \(other.typeName), not an array")
        }
        guard merges.count < 1 << 24 else {
            throw .unsupported(file: file, reason: "\(merges.count) merges; ranks past 2^24 are not exact as float scores")
        }
        var scores = [Float](repeating: -Float(merges.count), count: pieces.count)
        var merged = [Bool](repeating: false, count: pieces.count)
        for (rank, merge) in merges.enumerated() {
            let (left, right) = try HFJSON.mergePair(merge, rank: rank, file: file)
            guard id(of: left) != nil, id(of: right) != nil, let target = id(of: left + right) else {
                let missing = [left, right, left + right].first { id(of: $0) == nil } ?? ""
                throw .malformed(file: file, reason: "merge \(rank) (\(HFJSON.quoted(left)) \(HFJSON.quoted(right))): \(HFJSON.quoted(missing)) is not in the vocabulary")
            }
            if !merged[target] {
                merged[target] = true
                scores[target] = -Float(rank)
            }
        }

        // Framing and special ids: the post-processor's tokens or Gemma's names, then the config.
        let framing = try HFJSON.framing(postProcessor: root["post_processor"] ?? .null, file: file)
        func named(_ name: String, _ key: String) throws(TokenizerError) -> TokenID {
            guard let found = id(of: name) else {
                throw .malformed(file: HFTokenizerConfig.file, reason: "\(key) \(HFJSON.quoted(name)) is not in the vocabulary")
            }
            return TokenID(found)
        }
        var unknownID: TokenID? = nil
        if case let .string(unk)? = bpe["unk_token"] { unknownID = id(of: unk).map(TokenID.init) }
        var bosID = framing.before.count == 1 ? TokenID(framing.before[0]) : id(of: "<bos>").map(TokenID.init)
        var eosID = framing.after.count == 1 ? TokenID(framing.after[0]) : id(of: "<eos>").map(TokenID.init)
        var paddingID = id(of: "<pad>").map(TokenID.init)
        if let settings {
            if let name = settings.bosToken { bosID = try named(name, "bos_token") }
            if let name = settings.eosToken { eosID = try named(name, "eos_token") }
            if let name = settings.unknownToken { unknownID = try named(name, "unk_token") }
            if let name = settings.paddingToken { paddingID = try named(name, "pad_token") }
        }
        // We frame with BOS and EOS by id; a template adding anything else cannot be reproduced.
        if framing.before.count > 1 || framing.after.count > 1
            || framing.before.first.map({ TokenID($0) != bosID }) == true
            || framing.after.first.map({ TokenID($0) != eosID }) == true {
            throw .unsupported(file: file, reason: "the post-processor adds \(framing.before) before and \(framing.after) after the text; only BOS before and EOS after are")
        }
        try self.init(
            pieces: pieces, scores: scores, types: types,
            bosID: bosID, eosID: eosID, unknownID: unknownID, paddingID: paddingID,
            addBOS: settings?.addBOS ?? !framing.before.isEmpty, addEOS: settings?.addEOS ?? !framing.after.isEmpty,
            addSpacePrefix: addSpacePrefix)
    }
}

/// Pieces placed at the ids a file gives, with the ids it skips filled at the end.
struct PieceTable {
    let file: String
    private var entries: [(piece: String, id: Int, what: String)] = []
    /// Ids may skip at most this many slots in all (a hostile id of two billion must not allocate two billion).
    static let maxGaps = 1 << 16

    init(file: String) { self.file = file }

    /// Puts `piece` at the id `value` holds and returns the id.
    @discardableResult
    mutating func place(_ piece: String, id value: JSONValue, what: String) throws(TokenizerError) -> Int {
        guard case let .number(x) = value, x >= 0, x < Double(Int32.max), x == x.rounded() else {
            throw .malformed(file: file, reason: "\(what) has id \(value.serialized), not a token id")
        }
        entries.append((piece, Int(x), what))
        return Int(x)
    }

    /// Places one entry of `added_tokens` and returns its id and whether it is special.
    mutating func placeAddedToken(_ token: JSONValue, index: Int) throws(TokenizerError) -> (id: Int, special: Bool) {
        let what = "added_tokens[\(index)]"
        guard case let .string(content)? = token["content"], let idValue = token["id"] else {
            throw .malformed(file: file, reason: "\(what) needs a string \"content\" and an \"id\"")
        }
        for flag in ["lstrip", "rstrip", "single_word"] {
            if case .bool(true)? = token[flag] {
                throw .unsupported(file: file, reason: "added token \(HFJSON.quoted(content)) sets \(flag)")
            }
        }
        var special = false
        if case let .bool(value)? = token["special"] { special = value }
        // A normalized added token is matched after spaces became "▁"; without either it matches the same text.
        if case .bool(true)? = token["normalized"], content.contains(" ") || content.contains("▁") {
            throw .unsupported(file: file, reason: "added token \(HFJSON.quoted(content)) is matched in normalized text")
        }
        return (try place(content, id: idValue, what: "\(what) \(HFJSON.quoted(content))"), special)
    }

    /// The pieces, with unused `[PAD<id>]` pieces at the skipped ids, and the skipped ids. The same piece at the
    /// same id twice is accepted (HF files list special tokens both in the vocab and as added tokens).
    func finish() throws(TokenizerError) -> (pieces: [String], gaps: Set<Int>) {
        guard let maxID = entries.lazy.map(\.id).max() else { throw .malformed(file: file, reason: "the vocabulary is empty") }
        guard maxID + 1 - entries.count <= Self.maxGaps else {
            throw .malformed(file: file, reason: "ids run to \(maxID) but the file has only \(entries.count) pieces")
        }
        var slots = [String?](repeating: nil, count: maxID + 1)
        for entry in entries {
            if let existing = slots[entry.id] {
                guard existing.utf8.elementsEqual(entry.piece.utf8) else {
                    throw .malformed(file: file, reason: "\(entry.what): id \(entry.id) already holds \(HFJSON.quoted(existing))")
                }
            } else {
                slots[entry.id] = entry.piece
            }
        }
        var gaps = Set<Int>()
        let pieces = slots.enumerated().map { id, piece in
            if let piece { return piece }
            gaps.insert(id)
            return "[PAD\(id)]"
        }
        return (pieces, gaps)
    }
}
