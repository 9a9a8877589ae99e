// image_url content parts end to end, in process on 127.0.0.1, over the tiny vision fixture
// (Tests/Fixtures/gemma3-tiny-vision: transformers' Gemma3ForConditionalGeneration with random weights): the prompt
// has the processor's token count (fixtures.json: 32 for one image and "Describe this image.", 98 with Pan & Scan),
// the greedy reply is the library's for the same message (the path `gemma run --image` takes), whatever form the
// image comes in (data: URL, the bare-string shorthand, an http URL served by a loopback Hummingbird app, streamed or
// not); a second question about the same image reuses its cached positions; every bad input is a 400 naming the
// part; a text-only model refuses images.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaServer
import GemmaTestSupport
import Hummingbird
import Testing

enum VisionModel {
    static let folder = TestPaths.fixtures + "/gemma3-tiny-vision"
    static let loaded = Result { try LanguageModel.load(path: folder, options: ModelOptions(threads: 2)) }
    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try #require(FileManager.default.contents(atPath: folder + "/images/" + name), "fixture image \(name)"))
    }
    static func dataURL(_ bytes: [UInt8], type: String = "image/png") -> String {
        "data:\(type);base64," + Data(bytes).base64EncodedString()
    }
    /// The processor's input ids in fixtures.json (`single`: one image + "Describe this image."; `pas`: Pan & Scan).
    static func processorIDs(_ name: String) throws -> [Int] {
        let data = try #require(FileManager.default.contents(atPath: folder + "/fixtures.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let processor = try #require(json["processor"] as? [String: Any])
        return try #require((processor[name] as? [String: Any])?["input_ids"] as? [Int])
    }
}

/// A loopback HTTP server for image URLs: the fixture image, a text file, redirect chains, a slow answer and an
/// oversized one.
struct ImageHost {
    let baseURL: String

    static func start(png: [UInt8]) async -> ImageHost {
        let router = Router()
        router.get("/wide.png") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
        }
        router.get("/notes.txt") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: "just text\n")))
        }
        router.get("/hop/{n}") { _, context in
            let n = Int(context.parameters.get("n") ?? "0") ?? 0
            return Response(status: .found, headers: [.location: n <= 0 ? "/wide.png" : "/hop/\(n - 1)"])
        }
        router.get("/slow.png") { _, _ in
            try await Task.sleep(for: .seconds(6))
            return Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
        }
        router.get("/big.png") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/png"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: png + [UInt8](repeating: 0, count: 300 << 10))))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? -1) })
        Task { try await app.run() }
        var port = -1
        for await p in ports { port = p; break }
        return ImageHost(baseURL: "http://127.0.0.1:\(port)")
    }
}

/// A PNG whose header says width x height (no pixel data follows): decoders read the size first.
func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
    func be(_ x: UInt32) -> [UInt8] { [UInt8(x >> 24), UInt8(x >> 16 & 0xFF), UInt8(x >> 8 & 0xFF), UInt8(x & 0xFF)] }
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] { be(UInt32(data.count)) + Array(type.utf8) + data + be(crc32(Array(type.utf8) + data)) }
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be(width) + be(height) + [8, 2, 0, 0, 0])
        + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
}

/// One chat completion; returns the status, the reply text, usage and the error object.
struct ChatOutcome {
    let status: Int
    let text: String?
    let promptTokens: Int?
    let cachedTokens: Int?
    let error: [String: Any]?
}

