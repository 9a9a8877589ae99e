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
        #expect(try model.prefill(Prompt(tokens: a), state: s, snapshot: true) == 0)
        try model.forward(b, state: s, logits: .none)
        #expect(s.cache.count == 700 && !s.cache.canTruncate(to: 650) && s.cache.canTruncate(to: 600))
        var warm: [Float] = []
        let reused = try model.prefill(Prompt(tokens: a + c), state: s) { l in warm = Array(l) }
        #expect(reused == 600)
        #expect(s.cache.count == 660)
        let cold = model.makeState(capacity: 1024, kvStorage: .f32)
        var want: [Float] = []
        try model.forward(a + c, state: cold) { _, l in want = Array(l) }
        #expect(warm == want)
        // Continuing a prompt (a chat's next turn) reuses everything without a snapshot.
        #expect(try model.prefill(Prompt(tokens: a + c + [236761, 108]), state: s) == 660)
    }

    /// The exact-reuse rule for prefill chunks that are not multiples of the 64-row step (100, 37): a prompt that
    /// shares a prefix with what a state holds (a prefill, then decoded tokens) keeps only whole cold-schedule steps
    /// that an identical prefill step wrote, and then gives the cold run's logits bit for bit (last prompt position
    /// and three decode steps; f16 KV, the fast kernels: any difference in rows or kernels would show).
    @Test(arguments: [100, 37]) func exactReuseGivesTheColdLogitsForAnyChunk(_ chunk: Int) throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let ids = try Self.ids()
        /// Prefills `prompt` (exact reuse), then decodes 3 greedy tokens; every logit row.
        func run(_ prompt: [Int], _ s: Gemma3State) throws -> (reused: Int, logits: [[Float]], tokens: [Int]) {
            var rows: [[Float]] = [], next = 0, tokens: [Int] = []
            let reused = try model.prefill(Prompt(tokens: prompt), state: s, chunk: chunk, reuse: .exact) { l in
                rows.append(Array(l))
                next = Int(l.indices.max { l[$0] < l[$1] }!)
            }
            for _ in 0..<3 {
                tokens.append(next)
                try model.forward([next], state: s) { _, l in rows.append(Array(l)); next = Int(l.indices.max { l[$0] < l[$1] }!) }
            }
            return (reused, rows, tokens)
        }
        let warm = model.makeState(capacity: 512)
        let first = Array(ids[0..<150])
        let a = try run(first, warm)
        #expect(a.reused == 0)
        // 1. The first prompt, its decoded tokens, more text: decoded positions are never kept.
        // 2. 130 positions shared, ending inside a step of the cold schedule.
        // 3. The first prompt again.
        let prompts = [first + a.tokens + Array(ids[500..<520]), Array(ids[0..<130]) + Array(ids[400..<440]), first]
        let schedule = PrefillSchedule(chunk: chunk, maxRows: warm.maxBatch)
        var reusedAt: [Int] = []
        for prompt in prompts {
            let steps = try schedule.steps(of: Prompt(tokens: prompt))
            let before = warm.cache.prefillSteps
            let expected = warm.cache.exactReusablePrefix(of: Prompt(tokens: prompt), schedule: schedule)
            let hot = try run(prompt, warm)
            let cold = try run(prompt, model.makeState(capacity: 512))
            reusedAt.append(hot.reused)
            #expect(hot.reused == expected && hot.reused > 0)
            // Reuse ends on a cold step, and every cold step below it was written by the same prefill step.
            #expect(steps.contains { $0.lowerBound == hot.reused })
            #expect(steps.filter { $0.upperBound <= hot.reused }.allSatisfy { before.contains($0) })
            #expect(cold.reused == 0)
            #expect(hot.logits == cold.logits, "chunk \(chunk), prompt of \(prompt.count): warm logits differ from cold")
            #expect(hot.tokens == cold.tokens)
        }
        print("chunk \(chunk): reused \(reusedAt) (of 150+3 decoded, 130 shared, 150)")
        let firstSteps = try schedule.steps(of: Prompt(tokens: first))
        // 1: at most the first prompt's steps, none past 150 (decode wrote 150...152).
        #expect(reusedAt[0] <= 150 && firstSteps.contains { $0.lowerBound == reusedAt[0] })
        // 2: cut back below the 130 shared positions, to a step boundary.
        #expect(reusedAt[1] == (chunk == 100 ? 100 : 111))

        // Control: the steps are visible in the logits. A prompt whose cold schedule ends with a 4-row step (row
        // kernels), run instead from a 64-row block (the old rule's reuse) in one step to its end (the GEMM), ends
        // with other logits.
        let short = Array(ids[0..<(chunk == 100 ? 168 : 152)])
        let cold = try run(short, model.makeState(capacity: 512)).logits[0]
        #expect(try schedule.steps(of: Prompt(tokens: short)).last!.count == 4)
        let other = model.makeState(capacity: 512)
        try model.forward(Array(short[..<64]), state: other, logits: .none)
        var otherLast: [Float] = []
        try model.forward(Array(short[64...]), state: other) { _, l in otherLast = Array(l) }
        #expect(otherLast != cold, "chunk \(chunk): a tail in other steps gave the same logits")
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
