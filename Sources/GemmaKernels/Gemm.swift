// Matrix products for batches of tokens (prefill) in exact f32: Y[t][r] = W[r] . X[t]. Each panel of 32 weight
// rows is dequantized once (gguf-py's values) into a k-major f32 panel (panel[k*32 + i] = W[r0+i][k], L2-resident)
// and multiplied by every token, 6 at a time, in a 32x6 register tile (12 zmm accumulators, FMA with a broadcast
// activation; without AVX-512 as two 16x6 tiles of 12 ymm accumulators, bit-identical). Measurements: docs/kernels.md.
// With `accumulate` the tile is added to y (training's products, blocked in k: Sources/GemmaTrain/TrainKernels.swift).

@inline(__always)
package func gemmMicro32x6(_ panel: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ xStride: Int, _ k: Int,
                   _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ nt: Int, xStep: Int = 1, accumulate: Bool = false) {
    let p = UnsafeRawPointer(panel)
    var c00 = SIMD16<Float>(), c01 = SIMD16<Float>(), c10 = SIMD16<Float>(), c11 = SIMD16<Float>()
    var c20 = SIMD16<Float>(), c21 = SIMD16<Float>(), c30 = SIMD16<Float>(), c31 = SIMD16<Float>()
    var c40 = SIMD16<Float>(), c41 = SIMD16<Float>(), c50 = SIMD16<Float>(), c51 = SIMD16<Float>()
    let x0 = x, x1 = x + xStride * min(1, nt - 1), x2 = x + xStride * min(2, nt - 1)
    let x3 = x + xStride * min(3, nt - 1), x4 = x + xStride * min(4, nt - 1), x5 = x + xStride * min(5, nt - 1)
    for i in 0..<k {
        let w0 = p.load(fromByteOffset: 128 * i, as: SIMD16<Float>.self)
        let w1 = p.load(fromByteOffset: 128 * i + 64, as: SIMD16<Float>.self)
        let o = i &* xStep
        var b = SIMD16<Float>(repeating: x0[o]); c00 = c00.addingProduct(w0, b); c01 = c01.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x1[o]); c10 = c10.addingProduct(w0, b); c11 = c11.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x2[o]); c20 = c20.addingProduct(w0, b); c21 = c21.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x3[o]); c30 = c30.addingProduct(w0, b); c31 = c31.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x4[o]); c40 = c40.addingProduct(w0, b); c41 = c41.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x5[o]); c50 = c50.addingProduct(w0, b); c51 = c51.addingProduct(w1, b)
    }
    @inline(__always) func put(_ t: Int, _ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        guard t < nt else { return }
        let o = UnsafeMutableRawPointer(y + t * yStride)
        var a = a, b = b
        if accumulate {
            a += o.loadUnaligned(as: SIMD16<Float>.self)
            b += o.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        }
        o.storeBytes(of: a, as: SIMD16<Float>.self)
        o.storeBytes(of: b, toByteOffset: 64, as: SIMD16<Float>.self)
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
}

/// The 32x6 tile's arithmetic as two 16x6 halves for CPUs without AVX-512: 12 ymm accumulators, 2 weight vectors
/// and a broadcast fit AVX2's 16 registers (the 32x6 tile's 24 would spill). Each output's sum runs over k in the
/// same order with the same FMAs, so results are bit-identical to `gemmMicro32x6`.
@inline(__always)
package func gemmMicro16x6(_ panel: UnsafePointer<Float>, half: Int, _ x: UnsafePointer<Float>, _ xStride: Int, _ k: Int,
                           _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ nt: Int, xStep: Int = 1,
                           accumulate: Bool = false) {
    let p = UnsafeRawPointer(panel) + 64 &* half
    var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
    var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
    var c40 = SIMD8<Float>(), c41 = SIMD8<Float>(), c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
    let x0 = x, x1 = x + xStride * min(1, nt - 1), x2 = x + xStride * min(2, nt - 1)
    let x3 = x + xStride * min(3, nt - 1), x4 = x + xStride * min(4, nt - 1), x5 = x + xStride * min(5, nt - 1)
    for i in 0..<k {
        let w0 = p.load(fromByteOffset: 128 &* i, as: SIMD8<Float>.self)
        let w1 = p.load(fromByteOffset: 128 &* i &+ 32, as: SIMD8<Float>.self)
        let o = i &* xStep
        var b = SIMD8<Float>(repeating: x0[o]); c00 = c00.addingProduct(w0, b); c01 = c01.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x1[o]); c10 = c10.addingProduct(w0, b); c11 = c11.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x2[o]); c20 = c20.addingProduct(w0, b); c21 = c21.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x3[o]); c30 = c30.addingProduct(w0, b); c31 = c31.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x4[o]); c40 = c40.addingProduct(w0, b); c41 = c41.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x5[o]); c50 = c50.addingProduct(w0, b); c51 = c51.addingProduct(w1, b)
    }
    @inline(__always) func put(_ t: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        guard t < nt else { return }
        let o = UnsafeMutableRawPointer(y + t * yStride) + 64 &* half
        var a = a, b = b
        if accumulate {
            a += o.loadUnaligned(as: SIMD8<Float>.self)
            b += o.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        }
        o.storeBytes(of: a, as: SIMD8<Float>.self)
        o.storeBytes(of: b, toByteOffset: 32, as: SIMD8<Float>.self)
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
}

