// Property tests over seeded random Unicode text with the real vocabulary: decode(encode(s)) == s byte for byte,
// plain text never yields control tokens, and streaming decode equals whole decode byte for byte.
import Foundation
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// Random strings mixing the scripts and shapes that break tokenizers.
enum RandomText {
    static let specialSpellings = [
        "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<unused0>",
        "<unused6241>", "<0x41>", "<0xFF>", "<b>", "</table>", "[multimodal]", "<start_of_image>", "▁", "▁▁ ▁",
        "<start_of_turn>user\n", "<<bos>>", "<end_of_turn",
    ]

    static func scalar(_ value: UInt32) -> Unicode.Scalar { Unicode.Scalar(value) ?? "?" }

    static func string(_ rng: inout SplitMix64, maxItems: Int = 24) -> String {
        var s = ""
        for _ in 0..<Int.random(in: 0...maxItems, using: &rng) {
            switch Int.random(in: 0..<13, using: &rng) {
            case 0: s.unicodeScalars.append(scalar(UInt32.random(in: 0x20...0x7E, using: &rng)))
            case 1: s += String(repeating: " ", count: Int.random(in: 1...40, using: &rng))
            case 2:
                for _ in 0..<Int.random(in: 1...40, using: &rng) {
                    s += ["\n", "\t", "\r", "\n", " "].randomElement(using: &rng)!
                }
            case 3: s.unicodeScalars.append(scalar([UInt32.random(in: 0...0x1F, using: &rng), 0x7F,
                                                     UInt32.random(in: 0x80...0x9F, using: &rng)].randomElement(using: &rng)!))
            case 4:   // a base letter with stacked combining marks
                s += "e"
                for _ in 0..<Int.random(in: 1...4, using: &rng) { s.unicodeScalars.append(scalar(UInt32.random(in: 0x300...0x36F, using: &rng))) }
            case 5: s.unicodeScalars.append(scalar([UInt32.random(in: 0x4E00...0x9FFF, using: &rng),
                                                     UInt32.random(in: 0x3040...0x30FF, using: &rng),
                                                     UInt32.random(in: 0xAC00...0xD7A3, using: &rng)].randomElement(using: &rng)!))
            case 6: s.unicodeScalars.append(scalar([UInt32.random(in: 0x600...0x6FF, using: &rng),
                                                     UInt32.random(in: 0x5D0...0x5EA, using: &rng),
                                                     0x200E, 0x200F, 0x202E, 0x2067].randomElement(using: &rng)!))
            case 7:   // emoji, with skin tones, variation selectors and ZWJ sequences
                s.unicodeScalars.append(scalar(UInt32.random(in: 0x1F300...0x1FAFF, using: &rng)))
                if Bool.random(using: &rng) { s.unicodeScalars.append(scalar(UInt32.random(in: 0x1F3FB...0x1F3FF, using: &rng))) }
                if Bool.random(using: &rng) { s.unicodeScalars.append("\u{FE0F}") }
                if Bool.random(using: &rng) { s.unicodeScalars.append("\u{200D}") }
            case 8: s += specialSpellings.randomElement(using: &rng)!
            case 9:   // private use, rare planes, noncharacters
                s.unicodeScalars.append(scalar([UInt32.random(in: 0xE000...0xF8FF, using: &rng),
                                                 UInt32.random(in: 0x10000...0x10FFFF, using: &rng),
                                                 0xFFFE, 0xFFFF, 0xFFFD, 0xFEFF].randomElement(using: &rng)!))
            case 10: for _ in 0..<Int.random(in: 1...12, using: &rng) { s += String(Int.random(in: 0...9, using: &rng)) }
            case 11: s.unicodeScalars.append(scalar(UInt32.random(in: 0xC0...0x24F, using: &rng)))
            default: s += ["the", " and", "Hello", " world", "ing", "tion", ".", ",", " ", "é", "ß"].randomElement(using: &rng)!
            }
        }
        return s
    }
}

@Suite("property tests")
struct PropertyTests {
    static let stringCount = 1_500

