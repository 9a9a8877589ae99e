// Turning tokens into text as they arrive. SentencePiece output is a byte concatenation, but not a String
// concatenation: a character can be split across byte tokens (an emoji arrives as four <0xXX> tokens), so text is
// released only up to the last complete UTF-8 sequence and the tail waits for the next token. The chunks joined
// equal `decode` of all the ids, byte for byte.

/// Emits text as token ids arrive, never splitting a UTF-8 sequence and never dropping a byte.
///
/// ```swift
/// var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
/// for id in generated { print(try detokenizer.append(id), terminator: "") }
/// print(detokenizer.finish())
/// ```
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let renderSpecial: Bool
    /// Bytes decoded but not yet emitted: at most the start of one UTF-8 sequence (three bytes) after each call.
    private var pending: [UInt8] = []
    private var atStart: Bool

    /// Starts a stream.
    ///
    /// - Parameters:
    ///   - tokenizer: The tokenizer whose ids will arrive.
    ///   - renderSpecial: Write control tokens as their spelling, as `Tokenizer.decode(_:renderSpecial:)` does.
    public init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
        self.atStart = tokenizer.vocabulary.addSpacePrefix
    }

    /// Adds one token and returns the text that is now complete (possibly empty).
    ///
    /// - Parameter id: The next token id.
    /// - Returns: Text that ends on a UTF-8 sequence boundary. Bytes that can never become valid UTF-8 are
    ///   released as U+FFFD exactly where `decode` would put them.
    /// - Throws: `TokenizerError.invalidTokenID` for an id outside the vocabulary; the stream is unchanged.
    public mutating func append(_ id: TokenID) throws(TokenizerError) -> String {
        let isBOS = id == tokenizer.vocabulary.bosID
        try tokenizer.appendBytes(of: id, renderSpecial: renderSpecial, stripLeadingSpace: atStart && !isBOS, to: &pending)
        if !isBOS { atStart = false }
        let ready = Self.completePrefixLength(pending)
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Ends the stream and returns whatever is held back: an incomplete UTF-8 sequence, as U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence that could still be
    /// completed: everything except a trailing lead byte plus the valid continuation bytes that follow it.
    /// Splitting there leaves decoding unchanged, since the decoder is between sequences at that point.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // A sequence is at most four bytes, so a completable tail starts at one of the last three bytes.
        var lead = n - 1
        while lead >= 0 && lead >= n - 3 {
            let byte = bytes[lead]
            if byte & 0xC0 != 0x80 { break }   // not a continuation byte
            lead -= 1
        }
        guard lead >= 0 && lead >= n - 3 else { return n }
        let first = bytes[lead]
        let needed: Int
        // The second-byte ranges exclude overlong forms, surrogates and code points past U+10FFFF (Unicode
        // Table 3-7), so a tail like E0 80 is already invalid and is released, as the decoder would reject it.
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch first {
        case 0xC2...0xDF: needed = 2
        case 0xE0: needed = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: needed = 3
        case 0xED: needed = 3; secondRange = 0x80...0x9F
        case 0xF0: needed = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: needed = 4
        case 0xF4: needed = 4; secondRange = 0x80...0x8F
        default: return n   // ASCII or a byte that never starts a sequence
        }
        let have = n - lead
        if have >= needed { return n }   // complete (or overlong, already invalid)
        if have >= 2 && !secondRange.contains(bytes[lead + 1]) { return n }
        return lead
    }
}
