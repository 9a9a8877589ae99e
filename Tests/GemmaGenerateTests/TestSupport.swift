// Paths and golden loading for the generation tests (same layout as GemmaModelTests).
import Foundation
import Testing

enum TestPaths {
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let fixtures = repo + "/Tests/Fixtures"

    static var model: String {
        let env = ProcessInfo.processInfo.environment
        if let m = env["GEMMA_MODEL"] { return m }
        let cache = env["GEMMA_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }

    /// The real model's path, or a recorded failure telling how to fetch it.
    static func requireModel() -> String? {
        if FileManager.default.fileExists(atPath: model) { return model }
        Issue.record("missing \(model): run scripts/fetch-model.sh first (make test does)")
        return nil
    }

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + name)))
    }
}

/// The ids of the `k` largest logits, ties broken by the lowest id (as the reference does).
func topK(_ logits: UnsafeBufferPointer<Float>, _ k: Int) -> [(id: Int, logit: Float)] {
    var best: [(id: Int, logit: Float)] = []
    var floor = -Float.infinity
    for (i, x) in logits.enumerated() where x > floor || best.count < k {
        var j = best.count
        while j > 0 && best[j - 1].logit < x { j -= 1 }
        best.insert((i, x), at: j)
        if best.count > k { best.removeLast() }
        if best.count == k { floor = best[k - 1].logit }
    }
    return best
}
