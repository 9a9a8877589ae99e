// The encoder's rules on a tiny vocabulary, without the model: merge order, byte fallback, special-token
// splitting, BOS by id, space prefix; and the errors a bad vocabulary or id raises.
import GemmaFormats
import GemmaTokenizer
import Testing

@Suite("encoder rules on a tiny vocabulary")
struct EncoderTests {
    @Test("the best-scoring pair merges first; equal scores merge leftmost")
    func mergeOrder() throws {
        let t = try TinyVocabulary.make()
        // bc (-4) beats ab (-5), then abc (-3) is formed from a + bc.
        #expect(t.pieces(t.encode("abc", addSpecial: false)) == ["abc"])
        // "abcab": bc first, then abc; the trailing ab merges on its own.
        #expect(t.pieces(t.encode("abcab", addSpecial: false)) == ["abc", "ab"])
        // "aaa": both pairs are aa with equal scores, so the left one merges.
        #expect(t.pieces(t.encode("aaa", addSpecial: false)) == ["aa", "a"])
        // Spaces become U+2581 and merge like any character; no prefix space for this vocabulary.
        #expect(t.pieces(t.encode("a a", addSpecial: false)) == ["a", "▁a"])
    }

    @Test("characters with no piece fall back to their UTF-8 bytes")
    func byteFallback() throws {
        let t = try TinyVocabulary.make()
        #expect(t.pieces(t.encode("é", addSpecial: false)) == ["<0xC3>", "<0xA9>"])
        #expect(t.pieces(t.encode("aé", addSpecial: false)) == ["a", "<0xC3>", "<0xA9>"])
        #expect(try t.decode(t.encode("aé🦙", addSpecial: false)) == "aé🦙")
    }

    @Test("invalid UTF-8 bytes are encoded as byte tokens and decode back exactly")
    func invalidUTF8() throws {
        let t = try TinyVocabulary.make()
        let bytes: [UInt8] = [0x61, 0xFF, 0xE2, 0x82, 0x62, 0x80]
        let ids = bytes.withUnsafeBufferPointer { t.encode(utf8: $0, addSpecial: false) }
        #expect(try t.decodeBytes(ids) == bytes)
    }

    @Test("BOS is added by id, EOS when the vocabulary asks, and nothing without addSpecial")
    func framing() throws {
        let t = try TinyVocabulary.make(addBOS: true, addEOS: true)
        #expect(t.encode("", addSpecial: true) == [1, 2])
        #expect(t.encode("", addSpecial: false) == [])
        #expect(t.encode("a", addSpecial: true).first == 1)
        // The spelling "<bos>" in user text is plain text, never BOS; a chat template may ask for it to be parsed.
        #expect(!t.encode("<bos>", addSpecial: false, parseSpecial: false).contains(1))
        #expect(t.encode("<bos>", addSpecial: false, parseSpecial: true) == [1])
    }

    @Test("control tokens are parsed only when asked; user-defined pieces always")
    func specialTokens() throws {
        let t = try TinyVocabulary.make()
        let ctl = try #require(t.id(forPiece: "<ctl>"))
        #expect(t.encode("a<ctl>b", addSpecial: false, parseSpecial: true) == [t.id(forPiece: "a")!, ctl, t.id(forPiece: "b")!])
        #expect(!t.encode("a<ctl>b", addSpecial: false, parseSpecial: false).contains(ctl))
        #expect(t.pieces(t.encode("a\n\n\nb", addSpecial: false)) == ["a", "\n\n", "\n", "b"])
        // Unused pieces are never produced from text.
        #expect(!t.pieces(t.encode("<unused>", addSpecial: false, parseSpecial: true)).contains("<unused>"))
    }

    @Test("longer special pieces are taken first, wherever they are, as llama.cpp does")
    func longestFirst() throws {
        let t = try TinyVocabulary.make()
        // "xy" starts earlier, but "yzw" is longer and claims the y first.
        #expect(t.pieces(t.encode("xyzw", addSpecial: false)) == ["x", "yzw"])
        #expect(t.pieces(t.encode("xyxyzw", addSpecial: false)) == ["xy", "x", "yzw"])
    }

    @Test("a space-prefix vocabulary prefixes text and strips the space when decoding")
    func spacePrefix() throws {
        let t = try TinyVocabulary.make(addSpacePrefix: true)
        let ids = t.encode("a<ctl>a", addSpecial: true, parseSpecial: true)
        #expect(t.pieces(ids) == ["<bos>", "▁a", "<ctl>", "▁a"])
        #expect(try t.decode(ids) == "a a")
        #expect(try t.decode(ids, renderSpecial: true) == "<bos>a<ctl> a")
        for renderSpecial in [false, true] {
            var stream = StreamingDetokenizer(tokenizer: t, renderSpecial: renderSpecial)
            var text = ""
            for id in ids { text += try stream.append(id) }
            #expect(text + stream.finish() == (try t.decode(ids, renderSpecial: renderSpecial)))
        }
    }

    @Test("decoding renders control tokens only when asked")
    func renderSpecial() throws {
        let t = try TinyVocabulary.make()
        let ids = t.encode("a<ctl>\n", addSpecial: true, parseSpecial: true)
        #expect(try t.decode(ids) == "a\n")
        #expect(try t.decode(ids, renderSpecial: true) == "<bos>a<ctl>\n")
    }
}

