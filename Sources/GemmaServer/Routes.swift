// The routes: OpenAI's /v1/chat/completions, /v1/completions and /v1/models, plus /health, /metrics, /tokenize and
// /detokenize (llama.cpp's server names), and the chat page on GET / (ChatPage.swift). Handlers parse and validate,
// read and encode a chat request's images (ImageInput), submit to the scheduler and stream its events; a client that disconnects (inbound side closed) cancels its job, which frees the slot before the next step.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaTokenizer
import Hummingbird

struct Routes: Sendable {
    let state: ServerState

    func register(on router: Router<BasicRequestContext>) {
        // The chat page, served without the API key (it asks for the key when the API answers 401).
        router.get("/") { _, _ -> Response in chatPage() }
        router.get("/index.html") { _, _ -> Response in chatPage() }
        router.get("/health") { _, _ -> Response in
            guard state.engine != nil else { throw APIError.loading }
            return json(["status": "ok"])
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: state.metrics.render())))
        }
        router.get("/v1/models") { _, _ -> Response in
            let e = try state.requireEngine()
            return json(["object": "list", "data": [model(e)]])
        }
        router.get("/v1/models/{id}") { _, context -> Response in
            let e = try state.requireEngine()
            let id = context.parameters.get("id") ?? ""
            guard id == e.modelName else {
                throw APIError(.notFound, "The model '\(id)' does not exist.", type: "not_found_error", param: "model", code: "model_not_found")
            }
            return json(model(e))
        }
        router.post("/v1/chat/completions") { request, context -> Response in
            try await generate(request, context, kind: .chat)
        }
        router.post("/v1/completions") { request, context -> Response in
            try await generate(request, context, kind: .completion)
        }
        registerOllama(on: router)
        router.post("/v1/embeddings") { request, _ -> Response in
            try await embeddings(request)
        }
        router.post("/tokenize") { request, _ -> Response in
            var request = request
            let e = try state.requireEngine()
            let f = try RequestFields(try await readJSON(&request))
            guard let content = try f.string("content") else { throw APIError.invalid("'content' (a string) is required.", param: "content") }
            let ids = e.tokenizer.encode(content, addSpecial: try f.bool("add_special") ?? false,
                                         parseSpecial: try f.bool("parse_special") ?? true)
            if try f.bool("with_pieces") == true {
                return json(["tokens": .array(ids.map { id in
                    ["id": .int(Int(id)), "piece": .string((try? e.tokenizer.decode([id])) ?? "")]
                })])
            }
            return json(["tokens": .array(ids.map { .int(Int($0)) })])
        }
        router.post("/detokenize") { request, _ -> Response in
            var request = request
            let e = try state.requireEngine()
            let f = try RequestFields(try await readJSON(&request))
            guard case let .array(items)? = f.value("tokens") else {
                throw APIError.invalid("'tokens' (an array of token ids) is required.", param: "tokens")
            }
            let vocab = e.tokenizer.vocabulary.count
            var ids: [TokenID] = []
            for item in items {
                guard case let .number(x) = item, x == x.rounded(), x >= 0, x < Double(vocab) else {
                    throw APIError.invalid("'tokens' must hold integer token ids in 0..<\(vocab).", param: "tokens")
                }
                ids.append(TokenID(x))
            }
            let text = (try? e.tokenizer.decode(ids)) ?? ""
            return json(["content": .string(text)])
        }
    }

    /// The model card; `meta` (llama.cpp's extension) says whether the model takes images (`modalities`, as
    /// llama.cpp's /props does) and how many soft tokens one image (one Pan & Scan view) becomes.
    func model(_ e: Engine) -> JSONValue {
        let vision = e.scheduler.languageModel.vision
        return ["id": .string(e.modelName), "object": "model", "created": .int(e.created), "owned_by": "swift-gemma",
                "meta": ["n_ctx": .int(e.scheduler.configuration.contextLength), "n_parallel": .int(e.scheduler.configuration.parallel),
                         "modalities": ["vision": .bool(vision != nil)],
                         "image_tokens": vision.map { .int($0.config.mmTokensPerImage) } ?? .null]]
    }

    /// The chat page, under a Content-Security-Policy that lets only its own inline script and style run.
    func chatPage() -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: ChatPage.contentSecurityPolicy,
                                        .xContentTypeOptions: "nosniff", .cacheControl: "no-cache"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: ChatPage.html)))
    }

    func json(_ v: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: v.serialized + "\n")))
    }

    /// The body as JSON: 413 past the size limit, 400 when it is not JSON.
    func readJSON(_ request: inout Request) async throws -> JSONValue {
        let limit = state.configuration.bodyLimit(readsImages: state.engine?.readsImages ?? false)
        let buffer = try await request.collectBody(upTo: limit)
        let bytes = Array(buffer.readableBytesView)
        guard !bytes.isEmpty else { throw APIError.invalid("The request body is empty; a JSON object is expected.") }
        do {
            return try JSONValue.parse(bytes)
        } catch {
            throw APIError.invalid("The request body is not valid JSON: \(error).", code: "invalid_json")
        }
    }

    func generate(_ request: Request, _ context: BasicRequestContext, kind: ResponseBuilder.Kind) async throws -> Response {
        let started = ContinuousClock.now
        var request = request
        let engine = try state.requireEngine()
        let body = try await readJSON(&request)
        var prepared = kind == .chat ? try RequestParser.chat(body, engine.promptContext)
                                    : try RequestParser.completion(body, engine.promptContext)
        if let pending = prepared.images {
            prepared.prompt = try await state.images.prompt(for: pending, model: engine.scheduler.languageModel,
                                                          contextLength: engine.scheduler.configuration.contextLength)
        }
        let parsed = prepared
        let scorePrompt = parsed.echo && parsed.logprobs ? (parsed.parameters.topLogprobs ?? 0) : nil
        let (job, allEvents) = try engine.scheduler.submit(prompt: parsed.prompt, parameters: parsed.parameters,
                                                           choices: parsed.choices, scorePrompt: scorePrompt)
        let promptIDs = parsed.prompt.tokenIDs
        var echo: (@Sendable () -> (ids: [Int], scores: [GeneratedToken]))? = nil
        if parsed.echo { echo = { @Sendable in (ids: promptIDs, scores: job.promptScores.withLock { $0 }) } }
        let echoNow = echo
        let builder = ResponseBuilder(
            kind: kind, id: (kind == .chat ? "chatcmpl-" : "cmpl-") + String(state.nextRequestID()),
            created: Int(Date().timeIntervalSince1970), model: parsed.model ?? engine.modelName, tokenizer: engine.tokenizer,
            logprobs: parsed.logprobs, topLogprobs: parsed.parameters.topLogprobs ?? 0)
        let endpoint = kind == .chat ? "chat" : "completions"
        let metrics = state.metrics
        let inbound = request.body

        // The stop token that ends a generation is reported as a token but is not part of the answer.
        let stopTokens = engine.scheduler.stopTokens, ignoreStops = parsed.parameters.ignoreStopTokens
        let endsGeneration: @Sendable (GeneratedToken) -> Bool = { !ignoreStops && stopTokens.contains($0.id) }

        if !parsed.stream {
            let outcomes = try await inbound.consumeWithInboundCloseHandler { _ in
                var all: [Outcome] = []
                for events in allEvents { all.append(await collect(events, endsGeneration: endsGeneration)) }
                return all
            } onInboundClosed: {
                job.cancel()
            }
            job.cancel()
            metrics.observeRequest(endpoint: endpoint, .now - started)
            // Watching for the client's disconnect consumed the connection's inbound side: say it closes.
            var response: Response
            var parts: [JSONValue] = [], stats: [GenerationStats] = []
            var failure: Response? = nil
            for outcome in outcomes where failure == nil {
                switch outcome {
                case let .success(text, tokens, s):
                    parts.append(builder.full(text: text, tokens: tokens, stats: s, calls: parsed.tools?.calls(in: text),
                                              echo: echoNow?()))
                    stats.append(s)
                case let .failure(error): failure = error.response
                case .cancelled: failure = APIError(.serviceUnavailable, "The request was cancelled.", type: "server_error").response
                }
            }
            response = failure ?? json(parts.count == 1 ? parts[0] : ResponseBuilder.merge(parts, stats: stats))
            response.headers[.connection] = "close"
            return response
        }

        let includeUsage = parsed.includeUsage
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "close"],
            body: ResponseBody { writer in
                defer { job.cancel() }
                try await inbound.consumeWithInboundCloseHandler { _ in
                  var allStats: [GenerationStats] = []
                  var failed = false
                  // The choices one after another (each generated after the one before), chunks tagged with its index.
                  for (index, events) in allEvents.enumerated() where !failed {
                    var offset = 0
                    // A token's chunk carries the text it releases (the `.text` that follows its `.token`); text after
                    // the last token (held back until the end) goes in a chunk of its own.
                    var pending: GeneratedToken? = nil
                    // With tools, a reply that may be a call is held back until it is whole (then sent as one
                    // tool_calls delta); with tool_choice "auto" its first character decides ("{" is a call).
                    var holding = parsed.tools?.active == true
                    var decided = parsed.tools.map { $0.choice != .auto } ?? true
                    var held = "", heldTokens: [GeneratedToken] = []
                    try await writer.write(ByteBuffer(string: SSE.event(builder.chunk(text: kind == .chat ? "" : nil, role: kind == .chat, index: index))))
                    var iterator = events.makeAsyncIterator()
                    var echoed = echoNow == nil
                    while true {
                        let event: GenerationEvent?
                        do {
                            event = try await iterator.next()
                        } catch {
                            try await writer.write(ByteBuffer(string: SSE.event(APIError.of(error).json) + SSE.done))
                            failed = true
                            break
                        }
                        guard let event else { break }
                        if !echoed, let (ids, scores) = echoNow?() {
                            // The prompt (scored during its prefill, before the first event) comes first.
                            echoed = true
                            let text = ids.map(builder.piece).joined()
                            var chunk = builder.chunk(text: text)
                            if parsed.logprobs, case var .object(top) = chunk, case let .array(choices)? = top.first(where: { $0.0 == "choices" })?.1,
                               case var .object(c) = choices[0], let k = c.firstIndex(where: { $0.0 == "logprobs" }) {
                                c[k].1 = builder.echoLogprobs(prompt: ids, scores: scores)
                                top[top.firstIndex(where: { $0.0 == "choices" })!].1 = .array([.object(c)])
                                chunk = .object(top)
                            }
                            try await writer.write(ByteBuffer(string: SSE.event(chunk)))
                            offset += text.utf8.count
                        }
                        switch event {
                        case .prefill: break
                        case let .token(token):
                            pending = endsGeneration(token) ? nil : token
                        case let .text(text):
                            if holding {
                                if let token = pending { heldTokens.append(token); pending = nil }
                                held += text
                                if !decided && !held.isEmpty {
                                    decided = true
                                    if !held.hasPrefix("{") {
                                        holding = false
                                        try await writer.write(ByteBuffer(string: SSE.event(builder.chunk(text: held, tokens: heldTokens, offset: offset, index: index))))
                                        offset += held.utf8.count
                                    }
                                }
                                continue
                            }
                            if let token = pending {
                                pending = nil
                                if text.isEmpty && !parsed.logprobs { continue }
                                try await writer.write(ByteBuffer(string: SSE.event(builder.chunk(text: text, tokens: [token], offset: offset, index: index))))
                                offset += text.utf8.count
                            } else if !text.isEmpty {
                                try await writer.write(ByteBuffer(string: SSE.event(builder.chunk(text: text, index: index))))
                            }
                        case let .finished(stats):
                            var finish = stats.finishReason
                            if holding {
                                if let calls = parsed.tools?.calls(in: held) {
                                    try await writer.write(ByteBuffer(string: SSE.event(builder.toolCallChunk(calls, index: index))))
                                    finish = "tool_calls"
                                } else if !held.isEmpty || !heldTokens.isEmpty {
                                    try await writer.write(ByteBuffer(string: SSE.event(builder.chunk(text: held, tokens: heldTokens, offset: offset, index: index))))
                                }
                            }
                            allStats.append(stats)
                            try await writer.write(ByteBuffer(string: SSE.event(builder.chunk(text: nil, finish: finish, index: index))))
                        }
                    }
                  }
                  if !failed && allStats.count == allEvents.count {
                      let tail = includeUsage ? SSE.event(builder.usageChunk(allStats)) : ""
                      try await writer.write(ByteBuffer(string: tail + SSE.done))
                  }
                } onInboundClosed: {
                    job.cancel()
                }
                metrics.observeRequest(endpoint: endpoint + "_stream", .now - started)
                try await writer.finish(nil)
            }
        )
    }

    /// POST /v1/embeddings: each input (a string, or token ids; one or a list) tokenized with BOS and run once; its
    /// embedding is the mean of the final-normed hidden states over its positions, scaled to unit length.
    /// Gemma 3 270M is not trained as an embedding model: these vectors are what the model computes, not tuned ones.
    func embeddings(_ request: Request) async throws -> Response {
        var request = request
        let engine = try state.requireEngine()
        let f = try RequestFields(try await readJSON(&request))
        guard let input = f.value("input") else { throw APIError.invalid("'input' is required.", param: "input") }
        let format = try f.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw APIError.invalid("'encoding_format' must be 'float' or 'base64', not '\(format)'.", param: "encoding_format")
        }
        let hidden = engine.scheduler.model.config.hiddenSize
        if let d = try f.int("dimensions", 1...Int(Int32.max)), d != hidden {
            throw APIError.invalid("'dimensions' must be \(hidden) (this model's hidden size) or absent.", param: "dimensions")
        }
        let vocab = engine.tokenizer.vocabulary.count
        func ids(_ v: JSONValue, _ param: String) throws(APIError) -> [Int] {
            switch v {
            case let .string(text):
                guard !text.isEmpty else { throw APIError.invalid("\(param) is empty.", param: "input") }
                return engine.tokenizer.encode(text, addSpecial: true, parseSpecial: false).map(Int.init)
            case let .array(items) where !items.isEmpty && items.allSatisfy({ if case .number = $0 { true } else { false } }):
                var out: [Int] = []
                for item in items {
                    guard case let .number(x) = item, x == x.rounded(), x >= 0, x < Double(vocab) else {
                        throw APIError.invalid("\(param) must hold integer token ids in 0..<\(vocab).", param: "input")
                    }
                    out.append(Int(x))
                }
                return out
            default:
                throw APIError.invalid("\(param) must be a string or an array of token ids.", param: "input")
            }
        }
        var inputs: [[Int]] = []
        switch input {
        case .string: inputs = [try ids(input, "'input'")]
        case let .array(items):
            if !items.isEmpty, items.allSatisfy({ if case .number = $0 { true } else { false } }) {
                inputs = [try ids(input, "'input'")]
            } else {
                guard !items.isEmpty, items.count <= 256 else { throw APIError.invalid("'input' must hold 1 to 256 inputs.", param: "input") }
                for (i, item) in items.enumerated() { inputs.append(try ids(item, "'input[\(i)]'")) }
            }
        default: throw APIError.invalid("'input' must be a string, an array of strings, or token ids.", param: "input")
        }
        let ctx = engine.scheduler.configuration.contextLength
        for (i, t) in inputs.enumerated() where t.count > ctx {
            throw APIError.invalid("input \(i) has \(t.count) tokens; this server's context is \(ctx).", param: "input",
                                   code: "context_length_exceeded")
        }
        var data: [JSONValue] = []
        var tokens = 0
        for (i, t) in inputs.enumerated() {
            let (job, events) = try engine.scheduler.submit(prompt: Prompt(tokens: t), parameters: GenerationParameters(maxTokens: 0),
                                                            embed: true)
            for try await _ in events {}
            let e = job.embedding.withLock { $0 }
            guard e.count == hidden else { throw APIError(.serviceUnavailable, "The embedding was not computed (cancelled).", type: "server_error") }
            // base64: the float32 values little-endian, as OpenAI's client decodes them.
            let value: JSONValue = format == "base64"
                ? .string(e.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString())
                : .array(e.map { JSONValue.float($0) })
            data.append(["object": "embedding", "index": .int(i), "embedding": value])
            tokens += t.count
        }
        return json(["object": "list", "data": .array(data), "model": .string((try f.string("model")) ?? engine.modelName),
                     "usage": ["prompt_tokens": .int(tokens), "total_tokens": .int(tokens)]])
    }

    enum Outcome: Sendable {
        case success(String, [GeneratedToken], GenerationStats)
        case failure(APIError)
        case cancelled
    }

    /// The whole answer: the text, the tokens of the answer (not the stop token), the statistics.
    func collect(_ events: AsyncThrowingStream<GenerationEvent, any Error>,
                 endsGeneration: (GeneratedToken) -> Bool) async -> Outcome {
        var text = ""
        var tokens: [GeneratedToken] = []
        do {
            for try await event in events {
                switch event {
                case .prefill: break
                case let .token(t): if !endsGeneration(t) { tokens.append(t) }
                case let .text(piece): text += piece
                case let .finished(stats): return .success(text, tokens, stats)
                }
            }
        } catch {
            return .failure(APIError.of(error))
        }
        return .cancelled
    }
}

extension ChatPage {
    /// Where the page is served (GET, without the API key).
    static let paths: Set<String> = ["/", "/index.html"]
}
