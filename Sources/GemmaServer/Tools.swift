// Function calling (OpenAI's `tools`, `tool_choice`, `tool_calls` and `tool` messages) in the convention Google
// documents for Gemma 3 ("Function calling with Gemma", ai.google.dev/gemma/docs/capabilities/function-calling, the
// JSON variant): the functions are listed as JSON in the first user turn under an instruction to answer a call as
//     {"name": function name, "parameters": dictionary of argument name and its value}
// and nothing else. Gemma has no tool tokens, so a reply is a call when it has that shape. Here the shape is also
// enforced: the reply is constrained by a grammar whose call alternative is each function's name with its
// `parameters` schema (so arguments always validate), and with tool_choice "auto" by `call | text not starting with {`.
// A call the model made goes back into the prompt as the model's turn in that same JSON; tool results go in a user
// turn as ```tool_output blocks (the wrapping Google's Gemma agent guides use for results).
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaGrammar

/// The tools of one chat request.
struct ToolSet: Sendable {
    struct Function: Sendable {
        var name: String
        var description: String?
        var parameters: JSONValue
    }
    enum Choice: Sendable, Equatable { case auto, none, required, named(String) }

    var functions: [Function]
    var choice: Choice

    /// `tools` and `tool_choice` of a request (nil without tools; tool_choice without tools is refused unless "none").
    static func parse(_ f: RequestFields) throws(APIError) -> ToolSet? {
        var functions: [Function] = []
        if let t = f.value("tools") {
            guard case let .array(items) = t else { throw .invalid("'tools' must be an array.", param: "tools") }
            guard items.count <= 128 else { throw .invalid("'tools' may hold at most 128 functions.", param: "tools") }
            for (i, item) in items.enumerated() {
                let p = "tools[\(i)]"
                guard case .object = item else { throw .invalid("\(p) must be an object.", param: p) }
                guard item["type"] == .string("function") else {
                    throw .invalid("\(p).type must be 'function'.", param: "\(p).type")
                }
                guard let fn = item["function"], case .object = fn else {
                    throw .invalid("\(p).function is required and must be an object.", param: "\(p).function")
                }
                guard case let .string(name)? = fn["name"], !name.isEmpty, name.count <= 64,
                      name.unicodeScalars.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-" })
                else {
                    throw .invalid("\(p).function.name is required: 1 to 64 letters, digits, underscores or dashes.", param: "\(p).function.name")
                }
                guard !functions.contains(where: { $0.name == name }) else {
                    throw .invalid("\(p).function.name '\(name)' is defined twice.", param: "\(p).function.name")
                }
                var description: String? = nil
                if let d = fn["description"], d != .null {
                    guard case let .string(s) = d else { throw .invalid("\(p).function.description must be a string.", param: "\(p).function.description") }
                    description = s
                }
                var parameters: JSONValue = ["type": "object", "properties": .object([])]
                if let ps = fn["parameters"], ps != .null {
                    guard case .object = ps else { throw .invalid("\(p).function.parameters must be a JSON Schema object.", param: "\(p).function.parameters") }
                    parameters = ps
                }
                functions.append(Function(name: name, description: description, parameters: parameters))
            }
        }
        var choice = Choice.auto
        if let c = f.value("tool_choice") {
            switch c {
            case .string("auto"): choice = .auto
            case .string("none"): choice = .none
            case .string("required"): choice = .required
            case .object:
                guard c["type"] == .string("function"), case let .string(name)? = c["function"]?["name"] else {
                    throw .invalid("'tool_choice' must be 'auto', 'none', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}.", param: "tool_choice")
                }
                guard functions.contains(where: { $0.name == name }) else {
                    throw .invalid("'tool_choice' names '\(name)', which is not among the tools.", param: "tool_choice")
                }
                choice = .named(name)
            default:
                throw .invalid("'tool_choice' must be 'auto', 'none', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}.", param: "tool_choice")
            }
        }
        if functions.isEmpty {
            if choice == .auto || choice == .none { return nil }
            throw .invalid("'tool_choice' needs 'tools'.", param: "tool_choice")
        }
        return ToolSet(functions: functions, choice: choice)
    }

