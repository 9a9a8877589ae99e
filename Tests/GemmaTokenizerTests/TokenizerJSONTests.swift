// tokenizer.json against Hugging Face tokenizers itself: the tiny Gemma-structured BPE of the shared fixtures (merges
// trained by tokenizers) and the 270M vocabulary converted by transformers (merges generated from SentencePiece), on
// the strings of scripts/reference/tokenizer_strings.py (Tests/Fixtures/tokenizer-hf-*.json, made by
// scripts/reference/make_hf_tokenizer_refs.py); then the loader's rules and errors on hand-written files.
import Foundation
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// One string with tokenizers' ids (and, for the tiny file, its ids with special tokens and its decoding).
struct HFCase: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let text: String
    let ids: [TokenID]
    let ids_with_special: [TokenID]?
    /// The tiny file's decoding, where it is not `text`.
    let decoded: String?
    /// The tiny file's ids with the merged pieces' ids reversed (hf-tiny-tokenizer-permuted).
    let ids_permuted: [TokenID]?
    var testDescription: String { name }
}

/// Tests/Fixtures/tokenizer-hf-{tiny,270m}.json.
struct HFFixture: Decodable, Sendable {
    struct File: Decodable, Sendable {
        let bytes: Int
        let fnv1a64: String
    }
    let cases: [HFCase]
    let chat_ids_with_special: [TokenID]?
    let tokenizer_json: File?

    static func load(_ name: String) -> HFFixture? {
        guard let data = FileManager.default.contents(atPath: TestPaths.fixtures + "/" + name) else { return nil }
        return try? JSONDecoder().decode(HFFixture.self, from: data)
    }
    static let tiny = load("tokenizer-hf-tiny.json")
    static let real = load("tokenizer-hf-270m.json")
}

/// The tokenizer of a folder's tokenizer.json and tokenizer_config.json (if any).
func tokenizerJSONFolder(_ directory: String) throws -> Tokenizer {
    let json = try Data(contentsOf: URL(fileURLWithPath: directory + "/tokenizer.json"))
    let config = FileManager.default.contents(atPath: directory + "/tokenizer_config.json")
    return try Tokenizer(vocabulary: Vocabulary(tokenizerJSON: Array(json), config: config.map { Array($0) }))
}

/// The tiny folder's tokenizer (tokenizer.json + tokenizer_config.json).
enum TinyHF {
    static let directory = TestPaths.fixtures + "/hf-tiny-tokenizer"
    static let loaded = Result { try tokenizerJSONFolder(directory) }
    /// The same file with the merged pieces' ids reversed, so that only merge ranks give the merge order.
    static let permuted = Result { try tokenizerJSONFolder(directory + "-permuted") }
}

/// The 270M vocabulary as transformers converts it (made by make_hf_tokenizer_refs.py gguf; 33 MB, not committed).
enum ConvertedHF {
    static let directory = TestPaths.generated + "/gemma-3-270m-hf"
    private static let loaded: Result<Tokenizer, any Error>? = {
        guard FileManager.default.fileExists(atPath: directory + "/tokenizer.json") else { return nil }
        return Result { try tokenizerJSONFolder(directory) }
    }()

    static func tokenizer() -> Tokenizer? {
        switch loaded {
        case nil:
            Issue.record("missing \(directory): run scripts/reference/make_hf_tokenizer_refs.py gguf MODEL.gguf first")
            return nil
        case let .failure(error)?:
            Issue.record("could not load \(directory): \(error)")
            return nil
        case let .success(t)?:
            return t
        }
    }
}

@Suite("tokenizer.json against Hugging Face tokenizers")
struct TokenizerJSONTests {
    @Test("the tiny folder loads with the shape its README gives")
    func tinyShape() throws {
        let t = try TinyHF.loaded.get()
        let v = t.vocabulary
        #expect(v.count == 591)
        #expect((v.paddingID, v.eosID, v.bosID, v.unknownID) == (0, 1, 2, 3))
        #expect(v.addBOS && !v.addEOS && !v.addSpacePrefix)  // the post-processor prepends <bos>
        #expect(t.id(forPiece: "<0x00>") == 263 && v.types[263] == .byte && v.types[518] == .byte)
        #expect(v.types[105] == .control && v.types[262] == .control && v.types[3] == .control)
        #expect(t.id(forPiece: "<image_soft_token>") == 262)
        #expect(HFFixture.tiny?.cases.count == 376, "Tests/Fixtures/tokenizer-hf-tiny.json is missing or unreadable")
    }

