// Shared by every test target: where test data lives (the repo's Tests/Fixtures, generated fixtures, the fetched
// real model), a seeded generator for reproducible property tests, and top-k of a logit row.
import Foundation
import Testing

public enum TestPaths {
    /// The repository root, found from this file's path.
    public static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    public static let fixtures = repo + "/Tests/Fixtures"
    public static let generated = fixtures + "/generated"

    /// The real model, as scripts/fetch-model.sh caches it (or $GEMMA_MODEL).
    public static var model: String {
        let env = ProcessInfo.processInfo.environment
        if let m = env["GEMMA_MODEL"] { return m }
        let cache = env["GEMMA_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/swift-gemma")
        return cache + "/gemma-3-270m-q4_k_m.gguf"
    }

    /// The real model's path, or a recorded failure telling how to fetch it (never a silent skip).
    public static func requireModel() -> String? {
        require(model, makeWith: "scripts/fetch-model.sh")
    }

    /// Returns `path` if it exists; otherwise records a failure naming the script that makes it.
    public static func require(_ path: String, makeWith script: String) -> String? {
        if FileManager.default.fileExists(atPath: path) { return path }
        Issue.record("missing \(path): run \(script) first (make test does)")
        return nil
    }

    /// A JSON fixture from Tests/Fixtures.
    public static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + name)))
    }
}

/// SplitMix64: a small seeded generator, so that property tests are reproducible.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// `n` random bytes.
    public mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }
    /// Uniform in (0, 1), 53 bits.
    public mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / Double(1 << 53) }
    /// Standard normal (Box-Muller).
    public mutating func gaussian() -> Float {
        Float((-2 * Foundation.log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()))
    }
    /// `n` floats uniform in -scale...scale.
    public mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float.random(in: -scale...scale, using: &self) } }
}

/// The ids of the `k` largest logits, ties broken by the lowest id (as the reference does).
public func topK(_ logits: UnsafeBufferPointer<Float>, _ k: Int) -> [(id: Int, logit: Float)] {
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
