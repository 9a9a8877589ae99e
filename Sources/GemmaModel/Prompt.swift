// What a sequence is made of: token ids, and rows of embeddings that stand in for tokens (what an image becomes:
// 256 soft tokens from the vision tower). Rows of a bidirectional span see each other (the report's image
// attention) on top of the causal and sliding-window rules. Every position has a content key, so that prefix reuse
// compares content (two different images behind the same placeholder id never share keys).

/// Rows of embeddings (`count` x hidden, already in the decoder's input space) standing in for `count` tokens.
public struct EmbeddingSpan: Sendable, Equatable {
    /// `count * hidden` floats, row-major. Used as they are: not scaled by sqrt(hidden) as token embeddings are.
    public let rows: [Float]
    public let count: Int
    /// Identifies the source (e.g. "sha256:..." of the image bytes); positions with equal digest and row index are
    /// taken to hold the same content.
    public let digest: String
    /// Rows of the span attend to every row of the span (not only earlier ones).
    public let bidirectional: Bool
    /// The token id each row stands for in the token history (e.g. the image soft token), for penalties and display.
    public let placeholder: Int

    public init(rows: [Float], count: Int, digest: String? = nil, bidirectional: Bool = true, placeholder: Int = 0) {
        precondition(count > 0 && rows.count % count == 0, "embedding rows must be count x hidden floats")
        self.rows = rows
        self.count = count
        self.digest = digest ?? Self.fnv1a(rows)
        self.bidirectional = bidirectional
        self.placeholder = placeholder
    }

    /// FNV-1a over the floats' bits: the digest of rows given without a source.
    static func fnv1a(_ rows: [Float]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in rows {
            var b = x.bitPattern
            for _ in 0..<4 { h = (h ^ UInt64(b & 0xFF)) &* 0x100_0000_01b3; b >>= 8 }
        }
        return "fnv1a:" + String(h, radix: 16)
    }
}

/// One part of a prompt.
public enum PromptPart: Sendable, Equatable {
    case tokens([Int])
    case embeddings(EmbeddingSpan)

    public var count: Int {
        switch self {
        case let .tokens(t): t.count
        case let .embeddings(e): e.count
        }
    }
}

/// What one cache position holds, for prefix reuse.
public enum ContentKey: Hashable, Sendable {
    case token(Int)
    /// Row `row` of the embedding span with `digest`.
    case embedding(digest: String, row: Int)
}

/// A sequence of parts at positions 0, 1, 2, ... in order.
public struct Prompt: Sendable, Equatable {
    public var parts: [PromptPart]

    public init(_ parts: [PromptPart]) { self.parts = parts.filter { $0.count > 0 } }
    public init(tokens: [Int]) { self.init([.tokens(tokens)]) }

    /// Positions in all.
    public var count: Int { parts.reduce(0) { $0 + $1.count } }
    public var isEmpty: Bool { parts.isEmpty }
    /// True when every part is token ids.
    public var isTokensOnly: Bool { parts.allSatisfy { if case .tokens = $0 { true } else { false } } }

    /// Token id of each position (an embedding row counts as its span's placeholder).
    public var tokenIDs: [Int] {
        parts.flatMap { p -> [Int] in
            switch p {
            case let .tokens(t): t
            case let .embeddings(e): Array(repeating: e.placeholder, count: e.count)
            }
        }
    }

    /// The content key of every position.
    public var contentKeys: [ContentKey] {
        parts.flatMap { p -> [ContentKey] in
            switch p {
            case let .tokens(t): t.map { .token($0) }
            case let .embeddings(e): (0..<e.count).map { .embedding(digest: e.digest, row: $0) }
            }
        }
    }

    /// Position ranges whose rows see each other (bidirectional embedding spans), in order.
    public var bidirectionalSpans: [Range<Int>] {
        var out: [Range<Int>] = [], p = 0
        for part in parts {
            if case let .embeddings(e) = part, e.bidirectional { out.append(p..<(p + e.count)) }
            p += part.count
        }
        return out
    }
}
