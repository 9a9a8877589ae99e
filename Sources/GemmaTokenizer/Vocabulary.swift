// A SentencePiece vocabulary as plain data: pieces, scores, token types and special ids. Loaders (GGUF today,
// Hugging Face tokenizer.json / tokenizer.model later) each produce one of these; the encoder only ever sees this.

/// A token id: an index into the vocabulary.
public typealias TokenID = Int32

/// A SentencePiece vocabulary: one piece, score and type per token id, plus the special ids and flags that
/// decide how text is framed.
///
/// Pieces use SentencePiece's conventions: a space is written U+2581 (`▁`) and the 256 byte-fallback pieces are
/// spelled `<0x00>` … `<0xFF>`. Scores rank merges: higher merges first.
public struct Vocabulary: Sendable, Equatable {
    /// What a token is, with SentencePiece's numbering (also used by GGUF's `tokenizer.ggml.token_type`).
    public enum TokenType: Int32, Sendable, CaseIterable {
        /// An ordinary piece, produced by merging characters.
        case normal = 1
        /// The unknown token.
        case unknown = 2
        /// A control token such as `<bos>` or `<start_of_turn>`: only recognized in text when asked to.
        case control = 3
        /// A user-defined piece (Gemma: runs of spaces, tabs and newlines, some HTML tags): always matched whole.
        case userDefined = 4
        /// A reserved piece that never appears in encodings.
        case unused = 5
        /// One of the 256 byte-fallback pieces `<0xXX>`.
        case byte = 6
    }

    /// The piece of each token id.
    public let pieces: [String]
    /// The merge score of each token id (higher merges first).
    public let scores: [Float]
    /// The type of each token id.
    public let types: [TokenType]
    /// Beginning-of-sequence token, added by id when encoding with `addSpecial`.
    public let bosID: TokenID?
    /// End-of-sequence token.
    public let eosID: TokenID?
    /// Unknown token: the fallback for bytes that have no byte piece.
    public let unknownID: TokenID?
    /// Padding token.
    public let paddingID: TokenID?
    /// Whether encoding with `addSpecial` starts with BOS.
    public let addBOS: Bool
    /// Whether encoding with `addSpecial` ends with EOS.
    public let addEOS: Bool
    /// Whether a space is prepended to text at the start and after each special token (Llama 2 style; not Gemma).
    public let addSpacePrefix: Bool

    /// The number of tokens.
    public var count: Int { pieces.count }

    /// Validates and wraps a vocabulary.
    ///
    /// - Parameters:
    ///   - pieces: The piece of each token id.
    ///   - scores: Merge scores, one per piece.
    ///   - types: Token types, one per piece.
    ///   - bosID: Beginning-of-sequence id, if any.
    ///   - eosID: End-of-sequence id, if any.
    ///   - unknownID: Unknown-token id, if any.
    ///   - paddingID: Padding id, if any.
    ///   - addBOS: Whether `encode(_:addSpecial: true)` starts with BOS.
    ///   - addEOS: Whether `encode(_:addSpecial: true)` ends with EOS.
    ///   - addSpacePrefix: Whether text fragments get a leading space (false for Gemma).
    /// - Throws: `TokenizerError` if the arrays disagree in length or an id is out of range.
    public init(
        pieces: [String], scores: [Float], types: [TokenType],
        bosID: TokenID?, eosID: TokenID?, unknownID: TokenID?, paddingID: TokenID?,
        addBOS: Bool, addEOS: Bool, addSpacePrefix: Bool
    ) throws(TokenizerError) {
        guard !pieces.isEmpty else { throw .emptyVocabulary }
        guard pieces.count <= Int(TokenID.max) else { throw .tooManyPieces(pieces.count) }
        guard scores.count == pieces.count else {
            throw .lengthMismatch(field: "scores", count: scores.count, pieces: pieces.count)
        }
        guard types.count == pieces.count else {
            throw .lengthMismatch(field: "token types", count: types.count, pieces: pieces.count)
        }
        for (name, id) in [("BOS", bosID), ("EOS", eosID), ("UNK", unknownID), ("PAD", paddingID)] {
            if let id, id < 0 || Int(id) >= pieces.count {
                throw .specialIDOutOfRange(name: name, id: Int(id), vocabularySize: pieces.count)
            }
        }
        self.pieces = pieces
        self.scores = scores
        self.types = types
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.paddingID = paddingID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
    }
}

extension Vocabulary {
    /// This vocabulary with unused pieces `[PAD1]`, `[PAD2]`, ... (score -1000) appended up to `count` ids, as
    /// llama.cpp's converter pads a tokenizer that is smaller than the model's embedding (Gemma 3 4B and larger: 262,144 pieces,
    /// 262,208 rows). The model can score those ids; an unused piece decodes to nothing. Unchanged when it already
    /// has `count` pieces or more. Throws when `count` exceeds what a vocabulary can hold (the embedding's row
    /// count comes from a file).
    public func padded(to count: Int) throws(TokenizerError) -> Vocabulary {
        guard count > self.count else { return self }
        let extra = 1...(count - self.count)
        guard count <= Int(TokenID.max) else { throw .tooManyPieces(count) }
        return try Vocabulary(pieces: pieces + extra.map { "[PAD\($0)]" }, scores: scores + extra.map { _ in -1000 },
                               types: types + extra.map { _ in .unused }, bosID: bosID, eosID: eosID, unknownID: unknownID,
                               paddingID: paddingID, addBOS: addBOS, addEOS: addEOS, addSpacePrefix: addSpacePrefix)
    }
}
