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
