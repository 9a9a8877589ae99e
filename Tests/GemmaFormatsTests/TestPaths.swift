// Where test data lives: the repo's Tests/Fixtures, generated fixtures, and the fetched real model.
import Foundation

enum TestPaths {
    /// The repository root, found from this file's path.
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let fixtures = repo + "/Tests/Fixtures"
    static let generated = fixtures + "/generated"

    /// The real model, as scripts/fetch-model.sh caches it (or $GEMMA_MODEL).
    static var model: String {
        let env = ProcessInfo.processInfo.environment
        if let m = env["GEMMA_MODEL"] { return m }
        let cache = env["GEMMA_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }

    /// Returns `path` if it exists; otherwise records a failure naming the script that makes it.
    static func require(_ path: String, makeWith script: String) -> String? {
        if FileManager.default.fileExists(atPath: path) { return path }
        Issue.record("missing \(path): run \(script) first (make test does)")
        return nil
    }
}

import Testing
