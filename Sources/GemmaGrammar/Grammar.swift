// A context-free grammar over Unicode scalars in llama.cpp's GBNF notation, compiled to one flat array of elements:
// each rule is a list of alternatives, each alternative a run of elements (a character set or a rule reference)
// ended by an end marker. Groups, literals and repetitions (`*`, `+`, `?`, `{m,n}`) are rewritten into plain rules
// at parse time, as llama.cpp's parser does, so the matcher only ever sees sets, references and ends.
//
// GBNF, as accepted here:
//     root   ::= "{" ws pair ("," ws pair)* "}"     # a rule: name ::= alternatives; `#` starts a comment
//     pair   ::= [a-z]+ ":" ws ( "true" | "false" ) # literals, classes (ranges, ^ negation), groups
//     ws     ::= [ \t\n]{0,4}                       # ?, *, +, {m}, {m,}, {m,n}; `.` is any character
// Escapes in literals and classes: \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH. A rule may span lines; the next
// `name ::=` starts the next rule. The start rule is `root`. Left recursion (a rule that can reach itself before
// consuming a character) is refused, since a top-down matcher cannot run it.

/// A set of Unicode scalars: an ASCII bitmap and sorted ranges above, possibly negated.
public struct CharacterSet: Sendable, Equatable {
    /// Bits 0-127: ASCII members, negation already applied.
    var ascii: (UInt64, UInt64)
    /// Ranges of members at or above 128, before negation.
    var ranges: [ClosedRange<UInt32>]
    var negated: Bool

    init(_ ranges: [ClosedRange<UInt32>], negated: Bool) {
        var lo: UInt64 = 0, hi: UInt64 = 0
        var rest: [ClosedRange<UInt32>] = []
        for r in ranges {
            if r.lowerBound < 128 {
                for c in r.lowerBound...min(r.upperBound, 127) {
                    if c < 64 { lo |= 1 << UInt64(c) } else { hi |= 1 << UInt64(c - 64) }
                }
            }
            if r.upperBound >= 128 { rest.append(max(r.lowerBound, 128)...r.upperBound) }
        }
        if negated { lo = ~lo; hi = ~hi }
        ascii = (lo, hi)
        self.ranges = rest.sorted { $0.lowerBound < $1.lowerBound }
        self.negated = negated
    }

    public static func == (a: CharacterSet, b: CharacterSet) -> Bool {
        a.ascii == b.ascii && a.ranges == b.ranges && a.negated == b.negated
    }

    @inline(__always) func contains(_ c: UInt32) -> Bool {
        if c < 64 { return ascii.0 >> UInt64(c) & 1 != 0 }
        if c < 128 { return ascii.1 >> UInt64(c - 64) & 1 != 0 }
        var inside = false
        for r in ranges where r.contains(c) { inside = true; break }
        return inside != negated
    }
}

/// A grammar compiled to flat elements. Element `i` is `.set(charSets[arg[i]])`, `.rule(arg[i])` or `.end` (the
/// end of an alternative); `alternatives[r]` are the first elements of rule r's alternatives.
public struct Grammar: Sendable, Equatable {
    enum Kind: UInt8 { case end, set, rule }
    var kinds: [Kind] = []
    var args: [Int32] = []
    var charSets: [CharacterSet] = []
    var alternatives: [[Int32]] = []
    /// Rule names, for messages (generated rules: `name_3`).
    public private(set) var ruleNames: [String] = []
    /// The start rule.
    public private(set) var root = 0

    /// Parses GBNF text. Throws `GrammarError` naming the line and what is wrong.
    public init(gbnf text: String, root rootName: String = "root") throws(GrammarError) {
        var parser = GBNFParser(text: Array(text.unicodeScalars))
        let parsed = try parser.parseRules()
        try self.init(rules: parsed, root: rootName)
    }

