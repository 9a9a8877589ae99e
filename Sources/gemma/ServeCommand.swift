// `gemma serve`: the OpenAI-compatible HTTP server with continuous batching (GemmaServer). Loads the model in the
// background (GET /health answers 503 until then) and stops gracefully on SIGTERM / SIGINT.
import ArgumentParser
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaServer
import GemmaTokenizer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over an OpenAI-compatible HTTP API with continuous batching.",
        discussion: """
        Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics,
        POST /tokenize, POST /detokenize, and Ollama's /api/version, /api/tags, /api/show, /api/generate, /api/chat. \
        Every option can also come from the environment: GEMMA_ and its long name in capitals with underscores \
        (GEMMA_PORT=9000, GEMMA_NO_IMAGE_URLS=1); an option on the command line beats its variable. \
        Up to --parallel requests are decoded together in one forward step;
        up to --queue more wait for a slot, beyond that requests get 429. A model with a vision encoder (a Hugging \
        Face folder of Gemma 3 4B, 12B or 27B, or a GGUF with --mmproj) takes image_url parts in user messages: data: \
        URLs, and http(s) URLs fetched within the --image-* limits; the request field pan_and_scan adds crops.
        """
    )

    @OptionGroup(title: "Model") var model: ModelRunOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 8080

    @Option(help: "Sequences decoded together (slots).")
    var parallel = 4

    @Option(name: [.customLong("ctx"), .customShort("c")], help: "Context of each slot, in tokens.")
    var ctx = 4096

    @Option(help: "Requests that may wait for a slot.")
    var queue = 64

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' (default: $GEMMA_API_KEY, else none).")
    var apiKey: String?

    @Option(name: .customLong("max-body"), help: "Largest request body, in bytes (default: 1 MiB; for a model that reads images, room for one --image-max-bytes image as a data: URL).")
    var maxBody: Int?

    @Option(name: .customLong("image-max-bytes"), help: "Largest image file, fetched or in a data: URL, in bytes.")
    var imageMaxBytes = 20 << 20

    @Option(name: .customLong("image-timeout"), help: "Seconds to fetch an http(s) image URL.")
    var imageTimeout = 30.0

    @Option(name: .customLong("image-redirects"), help: "Redirects followed when fetching an image URL.")
    var imageRedirects = 5

    @Option(name: .customLong("image-max-pixels"), help: "Largest image decoded, in pixels (width x height), checked before decoding.")
    var imageMaxPixels = 50_000_000

    @Flag(name: .customLong("no-image-urls"), help: "Do not fetch http(s) image URLs (data: URLs only).")
    var noImageURLs = false

    @Option(name: .customLong("cors-origin"), help: "Let browser pages from this origin call the server (CORS; * for any). Repeatable; several may be given comma-separated (GEMMA_CORS_ORIGIN).")
    var corsOrigin: [String] = []

    @Flag(name: .customLong("access-log"), help: "Log one line per request on stderr (request id, method, path, status, ms).")
    var accessLog = false

    @Option(name: .customLong("draft"), help: ArgumentHelp("Speculative decoding for every request it applies to (greedy or top-k sampling without bias, penalties, grammar or logprobs), verified per slot inside the batched steps: 'ngram' (prompt lookup) or a draft model (a path or a cached ORG/REPO) with the same vocabulary.", valueName: "ngram|MODEL"))
    var draft: String?

    @Option(name: .customLong("draft-max"), help: "Tokens proposed at most per slot and step with --draft (1-6).")
    var draftMax = 3

    /// The options a GEMMA_* variable can set (GEMMA_ + the long name in capitals, dashes as underscores):
    /// (long name, short name, is a flag).
    static let environmentOptions: [(String, Character?, Bool)] = [
        ("model", "m", false), ("threads", "t", false), ("kv", nil, false), ("mmap", nil, true), ("exact", nil, true),
        ("mmproj", nil, false), ("host", nil, false), ("port", nil, false), ("parallel", nil, false), ("ctx", "c", false),
        ("queue", nil, false), ("api-key", nil, false), ("max-body", nil, false), ("image-max-bytes", nil, false),
        ("image-timeout", nil, false), ("image-redirects", nil, false), ("image-max-pixels", nil, false),
        ("no-image-urls", nil, true), ("cors-origin", nil, false), ("access-log", nil, true), ("draft", nil, false),
        ("draft-max", nil, false),
    ]

    /// `arguments` with an option added for each GEMMA_* variable whose option is not given (a flag beats its
    /// variable). A flag's variable turns it on when it is 1, true or yes.
    static func fromEnvironment(_ arguments: [String], _ environment: [String: String]) -> [String] {
        var out = arguments
        for (long, short, isFlag) in environmentOptions {
            let name = "GEMMA_" + long.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let value = environment[name], !value.isEmpty else { continue }
            let given = arguments.contains { a in
                a == "--\(long)" || a.hasPrefix("--\(long)=") || short.map { a == "-\($0)" || (a.hasPrefix("-\($0)") && !a.hasPrefix("--")) } == true
            }
            if given { continue }
            if isFlag {
                if ["1", "true", "yes"].contains(value.lowercased()) { out.append("--\(long)") }
            } else {
                out += ["--\(long)", value]
            }
        }
        return out
    }

    func validate() throws {
        guard parallel >= 1 && parallel <= 64 else { throw ValidationError("--parallel must be between 1 and 64") }
        guard ctx >= 16 else { throw ValidationError("--ctx must be at least 16") }
        guard queue >= 0 else { throw ValidationError("--queue must be at least 0") }
        guard port >= 0 && port <= 65535 else { throw ValidationError("--port must be between 0 and 65535") }
        if let maxBody { guard maxBody >= 1024 else { throw ValidationError("--max-body must be at least 1024") } }
        guard imageMaxBytes >= 1024 else { throw ValidationError("--image-max-bytes must be at least 1024") }
        guard imageTimeout > 0, imageTimeout <= 3600 else { throw ValidationError("--image-timeout must be between 0 and 3600 seconds") }
        guard imageRedirects >= 0 else { throw ValidationError("--image-redirects must be at least 0") }
        guard imageMaxPixels >= 1 else { throw ValidationError("--image-max-pixels must be at least 1") }
        guard (1...6).contains(draftMax) else { throw ValidationError("--draft-max must be between 1 and 6") }
        if let draft, draft != "ngram", !FileManager.default.fileExists(atPath: draft) {
            throw ValidationError("--draft \(draft): neither 'ngram' nor a model file or folder")
        }
    }

    func run() async throws {
        let (path, pulledMMProj) = try model.path.resolved()
        let key = apiKey ?? ProcessInfo.processInfo.environment["GEMMA_API_KEY"]
        var config = ServerConfiguration(
            host: host, port: port, apiKey: key?.isEmpty == true ? nil : key, maxBodyBytes: maxBody,
            scheduler: SchedulerConfiguration(parallel: parallel, contextLength: ctx, queueLimit: queue, draftMax: draft == nil ? 0 : draftMax),
            images: ImageInputConfiguration(fetch: ImageFetchLimits(maxBytes: imageMaxBytes, timeout: imageTimeout, maxRedirects: imageRedirects),
                                            maxPixels: imageMaxPixels, fetchURLs: !noImageURLs))
        config.corsOrigins = corsOrigin.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        config.accessLog = accessLog
        let options = model.options
        if let draft, draft != "ngram" {
            config.loadDraft = { target in
                do { return try DraftModel(LanguageModel.load(path: ModelOption.resolve(draft).path, options: options), for: target) } catch {
                    throw ValidationError("--draft \(draft): \(error)")
                }
            }
        }
        let listening = "\(config.host)", slots = config.scheduler.parallel
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let mmproj = model.mmproj ?? pulledMMProj
        if let mmproj, !FileManager.default.fileExists(atPath: mmproj) { throw ValidationError("no mmproj file at \(mmproj)") }
        try await GemmaServer.run(configuration: config, modelName: name, load: {
            let m = try LanguageModel.load(path: path, options: options, mmproj: mmproj)
            if let note = m.model.placementNote { FileHandle.standardError.write(Data("gemma serve: note: \(note)\n".utf8)) }
            return m
        }, onRunning: { port in
            FileHandle.standardOutput.write(Data("gemma serve: listening on http://\(listening):\(port) (model \(name), \(slots) slots)\n".utf8))
        })
        print("gemma serve: stopped")
    }
}
