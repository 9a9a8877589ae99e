// Parsing and validating OpenAI request bodies (POST /v1/chat/completions and /v1/completions) into prompts and
// generation parameters. Chat content may hold `image_url` parts (a data: URL or an http(s) URL, also as the bare
// string some clients send); their images are read and encoded afterwards (ImageInput.swift), so the parser only
// checks their shape and sizes the prompt with one view per image. Every field is checked for its JSON type and range and a bad one is refused with a
// 400 that names it (`param`), as OpenAI does. Sampling knobs OpenAI lacks (top_k, min_p, repeat_penalty) are taken
// under llama.cpp's server names; anything unset keeps llama.cpp's defaults.
import GemmaFormats
import GemmaGenerate
import GemmaGrammar
import GemmaModel
import GemmaTokenizer

/// A validated generation request.
public struct GenerationRequest: Sendable {
    public var model: String?
    /// The prompt; for a chat request with images, its text-only stand-in until `images` are encoded.
    public var prompt: Prompt
    /// The messages of a chat request with images (nil without): the prompt is built from them once the images are
    /// read and encoded.
    public var images: ImageMessages?
    public var parameters: GenerationParameters
    public var stream: Bool
    /// stream_options.include_usage: a last chunk with the token counts.
    public var includeUsage: Bool
    /// Whether to report log-probabilities (and `parameters.topLogprobs` alternatives).
    public var logprobs: Bool
    /// The chat request's tools (function calling), if any.
    var tools: ToolSet? = nil
    /// /v1/completions' echo: the prompt comes back before the completion, with its tokens' log-probabilities when
    /// `logprobs` is set (each prompt token's under the positions before it; the first has none).
    var echo = false
    /// OpenAI's `n`: continuations of one prefill, generated one after another in the request's slot.
    var choices = 1
}

/// Typed access to the fields of a request object, throwing OpenAI-style 400s.
struct RequestFields {
    let object: JSONValue

    init(_ body: JSONValue) throws(APIError) {
        guard case .object = body else { throw .invalid("The request body must be a JSON object, not \(body.typeName).") }
        object = body
    }

    /// A present, non-null value.
    func value(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case let .bool(b) = v else { throw .invalid("'\(key)' must be a boolean, got \(v.typeName).", param: key) }
        return b
    }

    func number(_ key: String, _ range: ClosedRange<Double>) throws(APIError) -> Double? {
        guard let v = value(key) else { return nil }
        guard case let .number(x) = v else { throw .invalid("'\(key)' must be a number, got \(v.typeName).", param: key) }
        guard range.contains(x) else {
            throw .invalid("'\(key)' is \(x); it must be between \(range.lowerBound) and \(range.upperBound).", param: key)
        }
        return x
    }

    func int(_ key: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = value(key) else { return nil }
        guard case let .number(x) = v, x == x.rounded(), abs(x) < 9.0e15 else {
            throw .invalid("'\(key)' must be an integer, got \(v == .null ? "null" : v.typeName == "number" ? "a fraction" : v.typeName).", param: key)
        }
        let i = Int(x)
        guard range.contains(i) else {
            throw .invalid("'\(key)' is \(i); it must be between \(range.lowerBound) and \(range.upperBound).", param: key)
        }
        return i
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw .invalid("'\(key)' must be a string, got \(v.typeName).", param: key) }
        return s
    }
}

/// What the parser needs from the loaded model.
struct PromptContext {
    let tokenizer: Tokenizer
    let contextLength: Int
    let vocabSize: Int
    /// The control tokens around images and the soft tokens of one view; nil for a text-only model.
    var imageTokens: ImageTokens? = nil
    var softTokensPerImage = 0
    /// What a request's unset sampling fields take: the model's generation_config.json values when it ships them,
    /// else llama.cpp's with OpenAI's temperature 1.
    var samplingDefaults: SamplingParameters = {
        var s = SamplingParameters()
        s.temperature = 1
        return s
    }()
    /// Binds a grammar to the model's vocabulary (structured output); nil: refused.
    var constrain: (@Sendable (Grammar) -> TokenConstraint)? = nil
}