    @Test("the chat prompt gives the shared fixtures' ids (fixtures.safetensors chat.input_ids)")
    func tinyChat() throws {
        let t = try TinyHF.loaded.get()
        let prompt = "<start_of_turn>user\nWhat is in the picture?<end_of_turn>\n<start_of_turn>model\n"
        let expected: [TokenID] = [2, 105, 242, 107, 575, 229, 137, 134, 121, 111, 106, 107, 105, 129, 226, 128, 107]
        #expect(t.encode(prompt, addSpecial: true, parseSpecial: true) == expected)
        #expect(HFFixture.tiny?.chat_ids_with_special == expected)
    }

    @Test("tiny BPE: tokenizers' ids, with and without BOS, and its decoding", arguments: HFFixture.tiny?.cases ?? [])
    func tiny(_ c: HFCase) throws {
        let t = try TinyHF.loaded.get()
        #expect(t.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids)
        #expect(t.encode(c.text, addSpecial: true, parseSpecial: true) == c.ids_with_special)
        #expect(try t.decode(c.ids, renderSpecial: true) == c.decoded ?? c.text)
    }

    @Test("tiny BPE with ids out of merge order: tokenizers' ids", arguments: HFFixture.tiny?.cases ?? [])
    func tinyPermuted(_ c: HFCase) throws {
        let t = try TinyHF.permuted.get()
        #expect(t.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids_permuted)
    }

    @Test("the converted 270M file is the one the ids were made from")
    func convertedFile() throws {
        let fixture = try #require(HFFixture.real, "Tests/Fixtures/tokenizer-hf-270m.json is missing or unreadable")
        #expect(fixture.cases.count == 375)
        guard ConvertedHF.tokenizer() != nil,
              let data = FileManager.default.contents(atPath: ConvertedHF.directory + "/tokenizer.json") else { return }
        #expect(data.count == fixture.tokenizer_json?.bytes)
        #expect(fnv1a64(Array(data)) == fixture.tokenizer_json?.fnv1a64)
    }

    @Test("converted 270M: tokenizers' ids and decoding", arguments: HFFixture.real?.cases ?? [])
    func converted(_ c: HFCase) throws {
        guard let t = ConvertedHF.tokenizer() else { return }
        #expect(t.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids)
        #expect(try t.decode(c.ids, renderSpecial: true) == c.decoded ?? c.text)
    }

    @Test("converted 270M: the GGUF tokenizer's ids on the llama.cpp goldens", arguments: GoldenCase.all)
    func convertedGoldens(_ c: GoldenCase) {
        guard let t = ConvertedHF.tokenizer() else { return }
        #expect(t.encode(c.text, addSpecial: false, parseSpecial: true) == c.ids_no_bos)
    }

    @Test("converted 270M: the GGUF's pieces and types (user-defined spaces spelled ▁ by SentencePiece)")
    func convertedVocabulary() {
        guard let json = ConvertedHF.tokenizer()?.vocabulary, let gguf = RealModel.tokenizer()?.vocabulary else { return }
        #expect(json.count == gguf.count)
        let ids = 0..<min(json.count, gguf.count)
        let pieces = ids.filter { id in
            let piece = json.types[id] == .userDefined ? json.pieces[id].replacing("▁", with: " ") : json.pieces[id]
            return !piece.utf8.elementsEqual(gguf.pieces[id].utf8)
        }
        #expect(pieces.isEmpty, "pieces differ at \(pieces.count) ids, first \(pieces.prefix(5).map { $0 })")
        let types = ids.filter { json.types[$0] != gguf.types[$0] }
        #expect(types.isEmpty, "types differ at \(types.count) ids, first \(types.prefix(5).map { $0 })")
        #expect((json.paddingID, json.eosID, json.bosID, json.unknownID) == (gguf.paddingID, gguf.eosID, gguf.bosID, gguf.unknownID))
    }
}
