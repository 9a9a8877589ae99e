// Blocking HTTP for the hub client: a request's status and headers, its body in memory (API answers) or appended to
// a file as it arrives (downloads). Redirects are followed (the hub sends LFS files to its CDN), and the token is not
// sent to another host. URLSession from FoundationNetworking, the one HTTP client the toolchain ships on Linux.
import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct HTTPResponse {
    var status: Int
    var headers: [String: String]  // lower-cased names
    var body: Data
    /// Bytes appended to the file (downloads).
    var written: Int64
    /// The URL that answered (after redirects).
    var url: URL?

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

enum HTTPFailure: Error {
    /// The connection failed or dropped; `written` bytes reached the file first.
    case transport(String, written: Int64)
    /// Writing the file failed (disk full, ...).
    case write(String, written: Int64)
}

/// One request at a time, on a session of its own.
final class HTTPRequest: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)
    private var response = HTTPResponse(status: 0, headers: [:], body: Data(), written: 0, url: nil)
    private var failure: HTTPFailure?
    private let file: FileHandle?
    private let originalHost: String?
    private let progress: (@Sendable (_ size: Int64, _ transferred: Int64) -> Void)?
    private var redirects = 0
    /// Statuses whose body goes to the file (a 200 or 206 answer to a download); any other body stays in memory.
    private var toFile = false
    /// The file's length before this request (a Range request resumes there), and where the body starts in it.
    private let resumeFrom: Int64
    private var base: Int64 = 0

    private var written: ((Data, Int64) -> Void)?
    /// false: a redirect is the answer (a HEAD request reads the hub's headers on it, as huggingface_hub does).
    private var follow = true

    private init(file: FileHandle?, host: String?, resumeFrom: Int64, progress: (@Sendable (Int64, Int64) -> Void)?) {
        self.file = file
        originalHost = host
        self.resumeFrom = resumeFrom
        self.progress = progress
    }

    /// Sends `request`; with `file` (positioned at its end, `resumeFrom` bytes long), a 206 answer starting at
    /// `resumeFrom` is appended to it and a 200 answer replaces it; `progress` gets the file's length and the bytes
    /// this request transferred.
    /// `written` sees each piece of the body after it is in the file, with the file's length before it.
    static func send(_ request: URLRequest, file: FileHandle? = nil, resumeFrom: Int64 = 0, followRedirects: Bool = true,
                     idleTimeout: TimeInterval = 30, written: ((Data, Int64) -> Void)? = nil,
                     progress: (@Sendable (Int64, Int64) -> Void)? = nil) throws(HTTPFailure) -> HTTPResponse {
        let delegate = HTTPRequest(file: file, host: request.url?.host, resumeFrom: resumeFrom, progress: progress)
        delegate.follow = followRedirects
        delegate.written = written
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = idleTimeout
        config.timeoutIntervalForResource = 7 * 24 * 3600
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.urlCache = nil
        let session = URLSession(configuration: config, delegate: delegate, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        delegate.done.wait()
        delegate.lock.lock(); defer { delegate.lock.unlock() }
        if let f = delegate.failure { throw f }
        return delegate.response
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let http = response as? HTTPURLResponse
        lock.lock()
        self.response.status = http?.statusCode ?? 0
        self.response.url = response.url
        for (k, v) in http?.allHeaderFields ?? [:] {
            if let k = k as? String, let v = v as? String { self.response.headers[k.lowercased()] = v }
        }
        toFile = file != nil && (self.response.status == 200 || self.response.status == 206)
        var cancel = false
        if toFile, let file {
            if self.response.status == 200 {
                // The whole file: what a previous attempt left is replaced.
                do { try file.truncate(atOffset: 0) } catch { failure = .write("\(error.localizedDescription)", written: 0); cancel = true }
                base = 0
            } else if self.response.header("Content-Range")?.lowercased().hasPrefix("bytes \(resumeFrom)-") == true {
                base = resumeFrom
            } else {
                failure = .transport("a partial answer that does not start at byte \(resumeFrom) (\(self.response.header("Content-Range") ?? "no Content-Range"))", written: 0)
                cancel = true
            }
        }
        lock.unlock()
        completionHandler(cancel ? .cancel : .allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive chunk: Data) {
        lock.lock()
        if toFile, let file, failure == nil {
            do {
                try file.write(contentsOf: chunk)
                written?(chunk, base + response.written)
                response.written += Int64(chunk.count)
            } catch {
                failure = .write("\(error.localizedDescription)", written: response.written)
                lock.unlock()
                dataTask.cancel()
                return
            }
            let w = response.written, size = base + w
            lock.unlock()
            progress?(size, w)
            return
        }
        if response.body.count < 1 << 24 { response.body.append(chunk) }
        lock.unlock()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        lock.lock()
        redirects += 1
        let tooMany = redirects > 10, follow = follow
        if !follow {
            // The redirect itself is the answer.
            self.response.status = response.statusCode
            self.response.url = response.url
            for (k, v) in response.allHeaderFields {
                if let k = k as? String, let v = v as? String { self.response.headers[k.lowercased()] = v }
            }
        }
        lock.unlock()
        guard !tooMany, follow else { return completionHandler(nil) }
        var next = request
        // The token is for the hub, not for the CDN it redirects to.
        if request.url?.host != originalHost { next.setValue(nil, forHTTPHeaderField: "Authorization") }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.lock()
        if let error, failure == nil {
            failure = .transport(error.localizedDescription, written: response.written)
        }
        lock.unlock()
        done.signal()
    }
}
