// SigLIP's self-attention over one image's N patch tokens: full and bidirectional, per head
// softmax(q·kᵀ · headDim^-0.5) · v with the softmax in f32 (transformers' eager_attention_forward). Never builds the
// N x N score matrix (16 x 4096² floats = 1 GiB at 896 px): each work item is one head and a block of 32 queries,
// which walks the keys in chunks with an online softmax (per query a running maximum and sum; the partial output is
// rescaled when the maximum grows, as flash attention does).
//
// Both products run on the GEMM micro-kernel (`gemmTile32x6`, 32 outputs x 6 tokens) with the 32 queries as the
// kernel's 32 outputs, so every intermediate is query-minor and the softmax is lane-wise over 32 queries:
//  - scores Sᵀ[key][query] = K_h[key] · Q_h[query]: the block's queries (+ bias) as a 32-wide panel over the head
//    dims, the keys (+ bias) as 6-token tiles packed once per layer (`packedKeys`);
//  - out[dim][query] = Σ_key V_h[key][dim] · P[key][query]: the chunk's probabilities are already the kernel's
//    key-major 32-wide panel, and the values (+ bias), packed once per layer as 6-dimension tiles over the keys, are
//    its "tokens". No head-dim padding: 72 = 12 tiles of 6 (a last tile of fewer dims stores fewer outputs).
import GemmaKernels

/// Buffers of an encoder attention over up to `tokens` rows, allocated once per encode.
package final class EncoderAttentionBuffers {
    let tokens: Int, heads: Int, headDim: Int
    /// Keys per chunk of the online softmax (a multiple of 6, the key tiles' size): 768 keys x 32 queries = 96 KiB
    /// of probabilities, which stay in L2 while the value tiles pass.
    package static let defaultKeyChunk = 768
    let keyChunk: Int
    /// Key tiles per head and dimension tiles per head.
    let keyTiles: Int, dimTiles: Int
    /// Per head, keys in 6-key tiles, dimension-major within a tile: [head][tile][dim][6].
    let packedKeys: UnsafeMutablePointer<Float>
    /// Per head, values in 6-dimension tiles, key-major: [head][dimTile][key][6].
    let packedValues: UnsafeMutablePointer<Float>
    /// Per worker: query panel [headDim][32], probabilities [keyChunk][32], chunk output and accumulator
    /// [dimTiles * 6][32], per-query sums (32).
    let perWorker: UnsafeMutablePointer<Float>
    let workerStride: Int
    private let allocation: UnsafeMutableRawPointer

    /// `keyChunk` is rounded up to a multiple of 6.
    package init(tokens: Int, heads: Int, headDim: Int, workers: Int, keyChunk: Int = defaultKeyChunk) {
        self.tokens = tokens
        self.heads = heads
        self.headDim = headDim
        keyTiles = (tokens + 5) / 6
        dimTiles = (headDim + 5) / 6
        let keys = heads * keyTiles * 6 * headDim, values = heads * dimTiles * tokens * 6
        let chunk = min((max(1, keyChunk) + 5) / 6 * 6, keyTiles * 6)
        self.keyChunk = chunk
        // Each piece a multiple of 16 floats, so that every panel starts 64-byte aligned.
        func round(_ n: Int) -> Int { (n + 15) / 16 * 16 }
        workerStride = round(headDim * 32) + round(chunk * 32) + 2 * round(dimTiles * 6 * 32) + 32
        let floats = round(keys) + round(values) + workers * workerStride
        allocation = .allocate(byteCount: floats * 4, alignment: 64)
        let base = allocation.bindMemory(to: Float.self, capacity: floats)
        packedKeys = base
        packedValues = base + round(keys)
        perWorker = packedValues + round(values)
    }

    deinit { allocation.deallocate() }
}

