// Switched floating point, 8 bits per weight (SFP8): gemma.cpp's format and the Gemma 3 report's "SFP8".
// Layout (formats.md 1.1): bit 7 sign; bit 6 set: "large" 1 EEE MMM = (1 + M/8) * 2^(E - 7), 2^-7 ... 1.875; bit 6
// clear: "small" 0 EEEE MM = (1 + M/4) * 2^(E - 23), 1.25 * 2^-23 ... 1.75 * 2^-8; 0x00 is zero, 0x80 is never written.
// One tensor-wide scale (max|w| / 1.875 when larger) brings weights into range; a reader multiplies decoded values
// by it. Encoding reproduces gemma.cpp's bytes: the f32 value is truncated to bf16, then rounded at the kept mantissa
// position from the top 6 of bf16's 7 mantissa bits (formats.md 1.3, which also has the test vectors).

public enum SFP8 {
    /// The largest magnitude a code holds.
    public static let maxMagnitude: Float = 1.875

    /// The value of a code (0x80, which encoders never write, decodes as +0).
    @inline(__always)
    public static func decode(_ code: UInt8) -> Float { Float(bitPattern: bits(code)) }

    /// The f32 bit pattern of a code, by integer arithmetic only (what the kernels vectorize): with e the low 7 bits,
    /// a large code is (e + 896) << 20 and a small one (2e + 832) << 20, i.e. exponent and mantissa moved into
    /// place with the exponent bias added; e = 0 is +0; the sign moves from bit 7 to bit 31.
    @inline(__always)
    public static func bits(_ code: UInt8) -> UInt32 {
        let e = UInt32(code & 0x7f)
        guard e != 0 else { return 0 }  // 0x80 (never written) reads as +0, as gemma.cpp's decoder does
        let magnitude = e >= 64 ? (e + 896) << 20 : (2 * e + 832) << 20
        return magnitude | UInt32(code & 0x80) << 24
    }

    /// All 256 codes' values (a table decoder).
    public static let table: [Float] = (0...255).map { decode(UInt8($0)) }

    /// gemma.cpp's encoding of a bf16 bit pattern whose magnitude is below 2 (larger values must be scaled first;
    /// they saturate to the largest code here).
    public static func encode(bf16 h: UInt16) -> UInt8 {
        let hi = Int(h >> 8), lo = Int(h & 0xff)
        var exponent = ((hi << 1) | (lo >> 7)) & 0xff
        if exponent >= 128 { return UInt8(hi & 0x80) | 0x7f }
        let m6 = (lo & 0x7f) >> 1  // the top 6 of the 7 mantissa bits
        let largeBeforeRounding = exponent > 119 || (exponent == 119 && m6 > 0x3b)
        let t = largeBeforeRounding ? 2 * m6 : m6
        let rounded = t + ((t >> 4) & 1) + 7  // half to even at the kept position
        let carry = largeBeforeRounding ? 0x80 : 0x40
        let kept = rounded & ~carry
        if kept != rounded { exponent += 1 }
        if exponent < 104 { return 0 }  // below 2^-23: +0
        if exponent >= 128 { return UInt8(hi & 0x80) | 0x7f }  // rounded up to 2 (gemma.cpp asserts instead)
        var m = kept >> 4
        if exponent == 104 { m = max(m, 1) }  // 1.0 * 2^-23 does not exist: 1.25 * 2^-23
        let em = exponent > 119 ? ((exponent - 112) << 3) | m : ((exponent - 104) << 2) | m
        return UInt8(hi & 0x80) | UInt8(em)
    }

    /// gemma.cpp's encoding of an f32 value (truncated to bf16 first, as its encoder does).
    @inline(__always)
    public static func encode(_ x: Float) -> UInt8 { encode(bf16: UInt16(truncatingIfNeeded: x.bitPattern >> 16)) }

    /// The tensor-wide scale gemma.cpp writes for `values`: max|w| / 1.875 when that exceeds 1.875, else 1.
    public static func tensorScale(_ values: UnsafeBufferPointer<Float>) -> Float {
        var m: Float = 0
        for v in values { m = max(m, abs(v)) }
        return m > maxMagnitude ? m / maxMagnitude : 1
    }

    /// Encodes `count` values divided by `scale` as gemma.cpp does: each multiplied by Float(1 / Double(scale)),
    /// clamped to +-1.875, then encoded.
    public static func encode(_ source: UnsafePointer<Float>, count: Int, scale: Float, into destination: UnsafeMutablePointer<UInt8>) {
        let inverse = Float(1 / Double(scale))
        for i in 0..<count {
            let v = min(max(source[i] * inverse, -maxMagnitude), maxMagnitude)
            destination[i] = encode(v)
        }
    }

    /// Decodes `count` codes times `scale` into f32.
    public static func decode(_ source: UnsafePointer<UInt8>, count: Int, scale: Float, into destination: UnsafeMutablePointer<Float>) {
        if scale == 1 {
            for i in 0..<count { destination[i] = decode(source[i]) }
        } else {
            for i in 0..<count { destination[i] = decode(source[i]) * scale }
        }
    }
}
