// Decoding token ids back to UTF-8: each token renders to bytes on its own (SentencePiece output is a plain
// concatenation), following llama.cpp's token_to_piece for SPM vocabularies: normal pieces with U+2581 turned back
// into spaces, byte pieces as their byte, user-defined pieces verbatim, control pieces only when asked. User-defined
// pieces also turn U+2581 into spaces, as SentencePiece and tokenizers' decoder do: llama.cpp's GGUF files never have
// one (their converter writes those spaces as spaces), but tokenizer.json's added tokens may ("▁▁").

extension Tokenizer {
    /// The vocabulary spelling of a token (U+2581 for spaces, `<0x0A>` for a byte piece), or nil if out of range.
    public func piece(for id: TokenID) -> String? {
        id >= 0 && Int(id) < vocabulary.count ? vocabulary.pieces[Int(id)] : nil
    }

    /// Decodes token ids to the exact bytes they stand for.
    ///
    /// - Parameters:
    ///   - ids: Token ids, in order.
    ///   - renderSpecial: Write control and unknown tokens (`<bos>`, `<end_of_turn>`) as their spelling; by default
    ///     they render as nothing.
    /// - Returns: The bytes, which are valid UTF-8 unless the ids spell invalid sequences with byte tokens.
    /// - Throws: `TokenizerError.invalidTokenID` for an id outside the vocabulary.
    public func decodeBytes(_ ids: some Sequence<TokenID>, renderSpecial: Bool = false) throws(TokenizerError) -> [UInt8] {
        var bytes: [UInt8] = []
        var atStart = vocabulary.addSpacePrefix
        for id in ids {
            // The space prefix belongs to the first piece after BOS.
            let isBOS = id == vocabulary.bosID
            try appendBytes(of: id, renderSpecial: renderSpecial, stripLeadingSpace: atStart && !isBOS, to: &bytes)
            if !isBOS { atStart = false }
        }
        return bytes
    }

    /// Decodes token ids to text.
    ///
    /// - Parameters:
    ///   - ids: Token ids, in order.
    ///   - renderSpecial: Write control and unknown tokens as their spelling; by default they render as nothing.
    /// - Returns: The text; byte sequences that are not valid UTF-8 become U+FFFD.
    /// - Throws: `TokenizerError.invalidTokenID` for an id outside the vocabulary.
    public func decode(_ ids: some Sequence<TokenID>, renderSpecial: Bool = false) throws(TokenizerError) -> String {
        String(decoding: try decodeBytes(ids, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// Appends the bytes token `id` renders as.
    ///
    /// - Parameter stripLeadingSpace: Drop one leading space, for the first token of a vocabulary that adds a
    ///   space prefix when encoding (llama.cpp's `remove_space`).
    func appendBytes(
        of id: TokenID, renderSpecial: Bool, stripLeadingSpace: Bool, to bytes: inout [UInt8]
    ) throws(TokenizerError) {
        guard id >= 0 && Int(id) < vocabulary.count else {
            throw .invalidTokenID(Int(id), vocabularySize: vocabulary.count)
        }
        let start = bytes.count
        switch vocabulary.types[Int(id)] {
        case .normal, .userDefined:
            encoder.index.withView { view in
                let piece = view.piece(Int(id))
                var i = 0
                while i < piece.count {
                    if piece[i] == 0xE2 && i + 2 < piece.count && piece[i + 1] == 0x96 && piece[i + 2] == 0x81 {
                        bytes.append(0x20)
                        i += 3
                    } else {
                        bytes.append(piece[i])
                        i += 1
                    }
                }
            }
        case .byte:
            let value = byteValues[Int(id)]
            // A type-6 piece that is not spelled <0xXX> has no byte; render its spelling like a user-defined piece.
            if value >= 0 {
                bytes.append(UInt8(value))
            } else {
                bytes.append(contentsOf: vocabulary.pieces[Int(id)].utf8)
            }
        case .control, .unknown:
            if renderSpecial { bytes.append(contentsOf: vocabulary.pieces[Int(id)].utf8) }
        case .unused:
            break
        }
        if stripLeadingSpace && bytes.count > start && bytes[start] == 0x20 { bytes.remove(at: start) }
    }
}
