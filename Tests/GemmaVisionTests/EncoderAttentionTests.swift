// The encoder's tiled attention against its scalar twin (softmax(q·kᵀ·scale)·v per head in f64, the biases added
// first), on sizes that hit every tail: token counts that are not multiples of the 6-key tiles or the 32-query blocks,
// head dims that are not multiples of the 6-dimension value tiles, and key chunks far smaller than the keys, so that
// the online softmax merges many chunks (the fixture model's 256 keys fit one chunk of the default 768); and the
// softmax's vector exponential against libm.
import Foundation
import GemmaKernels
import GemmaTestSupport
import GemmaVision
import Testing

struct EncoderAttentionTests {
    /// |Δ| <= 2e-6 x max |out| (f32 GEMM tiles and expFast against f64).
    static let tolerance: Float = 2e-6

    static func reference(_ q: [Float], _ k: [Float], _ v: [Float], _ qb: [Float], _ kb: [Float], _ vb: [Float],
                          tokens n: Int, heads: Int, headDim d: Int, scale: Double) -> [Float] {
        let w = heads * d
        var out = [Float](repeating: 0, count: n * w)
        for h in 0..<heads {
            for i in 0..<n {
                var s = [Double](repeating: 0, count: n)
                for j in 0..<n {
                    var dot = 0.0
                    for x in 0..<d { dot += Double(q[i * w + h * d + x] + qb[h * d + x]) * Double(k[j * w + h * d + x] + kb[h * d + x]) }
                    s[j] = dot * scale
                }
                let m = s.max()!
                let e = s.map { Foundation.exp($0 - m) }, sum = e.reduce(0, +)
                for x in 0..<d {
                    var acc = 0.0
                    for j in 0..<n { acc += e[j] * Double(v[j * w + h * d + x] + vb[h * d + x]) }
                    out[i * w + h * d + x] = Float(acc / sum)
                }
            }
        }
        return out
    }

    @Test(arguments: [(1, 1, 4, 768), (7, 2, 16, 768), (33, 3, 20, 12), (200, 2, 72, 60), (97, 1, 9, 6)])
    func matchesTheScalarTwin(_ shape: (tokens: Int, heads: Int, headDim: Int, keyChunk: Int)) throws {
        let (n, heads, d, chunk) = shape
        var rng = SplitMix64(seed: UInt64(n * 1000 + heads * 100 + d))
        let w = heads * d
        // Scores of a few units, so that the softmax is neither flat nor one-hot.
        let q = rng.floats(n * w, scale: 1.5), k = rng.floats(n * w, scale: 1.5), v = rng.floats(n * w)
        let qb = rng.floats(w, scale: 0.5), kb = rng.floats(w, scale: 0.5), vb = rng.floats(w, scale: 0.5)
        let scale = 1 / Double(d).squareRoot()
        let want = Self.reference(q, k, v, qb, kb, vb, tokens: n, heads: heads, headDim: d, scale: scale)
        for threads in [1, 2] {
            let pool = WorkerPool.shared(threads: threads)
            let buffers = EncoderAttentionBuffers(tokens: n, heads: heads, headDim: d, workers: pool.threads, keyChunk: chunk)
            var out = [Float](repeating: .nan, count: n * w)
            let attention = EncoderAttention(tokens: n, heads: heads, headDim: d, scale: Float(scale))
            q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
                qb.withUnsafeBufferPointer { qb in kb.withUnsafeBufferPointer { kb in vb.withUnsafeBufferPointer { vb in
                    out.withUnsafeMutableBufferPointer { o in
                        attention(q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!, qBias: qb.baseAddress!, kBias: kb.baseAddress!,
                                  vBias: vb.baseAddress!, out: o.baseAddress!, buffers: buffers, pool: pool)
                    }
                } } }
            } } }
            let d = zip(out, want).map { abs($0 - $1) }.max()!, scale = want.map(abs).max()!
            print("attention tokens \(n) heads \(heads) dim \(shape.headDim) chunk \(chunk) threads \(threads): max |Δ| \(d) (max |out| \(scale))")
            #expect(d <= Self.tolerance * scale)
        }
    }

    @Test func exp8IsExpWithinItsBound() {
        // The softmax's exponential: relative error <= 3e-7 against libm over the range the softmax uses (scores minus
        // their maximum: 0 down to the clamp at -87.3, where e^x is 1.2e-38), 0 past the clamp (and for -inf).
        var worst: Double = 0
        var x: Float = 0
        while x > -87 {
            let lanes = SIMD8<Float>((0..<8).map { x - Float($0) * 0.001 })
            let got = exp8(lanes)
            for i in 0..<8 {
                let want = Foundation.exp(Double(lanes[i]))
                worst = max(worst, abs(Double(got[i]) - want) / want)
            }
            x -= 0.0137
        }
        print("exp8: max relative error \(worst)")
        #expect(worst <= 3e-7)
        let edge = exp8(SIMD8(-.infinity, -1000, -87.3, 88, 0, 1, -1, 10))
        #expect(edge[0] < 2e-38 && edge[1] < 2e-38 && edge[2] < 2e-38 && edge[4] == 1)
        #expect(abs(edge[5] - Float(M_E)) <= 1e-6 && abs(edge[7] - 22026.465) <= 0.01)
    }
}