    init(rules parsed: [(String, [[Item]])], root rootName: String) throws(GrammarError) {
        var index: [String: Int] = [:]
        for (name, _) in parsed {
            if index[name] != nil { throw GrammarError("rule '\(name)' is defined twice") }
            index[name] = index.count
        }
        guard let r = index[rootName] else { throw GrammarError("the grammar has no '\(rootName)' rule") }
        ruleNames = parsed.map(\.0)
        root = r
        for (_, alts) in parsed {
            var starts: [Int32] = []
            for alt in alts {
                starts.append(Int32(kinds.count))
                for e in alt {
                    switch e {
                    case let .set(s):
                        kinds.append(.set)
                        if let i = charSets.firstIndex(of: s) { args.append(Int32(i)) } else {
                            args.append(Int32(charSets.count)); charSets.append(s)
                        }
                    case let .ruleName(n):
                        guard let id = index[n] else { throw GrammarError("rule '\(n)' is used but never defined") }
                        kinds.append(.rule); args.append(Int32(id))
                    }
                }
                kinds.append(.end); args.append(0)
            }
            alternatives.append(starts)
        }
        try checkLeftRecursion()
    }

    /// Refuses rules that can reach themselves without consuming a character (through nullable prefixes).
    private func checkLeftRecursion() throws(GrammarError) {
        let n = alternatives.count
        // Nullable rules: fixed point.
        var nullable = [Bool](repeating: false, count: n)
        var changed = true
        while changed {
            changed = false
            for r in 0..<n where !nullable[r] {
                for a in alternatives[r] {
                    var i = Int(a), ok = true
                    while kinds[i] != .end {
                        if kinds[i] == .set || !nullable[Int(args[i])] { ok = false; break }
                        i += 1
                    }
                    if ok { nullable[r] = true; changed = true; break }
                }
            }
        }
        // Leftmost edges: r -> s when s can come first in r.
        var edges = [[Int]](repeating: [], count: n)
        for r in 0..<n {
            for a in alternatives[r] {
                var i = Int(a)
                while kinds[i] == .rule {
                    edges[r].append(Int(args[i]))
                    if !nullable[Int(args[i])] { break }
                    i += 1
                }
            }
        }
        // A cycle among leftmost edges: depth-first search with colours.
        var colour = [UInt8](repeating: 0, count: n)
        for start in 0..<n where colour[start] == 0 {
            var stack: [(Int, Int)] = [(start, 0)]
            colour[start] = 1
            while let (r, e) = stack.last {
                if e < edges[r].count {
                    stack[stack.count - 1].1 += 1
                    let s = edges[r][e]
                    if colour[s] == 1 {
                        throw GrammarError("rule '\(ruleNames[s])' is left-recursive (it can reach itself before reading a character)")
                    }
                    if colour[s] == 0 { colour[s] = 1; stack.append((s, 0)) }
                } else {
                    colour[r] = 2
                    stack.removeLast()
                }
            }
        }
    }

    /// Elements of rules (what parsing produces before flattening).
    enum Item: Equatable { case set(CharacterSet), ruleName(String) }
}

/// A grammar that cannot be parsed or run, with what is wrong.
public struct GrammarError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parsed GBNF before rules are numbered: a rule's alternatives are sequences of terms, each with a repetition.
indirect enum Term {
    case set(CharacterSet)
    case name(String)
    case literal([UInt32])
    case group([[Repeated]])
}

struct Repeated {
    var term: Term
    var min = 1, max: Int? = 1
}

struct GBNFParser {
    let text: [Unicode.Scalar]
    var i = 0
    var line = 1

    init(text: [Unicode.Scalar]) { self.text = text }

    func error(_ what: String) -> GrammarError { GrammarError("grammar line \(line): \(what)") }

    var atEnd: Bool { i >= text.count }
    var peek: Unicode.Scalar? { i < text.count ? text[i] : nil }

    mutating func advance() {
        if text[i] == "\n" { line += 1 }
        i += 1
    }

    /// Skips spaces, newlines and comments.
    mutating func skip() {
        while let c = peek {
            if c == " " || c == "\t" || c == "\n" || c == "\r" { advance() } else if c == "#" {
                while let d = peek, d != "\n" { _ = d; advance() }
            } else { break }
        }
    }

    static func isNameChar(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_"
    }

