// Ollama's native API (github.com/ollama/ollama, docs/api.md), so that its clients (the `ollama` Python and JS
// libraries, editors and front-ends that speak it) work unchanged: /api/version, /api/tags, /api/show, /api/generate
// and /api/chat, streamed as NDJSON (one JSON object per line, `done: true` on the last) or whole with
// `"stream": false`. A request is translated into the OpenAI-shaped request the other routes parse (options to
// sampling fields, `format` to a JSON schema or JSON mode, tools, images as data URLs), so both APIs validate and
// generate the same way. Errors are Ollama's shape, {"error": "..."}, with the same statuses.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaTokenizer
import Hummingbird

extension Routes {
    static let ollamaVersion = "0.6.0"

    func registerOllama(on router: Router<BasicRequestContext>) {
        router.get("/api/version") { _, _ -> Response in json(["version": .string(Self.ollamaVersion)]) }
        router.get("/api/tags") { _, _ -> Response in
            try await ollamaErrors {
                let e = try state.requireEngine()
                return json(["models": [ollamaModel(e)]])
            }
        }
        router.post("/api/show") { request, _ -> Response in
            try await ollamaErrors {
                var request = request
                let e = try state.requireEngine()
                _ = try await readJSON(&request)
                return json(ollamaShow(e))
            }
        }
        router.post("/api/generate") { request, context -> Response in
            try await ollamaErrors { try await ollamaGenerate(request, context, chat: false) }
        }
        router.post("/api/chat") { request, context -> Response in
            try await ollamaErrors { try await ollamaGenerate(request, context, chat: true) }
        }
    }

