// The tokenizer.json loader's rules on hand-written files: merge ranks become scores (the expected ids worked out by
// hand with tokenizers' rule: lowest rank first, leftmost on ties), added tokens, skipped ids, framing from the
// post-processor and the config, and every pipeline or inconsistency it refuses, by name. Corrupted files throw.
import Foundation
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// A small Gemma-shaped tokenizer.json: specials 0-3, bytes 4-259, then characters and merged pieces.
func handJSON(
    merges: String = #"[["b","c"],["a","b"],["a","bc"],["ab","c"],["▁","a"]]"#,
    extraVocab: String = "", addedTokens: String? = nil, normalizer: String? = nil, preTokenizer: String? = nil,
    postProcessor: String? = nil, modelOptions: String = #""byte_fallback": true"#
) -> [UInt8] {
    var vocab = [#""<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3"#]
    for b in 0..<256 { vocab.append("\"<0x\(String(b, radix: 16, uppercase: true).leftPadded(2))>\": \(4 + b)") }
    for (i, p) in ["▁", "a", "b", "c", "bc", "ab", "abc", "▁a"].enumerated() { vocab.append("\"\(p)\": \(260 + i)") }
    let added = addedTokens ?? """
        [{"id": 0, "content": "<pad>", "special": true}, {"id": 1, "content": "<eos>", "special": true},
         {"id": 2, "content": "<bos>", "special": true}, {"id": 3, "content": "<unk>", "special": true}]
        """
    let text = """
        {"version": "1.0", "added_tokens": \(added),
         "normalizer": \(normalizer ?? #"{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}"#),
         "pre_tokenizer": \(preTokenizer ?? #"{"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}"#),
         "post_processor": \(postProcessor ?? "null"), "decoder": null,
         "model": {"type": "BPE", \(modelOptions), "unk_token": "<unk>",
                   "vocab": {\(vocab.joined(separator: ", "))\(extraVocab)}, "merges": \(merges)}}
        """
    return Array(text.utf8)
}

/// The error thrown for `json` (and `config`), as text, or "accepted".
func jsonError(_ json: [UInt8], config: String? = nil) -> String {
    do {
        _ = try Vocabulary(tokenizerJSON: json, config: config.map { Array($0.utf8) })
        return "accepted"
    } catch { return error.description }
}

@Suite("tokenizer.json rules")
struct TokenizerJSONRuleTests {
    @Test("merge ranks decide the merges as tokenizers' BPE does")
    func mergeOrder() throws {
        let t = try Tokenizer(vocabulary: Vocabulary(tokenizerJSON: handJSON()))
        // "abc": (b,c) has rank 0, so [a][bc], then (a,bc) rank 2 gives [abc].
        #expect(t.pieces(t.encode("abc", addSpecial: false)) == ["abc"])
        // "abab": (a,b) at both places, leftmost first; nothing merges two ab.
        #expect(t.pieces(t.encode("abab", addSpecial: false)) == ["ab", "ab"])
        // " a": the normalizer spells the space ▁ and (▁,a) merges; "d" has no piece and falls back to its byte.
        #expect(t.pieces(t.encode(" ad", addSpecial: false)) == ["▁a", "<0x64>"])
        let v = t.vocabulary
        #expect(v.scores[264] == 0 && v.scores[265] == -1 && v.scores[266] == -2 && v.scores[267] == -4)  // first rank
        #expect(v.scores[261] == -5)  // a base character scores below every merge
        #expect(!v.addBOS && !v.addEOS && !v.addSpacePrefix)
    }

    @Test("merges in the older \"a b\" form read the same")
    func stringMerges() throws {
        let pairs = try Vocabulary(tokenizerJSON: handJSON())
        let strings = try Vocabulary(tokenizerJSON: handJSON(merges: #"["b c", "a b", "a bc", "ab c", "▁ a"]"#))
        #expect(strings == pairs)
    }

    @Test("added tokens: special ones are control tokens, others user-defined, beyond the vocab the ids are padded")
    func addedTokens() throws {
        let added = """
            [{"id": 0, "content": "<pad>", "special": true}, {"id": 1, "content": "<eos>", "special": true},
             {"id": 2, "content": "<bos>", "special": true}, {"id": 3, "content": "<unk>", "special": true},
             {"id": 270, "content": "<start_of_turn>", "special": true}, {"id": 273, "content": "\\n\\n", "special": false}]
            """
        let v = try Vocabulary(tokenizerJSON: handJSON(addedTokens: added))
        #expect(v.count == 274)
        #expect(v.pieces[270...] == ["<start_of_turn>", "[PAD271]", "[PAD272]", "\n\n"])
        #expect(v.types[270...] == [.control, .unused, .unused, .userDefined])
        let t = try Tokenizer(vocabulary: v)
        #expect(t.encode("a<start_of_turn>\n\nb", addSpecial: false, parseSpecial: true) == [261, 270, 273, 262])
    }

    @Test("BOS and EOS come from the post-processor, and the config overrides them")
    func framing() throws {
        let template = """
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
             {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<eos>", "type_id": 0}}],
             "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]},
                                "<eos>": {"id": "<eos>", "ids": [1], "tokens": ["<eos>"]}}}
            """
        let json = handJSON(postProcessor: template)
        let v = try Vocabulary(tokenizerJSON: json)
        #expect(v.addBOS && v.addEOS && v.bosID == 2 && v.eosID == 1)
        let config = #"{"add_eos_token": false, "eos_token": {"content": "<pad>"}, "pad_token": "<unk>"}"#
        let c = try Vocabulary(tokenizerJSON: handJSON(), config: Array(config.utf8))
        #expect(!c.addEOS && c.eosID == 0 && c.paddingID == 3)
        // A template adding a token that is not the (configured) BOS or EOS cannot be reproduced by id.
        #expect(jsonError(json, config: config).contains("adds [2] before and [1] after the text"))
        #expect(jsonError(json, config: #"{"bos_token": "<unk>"}"#).contains("only BOS before and EOS after"))
    }

    @Test("pipelines that would give other ids are refused, naming the part")
    func unsupported() {
        #expect(jsonError(handJSON(normalizer: #"{"type": "NFKC"}"#)).contains("NFKC"))
        #expect(jsonError(handJSON(normalizer: "null")).contains("normalizer"))
        #expect(jsonError(handJSON(preTokenizer: #"{"type": "Metaspace", "replacement": "▁"}"#)).contains("Metaspace"))
        #expect(jsonError(handJSON(postProcessor: #"{"type": "ByteLevel"}"#)).contains("ByteLevel"))
        #expect(jsonError(handJSON(modelOptions: #""byte_fallback": false"#)).contains("byte_fallback"))
        #expect(jsonError(handJSON(modelOptions: #""byte_fallback": true, "dropout": 0.1"#)).contains("dropout"))
        #expect(jsonError(handJSON(modelOptions: #""byte_fallback": true, "ignore_merges": true"#)).contains("ignore_merges"))
        #expect(jsonError(handJSON(modelOptions: #""byte_fallback": true, "type": "Unigram""#)).contains("Unigram"))
        let stripped = #"[{"id": 2, "content": "<bos>", "special": true, "lstrip": true}]"#
        #expect(jsonError(handJSON(addedTokens: stripped)).contains("lstrip"))
        let normalized = #"[{"id": 2, "content": "▁▁", "special": false, "normalized": true}]"#
        #expect(jsonError(handJSON(addedTokens: normalized)).contains("normalized"))
        // A Prepend("▁") step is a space prefix, which we do.
        let prefix = #"{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}"#
        #expect((try? Vocabulary(tokenizerJSON: handJSON(normalizer: prefix)))?.addSpacePrefix == true)
    }

    @Test("inconsistent files throw .malformed naming the problem")
    func malformed() {
        #expect(jsonError(Array("{".utf8)).contains("tokenizer.json"))
        #expect(jsonError(Array(#"{"model": 3}"#.utf8)).contains("no \"model\" object"))
        #expect(jsonError(handJSON(merges: #"[["a","z"]]"#)).contains("\"z\" is not in the vocabulary"))
        #expect(jsonError(handJSON(merges: #"[["a"]]"#)).contains("not two pieces"))
        #expect(jsonError(handJSON(extraVocab: #", "zz": 260"#)).contains("already holds"))
        #expect(jsonError(handJSON(extraVocab: #", "zz": -1"#)).contains("not a token id"))
        #expect(jsonError(handJSON(extraVocab: #", "zz": 1.5"#)).contains("not a token id"))
        #expect(jsonError(handJSON(extraVocab: #", "zz": 2000000000"#)).contains("ids run to 2000000000"))
        #expect(jsonError(handJSON(addedTokens: #"[{"id": 300, "content": "<bos>", "special": true}]"#)).contains("two ids"))
        #expect(jsonError(handJSON(), config: #"{"eos_token": "<nope>"}"#).contains("<nope>"))
        #expect(jsonError(handJSON(), config: #"{"add_bos_token": "yes"}"#).contains("add_bos_token"))
    }

    @Test("corrupted files throw or load; none crashes")
    func corruption() {
        var rng = SplitMix64(seed: 0x15_0A)
        let json = handJSON()
        var outcomes = (accepted: 0, rejected: 0)
        for trial in 0..<400 {
            var bytes = json
            if trial % 2 == 0 {
                bytes = Array(bytes[0..<Int.random(in: 0..<bytes.count, using: &rng)])
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            if (try? Vocabulary(tokenizerJSON: bytes)) != nil { outcomes.accepted += 1 } else { outcomes.rejected += 1 }
        }
        #expect(outcomes.rejected >= 200)  // every truncation
        #expect(outcomes.accepted > 0)  // some flips land in piece text or whitespace
    }
}
