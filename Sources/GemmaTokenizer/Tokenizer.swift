// The tokenizer: a vocabulary plus the tables built from it once, and the encode pipeline (special-token split,
// space escaping, SentencePiece BPE). Matches llama.cpp's llama_tokenize for SPM vocabularies (llama-vocab.cpp,
// LLAMA_VOCAB_TYPE_SPM), which is how Gemma 3 GGUF files are tokenized.

/// A SentencePiece tokenizer with byte fallback. Build it once per model; it is immutable and safe to share.
///
/// ```swift
/// let tokenizer = try Tokenizer(modelPath: path)
/// let ids = tokenizer.encode("Hello world")            // [2, 9259, 1902]: BOS, "Hello", "▁world"
/// let text = try tokenizer.decode(ids)                   // "Hello world"
/// ```
public struct Tokenizer: Sendable {
    /// The vocabulary this tokenizer was built from.
    public let vocabulary: Vocabulary
    let encoder: SentencePieceEncoder
    let specials: SpecialTokenMatcher
    /// For each byte-fallback token id, its byte value; -1 for every other token.
    let byteValues: [Int16]

    /// Builds the lookup tables for `vocabulary`.
    ///
    /// - Parameter vocabulary: Pieces, scores, types and special ids.
    /// - Throws: `TokenizerError.noByteFallback` if some `<0xXX>` pieces are missing and there is no unknown
    ///   token, since some text could then not be encoded.
    public init(vocabulary: Vocabulary) throws(TokenizerError) {
        let index = PieceIndex(pieces: vocabulary.pieces)
        var byteValues = [Int16](repeating: -1, count: vocabulary.count)
        var byteTokens = [TokenID](repeating: -1, count: 256)
        var missing = 0
        index.withView { view in
            for value in 0..<256 {
                // Byte pieces are found by their spelling, as llama.cpp's byte_to_token does.
                var spelling = Array("<0x00>".utf8)
                spelling[3] = Self.hexDigits[value >> 4]
                spelling[4] = Self.hexDigits[value & 15]
                let id = spelling.withUnsafeBufferPointer { view.lookup($0) }
                if id >= 0 {
                    byteTokens[value] = id
                    byteValues[Int(id)] = Int16(value)
                } else {
                    missing += 1
                }
            }
        }
        if missing > 0 {
            guard let unknown = vocabulary.unknownID else { throw .noByteFallback(missing: missing) }
            for value in 0..<256 where byteTokens[value] < 0 { byteTokens[value] = unknown }
        }
        self.vocabulary = vocabulary
        self.encoder = SentencePieceEncoder(
            index: index, scores: vocabulary.scores,
            mergeable: vocabulary.types.map { $0 == .normal || $0 == .userDefined },
            byteTokens: byteTokens)
        self.specials = SpecialTokenMatcher(vocabulary: vocabulary)
        self.byteValues = byteValues
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Encodes text to token ids.
    ///
    /// - Parameters:
    ///   - text: The text to encode.
    ///   - addSpecial: Frame the ids as a whole sequence: BOS first if `vocabulary.addBOS` (by id, never by
    ///     tokenizing "<bos>"), EOS last if `vocabulary.addEOS`.
    ///   - parseSpecial: Recognize control-token spellings such as `<start_of_turn>` in `text` as their ids.
    ///     Leave it false for user text, so that it cannot inject control tokens; set it for chat templates.
    ///     User-defined pieces (Gemma: whitespace runs, some HTML tags) are matched whole either way.
    /// - Returns: The token ids.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = false) -> [TokenID] {
        var text = text
        return text.withUTF8 { encode(utf8: $0, addSpecial: addSpecial, parseSpecial: parseSpecial) }
    }

    /// Encodes UTF-8 bytes to token ids, as `encode(_:addSpecial:parseSpecial:)` does for a String. Invalid UTF-8
    /// is accepted: bytes that form no piece are spelled as byte tokens.
    public func encode(utf8 text: UnsafeBufferPointer<UInt8>, addSpecial: Bool = true, parseSpecial: Bool = false) -> [TokenID] {
        var output: [TokenID] = []
        output.reserveCapacity(text.count / 3 + 2)
        if addSpecial && vocabulary.addBOS, let bos = vocabulary.bosID { output.append(bos) }

        var scratch = SentencePieceEncoder.Scratch()
        var escaped: [UInt8] = []
        var previousWasSpecial = true
        for fragment in specials.split(text, parseSpecial: parseSpecial) {
            switch fragment {
            case let .token(id):
                output.append(id)
                previousWasSpecial = true
            case let .text(range):
                // SentencePiece writes spaces as U+2581 ("▁", E2 96 81).
                escaped.removeAll(keepingCapacity: true)
                if vocabulary.addSpacePrefix && previousWasSpecial { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) }
                for byte in text[range] {
                    if byte == 0x20 {
                        escaped.append(0xE2)
                        escaped.append(0x96)
                        escaped.append(0x81)
                    } else {
                        escaped.append(byte)
                    }
                }
                escaped.withUnsafeBufferPointer { encoder.encode($0, into: &output, scratch: &scratch) }
                previousWasSpecial = false
            }
        }

        if addSpecial && vocabulary.addEOS, let eos = vocabulary.eosID { output.append(eos) }
        return output
    }

    /// The id whose piece is exactly `piece` (compared byte for byte), or nil. Use it to find tokens such as
    /// `<end_of_turn>` by name.
    public func id(forPiece piece: String) -> TokenID? {
        var piece = piece
        return piece.withUTF8 { encoder.index.id(of: $0) }
    }
}