/// The attention of one encoder layer (see the file header).
package struct EncoderAttention {
    let tokens: Int, heads: Int, headDim: Int
    let scale: Float

    package init(tokens: Int, heads: Int, headDim: Int, scale: Float) {
        self.tokens = tokens
        self.heads = heads
        self.headDim = headDim
        self.scale = scale
    }

    /// `out` (tokens x heads*headDim) = attention of q, k, v (same shape, before their biases, which are added here).
    package func callAsFunction(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        qBias: UnsafePointer<Float>, kBias: UnsafePointer<Float>, vBias: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, buffers b: EncoderAttentionBuffers, pool: WorkerPool) {
        precondition(b.tokens == tokens && b.heads == heads && b.headDim == headDim)
        pool.parallelFor(heads, PackJob(a: self, k: k, v: v, kBias: kBias, vBias: vBias, b: b))
        let blocks = (tokens + 31) / 32
        pool.parallelFor(heads * blocks, BlockJob(a: self, q: q, qBias: qBias, out: out, b: b, blocks: blocks))
    }

    /// Packs heads `range`' keys and values (+ biases) into their tiles.
    private struct PackJob: RangeJob {
        let a: EncoderAttention, k: UnsafePointer<Float>, v: UnsafePointer<Float>
        let kBias: UnsafePointer<Float>, vBias: UnsafePointer<Float>, b: EncoderAttentionBuffers
        func run(worker: Int, range: Range<Int>) {
            let n = a.tokens, d = a.headDim, width = a.heads * d
            for h in range {
                let kb = kBias + h * d, vb = vBias + h * d
                let keys = b.packedKeys + h * b.keyTiles * 6 * d
                for tile in 0..<b.keyTiles {
                    let dst = keys + tile * 6 * d
                    for i in 0..<6 {
                        let src = k + min(6 * tile + i, n - 1) * width + h * d  // a last partial tile repeats its last key
                        for j in 0..<d { dst[6 * j + i] = src[j] + kb[j] }
                    }
                }
                for dt in 0..<b.dimTiles {
                    let dst = b.packedValues + (h * b.dimTiles + dt) * n * 6
                    let dims = min(6, d - 6 * dt)
                    for key in 0..<n {
                        let src = v + key * width + h * d + 6 * dt, o = dst + 6 * key
                        for i in 0..<6 {
                            let j = min(i, dims - 1)
                            o[i] = src[j] + vb[6 * dt + j]
                        }
                    }
                }
            }
        }
    }

    /// Items `range`: item = head * blocks + query block.
    private struct BlockJob: RangeJob {
        let a: EncoderAttention, q: UnsafePointer<Float>, qBias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
        let b: EncoderAttentionBuffers, blocks: Int
        func run(worker: Int, range: Range<Int>) {
            for item in range { a.attend(head: item / blocks, firstQuery: 32 * (item % blocks), worker: worker, q, qBias, out, b) }
        }
    }

    /// One head's attention for queries firstQuery ..< firstQuery + 32 (fewer at the end).
    private func attend(head h: Int, firstQuery q0: Int, worker: Int, _ q: UnsafePointer<Float>, _ qBias: UnsafePointer<Float>,
                        _ out: UnsafeMutablePointer<Float>, _ b: EncoderAttentionBuffers) {
        let n = tokens, d = headDim, width = heads * d, rows = min(32, n - q0), dimTiles = b.dimTiles
        func round(_ x: Int) -> Int { (x + 15) / 16 * 16 }
        let panel = b.perWorker + worker * b.workerStride                 // [d][32]
        let probs = panel + round(d * 32)                                 // [chunk][32]
        let chunkOut = probs + round(b.keyChunk * 32)                     // [dimTiles*6][32]
        let acc = chunkOut + round(dimTiles * 6 * 32)                     // [dimTiles*6][32]
        let sums = acc + round(dimTiles * 6 * 32)                         // [32]

        let qb = qBias + h * d
        for i in 0..<32 {
            if i < rows {
                let src = q + (q0 + i) * width + h * d
                for j in 0..<d { panel[j * 32 + i] = src[j] + qb[j] }
            } else {
                for j in 0..<d { panel[j * 32 + i] = 0 }
            }
        }
        acc.update(repeating: 0, count: d * 32)
        // Per query: the running maximum of the scaled scores and the running sum of their exponentials.
        var runMax = Lanes32(repeating: -.infinity), runSum = Lanes32(repeating: 0)

        let keys = b.packedKeys + h * b.keyTiles * 6 * d
        let values = b.packedValues + h * dimTiles * n * 6
        let scale = scale
        var c0 = 0
        while c0 < n {
            let nk = min(b.keyChunk, n - c0)
            // Scores of the chunk, key-major: probs[key][query].
            var t = 0
            while t < nk {
                gemmTile32x6(panel, keys + (c0 + t) * d, 1, d, probs + t * 32, 32, min(6, nk - t), xStep: 6)
                t += 6
            }
            // Online softmax, lane-wise over the 32 queries: the new maximum, the old partials' rescale factor,
            // then the chunk's probabilities (relative to the new maximum) in place and their sum.
            // (Lanes32 methods and wrappers that call max8 / exp8 are not inlined by Swift 6.3: the calls are direct.)
            var chunkMax = Lanes32(repeating: -.infinity)
            for key in 0..<nk {
                let row = Lanes32(probs + key * 32)
                chunkMax = Lanes32(max8(chunkMax.v0, row.v0), max8(chunkMax.v1, row.v1), max8(chunkMax.v2, row.v2), max8(chunkMax.v3, row.v3))
            }
            let scaledMax = chunkMax.scaled(scale)
            let newMax = Lanes32(max8(runMax.v0, scaledMax.v0), max8(runMax.v1, scaledMax.v1), max8(runMax.v2, scaledMax.v2),
                                 max8(runMax.v3, scaledMax.v3))
            let shift = runMax - newMax
            let alpha = Lanes32(exp8(shift.v0), exp8(shift.v1), exp8(shift.v2), exp8(shift.v3))
            runMax = newMax
            var sum = Lanes32(repeating: 0)
            for key in 0..<nk {
                let x = Lanes32(probs + key * 32).scaled(scale) - newMax
                let p = Lanes32(exp8(x.v0), exp8(x.v1), exp8(x.v2), exp8(x.v3))
                p.store(probs + key * 32)
                sum = sum + p
            }
            runSum = runSum * alpha + sum
            // This chunk's share of the output, out[dim][query], merged into the rescaled accumulator.
            for dt in 0..<dimTiles {
                gemmTile32x6(probs, values + (dt * n + c0) * 6, 1, nk, chunkOut + dt * 6 * 32, 32, min(6, d - 6 * dt), xStep: 6)
            }
            for j in 0..<d { (Lanes32(acc + j * 32) * alpha + Lanes32(chunkOut + j * 32)).store(acc + j * 32) }
            c0 += nk
        }
        runSum.store(sums)
        for i in 0..<rows {
            let inv = 1 / sums[i], dst = out + (q0 + i) * width + h * d
            for j in 0..<d { dst[j] = acc[j * 32 + i] * inv }
        }
    }
}

