// Unaligned little-endian reads of block fields, and Q4_K's 6-bit scale/min unpacking, for the kernels.
// Layouts as in GemmaFormats/Quantization/BlockLayouts.swift:
//   Q8_0 34 B: d f16 | qs[32] i8          Q4_0 18 B: d f16 | qs[16] (lo nibbles = e<16, hi = e>=16), x = d(q-8)
//   Q5_0 22 B: d f16 | qh u32 | qs[16]    q = nibble | bit e of qh << 4, x = d(q-16)
//   Q4_K 144 B: d f16 | dmin f16 | scales[12] | qs[128]     x = d*sc[j]*q - dmin*m[j], j = e/32
//   Q6_K 210 B: ql[128] | qh[64] | scales[16] i8 | d f16     x = d*scales[e/16]*(q-32)

@inline(__always) func kF16(_ p: UnsafeRawPointer, _ o: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
}

@inline(__always) func kU8(_ p: UnsafeRawPointer, _ o: Int) -> UInt8 { p.load(fromByteOffset: o, as: UInt8.self) }

/// Q4_K sub-block j (0..<8) scale and min from the 12 packed bytes at `s`, as floats.
@inline(__always) func kScaleMinQ4K(_ s: UnsafeRawPointer, _ j: Int) -> (Float, Float) {
    if j < 4 { return (Float(kU8(s, j) & 63), Float(kU8(s, j + 4) & 63)) }
    let p = kU8(s, j + 4)
    return (Float((p & 15) | (kU8(s, j - 4) >> 6) << 4), Float((p >> 4) | (kU8(s, j) >> 6) << 4))
}
