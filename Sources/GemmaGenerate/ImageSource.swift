// Where an image's bytes come from: a file, a `data:` URL (base64), or an http(s) URL fetched with limits on size,
// time and redirects (the CLI's --image and the server's image_url parts). The bytes are decoded by GemmaVision.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Why an image could not be read.
public enum ImageSourceError: Error, Equatable, Sendable, CustomStringConvertible {
    case file(String, String)
    case dataURL(String)
    case fetch(String, String)
    case tooLarge(String, limit: Int)

    public var description: String {
        switch self {
        case let .file(path, why): "cannot read image file \(path): \(why)"
        case let .dataURL(why): "bad data: URL: \(why)"
        case let .fetch(url, why): "cannot fetch image \(url): \(why)"
        case let .tooLarge(what, limit):
            "\(what) is larger than the \(limit % (1 << 20) == 0 ? "\(limit >> 20) MiB" : "\(limit)-byte") limit for an image"
        }
    }
}

/// Limits on fetching an image.
public struct ImageFetchLimits: Sendable, Equatable {
    /// Largest image file accepted, in bytes.
    public var maxBytes: Int
    /// Seconds for the whole fetch.
    public var timeout: Double
    /// Redirects followed.
    public var maxRedirects: Int

    public init(maxBytes: Int = 20 << 20, timeout: Double = 30, maxRedirects: Int = 5) {
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.maxRedirects = maxRedirects
    }

    /// The timeout for messages: "30", "2.5".
    var seconds: String { timeout == timeout.rounded() && abs(timeout) < 1e9 ? String(Int(timeout)) : String(timeout) }
}

public enum ImageSource {
    /// The bytes of `reference`: an http(s) URL, a `data:` URL, or a file path.
    public static func bytes(of reference: String, limits: ImageFetchLimits = ImageFetchLimits()) throws -> [UInt8] {
        let lower = reference.prefix(8).lowercased()
        if lower.hasPrefix("data:") { return try decodeDataURL(reference, limits: limits) }
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") { return try fetch(reference, limits: limits) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: reference, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ImageSourceError.file(reference, "no such file")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: reference)[.size] as? Int) ?? 0
        guard size <= limits.maxBytes else { throw ImageSourceError.tooLarge(reference, limit: limits.maxBytes) }
        guard let data = FileManager.default.contents(atPath: reference) else { throw ImageSourceError.file(reference, "not readable") }
        return Array(data)
    }

    /// `data:[<media type>][;base64],<data>`: base64 payloads (as OpenAI clients send images), or percent-encoded.
    public static func decodeDataURL(_ url: String, limits: ImageFetchLimits = ImageFetchLimits()) throws -> [UInt8] {
        guard let comma = url.firstIndex(of: ",") else { throw ImageSourceError.dataURL("no comma before the payload") }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        let payload = url[url.index(after: comma)...]
        guard payload.utf8.count <= limits.maxBytes / 3 * 4 + 8 else { throw ImageSourceError.tooLarge("the data: URL", limit: limits.maxBytes) }
        if header.hasSuffix(";base64") {
            let cleaned = payload.filter { !$0.isWhitespace }
            guard let data = Data(base64Encoded: String(cleaned), options: [.ignoreUnknownCharacters]) else {
                throw ImageSourceError.dataURL("the payload is not valid base64")
            }
            guard !data.isEmpty else { throw ImageSourceError.dataURL("the payload is empty") }
            return Array(data)
        }
        guard let text = String(payload).removingPercentEncoding else { throw ImageSourceError.dataURL("bad percent-encoding") }
        return Array(text.utf8)
    }

    /// GET with the limits: a body over `maxBytes` (by Content-Length or as it arrives) is cut off and refused.
    public static func fetch(_ url: String, limits: ImageFetchLimits = ImageFetchLimits()) throws -> [UInt8] {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https", u.host != nil else {
            throw ImageSourceError.fetch(url, "not an http(s) URL")
        }
        let delegate = FetchDelegate(limits: limits)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = limits.timeout
        config.timeoutIntervalForResource = limits.timeout
        let session = URLSession(configuration: config, delegate: delegate, delegateQueue: nil)
        defer { session.invalidateAndCancel() }
        var request = URLRequest(url: u, timeoutInterval: limits.timeout)
        request.setValue("swift-gemma", forHTTPHeaderField: "User-Agent")
        session.dataTask(with: request).resume()
        guard delegate.done.wait(timeout: .now() + limits.timeout + 1) == .success else {
            throw ImageSourceError.fetch(url, "no answer within \(limits.seconds) s")
        }
        return try delegate.result(url)
    }
}

/// Collects a fetch's body, enforcing the size and redirect limits.
private final class FetchDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let limits: ImageFetchLimits
    let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var data = Data()
    private var status = 0
    private var failure: String?
    private var redirects = 0
    private var over = false

    init(limits: ImageFetchLimits) { self.limits = limits }

    func result(_ url: String) throws -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        if over { throw ImageSourceError.tooLarge(url, limit: limits.maxBytes) }
        if let failure { throw ImageSourceError.fetch(url, failure) }
        guard (200..<300).contains(status) else { throw ImageSourceError.fetch(url, "HTTP status \(status)") }
        guard !data.isEmpty else { throw ImageSourceError.fetch(url, "empty body") }
        return Array(data)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let http = response as? HTTPURLResponse
        lock.lock()
        status = http?.statusCode ?? 0
        let tooLong = response.expectedContentLength > Int64(limits.maxBytes)
        if tooLong { over = true }
        lock.unlock()
        completionHandler(tooLong ? .cancel : .allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive chunk: Data) {
        lock.lock()
        data.append(chunk)
        let tooLong = data.count > limits.maxBytes
        if tooLong { over = true; data = Data() }
        lock.unlock()
        if tooLong { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        lock.lock()
        redirects += 1
        let allowed = redirects <= limits.maxRedirects
        let scheme = request.url?.scheme?.lowercased()
        if !allowed { failure = "more than \(limits.maxRedirects) redirects" }
        else if scheme != "http" && scheme != "https" { failure = "redirected to a non-http(s) URL" }
        let follow = failure == nil
        lock.unlock()
        completionHandler(follow ? request : nil)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.lock()
        if let error, failure == nil, !over {
            let timedOut = (error as? URLError)?.code == .timedOut || (error as NSError).code == NSURLErrorTimedOut
            failure = timedOut ? "no answer within \(limits.seconds) s" : error.localizedDescription
        }
        lock.unlock()
        done.signal()
    }
}
