// Matrices rewritten at load, Q5_0 as Q8_0 (`ModelOptions.widenQ5_0`) or Q5_0 and Q8_0 in the decode kernels' lane
// order (`laneOrder`), must change nothing but speed: the block rewrite keeps every scale and integer (checked block
// by block against the Q5_0 dequantization, random high bits and nibbles; the lane order in GemmaKernelsTests'
// LaneOrderTests), and the real model's logits are bit-identical with each rewrite and without, in the prompt (GEMM)
// path, the decode (row kernel) path and in exact precision (where the lane order is not used).
import GemmaFormats
import GemmaKernels
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct WidenQ5_0Tests {
    @Test func rewrittenBlocksDequantizeToTheSameValues() throws {
        var rng = SplitMix64(seed: 0x5A0)
        let blocks = 4096
        var q5 = rng.bytes(blocks * 22)
        for b in 0..<blocks {  // finite f16 scales of either sign, some zero
            let scale = Float16(Float.random(in: -0.1...0.1, using: &rng) * (b % 97 == 0 ? 0 : 1))
            q5[b * 22] = UInt8(scale.bitPattern & 0xff); q5[b * 22 + 1] = UInt8(scale.bitPattern >> 8)
        }
        var q8 = [UInt8](repeating: 0, count: blocks * 34)
        q5.withUnsafeBytes { src in q8.withUnsafeMutableBytes { dst in
            TensorType.repackQ5_0AsQ8_0(src.baseAddress!, blocks: blocks, into: dst.baseAddress!)
        } }
        var want = [Float](repeating: 0, count: blocks * 32), got = want
        try q5.withUnsafeBytes { try TensorType.q5_0.dequantize($0.baseAddress!, count: blocks * 32, into: &want) }
        try q8.withUnsafeBytes { try TensorType.q8_0.dequantize($0.baseAddress!, count: blocks * 32, into: &got) }
        #expect(want.map(\.bitPattern) == got.map(\.bitPattern))
        // The integers stay in Q5_0's range.
        for b in 0..<blocks { for j in 0..<32 { #expect((-16...15).contains(Int8(bitPattern: q8[b * 34 + 2 + j]))) } }
    }

    @Test(arguments: [Precision.fast, .exact])
    func logitsAreBitIdenticalWithAndWithout(_ precision: Precision) throws {
        guard let path = TestPaths.requireModel() else { return }
        let prompt = [2, 818, 5279, 529, 7001, 563, 496, 2012, 529, 236743, 236770, 236819, 236771, 236761, 108, 818, 1902]
        func run(widen: Bool, lanes: Bool) throws -> [[Float]] {
            let model = try Gemma3Model(path: path, options: ModelOptions(threads: 2, precision: precision, placement: .hugePages,
                                                                            widenQ5_0: widen, laneOrder: lanes))
            // The 270M's q, k, gate and up (and half of its v) are Q5_0 in the file, its embedding (the head) Q8_0, o Q4_K.
            let inLanes = lanes && precision == .fast
            let q5: WeightEncoding = widen ? (inLanes ? .q8_0Lanes : .of(.q8_0)!) : inLanes ? .q5_0Lanes : .of(.q5_0)!
            #expect(model.weights.layers[0].q.encoding == q5)
            #expect(model.weights.layers[17].up.encoding == q5)
            #expect(model.weights.embedding.encoding == (inLanes ? .q8_0Lanes : .of(.q8_0)!))
            #expect(model.weights.layers[0].o.encoding == (inLanes ? .q4_KLanes : .of(.q4_K)!))
            let state = model.makeState(capacity: 64)
            var rows: [[Float]] = []
            try model.forward(prompt, state: state, logits: .all) { _, l in rows.append(Array(l)) }
            for _ in 0..<4 {
                let next = topK(UnsafeBufferPointer(start: rows.last!, count: rows.last!.count), 1)[0].id
                try model.forward([next], state: state) { _, l in rows.append(Array(l)) }
            }
            return rows
        }
        // Read from the file mapping, the weights keep the file's order (no unevictable copy is made for them).
        let mapped = try Gemma3Model(path: path, options: ModelOptions(threads: 2, precision: precision, placement: .mapped,
                                                                          widenQ5_0: false, laneOrder: true))
        #expect(mapped.weights.layers[0].q.encoding == .of(.q5_0)!)
        #expect(mapped.weights.embedding.encoding == .of(.q8_0)!)
        let stored = try run(widen: false, lanes: false)
        #expect(stored.count == prompt.count + 4)
        for (name, rewritten) in [("widened", try run(widen: true, lanes: false)), ("lane order", try run(widen: false, lanes: true)),
                                  ("widened, lane order", try run(widen: true, lanes: true))] {
            #expect(rewritten.count == stored.count)
            for (i, (a, b)) in zip(rewritten, stored).enumerated() {
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(name): logits of row \(i) differ")
            }
        }
    }
}
