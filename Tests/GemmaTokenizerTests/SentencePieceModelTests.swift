// tokenizer.model written from a vocabulary and read back: the tiny vocabulary and the real model's GGUF vocabulary
// round trip, the writer's bytes equal protobuf's own serializer's, and SentencePiece itself, loading the written
// file, gives our ids (Tests/Fixtures/tokenizer-sentencepiece.json, made by
// scripts/reference/make_sentencepiece_refs.py; see Fixtures/MANIFEST.md).
import Foundation
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// One string with SentencePiece's ids for it.
struct ReferenceCase: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let text: String
    let ids: [TokenID]
    var testDescription: String { name }
}

/// Tests/Fixtures/tokenizer-sentencepiece.json.
struct SentencePieceFixture: Decodable, Sendable {
    struct WrittenModel: Decodable, Sendable {
        let bytes: Int
        let fnv1a64: String
    }
    let tokenizer_model: WrittenModel
    let cases: [ReferenceCase]

    static let loaded: SentencePieceFixture? = {
        guard let data = FileManager.default.contents(atPath: TestPaths.fixtures + "/tokenizer-sentencepiece.json") else {
            return nil
        }
        return try? JSONDecoder().decode(SentencePieceFixture.self, from: data)
    }()
    static var cases: [ReferenceCase] { loaded?.cases ?? [] }
}

/// The real model's GGUF vocabulary written as a tokenizer.model, and the tokenizer read back from those bytes.
enum WrittenRealModel {
    private static let loaded: Result<(bytes: [UInt8], tokenizer: Tokenizer), TokenizerError>? = {
        guard FileManager.default.fileExists(atPath: TestPaths.model) else { return nil }
        return Result { () throws(TokenizerError) in
            let bytes = try Tokenizer(modelPath: TestPaths.model).vocabulary.sentencePieceModel()
            return (bytes, try Tokenizer(vocabulary: Vocabulary(sentencePieceModel: bytes)))
        }
    }()

    /// The bytes and tokenizer, or nil after recording a failure that says how to get the model.
    static func get() -> (bytes: [UInt8], tokenizer: Tokenizer)? {
        switch loaded {
        case nil:
            Issue.record("missing model \(TestPaths.model): run scripts/fetch-model.sh (or make model) first")
            return nil
        case let .failure(error)?:
            Issue.record("could not write and read back the model's tokenizer.model: \(error)")
            return nil
        case let .success(value)?:
            return value
        }
    }
}