/// The 32x6 tile on this CPU: `gemmMicro32x6` with AVX-512, else its two bit-identical 16x6 halves (the 32x6 tile's
/// 24 accumulators of ymm pairs would spill on AVX2: attention's products ran at about half speed).
@inline(__always)
package func gemmTile32x6(_ panel: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ xStride: Int, _ k: Int,
                          _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ nt: Int, xStep: Int = 1, accumulate: Bool = false) {
    if CPUFeatures.avx512 {
        gemmMicro32x6(panel, x, xStride, k, y, yStride, nt, xStep: xStep, accumulate: accumulate)
    } else {
        gemmMicro16x6(panel, half: 0, x, xStride, k, y, yStride, nt, xStep: xStep, accumulate: accumulate)
        gemmMicro16x6(panel, half: 1, x, xStride, k, y, yStride, nt, xStep: xStep, accumulate: accumulate)
    }
}

/// Activations for the panel GEMM in tiles of 6 tokens, k-major within a tile (`packed[tile * 6 * k + 6 * i + j]` =
/// token 6 * tile + j, element i; a last partial tile repeats its last token), so that the micro-kernel's broadcasts
/// read one sequential stream instead of six rows far apart (+4% GEMM speed alone on Zen 3, same values).
package func packGemmActivations(_ x: UnsafePointer<Float>, xStride: Int, tokens: Int, k: Int, tiles: Range<Int>,
                                 into packed: UnsafeMutablePointer<Float>) {
    for tile in tiles {
        let dst = packed + tile * 6 * k
        @inline(__always) func row(_ j: Int) -> UnsafePointer<Float> { x + min(6 * tile + j, tokens - 1) * xStride }
        let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5)
        for i in 0..<k {
            let d = dst + 6 * i
            d[0] = r0[i]; d[1] = r1[i]; d[2] = r2[i]; d[3] = r3[i]; d[4] = r4[i]; d[5] = r5[i]
        }
    }
}

/// Rows 8 at a time into a k-major panel: `panel[j * 32 + i] = src[i * srcStride + j]` for i < 8, j < k, as 8 x 8
/// blocks transposed in registers (unpack, shuffle, 128-bit lane swaps), the rest element by element.
@inlinable @inline(__always)
package func transposeEightRows(_ src: UnsafePointer<Float>, srcStride: Int, k: Int, into panel: UnsafeMutablePointer<Float>) {
    @inline(__always) func lo(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5]) }
    @inline(__always) func hi(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7]) }
    @inline(__always) func even(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5]) }
    @inline(__always) func odd(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7]) }
    @inline(__always) func low(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(lowHalf: a.lowHalf, highHalf: b.lowHalf) }
    @inline(__always) func high(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { SIMD8(lowHalf: a.highHalf, highHalf: b.highHalf) }
    let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(panel)
    var j = 0
    while j + 8 <= k {
        @inline(__always) func r(_ i: Int) -> SIMD8<Float> { s.loadUnaligned(fromByteOffset: 4 &* (i &* srcStride &+ j), as: SIMD8<Float>.self) }
        let r0 = r(0), r1 = r(1), r2 = r(2), r3 = r(3), r4 = r(4), r5 = r(5), r6 = r(6), r7 = r(7)
        let t0 = lo(r0, r1), t1 = hi(r0, r1), t2 = lo(r2, r3), t3 = hi(r2, r3)
        let t4 = lo(r4, r5), t5 = hi(r4, r5), t6 = lo(r6, r7), t7 = hi(r6, r7)
        let u0 = even(t0, t2), u1 = odd(t0, t2), u2 = even(t1, t3), u3 = odd(t1, t3)
        let u4 = even(t4, t6), u5 = odd(t4, t6), u6 = even(t5, t7), u7 = odd(t5, t7)
        @inline(__always) func w(_ c: Int, _ v: SIMD8<Float>) { d.storeBytes(of: v, toByteOffset: 128 &* (j &+ c), as: SIMD8<Float>.self) }
        w(0, low(u0, u4)); w(1, low(u1, u5)); w(2, low(u2, u6)); w(3, low(u3, u7))
        w(4, high(u0, u4)); w(5, high(u1, u5)); w(6, high(u2, u6)); w(7, high(u3, u7))
        j += 8
    }
    while j < k {
        for i in 0..<8 { panel[j * 32 + i] = src[i * srcStride + j] }
        j += 1
    }
}

extension WeightMatrix {
    /// Panel GEMM over 32-row panels `panels` (of the full matrix) for `tokens` activation rows packed by
    /// `packGemmActivations`. `panel` holds 32 * cols floats, `rows` 8 * cols (per worker).
    func gemmPanels(_ panels: Range<Int>, packed x: UnsafePointer<Float>, tokens: Int,
                    into y: UnsafeMutablePointer<Float>, yStride: Int,
                    panel: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
        let k = cols
        for pI in panels {
            for g in 0..<4 {
                for i in 0..<8 { dequantizeRow(32 * pI + 8 * g + i, into: rows + i * k) }
                transposeEightRows(rows, srcStride: k, k: k, into: panel + 8 * g)
            }
            var t = 0
            while t < tokens {
                let yt = y + t * yStride + 32 * pI, nt = min(6, tokens - t)
                gemmTile32x6(panel, x + t * k, 1, k, yt, yStride, nt, xStep: 6)
                t += 6
            }
        }
    }
}
