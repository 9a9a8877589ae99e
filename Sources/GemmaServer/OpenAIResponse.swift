// OpenAI response bodies: chat.completion, chat.completion.chunk, text_completion (whole and streamed), usage and
// log-probabilities, built as JSONValue. Field order follows OpenAI's documentation.
import GemmaFormats
import GemmaGenerate
import GemmaTokenizer

/// Builds the response objects of one request.
struct ResponseBuilder {
    enum Kind { case chat, completion }

    let kind: Kind
    let id: String
    let created: Int
    let model: String
    let tokenizer: Tokenizer
    let logprobs: Bool
    let topLogprobs: Int

    var object: String { kind == .chat ? "chat.completion" : "text_completion" }
    var chunkObject: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

    static func usage(_ s: GenerationStats) -> JSONValue { usage([s]) }

    /// Usage of a request's choices: the prompt once, the completions summed.
    static func usage(_ all: [GenerationStats]) -> JSONValue {
        guard let s = all.first else { return .null }
        let completion = all.reduce(0) { $0 + $1.answerTokens }
        return ["prompt_tokens": .int(s.promptTokens), "completion_tokens": .int(completion),
                "total_tokens": .int(s.promptTokens + completion),
                "prompt_tokens_details": ["cached_tokens": .int(s.reusedPromptTokens)]]
    }

    /// One answer of several choices: `parts` (each `full`'s answer for one choice, in order) under the first's
    /// envelope, each choice with its index, the usage summed.
    static func merge(_ parts: [JSONValue], stats: [GenerationStats]) -> JSONValue {
        guard case var .object(top) = parts.first else { return .null }
        var choices: [JSONValue] = []
        for (i, p) in parts.enumerated() {
            guard case let .array(cs)? = p["choices"], case var .object(c) = cs.first else { continue }
            if let k = c.firstIndex(where: { $0.0 == "index" }) { c[k].1 = .int(i) }
            choices.append(.object(c))
        }
        if let k = top.firstIndex(where: { $0.0 == "choices" }) { top[k].1 = .array(choices) }
        if let k = top.firstIndex(where: { $0.0 == "usage" }) { top[k].1 = usage(stats) }
        return .object(top)
    }

    func piece(_ id: Int) -> String { (try? tokenizer.decode([TokenID(id)])) ?? "" }

    func bytes(_ s: String) -> JSONValue { .array(s.utf8.map { .int(Int($0)) }) }

    /// Chat log-probabilities of some tokens: {"content": [{token, logprob, bytes, top_logprobs}]}.
    func chatLogprobs(_ tokens: [GeneratedToken]) -> JSONValue {
        .object([("content", .array(tokens.map { t in
            let text = piece(t.id)
            return ["token": .string(text), "logprob": .float(max(t.logprob ?? -9999, -9999)), "bytes": bytes(text),
                    "top_logprobs": .array(t.topLogprobs.prefix(topLogprobs).map { alt in
                        let a = piece(alt.id)
                        return ["token": .string(a), "logprob": .float(max(alt.logprob, -9999)), "bytes": bytes(a)]
                    })]
        })), ("refusal", .null)])
    }

    /// Legacy completion log-probabilities: tokens, token_logprobs, top_logprobs, text_offset.
    func completionLogprobs(_ tokens: [GeneratedToken], offset: Int) -> JSONValue {
        var offsets: [JSONValue] = []
        var at = offset
        for t in tokens {
            offsets.append(.int(at))
            at += piece(t.id).utf8.count
        }
        return ["tokens": .array(tokens.map { .string(piece($0.id)) }),
                "token_logprobs": .array(tokens.map { .float(max($0.logprob ?? -9999, -9999)) }),
                "top_logprobs": .array(tokens.map { t in
                    var seen = Set<String>()
                    var pairs: [(String, JSONValue)] = []
                    for alt in t.topLogprobs.prefix(topLogprobs) where seen.insert(piece(alt.id)).inserted {
                        pairs.append((piece(alt.id), .float(max(alt.logprob, -9999))))
                    }
                    return .object(pairs)
                }),
                "text_offset": .array(offsets)]
    }

    /// Legacy log-probabilities of an echoed prompt: every prompt token, the first (BOS) with null, the others
    /// scored by the positions before them (`scores`, in order); then `after`'s arrays appended (the completion's).
    func echoLogprobs(prompt ids: [Int], scores: [GeneratedToken], after: JSONValue? = nil) -> JSONValue {
        var tokens: [JSONValue] = [], lps: [JSONValue] = [], tops: [JSONValue] = [], offsets: [JSONValue] = []
        var at = 0
        for (i, id) in ids.enumerated() {
            let p = piece(id)
            tokens.append(.string(p))
            offsets.append(.int(at))
            at += p.utf8.count
            if i == 0 || i - 1 >= scores.count {
                lps.append(.null)
                tops.append(.null)
            } else {
                let t = scores[i - 1]
                lps.append(.float(max(t.logprob ?? -9999, -9999)))
                var seen = Set<String>()
                var pairs: [(String, JSONValue)] = []
                for alt in t.topLogprobs.prefix(topLogprobs) where seen.insert(piece(alt.id)).inserted {
                    pairs.append((piece(alt.id), .float(max(alt.logprob, -9999))))
                }
                tops.append(.object(pairs))
            }
        }
        if case let .object(rest)? = after {
            func arr(_ k: String) -> [JSONValue] { if case let .array(a)? = rest.first(where: { $0.0 == k })?.1 { a } else { [] } }
            tokens += arr("tokens"); lps += arr("token_logprobs"); tops += arr("top_logprobs"); offsets += arr("text_offset")
        }
        return ["tokens": .array(tokens), "token_logprobs": .array(lps), "top_logprobs": .array(tops), "text_offset": .array(offsets)]
    }