    /// Answers errors in Ollama's shape.
    func ollamaErrors(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch {
            let e = APIError.of(error)
            var headers: HTTPFields = [.contentType: "application/json"]
            if e.status == .tooManyRequests || e.status == .serviceUnavailable { headers[.retryAfter] = "1" }
            return Response(status: e.status, headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object([("error", .string(e.message))]).serialized + "\n")))
        }
    }

    func ollamaDetails(_ e: Engine) -> JSONValue {
        let c = e.scheduler.model.config
        let params = Double(c.parameterCount)
        let size = params >= 1e9 ? String(format: "%.1fB", params / 1e9) : String(format: "%.0fM", params / 1e6)
        // llama.cpp's file types (general.file_type), as Ollama names them.
        let fileTypes = [0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
                         12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"]
        var level = "unknown"
        if let g = e.scheduler.model.checkpoint.gguf {
            if let t = g.metadata["general.file_type"]?.int, let name = fileTypes[t] { level = name }
        } else {
            level = "BF16"
        }
        return ["parent_model": "", "format": e.scheduler.model.checkpoint.gguf == nil ? "safetensors" : "gguf",
                "family": "gemma3", "families": ["gemma3"], "parameter_size": .string(size), "quantization_level": .string(level)]
    }

    func ollamaModel(_ e: Engine) -> JSONValue {
        ["name": .string(e.modelName), "model": .string(e.modelName),
         "modified_at": .string(Self.timestamp.format(Date(timeIntervalSince1970: TimeInterval(e.created)))),
         "size": .int(Self.fileSize(e.scheduler.model.checkpoint.path)), "digest": .string(String(repeating: "0", count: 64)),
         "details": ollamaDetails(e)]
    }

    func ollamaShow(_ e: Engine) -> JSONValue {
        let c = e.scheduler.model.config
        var capabilities: [JSONValue] = ["completion", "tools"]
        if e.readsImages { capabilities.append("vision") }
        return ["modelfile": "", "parameters": "", "template": "{{ .Prompt }}", "details": ollamaDetails(e),
                "model_info": ["general.architecture": "gemma3", "general.parameter_count": .int(c.parameterCount),
                               "gemma3.context_length": .int(e.scheduler.configuration.contextLength),
                               "gemma3.embedding_length": .int(c.hiddenSize), "gemma3.block_count": .int(c.numHiddenLayers),
                               "gemma3.attention.head_count": .int(c.numAttentionHeads),
                               "gemma3.attention.head_count_kv": .int(c.numKeyValueHeads),
                               "gemma3.attention.sliding_window": .int(c.slidingWindow)],
                "capabilities": .array(capabilities),
                "modified_at": .string(Self.timestamp.format(Date(timeIntervalSince1970: TimeInterval(e.created))))]
    }

    /// The OpenAI-shaped request an Ollama request stands for.
    static func ollamaTranslate(_ body: JSONValue, chat: Bool) throws(APIError) -> (JSONValue, stream: Bool) {
        let f = try RequestFields(body)
        var out: [(String, JSONValue)] = []
        let stream = try f.bool("stream") ?? true
        func images(_ v: JSONValue?, _ param: String) throws(APIError) -> [JSONValue] {
            guard let v, v != .null else { return [] }
            guard case let .array(items) = v else { throw .invalid("'\(param)' must be an array of base64 strings.", param: param) }
            var parts: [JSONValue] = []
            for (i, item) in items.enumerated() {
                guard case let .string(b64) = item else { throw .invalid("'\(param)[\(i)]' must be a base64 string.", param: param) }
                parts.append(["type": "image_url", "image_url": ["url": .string("data:application/octet-stream;base64," + b64)]])
            }
            return parts
        }
        if chat {
            guard case let .array(items)? = f.value("messages") else { throw .invalid("'messages' is required and must be an array.", param: "messages") }
            var messages: [JSONValue] = []
            var callIDs: [String] = []  // Ollama's calls carry no ids: numbered here, answered in order
            var next = 0
            for (i, m) in items.enumerated() {
                guard case .object = m, case let .string(role)? = m["role"] else {
                    throw .invalid("'messages[\(i)]' needs a string 'role'.", param: "messages[\(i)]")
                }
                var pairs: [(String, JSONValue)] = [("role", .string(role))]
                let pics = try images(m["images"], "messages[\(i)].images")
                let text = m["content"] ?? .string("")
                if pics.isEmpty { pairs.append(("content", text)) }
                else { pairs.append(("content", .array(pics + [["type": "text", "text": text]]))) }
                if role == "assistant", case let .array(calls)? = m["tool_calls"] {
                    var list: [JSONValue] = []
                    for c in calls {
                        next += 1
                        let id = "call_\(next)"
                        callIDs.append(id)
                        let args = c["function"]?["arguments"] ?? .object([])
                        list.append(["id": .string(id), "type": "function",
                                     "function": ["name": c["function"]?["name"] ?? .null, "arguments": .string(args.serialized)]])
                    }
                    pairs.append(("tool_calls", .array(list)))
                }
                if role == "tool" {
                    guard !callIDs.isEmpty else {
                        throw .invalid("messages[\(i)]: a 'tool' message must answer a tool call of an assistant message before it.",
                                       param: "messages[\(i)]")
                    }
                    pairs.append(("tool_call_id", .string(callIDs.removeFirst())))
                }
                messages.append(.object(pairs))
            }
            out.append(("messages", .array(messages)))
            if let tools = f.value("tools") { out.append(("tools", tools)) }
        } else {
            let prompt = try f.string("prompt") ?? ""
            if try f.bool("raw") == true {
                out.append(("prompt", .string(prompt)))
            } else {
                var messages: [JSONValue] = []
                if let system = try f.string("system") { messages.append(["role": "system", "content": .string(system)]) }
                let pics = try images(f.value("images"), "images")
                messages.append(["role": "user", "content": pics.isEmpty ? .string(prompt) : .array(pics + [["type": "text", "text": .string(prompt)]])])
                out.append(("messages", .array(messages)))
            }
        }
        if let format = f.value("format") {
            switch format {
            case .string("json"): out.append(("response_format", ["type": "json_object"]))
            case .object: out.append(("json_schema", format))
            default: throw .invalid("'format' must be \"json\" or a JSON schema object.", param: "format")
            }
        }
        if let options = f.value("options") {
            guard case let .object(pairs) = options else { throw .invalid("'options' must be an object.", param: "options") }
            for (k, v) in pairs {
                switch k {
                case "temperature", "top_k", "top_p", "min_p", "seed", "presence_penalty", "frequency_penalty", "repeat_penalty":
                    out.append((k, v))
                case "num_predict":
                    guard case let .number(n) = v else { throw .invalid("'options.num_predict' must be a number.", param: "options.num_predict") }
                    if n > 0 { out.append(("max_tokens", v)) }
                case "stop": out.append(("stop", v))
                case "num_ctx", "num_keep", "num_batch", "num_gpu", "main_gpu", "num_thread", "use_mmap", "use_mlock", "numa",
                     "low_vram", "vocab_only", "repeat_last_n", "typical_p", "tfs_z", "mirostat", "mirostat_tau", "mirostat_eta",
                     "penalize_newline":
                    break  // the server's own settings, or samplers it does not have: accepted and ignored, as Ollama ignores unknown ones
                default: break
                }
            }
        }
        return (.object(out), stream)
    }

    func ollamaGenerate(_ request: Request, _ context: BasicRequestContext, chat: Bool) async throws -> Response {
        let started = ContinuousClock.now
        var request = request
        let engine = try state.requireEngine()
        let body = try await readJSON(&request)
        let (translated, stream) = try Self.ollamaTranslate(body, chat: chat)
        let usesChat = translated["messages"] != nil
        let modelName: String = { if case let .string(m)? = body["model"] { m } else { engine.modelName } }()
        // Ollama loads a model on an empty prompt (or no messages) and answers done_reason "load".
        if chat, case .array([])? = body["messages"] {
            return json(["model": .string(modelName), "created_at": .string(Self.ollamaNow()),
                         "message": ["role": "assistant", "content": ""], "done": true, "done_reason": "load"])
        }
        if !chat, case .string("")? = body["prompt"] ?? .string("") {
            return json(["model": .string(modelName), "created_at": .string(Self.ollamaNow()), "response": "", "done": true,
                         "done_reason": "load"])
        }
        var prepared = usesChat ? try RequestParser.chat(translated, engine.promptContext)
                                : try RequestParser.completion(translated, engine.promptContext)
        if let pending = prepared.images {
            prepared.prompt = try await state.images.prompt(for: pending, model: engine.scheduler.languageModel,
                                                          contextLength: engine.scheduler.configuration.contextLength)
        }
        let parsed = prepared
        let (job, events) = try engine.scheduler.submit(prompt: parsed.prompt, parameters: parsed.parameters)
        let stopTokens = engine.scheduler.stopTokens, ignoreStops = parsed.parameters.ignoreStopTokens
        let endsGeneration: @Sendable (GeneratedToken) -> Bool = { !ignoreStops && stopTokens.contains($0.id) }
        let metrics = state.metrics
        let endpoint = chat ? "ollama_chat" : "ollama_generate"
        let inbound = request.body
        let tools = parsed.tools

        @Sendable func line(_ text: String, done: Bool, stats: GenerationStats? = nil, calls: [(name: String, arguments: String)]? = nil) -> String {
            var pairs: [(String, JSONValue)] = [("model", .string(modelName)), ("created_at", .string(Self.ollamaNow()))]
            if chat {
                var message: [(String, JSONValue)] = [("role", "assistant"), ("content", .string(text))]
                if let calls {
                    message.append(("tool_calls", .array(calls.map { c in
                        ["function": ["name": .string(c.name),
                                      "arguments": (try? JSONValue.parse(Array(c.arguments.utf8))) ?? .object([])]]
                    })))
                }
                pairs.append(("message", .object(message)))
            } else {
                pairs.append(("response", .string(text)))
            }
            pairs.append(("done", .bool(done)))
            if let s = stats {
                let total = UInt64((ContinuousClock.now - started).seconds * 1e9)
                pairs += [("done_reason", .string(s.stopReason == .length ? "length" : "stop")),
                          ("total_duration", .int(Int(total))), ("load_duration", 0),
                          ("prompt_eval_count", .int(s.promptTokens)), ("prompt_eval_duration", .int(Int(s.promptNanoseconds))),
                          ("eval_count", .int(s.answerTokens)),
                          ("eval_duration", .int(Int(s.generateNanoseconds)))]
            }
            return JSONValue.object(pairs).serialized + "\n"
        }

        if !stream {
            let outcome = try await inbound.consumeWithInboundCloseHandler { _ in
                await collect(events, endsGeneration: endsGeneration)
            } onInboundClosed: {
                job.cancel()
            }
            job.cancel()
            metrics.observeRequest(endpoint: endpoint, .now - started)
            switch outcome {
            case let .success(text, _, stats):
                let calls = tools?.calls(in: text)
                var r = Response(status: .ok, headers: [.contentType: "application/json"],
                                 body: ResponseBody(byteBuffer: ByteBuffer(string: line(calls == nil ? text : "", done: true, stats: stats, calls: calls))))
                r.headers[.connection] = "close"
                return r
            case let .failure(error): throw error
            case .cancelled: throw APIError(.serviceUnavailable, "The request was cancelled.", type: "server_error")
            }
        }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson", .connection: "close"],
            body: ResponseBody { writer in
                defer { job.cancel() }
                try await inbound.consumeWithInboundCloseHandler { _ in
                    var holding = tools?.active == true
                    var decided = tools.map { $0.choice != .auto } ?? true
                    var held = ""
                    var iterator = events.makeAsyncIterator()
                    while true {
                        let event: GenerationEvent?
                        do {
                            event = try await iterator.next()
                        } catch {
                            let e = APIError.of(error)
                            try await writer.write(ByteBuffer(string: JSONValue.object([("error", .string(e.message))]).serialized + "\n"))
                            break
                        }
                        guard let event else { break }
                        switch event {
                        case .prefill, .token: break
                        case let .text(text):
                            if holding {
                                held += text
                                if !decided && !held.isEmpty {
                                    decided = true
                                    if !held.hasPrefix("{") {
                                        holding = false
                                        try await writer.write(ByteBuffer(string: line(held, done: false)))
                                    }
                                }
                            } else if !text.isEmpty {
                                try await writer.write(ByteBuffer(string: line(text, done: false)))
                            }
                        case let .finished(stats):
                            var calls: [(name: String, arguments: String)]? = nil
                            if holding {
                                calls = tools?.calls(in: held)
                                if calls == nil && !held.isEmpty { try await writer.write(ByteBuffer(string: line(held, done: false))) }
                            }
                            try await writer.write(ByteBuffer(string: line("", done: true, stats: stats, calls: calls)))
                        }
                    }
                } onInboundClosed: {
                    job.cancel()
                }
                metrics.observeRequest(endpoint: endpoint + "_stream", .now - started)
                try await writer.finish(nil)
            })
    }

    static func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// RFC 3339 with fractional seconds, as Ollama writes created_at (a value type: no formatter per streamed line).
    static let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func ollamaNow() -> String { timestamp.format(Date()) }
}
