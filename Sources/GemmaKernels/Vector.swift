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

/// How a row of stored values reads as f32: 8 at a time (one conversion instruction for f16, a shift for bf16)
/// and one at a time (tails), at element offsets from a raw row pointer.
@usableFromInline package protocol StoredElements {
    /// Bytes of the first `elements` elements of a row (a multiple of 32 for q8_0).
    static func byteOffset(_ elements: Int) -> Int
    static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float>
    static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float
}

@usableFromInline package enum F32Elements: StoredElements {
    @inlinable @inline(__always) package static func byteOffset(_ n: Int) -> Int { 4 &* n }
    @inlinable @inline(__always) package static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        p.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
    }
    @inlinable @inline(__always) package static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        p.loadUnaligned(fromByteOffset: 4 &* i, as: Float.self)
    }
}

@usableFromInline package enum F16Elements: StoredElements {
    @inlinable @inline(__always) package static func byteOffset(_ n: Int) -> Int { 2 &* n }
    @inlinable @inline(__always) package static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        SIMD8<Float>(p.loadUnaligned(fromByteOffset: 2 &* i, as: SIMD8<Float16>.self))
    }
    @inlinable @inline(__always) package static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Float(p.loadUnaligned(fromByteOffset: 2 &* i, as: Float16.self))
    }
}

@usableFromInline package enum BF16Elements: StoredElements {
    @inlinable @inline(__always) package static func byteOffset(_ n: Int) -> Int { 2 &* n }
    @inlinable @inline(__always) package static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let h = p.loadUnaligned(fromByteOffset: 2 &* i, as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }
    @inlinable @inline(__always) package static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)) << 16)
    }
}

/// q8_0 blocks (an f16 scale, then 32 signed bytes) read as f32: each value its byte times its block's scale, the
/// same product as `TensorType.q8_0.dequantize`. Element offsets within 8 of each other share a block when they
/// start at multiples of 8.
@usableFromInline package enum Q8_0Elements: StoredElements {
    @inlinable @inline(__always) package static func byteOffset(_ n: Int) -> Int { (n >> 5) &* 34 }
    @inlinable @inline(__always) package static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let b = p + (i >> 5) &* 34
        let q = b.loadUnaligned(fromByteOffset: 2 &+ (i & 31), as: SIMD8<Int8>.self)
        return SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q)) * Float(b.loadUnaligned(as: Float16.self))
    }
    @inlinable @inline(__always) package static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        let b = p + (i >> 5) &* 34
        return Float(b.loadUnaligned(fromByteOffset: 2 &+ (i & 31), as: Int8.self)) * Float(b.loadUnaligned(as: Float16.self))
    }
}

/// Dot products of one key with `count` query heads (`q + h * qStride`, n floats each), scaled:
/// `out[h * outStride] = dot(q_h, key) * scale`, the key read as stored (`E`). Heads go four at a time (then one)
/// so that each load of the key serves several heads; every head's sum has the same shape whatever its companions
/// (two 8-wide partial sums over 16-float steps, then the scalar tail), so a head's score does not depend on how
/// heads are grouped, nor on the key's storage beyond its values.
@inlinable
package func dotHeads<E: StoredElements>(_ q: UnsafePointer<Float>, qStride: Int, count: Int, key: UnsafeRawPointer, as _: E.Type,
                                         _ n: Int, scale: Float, into out: UnsafeMutablePointer<Float>, outStride: Int) {
    @inline(__always) func tail(_ qh: UnsafePointer<Float>, _ i0: Int, _ s: Float) -> Float {
        var s = s, i = i0
        while i < n { s += qh[i] * E.load1(key, i); i += 1 }
        return s
    }
    let n16 = n & ~15
    var h = 0
    while h + 4 <= count {
        let q0 = UnsafeRawPointer(q + h * qStride), q1 = q0 + 4 * qStride, q2 = q1 + 4 * qStride, q3 = q2 + 4 * qStride
        var a0 = SIMD8<Float>(), b0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b1 = SIMD8<Float>()
        var a2 = SIMD8<Float>(), b2 = SIMD8<Float>(), a3 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var i = 0
        while i < n16 {
            let ka = E.load8(key, i), kb = E.load8(key, i &+ 8), o = 4 &* i
            a0 = a0.addingProduct(q0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), ka)
            b0 = b0.addingProduct(q0.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self), kb)
            a1 = a1.addingProduct(q1.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), ka)
            b1 = b1.addingProduct(q1.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self), kb)
            a2 = a2.addingProduct(q2.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), ka)
            b2 = b2.addingProduct(q2.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self), kb)
            a3 = a3.addingProduct(q3.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), ka)
            b3 = b3.addingProduct(q3.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self), kb)
            i &+= 16
        }
        let qh = q + h * qStride
        out[h * outStride] = tail(qh, n16, (a0 + b0).sum()) * scale
        out[(h + 1) * outStride] = tail(qh + qStride, n16, (a1 + b1).sum()) * scale
        out[(h + 2) * outStride] = tail(qh + 2 * qStride, n16, (a2 + b2).sum()) * scale
        out[(h + 3) * outStride] = tail(qh + 3 * qStride, n16, (a3 + b3).sum()) * scale
        h += 4
    }
    while h < count {
        let q0 = UnsafeRawPointer(q + h * qStride)
        var a0 = SIMD8<Float>(), b0 = SIMD8<Float>()
        var i = 0
        while i < n16 {
            let o = 4 &* i
            a0 = a0.addingProduct(q0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), E.load8(key, i))
            b0 = b0.addingProduct(q0.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self), E.load8(key, i &+ 8))
            i &+= 16
        }
        out[h * outStride] = tail(q + h * qStride, n16, (a0 + b0).sum()) * scale
        h += 1
    }
}

