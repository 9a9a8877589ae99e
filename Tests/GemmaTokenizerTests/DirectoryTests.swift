// Model folders: which file is read, the errors naming the folder or file, tokenizer_config.json and
// added_tokens.json applied to a tokenizer.model as llama.cpp's converter applies them, and the real model exported
// as tokenizer.model + tokenizer_config.json reading back as its GGUF vocabulary.
import Foundation
import GemmaTokenizer
import GemmaTestSupport
import Testing

@Suite("model folders")
struct DirectoryTests {
    /// A fresh folder holding `files`.
    func folder(_ files: [String: [UInt8]]) throws -> String {
        let path = NSTemporaryDirectory() + "swift-gemma-tok-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: path + "/" + name)) }
        return path
    }

    @Test("tokenizer.model is read first, tokenizer.json otherwise; neither is an error naming the folder")
    func choice() throws {
        let model = tinySentencePieceModel(), json = handJSON()
        let both = try folder(["tokenizer.model": model, "tokenizer.json": json])
        defer { try? FileManager.default.removeItem(atPath: both) }
        #expect(try Vocabulary(directory: both) == Vocabulary(sentencePieceModel: model))
        let jsonOnly = try folder(["tokenizer.json": json])
        defer { try? FileManager.default.removeItem(atPath: jsonOnly) }
        #expect(try Vocabulary(directory: jsonOnly) == Vocabulary(tokenizerJSON: json))
        let empty = try folder([:])
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(throws: TokenizerError.noTokenizerFile(directory: empty)) { try Tokenizer(directory: empty) }
        // A file that cannot be read is named.
        try FileManager.default.createDirectory(atPath: empty + "/tokenizer.model", withIntermediateDirectories: false)
        #expect(throws: TokenizerError.self) { try Tokenizer(directory: empty) }
        do { _ = try Tokenizer(directory: empty) } catch { #expect(error.description.contains("tokenizer.model")) }
    }

    @Test("a tokenizer smaller than the embedding is padded with unused [PADn] pieces that decode to nothing")
    func padding() throws {
        let v = try Vocabulary(sentencePieceModel: tinySentencePieceModel())
        let p = try v.padded(to: v.count + 64)
        #expect(p.count == v.count + 64)
        #expect(Array(p.pieces.prefix(v.count)) == v.pieces && p.pieces[v.count] == "[PAD1]" && p.pieces.last == "[PAD64]")
        #expect(p.types[v.count...].allSatisfy { $0 == .unused } && p.scores[v.count...].allSatisfy { $0 == -1000 })
        #expect(p.bosID == v.bosID && p.eosID == v.eosID)
        #expect(try v.padded(to: v.count) == v && v.padded(to: 1) == v)
        let t = try Tokenizer(vocabulary: p)
        #expect(try t.decode([TokenID(v.count), TokenID(v.count + 63)], renderSpecial: true) == "")
        // Encoding never produces a padding id.
        #expect(t.encode("hello world", addSpecial: true).allSatisfy { Int($0) < v.count })
    }

    @Test("tokenizer_config.json and added_tokens.json are applied to tokenizer.model as llama.cpp's converter does")
    func additions() throws {
        let config = """
            {"add_bos_token": false, "add_eos_token": true, "eos_token": "<start_of_turn>",
             "added_tokens_decoder": {"3": {"content": "<unk>", "special": true},
                                      "5": {"content": "▁▁", "special": false},
                                      "264": {"content": "<unused9>", "special": false}}}
            """
        let dir = try folder(["tokenizer.model": tinySentencePieceModel(), "tokenizer_config.json": Array(config.utf8),
                              "added_tokens.json": Array(#"{"<image_soft_token>": 272}"#.utf8)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v = try Vocabulary(directory: dir)
        #expect(v.types[3] == .control && v.scores[3] == -1000)  // special: control
        #expect(v.pieces[5] == "  " && v.types[5] == .userDefined && v.scores[5] == -1000)  // ▁ pre-normalized
        #expect(v.types[264] == .control)  // not marked special, but looks special
        #expect(v.count == 273 && v.pieces[270...] == ["[PAD270]", "[PAD271]", "<image_soft_token>"])
        #expect(v.types[272] == .userDefined && v.types[270] == .unused)
        #expect(!v.addBOS && v.addEOS && v.eosID == 4 && v.bosID == 2)
    }

    @Test("the real model exported as tokenizer.model + tokenizer_config.json reads back as the GGUF vocabulary, exactly")
    func export() throws {
        guard let gguf = RealModel.tokenizer()?.vocabulary else { return }
        let dir = try folder([
            "tokenizer.model": gguf.sentencePieceModel(),
            "tokenizer_config.json": Array(gguf.huggingFaceTokenizerConfig().serialized.utf8),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(differences(try Vocabulary(directory: dir), gguf) == [])
    }
}
