// The Hugging Face hub's local cache, laid out as huggingface_hub lays it out, so that what transformers or
// llama.cpp downloaded is found here and what we download is theirs:
//
//   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface)
//     models--ORG--REPO/
//       blobs/<etag>                 the files' bytes, named by the hub's etag (sha256 for LFS files, git sha-1 else)
//       blobs/<etag>.incomplete      a download under way or interrupted (resumed with a Range request)
//       snapshots/<commit>/<path>    relative symlinks to ../../blobs/<etag>
//       refs/<revision>              the commit a branch or tag pointed at when last fetched
import Foundation

/// `ORG/REPO[@REVISION][:FILE|:QUANT]`: a repository of the hub, and which of its files.
public struct HubReference: Sendable, Equatable, CustomStringConvertible {
    public var repo: String
    public var revision: String
    /// A file path in the repository, or a quantization name (Q4_K_M, q8_0, ...); nil: the default choice.
    public var selector: String?

    public init(repo: String, revision: String = "main", selector: String? = nil) {
        self.repo = repo
        self.revision = revision
        self.selector = selector
    }

    /// Parses a reference; nil when the text is not one (a path such as ./x, /x or x.gguf, or not ORG/REPO). The
    /// hub's host in front (`hf.co/ORG/REPO:QUANT` as ollama takes it, `huggingface.co/...`, `https://...`) is dropped.
    public init?(_ text: String) {
        var text = text
        for prefix in ["https://", "http://"] where text.hasPrefix(prefix) { text.removeFirst(prefix.count) }
        for host in ["hf.co/", "huggingface.co/", "www.huggingface.co/"] where text.hasPrefix(host) { text.removeFirst(host.count) }
        guard let first = text.first, first != "/", first != ".", first != "~" else { return nil }
        var head = Substring(text), selector: String? = nil
        if let colon = text.firstIndex(of: ":") {
            head = text[..<colon]
            selector = String(text[text.index(after: colon)...])
            if selector!.isEmpty { return nil }
        }
        var revision = "main"
        if let at = head.firstIndex(of: "@") {
            revision = String(head[head.index(after: at)...])
            head = head[..<at]
            guard !revision.isEmpty, !revision.contains(".."), !revision.hasPrefix("/") else { return nil }
        }
        let parts = head.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ Self.isName($0) }) else { return nil }
        if let selector, selector.contains("..") || selector.hasPrefix("/") { return nil }
        repo = String(head)
        self.revision = revision
        self.selector = selector
    }

    /// The hub's rule for an organization or repository name: letters, digits, '-', '_', '.', at most 96, not
    /// starting or ending with '-' or '.'.
    static func isName(_ s: Substring) -> Bool {
        guard !s.isEmpty, s.count <= 96, s.first != "-", s.first != ".", s.last != "-", s.last != "." else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    public var description: String {
        repo + (revision == "main" ? "" : "@" + revision) + (selector.map { ":" + $0 } ?? "")
    }
}

