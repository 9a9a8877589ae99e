// The HTTP server: configuration, the loaded engine (model + tokenizer + scheduler, absent while loading), and the
// Hummingbird application that serves it. Graceful shutdown on SIGTERM / SIGINT comes from swift-service-lifecycle
// (Application.runService): the listener closes, requests in flight finish, then the model thread stops.
import Foundation
import GemmaGenerate
import GemmaModel
import GemmaTokenizer
import Hummingbird
import Synchronization

/// How to serve.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Required as `Authorization: Bearer KEY` on every route but /health, /metrics and the chat page, when set.
    public var apiKey: String? = nil
    /// Largest request body accepted (bytes); larger ones get 413. Nil: 1 MiB, or for a model that reads images
    /// room for one image at the image size limit as a data: URL (`images.bodyBytes`).
    public var maxBodyBytes: Int? = nil
    public var scheduler = SchedulerConfiguration()
    /// Limits on image_url parts.
    public var images = ImageInputConfiguration()
    /// Origins whose browser pages may call the server (CORS); "*" allows any. Empty: no CORS headers.
    public var corsOrigins: [String] = []
    /// One structured log line per request (request id, method, path, status, milliseconds) on stderr.
    public var accessLog = false
    /// Loads the draft model of speculative decoding once the model is loaded (with `scheduler.draftMax` > 0; nil:
    /// prompt lookup).
    public var loadDraft: (@Sendable (LanguageModel) throws -> DraftModel)? = nil

    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, maxBodyBytes: Int? = nil,
                scheduler: SchedulerConfiguration = SchedulerConfiguration(), images: ImageInputConfiguration = ImageInputConfiguration()) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maxBodyBytes = maxBodyBytes
        self.scheduler = scheduler
        self.images = images
    }

    /// The body limit for `engine`'s model.
    func bodyLimit(readsImages: Bool) -> Int { maxBodyBytes ?? (readsImages ? max(1 << 20, images.bodyBytes) : 1 << 20) }
}

/// A loaded model ready to serve.
public final class Engine: Sendable {
    public let scheduler: Scheduler
    public let modelName: String
    public let created: Int

    public init(scheduler: Scheduler, modelName: String) {
        self.scheduler = scheduler
        self.modelName = modelName
        created = Int(Date().timeIntervalSince1970)
    }

    var tokenizer: Tokenizer { scheduler.tokenizer }
    /// True when the model has a vision encoder.
    var readsImages: Bool { scheduler.languageModel.vision != nil }
    var promptContext: PromptContext {
        var c = PromptContext(tokenizer: scheduler.tokenizer, contextLength: scheduler.configuration.contextLength,
                              vocabSize: scheduler.model.config.vocabSize)
        c.imageTokens = scheduler.languageModel.imageTokens
        c.softTokensPerImage = scheduler.languageModel.vision?.config.mmTokensPerImage ?? 0
        let generation = scheduler.model.checkpoint.generation
        if generation.setsSampling { c.samplingDefaults = SamplingParameters(defaults: generation) }
        let lm = scheduler.languageModel
        c.constrain = { lm.constraint($0) }
        return c
    }
}

/// What the routes share: metrics, and the engine once it is loaded.
public final class ServerState: Sendable {
    public let metrics: Metrics
    public let configuration: ServerConfiguration
    /// Reads and encodes the images of chat requests.
    let images: ImageInput
    private let loaded = Mutex<Engine?>(nil)
    private let requestIDs = Atomic<Int>(0)

    public init(configuration: ServerConfiguration, metrics: Metrics = Metrics()) {
        self.configuration = configuration
        self.metrics = metrics
        images = ImageInput(configuration: configuration.images, metrics: metrics)
    }

    /// Makes the server ready: /health turns 200 and the generation routes open.
    public func setEngine(_ engine: Engine) {
        loaded.withLock { $0 = engine }
        metrics.setReady(true)
    }

    public var engine: Engine? { loaded.withLock { $0 } }

    /// The engine, or 503 while the model loads.
    func requireEngine() throws(APIError) -> Engine {
        guard let e = engine else { throw APIError.loading }
        return e
    }

    func nextRequestID() -> Int { requestIDs.add(1, ordering: .relaxed).newValue }
}

/// Builds and runs the server.
public enum GemmaServer {
    /// The Hummingbird application over `state`. `onRunning` receives the bound port (useful with port 0).
    public static func makeApplication(state: ServerState,
                                       onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        if state.configuration.accessLog { router.middlewares.add(AccessLogMiddleware<BasicRequestContext>()) }
        if !state.configuration.corsOrigins.isEmpty {
            router.middlewares.add(CORSOriginsMiddleware<BasicRequestContext>(origins: state.configuration.corsOrigins))
        }
        router.middlewares.add(ErrorMiddleware<BasicRequestContext>(metrics: state.metrics))
        if let key = state.configuration.apiKey { router.middlewares.add(APIKeyMiddleware<BasicRequestContext>(key: key)) }
        Routes(state: state).register(on: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(state.configuration.host, port: state.configuration.port),
                                 serverName: "swift-gemma"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? -1) }
        )
    }

    /// Serves until SIGTERM or SIGINT. The model is loaded by `load` on its own thread while the server already
    /// answers (/health says 503 until it is ready).
    public static func run(configuration: ServerConfiguration, modelName: String,
                           log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("gemma serve: " + $0 + "\n").utf8)) },
                           load: @escaping @Sendable () throws -> LanguageModel,
                           onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let state = ServerState(configuration: configuration)
        let schedulerBox = Mutex<Scheduler?>(nil)
        let loadFailed = Mutex<(any Error)?>(nil)
        let loader = Thread {
            do {
                let model = try load()
                var schedulerConfiguration = configuration.scheduler
                if let loadDraft = configuration.loadDraft, schedulerConfiguration.draftMax > 0 {
                    schedulerConfiguration.draftModel = try loadDraft(model)
                }
                let scheduler = Scheduler(model: model, configuration: schedulerConfiguration, metrics: state.metrics, log: log)
                scheduler.start()
                schedulerBox.withLock { $0 = scheduler }
                state.setEngine(Engine(scheduler: scheduler, modelName: modelName))
                let vision = scheduler.languageModel.vision.map { ", reads images (\($0.config.mmTokensPerImage) soft tokens each)" } ?? ""
                let c = scheduler.configuration
                let draft = c.draftMax == 0 ? "" : ", speculative decoding by \(c.draftModel == nil ? "prompt lookup" : "a draft model") (up to \(c.draftMax) tokens a step)"
                log("model loaded: \(modelName), \(c.parallel) slots of \(c.contextLength) tokens\(vision)\(draft)")
            } catch {
                log("cannot load the model: \(error)")
                loadFailed.withLock { $0 = error }
                kill(getpid(), SIGTERM)
            }
        }
        loader.stackSize = 8 << 20
        loader.start()
        let app = makeApplication(state: state, onRunning: onRunning)
        try await app.runService()
        log("stopping the model thread")
        schedulerBox.withLock { $0 }?.shutdown()
        if let error = loadFailed.withLock({ $0 }) { throw error }
    }
}