enum RequestParser {
    /// POST /v1/chat/completions.
    static func chat(_ body: JSONValue, _ ctx: PromptContext) throws(APIError) -> GenerationRequest {
        let f = try RequestFields(body)
        guard let messagesValue = f.value("messages") else { throw .invalid("'messages' is required.", param: "messages") }
        guard case let .array(items) = messagesValue else {
            throw .invalid("'messages' must be an array, got \(messagesValue.typeName).", param: "messages")
        }
        guard !items.isEmpty else { throw .invalid("'messages' must contain at least one message.", param: "messages") }
        let tools = try ToolSet.parse(f)
        var messages: [RequestMessage] = []
        // Tool calls of the last assistant message still waiting for their 'tool' answer, and where they were made.
        var pending: [String] = [], pendingAt = ""
        var lastWasToolOutput = false
        for (i, item) in items.enumerated() {
            let param = "messages[\(i)]"
            guard case .object = item else { throw .invalid("\(param) must be an object, got \(item.typeName).", param: param) }
            guard case let .string(roleName)? = item["role"] else {
                throw .invalid("\(param).role is required and must be a string.", param: "\(param).role")
            }
            if roleName == "tool" {
                guard case let .string(id)? = item["tool_call_id"] else {
                    throw .invalid("\(param).tool_call_id is required and must be a string.", param: "\(param).tool_call_id")
                }
                guard let k = pending.firstIndex(of: id) else {
                    throw .invalid(pendingAt.isEmpty
                        ? "\(param): a 'tool' message must answer a tool call of the assistant message before it."
                        : "\(param): tool_call_id '\(id)' is not an unanswered call of \(pendingAt).",
                        param: "\(param).tool_call_id", code: "tool_message_out_of_order")
                }
                pending.remove(at: k)
                let parts = try content(item["content"], param: "\(param).content", optional: true)
                if let j = parts.firstIndex(where: \.isImage) {
                    throw .invalid("\(param).content[\(j)]: images are accepted in user messages only.", param: "\(param).content[\(j)]")
                }
                let block = "```tool_output\n" + parts.map(\.text).joined() + "\n```"
                if lastWasToolOutput { messages[messages.count - 1].parts.append(.text("\n" + block)) }
                else { messages.append(RequestMessage(role: .user, parts: [.text(block)])) }
                lastWasToolOutput = true
                continue
            }
            if !pending.isEmpty {
                throw .invalid("\(param): the tool calls of \(pendingAt) (\(pending.joined(separator: ", "))) need their 'tool' messages first.",
                               param: param, code: "tool_message_out_of_order")
            }
            lastWasToolOutput = false
            let role: ChatMessage.Role
            switch roleName {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant", "model": role = .model
            default:
                throw .invalid("\(param).role '\(roleName)' is not supported (system, developer, user, assistant, tool).",
                               param: "\(param).role")
            }
            var calls: [String] = []
            if role == .model, let tc = item["tool_calls"], tc != .null {
                guard case let .array(list) = tc else { throw .invalid("\(param).tool_calls must be an array.", param: "\(param).tool_calls") }
                for (j, call) in list.enumerated() {
                    let cp = "\(param).tool_calls[\(j)]"
                    guard case let .string(id)? = call["id"], case let .string(name)? = call["function"]?["name"],
                          case let .string(arguments)? = call["function"]?["arguments"] else {
                        throw .invalid("\(cp) needs an id, function.name and function.arguments (a string of JSON).", param: cp)
                    }
                    guard let args = try? JSONValue.parse(Array(arguments.utf8)) else {
                        throw .invalid("\(cp).function.arguments is not valid JSON.", param: "\(cp).function.arguments")
                    }
                    calls.append(ToolSet.callText(name: name, arguments: args))
                    pending.append(id)
                }
                pendingAt = param
            }
            var parts = try content(item["content"], param: "\(param).content", optional: role == .model)
            if role != .user, let j = parts.firstIndex(where: \.isImage) {
                throw .invalid("\(param).content[\(j)]: images are accepted in user messages only, not in '\(roleName)' messages.",
                               param: "\(param).content[\(j)]")
            }
            if !calls.isEmpty {
                let before = parts.map(\.text).joined()
                parts = [.text((before.isEmpty ? "" : before + "\n") + calls.joined(separator: "\n"))]
            }
            messages.append(RequestMessage(role: role, parts: parts))
        }
        if !pending.isEmpty {
            throw .invalid("The tool calls of \(pendingAt) (\(pending.joined(separator: ", "))) have no 'tool' messages.",
                           param: "messages", code: "tool_message_out_of_order")
        }
        if let tools, tools.active {
            messages.insert(RequestMessage(role: .system, parts: [.text(tools.instructions)]), at: 0)
        }
        guard messages.contains(where: { $0.role == .user || $0.role == .system }) else {
            throw .invalid("'messages' needs a user or system message.", param: "messages")
        }
        let panAndScan = try f.bool("pan_and_scan") ?? false
        var request: GenerationRequest
        if let first = messages.lazy.flatMap({ $0.parts }).first(where: \.isImage), case let .image(_, param) = first {
            guard let imageTokens = ctx.imageTokens else {
                throw .invalid("This model reads no images (it has no vision encoder; Gemma 3 270M and 1B are text-only): remove the image_url parts or serve a 4B, 12B or 27B model.",
                               param: param, code: "images_not_supported")
            }
            let pending = ImageMessages(messages: messages, panAndScan: panAndScan)
            // Sized with one view per image (Pan & Scan crops are counted once the images are read).
            let sized = pending.prompt(tokenizer: ctx.tokenizer, imageTokens: imageTokens, softTokens: ctx.softTokensPerImage)
            request = try common(f, prompt: sized, ctx)
            request.images = pending
        } else {
            let chat = messages.map { ChatMessage($0.role, $0.parts.map(\.text).joined()) }
            request = try common(f, prompt: Prompt(tokens: ChatTemplate.tokens(chat, tokenizer: ctx.tokenizer)), ctx)
        }
        if let tools, let grammar = try tools.grammar() {
            guard request.parameters.constraint == nil else {
                throw .invalid("'response_format', 'json_schema' or 'grammar' cannot be combined with tools (use tool_choice 'none').",
                               param: "tools")
            }
            guard let constrain = ctx.constrain else { throw .invalid("Tools are not available on this server.", param: "tools") }
            request.parameters.constraint = constrain(grammar)
        }
        request.tools = tools
        if let lp = try f.bool("logprobs") { request.logprobs = lp }
        if let top = try f.int("top_logprobs", 0...20) {
            guard request.logprobs else { throw .invalid("'top_logprobs' requires 'logprobs' to be true.", param: "top_logprobs") }
            request.parameters.topLogprobs = top
        } else if request.logprobs {
            request.parameters.topLogprobs = 0
        }
        return request
    }

