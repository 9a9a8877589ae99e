// The report's KV design on the real model (f32 KV, so equality is exact): rings of exactly the window give the
// same logits as a full cache; chunking does not change results; a prefix is reused after the rings wrapped
// (through a snapshot) with logits equal to a cold run; overflowing the context is a clear error.
import Foundation
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct KVCacheTests {
    static func ids() throws -> [Int] {
        let golden = try TestPaths.json("reference-topk.json") as! [String: Any]
        return (golden["input_ids"] as! [NSNumber]).map(\.intValue)
    }

    /// Logits at the given positions (indices into `tokens`), as arrays.
    static func logits(_ model: Gemma3Model, _ state: Gemma3State, _ tokens: [Int], at: [Int]) throws -> [[Float]] {
        var out: [[Float]] = []
        try model.forward(tokens, state: state, logits: .at(at)) { _, l in out.append(Array(l)) }
        return out
    }

    /// Steps `ids` through a fresh state in calls of `batch` tokens, returning the logits at `probe`.
    static func run(_ model: Gemma3Model, _ ids: [Int], batch: Int, ring: Bool, probe: [Int]) throws -> [[Float]] {
        let s = model.makeState(capacity: ids.count, maxBatch: batch, kvStorage: .f32, ringLocalLayers: ring)
        let hasRings = s.cache.layers.contains { $0.isRing }
        #expect(hasRings == ring)
        var got: [[Float]] = []
        var start = 0
        while start < ids.count {
            let chunk = Array(ids[start..<min(start + batch, ids.count)])
            let wanted = probe.filter { $0 >= start && $0 < start + chunk.count }.map { $0 - start }
            try model.forward(chunk, state: s, logits: .at(wanted)) { _, l in got.append(Array(l)) }
            start += chunk.count
        }
        return got
    }

    @Test func ringsGiveTheSameLogitsAsAFullCacheWhateverTheChunking() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let ids = Array(try Self.ids().prefix(700))
        let probe = [0, 511, 512, 513, 699]
        var byBatch: [Int: [[Float]]] = [:]
        for batch in [1, 7, 64, 512] {
            let full = try Self.run(model, ids, batch: batch, ring: false, probe: probe)
            let ring = try Self.run(model, ids, batch: batch, ring: true, probe: probe)
            #expect(full.count == probe.count)
            #expect(ring == full, "batch \(batch): rings of 512 differ from a full cache")
            byBatch[batch] = ring
        }
        // Prompt-sized chunks all take the f32 GEMM: chunking does not change a bit. Decode-sized calls take the
        // int16 row kernels, within their quantization error.
        #expect(byBatch[64] == byBatch[512])
        let diff = zip(byBatch[1]!, byBatch[512]!).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
        print("single-token steps vs 512-token chunks: max |logit difference| \(diff)")
        #expect(diff < 0.01)
    }

    @Test func prefixIsReusedAfterTheRingsWrapped() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let ids = try Self.ids()
        let a = Array(ids[0..<600]), b = Array(ids[600..<700]), c = Array(ids[700..<760])
        let s = model.makeState(capacity: 1024, kvStorage: .f32)
        #expect(try model.prefill(a, state: s, snapshot: true) == 0)
        try model.forward(b, state: s, logits: .none)
        #expect(s.cache.count == 700 && !s.cache.canTruncate(to: 650) && s.cache.canTruncate(to: 600))
        var warm: [Float] = []
        let reused = try model.prefill(a + c, state: s) { _, l in warm = Array(l) }
        #expect(reused == 600)
        #expect(s.cache.count == 660)
        let cold = model.makeState(capacity: 1024, kvStorage: .f32)
        var want: [Float] = []
        try model.forward(a + c, state: cold) { _, l in want = Array(l) }
        #expect(warm == want)
        // Continuing a prompt (a chat's next turn) reuses everything without a snapshot.
        #expect(try model.prefill(a + c + [236761, 108], state: s) == 660)
    }

    @Test func overflowIsAClearError() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let s = model.makeState(capacity: 8)
        try model.forward([2, 818, 3823, 8864, 37423], state: s, logits: .none)
        func overflowError() -> ModelError? {
            do { try model.forward([1, 2, 3, 4], state: s, logits: .none); return nil } catch { return error }
        }
        let message = overflowError().map { "\($0)" } ?? "overflow accepted"
        #expect(message.contains("context overflow: 5 cached + 4 new tokens = 9 positions, but the cache holds 8"))
        #expect(s.cache.count == 5)  // nothing was written
    }

    @Test func cacheSizesFollowTheReportsDesign() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let s = model.makeState(capacity: 32_768)
        s.cache.reserve(32_768)
        // 3 global layers x 32768 x (K,V) x 256 x 2 bytes + 15 local rings x 512 x 2 x 256 x 2 bytes.
        #expect(s.cache.bytes == 3 * 32_768 * 1024 + 15 * 512 * 1024)
        #expect(s.cache.bytes <= 111 * 1024 * 1024)  // llama.cpp's sliding-window cache at -c 32768
    }
}
