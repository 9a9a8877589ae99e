// A tiny random Gemma 3 (2 layers, hidden 64, 2 query heads and 1 KV head of 32, FFN 128, vocab 64) written as
// GGUF three times: f32; with every layer matrix quantized to per-channel int4 (TensorType.int4Channel, the rest
// f32); and f32 holding exactly those int4 weights dequantized (q / scale). The int4 file must run: in `.exact`
// precision its logits are those of the dequantized f32 file bit for bit (the f32 paths dequantize rows, prompt by
// the panel GEMM, decode by rows); in `.fast` (integer kernels, int16 activations) within 1e-3 of them; and close to
// the original f32 model's, at the distance int4 quantization itself puts them.
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaModel
import GemmaTestSupport
import Testing

@Suite(.serialized) struct Int4ChannelModelTests {
    static let hidden = 64, layers = 2, heads = 2, headDim = 32, ffn = 128, vocab = 64

    /// The tiny model's metadata and f32 tensors (ggml order dims), random: matrices ~ N(0, 1 / cols), norms 1 + N(0, 0.1)
    /// (GGUF stores Gemma's 1 + w).
    static func tensors() -> (GGUFMetadata, [(String, [Int], [Float])]) {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("gemma3")
        m["gemma3.context_length"] = .uint32(256)
        m["gemma3.embedding_length"] = .uint32(UInt32(hidden))
        m["gemma3.block_count"] = .uint32(UInt32(layers))
        m["gemma3.feed_forward_length"] = .uint32(UInt32(ffn))
        m["gemma3.attention.head_count"] = .uint32(UInt32(heads))
        m["gemma3.attention.head_count_kv"] = .uint32(1)
        m["gemma3.attention.key_length"] = .uint32(UInt32(headDim))
        m["gemma3.attention.value_length"] = .uint32(UInt32(headDim))
        m["gemma3.attention.sliding_window"] = .uint32(8)
        m["gemma3.attention.layer_norm_rms_epsilon"] = .float32(1e-6)
        m["tokenizer.ggml.tokens"] = .array(.string((0..<vocab).map { "t\($0)" }))
        var r = SplitMix64(seed: 1024)
        func matrix(_ rows: Int, _ cols: Int) -> [Float] { (0..<rows * cols).map { _ in r.gaussian() / Float(cols).squareRoot() } }
        func norm(_ n: Int) -> [Float] { (0..<n).map { _ in 1 + 0.1 * r.gaussian() } }
        var t: [(String, [Int], [Float])] = [("token_embd.weight", [hidden, vocab], matrix(vocab, hidden)), ("output_norm.weight", [hidden], norm(hidden))]
        for l in 0..<layers {
            let b = "blk.\(l)."
            t += [(b + "attn_norm.weight", [hidden], norm(hidden)),
                  (b + "attn_q.weight", [hidden, heads * headDim], matrix(heads * headDim, hidden)),
                  (b + "attn_k.weight", [hidden, headDim], matrix(headDim, hidden)),
                  (b + "attn_v.weight", [hidden, headDim], matrix(headDim, hidden)),
                  (b + "attn_output.weight", [heads * headDim, hidden], matrix(hidden, heads * headDim)),
                  (b + "attn_q_norm.weight", [headDim], norm(headDim)), (b + "attn_k_norm.weight", [headDim], norm(headDim)),
                  (b + "post_attention_norm.weight", [hidden], norm(hidden)), (b + "ffn_norm.weight", [hidden], norm(hidden)),
                  (b + "ffn_gate.weight", [hidden, ffn], matrix(ffn, hidden)), (b + "ffn_up.weight", [hidden, ffn], matrix(ffn, hidden)),
                  (b + "ffn_down.weight", [ffn, hidden], matrix(hidden, ffn)), (b + "post_ffw_norm.weight", [hidden], norm(hidden))]
        }
        return (m, t)
    }

    enum Variant { case f32, int4, dequantizedInt4 }