    mutating func name() -> String? {
        let start = i
        while let c = peek, Self.isNameChar(c) { advance() }
        return i > start ? String(String.UnicodeScalarView(text[start..<i])) : nil
    }

    /// True when a `name ::=` starts at the current position (after spaces).
    func startsRule() -> Bool {
        var j = i
        while j < text.count, Self.isNameChar(text[j]) { j += 1 }
        guard j > i else { return false }
        while j < text.count, text[j] == " " || text[j] == "\t" { j += 1 }
        return j + 2 < text.count && text[j] == ":" && text[j + 1] == ":" && text[j + 2] == "="
    }

    mutating func parseRules() throws(GrammarError) -> [(String, [[Grammar.Item]])] {
        var rules: [(String, [[Repeated]])] = []
        skip()
        while !atEnd {
            guard let n = name() else { throw error("expected a rule name, found '\(peek!)'") }
            skip()
            guard i + 2 < text.count, text[i] == ":", text[i + 1] == ":", text[i + 2] == "=" else {
                throw error("expected '::=' after '\(n)'")
            }
            i += 3
            skip()
            rules.append((n, try alternatives(nested: false)))
            skip()
        }
        if rules.isEmpty { throw GrammarError("the grammar is empty") }
        return try lower(rules)
    }

    /// Groups open at the current position (parsing recurses per group: bounded so that a hostile grammar cannot
    /// exhaust the stack).
    var depth = 0
    static let maxDepth = 64

    mutating func alternatives(nested: Bool) throws(GrammarError) -> [[Repeated]] {
        var alts: [[Repeated]] = [try sequence(nested: nested)]
        while peek == "|" {
            advance()
            skip()
            alts.append(try sequence(nested: nested))
        }
        return alts
    }

    mutating func sequence(nested: Bool) throws(GrammarError) -> [Repeated] {
        var seq: [Repeated] = []
        while let c = peek {
            if c == "|" || c == ")" { break }
            if !nested && startsRule() { break }
            var term: Term
            switch c {
            case "\"":
                advance()
                var chars: [UInt32] = []
                while true {
                    guard let d = peek else { throw error("unterminated string literal") }
                    if d == "\"" { advance(); break }
                    if d == "\n" { throw error("newline inside a string literal") }
                    chars.append(try char())
                }
                term = .literal(chars)
            case "[":
                advance()
                var negated = false
                if peek == "^" { negated = true; advance() }
                var ranges: [ClosedRange<UInt32>] = []
                while true {
                    guard let d = peek else { throw error("unterminated character class") }
                    if d == "]" { advance(); break }
                    let lo = try char()
                    if peek == "-", i + 1 < text.count, text[i + 1] != "]" {
                        advance()
                        let hi = try char()
                        guard hi >= lo else { throw error("character range out of order") }
                        ranges.append(lo...hi)
                    } else {
                        ranges.append(lo...lo)
                    }
                }
                term = .set(CharacterSet(ranges, negated: negated))
            case ".":
                advance()
                term = .set(CharacterSet([], negated: true))
            case "(":
                advance()
                skip()
                depth += 1
                guard depth <= Self.maxDepth else { throw error("groups nested more than \(Self.maxDepth) deep") }
                let alts = try alternatives(nested: true)
                depth -= 1
                guard peek == ")" else { throw error("expected ')'") }
                advance()
                term = .group(alts)
            default:
                guard let n = name() else { throw error("unexpected '\(c)'") }
                term = .name(n)
            }
            var r = Repeated(term: term)
            skipInline(nested: nested)
            switch peek {
            case "*": advance(); r.min = 0; r.max = nil
            case "+": advance(); r.min = 1; r.max = nil
            case "?": advance(); r.min = 0; r.max = 1
            case "{":
                advance()
                guard let m = number() else { throw error("expected a count after '{'") }
                r.min = m; r.max = m
                if peek == "," {
                    advance()
                    r.max = number()
                }
                guard peek == "}" else { throw error("expected '}'") }
                advance()
                if let mx = r.max, mx < r.min { throw error("repetition {\(r.min),\(mx)} has max below min") }
                if (r.max ?? r.min) > 10_000 { throw error("repetition count above 10000") }
            default: break
            }
            seq.append(r)
            skip()
        }
        return seq
    }