    /// POST /v1/completions.
    static func completion(_ body: JSONValue, _ ctx: PromptContext) throws(APIError) -> GenerationRequest {
        let f = try RequestFields(body)
        guard let prompt = f.value("prompt") else { throw .invalid("'prompt' is required.", param: "prompt") }
        let tokens: [Int]
        switch prompt {
        case let .string(s):
            tokens = ctx.tokenizer.encode(s, addSpecial: true, parseSpecial: true).map(Int.init)
        case let .array(items):
            if items.count == 1, case let .string(s) = items[0] {
                tokens = ctx.tokenizer.encode(s, addSpecial: true, parseSpecial: true).map(Int.init)
            } else if !items.isEmpty, items.allSatisfy({ if case .number = $0 { true } else { false } }) {
                var ids: [Int] = []
                for item in items {
                    guard case let .number(x) = item, x == x.rounded(), x >= 0, x < Double(ctx.vocabSize) else {
                        throw .invalid("'prompt' token ids must be integers in 0..<\(ctx.vocabSize).", param: "prompt")
                    }
                    ids.append(Int(x))
                }
                tokens = ids
            } else if items.contains(where: { $0["type"] != nil }) {
                throw .invalid("/v1/completions takes text only ('prompt' holds content parts); send images to /v1/chat/completions as image_url parts of a user message.",
                               param: "prompt", code: "images_not_supported")
            } else if items.count > 1 {
                throw .invalid("Only one prompt per request is supported ('prompt' has \(items.count)).", param: "prompt")
            } else {
                throw .invalid("'prompt' must be a string, an array of one string, or an array of token ids.", param: "prompt")
            }
        default:
            throw .invalid("'prompt' must be a string or an array, got \(prompt.typeName).", param: "prompt")
        }
        let echo = try f.bool("echo") ?? false
        if f.value("suffix") != nil { throw .invalid("'suffix' is not supported.", param: "suffix") }
        if f.value("pan_and_scan") != nil {
            throw .invalid("'pan_and_scan' applies to images, which /v1/completions does not take; use /v1/chat/completions.",
                           param: "pan_and_scan")
        }
        var request = try common(f, prompt: Prompt(tokens: tokens), ctx, allowsNoTokens: echo)
        request.echo = echo
        if echo && request.choices > 1 { throw .invalid("'echo' with 'n' above 1 is not supported.", param: "n") }
        if let n = try f.int("logprobs", 0...20) {
            request.logprobs = true
            request.parameters.topLogprobs = n
        }
        return request
    }

