// tokenizer.model's protobuf layer through the public reader: hand-built messages (encoded here by a separate
// ten-line encoder, checked against the examples of the protobuf encoding guide), every wire type and default, and
// hostile bytes (truncations, overlong lengths, bad wire types, random corruption) that must throw, never crash.
import GemmaTokenizer
import GemmaTestSupport
import Testing

/// A protobuf encoder for building test messages, independent of the library's writer.
enum PB {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }
    static func int(_ field: Int, _ v: Int64) -> [UInt8] { varint(UInt64(field << 3)) + varint(UInt64(bitPattern: v)) }
    static func bytes(_ field: Int, _ payload: [UInt8]) -> [UInt8] {
        varint(UInt64(field << 3 | 2)) + varint(UInt64(payload.count)) + payload
    }
    static func string(_ field: Int, _ s: String) -> [UInt8] { bytes(field, Array(s.utf8)) }
    static func float(_ field: Int, _ x: Float) -> [UInt8] {
        let b = x.bitPattern
        return varint(UInt64(field << 3 | 5)) + (0..<4).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
    }
    static func piece(_ text: String, _ score: Float, _ type: Int64) -> [UInt8] {
        bytes(1, string(1, text) + float(2, score) + int(3, type))
    }
    /// A normalizer_spec that turns off every normalization (what Gemma's file sets).
    static let identityNormalizer = bytes(3, string(1, "identity") + int(3, 0) + int(4, 0))
    /// A BPE trainer_spec with Gemma's special ids.
    static let gemmaTrainer = bytes(2, int(3, 2) + int(35, 1) + int(40, 3) + int(41, 2) + int(42, 1) + int(43, 0))
}

/// A small Gemma-shaped model: pad, eos, bos, unk, a control and a user-defined piece, bytes, then merges.
func tinySentencePieceModel(trainer: [UInt8] = PB.gemmaTrainer, normalizer: [UInt8] = PB.identityNormalizer) -> [UInt8] {
    var model: [UInt8] = []
    for (text, type) in [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 2), ("<start_of_turn>", 3), ("▁▁", 4)] {
        model += PB.piece(text, 0, Int64(type))
    }
    for b in 0..<256 { model += PB.piece("<0x" + String(b, radix: 16, uppercase: true).leftPadded(2) + ">", 0, 6) }
    for (i, text) in ["▁", "a", "b", "c", "ab", "bc", "abc", "▁a"].enumerated() { model += PB.piece(text, -Float(i), 1) }
    return model + trainer + normalizer
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

@Suite("tokenizer.model protobuf")
struct ProtobufTests {
    @Test("the test encoder reproduces the protobuf guide's examples")
    func guideExamples() {
        // https://protobuf.dev/programming-guides/encoding/: field 1 = 150 and field 2 = "testing".
        #expect(PB.int(1, 150) == [0x08, 0x96, 0x01])
        #expect(PB.string(2, "testing") == [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67])
        #expect(PB.int(1, -1).count == 11)  // int32 -1: key + ten-byte sign-extended varint
    }

    @Test("pieces, scores, types, special ids and flags are read from a hand-built model")
    func readsHandBuiltModel() throws {
        let v = try Vocabulary(sentencePieceModel: tinySentencePieceModel())
        #expect(v.count == 6 + 256 + 8)
        #expect(v.pieces[0..<6] == ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "  "])
        #expect(v.types[0..<6] == [.control, .control, .control, .unknown, .control, .userDefined])
        #expect(v.pieces[6] == "<0x00>" && v.pieces[6 + 255] == "<0xFF>" && v.types[6 + 10] == .byte)
        #expect(v.pieces.suffix(8) == ["▁", "a", "b", "c", "ab", "bc", "abc", "▁a"])
        #expect(v.scores.suffix(8) == [0, -1, -2, -3, -4, -5, -6, -7])
        #expect((v.paddingID, v.eosID, v.bosID, v.unknownID) == (0, 1, 2, 3))
        #expect(v.addBOS && !v.addEOS && !v.addSpacePrefix)
    }

    @Test("without explicit ids, special tokens are found by the names trainer_spec gives, then by Gemma's names")
    func specialIDsByName() throws {
        let named = PB.bytes(2, PB.int(3, 2) + PB.string(46, "<start_of_turn>"))
        let v = try Vocabulary(sentencePieceModel: tinySentencePieceModel(trainer: named))
        #expect(v.bosID == 4)  // the named piece wins over "<bos>"
        #expect((v.paddingID, v.eosID, v.unknownID) == (0, 1, 3))
        let noPad = PB.bytes(2, PB.int(3, 2) + PB.int(43, -1))
        #expect(try Vocabulary(sentencePieceModel: tinySentencePieceModel(trainer: noPad)).paddingID == nil)
    }