    mutating func skipInline(nested: Bool) {
        while let c = peek, c == " " || c == "\t" { _ = c; advance() }
    }

    mutating func number() -> Int? {
        var v = 0, any = false
        while let c = peek, c >= "0" && c <= "9" {
            v = min(v * 10 + Int(c.value - 48), 1_000_000)
            any = true
            advance()
        }
        return any ? v : nil
    }

    mutating func char() throws(GrammarError) -> UInt32 {
        let c = peek!
        advance()
        guard c == "\\" else { return c.value }
        guard let e = peek else { throw error("escape at end of text") }
        advance()
        func hex(_ n: Int) throws(GrammarError) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<n {
                guard let h = peek, let d = UInt32(String(h), radix: 16) else { throw error("expected \(n) hex digits") }
                v = v * 16 + d
                advance()
            }
            guard v <= 0x10FFFF else { throw error("escape beyond U+10FFFF") }
            return v
        }
        switch e {
        case "n": return 10
        case "r": return 13
        case "t": return 9
        case "x": return try hex(2)
        case "u": return try hex(4)
        case "U": return try hex(8)
        case "\\", "\"", "[", "]", "-", "^", "/": return e.value
        default: throw error("unknown escape '\\\(e)'")
        }
    }

    static let maxElements = 400_000

    /// Numbers rules and rewrites groups, literals and repetitions into plain rules.
    func lower(_ rules: [(String, [[Repeated]])]) throws(GrammarError) -> [(String, [[Grammar.Item]])] {
        var out: [(String, [[Grammar.Item]])] = []
        var defined = Set(rules.map(\.0))
        // Repetitions copy their body; nested ones multiply. The lowered grammar is bounded instead of the text.
        var produced = 0
        var tooLarge = false
        func count(_ n: Int) { produced += n; if produced > Self.maxElements { tooLarge = true } }
        var counter = 0
        func fresh(_ base: String) -> String {
            while true {
                counter += 1
                let n = "\(base)_\(counter)"
                if !defined.contains(n) { defined.insert(n); return n }
            }
        }
        // One term as items (a group becomes a rule of its own).
        func items(_ t: Term, _ base: String) -> [Grammar.Item] {
            switch t {
            case let .set(s): return [.set(s)]
            case let .literal(cs): return cs.map { .set(CharacterSet([$0...$0], negated: false)) }
            case let .name(n): return [.ruleName(n)]
            case let .group(alts):
                if alts.count == 1 { return sequenceItems(alts[0], base) }
                let n = fresh(base)
                out.append((n, alts.map { sequenceItems($0, base) }))
                return [.ruleName(n)]
            }
        }
        func sequenceItems(_ seq: [Repeated], _ base: String) -> [Grammar.Item] {
            var result: [Grammar.Item] = []
            for r in seq {
                if tooLarge { return [] }
                let body = items(r.term, base)
                count(body.count * max(1, r.min + (r.max ?? r.min)))
                if tooLarge { return [] }
                if r.min == 1 && r.max == 1 { result += body; continue }
                for _ in 0..<r.min { result += body }
                if let mx = r.max {
                    // Up to mx - min more: nested optionals, x (x (x)?)?.
                    var tail: [Grammar.Item] = []
                    for _ in 0..<(mx - r.min) {
                        let n = fresh(base)
                        out.append((n, [body + tail, []]))
                        tail = [.ruleName(n)]
                    }
                    result += tail
                } else {
                    let n = fresh(base)
                    out.append((n, [body + [.ruleName(n)], []]))
                    result.append(.ruleName(n))
                }
            }
            return result
        }
        for (name, alts) in rules {
            out.append((name, alts.map { sequenceItems($0, name) }))
            if tooLarge { break }
        }
        if tooLarge { throw GrammarError("the grammar is too large once its repetitions are written out (over \(Self.maxElements) elements)") }
        return out
    }
}
