// Conversions between f32 and the two 16-bit float formats of GGUF tensors: IEEE half (f16) and bfloat16 (bf16).
// Both work on bit patterns (UInt16) because that is how tensors store them.

extension Float {
    /// The value of an IEEE half-precision bit pattern (exact: every f16 is an f32).
    @inlinable @inline(__always)
    public init(f16Bits bits: UInt16) {
        self = Float(Float16(bitPattern: bits))
    }

    /// The value of a bfloat16 bit pattern (exact: a bf16 is the top half of an f32).
    @inlinable @inline(__always)
    public init(bf16Bits bits: UInt16) {
        self = Float(bitPattern: UInt32(bits) << 16)
    }

    /// The IEEE half-precision bit pattern nearest to this value (round to nearest even; overflow gives infinity).
    @inlinable
    public var f16Bits: UInt16 {
        Float16(self).bitPattern
    }

    /// The bfloat16 bit pattern nearest to this value: round to nearest even; a NaN stays a quiet NaN with its sign
    /// and top payload bits. Same as ggml's `ggml_compute_fp32_to_bf16` and gguf-py's `BF16.quantize_blocks`.
    @inlinable
    public var bf16Bits: UInt16 {
        let bits = bitPattern
        if bits & 0x7fff_ffff > 0x7f80_0000 {
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        // Cannot carry past bit 31: the largest finite magnitudes round up to infinity (0x7f80 in the top half).
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }
}
