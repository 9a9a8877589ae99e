// The JSON parser on its own: strict RFC 8259, bounded nesting, values kept as written.
import GemmaFormats
import Testing

@Suite struct JSONParserTests {
    @Test(arguments: ["{}", "[]", "null", "true", "-0.5e3", #"{"a":[1,2,{"b":"\u00e9\ud83d\ude00"}]}"#, " [ 1 , 2 ] "])
    func acceptsValidJSON(_ text: String) throws {
        _ = try JSONValue.parse(Array(text.utf8))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":}", "01", "1.", "tru", "\"\\x\"", "\"\u{01}\"", "{\"a\" 1}", "[1] 2",
                      "\"\\ud800\"", String(repeating: "[", count: 100) + String(repeating: "]", count: 100)])
    func refusesInvalidJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func serializesAndKeepsTypes() throws {
        let v = try JSONValue.parse(Array(#"{"n":1,"b":true,"f":1.5,"s":"a\"\n","z":null}"#.utf8))
        #expect(v["n"] == .number(1))
        #expect(v["b"] == .bool(true))
        #expect(v.serialized == #"{"n":1,"b":true,"f":1.5,"s":"a\"\n","z":null}"#)
    }
}