/// 32 floats, one per query of a block, as four 8-lane vectors (AVX2 registers): the softmax's lane-wise arithmetic.
struct Lanes32 {
    var v0, v1, v2, v3: SIMD8<Float>

    @inline(__always) init(repeating x: Float) {
        v0 = SIMD8(repeating: x); v1 = v0; v2 = v0; v3 = v0
    }

    @inline(__always) init(_ v0: SIMD8<Float>, _ v1: SIMD8<Float>, _ v2: SIMD8<Float>, _ v3: SIMD8<Float>) {
        self.v0 = v0; self.v1 = v1; self.v2 = v2; self.v3 = v3
    }

    /// The 32 floats at `p`.
    @inline(__always) init(_ p: UnsafePointer<Float>) {
        let r = UnsafeRawPointer(p)
        v0 = r.loadUnaligned(as: SIMD8<Float>.self)
        v1 = r.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        v2 = r.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
        v3 = r.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
    }

    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        let r = UnsafeMutableRawPointer(p)
        r.storeBytes(of: v0, as: SIMD8<Float>.self)
        r.storeBytes(of: v1, toByteOffset: 32, as: SIMD8<Float>.self)
        r.storeBytes(of: v2, toByteOffset: 64, as: SIMD8<Float>.self)
        r.storeBytes(of: v3, toByteOffset: 96, as: SIMD8<Float>.self)
    }

    @inline(__always) static func + (a: Lanes32, b: Lanes32) -> Lanes32 { Lanes32(a.v0 + b.v0, a.v1 + b.v1, a.v2 + b.v2, a.v3 + b.v3) }
    @inline(__always) static func - (a: Lanes32, b: Lanes32) -> Lanes32 { Lanes32(a.v0 - b.v0, a.v1 - b.v1, a.v2 - b.v2, a.v3 - b.v3) }
    @inline(__always) static func * (a: Lanes32, b: Lanes32) -> Lanes32 { Lanes32(a.v0 * b.v0, a.v1 * b.v1, a.v2 * b.v2, a.v3 * b.v3) }
    @inline(__always) func scaled(_ s: Float) -> Lanes32 { Lanes32(v0 * s, v1 * s, v2 * s, v3 * s) }
}

/// e^x on 8 lanes, `expFast`'s method (Cody-Waite reduction x = k·ln2 + r, a degree-6 Taylor polynomial for e^r,
/// 2^k built in the exponent bits) with fused multiply-adds (Swift does not contract a * b + c on its own): relative
/// error about 1e-7, like expFast's, but not its values bit for bit.
@inline(__always)
package func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let x = max8(min8(x, SIMD8(repeating: 88.0)), SIMD8(repeating: -87.3))
    let t = SIMD8<Float>(repeating: 12_582_912).addingProduct(x, SIMD8(repeating: 1.442_695_04))
    let k = t - 12_582_912
    let ki = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let r = x.addingProduct(k, SIMD8(repeating: -0.693_145_75)).addingProduct(k, SIMD8(repeating: -1.428_606_8e-6))
    var p = SIMD8<Float>(repeating: 1.0 / 120).addingProduct(SIMD8(repeating: 1.0 / 720), r)
    p = SIMD8<Float>(repeating: 1.0 / 24).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1.0 / 6).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 0.5).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1).addingProduct(p, r)
    return p * unsafeBitCast((ki &+ 127) &* 8_388_608, to: SIMD8<Float>.self)
}
