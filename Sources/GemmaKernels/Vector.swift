// f32 vector kernels over raw buffers: dot, RMSNorm, GELU (tanh), softmax, add. Accumulation is f32 with
// several independent SIMD partial sums (Swift does not reassociate floating-point adds on its own).

/// Dot product of `n` floats.
@inlinable
package func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
    var i = 0
    while i + 32 <= n {
        acc0 = acc0.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self),
                                  rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
        acc1 = acc1.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self),
                                  rb.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self))
        i += 32
    }
    if i + 16 <= n {
        acc0 = acc0.addingProduct(ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self),
                                  rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

/// Dot product, the plain scalar twin of `dot` (for tests).
package func dotScalar(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Double = 0
    for i in 0..<n { s += Double(a[i]) * Double(b[i]) }
    return Float(s)
}

/// RMSNorm: `out = x * rsqrt(mean(x²) + eps) * (offset + w)`, in f32. Gemma stores w zero-centred (offset 1);
/// GGUF converters bake the 1 in (offset 0). `out` may alias `x`.
@inlinable
package func rmsNorm(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, offset: Float, eps: Float, count n: Int,
                    into out: UnsafeMutablePointer<Float>) {
    let ss = dot(x, x, n)
    let scale = 1 / (ss / Float(n) + eps).squareRoot()
    for i in 0..<n { out[i] = x[i] * scale * (offset + w[i]) }
}

/// e^x for x in [-87.3, 88] (clamped outside), relative error about 1e-7: Cody-Waite reduction x = k·ln2 + r,
/// a degree-6 Taylor polynomial for e^r (|r| <= ln2/2, truncation < 1.3e-7), and 2^k built in the exponent bits.
/// Branch-free, so loops over it vectorize (libm's expf is a call per element).
@inlinable @inline(__always)
package func expFast(_ x: Float) -> Float {
    let x = min(max(x, -87.3), 88.0)
    let t = x * 1.442_695_04 + 12_582_912  // adding 1.5·2^23 rounds to an integer in the low mantissa bits
    let k = t - 12_582_912
    let ki = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
    let r = x - k * 0.693_145_75 - k * 1.428_606_8e-6
    var p: Float = 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    return p * Float(bitPattern: UInt32(bitPattern: (ki &+ 127) << 23))
}

/// GELU with the tanh approximation (`gelu_pytorch_tanh`): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
/// with tanh(u) = 1 - 2 / (e^(2u) + 1) on `expFast` (absolute error of tanh about 1e-7).
@inlinable @inline(__always)
package func geluTanh(_ x: Float) -> Float {
    let c: Float = 0.797_884_560_802_865_4  // sqrt(2/pi)
    let u = c * (x + 0.044715 * x * x * x)
    return 0.5 * x * (2 - 2 / (expFast(2 * u) + 1))
}

/// In place: `a[i] = gelu_tanh(a[i]) * b[i]` (GeGLU).
@inlinable
package func gegluInPlace(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { a[i] = geluTanh(a[i]) * b[i] }
}

/// `y += x` over `n` floats.
@inlinable
package func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] += x[i] }
}

/// In-place softmax of `n` logits (f32, max-subtracted); returns the sum of exponentials before normalization.
@inlinable
@discardableResult
package func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    for i in 0..<n { m = max(m, x[i]) }
    for i in 0..<n { x[i] = expFast(x[i] - m) }
    var s: Float = 0
    for i in 0..<n { s += x[i] }
    let inv = 1 / s
    for i in 0..<n { x[i] *= inv }
    return s
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
