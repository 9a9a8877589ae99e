// Every published Gemma 3 size's attention structure, run without its weights: small random-weight models made by
// scripts/reference/make_size_structure_refs.py (scripts/test.sh runs it) with each size's real heads / KV heads /
// head dim, query_pre_attn_scalar, sliding window, RoPE bases and linear x8 scaling on global layers, 5 local : 1
// global (7 layers), hidden 64, vocabulary 512, FFN 4352 (ffn_down rows longer than 4096 weights, K-quantized):
//   1b  4 heads / 1 KV head x 256, window 512, no RoPE scaling
//   4b  8 / 4 x 256, window 1024, linear x8
//   12b 16 / 8 x 256, window 1024, linear x8
//   27b 32 / 16 x 128, query_pre_attn_scalar 168, window 1024, linear x8
// Each as GGUF files (f32; q8_0; Q4_0/Q5_0/Q8_0 with Q4_K/Q6_K on the long rows) and as a Hugging Face folder (f32),
// over one sequence of window + 100 random ids, against the repo's independent NumPy reference (gemma3_ref.py on
// each GGUF: float64 compute, float32 storage) at every position, in both precisions:
//  * prefill in steps of 100 rows (in `.fast` the int16 GEMM), every position: positions 0 ..< window - 20, then
//    the rest (a step straddles the window's edge, where the local layers' rings wrap);
//  * then, the cache cut back to window - 20 (KVCache.truncate restores the rings from a snapshot taken there),
//    each later position by a single-token decode step (in `.fast` the integer row kernels): 120 steps across the
//    window's edge and through the rings' wrap.
// The HF folders' logits are also compared with transformers' (Tests/Fixtures/size-structures-transformers.json).
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct SizeStructureTests {
    static let root = TestPaths.generated + "/size-structures"
    static let sizes = ["1b", "4b", "12b", "27b"]
    static let sources = ["f32", "q8_0", "mixed", "hf"]

    /// `.exact` with f32 KV: f32 arithmetic against a float64-compute reference that rounds every op to f32. The
    /// reference computed in f32 moves up to 1.8e-4 from itself (1b), and on the 270M the exact path is within 2e-4
    /// of it (README, Exactness); measured here: at most 2.7e-4 (12b mixed, prefill). 1e-3 leaves room for other
    /// CPUs' summation orders, while a window off by one moves these models' logits by 1-7 (27b 0.98, 1b 7.3), a
    /// missing linear RoPE factor by 5 and 27b's query scale taken as head_dim^-0.5 by 11 (27b; see
    /// make_size_structure_refs.py --sensitivity and scripts/reference/README.md).
    static let exactTolerance: Float = 1e-3
    /// `.fast` with the default f16 KV: int16 activations (~1e-5 relative per block) and f16 keys and values. On the
    /// 270M that path is within 0.043 of the reference (README, Speed and fidelity); measured here: at most 0.056
    /// (prefill, int16 GEMM) and 0.043 (decode, row kernels), the f32 checkpoints included, so most of it is the f16
    /// KV cache. These random models amplify perturbations (1e-5 relative weight noise moves their logits by up to
    /// 5e-3), hence 0.1; a structural error (window, RoPE, query scale) moves them by 1 to 11.
    static let fastTolerance: Float = 0.1

    struct Reference {
        let ids: [Int]
        let vocab: Int
        let window: Int
        let logits: [String: [Float]]
    }

    static func reference(_ size: String) throws -> Reference {
        let dir = root + "/" + size
        let path = try #require(TestPaths.require(dir + "/reference.safetensors", makeWith: "scripts/reference/make_size_structure_refs.py"))
        let file = try SafetensorsFile(path: path)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as? [String: Any])
        let structure = try #require(manifest["structure"] as? [String: Any])
        let window = try #require(structure["sliding_window"] as? Int)
        let ids = try #require(file.sourceTensor(named: "input_ids")).bytes.bindMemory(to: Int64.self).map(Int.init)
        var logits: [String: [Float]] = [:]
        for v in ["f32", "q8_0", "mixed"] {
            logits[v] = Array(try #require(file.sourceTensor(named: "logits." + v)).bytes.bindMemory(to: Float.self))
        }
        let vocab = logits["f32"]!.count / ids.count
        #expect(ids.count == window + 100 && vocab == 512)
        return Reference(ids: ids, vocab: vocab, window: window, logits: logits)
    }

    static func modelPath(_ size: String, _ source: String) -> String {
        source == "hf" ? root + "/" + size + "/hf" : root + "/" + size + "/model-\(source).gguf"
    }

    /// Worst |Δlogit| over some positions, and greedy agreement.
    struct Comparison: CustomStringConvertible {
        var worst: Float = 0, worstAt = -1, positions = 0, top1Agree = 0, nearTies = 0
        var description: String {
            "max |Δlogit| \(String(format: "%.3g", worst)) at \(worstAt), top-1 \(top1Agree)/\(positions)" + (nearTies > 0 ? " (\(nearTies) near ties)" : "")
        }
        /// Compares one position's logits; a top-1 that differs must be a near tie of the reference (margin below
        /// twice the tolerance: each of the two logits may move by the tolerance).
        mutating func add(_ p: Int, _ got: UnsafeBufferPointer<Float>, _ ref: ArraySlice<Float>, tolerance: Float, label: String) {
            positions += 1
            var refTop = ref.startIndex, refSecond = -Float.infinity
            for i in ref.indices where ref[i] > ref[refTop] { refTop = i }
            for i in ref.indices where i != refTop { refSecond = max(refSecond, ref[i]) }
            for (j, i) in ref.indices.enumerated() {
                let d = abs(got[j] - ref[i])
                if !(d <= worst) { worst = d; worstAt = p }  // NaN counts as worst
            }
            let mine = topK(got, 1)[0].id
            if mine == refTop - ref.startIndex { top1Agree += 1 } else {
                let margin = ref[refTop] - refSecond
                nearTies += 1
                #expect(margin < 2 * tolerance, "\(label) position \(p): top-1 \(mine), reference \(refTop - ref.startIndex) by margin \(margin)")
            }
        }
    }

    @Test(arguments: sizes, sources)
    func logitsMatchTheReference(size: String, source: String) throws {
        let ref = try Self.reference(size)
        let expected = try #require(ref.logits[source == "hf" ? "f32" : source])
        let path = try #require(TestPaths.require(Self.modelPath(size, source), makeWith: "scripts/reference/make_size_structure_refs.py"))
        let n = ref.ids.count, v = ref.vocab, w = ref.window
        for exact in [true, false] {
            let options = exact ? ModelOptions(threads: 2, precision: .exact, placement: .mapped, kvStorage: .f32)
                                : ModelOptions(threads: 2, precision: .fast, placement: .mapped, kvStorage: .f16)
            let tolerance = exact ? Self.exactTolerance : Self.fastTolerance
            let model = try Gemma3Model(path: path, options: options)
            // The file says this size's structure (GGUF metadata or config.json, read by the engine).
            let c = model.config
            let known = Gemma3Config.known(try #require(Gemma3Size(rawValue: size)))
            #expect(c.numAttentionHeads == known.numAttentionHeads)
            #expect(c.numKeyValueHeads == known.numKeyValueHeads)
            #expect(c.headDim == known.headDim)
            #expect(c.queryPreAttnScalar == known.queryPreAttnScalar)
            #expect(c.slidingWindow == known.slidingWindow && c.slidingWindow == w)
            #expect(c.ropeScalingFactor == known.ropeScalingFactor)
            let kinds: [Bool] = c.layers.map { (a: LayerAttention) -> Bool in a.isGlobal }
            #expect(kinds == [false, false, false, false, false, true, false])
            #expect(c.vocabSize == v)
            let label = "\(size) \(source) \(exact ? "exact" : "fast")"

            // Prefill in steps of 100 rows, every position's logits; the cache's rings are snapshotted at window - 20.
            var prefill = Comparison(), decode = Comparison()
            let split = w - 20
            let start = Date()
            let state = model.makeState(capacity: n, maxBatch: 100)
            try model.forward(Array(ref.ids[..<split]), state: state, logits: Gemma3Model.Logits.all) { p, l in
                prefill.add(p, l, expected[p * v..<(p + 1) * v], tolerance: tolerance, label: label + " prefill")
            }
            state.cache.snapshot()
            try model.forward(Array(ref.ids[split...]), state: state, logits: Gemma3Model.Logits.all) { i, l in
                let p = split + i
                prefill.add(p, l, expected[p * v..<(p + 1) * v], tolerance: tolerance, label: label + " prefill")
            }
            let prefillSeconds = Date().timeIntervalSince(start)
            #expect(prefill.positions == n)

            // Back to window - 20 (the rings restored from the snapshot), then single-token decode steps to the end.
            #expect(state.cache.truncate(to: split))
            for p in split..<n {
                try model.forward([ref.ids[p]], state: state, logits: Gemma3Model.Logits.last) { _, l in
                    decode.add(p, l, expected[p * v..<(p + 1) * v], tolerance: tolerance, label: label + " decode")
                }
            }
            #expect(decode.positions == n - split)
            print("size-structure \(label) (\(n) tokens, window \(w)): prefill \(prefill) [\(String(format: "%.1f", prefillSeconds)) s]; decode from \(split) \(decode)")
            #expect(prefill.worst <= tolerance, "\(label) prefill: \(prefill)")
            #expect(decode.worst <= tolerance, "\(label) decode: \(decode)")
        }
    }

    /// The Hugging Face folders against transformers' logits of the same weights (top-8 and log-sum-exp at 12
    /// positions per size, recorded by scripts/reference/make_size_structure_transformers.py). transformers computes
    /// RoPE angles in f32 (the reference and the engine in f64): up to 5.2e-4 apart at these positions (--sensitivity),
    /// so the tolerance is 2e-3.
    @Test(arguments: sizes)
    func huggingFaceFoldersMatchTransformers(size: String) throws {
        let record = try #require(try TestPaths.json("size-structures-transformers.json") as? [String: Any])
        let entry = try #require((record["sizes"] as? [String: Any])?[size] as? [String: Any])
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.root + "/" + size + "/manifest.json"))) as? [String: Any])
        try #require(entry["weights_sha256"] as? String == manifest["weights_sha256"] as? String,
                     "transformers' record is of other weights than the generated \(size) folder")
        let tolerance = try #require(record["tolerance"] as? Double)
        let ref = try Self.reference(size)
        let positions = try #require(entry["positions"] as? [Int])
        let lse = try #require(entry["lse"] as? [Double])
        let top = try #require(entry["top"] as? [[[Double]]])
        let model = try Gemma3Model(path: Self.modelPath(size, "hf"), options: ModelOptions(threads: 2, precision: .exact, placement: .mapped, kvStorage: .f32))
        let state = model.makeState(capacity: ref.ids.count, maxBatch: 100)
        var worst = 0.0, checked = 0, top1 = 0
        try model.forward(ref.ids, state: state, logits: .at(positions)) { p, l in
            let k = positions.firstIndex(of: p)!
            var m = -Float.infinity
            for x in l { m = max(m, x) }
            var s = 0.0
            for x in l { s += exp(Double(x - m)) }
            worst = max(worst, abs(Double(m) + log(s) - lse[k]))
            for pair in top[k] { worst = max(worst, abs(Double(l[Int(pair[0])]) - pair[1])) }
            if topK(l, 1)[0].id == Int(top[k][0][0]) { top1 += 1 }
            checked += 1
        }
        print("size-structure \(size) hf vs transformers \(record["transformers"] ?? "?"): max |Δ| \(String(format: "%.3g", worst)) over top-8 and lse at \(checked) positions, top-1 \(top1)/\(checked)")
        #expect(checked == positions.count && top1 == checked)
        #expect(worst <= tolerance)
    }
}