    @Test("proto defaults apply: a missing normalizer adds a dummy prefix and collapses spaces (unsupported)")
    func defaults() throws {
        let prefix = PB.bytes(3, PB.int(4, 0))  // add_dummy_prefix left at its default, true
        #expect(try Vocabulary(sentencePieceModel: tinySentencePieceModel(normalizer: prefix)).addSpacePrefix)
        #expect(throws: TokenizerError.self) { try Vocabulary(sentencePieceModel: tinySentencePieceModel(normalizer: [])) }
    }

    @Test("models this encoder would not reproduce are refused with the reason")
    func unsupported() {
        func reason(trainer: [UInt8] = PB.gemmaTrainer, normalizer: [UInt8] = PB.identityNormalizer) -> String {
            do {
                _ = try Vocabulary(sentencePieceModel: tinySentencePieceModel(trainer: trainer, normalizer: normalizer))
                return "accepted"
            } catch { return error.description }
        }
        #expect(reason(trainer: []).contains("Unigram"))
        #expect(reason(trainer: PB.bytes(2, PB.int(3, 1))).contains("Unigram"))
        #expect(reason(trainer: PB.bytes(2, PB.int(3, 2) + PB.int(24, 1))).contains("treat_whitespace_as_suffix"))
        #expect(reason(normalizer: PB.bytes(3, PB.string(1, "nmt_nfkc") + PB.bytes(2, [1, 2, 3]) + PB.int(4, 0)))
            .contains("nmt_nfkc"))
        #expect(reason(normalizer: PB.bytes(3, PB.int(4, 0) + PB.int(5, 0))).contains("escape_whitespaces"))
        #expect(reason().hasPrefix("accepted"))
    }

    @Test("malformed bytes throw .malformed naming the problem")
    func malformed() {
        func reason(_ bytes: [UInt8]) -> String {
            do { _ = try Vocabulary(sentencePieceModel: bytes); return "accepted" } catch {
                guard case .malformed = error else { return "wrong error: \(error)" }
                return error.description
            }
        }
        #expect(reason([0x0A, 0x05, 0x0A]).contains("says 5 bytes follow"))  // length past the end
        #expect(reason([0x08, 0x80]).contains("varint runs past"))
        #expect(reason([0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]).contains("overflows"))
        #expect(reason([0x0B]).contains("wire type 3"))  // a group
        #expect(reason([0x0F]).contains("wire type 7"))
        #expect(reason([0x00, 0x00]).contains("field number 0"))
        #expect(reason([0x08, 0x01]).contains("not a message"))  // pieces as a varint
        #expect(reason(PB.bytes(1, PB.bytes(1, [0xC3, 0x28]))).contains("not valid UTF-8"))
        #expect(reason(PB.bytes(1, PB.int(3, 9))).contains("type 9"))
        #expect(reason(PB.bytes(1, PB.int(2, 5))).contains("wrong wire type"))  // score as a varint
    }

    @Test("every truncation of a valid model throws")
    func truncations() throws {
        let model = tinySentencePieceModel()
        _ = try Vocabulary(sentencePieceModel: model)
        // A cut inside a field fails its length check; a cut between fields leaves the trainer_spec or the
        // normalizer_spec at defaults this encoder refuses (Unigram, whitespace collapsing).
        for length in 0..<model.count {
            #expect(throws: TokenizerError.self, "prefix of \(length) bytes") {
                try Vocabulary(sentencePieceModel: Array(model[0..<length]))
            }
        }
    }

    @Test("randomly corrupted models throw or give a consistent vocabulary; none crashes")
    func corruption() {
        var rng = SplitMix64(seed: 0x70B0)
        let model = tinySentencePieceModel()
        var outcomes = (accepted: 0, rejected: 0)
        for _ in 0..<3000 {
            var bytes = model
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let v = try Vocabulary(sentencePieceModel: bytes)
                outcomes.accepted += 1
                #expect(v.scores.count == v.count && v.types.count == v.count)
            } catch {
                outcomes.rejected += 1
            }
        }
        // Both paths are exercised (a flip in a piece's text usually still parses; one in a key usually does not).
        #expect(outcomes.accepted > 100 && outcomes.rejected > 100)
    }
}
