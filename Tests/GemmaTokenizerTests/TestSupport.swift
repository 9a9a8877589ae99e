// Shared test support: fixture paths from #filePath, the real model's tokenizer (loaded once), a seeded RNG and a
// tiny hand-made vocabulary for tests that need no model.
import Foundation
import GemmaTokenizer
import Testing

enum Paths {
    /// The repository root, three levels above this file.
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let fixtures = repo + "/Tests/Fixtures"

    /// The real model, as scripts/fetch-model.sh caches it (or $GEMMA_MODEL).
    static var model: String {
        let env = ProcessInfo.processInfo.environment
        if let m = env["GEMMA_MODEL"] { return m }
        let cache = env["GEMMA_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }
}

/// The tokenizer of the real Gemma 3 270M GGUF, built once for all tests.
enum RealModel {
    private static let loaded: Result<Tokenizer, TokenizerError>? = {
        guard FileManager.default.fileExists(atPath: Paths.model) else { return nil }
        return Result { () throws(TokenizerError) in try Tokenizer(modelPath: Paths.model) }
    }()

    /// The tokenizer, or nil after recording a failure that says how to get the model. Never skips silently.
    static func tokenizer() -> Tokenizer? {
        switch loaded {
        case nil:
            Issue.record("missing model \(Paths.model): run scripts/fetch-model.sh (or make model) first")
            return nil
        case let .failure(error)?:
            Issue.record("could not build the tokenizer from \(Paths.model): \(error)")
            return nil
        case let .success(tokenizer)?:
            return tokenizer
        }
    }
}

/// SplitMix64: a small seeded generator so that property tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
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
