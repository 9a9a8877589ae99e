// `gemma pull`: a repository's files from the Hugging Face hub (or any server speaking its protocol, HF_ENDPOINT)
// into the shared cache (HubCache). The protocol as huggingface_hub uses it: the repository's files, sizes and
// hashes from /api/models/<repo>/revision/<rev>?blobs=true; each file from /<repo>/resolve/<commit>/<path>
// (redirected to the CDN for LFS files), resumed with Range after a drop, retried with back-off on 429, 5xx and
// lost connections; every blob checked against the hub's hash (sha256 for LFS files, the git blob id for the
// others) before it is linked into the snapshot.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemmaFormats

/// Where and how to reach the hub.
public struct HubOptions: Sendable {
    public var endpoint: String
    public var token: String?
    /// HF_HUB_OFFLINE: only what the cache holds.
    public var offline: Bool
    /// Attempts per request (429, 5xx, dropped connections), and the first back-off in seconds (doubled each time).
    public var attempts = 6
    public var backoff: Double = 1

    public init(endpoint: String = "https://huggingface.co", token: String? = nil, offline: Bool = false) {
        self.endpoint = endpoint
        self.token = token
        self.offline = offline
    }

    /// HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the token file `hf auth login` writes), HF_HUB_OFFLINE;
    /// GEMMA_PULL_ATTEMPTS (default 6) attempts per request.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment, cache: HubCache) {
        var endpoint = env["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        var token = env["HF_TOKEN"] ?? env["HUGGING_FACE_HUB_TOKEN"]
        if token?.isEmpty ?? true {
            let home = env["HF_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((cache.root as NSString).deletingLastPathComponent)
            let file = env["HF_TOKEN_PATH"] ?? (home + "/token")
            token = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let off = (env["HF_HUB_OFFLINE"] ?? "").lowercased()
        self.init(endpoint: endpoint, token: token?.isEmpty ?? true ? nil : token, offline: ["1", "true", "yes", "on"].contains(off))
        if let n = env["GEMMA_PULL_ATTEMPTS"].flatMap(Int.init), n >= 1 { attempts = n }
    }
}

/// A file of a repository as the hub lists it.
public struct HubFile: Sendable, Equatable {
    public var path: String
    public var size: Int64?
    /// The LFS object's sha256, for files in LFS.
    public var sha256: String?
    /// The git blob id (SHA-1), for the others.
    public var blobID: String?

    /// The name huggingface_hub gives its blob: the sha256 for LFS files, else the git blob id.
    public var etag: String? { sha256 ?? blobID }
}

/// What a pull (or the cache) gives: the files of a snapshot, and which of them to open.
public struct PulledModel: Sendable {
    public var repo: String
    public var commit: String
    public var snapshot: String
    /// Paths in the repository.
    public var files: [String]
    /// What to load: the GGUF file (its first part when split), or the snapshot folder for a Hugging Face folder.
    public var model: String
    /// The vision encoder of a GGUF repository (llama.cpp's mmproj file), when it has one.
    public var mmproj: String?
}

/// Progress of a pull: the file being fetched and the bytes done.
public struct PullProgress: Sendable {
    public var file: String
    public var index: Int, count: Int
    public var fileBytes: Int64, fileTotal: Int64?
    public var bytes: Int64, total: Int64
    /// Bytes this run has transferred (resumed bytes not counted), for the rate.
    public var transferred: Int64
    public var finished: Bool
}

public final class HubClient: @unchecked Sendable {
    public let cache: HubCache
    public let options: HubOptions
    /// Called as downloads proceed (from the download's thread).
    public var progress: (@Sendable (PullProgress) -> Void)?
    /// Called with a line worth telling (a retry, a resume, a reused blob).
    public var note: (@Sendable (String) -> Void)?

    public init(cache: HubCache, options: HubOptions) {
        self.cache = cache
        self.options = options
    }

    // MARK: Choosing files

    static let folderFiles: Set<String> = [
        "config.json", "generation_config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json", "processor_config.json",
        "chat_template.json", "chat_template.jinja", "model.safetensors.index.json",
    ]
    /// Quantizations tried in order when none is named: what llama.cpp's -hf takes first, then by size.
    static let preferredQuants = ["Q4_K_M", "Q4_0", "Q4_K_S", "Q5_K_M", "Q6_K", "Q8_0", "BF16", "F16", "F32"]

    /// The files to fetch of a repository holding `paths`, and which to open (`PulledModel.model` relative).
    public static func choose(_ ref: HubReference, paths: [String]) throws(HubError) -> (files: [String], model: String, mmproj: String?) {
        let ggufs = paths.filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        let isMMProj = { (p: String) in (p as NSString).lastPathComponent.lowercased().contains("mmproj") }
        let models = ggufs.filter { !isMMProj($0) }
        let mmproj = ggufs.filter(isMMProj).sorted { rank($0) < rank($1) }.first
        func parts(of file: String) -> [String] {
            guard let split = splitBase(file) else { return [file] }
            return models.filter { splitBase($0) == split }.sorted()
        }
        if let sel = ref.selector, paths.contains(sel) {
            if sel.lowercased().hasSuffix(".gguf") && !isMMProj(sel) {
                let p = parts(of: sel)
                return (p + (mmproj.map { [$0] } ?? []), p[0], mmproj)
            }
            return ([sel], sel, nil)
        }
        if !models.isEmpty {
            var chosen: String?
            if let sel = ref.selector {
                let hits = models.filter { matches(quant: sel, file: $0) }
                let bases = Set(hits.map { splitBase($0) ?? $0 })
                guard let first = hits.first else {
                    throw .choice("\(ref.repo) has no \(sel) file; its GGUF files: \(models.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))")
                }
                guard bases.count == 1 else {
                    throw .choice("\(sel) matches several files of \(ref.repo): \(hits.joined(separator: ", ")); name one with \(ref.repo):FILE")
                }
                chosen = first
            } else {
                chosen = preferredQuants.lazy.compactMap { q in models.first { matches(quant: q, file: $0) } }.first ?? models.first
            }
            let p = parts(of: chosen!)
            return (p + (mmproj.map { [$0] } ?? []), p[0], mmproj)
        }
        guard ref.selector == nil else { throw .choice("\(ref.repo) has no file \(ref.selector!) and no GGUF file") }
        let top = paths.filter { !$0.contains("/") }
        guard top.contains("config.json"), top.contains(where: { $0.hasSuffix(".safetensors") }) else {
            throw .choice("\(ref.repo) holds neither GGUF files nor a Hugging Face model folder (config.json and .safetensors weights)")
        }
        let files = top.filter { folderFiles.contains($0) || $0.hasSuffix(".safetensors") }.sorted()
        return (files, "", nil)
    }

    /// mmproj files by preference: f16, then bf16, f32, q8_0, the rest.
    static func rank(_ p: String) -> Int {
        let name = (p as NSString).lastPathComponent.uppercased()
        for (i, q) in ["F16", "BF16", "F32", "Q8_0"].enumerated() where matches(quant: q, file: name) { return i }
        return 9
    }

    /// Whether a file name carries the quantization `q` (case-insensitive, between separators: Q4_K does not match Q4_K_M).
    public static func matches(quant q: String, file: String) -> Bool {
        let name = Array((file as NSString).lastPathComponent.uppercased().utf8), want = Array(q.uppercased().utf8)
        guard !want.isEmpty, name.count >= want.count else { return false }
        func word(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || c == 95 }
        for i in 0...(name.count - want.count) where Array(name[i..<(i + want.count)]) == want {
            let before = i == 0 || !word(name[i - 1]) || (name[i - 1] == 95 && !word(want[0]))
            let after = i + want.count == name.count || !word(name[i + want.count])
            if before && after { return true }
        }
        return false
    }

    /// "model-00001-of-00003.gguf" -> "model-of-00003.gguf"-like key shared by a split file's parts; nil if not split.
    static func splitBase(_ file: String) -> String? {
        guard let r = file.range(of: #"-\d{5}-of-\d{5}\.gguf$"#, options: [.regularExpression, .caseInsensitive]) else { return nil }
        return String(file[..<r.lowerBound]) + String(file[r].dropFirst(6))
    }

    // MARK: The cache

    /// The model as the cache holds it (no network), or nil when some file is missing.
    public func cached(_ ref: HubReference) -> PulledModel? {
        guard let commit = cache.commit(ref.repo, revision: ref.revision) else { return nil }
        let snap = cache.snapshot(ref.repo, commit: commit)
        let fm = FileManager.default
        var paths: [String] = []
        if let walk = fm.enumerator(atPath: snap) {
            for case let p as String in walk {
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: snap + "/" + p, isDirectory: &isDir), !isDir.boolValue { paths.append(p) }
            }
        }
        guard let (files, model, mmproj) = try? Self.choose(ref, paths: paths) else { return nil }
        return PulledModel(repo: ref.repo, commit: commit, snapshot: snap, files: files,
                           model: model.isEmpty ? snap : snap + "/" + model, mmproj: mmproj.map { snap + "/" + $0 })
    }

    // MARK: Pulling

    /// Fetches what `ref` names into the cache (files already there and whole are kept) and returns it.
    public func pull(_ ref: HubReference) throws(HubError) -> PulledModel {
        if options.offline {
            if let m = cached(ref) { return m }
            throw .offline("HF_HUB_OFFLINE is set and the cache (\(cache.root)) does not hold \(ref)")
        }
        let (commit, listing) = try info(ref.repo, revision: ref.revision)
        let (names, model, mmproj) = try Self.choose(ref, paths: listing.map(\.path))
        var files = names.map { n in listing.first { $0.path == n }! }
        // Without hashes and sizes in the listing (a hub or mirror that ignores blobs=true), the file's own headers
        // give them, as huggingface_hub reads them: X-Linked-Etag / ETag and X-Linked-Size / Content-Length.
        for (i, f) in files.enumerated() where f.etag == nil || f.size == nil {
            files[i] = try head(ref.repo, commit: commit, file: f)
        }
        for f in files where f.etag == nil { throw .http("the hub gave no hash for \(ref.repo)/\(f.path): cannot verify it") }
        try checkSpace(ref.repo, files)
        let total = files.reduce(Int64(0)) { $0 + ($1.size ?? 0) }
        var before: Int64 = 0
        for (i, f) in files.enumerated() {
            try fetch(ref.repo, commit: commit, file: f, index: i, count: files.count, before: before, total: total)
            try wrap { try cache.link(ref.repo, commit: commit, path: f.path, etag: f.etag!) }
            before += f.size ?? 0
        }
        try wrap { try cache.setRef(ref.repo, revision: ref.revision, commit: commit) }
        let snap = cache.snapshot(ref.repo, commit: commit)
        return PulledModel(repo: ref.repo, commit: commit, snapshot: snap, files: names,
                           model: model.isEmpty ? snap : snap + "/" + model, mmproj: mmproj.map { snap + "/" + $0 })
    }

    private func wrap(_ body: () throws -> Void) throws(HubError) {
        do { try body() } catch { throw .io(cache.root, "\(error)") }
    }

    func request(_ url: String, method: String = "GET") throws(HubError) -> URLRequest {
        guard let u = URL(string: url) else { throw .http("not a URL: \(url)") }
        var r = URLRequest(url: u)
        r.httpMethod = method
        r.setValue("swift-gemma", forHTTPHeaderField: "User-Agent")
        r.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if let t = options.token { r.setValue("Bearer " + t, forHTTPHeaderField: "Authorization") }
        return r
    }

    static func escape(_ s: String) -> String {
        s.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? String($0) }
            .joined(separator: "/")
    }

    /// A status that ends the pull: what it means for `repo`.
    func refusal(_ status: Int, _ repo: String, _ what: String) -> HubError? {
        let page = options.endpoint + "/" + repo
        switch status {
        case 401:
            return options.token == nil
                ? .gated("\(what): the hub wants a token (401): \(repo) is gated or private. Accept its licence at \(page) while logged in, then set HF_TOKEN to an access token (\(options.endpoint)/settings/tokens)")
                : .gated("\(what): the hub refused the token in HF_TOKEN (401): check it, and that it may read \(repo) (\(page))")
        case 403:
            return .gated("\(what): no access to \(repo) with this token (403): accept its licence at \(page) (gated models need it once per account)")
        case 404:
            return .notFound("\(what): not found (404): no repository \(repo), or no such revision or file, at \(options.endpoint)")
        default:
            return nil
        }
    }

    static func retryable(_ status: Int) -> Bool { status == 408 || status == 429 || (500...599).contains(status) }

    /// Waits before attempt `n` (from 1): Retry-After when the server gave one (capped at a minute), else the back-off.
    func pause(_ n: Int, retryAfter: String?, _ why: String) {
        var seconds = options.backoff * pow(2, Double(n - 1))
        if let r = retryAfter, let s = Double(r.trimmingCharacters(in: .whitespaces)) { seconds = min(60, max(0, s)) }
        note?("\(why); retrying in \(String(format: "%.0f", seconds)) s (attempt \(n + 1) of \(options.attempts))")
        Thread.sleep(forTimeInterval: seconds)
    }

    /// A small request (no body to a file), retried on lost connections, 429 and 5xx; the statuses that end a pull
    /// (401, 403, 404) thrown as what they mean for `repo`. `what` names it in messages.
    func send(_ url: String, method: String = "GET", followRedirects: Bool = true, repo: String, what: String) throws(HubError) -> HTTPResponse {
        let r = try request(url, method: method)
        var attempt = 1
        while true {
            let response: HTTPResponse
            do throws(HTTPFailure) { response = try HTTPRequest.send(r, followRedirects: followRedirects) } catch {
                guard attempt < options.attempts else { throw .http("\(url): \(Self.describe(error)) (after \(attempt) attempts)") }
                pause(attempt, retryAfter: nil, "\(what): \(Self.describe(error))")
                attempt += 1
                continue
            }
            if let refusal = refusal(response.status, repo, what) { throw refusal }
            if Self.retryable(response.status) && attempt < options.attempts {
                pause(attempt, retryAfter: response.header("Retry-After"), "\(what): HTTP \(response.status)")
                attempt += 1
                continue
            }
            return response
        }
    }

    /// The commit `revision` points at, and the repository's files.
    func info(_ repo: String, revision: String) throws(HubError) -> (String, [HubFile]) {
        let url = options.endpoint + "/api/models/" + repo + "/revision/" + Self.escape(revision) + "?blobs=true"
        let response = try send(url, repo: repo, what: repo)
        guard response.status == 200 else { throw .http("\(url): HTTP \(response.status)") }
        return try Self.parseInfo(response.body, repo)
    }

    /// A file's hash and size from a HEAD request on its resolve URL, redirects not followed: X-Linked-Etag (the
    /// LFS sha256, on the redirect) or ETag (the git blob id), X-Linked-Size or Content-Length.
    func head(_ repo: String, commit: String, file f: HubFile) throws(HubError) -> HubFile {
        let url = options.endpoint + "/" + repo + "/resolve/" + commit + "/" + Self.escape(f.path)
        let response = try send(url, method: "HEAD", followRedirects: false, repo: repo, what: f.path)
        guard (200..<400).contains(response.status) else { throw .http("\(url): HTTP \(response.status)") }
        var out = f
        let etag = Self.normalize(etag: response.header("X-Linked-Etag") ?? response.header("ETag"))
        if out.etag == nil, let etag {
            if etag.count == 64 && etag.allSatisfy(\.isHexDigit) { out.sha256 = etag }
            else if etag.count == 40 && etag.allSatisfy(\.isHexDigit) { out.blobID = etag }
        }
        if out.size == nil {
            let redirected = (300..<400).contains(response.status)
            out.size = (response.header("X-Linked-Size") ?? (redirected ? nil : response.header("Content-Length"))).flatMap { Int64($0) }
        }
        return out
    }

    /// An ETag without its weak marker and quotes, lower-cased.
    static func normalize(etag: String?) -> String? {
        guard var e = etag?.trimmingCharacters(in: .whitespaces), !e.isEmpty else { return nil }
        if e.hasPrefix("W/") { e.removeFirst(2) }
        return e.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
    }

    static func parseInfo(_ body: Data, _ repo: String) throws(HubError) -> (String, [HubFile]) {
        guard let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let sha = json["sha"] as? String, HubCache.isCommit(sha), let siblings = json["siblings"] as? [[String: Any]] else {
            throw .http("\(repo): the hub's answer is not a repository description (no sha and siblings)")
        }
        let files = siblings.compactMap { s -> HubFile? in
            guard let path = s["rfilename"] as? String, !path.contains(".."), !path.hasPrefix("/") else { return nil }
            let lfs = s["lfs"] as? [String: Any]
            let size = (lfs?["size"] as? NSNumber ?? s["size"] as? NSNumber)?.int64Value
            return HubFile(path: path, size: size, sha256: (lfs?["sha256"] as? String).map { $0.lowercased() },
                           blobID: (s["blobId"] as? String).map { $0.lowercased() })
        }
        return (sha.lowercased(), files)
    }

    static func describe(_ f: HTTPFailure) -> String {
        switch f {
        case let .transport(s, _): s
        case let .write(s, _): "writing: \(s)"
        }
    }

    /// Refuses to start when the files still to fetch do not fit on the cache's disk.
    func checkSpace(_ repo: String, _ files: [HubFile]) throws(HubError) {
        let blobs = cache.folder(repo) + "/blobs"
        try wrap { try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true) }
        var needed: Int64 = 0
        for f in files {
            let blob = blobs + "/" + f.etag!
            if FileManager.default.fileExists(atPath: blob) { continue }
            needed += max(0, (f.size ?? 0) - Self.fileSize(blob + ".incomplete"))
        }
        var s = statvfs()
        guard needed > 0, statvfs(blobs, &s) == 0 else { return }
        let free = Int64(s.f_bavail) * Int64(s.f_frsize)
        if free < needed {
            throw .io(blobs, String(format: "needs %.2f GB more but the disk has %.2f GB free", Double(needed) / 1e9, Double(free) / 1e9))
        }
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// Makes blobs/<etag> hold the file, checked: kept when already there and whole, else downloaded (resuming
    /// blobs/<etag>.incomplete with a Range request) and checked against the hub's hash before it is renamed into place.
    func fetch(_ repo: String, commit: String, file f: HubFile, index: Int, count: Int, before: Int64, total: Int64) throws(HubError) {
        let blob = cache.folder(repo) + "/blobs/" + f.etag!, partial = blob + ".incomplete"
        let fm = FileManager.default
        // One writer per blob: the lock file huggingface_hub takes for it (.locks/models--ORG--REPO/<etag>.lock), so
        // that neither two pulls nor a pull and transformers append to the same partial file.
        let locks = cache.root + "/.locks/" + (cache.folder(repo) as NSString).lastPathComponent
        try? fm.createDirectory(atPath: locks, withIntermediateDirectories: true)
        let lockFD = open(locks + "/" + f.etag! + ".lock", O_CREAT | O_RDWR, 0o644)
        if lockFD >= 0, flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
            note?("\(f.path): another download of it is under way; waiting for it")
            flock(lockFD, LOCK_EX)
        }
        defer { if lockFD >= 0 { flock(lockFD, LOCK_UN); close(lockFD) } }
        @Sendable func report(_ done: Int64, _ moved: Int64, finished: Bool) {
            progress?(PullProgress(file: f.path, index: index, count: count, fileBytes: done, fileTotal: f.size,
                                   bytes: before + done, total: total, transferred: moved, finished: finished))
        }
        if fm.fileExists(atPath: blob) {
            if let size = f.size, Self.fileSize(blob) != size {
                note?("\(f.path): the cached blob has \(Self.fileSize(blob)) bytes, not \(size): fetching it again")
                try? fm.removeItem(atPath: blob)
            } else if let bad = Self.mismatch(blob, f) {
                note?("\(f.path): the cached blob does not match the hub's hash (\(bad)): fetching it again")
                try? fm.removeItem(atPath: blob)
            } else {
                report(f.size ?? Self.fileSize(blob), 0, finished: true)
                return
            }
        }
        let url = options.endpoint + "/" + repo + "/resolve/" + commit + "/" + Self.escape(f.path)
        var attempt = 1
        var moved: Int64 = 0
        // The hash follows the bytes as they are written, so that a finished download needs no second read; it is
        // made again from the file whenever its count and the file's length part (a restart, a resumed file).
        let hasher = BlobHasher(f)
        while true {
            if !fm.fileExists(atPath: partial), !fm.createFile(atPath: partial, contents: nil) {
                throw .io(partial, "cannot create the file (is the cache writable?)")
            }
            var offset = Self.fileSize(partial)
            if let size = f.size, offset > size { try wrap { try FileHandle(forWritingTo: URL(fileURLWithPath: partial)).truncate(atOffset: 0) }; offset = 0 }
            if let size = f.size, offset == size, size > 0 || attempt > 1 { break }
            if offset > 0 { note?("\(f.path): resuming at \(offset) bytes") }
            var r = try request(url)
            if offset > 0 { r.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
            let handle: FileHandle
            do {
                handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
                try handle.seekToEnd()
            } catch { throw .io(partial, "\(error)") }
            let moveBase = moved
            let response: HTTPResponse
            if hasher.count != offset { hasher.rehash(partial, upTo: offset) }
            do throws(HTTPFailure) {
                response = try HTTPRequest.send(r, file: handle, resumeFrom: offset, written: { chunk, at in
                    if at != hasher.count { hasher.reset() }  // a whole answer replaced a partial file: from 0
                    if at == hasher.count { hasher.add(chunk) }
                }) { size, written in
                    report(size, moveBase + written, finished: false)
                }
                try? handle.close()
            } catch {
                let failure = error
                try? handle.close()
                if case let .write(why, _) = failure { throw .io(partial, "\(why) (the \(Self.fileSize(partial)) bytes so far are kept: pull again to resume)") }
                if case let .transport(_, written) = failure { moved += written }
                guard attempt < options.attempts else {
                    throw .http("\(f.path): \(Self.describe(failure)) after \(attempt) attempts (the \(Self.fileSize(partial)) bytes so far are kept: pull again to resume)")
                }
                pause(attempt, retryAfter: nil, "\(f.path): \(Self.describe(failure))")
                attempt += 1
                continue
            }
            moved += response.written
            if let refusal = refusal(response.status, repo, f.path) { throw refusal }
            if response.status == 416 {  // the range starts at or past the end: start over
                try wrap { try FileHandle(forWritingTo: URL(fileURLWithPath: partial)).truncate(atOffset: 0) }
            } else if Self.retryable(response.status) {
                guard attempt < options.attempts else { throw .http("\(f.path): HTTP \(response.status) after \(attempt) attempts") }
                pause(attempt, retryAfter: response.header("Retry-After"), "\(f.path): HTTP \(response.status)")
                attempt += 1
                continue
            } else if response.status != 200 && response.status != 206 {
                throw .http("\(url): HTTP \(response.status)")
            }
            let have = Self.fileSize(partial)
            if let size = f.size, have != size {
                guard attempt < options.attempts else { throw .http("\(f.path): \(have) of \(size) bytes after \(attempt) attempts (kept: pull again to resume)") }
                pause(attempt, retryAfter: nil, "\(f.path): the transfer ended at \(have) of \(size) bytes")
                attempt += 1
                continue
            }
            break
        }
        if hasher.count != Self.fileSize(partial) { hasher.rehash(partial, upTo: Self.fileSize(partial)) }
        // (A git blob id hashes the size first: without the size the file is read again once it is whole.)
        if let bad = f.sha256 == nil && f.size == nil ? Self.mismatch(partial, f) : hasher.mismatch() {
            try? fm.removeItem(atPath: partial)
            throw .checksum("\(f.path): the downloaded bytes do not match the hub's hash (\(bad)); they were removed, nothing was linked")
        }
        guard rename(partial, blob) == 0 else { throw .io(blob, String(cString: strerror(errno))) }
        report(f.size ?? Self.fileSize(blob), moved, finished: true)
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// The hub's hash of a file (sha256, or the git blob id), fed as its bytes arrive.
    final class BlobHasher {
        let file: HubFile
        private var sha256 = SHA256()
        private var sha1 = SHA1()
        private(set) var count: Int64 = 0

        init(_ file: HubFile) {
            self.file = file
            reset()
        }

        func reset() {
            sha256 = SHA256()
            sha1 = SHA1()
            count = 0
            if file.sha256 == nil { sha1.update(Array("blob \(file.size ?? 0)\0".utf8)) }
        }

        func add(_ data: Data) {
            data.withUnsafeBytes { if file.sha256 != nil { sha256.update($0) } else { sha1.update($0) } }
            count += Int64(data.count)
        }

        /// Starts again from the first `length` bytes of the file at `path`.
        func rehash(_ path: String, upTo length: Int64) {
            reset()
            guard length > 0, let h = FileHandle(forReadingAtPath: path) else { return }
            defer { try? h.close() }
            var left = length
            while left > 0, let chunk = try? h.read(upToCount: Int(min(left, 1 << 22))), !chunk.isEmpty {
                add(chunk)
                left -= Int64(chunk.count)
            }
        }

        /// nil when the bytes fed have the hub's hash, else "expected X, got Y".
        func mismatch() -> String? {
            let got = HubClient.hex(file.sha256 != nil ? sha256.finalize() : sha1.finalize())
            let want = file.sha256 ?? file.blobID ?? ""
            return got == want ? nil : "expected \(want), got \(got)"
        }
    }

    /// nil when the file at `path` has the hub's hash of `f`, else "expected X, got Y".
    static func mismatch(_ path: String, _ f: HubFile) -> String? {
        var g = f
        g.size = fileSize(path)  // a git blob id hashes the size first
        let h = BlobHasher(g)
        h.rehash(path, upTo: g.size!)
        return h.mismatch()
    }
}