    /// The parts of a message's content: a string (one text part), or an array of `text` and `image_url` parts.
    static func content(_ v: JSONValue?, param: String, optional: Bool) throws(APIError) -> [RequestPart] {
        switch v {
        case let .string(s)?: return [.text(s)]
        case let .array(parts)?:
            var out: [RequestPart] = []
            for (j, part) in parts.enumerated() {
                let p = "\(param)[\(j)]"
                guard case let .string(type)? = part["type"] else { throw .invalid("\(p) must be an object with a 'type'.", param: p) }
                switch type {
                case "text":
                    guard case let .string(t)? = part["text"] else { throw .invalid("\(p).text must be a string.", param: "\(p).text") }
                    out.append(.text(t))
                case "image_url":
                    out.append(.image(url: try imageURL(part["image_url"], param: "\(p).image_url"), param: p))
                default:
                    throw .invalid("\(p): parts of type '\(type)' are not supported ('text' and 'image_url' are).", param: p)
                }
            }
            return out
        case nil, .null?:
            if optional { return [] }
            throw .invalid("\(param) is required.", param: param)
        case let other?:
            throw .invalid("\(param) must be a string or an array of parts, got \(other.typeName).", param: param)
        }
    }

    /// An image_url part's URL: `{"url": "...", "detail": ...}` (OpenAI's form; detail is accepted and ignored: every
    /// image is seen at the model's resolution) or the bare string. Only data: and http(s) URLs: a server never reads
    /// its own files for a client.
    static func imageURL(_ v: JSONValue?, param: String) throws(APIError) -> String {
        let url: String
        switch v {
        case let .string(s)?: url = s
        case let object? where object.typeName == "object":
            guard case let .string(s)? = object["url"] else {
                throw .invalid("\(param).url is required and must be a string (a data: URL or an http(s) URL).", param: "\(param).url")
            }
            if let d = object["detail"], d != .null {
                guard case .string = d else { throw .invalid("\(param).detail must be a string.", param: "\(param).detail") }
            }
            url = s
        default:
            throw .invalid("\(param) must be an object with a 'url' (or the URL as a string), got \(v?.typeName ?? "nothing").", param: param)
        }
        let scheme = url.prefix(8).lowercased()
        guard scheme.hasPrefix("data:") || scheme.hasPrefix("http://") || scheme.hasPrefix("https://") else {
            let shown = url.isEmpty ? "an empty string" : "'\(url.prefix(40))\(url.count > 40 ? "..." : "")'"
            throw .invalid("\(param): the image URL is \(shown); it must be a data: URL (data:image/png;base64,...) or an http(s) URL.",
                           param: param, code: "invalid_image_url")
        }
        return url
    }

