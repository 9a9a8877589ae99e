// Several sequences stepped together (continuous batching): each weight matrix is read once per step for all of
// them, and each sequence's logits equal those of stepping it alone.
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct BatchTests {
    @Test func batchedDecodingEqualsSeparateDecoding() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let prompts = [[2, 818, 3823, 8864, 37423], [2, 9038, 236743, 236800], [2, 655, 2574, 1411, 8097, 236760, 236761]]
        // Alone: greedy 6 steps each.
        var alone: [[Int]] = []
        var aloneLogits: [[Float]] = []
        for p in prompts {
            let s = model.makeState(capacity: 64, kvStorage: .f32)
            var next = 0, out: [Int] = []
            try model.forward(p, state: s) { _, l in next = topK(l, 1)[0].id }
            for _ in 0..<6 {
                out.append(next)
                try model.forward([next], state: s) { _, l in next = topK(l, 1)[0].id; aloneLogits.append(Array(l)) }
            }
            alone.append(out)
        }
        // Together: prefill all prompts in one step, then decode all three in each step.
        let states = prompts.map { _ in model.makeState(capacity: 64, kvStorage: .f32) }
        let workspace = model.makeWorkspace(maxRows: 32, maxContext: 64)
        var next = [Int](repeating: 0, count: prompts.count)
        try model.forward(batch: Array(zip(states, prompts)), workspace: workspace) { i, l in next[i] = topK(l, 1)[0].id }
        var together = [[Int]](repeating: [], count: prompts.count)
        var togetherLogits = [[[Float]]](repeating: [], count: prompts.count)
        for _ in 0..<6 {
            for i in prompts.indices { together[i].append(next[i]) }
            try model.forward(batch: zip(states, next).map { ($0, [$1]) }, workspace: workspace) { i, l in
                next[i] = topK(l, 1)[0].id
                togetherLogits[i].append(Array(l))
            }
        }
        #expect(together == alone)
        let flat = togetherLogits.flatMap { $0 }
        let diff = zip(flat, aloneLogits).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
        print("batched vs alone: max |logit difference| \(diff) over \(flat.count) steps")
        // Decode rows take the same kernels and the same attention split alone or batched: bit-identical.
        #expect(diff == 0)
        // A sequence may not appear twice in one step, and the rows must fit.
        #expect(throws: ModelError.self) { try model.forward(batch: [(states[0], [1]), (states[0], [2])], workspace: workspace) { _, _ in } }
        #expect(throws: ModelError.self) { try model.forward(batch: [(states[1], [Int](repeating: 5, count: 40))], workspace: workspace) { _, _ in } }
    }

    /// Several rows of one sequence in one step (what verifying k proposed tokens plus one needs, issue 20) give each
    /// row the logits it gets when the rows are decoded one at a time: the rows go through the same row kernels, and
    /// each row's attention depends only on its own keys. Rows 2-5 per step, f16 and f32 KV, bit for bit.
    @Test func rowsOfOneSequenceInOneStepEqualSingleSteps() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let prompt = [2, 818, 3823, 8864, 37423, 1378, 563]
        for kv in [KVStorage.f16, .f32] {
            // One token at a time, greedy: the reference rows.
            let s = model.makeState(capacity: 64, kvStorage: kv)
            var next = 0
            try model.forward(prompt, state: s) { _, l in next = topK(l, 1)[0].id }
            var tokens: [Int] = [], single: [[Float]] = []
            for _ in 0..<10 {
                tokens.append(next)
                try model.forward([next], state: s) { _, l in next = topK(l, 1)[0].id; single.append(Array(l)) }
            }
            for rows in 2...5 {
                let t = model.makeState(capacity: 64, kvStorage: kv)
                try model.forward(prompt, state: t)
                var many: [[Float]] = []
                var i = 0
                while i < tokens.count {
                    let step = Array(tokens[i..<min(i + rows, tokens.count)])
                    try model.forward(step, state: t, logits: .all) { _, l in many.append(Array(l)) }
                    i += rows
                }
                let diff = zip(many, single).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
                #expect(many.count == single.count && diff == 0, "\(kv), \(rows) rows per step: max |dlogit| \(diff)")
            }
        }
    }

    /// A speculative step taken back (issue 20): past the window (rings wrapped), 5 tokens are written in one step
    /// after a checkpoint, all but the first taken back, and decoding goes on; every later logit equals that of a
    /// state that only ever saw the kept token. f16 KV, bit for bit.
    @Test func rollbackAfterASpeculativeStepRestoresTheRings() throws {
        guard let path = TestPaths.requireModel() else { return }
        let model = try Gemma3Model(path: path)
        let prompt = [2] + (0..<599).map { 236743 + ($0 * 7919) % 2000 }  // 600 tokens: past the 512-position window
        let a = model.makeState(capacity: 700), b = model.makeState(capacity: 700)
        var nextA = 0, nextB = 0
        try model.forward(prompt, state: a) { _, l in nextA = topK(l, 1)[0].id }
        try model.forward(prompt, state: b) { _, l in nextB = topK(l, 1)[0].id }
        #expect(nextA == nextB)
        // b: a checkpoint, five tokens (the real next one and four wrong guesses), then all but the first taken back.
        b.cache.checkpoint(ahead: 5)
        var afterFirst: [Float] = []
        try model.forward([nextB, 17, 4242, 99, 31337], state: b, logits: .all) { i, l in if i == 0 { afterFirst = Array(l) } }
        b.cache.rollback(to: prompt.count + 1)
        #expect(b.cache.count == prompt.count + 1)
        var la: [[Float]] = [], lb: [[Float]] = []
        try model.forward([nextA], state: a) { _, l in nextA = topK(l, 1)[0].id; la.append(Array(l)) }
        nextB = afterFirst.withUnsafeBufferPointer { topK($0, 1)[0].id }
        lb.append(afterFirst)
        for _ in 0..<8 {
            try model.forward([nextA], state: a) { _, l in nextA = topK(l, 1)[0].id; la.append(Array(l)) }
            try model.forward([nextB], state: b) { _, l in nextB = topK(l, 1)[0].id; lb.append(Array(l)) }
        }
        let diff = zip(la, lb).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
        // The four taken-back positions had overwritten the ring slots of positions 89-92, which the next steps'
        // windows still read: rows left unrestored would change these logits.
        #expect(la.count == lb.count && diff == 0, "max |dlogit| after the rollback: \(diff)")
    }

    /// The weights copied onto huge pages (the default where the kernel offers them) and read in place from the file
    /// mapping (`--mmap`) give the same logits, bit for bit, prompt and decode.
    @Test func weightPlacementsGiveIdenticalLogits() throws {
        guard let path = TestPaths.requireModel() else { return }
        var logits: [[Float]] = []
        for placement in [WeightPlacement.mapped, .hugePages] {
            let model = try Gemma3Model(path: path, options: ModelOptions(placement: placement))
            let file = model.checkpoint.gguf!.storage.buffer, head = UnsafeRawPointer(model.weights.embedding.base)
            let inFile = head >= file.baseAddress! && head < file.baseAddress! + file.count
            #expect(inFile == (placement == .mapped), "\(placement): output head in the file mapping: \(inFile)")
            let s = model.makeState(capacity: 64)
            var out: [Float] = [], next = 0
            try model.forward([2, 818, 3823, 8864, 37423, 236764, 1010, 603, 496, 1914], state: s) { _, l in next = topK(l, 1)[0].id; out += l }
            for _ in 0..<3 { try model.forward([next], state: s) { _, l in next = topK(l, 1)[0].id; out += l } }
            logits.append(out)
        }
        #expect(logits[0].count == logits[1].count)
        #expect(zip(logits[0], logits[1]).allSatisfy { $0.bitPattern == $1.bitPattern })
    }
}
