// Images of chat requests (OpenAI's image_url content parts): read (a data: URL decoded, an http(s) URL fetched with
// the server's size, time and redirect limits), decoded under the server's pixel limit, preprocessed and encoded by
// the model's vision encoder, then placed in the prompt by the chat template as `gemma run --image` places them.
// This happens before the job is queued, on a thread of its own: the model thread keeps decoding meanwhile (the
// worker pool serves both in turn), and a job reaches the scheduler as a finished Prompt. Encodes run one at a time
// (each holds a full-size image and the encoder's buffers), and encoded images are kept by content (SHA-256 of the
// bytes, and Pan & Scan), so a second question about the same image is not encoded again; its soft tokens, keyed by
// the same content, also keep their positions in a slot's cache.
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel
import GemmaTokenizer
import GemmaVision
import Synchronization

/// A piece of a chat message's content as the request gives it.
public enum RequestPart: Sendable, Equatable {
    case text(String)
    /// An image_url part: its URL (a data: or http(s) URL) and where it stands in the request (`messages[0].content[1]`).
    case image(url: String, param: String)

    var isImage: Bool { if case .image = self { true } else { false } }
    var text: String { if case let .text(t) = self { t } else { "" } }
}

/// A chat message as the request gives it.
public struct RequestMessage: Sendable, Equatable {
    public var role: ChatMessage.Role
    public var parts: [RequestPart]
}

/// A chat request's messages whose images are still to be read and encoded.
public struct ImageMessages: Sendable, Equatable {
    public var messages: [RequestMessage]
    /// The request's `pan_and_scan`: wide or tall images also get their Pan & Scan crops.
    public var panAndScan: Bool

    /// The image parts in order: (URL, where it stands in the request).
    public var images: [(url: String, param: String)] {
        messages.flatMap(\.parts).compactMap { if case let .image(url, param) = $0 { (url, param) } else { nil } }
    }

    /// The prompt with `images` (one per image part, in order) where their parts stand.
    func prompt(tokenizer: Tokenizer, imageTokens: ImageTokens, images: [PromptImage]) -> Prompt {
        precondition(images.count == self.images.count, "one image per image part")
        var i = 0
        let chat = messages.map { m in
            ChatMessage(m.role, parts: m.parts.map { part -> ChatContent in
                switch part {
                case let .text(t): return .text(t)
                case .image:
                    i += 1
                    return .image(images[i - 1])
                }
            })
        }
        return ChatTemplate.prompt(chat, tokenizer: tokenizer, imageTokens: imageTokens)
    }

    /// The prompt's size before the images are read: each image as one view of `softTokens` rows (stand-ins with
    /// no values, never run).
    func prompt(tokenizer: Tokenizer, imageTokens: ImageTokens, softTokens: Int) -> Prompt {
        let standIn = PromptImage(views: [ImageEmbedding(rows: [], count: max(1, softTokens), digest: "size only")])
        return prompt(tokenizer: tokenizer, imageTokens: imageTokens, images: Array(repeating: standIn, count: images.count))
    }
}

/// How the server reads images.
public struct ImageInputConfiguration: Sendable, Equatable {
    /// Largest image (a fetched file or a data: URL's payload, in bytes), seconds for a fetch, redirects followed.
    public var fetch: ImageFetchLimits
    /// Largest width x height decoded, checked before any pixel buffer is allocated. Below PIL's 178,956,970: an
    /// image that large takes seconds and over a gigabyte to decode, and one request may not hold the server so.
    public var maxPixels: Int
    /// Whether http(s) image URLs are fetched (off: data: URLs only).
    public var fetchURLs: Bool
    /// Bytes of encoded images kept for reuse (least recently used ones go first).
    public var cacheBytes: Int

    public init(fetch: ImageFetchLimits = ImageFetchLimits(maxBytes: 20 << 20, timeout: 30, maxRedirects: 5),
                maxPixels: Int = 50_000_000, fetchURLs: Bool = true, cacheBytes: Int = 64 << 20) {
        self.fetch = fetch
        self.maxPixels = maxPixels
        self.fetchURLs = fetchURLs
        self.cacheBytes = cacheBytes
    }

    /// The request-body limit for a model that reads images, unless one is set: one image at the size limit as
    /// base64 (4 bytes per 3), plus 1 MiB for the rest.
    public var bodyBytes: Int { fetch.maxBytes / 3 * 4 + 4 + (1 << 20) }
}

/// Reads and encodes the images of chat requests, one encode at a time, keeping encoded images by content.
final class ImageInput: Sendable {
    let configuration: ImageInputConfiguration
    let metrics: Metrics
    /// Held while an image is decoded and encoded.
    private let encoding = Mutex<Void>(())
    private let cache: Mutex<ImageCache>

    init(configuration: ImageInputConfiguration, metrics: Metrics) {
        self.configuration = configuration
        self.metrics = metrics
        cache = Mutex(ImageCache(limit: configuration.cacheBytes))
    }