    /// Fields both endpoints share.
    /// `allowsNoTokens`: max_tokens 0 is allowed (completions with echo score the prompt only).
    static func common(_ f: RequestFields, prompt: Prompt, _ ctx: PromptContext, allowsNoTokens: Bool = false) throws(APIError) -> GenerationRequest {
        var model: String? = nil
        if f.value("model") != nil { model = try f.string("model") }
        let choices = try f.int("n", 1...16) ?? 1
        var p = GenerationParameters()
        var s = ctx.samplingDefaults
        if let t = try f.number("temperature", 0...2) { s.temperature = Float(t) }
        if let x = try f.number("top_p", 0...1) { s.topP = x == 0 ? Float.leastNonzeroMagnitude : Float(x) }
        if let k = try f.int("top_k", 0...Int(Int32.max)) { s.topK = k }
        if let x = try f.number("min_p", 0...1) { s.minP = Float(x) }
        if let x = try f.number("presence_penalty", -2...2) { s.presencePenalty = Float(x) }
        if let x = try f.number("frequency_penalty", -2...2) { s.frequencyPenalty = Float(x) }
        if let x = try f.number("repeat_penalty", 0.000001...100) { s.repeatPenalty = Float(x) }
        if let seed = try f.int("seed", Int.min...Int.max) { s.seed = UInt64(bitPattern: Int64(seed)) }
        else { s.seed = UInt64.random(in: 0...UInt64.max) }
        if let bias = f.value("logit_bias") {
            guard case let .object(pairs) = bias else {
                throw .invalid("'logit_bias' must be an object mapping token ids to numbers.", param: "logit_bias")
            }
            for (key, value) in pairs {
                guard let id = Int(key), id >= 0, id < ctx.vocabSize else {
                    throw .invalid("'logit_bias' key '\(key)' is not a token id in 0..<\(ctx.vocabSize).", param: "logit_bias")
                }
                guard case let .number(b) = value, (-100...100).contains(b) else {
                    throw .invalid("'logit_bias' values must be numbers between -100 and 100.", param: "logit_bias")
                }
                s.logitBias[id] = b == -100 ? -.infinity : Float(b)
            }
        }
        p.sampling = s
        let legacyMax = try f.int("max_tokens", (allowsNoTokens ? 0 : 1)...Int(Int32.max))
        let maxTokens = try f.int("max_completion_tokens", (allowsNoTokens ? 0 : 1)...Int(Int32.max)) ?? legacyMax
        p.maxTokens = maxTokens ?? ctx.contextLength
        if let stop = f.value("stop") {
            switch stop {
            case let .string(x): p.stopStrings = x.isEmpty ? [] : [x]
            case let .array(items):
                guard items.count <= 16 else { throw .invalid("'stop' may hold at most 16 strings.", param: "stop") }
                for item in items {
                    guard case let .string(x) = item else { throw .invalid("'stop' must be a string or an array of strings.", param: "stop") }
                    if !x.isEmpty { p.stopStrings.append(x) }
                }
            default: throw .invalid("'stop' must be a string or an array of strings, got \(stop.typeName).", param: "stop")
            }
        }
        let stream = try f.bool("stream") ?? false
        var includeUsage = false
        if let options = f.value("stream_options") {
            guard case .object = options else { throw .invalid("'stream_options' must be an object.", param: "stream_options") }
            if let u = options["include_usage"], u != .null {
                guard case let .bool(b) = u else {
                    throw .invalid("'stream_options.include_usage' must be a boolean.", param: "stream_options.include_usage")
                }
                includeUsage = b
            }
        }
        p.constraint = try constraint(f, ctx)
        try checkLength(prompt, ctx)
        var request = GenerationRequest(model: model, prompt: prompt, images: nil, parameters: p, stream: stream,
                                        includeUsage: includeUsage, logprobs: false)
        request.choices = choices
        return request
    }