/// FNV-1a 64 of the bytes, as 16 hex digits (the fixture's checksum of the expected file).
func fnv1a64(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// How two vocabularies differ, field by field, with the first few differing ids (empty when equal; scores compared
/// bit for bit), so that a failure prints a line rather than 262,144 pieces.
func differences(_ a: Vocabulary, _ b: Vocabulary) -> [String] {
    var out: [String] = []
    if a.count != b.count { out.append("count \(a.count) vs \(b.count)") }
    let n = min(a.count, b.count)
    func compare(_ name: String, _ same: (Int) -> Bool) {
        let ids = (0..<n).filter { !same($0) }
        if !ids.isEmpty { out.append("\(name) differ at \(ids.count) ids, first \(ids.prefix(5).map { $0 })") }
    }
    compare("pieces") { a.pieces[$0].utf8.elementsEqual(b.pieces[$0].utf8) }
    compare("scores") { a.scores[$0].bitPattern == b.scores[$0].bitPattern }
    compare("types") { a.types[$0] == b.types[$0] }
    if (a.bosID, a.eosID, a.unknownID, a.paddingID) != (b.bosID, b.eosID, b.unknownID, b.paddingID) { out.append("special ids") }
    if (a.addBOS, a.addEOS, a.addSpacePrefix) != (b.addBOS, b.addEOS, b.addSpacePrefix) { out.append("flags") }
    return out
}

@Suite("tokenizer.model")
struct SentencePieceModelTests {
    @Test("a vocabulary with every token type survives write and read")
    func tinyRoundTrip() throws {
        var pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "  ", "\n\n", "<unused0>"]
        var types: [Vocabulary.TokenType] = [.control, .control, .control, .control, .control, .userDefined,
                                             .userDefined, .unused]
        pieces += (0..<256).map { "<0x" + String($0, radix: 16, uppercase: true).leftPadded(2) + ">" }
        types += [Vocabulary.TokenType](repeating: .byte, count: 256)
        pieces += ["▁", "a", "b", "ab", "▁ab", "é"]
        types += [Vocabulary.TokenType](repeating: .normal, count: 6)
        let scores = pieces.indices.map { -Float($0) / 4 }
        for addSpacePrefix in [false, true] {
            let v = try Vocabulary(
                pieces: pieces, scores: scores, types: types, bosID: 2, eosID: 1, unknownID: 3, paddingID: 0,
                addBOS: true, addEOS: false, addSpacePrefix: addSpacePrefix)
            let back = try Vocabulary(sentencePieceModel: v.sentencePieceModel())
            #expect(back.pieces == v.pieces)  // "  " written as "▁▁" and read back as spaces
            #expect(back.scores.map(\.bitPattern) == v.scores.map(\.bitPattern))
            #expect(back.types[3] == .unknown)  // SentencePiece needs one UNKNOWN piece
            #expect(Array(back.types[4...]) == Array(v.types[4...]) && back.types[0..<3] == v.types[0..<3])
            #expect((back.bosID, back.eosID, back.unknownID, back.paddingID) == (2, 1, 3, 0))
            #expect(back.addSpacePrefix == addSpacePrefix)
        }
        // No padding token: written as pad_id -1, read back as none.
        let noPad = try Vocabulary(
            pieces: pieces, scores: scores, types: types, bosID: 2, eosID: 1, unknownID: 3, paddingID: nil,
            addBOS: true, addEOS: false, addSpacePrefix: false)
        #expect(try Vocabulary(sentencePieceModel: noPad.sentencePieceModel()).paddingID == nil)
    }

    @Test("the real model: GGUF vocabulary, written and read back, is the GGUF's")
    func realRoundTrip() throws {
        guard let gguf = RealModel.tokenizer()?.vocabulary, let back = WrittenRealModel.get()?.tokenizer.vocabulary else {
            return
        }
        #expect(back.count == 262_144)
        // Equal except <unk>'s type: the GGUF marks it CONTROL and SentencePiece needs UNKNOWN.
        #expect(differences(back, gguf) == ["types differ at 1 ids, first [3]"])
        #expect(gguf.types[3] == .control && back.types[3] == .unknown)
    }

    @Test("the written file is byte for byte what protobuf's serializer makes of the same model")
    func writerMatchesProtobuf() throws {
        let fixture = try #require(SentencePieceFixture.loaded, "Tests/Fixtures/tokenizer-sentencepiece.json is missing or unreadable")
        guard let bytes = WrittenRealModel.get()?.bytes else { return }
        #expect(bytes.count == fixture.tokenizer_model.bytes)
        #expect(fnv1a64(bytes) == fixture.tokenizer_model.fnv1a64)
    }

    @Test("read back, it encodes the llama.cpp goldens as the GGUF tokenizer does", arguments: GoldenCase.all)
    func goldens(_ c: GoldenCase) {
        guard let t = WrittenRealModel.get()?.tokenizer else { return }
        #expect(t.encode(c.text, addSpecial: true, parseSpecial: true) == c.ids_with_bos)
        #expect(t.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids_no_bos)
        #expect(t.encode(c.text, addSpecial: false, parseSpecial: false) == c.idsNoParseSpecial)
    }

    @Test("the fixture has all its strings, the llama.cpp goldens among them")
    func fixtureIsComplete() {
        #expect(SentencePieceFixture.cases.count == 375, "Tests/Fixtures/tokenizer-sentencepiece.json is missing or unreadable")
        #expect(Set(SentencePieceFixture.cases.map(\.name)).isSuperset(of: GoldenCase.all.map(\.name)))
    }

    @Test("SentencePiece, loading the written file, gives our ids", arguments: SentencePieceFixture.cases)
    func sentencePieceIDs(_ c: ReferenceCase) {
        guard let written = WrittenRealModel.get()?.tokenizer, let gguf = RealModel.tokenizer() else { return }
        // SentencePiece turns spaces into ▁ before anything else, so a literal ▁ in its input is a space to it; llama.cpp
        // and we keep them apart (a literal ▁ does not match the user-defined runs of spaces). So we compare on the
        // text SentencePiece sees (the same text for the strings without ▁).
        let seen = c.text.replacing("▁", with: " ")
        #expect(written.encode(seen, addSpecial: false, parseSpecial: false) == c.ids)
        #expect(gguf.encode(seen, addSpecial: false, parseSpecial: false) == c.ids)
    }
}