@Suite("errors")
struct ErrorTests {
    @Test("an id outside the vocabulary throws when decoding and streaming")
    func invalidID() throws {
        let t = try TinyVocabulary.make()
        let size = t.vocabulary.count
        #expect(throws: TokenizerError.invalidTokenID(size, vocabularySize: size)) { try t.decode([TokenID(size)]) }
        #expect(throws: TokenizerError.invalidTokenID(-1, vocabularySize: size)) { try t.decodeBytes([-1]) }
        var stream = StreamingDetokenizer(tokenizer: t)
        #expect(throws: TokenizerError.self) { try stream.append(-5) }
        #expect(t.piece(for: -1) == nil)
    }

    @Test("inconsistent vocabularies are rejected")
    func badVocabulary() {
        #expect(throws: TokenizerError.emptyVocabulary) {
            try Vocabulary(pieces: [], scores: [], types: [], bosID: nil, eosID: nil, unknownID: nil, paddingID: nil,
                           addBOS: false, addEOS: false, addSpacePrefix: false)
        }
        #expect(throws: TokenizerError.lengthMismatch(field: "scores", count: 1, pieces: 2)) {
            try Vocabulary(pieces: ["a", "b"], scores: [0], types: [.normal, .normal], bosID: nil, eosID: nil,
                           unknownID: nil, paddingID: nil, addBOS: false, addEOS: false, addSpacePrefix: false)
        }
        #expect(throws: TokenizerError.specialIDOutOfRange(name: "BOS", id: 5, vocabularySize: 1)) {
            try Vocabulary(pieces: ["a"], scores: [0], types: [.normal], bosID: 5, eosID: nil, unknownID: nil,
                           paddingID: nil, addBOS: true, addEOS: false, addSpacePrefix: false)
        }
        #expect(throws: TokenizerError.noByteFallback(missing: 256)) {
            let v = try Vocabulary(pieces: ["a"], scores: [0], types: [.normal], bosID: nil, eosID: nil, unknownID: nil,
                                   paddingID: nil, addBOS: false, addEOS: false, addSpacePrefix: false)
            _ = try Tokenizer(vocabulary: v)
        }
    }

    @Test("without byte pieces, unknown characters become the unknown token")
    func unknownFallback() throws {
        let v = try Vocabulary(pieces: ["<unk>", "a"], scores: [0, 0], types: [.unknown, .normal], bosID: nil,
                               eosID: nil, unknownID: 0, paddingID: nil, addBOS: false, addEOS: false, addSpacePrefix: false)
        let t = try Tokenizer(vocabulary: v)
        #expect(t.encode("aé", addSpecial: false) == [1, 0, 0])
    }

    static func metadata(_ entries: [(String, GGUFValue)]) -> GGUFMetadata {
        var m = GGUFMetadata()
        for (key, value) in entries { m[key] = value }
        return m
    }

    @Test("GGUF metadata: missing, mis-typed and unsupported keys throw")
    func badMetadata() throws {
        let model: (String, GGUFValue) = ("tokenizer.ggml.model", .string("llama"))
        let tokens: (String, GGUFValue) = ("tokenizer.ggml.tokens", .array(.string(["<unk>", "a"])))
        #expect(throws: TokenizerError.metadata(key: "tokenizer.ggml.model", reason: "missing")) {
            try Vocabulary(gguf: Self.metadata([tokens]))
        }
        #expect(throws: TokenizerError.unsupportedModel("gpt2")) {
            try Vocabulary(gguf: Self.metadata([("tokenizer.ggml.model", .string("gpt2")), tokens]))
        }
        #expect(throws: TokenizerError.metadata(key: "tokenizer.ggml.tokens", reason: "missing")) {
            try Vocabulary(gguf: Self.metadata([model]))
        }
        #expect(throws: TokenizerError.metadata(key: "tokenizer.ggml.tokens", reason: "not an array of strings")) {
            try Vocabulary(gguf: Self.metadata([model, ("tokenizer.ggml.tokens", .array(.int32([1])))]))
        }
        #expect(throws: TokenizerError.lengthMismatch(field: "scores", count: 1, pieces: 2)) {
            try Vocabulary(gguf: Self.metadata([model, tokens, ("tokenizer.ggml.scores", .array(.float32([0])))]))
        }
        #expect(throws: TokenizerError.invalidTokenType(id: 1, value: 9)) {
            try Vocabulary(gguf: Self.metadata([model, tokens, ("tokenizer.ggml.token_type", .array(.int32([2, 9])))]))
        }
        #expect(throws: TokenizerError.specialIDOutOfRange(name: "bos_token_id", id: 7, vocabularySize: 2)) {
            try Vocabulary(gguf: Self.metadata([model, tokens, ("tokenizer.ggml.bos_token_id", .uint32(7))]))
        }
        #expect(throws: TokenizerError.metadata(key: "tokenizer.ggml.add_bos_token", reason: "not a bool")) {
            try Vocabulary(gguf: Self.metadata([model, tokens, ("tokenizer.ggml.add_bos_token", .uint8(1))]))
        }
        let v = try Vocabulary(gguf: Self.metadata([model, tokens, ("tokenizer.ggml.unknown_token_id", .uint32(0))]))
        #expect(v.scores == [0, 0] && v.types == [.normal, .normal] && v.addBOS && !v.addEOS && v.addSpacePrefix)
        #expect(throws: TokenizerError.self) { try Tokenizer(modelPath: "/nonexistent/model.gguf") }
    }
}
