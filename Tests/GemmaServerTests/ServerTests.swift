// The server end to end, in process on 127.0.0.1: OpenAI-shaped answers (whole and streamed), batched greedy
// outputs equal to sequential ones, errors with their statuses, metrics.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaServer
import Testing

@Suite(.serialized) struct ServerTests {
    @Test func chatCompletionHasOpenAIShape() async throws {
        guard let server = await TestServer.shared.value else { return }
        let r = try await send(server, "POST", "/v1/chat/completions", body: chatBody("Name a color.", maxTokens: 8))
        #expect(r.status == 200, "\(r.text)")
        let json = try #require(r.json)
        #expect(json["object"] as? String == "chat.completion")
        let choice = try #require((json["choices"] as? [[String: Any]])?.first)
        let message = try #require(choice["message"] as? [String: Any])
        #expect(message["role"] as? String == "assistant")
        #expect(!((message["content"] as? String) ?? "").isEmpty)
        #expect(["stop", "length"].contains(choice["finish_reason"] as? String))
        let usage = try #require(json["usage"] as? [String: Any])
        #expect((usage["completion_tokens"] as? Int ?? 0) <= 8)
    }

    @Test func streamEndsWithDoneAndMatchesTheWholeAnswer() async throws {
        guard let server = await TestServer.shared.value else { return }
        let whole = try await send(server, "POST", "/v1/chat/completions", body: chatBody("Say hello.", maxTokens: 10))
        let streamed = try await send(server, "POST", "/v1/chat/completions",
                                      body: chatBody("Say hello.", maxTokens: 10, stream: true, extra: #","stream_options":{"include_usage":true}"#))
        #expect(streamed.status == 200)
        let events = streamed.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]")
        var text = ""
        var sawUsage = false
        for e in events.dropLast() {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(e.dropFirst(6).utf8)) as? [String: Any])
            #expect(obj["object"] as? String == "chat.completion.chunk")
            if obj["usage"] is [String: Any] { sawUsage = true }
            for c in obj["choices"] as? [[String: Any]] ?? [] {
                text += ((c["delta"] as? [String: Any])?["content"] as? String) ?? ""
            }
        }
        #expect(sawUsage)
        let wholeText = (((whole.json?["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])?["content"] as? String
        #expect(text == wholeText)
    }

    @Test func batchedGreedyOutputsEqualSequentialOnes() async throws {
        guard let server = await TestServer.shared.value else { return }
        let prompts = ["Count to five.", "Name a fruit.", "What is 2+2?", "Write a word that rhymes with cat.",
                       "Name a planet.", "Say something kind."]
        func content(_ r: HTTPResult) -> String? {
            ((r.json?["choices"] as? [[String: Any]])?.first?["text"] as? String)
        }
        var sequential: [String?] = []
        for p in prompts {
            let r = try await send(server, "POST", "/v1/completions", body: #"{"prompt":"\#(p)","max_tokens":12,"temperature":0}"#)
            sequential.append(content(r))
        }
        let concurrent = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for (i, p) in prompts.enumerated() {
                group.addTask {
                    let r = try await send(server, "POST", "/v1/completions", body: #"{"prompt":"\#(p)","max_tokens":12,"temperature":0}"#)
                    return (i, content(r))
                }
            }
            var out = [String?](repeating: nil, count: prompts.count)
            for try await (i, s) in group { out[i] = s }
            return out
        }
        #expect(sequential.allSatisfy { $0 != nil })
        #expect(concurrent == sequential)
        let metrics = try await send(server, "GET", "/metrics").text
        #expect(metrics.contains("gemma_decode_rows_total"))
    }

    /// Speculative decoding in the server (issue 20): each slot's proposals are verified inside the batched step.
    /// Greedy answers equal a plain server's, requests running together, for prompt lookup and for a draft model
    /// (the 270M drafting for itself); seeded top-k sampling repeats; /metrics counts proposals and acceptances.
    @Test(arguments: ["ngram", "model"]) func speculativeSlotsGiveThePlainGreedyAnswers(_ proposer: String) async throws {
        guard let plain = await TestServer.shared.value, let lm = TestModel.loaded else { return }
        let draft = proposer == "model" ? DraftModel(try Gemma3Model(path: TestModel.path)) : nil
        let server = await TestServer.start(lm, apiKey: nil, parallel: 3, draftMax: 4, draftModel: draft)
        let list = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday."
        let prompts = ["Copy the list twice.\n\(list)\n\(list)\n", "Count to five.", "Name a planet.",
                       "Repeat after me: the quick brown fox jumps over the lazy dog. The quick brown fox",
                       "Write a word that rhymes with cat."]
        func text(_ s: TestServer, _ p: String, _ extra: String = #""temperature":0"#) async throws -> String? {
            let body = try String(data: JSONSerialization.data(withJSONObject: ["prompt": p, "max_tokens": 40]), encoding: .utf8)!
            let r = try await send(s, "POST", "/v1/completions", body: String(body.dropLast()) + "," + extra + "}")
            return (r.json?["choices"] as? [[String: Any]])?.first?["text"] as? String
        }
        var expected: [String?] = []
        for p in prompts { expected.append(try await text(plain, p)) }
        let got = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for (i, p) in prompts.enumerated() { group.addTask { (i, try await text(server, p)) } }
            var out = [String?](repeating: nil, count: prompts.count)
            for try await (i, s) in group { out[i] = s }
            return out
        }
        #expect(expected.allSatisfy { $0 != nil })
        #expect(got == expected)
        let seeded = #""temperature":0.8,"top_k":40,"seed":11"#
        let a = try await text(server, prompts[0], seeded), b = try await text(server, prompts[0], seeded)
        #expect(a != nil && a == b)
        let metrics = try await send(server, "GET", "/metrics").text
        func value(_ name: String) -> Int {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        }
        let proposed = value("gemma_draft_tokens_proposed_total"), accepted = value("gemma_draft_tokens_accepted_total")
        print("server, \(proposer): \(accepted) of \(proposed) proposed tokens accepted")
        #expect(proposed > 0 && accepted > 0 && accepted <= proposed)
    }

    @Test(arguments: [
        ("POST", "/v1/chat/completions", "{not json", 400),
        ("POST", "/v1/chat/completions", "[1,2]", 400),
        ("POST", "/v1/chat/completions", #"{"messages":"hi"}"#, 400),
        ("POST", "/v1/chat/completions", #"{"messages":[]}"#, 400),
        ("POST", "/v1/chat/completions", #"{"messages":[{"role":"robot","content":"x"}]}"#, 400),
        ("POST", "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#, 400),
        ("POST", "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, 400),
        ("POST", "/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"max_tokens":1.5}"#, 400),
        ("POST", "/v1/completions", #"{"prompt":5}"#, 400),
        ("POST", "/v1/completions", #"{"prompt":[999999999]}"#, 400),
        ("GET", "/v1/nothing", nil, 404),
    ] as [(String, String, String?, Int)])
    func badRequestsGetOpenAIErrors(_ method: String, _ path: String, _ body: String?, _ status: Int) async throws {
        guard let server = await TestServer.shared.value else { return }
        let r = try await send(server, method, path, body: body)
        #expect(r.status == status, "\(r.text)")
        let error = try #require(r.json?["error"] as? [String: Any])
        #expect(error["message"] is String)
        #expect(error["type"] is String)
    }

    @Test func promptLongerThanTheContextIs400() async throws {
        guard let server = await TestServer.shared.value else { return }
        let long = String(repeating: "word ", count: 600)
        let r = try await send(server, "POST", "/v1/completions", body: #"{"prompt":"\#(long)","max_tokens":4}"#)
        #expect(r.status == 400)
        #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "context_length_exceeded")
    }

    @Test func apiKeyIsRequiredExceptForHealthMetricsAndTheChatPage() async throws {
        guard let server = await TestServer.shared.value else { return }
        #expect(try await send(server, "GET", "/v1/models", key: nil).status == 401)
        #expect(try await send(server, "GET", "/v1/models", key: "wrong").status == 401)
        #expect(try await send(server, "GET", "/v1/models").status == 200)
        #expect(try await send(server, "GET", "/health", key: nil).status == 200)
        #expect(try await send(server, "GET", "/metrics", key: nil).status == 200)
        // The page asks for the key itself; only GET is open.
        let page = try await send(server, "GET", "/", key: nil)
        #expect(page.status == 200 && page.text.hasPrefix("<!doctype html>"))
        #expect(try await send(server, "GET", "/index.html", key: nil).text == page.text)
        #expect(try await send(server, "POST", "/", body: "{}", key: nil).status == 401)
    }

    @Test func tokenizeAndDetokenizeRoundTrip() async throws {
        guard let server = await TestServer.shared.value else { return }
        let t = try await send(server, "POST", "/tokenize", body: #"{"content":"Hello world"}"#)
        let tokens = try #require(t.json?["tokens"] as? [Int])
        #expect(!tokens.isEmpty)
        let d = try await send(server, "POST", "/detokenize", body: #"{"tokens":\#(tokens)}"#)
        #expect(d.json?["content"] as? String == "Hello world")
    }

    @Test func oversizedBodyIs413() async throws {
        guard let server = await TestServer.shared.value else { return }
        let big = String(repeating: "a", count: 100 << 10)
        let r = try await send(server, "POST", "/v1/completions", body: #"{"prompt":"\#(big)"}"#)
        #expect(r.status == 413)
    }
}

@Suite(.serialized) struct PrefixReuseTests {
    /// A shared prefix of more than one prefill block is reused, and the answer is the one a cold slot gives, even
    /// when sampling (any difference in the logits would show).
    @Test func reusedPrefixGivesTheColdAnswer() async throws {
        guard let server = await TestServer.shared.value else { return }
        let prefix = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 12)
        func ask(_ q: String) async throws -> (String?, Int?) {
            let r = try await send(server, "POST", "/v1/completions",
                                   body: #"{"prompt":"\#(prefix)\#(q)","max_tokens":10,"temperature":0.9,"seed":3}"#)
            let text = (r.json?["choices"] as? [[String: Any]])?.first?["text"] as? String
            let cached = ((r.json?["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int
            return (text, cached)
        }
        let cold = try await ask("Question one:")
        _ = try await ask("Question two:")
        let warm = try await ask("Question one:")
        #expect(cold.0 != nil)
        #expect(warm.0 == cold.0)
        #expect((warm.1 ?? 0) >= 64, "cached tokens: \(String(describing: warm.1))")
    }

    /// Exact reuse holds for any prefill chunk, not only multiples of the 64-row step (100 and 37 here): on one
    /// slot, a request after another that shares a prefix gives the cold answer (text and log-probabilities, so
    /// any difference in the logits would show), reusing part of the prefix; the shared prefix ends inside a step,
    /// and reuse stops at the step before it. The prompts end 2-5 positions into a chunk, so that the cold run's
    /// last step is a few rows (row kernels): reuse cut at a 64-row block (the old rule) would run them in one
    /// GEMM step with the rows before. A request that continues an earlier answer (decoded positions in the slot's
    /// cache) gives what a fresh server gives.
    @Test(arguments: [100, 37]) func warmSlotsGiveTheColdAnswerForAnyPrefillChunk(_ chunk: Int) async throws {
        guard let lm = TestModel.loaded else { return }
        let server = await TestServer.start(lm, apiKey: nil, parallel: 1, prefillChunk: chunk)
        let prefix = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: chunk == 100 ? 10 : 11)
        func ask(_ s: TestServer, _ prompt: String) async throws -> (text: String?, logprobs: [Double], cached: Int, prompt: Int) {
            let body = try JSONSerialization.data(withJSONObject: ["prompt": prompt, "max_tokens": 10, "temperature": 0.9,
                                                                   "seed": 3, "logprobs": 3,
                                                                   "logit_bias": ["1": -100, "106": -100]] as [String: Any])
            let r = try await send(s, "POST", "/v1/completions", body: String(decoding: body, as: UTF8.self), key: nil)
            let choice = (r.json?["choices"] as? [[String: Any]])?.first
            let logprobs = ((choice?["logprobs"] as? [String: Any])?["token_logprobs"] as? [Double]) ?? []
            let usage = r.json?["usage"] as? [String: Any]
            let cached = (usage?["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? -1
            return (choice?["text"] as? String, logprobs, cached, usage?["prompt_tokens"] as? Int ?? -1)
        }
        func tokens(_ text: String) async throws -> [Int] {
            let body = try JSONSerialization.data(withJSONObject: ["content": text, "add_special": true])
            let r = try await send(server, "POST", "/tokenize", body: String(decoding: body, as: UTF8.self), key: nil)
            return r.json?["tokens"] as? [Int] ?? []
        }
        let one = prefix + "Question one:", two = prefix + "Question two:"
        let cold = try await ask(server, one)
        _ = try await ask(server, two)
        let warm = try await ask(server, one)
        let (a, b) = (try await tokens(one), try await tokens(two))
        let shared = zip(a, b).prefix { $0 == $1 }.count
        print("chunk \(chunk): prompt \(warm.prompt) tokens, \(shared) shared with the slot's cache, \(warm.cached) reused")
        #expect(cold.text != nil && cold.logprobs.count == 10)
        #expect(warm.text == cold.text)
        #expect(warm.logprobs == cold.logprobs)
        #expect(warm.cached > 0 && warm.cached < shared, "reused \(warm.cached) of \(shared) shared")

        // Continue the warm answer: its decoded positions are in the slot's cache, but are never reused.
        let next = one + (warm.text ?? "") + " And then"
        let continued = try await ask(server, next)
        let fresh = try await ask(await TestServer.start(lm, apiKey: nil, parallel: 1, prefillChunk: chunk), next)
        #expect(fresh.cached == 0)
        #expect(continued.text == fresh.text)
        #expect(continued.logprobs == fresh.logprobs)
        #expect(continued.cached > 0 && continued.cached <= a.count, "reused \(continued.cached), first prompt \(a.count)")
    }
}

@Suite(.serialized) struct QueueTests {
    /// With one slot and no queue, a second request while the first runs is refused with 429 in OpenAI's shape, and
    /// the first still completes. The first is long (256 tokens, seconds) so that it still holds the slot when the
    /// second arrives, however loaded the machine (at 48 tokens it sometimes finished in between under parallel suites).
    @Test func fullQueueAnswers429() async throws {
        guard let lm = TestModel.loaded else { return }
        let server = await TestServer.start(lm, apiKey: nil, parallel: 1, queue: 0)
        let long = Task {
            try await send(server, "POST", "/v1/completions", body: #"{"prompt":"Once","max_tokens":256,"temperature":0,"logit_bias":{"1":-100,"106":-100}}"#, key: nil)
        }
        // Wait until the first request holds the slot (a fixed sleep is not enough on a loaded machine).
        for _ in 0..<600 {
            let metrics = try await send(server, "GET", "/metrics", key: nil)
            if metrics.text.split(separator: "\n").contains(where: { $0.hasPrefix("gemma_slots_busy ") && $0.hasSuffix(" 1") }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let refused = try await send(server, "POST", "/v1/completions", body: #"{"prompt":"Hi","max_tokens":2}"#, key: nil)
        #expect(refused.status == 429, "\(refused.text)")
        #expect((refused.json?["error"] as? [String: Any])?["code"] as? String == "queue_full")
        let first = try await long.value
        #expect(first.status == 200)
        #expect(((first.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int) == 256)
    }
}