    /// Structured output: OpenAI's `response_format` (`text`, `json_object`, `json_schema` with `json_schema.schema`;
    /// llama.cpp's `json_object` with a `schema` too), or llama-server's top-level `json_schema` (a schema) and
    /// `grammar` (GBNF). One at most; a schema or grammar that cannot be compiled is a 400 naming what is wrong.
    static func constraint(_ f: RequestFields, _ ctx: PromptContext) throws(APIError) -> TokenConstraint? {
        var grammar: Grammar? = nil
        var param = "response_format"
        func compile(_ make: () throws(GrammarError) -> Grammar) throws(APIError) {
            guard grammar == nil else {
                throw .invalid("Only one of 'response_format', 'json_schema' and 'grammar' may constrain the output.", param: param)
            }
            do { grammar = try make() } catch {
                throw .invalid("\(param): \(error.message)", param: param, code: "invalid_grammar")
            }
        }
        func schema(_ v: JSONValue) throws(APIError) {
            if v == .object([]) { try compile { () throws(GrammarError) in try Grammar(gbnf: JSONSchemaGrammar.anyJSON(objectOnly: true)) } }
            else { try compile { () throws(GrammarError) in try JSONSchemaGrammar.grammar(schema: v) } }
        }
        if let rf = f.value("response_format") {
            guard case .object = rf, case let .string(type)? = rf["type"] else {
                throw .invalid("'response_format' must be an object with a string 'type'.", param: param)
            }
            switch type {
            case "text": break
            case "json_object":
                if let s = rf["schema"], s != .null { try schema(s) }
                else { try compile { () throws(GrammarError) in try Grammar(gbnf: JSONSchemaGrammar.anyJSON(objectOnly: true)) } }
            case "json_schema":
                param = "response_format.json_schema"
                guard let js = rf["json_schema"], case .object = js else {
                    throw .invalid("'response_format.json_schema' is required for type json_schema and must be an object.", param: param)
                }
                guard let s = js["schema"], s != .null else {
                    throw .invalid("'response_format.json_schema.schema' is required.", param: "response_format.json_schema.schema")
                }
                param = "response_format.json_schema.schema"
                try schema(s)
            default:
                throw .invalid("'response_format.type' '\(type)' is not supported (text, json_object, json_schema).",
                               param: "response_format.type")
            }
        }
        if let s = f.value("json_schema") {
            param = "json_schema"
            try schema(s)
        }
        if let g = f.value("grammar") {
            param = "grammar"
            guard case let .string(text) = g else { throw .invalid("'grammar' must be a string of GBNF.", param: param) }
            try compile { () throws(GrammarError) in try Grammar(gbnf: text) }
        }
        guard let grammar else { return nil }
        guard let constrain = ctx.constrain else {
            throw .invalid("Structured output is not available on this server.", param: param)
        }
        return constrain(grammar)
    }

    /// 400 when the prompt leaves no room to generate in a slot's context.
    static func checkLength(_ prompt: Prompt, _ ctx: PromptContext) throws(APIError) {
        guard prompt.count < ctx.contextLength else {
            throw .invalid("This model's context is \(ctx.contextLength) tokens, but the prompt has \(prompt.count) (at least one more is needed to generate). Shorten the prompt.",
                           param: "messages", code: "context_length_exceeded")
        }
    }
}