func chat(_ server: TestServer, _ body: [String: Any], stream: Bool = false) async throws -> ChatOutcome {
    var b = body
    b["stream"] = stream
    if stream { b["stream_options"] = ["include_usage": true] }
    let data = try JSONSerialization.data(withJSONObject: b)
    let r = try await send(server, "POST", "/v1/chat/completions", body: String(decoding: data, as: UTF8.self), key: nil)
    guard r.status == 200 else { return ChatOutcome(status: r.status, text: nil, promptTokens: nil, cachedTokens: nil, error: r.json?["error"] as? [String: Any]) }
    func usage(_ u: [String: Any]?) -> (Int?, Int?) {
        (u?["prompt_tokens"] as? Int, (u?["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int)
    }
    if !stream {
        let message = ((r.json?["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any]
        let (p, c) = usage(r.json?["usage"] as? [String: Any])
        return ChatOutcome(status: r.status, text: message?["content"] as? String, promptTokens: p, cachedTokens: c, error: nil)
    }
    var text = "", p: Int? = nil, c: Int? = nil
    for event in r.text.components(separatedBy: "\n\n") where event.hasPrefix("data: {") {
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any])
        if let u = obj["usage"] as? [String: Any] { (p, c) = usage(u) }
        for choice in obj["choices"] as? [[String: Any]] ?? [] {
            text += ((choice["delta"] as? [String: Any])?["content"] as? String) ?? ""
        }
    }
    return ChatOutcome(status: r.status, text: text, promptTokens: p, cachedTokens: c, error: nil)
}

func imagePart(_ url: String, shorthand: Bool = false) -> [String: Any] {
    ["type": "image_url", "image_url": shorthand ? url as Any : ["url": url] as Any]
}

func userMessage(_ parts: [[String: Any]]) -> [String: Any] { ["role": "user", "content": parts] }

@Suite(.serialized) struct ServerImageTests {
    static let question = "Describe this image."
    /// Fetch limits small enough to test: 100 KiB, 2 s, 2 redirects.
    static let limits = ImageInputConfiguration(fetch: ImageFetchLimits(maxBytes: 100 << 10, timeout: 2, maxRedirects: 2))
    static let shared: Task<(TestServer, ImageHost)?, Never> = Task {
        guard let lm = try? VisionModel.loaded.get(), let png = try? VisionModel.bytes("wide.png") else {
            Issue.record("cannot load \(VisionModel.folder)")
            return nil
        }
        return (await TestServer.start(lm, apiKey: nil, parallel: 2, maxBodyBytes: nil, images: limits), await ImageHost.start(png: png))
    }

    /// The library's greedy reply to `messages` (the path `gemma run --image --temp 0` takes).
    static func libraryReply(_ lm: LanguageModel, _ messages: [ChatMessage], maxTokens: Int = 8) async throws -> (text: String, prompt: Prompt) {
        let prompt = ChatTemplate.prompt(messages, tokenizer: lm.tokenizer, imageTokens: try #require(lm.imageTokens))
        var text = ""
        for try await event in lm.generate(prompt: prompt, GenerationParameters(sampling: .greedy, maxTokens: maxTokens)) {
            if case let .text(t) = event { text += t }
        }
        return (text, prompt)
    }

    @Test func everyFormOfTheImageGivesTheLibrarysGreedyReply() async throws {
        guard let (server, host) = await Self.shared.value else { return }
        let lm = try VisionModel.loaded.get()
        let png = try VisionModel.bytes("wide.png")
        let reference = try await Self.libraryReply(lm, [ChatMessage(.user, parts: [.image(try lm.embedImage(bytes: png)), .text(Self.question)])])
        let processorCount = try VisionModel.processorIDs("single").count
        #expect(reference.prompt.count == processorCount)
        let forms: [(String, [String: Any], Bool)] = [
            ("data: URL", imagePart(VisionModel.dataURL(png)), false),
            ("data: URL, streamed", imagePart(VisionModel.dataURL(png)), true),
            ("bare-string shorthand", imagePart(VisionModel.dataURL(png), shorthand: true), false),
            ("http URL", imagePart(host.baseURL + "/wide.png"), false),
            ("http URL, streamed", imagePart(host.baseURL + "/wide.png"), true),
            ("http URL after 2 redirects", imagePart(host.baseURL + "/hop/1"), false),
        ]
        for (name, part, stream) in forms {
            let body: [String: Any] = ["messages": [userMessage([part, ["type": "text", "text": Self.question]])],
                                       "max_tokens": 8, "temperature": 0]
            let r = try await chat(server, body, stream: stream)
            #expect(r.status == 200, "\(name): \(String(describing: r.error))")
            #expect(r.promptTokens == processorCount, "\(name): prompt_tokens \(String(describing: r.promptTokens))")
            #expect(r.text == reference.text, "\(name): \(String(describing: r.text)) vs the library's \(reference.text)")
        }
        print("image_url forms: \(forms.count) requests, prompt \(processorCount) tokens, reply \(reference.text.debugDescription)")
    }

    @Test func panAndScanAddsTheProcessorsCrops() async throws {
        guard let (server, _) = await Self.shared.value else { return }
        let lm = try VisionModel.loaded.get()
        let png = try VisionModel.bytes("wide.png")
        let image = try lm.embedImage(bytes: png, panAndScan: true)
        let reference = try await Self.libraryReply(lm, [ChatMessage(.user, parts: [.image(image), .text(Self.question)])])
        let body: [String: Any] = ["messages": [userMessage([imagePart(VisionModel.dataURL(png)), ["type": "text", "text": Self.question]])],
                                   "max_tokens": 8, "temperature": 0, "pan_and_scan": true]
        let r = try await chat(server, body)
        #expect(r.status == 200, "\(String(describing: r.error))")
        #expect(r.promptTokens == (try VisionModel.processorIDs("pas").count))
        #expect(r.promptTokens == 98)
        #expect(r.text == reference.text)
    }

    /// A second question about the same image keeps the image's positions in the slot (content-keyed reuse under
    /// the exact rule: whole steps of the prompt's own cold schedule). Two things of the tiny fixture stand in the
    /// way and are set aside here: its sliding window of 8 (the rings have moved past any earlier position once a
    /// reply is decoded: a copy of the folder with a window of 512, as the released models' 1024), and its 16-token
    /// images inside 64-row steps (a prefill chunk ending with the image makes it end a step, as the released
    /// models' 256-token images, each a step of its own, always do). The encoded image is taken from the cache.
    @Test func aSecondQuestionAboutTheImageReusesItsPositions() async throws {
        let folder = try Self.copy(VisionModel.folder, slidingWindow: 512)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let lm = try LanguageModel.load(path: folder, options: ModelOptions(threads: 2))
        let png = try VisionModel.bytes("wide.png")
        let image = try lm.embedImage(bytes: png)
        let system = "You look at pictures."
        func messages(_ q: String) -> [ChatMessage] { [.system(system), ChatMessage(.user, parts: [.image(image), .text(q)])] }
        let imageTokens = try #require(lm.imageTokens)
        let span = try #require(ChatTemplate.prompt(messages("Q"), tokenizer: lm.tokenizer, imageTokens: imageTokens).bidirectionalSpans.first)
        let server = await TestServer.start(lm, apiKey: nil, parallel: 1, prefillChunk: span.upperBound, maxBodyBytes: nil, images: Self.limits)
        func body(_ q: String) -> [String: Any] {
            ["messages": [["role": "system", "content": system], userMessage([imagePart(VisionModel.dataURL(png)), ["type": "text", "text": q]])],
             "max_tokens": 8, "temperature": 0]
        }
        let first = try await chat(server, body(Self.question))
        let second = try await chat(server, body("What colour is it?"))
        let cold = try await Self.libraryReply(lm, messages("What colour is it?"))
        #expect(first.status == 200 && second.status == 200)
        #expect(first.cachedTokens == 0)
        #expect(second.cachedTokens == span.upperBound, "reused \(String(describing: second.cachedTokens)), image span \(span)")
        #expect(second.promptTokens == cold.prompt.count)
        #expect(second.text == cold.text)
        let metrics = try await send(server, "GET", "/metrics", key: nil).text
        #expect(metrics.contains("gemma_images_total{outcome=\"encoded\"} 1\n") && metrics.contains("gemma_images_total{outcome=\"cached\"} 1\n"),
                "\(metrics.split(separator: "\n").filter { $0.hasPrefix("gemma_images") })")
        print("second question about one image: prompt \(second.promptTokens ?? -1) tokens, \(second.cachedTokens ?? -1) reused (image span \(span))")
    }

    /// A copy of a Hugging Face folder (files linked) whose config.json sets the text model's sliding window.
    static func copy(_ folder: String, slidingWindow: Int) throws -> String {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("gemma-vision-\(UUID().uuidString)").path
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: folder) where name != "config.json" {
            try fm.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: folder + "/" + name)
        }
        let data = try #require(fm.contents(atPath: folder + "/config.json"))
        var config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var text = try #require(config["text_config"] as? [String: Any])
        text["sliding_window"] = slidingWindow
        config["text_config"] = text
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return dir
    }

    @Test func badImagesAre400sNamingThePart() async throws {
        guard let (server, host) = await Self.shared.value else { return }
        let png = try VisionModel.bytes("wide.png")
        let text = ["type": "text", "text": "hi"]
        func one(_ part: [String: Any]) -> [String: Any] { ["messages": [userMessage([text, part])], "max_tokens": 2] }
        let cases: [(String, [String: Any], code: String?, says: String)] = [
            ("base64 that is no base64", one(imagePart("data:image/png;base64,%%%%")), "invalid_image_url", "data: URL"),
            ("data: URL without a comma", one(imagePart("data:image/png;base64")), "invalid_image_url", "no comma"),
            ("a text file as a data: URL", one(imagePart(VisionModel.dataURL(Array("hello, world".utf8), type: "text/plain"))), "invalid_image", "not a JPEG, PNG or WebP"),
            ("a truncated PNG", one(imagePart(VisionModel.dataURL(Array(png.prefix(3000))))), "invalid_image", "PNG"),
            ("10000 x 6000 pixels (under PIL's limit, over the server's)", one(imagePart(VisionModel.dataURL(pngHeader(width: 10_000, height: 6_000)))), "image_too_large", "60000000 pixels"),
            ("a data: URL over the size limit", one(imagePart(VisionModel.dataURL(png + [UInt8](repeating: 0, count: 120 << 10)))), "image_too_large", "102400-byte limit"),
            ("an http URL answering 404", one(imagePart(host.baseURL + "/absent.png")), "invalid_image_url", "404"),
            ("an http URL of a text file", one(imagePart(host.baseURL + "/notes.txt")), "invalid_image", "not a JPEG, PNG or WebP"),
            ("an http URL over the size limit", one(imagePart(host.baseURL + "/big.png")), "image_too_large", "limit"),
            ("an http URL with 3 redirects (limit 2)", one(imagePart(host.baseURL + "/hop/2")), "invalid_image_url", "redirects"),
            ("an http URL slower than the 2 s limit", one(imagePart(host.baseURL + "/slow.png")), "invalid_image_url", "no answer within 2 s"),
            ("an unreachable http URL", one(imagePart("http://127.0.0.1:1/x.png")), "invalid_image_url", "cannot fetch"),
            ("a file path", one(imagePart("/etc/hostname")), "invalid_image_url", "data: URL"),
            ("a file: URL", one(imagePart("file:///etc/hostname")), "invalid_image_url", "http(s) URL"),
            ("image_url without url", one(["type": "image_url", "image_url": ["detail": "high"]]), nil, "url"),
            ("image_url a number", one(["type": "image_url", "image_url": 5]), nil, "image_url"),
            ("an unknown part type", one(["type": "input_audio", "input_audio": ["data": "", "format": "wav"]]), nil, "input_audio"),
            ("an image in a system message", ["messages": [["role": "system", "content": [imagePart(VisionModel.dataURL(png))]], ["role": "user", "content": "hi"]]], nil, "user messages only"),
            ("pan_and_scan a string", ["messages": [userMessage([imagePart(VisionModel.dataURL(png))])], "pan_and_scan": "yes"], nil, "pan_and_scan"),
            ("40 images for a 512-token context", ["messages": [userMessage(Array(repeating: imagePart(host.baseURL + "/wide.png"), count: 40))]], "context_length_exceeded", "context"),
        ]
        for (name, body, code, says) in cases {
            let r = try await chat(server, body)
            let message = r.error?["message"] as? String ?? ""
            #expect(r.status == 400, "\(name): status \(r.status)")
            #expect(code == nil || r.error?["code"] as? String == code, "\(name): code \(String(describing: r.error?["code"])), \(message)")
            #expect(message.contains(says), "\(name): \(message)")
            print(String(format: "  %-60@ %d %@: %@", name, r.status, (r.error?["code"] as? String) ?? "-", message))
        }
        // Completions stay text-only, and say where images go.
        let completion = try await send(server, "POST", "/v1/completions",
                                        body: #"{"prompt":[{"type":"image_url","image_url":"data:image/png;base64,AAAA"}]}"#, key: nil)
        #expect(completion.status == 400)
        #expect(((completion.json?["error"] as? [String: Any])?["message"] as? String)?.contains("/v1/chat/completions") == true)
        // The server is still up and answers images.
        let ok = try await chat(server, ["messages": [userMessage([imagePart(VisionModel.dataURL(png)), text])], "max_tokens": 2])
        #expect(ok.status == 200)
    }

    @Test func theModelCardSaysWhetherTheModelTakesImages() async throws {
        guard let (server, _) = await Self.shared.value else { return }
        let card = try #require(((try await send(server, "GET", "/v1/models", key: nil)).json?["data"] as? [[String: Any]])?.first)
        let meta = try #require(card["meta"] as? [String: Any])
        #expect((meta["modalities"] as? [String: Any])?["vision"] as? Bool == true)
        #expect(meta["image_tokens"] as? Int == 16)
    }

    @Test func aTextOnlyModelRefusesImages() async throws {
        let lm = try LanguageModel.load(path: TestPaths.fixtures + "/gemma3-tiny-text", options: ModelOptions(threads: 2))
        let server = await TestServer.start(lm, apiKey: nil, parallel: 1, maxBodyBytes: nil)
        let png = try VisionModel.bytes("wide.png")
        let r = try await chat(server, ["messages": [userMessage([imagePart(VisionModel.dataURL(png)), ["type": "text", "text": "hi"]])]])
        #expect(r.status == 400)
        #expect(r.error?["code"] as? String == "images_not_supported")
        #expect((r.error?["message"] as? String)?.contains("reads no images") == true, "\(String(describing: r.error))")
        let card = try #require(((try await send(server, "GET", "/v1/models", key: nil)).json?["data"] as? [[String: Any]])?.first)
        #expect(((card["meta"] as? [String: Any])?["modalities"] as? [String: Any])?["vision"] as? Bool == false)
        // Text parts still work.
        let t = try await chat(server, ["messages": [userMessage([["type": "text", "text": "hi"]])], "max_tokens": 2])
        #expect(t.status == 200)
    }
}
