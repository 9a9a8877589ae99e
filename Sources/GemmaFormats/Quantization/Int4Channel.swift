// Per-channel int4, as dm/gemma quantizes a checkpoint for inference (`gemma.peft.quantize(params, method="INT4")`,
// `uniform_quantize` in gemma/peft/_quantization_utils.py): symmetric, no zero point, one scale per output channel
// (a row of our [output, input] matrices), and dequantized by a *division* by that scale:
//     scale = 7 * (1 / max|w|)              f32, two roundings, as the source writes it (`upper_bound * (1.0 / max_)`)
//     q     = clip(round_half_even(w * scale), -8, 7)
//     stored scale = max(scale, 1e-6)       (q was computed with the unfloored scale)
//     w'    = q / stored scale
// An all-zero row has max 0: scale = 7 * inf = inf, every w * scale = 0 * inf = NaN, which we store as q = 0 (as a
// float -> int conversion that maps NaN to 0, LLVM's fptosi.sat, would); then w' = 0 / inf = 0, and the stored scale
// stays inf (max(inf, 1e-6)). The floor only bites for max|w| > 7e6.
// Row layout (BlockLayouts.swift): the f32 scale, then blocks of 32 weights as Q4_0's nibbles (q + 8) without its
// per-block f16 scales, so that the integer kernels reuse Q4_0's unpacking with one scale per row. f32, not bf16:
// the scale is kept exactly as dm/gemma computes it (q / scale then matches its dequantization bit for bit), for 4
// bytes per row (0.6% of a 640-wide row, 0.04% of a 10240-wide one).

extension TensorType {
    /// dm/gemma's `_NON_ZERO_DIVISION_EPS`, the floor of a stored scale.
    public static let int4ChannelScaleFloor: Float = 1e-6

    /// One row of `count` floats (a multiple of 32) into INT4_CHANNEL bytes (4 + count / 2).
    static func quantizeInt4Channel(_ x: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Int4Channel
        var maxAbs: Float = 0
        for i in 0..<count where abs(x[i]) > maxAbs { maxAbs = abs(x[i]) }
        let scale = 7 * (1 / maxAbs)
        @inline(__always) func q(_ w: Float) -> UInt8 {
            let r = (w * scale).rounded(.toNearestOrEven)
            let v: Int = r.isNaN ? 0 : r <= -8 ? -8 : r >= 7 ? 7 : Int(r)
            return UInt8(v + 8)
        }
        for b in 0..<count / 32 {
            let p = x + 32 * b
            for j in 0..<16 {
                dst.storeBytes(of: q(p[j]) | q(p[j + 16]) << 4, toByteOffset: L.blocks + 16 * b + j, as: UInt8.self)
            }
        }
        dst.storeBytes(of: max(scale, int4ChannelScaleFloor).bitPattern.littleEndian, toByteOffset: L.scale, as: UInt32.self)
    }

    /// One INT4_CHANNEL row of `count` elements to floats: `Float(q) / scale` per element (dm/gemma's division).
    static func dequantizeInt4Channel(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Int4Channel
        let scale = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: L.scale, as: UInt32.self)))
        let p = (src + L.blocks).assumingMemoryBound(to: UInt8.self)
        for b in 0..<count / 32 {
            let q = p + 16 * b, o = out + 32 * b
            for j in 0..<16 {
                o[j] = Float(Int32(q[j] & 15) - 8) / scale
                o[j + 16] = Float(Int32(q[j] >> 4) - 8) / scale
            }
        }
    }
}