    /// The model as a GGUF file's bytes: layer matrices (blk.*, 2-D) in int4Channel, or their dequantized values in f32.
    static func file(_ variant: Variant) throws -> [UInt8] {
        let (m, tensors) = Self.tensors()
        var w = GGUFWriter(metadata: m)
        for (name, dims, values) in tensors {
            let quantize = variant != .f32 && name.hasPrefix("blk.") && dims.count == 2
            guard quantize else {
                try w.addTensor(name: name, type: .f32, dimensions: dims, data: values.withUnsafeBytes { Array($0) })
                continue
            }
            let (cols, rows) = (dims[0], dims[1]), rowBytes = TensorType.int4Channel.rowBytes(cols)!
            var q = [UInt8](repeating: 0, count: rows * rowBytes), deq = [Float](repeating: 0, count: rows * cols)
            try values.withUnsafeBufferPointer { src in
                try q.withUnsafeMutableBytes { dst in
                    try deq.withUnsafeMutableBufferPointer { out in
                        for r in 0..<rows {
                            try TensorType.int4Channel.quantize(src.baseAddress! + r * cols, count: cols, into: dst.baseAddress! + r * rowBytes)
                            try TensorType.int4Channel.dequantize(dst.baseAddress! + r * rowBytes, count: cols, into: out.baseAddress! + r * cols)
                        }
                    }
                }
            }
            if variant == .int4 { try w.addTensor(name: name, type: .int4Channel, dimensions: dims, data: q) }
            else { try w.addTensor(name: name, type: .f32, dimensions: dims, data: deq.withUnsafeBytes { Array($0) }) }
        }
        return w.serialized()
    }

    /// Logits of a 20-token prompt (every position; the GEMM path) and 4 greedy decode steps (the row path).
    static func logits(_ variant: Variant, _ precision: Precision) throws -> [[Float]] {
        let file = try GGUFFile(bytes: try Self.file(variant))
        let model = try Gemma3Model(checkpoint: try Checkpoint(gguf: file),
                                    options: ModelOptions(threads: 2, precision: precision, placement: .mapped, kvStorage: .f32))
        if variant == .int4 { #expect(model.weights.layers[1].down.encoding == .int4 && model.weights.embedding.encoding == .f32) }
        let prompt = [2, 17, 5, 60, 33, 8, 41, 12, 9, 50, 3, 27, 44, 19, 6, 58, 21, 38, 11, 30]
        let s = model.makeState(capacity: 64)
        var out: [[Float]] = [], next = 0
        try model.forward(prompt, state: s, logits: .all) { _, l in out.append(Array(l)); next = topK(l, 1)[0].id }
        for _ in 0..<4 { try model.forward([next], state: s) { _, l in out.append(Array(l)); next = topK(l, 1)[0].id } }
        return out
    }

    /// max |a - b| over all positions, relative to max |b|.
    static func relativeMaxDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        let scale = b.joined().map(abs).max() ?? 1
        return zip(a.joined(), b.joined()).map { abs($0 - $1) }.max()! / scale
    }

    @Test func int4ModelRunsAndMatchesItsDequantizedWeights() throws {
        let dequantized = try Self.logits(.dequantizedInt4, .exact)
        let exact = try Self.logits(.int4, .exact)
        #expect(exact.count == 24)
        #expect(exact == dequantized, "int4 .exact logits differ from the f32 model of its dequantized weights")
        let fast = try Self.logits(.int4, .fast)
        let fastDiff = Self.relativeMaxDifference(fast, dequantized)
        #expect(fastDiff < 1e-3, "int4 .fast vs dequantized f32: \(fastDiff)")
        // Against the unquantized model: int4's own error (per-weight noise ~ step / sqrt(12) = max|w| / 7 / 3.5).
        // Measured 0.24 of the largest logit (top-1 23 of 24); a model with unrelated weights is off by ~1 or more.
        let original = try Self.logits(.f32, .exact)
        let quantDiff = Self.relativeMaxDifference(exact, original)
        func argmax(_ l: [Float]) -> Int { l.indices.max { l[$0] < l[$1] }! }
        let top1 = zip(exact, original).filter { argmax($0.0) == argmax($0.1) }.count
        print("int4-channel tiny model: .fast vs dequantized max |Δ| / max|logit| \(fastDiff); int4 vs f32 \(quantDiff), top-1 \(top1)/\(exact.count)")
        #expect(quantDiff < 0.4 && quantDiff > 0, "int4 vs f32: \(quantDiff)")
        #expect(top1 >= exact.count * 3 / 4, "top-1 agreement with the f32 model: \(top1) of \(exact.count)")
    }
}