/// `dotHeads` over an f32 key.
@inlinable
package func dotHeads(_ q: UnsafePointer<Float>, qStride: Int, count: Int, key: UnsafePointer<Float>, _ n: Int,
                      scale: Float, into out: UnsafeMutablePointer<Float>, outStride: Int) {
    dotHeads(q, qStride: qStride, count: count, key: UnsafeRawPointer(key), as: F32Elements.self, n, scale: scale, into: out, outStride: outStride)
}

/// `out_h += sum_j w[h * wStride + j] * v_j` for `count` heads (`out + h * outStride`, n floats) over `keys` value
/// rows (`v + j * vStride` bytes, read as stored: `E`), the keys added one after another into each element (fused
/// multiply-adds in key order, the same arithmetic as adding one key at a time), each output read and written
/// once per call.
@inlinable
package func accumulateHeads<E: StoredElements>(_ out: UnsafeMutablePointer<Float>, outStride: Int, count: Int,
                                                weights w: UnsafePointer<Float>, wStride: Int, values v: UnsafeRawPointer,
                                                as _: E.Type, vStrideBytes: Int, keys: Int, _ n: Int) {
    @inline(__always) func v8(_ j: Int, _ i: Int) -> SIMD8<Float> { E.load8(v + j &* vStrideBytes, i) }
    @inline(__always) func o8(_ h: Int, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(out + h &* outStride).loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
    }
    @inline(__always) func store(_ x: SIMD8<Float>, _ h: Int, _ i: Int) {
        UnsafeMutableRawPointer(out + h &* outStride).storeBytes(of: x, toByteOffset: 4 &* i, as: SIMD8<Float>.self)
    }
    @inline(__always) func w8(_ h: Int, _ j: Int) -> SIMD8<Float> { SIMD8(repeating: w[h &* wStride &+ j]) }
    let n8 = n & ~7, n16 = n & ~15, n32 = n & ~31
    // Blocks of heads share each value row's load and conversion: 4 heads x 16 lanes, or 2 heads x 32 lanes, of
    // outputs in registers (the same fused multiply-adds in key order per element as one head at a time).
    var h0 = 0, lanesDone = 0
    if count >= 4 {
        lanesDone = n16
        while h0 + 4 <= count {
            var i = 0
            while i < n16 {
                var a0 = o8(h0, i), b0 = o8(h0, i &+ 8), a1 = o8(h0 &+ 1, i), b1 = o8(h0 &+ 1, i &+ 8)
                var a2 = o8(h0 &+ 2, i), b2 = o8(h0 &+ 2, i &+ 8), a3 = o8(h0 &+ 3, i), b3 = o8(h0 &+ 3, i &+ 8)
                for j in 0..<keys {
                    let va = v8(j, i), vb = v8(j, i &+ 8)
                    let x0 = w8(h0, j), x1 = w8(h0 &+ 1, j), x2 = w8(h0 &+ 2, j), x3 = w8(h0 &+ 3, j)
                    a0 = a0.addingProduct(x0, va); b0 = b0.addingProduct(x0, vb)
                    a1 = a1.addingProduct(x1, va); b1 = b1.addingProduct(x1, vb)
                    a2 = a2.addingProduct(x2, va); b2 = b2.addingProduct(x2, vb)
                    a3 = a3.addingProduct(x3, va); b3 = b3.addingProduct(x3, vb)
                }
                store(a0, h0, i); store(b0, h0, i &+ 8); store(a1, h0 &+ 1, i); store(b1, h0 &+ 1, i &+ 8)
                store(a2, h0 &+ 2, i); store(b2, h0 &+ 2, i &+ 8); store(a3, h0 &+ 3, i); store(b3, h0 &+ 3, i &+ 8)
                i &+= 16
            }
            h0 &+= 4
        }
    } else if count == 2 {
        lanesDone = n32
        var i = 0
        while i < n32 {
            var a0 = o8(0, i), b0 = o8(0, i &+ 8), c0 = o8(0, i &+ 16), d0 = o8(0, i &+ 24)
            var a1 = o8(1, i), b1 = o8(1, i &+ 8), c1 = o8(1, i &+ 16), d1 = o8(1, i &+ 24)
            for j in 0..<keys {
                let va = v8(j, i), vb = v8(j, i &+ 8), vc = v8(j, i &+ 16), vd = v8(j, i &+ 24)
                let x0 = w8(0, j), x1 = w8(1, j)
                a0 = a0.addingProduct(x0, va); b0 = b0.addingProduct(x0, vb)
                c0 = c0.addingProduct(x0, vc); d0 = d0.addingProduct(x0, vd)
                a1 = a1.addingProduct(x1, va); b1 = b1.addingProduct(x1, vb)
                c1 = c1.addingProduct(x1, vc); d1 = d1.addingProduct(x1, vd)
            }
            store(a0, 0, i); store(b0, 0, i &+ 8); store(c0, 0, i &+ 16); store(d0, 0, i &+ 24)
            store(a1, 1, i); store(b1, 1, i &+ 8); store(c1, 1, i &+ 16); store(d1, 1, i &+ 24)
            i &+= 32
        }
        h0 = 2
    }
    // The lanes past the blocks, and heads past the last block: one head at a time.
    for h in 0..<count {
        let o = UnsafeMutableRawPointer(out + h * outStride), wh = w + h * wStride
        var i = h < h0 ? lanesDone : 0
        while i < n32 {  // four independent chains of adds
            var a0 = o.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
            var a1 = o.loadUnaligned(fromByteOffset: 4 &* i &+ 32, as: SIMD8<Float>.self)
            var a2 = o.loadUnaligned(fromByteOffset: 4 &* i &+ 64, as: SIMD8<Float>.self)
            var a3 = o.loadUnaligned(fromByteOffset: 4 &* i &+ 96, as: SIMD8<Float>.self)
            for j in 0..<keys {
                let x = SIMD8<Float>(repeating: wh[j])
                a0 = a0.addingProduct(x, v8(j, i))
                a1 = a1.addingProduct(x, v8(j, i &+ 8))
                a2 = a2.addingProduct(x, v8(j, i &+ 16))
                a3 = a3.addingProduct(x, v8(j, i &+ 24))
            }
            o.storeBytes(of: a0, toByteOffset: 4 &* i, as: SIMD8<Float>.self)
            o.storeBytes(of: a1, toByteOffset: 4 &* i &+ 32, as: SIMD8<Float>.self)
            o.storeBytes(of: a2, toByteOffset: 4 &* i &+ 64, as: SIMD8<Float>.self)
            o.storeBytes(of: a3, toByteOffset: 4 &* i &+ 96, as: SIMD8<Float>.self)
            i &+= 32
        }
        while i < n8 {
            var acc = o.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
            for j in 0..<keys { acc = acc.addingProduct(SIMD8(repeating: wh[j]), v8(j, i)) }
            o.storeBytes(of: acc, toByteOffset: 4 &* i, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < n {
            var acc = out[h * outStride + i]
            for j in 0..<keys { acc = acc.addingProduct(wh[j], E.load1(v + j &* vStrideBytes, i)) }
            out[h * outStride + i] = acc
            i += 1
        }
    }
}

/// `accumulateHeads` over f32 value rows `vStride` floats apart.
@inlinable
package func accumulateHeads(_ out: UnsafeMutablePointer<Float>, outStride: Int, count: Int, weights w: UnsafePointer<Float>,
                             wStride: Int, values v: UnsafePointer<Float>, vStride: Int, keys: Int, _ n: Int) {
    accumulateHeads(out, outStride: outStride, count: count, weights: w, wStride: wStride, values: UnsafeRawPointer(v),
                    as: F32Elements.self, vStrideBytes: 4 * vStride, keys: keys, n)
}

/// Lane-wise maximum as one vmaxps (the stdlib's `pointwiseMax` is a scalar loop with IEEE NaN rules).
@inlinable @inline(__always)
package func max8(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }
/// Lane-wise minimum as one vminps (see `max8`).
@inlinable @inline(__always)
package func min8(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .> b) }

/// Softmax numerator in place over `n` scores: `x[i] = e^(x[i] - max)`; returns (max, sum of the exponentials).
/// Max and sum in 8 lanes (the sum's order is fixed by n alone), the exponentials vectorized.
@inlinable
package func expShifted(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> (max: Float, sum: Float) {
    let r = UnsafeMutableRawPointer(x), n8 = n & ~7
    var m8 = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i < n8 {
        m8 = max8(m8, r.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self))
        i &+= 8
    }
    var mx = m8.max()
    while i < n { mx = max(mx, x[i]); i += 1 }
    for j in 0..<n { x[j] = expFast(x[j] - mx) }
    var s8 = SIMD8<Float>()
    i = 0
    while i < n8 {
        s8 += r.loadUnaligned(fromByteOffset: 4 &* i, as: SIMD8<Float>.self)
        i &+= 8
    }
    var sum = s8.sum()
    while i < n { sum += x[i]; i += 1 }
    return (mx, sum)
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
