// An in-process server on 127.0.0.1 with an ephemeral port, over the real model (loaded once), and a small HTTP
// client for the tests.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemmaGenerate
import GemmaModel
import GemmaServer
import GemmaTokenizer
import Hummingbird
import Testing

enum TestModel {
    static var path: String {
        let env = ProcessInfo.processInfo.environment
        if let m = env["GEMMA_MODEL"] { return m }
        let cache = env["GEMMA_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }

    static let loaded: LanguageModel? = try? LanguageModel.load(path: path)
}

/// A running server and where to reach it.
struct TestServer: Sendable {
    let baseURL: String
    let state: ServerState

    /// One shared server (parallel 4, context 512, API key "test-key") for the whole suite.
    static let shared: Task<TestServer?, Never> = Task {
        guard let lm = TestModel.loaded else {
            Issue.record("missing \(TestModel.path): run scripts/fetch-model.sh first (make test does)")
            return nil
        }
        return await start(lm, apiKey: "test-key")
    }

    static func start(_ lm: LanguageModel, apiKey: String?, parallel: Int = 4, queue: Int = 64,
                      prefillChunk: Int = 256, maxBodyBytes: Int? = 64 << 10,
                      images: ImageInputConfiguration = ImageInputConfiguration(), draftMax: Int = 0,
                      draftModel: DraftModel? = nil) async -> TestServer {
        let config = ServerConfiguration(host: "127.0.0.1", port: 0, apiKey: apiKey, maxBodyBytes: maxBodyBytes,
                                         scheduler: SchedulerConfiguration(parallel: parallel, contextLength: 512, queueLimit: queue,
                                                                           prefillChunk: prefillChunk, draftMax: draftMax,
                                                                           draftModel: draftModel),
                                         images: images)
        let state = ServerState(configuration: config)
        let scheduler = Scheduler(model: lm, configuration: config.scheduler, metrics: state.metrics)
        scheduler.start()
        state.setEngine(Engine(scheduler: scheduler, modelName: "gemma-test"))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = GemmaServer.makeApplication(state: state) { port in continuation.yield(port) }
        Task { try await app.run() }
        var port = -1
        for await p in ports { port = p; break }
        return TestServer(baseURL: "http://127.0.0.1:\(port)", state: state)
    }
}

struct HTTPResult {
    let status: Int
    let body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
}

/// Sends a request; `body` is sent as is (so that malformed bodies can be tested).
func send(_ server: TestServer, _ method: String, _ path: String, body: String? = nil, key: String? = "test-key") async throws -> HTTPResult {
    var request = URLRequest(url: URL(string: server.baseURL + path)!)
    request.httpMethod = method
    request.timeoutInterval = 120
    if let body {
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
    let (data, response) = try await URLSession.shared.data(for: request)
    return HTTPResult(status: (response as? HTTPURLResponse)?.statusCode ?? -1, body: data)
}

func chatBody(_ content: String, maxTokens: Int = 8, stream: Bool = false, extra: String = "") -> String {
    let escaped = content.replacingOccurrences(of: "\"", with: "\\\"")
    return #"{"model":"gemma-test","messages":[{"role":"user","content":"\#(escaped)"}],"max_tokens":\#(maxTokens),"temperature":0,"stream":\#(stream)\#(extra)}"#
}