    /// Every chunk a stream emits for `ids`, and its finish.
    static func stream(_ tokenizer: Tokenizer, _ ids: [TokenID], renderSpecial: Bool = false) throws -> [String] {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, renderSpecial: renderSpecial)
        var chunks: [String] = []
        for id in ids { chunks.append(try detokenizer.append(id)) }
        chunks.append(detokenizer.finish())
        return chunks
    }

    @Test("decode(encode(s)) == s for random Unicode strings (U+2581 reads back as a space)")
    func roundTrip() throws {
        guard let tokenizer = RealModel.tokenizer() else { return }
        let controlIDs = Set(tokenizer.vocabulary.types.indices.filter { tokenizer.vocabulary.types[$0] == .control }.map(TokenID.init))
        var rng = SplitMix64(seed: 0x6765_6D6D_6133)
        var checked = 0
        for _ in 0..<Self.stringCount {
            let s = RandomText.string(&rng)
            // SentencePiece writes a space as U+2581, so a literal U+2581 in the text comes back as a space
            // (llama.cpp and sentencepiece do the same); every other byte comes back unchanged.
            let bytes = Array(String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })).utf8)

            let plain = tokenizer.encode(s, addSpecial: false, parseSpecial: false)
            #expect(try tokenizer.decodeBytes(plain) == bytes, "round trip of \(s.debugDescription)")
            #expect(!plain.contains(where: controlIDs.contains), "control token injected by \(s.debugDescription)")

            let framed = tokenizer.encode(s, addSpecial: true, parseSpecial: true)
            #expect(framed.first == 2 && !framed.dropFirst().contains(2) || s.contains("<bos>"))
            #expect(try tokenizer.decodeBytes(framed, renderSpecial: true) == Array("<bos>".utf8) + bytes)
            #expect(try tokenizer.decodeBytes(framed.dropFirst(), renderSpecial: true) == bytes)
            checked += 1
        }
        #expect(checked == Self.stringCount)
    }

    @Test("streaming decode == whole decode byte for byte, and never emits a broken sequence")
    func streaming() throws {
        guard let tokenizer = RealModel.tokenizer() else { return }
        var rng = SplitMix64(seed: 42)
        for _ in 0..<Self.stringCount {
            let s = RandomText.string(&rng)
            for renderSpecial in [false, true] {
                let ids = tokenizer.encode(s, addSpecial: true, parseSpecial: renderSpecial)
                let chunks = try Self.stream(tokenizer, ids, renderSpecial: renderSpecial)
                let whole = try tokenizer.decodeBytes(ids, renderSpecial: renderSpecial)
                #expect(Array(chunks.joined().utf8) == whole)
                // The text is valid UTF-8, so no chunk may contain a replacement character it did not have.
                if !s.unicodeScalars.contains("\u{FFFD}") {
                    #expect(!chunks.contains { $0.unicodeScalars.contains("\u{FFFD}") }, "split sequence in \(s.debugDescription)")
                }
            }
        }
    }

    @Test("streaming text spelled entirely in byte tokens releases each character when complete")
    func streamingBytes() throws {
        guard let tokenizer = RealModel.tokenizer() else { return }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let s = RandomText.string(&rng)
            let ids = s.utf8.map { tokenizer.id(forPiece: String(format: "<0x%02X>", $0))! }
            let chunks = try Self.stream(tokenizer, ids)
            #expect(Array(chunks.joined().utf8) == Array(s.utf8))
            #expect(!chunks.contains { $0.unicodeScalars.contains("\u{FFFD}") } || s.unicodeScalars.contains("\u{FFFD}"))
            #expect(chunks.last == "", "nothing may be held back at the end of valid text")
        }
    }

    @Test("streaming random ids, including invalid byte sequences, equals whole decode")
    func streamingRandomIDs() throws {
        guard let tokenizer = RealModel.tokenizer() else { return }
        var rng = SplitMix64(seed: 99)
        let byteTokens = (0..<256).map { tokenizer.id(forPiece: String(format: "<0x%02X>", $0))! }
        for _ in 0..<2_000 {
            var ids: [TokenID] = []
            for _ in 0..<Int.random(in: 0...30, using: &rng) {
                ids.append(Bool.random(using: &rng)
                    ? byteTokens.randomElement(using: &rng)!
                    : TokenID.random(in: 0..<TokenID(tokenizer.vocabulary.count), using: &rng))
            }
            for renderSpecial in [false, true] {
                let chunks = try Self.stream(tokenizer, ids, renderSpecial: renderSpecial)
                #expect(chunks.joined() == (try tokenizer.decode(ids, renderSpecial: renderSpecial)))
                #expect(Array(chunks.joined().utf8) == Array(try tokenizer.decode(ids, renderSpecial: renderSpecial).utf8))
            }
        }
    }
}
