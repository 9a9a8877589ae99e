// Grammars against hand-checked sentences (the GBNF and JSON Schema meanings, read from their specifications), and
// the trie-walk masks against the plain per-token test they stand in for, on a toy vocabulary and on Gemma's.
import Foundation
import GemmaFormats
import GemmaGrammar
import GemmaTestSupport
import GemmaTokenizer
import Testing

/// A trie of single characters, so that `accept(text:)`-style checks go through the token path too.
private let charTrie = TokenTrie(tokens: (0..<128).map { [UInt8($0)] })

private func matches(_ g: Grammar, _ text: String) -> Bool {
    var m = GrammarMatcher(g, trie: charTrie)
    return m.accept(text: text) && m.canEnd
}

private func schemaAccepts(_ schema: String, _ text: String) throws -> Bool {
    let g = try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array(schema.utf8)))
    return matches(g, text)
}

@Suite struct GBNFTests {
    @Test func literalsClassesAndRepetitions() throws {
        let g = try Grammar(gbnf: #"""
            root ::= "ab" [0-9]{2,3} tail
            tail ::= ( "x" | "yz" )* "!"?   # comment
            """#)
        for ok in ["ab12", "ab123", "ab12x", "ab12yzx!", "ab999!"] { #expect(matches(g, ok), "\(ok)") }
        for bad in ["ab1", "ab1234", "ab12y", "ab12!!", "b12", ""] { #expect(!matches(g, bad), "\(bad)") }
    }

    @Test func negatedClassesDotAndEscapes() throws {
        let g = try Grammar(gbnf: #"root ::= "\"" [^"\\\n]* "\"" . "\x41" [\u00e9-\u00ea]"#)
        #expect(matches(g, "\"hi there\"!Aé"))
        #expect(matches(g, "\"\"\u{1F600}Aê"))
        #expect(!matches(g, "\"a\"b\"!Aé"))
        #expect(!matches(g, "\"x\"!Ae"))
    }

    @Test func rulesSpanLinesAndNestedGroups() throws {
        let g = try Grammar(gbnf: """
            root ::= item
              ( "," item )*
            item ::= ( "a" ( "b" | "c" )+ )
                   | "d"
            """)
        for ok in ["ab", "acb,d", "d,d,abc"] { #expect(matches(g, ok), "\(ok)") }
        for bad in ["a", "ab,", "e", "ab d"] { #expect(!matches(g, bad), "\(bad)") }
    }

    @Test func errorsNameTheProblem() {
        func message(_ text: String) -> String {
            do { _ = try Grammar(gbnf: text); return "" } catch { return error.message }
        }
        #expect(message("root ::= a\na ::= a \"x\"").contains("left-recursive"))
        #expect(message("root ::= x*\nx ::= \"a\"?").contains("left-recursive"))  // nullable inside *: loops
        #expect(message("root ::= missing").contains("'missing' is used but never defined"))
        #expect(message("start ::= \"a\"").contains("no 'root' rule"))
        #expect(message("root ::= \"abc").contains("unterminated string"))
        #expect(message("root ::= [z-a]").contains("out of order"))
        #expect(message("root ::= \"a\"{3,2}").contains("max below min"))
        #expect(message("root ::= \"a\"\nroot ::= \"b\"").contains("defined twice"))
    }
}

@Suite struct JSONSchemaTests {
    @Test func objectsWithRequiredAndOptionalProperties() throws {
        let s = #"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"],"additionalProperties":false}"#
        for ok in [#"{"b":"x"}"#, #"{"a":1,"b":"x"}"#, #"{"a": -5, "b": "", "c": true}"#, #"{"b":"x","c":false}"#,
                   "{\n  \"b\": \"q\\n\\u00e9\"\n}"] {
            #expect(try schemaAccepts(s, ok), "\(ok)")
        }
        for bad in [#"{}"#, #"{"a":1}"#, #"{"b":"x",}"#, #"{"b":"x","d":1}"#, #"{"c":true,"b":"x"}"#, #"{"b":1}"#,
                    #"{"a":01,"b":"x"}"#, #"{"b":"x""#, "{\"b\":\"a\nb\"}"] {
            #expect(try !schemaAccepts(s, bad), "\(bad)")
        }
    }

    @Test func additionalPropertiesByDefault() throws {
        let s = #"{"type":"object","properties":{"a":{"type":"null"}}}"#
        #expect(try schemaAccepts(s, #"{"a":null,"z":[1,{"y":2.5e3}]}"#))
        #expect(try schemaAccepts(s, #"{}"#))
        #expect(try schemaAccepts(s, #"{"z":1}"#))
        #expect(try !schemaAccepts(s, #"{"a":0}"#))
    }

    @Test func arraysEnumsConstAndNullable() throws {
        let s = #"{"type":"array","items":{"enum":["red","green",3,null]},"minItems":1,"maxItems":3}"#
        for ok in [#"["red"]"#, #"[3, null, "green"]"#] { #expect(try schemaAccepts(s, ok), "\(ok)") }
        for bad in [#"[]"#, #"["blue"]"#, #"[3,3,3,3]"#, #"["red",]"#] { #expect(try !schemaAccepts(s, bad), "\(bad)") }
        #expect(try schemaAccepts(#"{"const":{"k":[true]}}"#, #"{"k":[true]}"#))
        #expect(try !schemaAccepts(#"{"const":{"k":[true]}}"#, #"{"k":[false]}"#))
        #expect(try schemaAccepts(#"{"type":"string","nullable":true}"#, "null"))
        #expect(try schemaAccepts(#"{"type":["integer","null"]}"#, "null"))
        #expect(try !schemaAccepts(#"{"type":["integer","null"]}"#, "1.5"))
        #expect(try schemaAccepts(#"{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false}"#, #"[1, "a"]"#))
        #expect(try !schemaAccepts(#"{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false}"#, #"[1]"#))
    }

    @Test func stringLengthsAndFormats() throws {
        let s = #"{"type":"string","minLength":2,"maxLength":4}"#
        for ok in [#""ab""#, #""abcd""#, #""\n\"""#] { #expect(try schemaAccepts(s, ok), "\(ok)") }
        for bad in [#""a""#, #""abcde""#] { #expect(try !schemaAccepts(s, bad), "\(bad)") }
        #expect(try schemaAccepts(#"{"type":"string","format":"date"}"#, #""2026-12-07""#))
        #expect(try !schemaAccepts(#"{"type":"string","format":"date"}"#, #""2026-13-07""#))
        #expect(try schemaAccepts(#"{"type":"string","format":"date-time"}"#, #""2026-12-07T08:30:00Z""#))
        #expect(try schemaAccepts(#"{"type":"string","format":"uuid"}"#, #""123e4567-e89b-12d3-a456-426614174000""#))
        #expect(try schemaAccepts(#"{"type":"string","format":"email"}"#, #""a.b@example.com""#))
    }

    /// Every integer in a window around the bounds, against the bounds themselves.
    @Test func integerBoundsExactly() throws {
        let cases: [(String, ClosedRange<Int>)] = [
            (#""minimum":0,"maximum":100"#, 0...100), (#""minimum":-37,"maximum":1205"#, -37...1205),
            (#""minimum":-250,"maximum":-3"#, -250...(-3)), (#""exclusiveMinimum":9,"exclusiveMaximum":200"#, 10...199),
            (#""minimum":17"#, 17...Int.max), (#""maximum":-8"#, Int.min...(-8)),
        ]
        for (bounds, range) in cases {
            let g = try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array("{\"type\":\"integer\",\(bounds)}".utf8)))
            for v in -1300...1300 { #expect(matches(g, String(v)) == range.contains(v), "\(bounds): \(v)") }
            #expect(!matches(g, "007"))
        }
    }

    @Test func numberBounds() throws {
        let g = try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array(#"{"type":"number","minimum":-2,"maximum":3}"#.utf8)))
        for ok in ["-2", "-1.99", "-0.5", "0", "2.75", "3", "0.001"] { #expect(matches(g, ok), "\(ok)") }
        for bad in ["-2.01", "3.5", "4", "-3", "1e2"] { #expect(!matches(g, bad), "\(bad)") }
    }

    @Test func refsAndDefsIncludingRecursion() throws {
        let s = ##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v","kids"],"additionalProperties":false}},"$ref":"#/$defs/node"}"##
        #expect(try schemaAccepts(s, #"{"v":1,"kids":[{"v":2,"kids":[]},{"v":3,"kids":[{"v":4,"kids":[]}]}]}"#))
        #expect(try !schemaAccepts(s, #"{"v":1,"kids":[{"v":2}]}"#))
        let any = #"{"anyOf":[{"type":"integer"},{"type":"object","properties":{"x":{"type":"string"}},"required":["x"],"additionalProperties":false}]}"#
        #expect(try schemaAccepts(any, "12"))
        #expect(try schemaAccepts(any, #"{"x":"y"}"#))
        #expect(try !schemaAccepts(any, #""12""#))
    }

    @Test func unsupportedKeywordsAreNamed() throws {
        for (schema, keyword) in [(#"{"type":"string","pattern":"^a+$"}"#, "pattern"),
                                  (#"{"type":"object","patternProperties":{}}"#, "patternProperties"),
                                  (#"{"type":"number","multipleOf":3}"#, "multipleOf"),
                                  (#"{"$ref":"http://x/y"}"#, "local $ref"),
                                  (#"{"type":"integer","minimum":0.5}"#, "minimum"),
                                  (#"{"type":"string","format":"hostname"}"#, "hostname"),
                                  (#"{"type":"array","maxItems":100000}"#, "maxItems")] {
            do {
                _ = try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array(schema.utf8)))
                Issue.record("\(schema) was accepted")
            } catch let e as GrammarError {
                #expect(e.message.contains(keyword), "\(e.message)")
            }
        }
    }

    @Test func anyJSONObjectMode() throws {
        let g = try Grammar(gbnf: JSONSchemaGrammar.anyJSON(objectOnly: true))
        #expect(matches(g, #"{"a":[1,2,{"b":null}],"c":"\u00e9"}"#))
        #expect(!matches(g, "[1]"))
        #expect(!matches(g, #"{"a":}"#))
    }
}

/// Hostile or odd inputs (a review of the first version found each): refused clearly or bounded, never a crash.
@Suite struct HostileGrammarTests {
    func message(_ make: () throws -> Any) -> String {
        do { _ = try make(); return "" } catch let e as GrammarError { return e.message } catch { return "\(error)" }
    }

    @Test func boundedParsingAndSize() throws {
        #expect(message { try Grammar(gbnf: "root ::= " + String(repeating: "(", count: 100_000)) }.contains("nested more than"))
        #expect(message { try Grammar(gbnf: #"root ::= (("a"{1000}){1000}){1000}"#) }.contains("too large"))
        let key = String(repeating: "k", count: 5000)
        #expect(message { try JSONSchemaGrammar.grammar(schema: .object([("type", "object"), ("properties", .object([(key, .object([]))]))])) }
            .contains("longer than 256"))
        // Empty alternatives that multiply: compiled, matched, quickly.
        let g = try Grammar(gbnf: #"root ::= ( "" | "" ){40} "a""#)
        #expect(matches(g, "a"))
        // An ambiguous grammar doubles its stacks per space: capped, so the mask over a vocabulary with long runs of
        // spaces finishes and allows only what the grammar allows.
        let amb = try Grammar(gbnf: #"root ::= q"# + "\n" + #"q ::= " " q "b" | " " q "c" | "x""#)
        let trie = TokenTrie(tokens: [Array(String(repeating: " ", count: 31).utf8), Array("x".utf8), Array("b".utf8)])
        let m = GrammarMatcher(amb, trie: trie)
        #expect(m.mask().contains(0) && m.mask().contains(1) && !m.mask().contains(2))
    }

    @Test func schemaKeywordsAreNotSilentlyDropped() throws {
        func schema(_ text: String) -> String { message { try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array(text.utf8))) } }
        #expect(schema(#"{"type":"object","properties":{"a":{}},"anyOf":[{"required":["a"]}]}"#).contains("'anyOf' together with"))
        #expect(schema(##"{"$ref":"#","minimum":3}"##).contains("'$ref' together with"))
        #expect(schema(#"{"type":[]}"#).contains("empty list"))
        #expect(schema(#"{"enum":["a","b"],"type":"string"}"#) == "")  // type beside enum is fine
        // No type: the keywords say which.
        #expect(try !schemaAccepts(#"{"required":["a"]}"#, "42"))
        #expect(try schemaAccepts(#"{"maxLength":3}"#, #""abc""#))
        #expect(try !schemaAccepts(#"{"maxLength":3}"#, #""abcd""#))
        // Both lower bounds: the stricter applies to fractions too.
        #expect(try !schemaAccepts(#"{"type":"number","minimum":0,"exclusiveMinimum":5}"#, "0.5"))
        #expect(try schemaAccepts(#"{"type":"number","minimum":0,"exclusiveMinimum":5}"#, "5.5"))
        // A required key that is not declared follows additionalProperties.
        #expect(try !schemaAccepts(#"{"required":["x"],"additionalProperties":{"type":"integer"}}"#, #"{"x":"s"}"#))
        #expect(try schemaAccepts(#"{"required":["x"],"additionalProperties":{"type":"integer"}}"#, #"{"x":3}"#))
        // A property name with a quote: other keys are written escaped, never as a bare quote.
        #expect(try !schemaAccepts(#"{"type":"object","properties":{"a\"b":{"type":"null"}}}"#, #"{"a"":1}"#))
        #expect(try schemaAccepts(#"{"type":"object","properties":{"a\"b":{"type":"null"}}}"#, #"{"a\"b":null}"#))
        // nullable beside $ref.
        #expect(try schemaAccepts(##"{"$defs":{"n":{"type":"integer"}},"$ref":"#/$defs/n","nullable":true}"##, "null"))
    }
}

@Suite struct MaskTests {
    /// The trie walk must allow exactly the tokens that the per-token walk allows, in every state a random valid
    /// text passes through.
    private func checkMasks(_ g: Grammar, _ trie: TokenTrie, text: String, tokensToCheck: [Int]) {
        var m = GrammarMatcher(g, trie: trie)
        var states = 0
        for c in text.unicodeScalars {
            let mask = m.mask()
            for t in tokensToCheck {
                let bit = mask.contains(t)
                if let ids = mask.ids, ids.contains(Int32(t)) != bit { Issue.record("token \(t): sparse list disagrees"); return }
                if bit != m.allows(t) { Issue.record("token \(t) at state \(states): mask \(bit)"); return }
            }
            let moved = m.accept(text: String(c))
            #expect(moved)
            states += 1
        }
        #expect(m.canEnd)
    }

    @Test func toyVocabulary() throws {
        var tokens: [[UInt8]?] = (0..<128).map { [UInt8($0)] }
        for s in ["{\"", "\":", "\": \"", "true", "tr", "ue}", "}", "\"}", "12", "-3", "\", \"", "é", "ab\"c", ""] { tokens.append(Array(s.utf8)) }
        tokens.append(nil)
        tokens.append([0xC3])  // half a character: never allowed
        let trie = TokenTrie(tokens: tokens)
        let g = try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array(#"{"type":"object","properties":{"ab":{"type":"boolean"},"c":{"type":"string"}},"required":["ab"]}"#.utf8)))
        checkMasks(g, trie, text: #"{"ab": true, "c": "x\"é"}"#, tokensToCheck: Array(0..<tokens.count))
        let m = GrammarMatcher(g, trie: trie)
        let halfCharacter = m.allows(tokens.count - 1)
        #expect(!halfCharacter)
    }

    @Test func gemmaVocabulary() throws {
        guard let path = TestPaths.requireModel() else { return }
        let tk = try Tokenizer(modelPath: path)
        let trie = TokenTrie(tokens: (0..<tk.vocabulary.count).map { try? tk.decodeBytes([TokenID($0)]) })
        var rng = SplitMix64(seed: 7)
        let sample = (0..<3000).map { _ in Int.random(in: 0..<tk.vocabulary.count, using: &rng) } + (0..<300).map { $0 }
        let g = try JSONSchemaGrammar.grammar(schema: JSONValue.parse(Array(#"{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"enum":["a b","c"]}}},"required":["name","age","tags"],"additionalProperties":false}"#.utf8)))
        checkMasks(g, trie, text: #"{"name": "Zoë \"Z\"", "age": 42, "tags": ["a b", "c"]}"#, tokensToCheck: sample)
    }
}
