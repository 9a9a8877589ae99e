// JSON Schema to GBNF: the output always parses as JSON and validates against the schema, for the subset below;
// anything else is refused by name (a 400 on the server), never silently loosened.
//
// Supported: type (one or a list), object (properties kept in the schema's order, required and optional ones,
// additionalProperties false / true / a schema, absent = allowed as JSON Schema says), array (items, prefixItems,
// minItems, maxItems), string (minLength, maxLength, format date / time / date-time / uuid / email), integer and
// number (minimum, maximum, exclusiveMinimum, exclusiveMaximum: integer bounds), boolean, null, enum, const,
// anyOf / oneOf (as alternatives), allOf of one schema, nullable (OpenAPI), $ref to #, #/$defs/... and
// #/definitions/..., and the empty schema (any JSON value). Annotations (title, description, default, examples,
// $schema, $id, deprecated, readOnly, writeOnly, $comment) are ignored.
//
// Whitespace between tokens is bounded (at most one newline and 20 spaces or tabs), so a small model cannot loop on
// blank lines; nothing follows the top value, so the grammar ends where the JSON does.
import GemmaFormats

/// Compiles JSON Schemas (and plain JSON mode) to grammars.
public enum JSONSchemaGrammar {
    /// The GBNF of any JSON value (OpenAI's `{"type": "json_object"}` asks for an object: `objectOnly`).
    public static func anyJSON(objectOnly: Bool = false) -> String {
        var c = Compiler(root: .object([]))
        c.useAnyValue()
        c.rules.insert("root ::= \(objectOnly ? "json-object" : "json-value")", at: 0)
        return c.text
    }

    /// The GBNF of a JSON Schema. Throws `GrammarError` naming an unsupported keyword, a bad $ref or a schema that
    /// is too large.
    public static func gbnf(schema: JSONValue) throws(GrammarError) -> String {
        var c = Compiler(root: schema)
        let body = try c.rule(for: schema, name: "root-value", path: "#")
        c.rules.insert("root ::= \(body)", at: 0)
        return c.text
    }

    /// The grammar of a JSON Schema, parsed.
    public static func grammar(schema: JSONValue) throws(GrammarError) -> Grammar {
        try Grammar(gbnf: gbnf(schema: schema))
    }

