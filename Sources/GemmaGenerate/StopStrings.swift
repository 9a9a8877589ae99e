// Stop strings over streamed text. A stop string may span several tokens, so text that could be the start of one is
// held back until it either completes the stop string (generation ends and none of it is printed) or can no longer
// do so (it is released). Matching is on UTF-8 bytes, as llama.cpp's server does; held text always ends on a
// character boundary because the detokenizer releases whole UTF-8 sequences and every stop string starts with one.

/// Watches streamed text for stop strings, releasing only text that cannot belong to one.
///
/// ```swift
/// var stops = StopStringMatcher(["\n\n", "User:"])
/// switch stops.append(piece) {
/// case let .text(safe): print(safe, terminator: "")
/// case let .stop(before, matched): print(before); finish(because: matched)
/// }
/// print(stops.flush())   // at the end: what was held back
/// ```
public struct StopStringMatcher: Sendable {
    /// What `append` lets through.
    public enum Output: Sendable, Equatable {
        /// Text that can be shown (possibly empty); generation goes on.
        case text(String)
        /// A stop string completed: `before` is the text preceding it; the stop string and anything after it are
        /// dropped.
        case stop(before: String, matched: String)
    }

    public let stopStrings: [String]
    private let patterns: [[UInt8]]
    private var held: [UInt8] = []

    /// - Parameter stopStrings: Strings that end generation; empty strings are ignored.
    public init(_ stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        patterns = self.stopStrings.map { Array($0.utf8) }
    }

    /// Text held back because it could still become a stop string.
    public var pending: String { String(decoding: held, as: UTF8.self) }

    /// Adds the next piece of text.
    public mutating func append(_ piece: String) -> Output {
        if patterns.isEmpty { return .text(piece) }
        held.append(contentsOf: piece.utf8)
        // The earliest complete occurrence of any stop string wins (the longest one at that position).
        var best: (at: Int, pattern: Int)? = nil
        for (pi, p) in patterns.enumerated() {
            if let at = Self.find(p, in: held), best.map({ at < $0.at || (at == $0.at && p.count > patterns[$0.pattern].count) }) ?? true {
                best = (at, pi)
            }
        }
        if let best {
            let before = String(decoding: held[..<best.at], as: UTF8.self)
            held.removeAll()
            return .stop(before: before, matched: stopStrings[best.pattern])
        }
        // Hold the longest suffix that is a proper prefix of some stop string.
        var keep = 0
        for p in patterns {
            var len = min(p.count - 1, held.count)
            while len > keep {
                if held[(held.count - len)...].elementsEqual(p[..<len]) { keep = len; break }
                len -= 1
            }
        }
        let out = String(decoding: held[..<(held.count - keep)], as: UTF8.self)
        held.removeFirst(held.count - keep)
        return .text(out)
    }

    /// Ends the stream: returns the held-back text (it never became a stop string).
    public mutating func flush() -> String {
        defer { held.removeAll() }
        return String(decoding: held, as: UTF8.self)
    }

    private static func find(_ p: [UInt8], in s: [UInt8]) -> Int? {
        guard p.count <= s.count else { return nil }
        for i in 0...(s.count - p.count) where s[i] == p[0] && s[i..<(i + p.count)].elementsEqual(p) { return i }
        return nil
    }
}
