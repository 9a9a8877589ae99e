// Tokenizer test support: the real model's tokenizer (loaded once) and a tiny hand-made vocabulary for tests that
// need no model. Paths and the seeded generator come from GemmaTestSupport.
import Foundation
import GemmaTokenizer
import Testing
import GemmaTestSupport

/// The tokenizer of the real Gemma 3 270M GGUF, built once for all tests.
enum RealModel {
    private static let loaded: Result<Tokenizer, TokenizerError>? = {
        guard FileManager.default.fileExists(atPath: TestPaths.model) else { return nil }
        return Result { () throws(TokenizerError) in try Tokenizer(modelPath: TestPaths.model) }
    }()

    /// The tokenizer, or nil after recording a failure that says how to get the model. Never skips silently.
    static func tokenizer() -> Tokenizer? {
        switch loaded {
        case nil:
            Issue.record("missing model \(TestPaths.model): run scripts/fetch-model.sh (or make model) first")
            return nil
        case let .failure(error)?:
            Issue.record("could not build the tokenizer from \(TestPaths.model): \(error)")
            return nil
        case let .success(tokenizer)?:
            return tokenizer
        }
    }
}

/// A tiny vocabulary with every token type: ids 0-2 control, 3-258 bytes, then pieces.
enum TinyVocabulary {
    static let pieceScores: [(String, Float, Vocabulary.TokenType)] = [
        ("▁", -1, .normal), ("a", -2, .normal), ("b", -2, .normal), ("c", -2, .normal),
        ("ab", -5, .normal), ("bc", -4, .normal), ("abc", -3, .normal), ("▁a", -6, .normal),
        ("aa", -7, .normal), ("x", -2, .normal), ("y", -2, .normal), ("z", -2, .normal), ("w", -2, .normal),
        ("<ctl>", 0, .control), ("\n", 0, .userDefined), ("\n\n", 0, .userDefined),
        ("xy", 0, .userDefined), ("yzw", 0, .userDefined), ("<unused>", 0, .unused),
    ]

    static func make(addBOS: Bool = true, addEOS: Bool = false, addSpacePrefix: Bool = false) throws -> Tokenizer {
        var pieces = ["<pad>", "<bos>", "<eos>"]
        var scores: [Float] = [0, 0, 0]
        var types: [Vocabulary.TokenType] = [.control, .control, .control]
        for b in 0..<256 {
            pieces.append(String(format: "<0x%02X>", b))
            scores.append(0)
            types.append(.byte)
        }
        for (piece, score, type) in pieceScores {
            pieces.append(piece)
            scores.append(score)
            types.append(type)
        }
        let vocabulary = try Vocabulary(
            pieces: pieces, scores: scores, types: types, bosID: 1, eosID: 2, unknownID: nil, paddingID: 0,
            addBOS: addBOS, addEOS: addEOS, addSpacePrefix: addSpacePrefix)
        return try Tokenizer(vocabulary: vocabulary)
    }
}

extension Tokenizer {
    /// The pieces of `ids`, for readable expectations.
    func pieces(_ ids: [TokenID]) -> [String] { ids.map { piece(for: $0) ?? "?" } }
}