    func logprobsValue(_ tokens: [GeneratedToken], offset: Int) -> JSONValue {
        guard logprobs else { return .null }
        return kind == .chat ? chatLogprobs(tokens) : completionLogprobs(tokens, offset: offset)
    }

    /// Tool calls as OpenAI writes them: ids, type function, name, arguments as a string of JSON (`index` in stream
    /// deltas).
    func toolCalls(_ calls: [(name: String, arguments: String)], indexed: Bool = false, choice: Int = 0) -> JSONValue {
        .array(calls.enumerated().map { i, c in
            var pairs: [(String, JSONValue)] = indexed ? [("index", .int(i))] : []
            pairs += [("id", .string("call_\(id)_\(choice)_\(i)")), ("type", "function"),
                      ("function", ["name": .string(c.name), "arguments": .string(c.arguments)])]
            return .object(pairs)
        })
    }

    /// The whole answer (stream: false); with `calls`, the message holds them instead of content; with `echo` (a
    /// completion's prompt ids and their scores), the prompt comes first.
    func full(text: String, tokens: [GeneratedToken], stats: GenerationStats,
              calls: [(name: String, arguments: String)]? = nil, echo: (ids: [Int], scores: [GeneratedToken])? = nil) -> JSONValue {
        if let echo, kind == .completion {
            let promptText = echo.ids.map(piece).joined()
            let lp: JSONValue = logprobs
                ? echoLogprobs(prompt: echo.ids, scores: echo.scores, after: logprobsValue(tokens, offset: promptText.utf8.count)) : .null
            let choice: JSONValue = ["text": .string(promptText + text), "index": 0, "logprobs": lp,
                                     "finish_reason": .string(stats.finishReason)]
            return ["id": .string(id), "object": .string(object), "created": .int(created), "model": .string(model),
                    "choices": [choice], "usage": Self.usage(stats), "system_fingerprint": "swift-gemma"]
        }
        let message: JSONValue = calls.map { ["role": "assistant", "content": .null, "tool_calls": toolCalls($0), "refusal": .null] }
            ?? ["role": "assistant", "content": .string(text), "refusal": .null]
        let choice: JSONValue = kind == .chat
            ? ["index": 0, "message": message,
               "logprobs": logprobsValue(tokens, offset: 0), "finish_reason": .string(calls == nil ? stats.finishReason : "tool_calls")]
            : ["text": .string(text), "index": 0, "logprobs": logprobsValue(tokens, offset: 0),
               "finish_reason": .string(stats.finishReason)]
        return ["id": .string(id), "object": .string(object), "created": .int(created), "model": .string(model),
                "choices": [choice], "usage": Self.usage(stats), "system_fingerprint": "swift-gemma"]
    }

    /// One streamed chunk: text (with its tokens' log-probabilities), or the final one with a finish reason.
    func chunk(text: String?, role: Bool = false, tokens: [GeneratedToken] = [], offset: Int = 0, finish: String? = nil,
               index: Int = 0) -> JSONValue {
        let choice: JSONValue
        if kind == .chat {
            var delta: [(String, JSONValue)] = []
            if role { delta.append(("role", "assistant")) }
            if let text { delta.append(("content", .string(text))) }
            choice = ["index": .int(index), "delta": .object(delta), "logprobs": tokens.isEmpty ? .null : logprobsValue(tokens, offset: offset),
                      "finish_reason": finish.map { .string($0) } ?? .null]
        } else {
            choice = ["text": .string(text ?? ""), "index": .int(index),
                      "logprobs": tokens.isEmpty ? .null : logprobsValue(tokens, offset: offset),
                      "finish_reason": finish.map { .string($0) } ?? .null]
        }
        return ["id": .string(id), "object": .string(chunkObject), "created": .int(created), "model": .string(model),
                "system_fingerprint": "swift-gemma", "choices": [choice]]
    }

    /// The chunk that carries a reply's tool calls whole (streamed replies that are calls are held back until they
    /// are complete).
    func toolCallChunk(_ calls: [(name: String, arguments: String)], index: Int = 0) -> JSONValue {
        ["id": .string(id), "object": .string(chunkObject), "created": .int(created), "model": .string(model),
         "system_fingerprint": "swift-gemma",
         "choices": [["index": .int(index), "delta": ["tool_calls": toolCalls(calls, indexed: true, choice: index)], "logprobs": .null, "finish_reason": .null]]]
    }

    /// The usage chunk of stream_options.include_usage: no choices.
    func usageChunk(_ stats: [GenerationStats]) -> JSONValue {
        ["id": .string(id), "object": .string(chunkObject), "created": .int(created), "model": .string(model),
         "system_fingerprint": "swift-gemma", "choices": [], "usage": Self.usage(stats)]
    }
}