    /// The prompt of `pending` with its images read and encoded, on a thread of its own (reads and encodes block for
    /// seconds). Throws a 400 that names the image part for an image that cannot be read or used, and for a prompt
    /// that, with its Pan & Scan crops, outgrows `contextLength`.
    func prompt(for pending: ImageMessages, model: LanguageModel, contextLength: Int) async throws(APIError) -> Prompt {
        let result: Result<Prompt, APIError> = await withCheckedContinuation { done in
            let thread = Thread {
                done.resume(returning: Result { () throws(APIError) -> Prompt in
                    try self.build(pending, model: model, contextLength: contextLength)
                })
            }
            thread.stackSize = 8 << 20
            thread.name = "gemma-image"
            thread.start()
        }
        return try result.get()
    }

    private func build(_ pending: ImageMessages, model: LanguageModel, contextLength: Int) throws(APIError) -> Prompt {
        guard let imageTokens = model.imageTokens else {
            throw .invalid("This model reads no images.", code: "images_not_supported")
        }
        var images: [PromptImage] = []
        for (url, param) in pending.images {
            images.append(try image(url, param: param, panAndScan: pending.panAndScan, model: model))
        }
        let prompt = pending.prompt(tokenizer: model.tokenizer, imageTokens: imageTokens, images: images)
        guard prompt.count < contextLength else {
            let crops = images.reduce(0) { $0 + $1.crops }
            throw .invalid("This model's context is \(contextLength) tokens, but the prompt has \(prompt.count) with its images"
                + (crops > 0 ? " (\(crops) Pan & Scan crop(s) included)" : "") + " (at least one more is needed to generate). Shorten the prompt"
                + (crops > 0 ? " or leave out pan_and_scan." : "."),
                param: "messages", code: "context_length_exceeded")
        }
        return prompt
    }

    /// One image part's soft tokens: from the cache, or read, decoded and encoded.
    private func image(_ url: String, param: String, panAndScan: Bool, model: LanguageModel) throws(APIError) -> PromptImage {
        let isData = url.prefix(5).lowercased() == "data:"
        if !isData && !configuration.fetchURLs {
            throw .invalid("\(param): this server does not fetch image URLs; send the image as a data: URL (data:image/png;base64,...).",
                           param: param, code: "invalid_image_url")
        }
        let bytes: [UInt8]
        do {
            bytes = try ImageSource.bytes(of: url, limits: configuration.fetch)
        } catch {
            metrics.countImage(.failed)
            throw Self.apiError(error, param: param)
        }
        let digest = "sha256:" + SHA256.hex(bytes), key = digest + (panAndScan ? " pan-and-scan" : "")
        if let hit = cache.withLock({ $0.image(key) }) {
            metrics.countImage(.cached)
            return hit
        }
        do {
            return try encoding.withLock { _ throws -> PromptImage in
                // Another request may have encoded the same image while this one waited.
                if let hit = cache.withLock({ $0.image(key) }) {
                    metrics.countImage(.cached)
                    return hit
                }
                let started = ContinuousClock.now
                let image = try model.embedImage(bytes: bytes, panAndScan: panAndScan, maxPixels: configuration.maxPixels, digest: digest)
                metrics.countImage(.encoded, seconds: (ContinuousClock.now - started).seconds)
                cache.withLock { $0.insert(image, key: key) }
                return image
            }
        } catch {
            metrics.countImage(.failed)
            throw Self.apiError(error, param: param)
        }
    }

    /// A 400 naming the image part for what the client sent; a 500 for a failure of the encoder itself.
    static func apiError(_ error: any Error, param: String) -> APIError {
        switch error {
        case let e as ImageSourceError:
            if case .tooLarge = e { return .invalid("\(param): \(e).", param: param, code: "image_too_large") }
            return .invalid("\(param): \(e).", param: param, code: "invalid_image_url")
        case let e as ImageError:
            if case .tooManyPixels = e { return .invalid("\(param): \(e).", param: param, code: "image_too_large") }
            return .invalid("\(param): the image cannot be read: \(e).", param: param, code: "invalid_image")
        case let e as ModelError:
            return .invalid("\(param): \(e)", param: param, code: "images_not_supported")
        default:
            return APIError(.internalServerError, "\(param): encoding the image failed: \(error)", type: "server_error")
        }
    }
}

/// Encoded images by content key, within a byte budget; the least recently used go first.
struct ImageCache {
    let limit: Int
    private var entries: [String: (image: PromptImage, bytes: Int, used: Int)] = [:]
    private var clock = 0
    private(set) var bytes = 0

    init(limit: Int) { self.limit = max(0, limit) }

    mutating func image(_ key: String) -> PromptImage? {
        guard let e = entries[key] else { return nil }
        clock += 1
        entries[key]?.used = clock
        return e.image
    }

    mutating func insert(_ image: PromptImage, key: String) {
        let size = image.views.reduce(0) { $0 + $1.rows.count * MemoryLayout<Float>.size }
        guard size <= limit, entries[key] == nil else { return }
        clock += 1
        entries[key] = (image, size, clock)
        bytes += size
        while bytes > limit, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            bytes -= oldest.value.bytes
            entries[oldest.key] = nil
        }
    }

    var count: Int { entries.count }
}