    /// Whether the reply may be a call.
    var active: Bool { choice != .none }

    /// The instruction and the function list, for the start of the first user turn.
    var instructions: String {
        let list: JSONValue = .array(functions.map { fn in
            var pairs: [(String, JSONValue)] = [("name", .string(fn.name))]
            if let d = fn.description { pairs.append(("description", .string(d))) }
            pairs.append(("parameters", fn.parameters))
            return .object(pairs)
        })
        return "You have access to functions. If you decide to invoke any of the function(s), you MUST put it in the format of\n"
            + "{\"name\": function name, \"parameters\": dictionary of argument name and its value}\n\n"
            + "You SHOULD NOT include any other text in the response if you call a function\n"
            + list.pretty(indent: 2)
    }

    /// The grammar of the reply: a call of one of the functions (the named one), or with "auto" a call or text that
    /// does not start with "{". A schema that cannot be compiled is a 400 naming its tool.
    func grammar() throws(APIError) -> Grammar? {
        guard active else { return nil }
        let chosen = functions.filter { if case let .named(n) = choice { $0.name == n } else { true } }
        var options: [JSONValue] = []
        for (i, fn) in chosen.enumerated() {
            // The parameters move into a wrapper schema: their local $refs ("#", "#/$defs/...") are rewritten to
            // point where the parameters now are.
            let at = chosen.count == 1 ? "#/properties/parameters" : "#/anyOf/\(i)/properties/parameters"
            options.append(["type": "object",
                            "properties": .object([("name", ["const": .string(fn.name)]), ("parameters", Self.rebase(fn.parameters, at))]),
                            "required": ["name", "parameters"], "additionalProperties": false])
        }
        let schema: JSONValue = options.count == 1 ? options[0] : ["anyOf": .array(options)]
        do {
            var gbnf = try JSONSchemaGrammar.gbnf(schema: schema)
            if choice == .auto {
                gbnf = gbnf.replacingFirst("root ::= ", with: "tool-call ::= ")
                gbnf = "root ::= tool-call | free-text\nfree-text ::= [^{] .*\n" + gbnf
            }
            return try Grammar(gbnf: gbnf)
        } catch {
            let which = chosen.count == 1 ? "tool '\(chosen[0].name)'" : "the tools"
            throw .invalid("The parameters of \(which) cannot be used: \(error.message)", param: "tools", code: "invalid_tool_schema")
        }
    }

    /// `schema` with every local `$ref` ("#" or "#/...") made relative to `base` instead of the document root.
    static func rebase(_ schema: JSONValue, _ base: String) -> JSONValue {
        switch schema {
        case let .object(pairs):
            return .object(pairs.map { k, v in
                if k == "$ref", case let .string(r) = v, r == "#" || r.hasPrefix("#/") { return (k, .string(base + r.dropFirst())) }
                return (k, rebase(v, base))
            })
        case let .array(items): return .array(items.map { rebase($0, base) })
        default: return schema
        }
    }

    /// The calls a reply makes: one JSON object {"name", "parameters"} naming one of the functions (nil when the
    /// reply is text).
    func calls(in text: String) -> [(name: String, arguments: String)]? {
        guard active, let v = try? JSONValue.parse(Array(text.utf8)), case .object = v,
              case let .string(name)? = v["name"], functions.contains(where: { $0.name == name }) else { return nil }
        let args = v["parameters"] ?? .object([])
        return [(name, args.serialized)]
    }

    /// An assistant message's tool_calls as the model's own turn text.
    static func callText(name: String, arguments: JSONValue) -> String {
        JSONValue.object([("name", .string(name)), ("parameters", arguments)]).serialized
    }
}

extension String {
    fileprivate func replacingFirst(_ a: String, with b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}
