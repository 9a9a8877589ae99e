// Byte layouts of the GGUF block formats this module converts, as offsets from the start of a block.
// Blocks are packed back to back with no padding, so multi-byte fields are NOT aligned: read them with
// loadUnaligned. All multi-byte fields are little-endian. QK_K = 256 elements per K-quant super-block.
//
// Element e of a block is reconstructed as follows ("lo/hi nibble" = bits 0-3 / 4-7 of a byte):
//
// Q4_0  (32 el, 18 B): d f16 @0 | qs[16] @2.            e<16: lo(qs[e]), e>=16: hi(qs[e-16]); x = d * (q - 8)
// Q4_1  (32 el, 20 B): d f16 @0 | m f16 @2 | qs[16] @4.  q as Q4_0;                              x = d * q + m
// Q5_0  (32 el, 22 B): d f16 @0 | qh u32 @2 | qs[16] @6. q = nibble as Q4_0 | bit e of qh << 4;  x = d * (q - 16)
// Q5_1  (32 el, 24 B): d f16 @0 | m f16 @2 | qh u32 @4 | qs[16] @8. q as Q5_0;                   x = d * q + m
// Q8_0  (32 el, 34 B): d f16 @0 | qs[32] i8 @2.                                                 x = qs[e] * d
// Q2_K (256 el, 84 B): scales[16] @0 | qs[64] @16 | d f16 @80 | dmin f16 @82.
//     e = 128c + 32s + l (c<2, s<4, l<32): q = (qs[32c+l] >> 2s) & 3; group g = e/16;
//     x = (d * (scales[g] & 15)) * q - dmin * (scales[g] >> 4)
// Q3_K (256 el, 110 B): hmask[32] @0 | qs[64] @32 | scales[12] @96 | d f16 @108.
//     e = 128c + 32s + l: low = (qs[32c+l] >> 2s) & 3; e = 32i + l: high = (hmask[l] >> i) & 1;
//     q = low - (high == 0 ? 4 : 0); group g = e/16 has the 6-bit scale
//     (g<8 ? lo(scales[g]) : hi(scales[g-8])) | ((scales[8 + g%4] >> 2(g/4)) & 3) << 4;  x = (d * (scale - 32)) * q
// Q4_K (256 el, 144 B): d f16 @0 | dmin f16 @2 | scales[12] @4 | qs[128] @16.
//     8 sub-blocks of 32 with 6-bit scale sc[j] and min m[j] packed in 12 bytes (b = scales):
//       j<4: sc = b[j] & 63, m = b[j+4] & 63;
//       j>=4: sc = lo(b[j+4]) | (b[j-4] >> 6) << 4, m = hi(b[j+4]) | (b[j] >> 6) << 4.
//     e = 64c + 32s + l (c<4, s<2): q = (qs[32c+l] >> 4s) & 15; j = e/32;  x = (d * sc[j]) * q - dmin * m[j]
// Q5_K (256 el, 176 B): d f16 @0 | dmin f16 @2 | scales[12] @4 | qh[32] @16 | qs[128] @48.
//     as Q4_K, plus e = 32i + l: q |= ((qh[l] >> i) & 1) << 4
// Q6_K (256 el, 210 B): ql[128] @0 | qh[64] @128 | scales[16] i8 @192 | d f16 @208.
//     e = 128c + 64s + l (l<64): low = (ql[64c+l] >> 4s) & 15; e = 128c + 32t + l (t<4, l<32): high = (qh[32c+l] >> 2t) & 3;
//     q = (low | high << 4) - 32; group g = e/16;  x = (d * scales[g]) * q
// Q8_K (256 el, 292 B): d f32 @0 | qs[256] i8 @4 | bsums[16] i16 @260 (sums of 16 qs; unused here). x = d * qs[e]
//
// INT4_CHANNEL (extended type 1024, not ggml; a row of n = 32k elements, 4 + 16k B): scale f32 @0 | k nibble blocks
//     of 16 B @4 + 16b, each laid out as Q4_0's qs: e<16: lo(qs[e]), e>=16: hi(qs[e-16]); q = nibble - 8 in -8...7;
//     x = q / scale (a division: dm/gemma's stored scale is the reciprocal of the step). See Int4Channel.swift.
//
// The multiplication order above is gguf-py's, so that results are bit-identical to gguf.quants.dequantize.

/// Byte offsets of the fields of each block format (see the table above).
enum BlockLayout {
    enum Q4_0 { static let d = 0, qs = 2 }
    enum Q4_1 { static let d = 0, m = 2, qs = 4 }
    enum Q5_0 { static let d = 0, qh = 2, qs = 6 }
    enum Q5_1 { static let d = 0, m = 2, qh = 4, qs = 8 }
    enum Q8_0 { static let d = 0, qs = 2 }
    enum Q2_K { static let scales = 0, qs = 16, d = 80, dmin = 82 }
    enum Q3_K { static let hmask = 0, qs = 32, scales = 96, d = 108 }
    enum Q4_K { static let d = 0, dmin = 2, scales = 4, qs = 16 }
    enum Q5_K { static let d = 0, dmin = 2, scales = 4, qh = 16, qs = 48 }
    enum Q6_K { static let ql = 0, qh = 128, scales = 192, d = 208 }
    enum Q8_K { static let d = 0, qs = 4, bsums = 260 }
    /// Per row, not per block: the scale, then the nibble blocks.
    enum Int4Channel { static let scale = 0, blocks = 4 }
}

// Unaligned little-endian field readers used by the converters.
extension UnsafeRawPointer {
    @inline(__always) func blockByte(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }
    @inline(__always) func blockF16(_ offset: Int) -> Float {
        Float(f16Bits: UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }
}
