// Exact agreement with llama.cpp on Tests/Fixtures/tokenizer-llamacpp.json (30 inputs, see Fixtures/MANIFEST.md):
// with BOS and special parsing, without BOS, and without special parsing. Needs the real model.
import Foundation
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// One input of the golden file, with llama.cpp's ids.
struct GoldenCase: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let text: String
    let utf8_hex: String
    let ids_with_bos: [TokenID]
    let ids_no_bos: [TokenID]
    let pieces_no_bos: [String]
    /// Present only where parse_special=false gives different ids from `ids_no_bos`.
    let ids_no_bos_no_parse_special: [TokenID]?
    let detokenized_no_bos: String

    var testDescription: String { name }

    /// The ids without BOS and without special parsing.
    var idsNoParseSpecial: [TokenID] { ids_no_bos_no_parse_special ?? ids_no_bos }

    static let all: [GoldenCase] = {
        struct File: Decodable { let cases: [GoldenCase] }
        let path = TestPaths.fixtures + "/tokenizer-llamacpp.json"
        guard let data = FileManager.default.contents(atPath: path),
              let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.cases
    }()
}

@Suite("llama.cpp goldens")
struct GoldenTests {
    @Test("the golden file has all 30 cases and their bytes match the text")
    func fixtureIsComplete() {
        #expect(GoldenCase.all.count == 30, "Tests/Fixtures/tokenizer-llamacpp.json is missing or unreadable")
        for c in GoldenCase.all {
            let hex = c.text.utf8.map { String(format: "%02x", $0) }.joined()
            #expect(hex == c.utf8_hex, "\(c.name): JSON text does not match utf8_hex")
        }
    }

    @Test("with BOS, parsing special tokens", arguments: GoldenCase.all)
    func withBOS(_ c: GoldenCase) {
        guard let tokenizer = RealModel.tokenizer() else { return }
        #expect(tokenizer.encode(c.text, addSpecial: true, parseSpecial: true) == c.ids_with_bos)
    }

    @Test("without BOS, parsing special tokens", arguments: GoldenCase.all)
    func withoutBOS(_ c: GoldenCase) {
        guard let tokenizer = RealModel.tokenizer() else { return }
        let ids = tokenizer.encode(c.text, addSpecial: false, parseSpecial: true)
        #expect(ids == c.ids_no_bos)
        #expect(tokenizer.pieces(ids) == c.pieces_no_bos)
    }

    @Test("without BOS, special-token spellings as plain text", arguments: GoldenCase.all)
    func withoutParseSpecial(_ c: GoldenCase) {
        guard let tokenizer = RealModel.tokenizer() else { return }
        #expect(tokenizer.encode(c.text, addSpecial: false, parseSpecial: false) == c.idsNoParseSpecial)
    }

    @Test("decoding llama.cpp's ids reproduces the text byte for byte", arguments: GoldenCase.all)
    func decodes(_ c: GoldenCase) throws {
        guard let tokenizer = RealModel.tokenizer() else { return }
        let bytes = try tokenizer.decodeBytes(c.ids_no_bos, renderSpecial: true)
        #expect(bytes == Array(c.detokenized_no_bos.utf8))
        #expect(bytes == Array(c.text.utf8))
        let plain = try tokenizer.decodeBytes(c.idsNoParseSpecial)
        #expect(plain == Array(c.text.utf8))
    }

    @Test("Gemma's special ids")
    func specialIDs() {
        guard let tokenizer = RealModel.tokenizer() else { return }
        let v = tokenizer.vocabulary
        #expect(v.count == 262_144)
        #expect((v.paddingID, v.eosID, v.bosID, v.unknownID) == (0, 1, 2, 3))
        #expect(v.addBOS && !v.addEOS && !v.addSpacePrefix)
        #expect(tokenizer.id(forPiece: "<start_of_turn>") == 105)
        #expect(tokenizer.id(forPiece: "<end_of_turn>") == 106)
        #expect(tokenizer.id(forPiece: "<start_of_image>") == 255_999)
        #expect(tokenizer.id(forPiece: "<0x00>") == 238)
        #expect(tokenizer.id(forPiece: "no such piece") == nil)
    }
}