/// The cache folder of the hub's files.
public struct HubCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) {
        if let c = env["HF_HUB_CACHE"], !c.isEmpty { root = Self.expand(c); return }
        let home = env["HF_HOME"].flatMap { $0.isEmpty ? nil : Self.expand($0) }
            ?? ((env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache")) + "/huggingface")
        root = home + "/hub"
    }

    static func expand(_ p: String) -> String { (p as NSString).expandingTildeInPath }

    public func folder(_ repo: String) -> String { root + "/models--" + repo.replacingOccurrences(of: "/", with: "--") }
    func blobs(_ repo: String) -> String { folder(repo) + "/blobs" }
    public func snapshot(_ repo: String, commit: String) -> String { folder(repo) + "/snapshots/" + commit }

    static func isCommit(_ s: String) -> Bool { s.count == 40 && s.allSatisfy(\.isHexDigit) }

    /// The commit a revision stands for in the cache: a full commit hash with a snapshot, or what refs/<revision> holds.
    public func commit(_ repo: String, revision: String) -> String? {
        if Self.isCommit(revision) {
            return FileManager.default.fileExists(atPath: snapshot(repo, commit: revision)) ? revision : nil
        }
        guard let text = try? String(contentsOfFile: folder(repo) + "/refs/" + revision, encoding: .utf8) else { return nil }
        let c = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return Self.isCommit(c) ? c : nil
    }

    /// Records that `revision` (a branch or tag) points at `commit`, written under a temporary name then renamed.
    public func setRef(_ repo: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let path = folder(repo) + "/refs/" + revision
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let tmp = path + ".\(UInt32.random(in: 0...UInt32.max)).tmp"
        try Data(commit.utf8).write(to: URL(fileURLWithPath: tmp))
        if rename(tmp, path) != 0 { throw HubError.io(path, String(cString: strerror(errno))) }
    }

    /// Links snapshots/<commit>/<path> to the blob, relative (../../blobs/<etag>, one more ../ per folder of the path).
    public func link(_ repo: String, commit: String, path: String, etag: String) throws {
        let dest = snapshot(repo, commit: commit) + "/" + path
        let fm = FileManager.default
        try fm.createDirectory(atPath: (dest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/" + etag
        if let existing = try? fm.destinationOfSymbolicLink(atPath: dest), existing == target { return }
        if (try? fm.attributesOfItem(atPath: dest)) != nil { try fm.removeItem(atPath: dest) }
        try fm.createSymbolicLink(atPath: dest, withDestinationPath: target)
    }

    /// What the cache holds of one repository.
    public struct Entry: Sendable {
        public var repo: String
        /// Bytes of its blobs (each counted once), and of unfinished downloads.
        public var bytes: Int64, partialBytes: Int64
        /// Revision names and the commits they point at.
        public var refs: [String: String]
        /// Per snapshot (commit), the files it links, with their sizes.
        public var snapshots: [String: [(path: String, bytes: Int64)]]
    }

    /// Every repository of the cache.
    public func entries() -> [Entry] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else { return [] }
        return names.sorted().compactMap { name -> Entry? in
            guard name.hasPrefix("models--") else { return nil }
            let parts = name.dropFirst("models--".count).components(separatedBy: "--")
            guard parts.count >= 2 else { return nil }
            return entry(parts[0] + "/" + parts.dropFirst().joined(separator: "--"))
        }
    }

    /// What the cache holds of `repo`, or nil when nothing.
    public func entry(_ repo: String) -> Entry? {
        let fm = FileManager.default
        let dir = folder(repo)
        guard fm.fileExists(atPath: dir) else { return nil }
        var e = Entry(repo: repo, bytes: 0, partialBytes: 0, refs: [:], snapshots: [:])
        for b in (try? fm.contentsOfDirectory(atPath: dir + "/blobs")) ?? [] {
            let size = ((try? fm.attributesOfItem(atPath: dir + "/blobs/" + b))?[.size] as? NSNumber)?.int64Value ?? 0
            if b.hasSuffix(".incomplete") { e.partialBytes += size } else { e.bytes += size }
        }
        if let refs = fm.enumerator(atPath: dir + "/refs") {
            for case let r as String in refs {
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: dir + "/refs/" + r, isDirectory: &isDir), !isDir.boolValue else { continue }
                e.refs[r] = commit(repo, revision: r)
            }
        }
        for c in (try? fm.contentsOfDirectory(atPath: dir + "/snapshots")) ?? [] {
            var files: [(String, Int64)] = []
            let base = dir + "/snapshots/" + c
            if let walk = fm.enumerator(atPath: base) {
                for case let p as String in walk {
                    var isDir: ObjCBool = false
                    guard fm.fileExists(atPath: base + "/" + p, isDirectory: &isDir), !isDir.boolValue else { continue }
                    let size = ((try? fm.attributesOfItem(atPath: (base + "/" + p as NSString).resolvingSymlinksInPath))?[.size] as? NSNumber)?.int64Value ?? 0
                    files.append((p, size))
                }
            }
            e.snapshots[c] = files.sorted { $0.0 < $1.0 }
        }
        return e
    }

    /// Removes everything the cache holds of `repo`; false when it held nothing.
    @discardableResult
    public func remove(_ repo: String) throws -> Bool {
        let dir = folder(repo)
        guard FileManager.default.fileExists(atPath: dir) else { return false }
        try FileManager.default.removeItem(atPath: dir)
        return true
    }
}

public enum HubError: Error, CustomStringConvertible, Sendable {
    case reference(String)
    case http(String)
    case notFound(String)
    case gated(String)
    case offline(String)
    case checksum(String)
    case io(String, String)
    case choice(String)

    public var description: String {
        switch self {
        case let .reference(s), let .http(s), let .notFound(s), let .gated(s), let .offline(s), let .checksum(s), let .choice(s): s
        case let .io(path, why): "\(path): \(why)"
        }
    }
}