    static let ignored: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "deprecated",
                                       "readOnly", "writeOnly", "$comment", "strict", "name", "discriminator"]
    static let understood: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "prefixItems",
                                          "minItems", "maxItems", "minLength", "maxLength", "format", "minimum", "maximum",
                                          "exclusiveMinimum", "exclusiveMaximum", "enum", "const", "anyOf", "oneOf", "allOf",
                                          "nullable", "$ref", "$defs", "definitions"]

    struct Compiler {
        let root: JSONValue
        var rules: [String] = []
        var defined: Set<String> = []
        /// $ref targets already given a rule (recursive schemas refer to the rule).
        var refRules: [String: String] = [:]
        var anyValueDone = false
        static let maxRules = 5_000
        static let maxRepeat = 2_000

        init(root: JSONValue) { self.root = root }

        var text: String { rules.joined(separator: "\n") + "\n" }

        mutating func add(_ name: String, _ body: String) throws(GrammarError) {
            rules.append("\(name) ::= \(body)")
            defined.insert(name)
            if rules.count > Self.maxRules { throw GrammarError("the schema is too large (over \(Self.maxRules) grammar rules)") }
        }

        mutating func fresh(_ base: String) -> String {
            let clean = String(base.unicodeScalars.map { c -> Character in
                (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") ? Character(c) : "-"
            }.prefix(40))
            var n = clean.isEmpty ? "r" : clean
            var k = 1
            while defined.contains(n) || n == "root" { k += 1; n = "\(clean)-\(k)" }
            defined.insert(n)
            return n
        }

        /// The shared rules of plain JSON (values, strings, numbers, whitespace).
        mutating func usePrimitives() {
            guard !defined.contains("ws") else { return }
            rules += [
                #"ws ::= ( [ \t] | "\n" ) [ \t]{0,19}"# + " |",
                #"json-char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )"#,
                #"json-string ::= "\"" json-char* "\"""#,
                #"json-int ::= "-"? ( "0" | [1-9] [0-9]{0,15} )"#,
                #"json-number ::= json-int ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?"#,
                #"json-bool ::= "true" | "false""#,
            ]
            defined.formUnion(["ws", "json-char", "json-string", "json-int", "json-number", "json-bool"])
        }

        mutating func useAnyValue() {
            usePrimitives()
            guard !anyValueDone else { return }
            anyValueDone = true
            rules += [
                #"json-value ::= json-object | json-array | json-string | json-number | json-bool | "null""#,
                #"json-object ::= "{" ws ( json-string ws ":" ws json-value ws ( "," ws json-string ws ":" ws json-value ws )* )? "}""#,
                #"json-array ::= "[" ws ( json-value ws ( "," ws json-value ws )* )? "]""#,
            ]
            defined.formUnion(["json-value", "json-object", "json-array"])
        }

        /// A GBNF literal for text.
        static func literal(_ s: String) -> String {
            var out = "\""
            for c in s.unicodeScalars {
                switch c {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if c.value < 0x20 || c.value == 0x7F {
                        out += "\\x" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16)
                    } else {
                        out.unicodeScalars.append(c)
                    }
                }
            }
            return out + "\""
        }

        /// A GBNF expression (a rule name or a parenthesised body) that matches exactly `schema`.
        mutating func rule(for schema: JSONValue, name: String, path: String) throws(GrammarError) -> String {
            usePrimitives()
            let pairs: [(String, JSONValue)]
            switch schema {
            case .bool(true): useAnyValue(); return "json-value"
            case .bool(false): throw GrammarError("\(path): the schema false accepts nothing")
            case let .object(p): pairs = p
            default: throw GrammarError("\(path): a schema must be an object or a boolean, not \(schema.typeName)")
            }
            for (k, _) in pairs where !JSONSchemaGrammar.ignored.contains(k) && !JSONSchemaGrammar.understood.contains(k) {
                throw GrammarError("\(path): the schema keyword '\(k)' is not supported")
            }
            if let ref = schema["$ref"] {
                guard case let .string(r) = ref else { throw GrammarError("\(path): $ref must be a string") }
                try Self.checkExclusive(schema, path: path)
                let target = try refRule(r, path: path)
                return schema["nullable"] == .bool(true) ? "( \(target) | \"null\" )" : target
            }
            var base = try typedRule(schema, name: name, path: path)
            if schema["nullable"] == .bool(true) { base = "( \(base) | \"null\" )" }
            return base
        }

        mutating func refRule(_ r: String, path: String) throws(GrammarError) -> String {
            if let done = refRules[r] { return done }
            var target = root
            if r != "#" {
                guard r.hasPrefix("#/") else { throw GrammarError("\(path): only local $ref (#/...) is supported, not '\(r)'") }
                for part in r.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
                    let key = String(part).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                    guard let next = target[key] else { throw GrammarError("\(path): $ref '\(r)' points nowhere") }
                    target = next
                }
            }
            let n = fresh("ref-" + (r.split(separator: "/").last.map(String.init) ?? "root"))
            refRules[r] = n
            let body = try rule(for: target, name: n, path: r)
            try add(n, body)
            return n
        }

        static let constraining: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "prefixItems",
                                                "minItems", "maxItems", "minLength", "maxLength", "format", "minimum", "maximum",
                                                "exclusiveMinimum", "exclusiveMaximum", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"]

        /// const, enum, anyOf, oneOf, allOf and $ref take the whole schema: beside other constraining keywords they
        /// would silently drop them, so the combination is refused (a `type` beside const or enum is allowed).
        static func checkExclusive(_ s: JSONValue, path: String) throws(GrammarError) {
            guard case let .object(pairs) = s else { return }
            let used = pairs.map(\.0).filter { constraining.contains($0) }
            for k in ["const", "enum", "anyOf", "oneOf", "allOf", "$ref"] where used.contains(k) {
                let others = used.filter { $0 != k && !((k == "enum" || k == "const") && $0 == "type") }
                if !others.isEmpty {
                    throw GrammarError("\(path): '\(k)' together with \(others.map { "'\($0)'" }.joined(separator: ", ")) is not supported")
                }
            }
        }

        mutating func typedRule(_ s: JSONValue, name: String, path: String) throws(GrammarError) -> String {
            try Self.checkExclusive(s, path: path)
            if let c = s["const"] { return Self.literal(c.serialized) }
            if let e = s["enum"] {
                guard case let .array(values) = e, !values.isEmpty else { throw GrammarError("\(path): enum must be a non-empty array") }
                return "( " + values.map { Self.literal($0.serialized) }.joined(separator: " | ") + " )"
            }
            for key in ["anyOf", "oneOf"] {
                if let a = s[key] {
                    guard case let .array(options) = a, !options.isEmpty else { throw GrammarError("\(path): \(key) must be a non-empty array") }
                    var alts: [String] = []
                    for (i, o) in options.enumerated() { alts.append(try rule(for: o, name: "\(name)-\(i)", path: "\(path)/\(key)/\(i)")) }
                    return "( " + alts.joined(separator: " | ") + " )"
                }
            }
            if let a = s["allOf"] {
                guard case let .array(options) = a, options.count == 1 else {
                    throw GrammarError("\(path): allOf is supported with one schema only")
                }
                return try rule(for: options[0], name: name, path: "\(path)/allOf/0")
            }
            var types: [String] = []
            switch s["type"] {
            case nil:
                // No type: the keywords say which one they constrain.
                if ["properties", "additionalProperties", "required"].contains(where: { s[$0] != nil }) { types = ["object"] }
                else if ["items", "prefixItems", "minItems", "maxItems"].contains(where: { s[$0] != nil }) { types = ["array"] }
                else if ["minLength", "maxLength", "format"].contains(where: { s[$0] != nil }) { types = ["string"] }
                else if ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].contains(where: { s[$0] != nil }) { types = ["number"] }
                else { useAnyValue(); return "json-value" }
            case let .string(t)?: types = [t]
            case let .array(ts)?:
                guard !ts.isEmpty else { throw GrammarError("\(path): type must not be an empty list") }
                for t in ts {
                    guard case let .string(x) = t else { throw GrammarError("\(path): type entries must be strings") }
                    types.append(x)
                }
            default: throw GrammarError("\(path): type must be a string or an array of strings")
            }
            var alts: [String] = []
            for t in types {
                switch t {
                case "object": alts.append(try objectRule(s, name: name, path: path))
                case "array": alts.append(try arrayRule(s, name: name, path: path))
                case "string": alts.append(try stringRule(s, path: path))
                case "integer": alts.append(try numberRule(s, integer: true, name: name, path: path))
                case "number": alts.append(try numberRule(s, integer: false, name: name, path: path))
                case "boolean": alts.append("json-bool")
                case "null": alts.append("\"null\"")
                default: throw GrammarError("\(path): unknown type '\(t)'")
                }
            }
            return alts.count == 1 ? alts[0] : "( " + alts.joined(separator: " | ") + " )"
        }

        static func count(_ s: JSONValue, _ key: String, _ path: String) throws(GrammarError) -> Int? {
            guard let v = s[key] else { return nil }
            guard case let .number(x) = v, x >= 0, x == x.rounded() else {
                throw GrammarError("\(path): \(key) must be a non-negative integer")
            }
            guard x <= Double(maxRepeat) else { throw GrammarError("\(path): \(key) \(Int(x)) is above the limit of \(maxRepeat)") }
            return Int(x)
        }

        mutating func objectRule(_ s: JSONValue, name: String, path: String) throws(GrammarError) -> String {
            var props: [(String, JSONValue)] = []
            if let p = s["properties"] {
                guard case let .object(pairs) = p else { throw GrammarError("\(path): properties must be an object") }
                props = pairs
            }
            var required = Set<String>()
            if let r = s["required"] {
                guard case let .array(names) = r else { throw GrammarError("\(path): required must be an array") }
                for n in names {
                    guard case let .string(x) = n else { throw GrammarError("\(path): required entries must be strings") }
                    required.insert(x)
                }
            }
            for r in required where !props.contains(where: { $0.0 == r }) {
                if s["additionalProperties"] == .bool(false) {
                    throw GrammarError("\(path): '\(r)' is required but not among the properties, and additionalProperties is false")
                }
                let extraSchema: JSONValue = { if case .object? = s["additionalProperties"] { s["additionalProperties"]! } else { .object([]) } }()
                props.append((r, extraSchema))
            }
            // Each property: "\"key\"" ws ":" ws value ws
            var members: [(String, Bool)] = []
            for (k, v) in props {
                let value = try rule(for: v, name: "\(name)-\(k)", path: "\(path)/properties/\(k)")
                let m = fresh("\(name)-\(k)-kv")
                try add(m, "\(Self.literal(Self.jsonString(k))) ws \":\" ws \(value) ws")
                members.append((m, required.contains(k)))
            }
            // Additional members: after the declared ones, any number of "key": value pairs.
            var extra: String? = nil
            switch s["additionalProperties"] {
            case .bool(false)?: extra = nil
            case nil, .bool(true)?:
                useAnyValue()
                extra = "\(try otherKey(props.map(\.0), name: name)) ws \":\" ws json-value ws"
            case let a?:
                let v = try rule(for: a, name: "\(name)-extra", path: "\(path)/additionalProperties")
                extra = "\(try otherKey(props.map(\.0), name: name)) ws \":\" ws \(v) ws"
            }
            // first_i: nothing written yet from member i on; rest_i: something written before member i.
            let n = members.count
            var first = Array(repeating: "", count: n + 1), rest = first
            var tailRest = "", tailFirst = ""
            if let e = extra {
                let x = fresh("\(name)-extra-kv")
                try add(x, e)
                let more = fresh("\(name)-extra-more")
                try add(more, "( \",\" ws \(x) )*")
                tailRest = more
                tailFirst = "( \(x) \(more) )?"
            }
            rest[n] = tailRest
            first[n] = tailFirst
            for i in stride(from: n - 1, through: 0, by: -1) {
                let (m, req) = members[i]
                let r = fresh("\(name)-rest-\(i)")
                try add(r, req ? "\",\" ws \(m) \(rest[i + 1])" : "( \",\" ws \(m) )? \(rest[i + 1])")
                rest[i] = r
                let f = fresh("\(name)-first-\(i)")
                try add(f, req ? "\(m) \(rest[i + 1])" : "\(m) \(rest[i + 1]) | \(first[i + 1])")
                first[i] = f
            }
            let o = fresh("\(name)-object")
            try add(o, "\"{\" ws \(first[0]) \"}\"")
            return o
        }

        static func jsonString(_ s: String) -> String { JSONValue.string(s).serialized }

        /// A JSON string that is none of `keys` (the names of declared properties, whose values follow their own
        /// schemas): a walk down the keys' trie that must leave it or stop short of a key's end. An escape counts
        /// as leaving the trie (so "\u0061" is not taken for "a").
        mutating func otherKey(_ keys: [String], name: String) throws(GrammarError) -> String {
            guard !keys.isEmpty else { return "json-string" }
            if let long = keys.first(where: { $0.unicodeScalars.count > 256 }) {
                throw GrammarError("property name '\(long.prefix(40))...' is longer than 256 characters (not supported)")
            }
            // Walked in their escaped JSON form (a quote in a name is \" in the text).
            let words = keys.map { Array(Self.jsonString($0).unicodeScalars.dropFirst().dropLast()) }
            func classChar(_ c: Unicode.Scalar) -> String {
                switch c {
                case "\\", "]", "-", "^", "\"": return "\\" + String(c)
                default:
                    if c.value < 0x20 || c.value == 0x7F { return "\\x" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16) }
                    return String(c)
                }
            }
            // One rule per trie node (prefix).
            func node(_ prefix: [Unicode.Scalar]) throws(GrammarError) -> String {
                let below = words.filter { $0.count > prefix.count && Array($0.prefix(prefix.count)) == prefix }
                let isKey = words.contains { $0 == prefix }
                var next: [Unicode.Scalar] = []
                for w in below where !next.contains(w[prefix.count]) { next.append(w[prefix.count]) }
                let n = fresh("\(name)-other-key")
                var alts: [String] = []
                if !isKey { alts.append("\"\\\"\"") }
                alts.append("[^\"\\\\\\x7F\\x00-\\x1F" + next.map(classChar).joined() + "] json-char* \"\\\"\"")
                alts.append("\"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) json-char* \"\\\"\"")
                for c in next { alts.append("\(Self.literal(String(c))) \(try node(prefix + [c]))") }
                try add(n, alts.joined(separator: " | "))
                return n
            }
            return "\"\\\"\" \(try node([]))"
        }

        mutating func arrayRule(_ s: JSONValue, name: String, path: String) throws(GrammarError) -> String {
            let minItems = try Self.count(s, "minItems", path) ?? 0
            let maxItems = try Self.count(s, "maxItems", path)
            if let mx = maxItems, mx < minItems { throw GrammarError("\(path): maxItems is below minItems") }
            if let p = s["prefixItems"] {
                guard case let .array(tuple) = p else { throw GrammarError("\(path): prefixItems must be an array") }
                if let items = s["items"], items != .bool(false) {
                    throw GrammarError("\(path): prefixItems with further items is not supported (set items to false)")
                }
                var parts: [String] = []
                for (i, t) in tuple.enumerated() {
                    parts.append(try rule(for: t, name: "\(name)-\(i)", path: "\(path)/prefixItems/\(i)") + " ws")
                }
                let a = fresh("\(name)-tuple")
                try add(a, "\"[\" ws " + (parts.isEmpty ? "" : parts.joined(separator: " \",\" ws ")) + " \"]\"")
                return a
            }
            let item: String
            switch s["items"] {
            case nil: useAnyValue(); item = "json-value"
            case let i?: item = try rule(for: i, name: "\(name)-item", path: "\(path)/items")
            }
            let it = fresh("\(name)-item-ws")
            try add(it, "\(item) ws")
            let next = "\",\" ws \(it)"
            var body: String
            if maxItems == 0 {
                body = ""
            } else {
                let headCount = max(minItems, 1)
                var seq = [it] + Array(repeating: next, count: headCount - 1)
                if let mx = maxItems {
                    if mx > headCount { seq.append("( \(next) ){0,\(mx - headCount)}") }
                } else {
                    seq.append("( \(next) )*")
                }
                body = seq.joined(separator: " ")
                if minItems == 0 { body = "( \(body) )?" }
            }
            let a = fresh("\(name)-array")
            try add(a, "\"[\" ws \(body) \"]\"")
            return a
        }

        mutating func stringRule(_ s: JSONValue, path: String) throws(GrammarError) -> String {
            if let f = s["format"] {
                guard case let .string(format) = f else { throw GrammarError("\(path): format must be a string") }
                let date = #"[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )"#
                let time = #"( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )"#
                let body: String
                switch format {
                case "date": body = date
                case "time": body = time
                case "date-time": body = "\(date) \"T\" \(time)"
                case "uuid": body = #"[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}"#
                case "email": body = #"[A-Za-z0-9._%+-]{1,64} "@" [A-Za-z0-9-]{1,63} ( "." [A-Za-z0-9-]{1,63} ){0,4} "." [A-Za-z]{2,24}"#
                default: throw GrammarError("\(path): string format '\(format)' is not supported")
                }
                let n = fresh("string-\(format)")
                try add(n, "\"\\\"\" \(body) \"\\\"\"")
                return n
            }
            let lo = try Self.count(s, "minLength", path) ?? 0
            let hi = try Self.count(s, "maxLength", path)
            if let h = hi, h < lo { throw GrammarError("\(path): maxLength is below minLength") }
            if lo == 0 && hi == nil { return "json-string" }
            let n = fresh("string-\(lo)-\(hi.map(String.init) ?? "")")
            try add(n, "\"\\\"\" json-char{\(lo),\(hi.map(String.init) ?? "")} \"\\\"\"")
            return n
        }

        // MARK: numbers

        mutating func numberRule(_ s: JSONValue, integer: Bool, name: String, path: String) throws(GrammarError) -> String {
            func bound(_ key: String) throws(GrammarError) -> Int? {
                guard let v = s[key] else { return nil }
                guard case let .number(x) = v else { throw GrammarError("\(path): \(key) must be a number") }
                guard x == x.rounded(), abs(x) < 1e15 else {
                    throw GrammarError("\(path): \(key) \(x) is not supported (integer bounds below 10^15 only)")
                }
                return Int(x)
            }
            var lo = try bound("minimum"), hi = try bound("maximum")
            let exLo = try bound("exclusiveMinimum"), exHi = try bound("exclusiveMaximum")
            if lo == nil && hi == nil && exLo == nil && exHi == nil { return integer ? "json-int" : "json-number" }
            // Integer values: the bounds made inclusive.
            var intLo = lo, intHi = hi
            if let e = exLo { intLo = max(intLo ?? Int.min, e + 1) }
            if let e = exHi { intHi = min(intHi ?? Int.max, e - 1) }
            if let l = intLo, let h = intHi, l > h, integer {
                throw GrammarError("\(path): no integer lies within the bounds")
            }
            var alts: [String] = []
            if intLo.map({ l in intHi.map { l <= $0 } ?? true }) ?? true { alts.append(Self.integerRange(intLo, intHi)) }
            if !integer {
                // A fraction: k.f with f > 0 lies strictly between k and k + 1 (or -k - 1 and -k).
                // Fractions lie strictly between integers: an exclusive integer bound excludes what the inclusive one
                // does, so the stricter of each pair applies.
                lo = [lo, exLo].compactMap { $0 }.max()
                hi = [hi, exHi].compactMap { $0 }.min()
                let frac = #""." [0-9]{0,15} [1-9]"#
                // Positive side: k >= max(lo, 0), k <= hi - 1.
                let pLo = max(lo ?? 0, 0), pHi = hi.map { $0 - 1 }
                if pHi.map({ $0 >= pLo }) ?? true { alts.append("\(Self.naturalRange(pLo, pHi)) \(frac)") }
                // Negative side: -(k.f) with k <= -lo - 1 and k >= max(-hi, 0).
                let nLo = max(hi.map { -$0 } ?? 0, 0), nHi = lo.map { -$0 - 1 }
                if nHi.map({ $0 >= nLo }) ?? true { alts.append("\"-\" \(Self.naturalRange(nLo, nHi)) \(frac)") }
            }
            guard !alts.isEmpty else { throw GrammarError("\(path): no number lies within the bounds") }
            let n = fresh("\(name)-\(integer ? "int" : "num")")
            try add(n, alts.joined(separator: " | "))
            return n
        }

        /// Integers in [lo, hi] (nil: unbounded), written as JSON writes them (no leading zeros, "-0" never).
        static func integerRange(_ lo: Int?, _ hi: Int?) -> String {
            var alts: [String] = []
            // Negative values -k, k in [max(1, -hi), -lo].
            if lo.map({ $0 < 0 }) ?? true {
                let kLo = max(1, hi.map { -$0 } ?? 1), kHi = lo.map { -$0 }
                if kHi.map({ $0 >= kLo }) ?? true { alts.append("\"-\" \(naturalRange(kLo, kHi))") }
            }
            // Non-negative values in [max(lo, 0), hi].
            if hi.map({ $0 >= 0 }) ?? true {
                let a = max(lo ?? 0, 0)
                if hi.map({ $0 >= a }) ?? true { alts.append(naturalRange(a, hi)) }
            }
            return "( " + alts.joined(separator: " | ") + " )"
        }

        /// Naturals in [lo, hi] (hi nil: up to 16 digits) as a GBNF expression.
        static func naturalRange(_ lo: Int, _ hi: Int?) -> String {
            let maxDigits = 16
            var alts: [String] = []
            let loDigits = String(lo).count
            let top = hi.map { String($0).count } ?? maxDigits
            for len in loDigits...max(loDigits, top) {
                let a = len == loDigits ? String(lo) : "1" + String(repeating: "0", count: len - 1)
                let b: String
                if let h = hi, len == top { b = String(h) } else { b = String(repeating: "9", count: len) }
                if a.count == b.count && a <= b { alts += sameLength(Array(a.utf8).map { Int($0) - 48 }, Array(b.utf8).map { Int($0) - 48 }) }
            }
            return alts.count == 1 ? alts[0] : "( " + alts.joined(separator: " | ") + " )"
        }

        /// Alternatives for the digit strings of one length between a and b (a <= b, digit arrays).
        static func sameLength(_ a: [Int], _ b: [Int]) -> [String] {
            if a.isEmpty { return [""] }
            func cls(_ x: Int, _ y: Int) -> String { x == y ? "\"\(x)\"" : "[\(x)-\(y)]" }
            let restLen = a.count - 1
            let any = restLen == 0 ? "" : " [0-9]" + (restLen > 1 ? "{\(restLen)}" : "")
            if a.dropFirst().allSatisfy({ $0 == 0 }) && b.dropFirst().allSatisfy({ $0 == 9 }) {
                return [cls(a[0], b[0]) + any]
            }
            if a[0] == b[0] {
                return sameLength(Array(a.dropFirst()), Array(b.dropFirst())).map { "\"\(a[0])\" \($0)".trimmingSpace() }
            }
            var out: [String] = []
            let nines = Array(repeating: 9, count: restLen), zeros = Array(repeating: 0, count: restLen)
            out += sameLength(Array(a.dropFirst()), nines).map { "\"\(a[0])\" \($0)".trimmingSpace() }
            if a[0] + 1 <= b[0] - 1 { out.append(cls(a[0] + 1, b[0] - 1) + any) }
            out += sameLength(zeros, Array(b.dropFirst())).map { "\"\(b[0])\" \($0)".trimmingSpace() }
            return out.map { "( \($0) )" }
        }
    }
}

extension String {
    fileprivate func trimmingSpace() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    fileprivate func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
