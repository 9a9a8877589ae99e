// Matrix products for batches of tokens (prefill) in exact f32: Y[t][r] = W[r] . X[t]. Each panel of 32 weight
// rows is dequantized once (gguf-py's values) into a k-major f32 panel (panel[k*32 + i] = W[r0+i][k], L2-resident)
// and multiplied by every token, 6 at a time, in a 32x6 register tile (12 zmm accumulators, FMA with a broadcast
// activation; without AVX-512 as two 16x6 tiles of 12 ymm accumulators, bit-identical). Measurements: docs/kernels.md.

@inline(__always)
package func gemmMicro32x6(_ panel: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ xStride: Int, _ k: Int,
                   _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ nt: Int) {
    let p = UnsafeRawPointer(panel)
    var c00 = SIMD16<Float>(), c01 = SIMD16<Float>(), c10 = SIMD16<Float>(), c11 = SIMD16<Float>()
    var c20 = SIMD16<Float>(), c21 = SIMD16<Float>(), c30 = SIMD16<Float>(), c31 = SIMD16<Float>()
    var c40 = SIMD16<Float>(), c41 = SIMD16<Float>(), c50 = SIMD16<Float>(), c51 = SIMD16<Float>()
    let x0 = x, x1 = x + xStride * min(1, nt - 1), x2 = x + xStride * min(2, nt - 1)
    let x3 = x + xStride * min(3, nt - 1), x4 = x + xStride * min(4, nt - 1), x5 = x + xStride * min(5, nt - 1)
    for i in 0..<k {
        let w0 = p.load(fromByteOffset: 128 * i, as: SIMD16<Float>.self)
        let w1 = p.load(fromByteOffset: 128 * i + 64, as: SIMD16<Float>.self)
        var b = SIMD16<Float>(repeating: x0[i]); c00 = c00.addingProduct(w0, b); c01 = c01.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x1[i]); c10 = c10.addingProduct(w0, b); c11 = c11.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x2[i]); c20 = c20.addingProduct(w0, b); c21 = c21.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x3[i]); c30 = c30.addingProduct(w0, b); c31 = c31.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x4[i]); c40 = c40.addingProduct(w0, b); c41 = c41.addingProduct(w1, b)
        b = SIMD16<Float>(repeating: x5[i]); c50 = c50.addingProduct(w0, b); c51 = c51.addingProduct(w1, b)
    }
    @inline(__always) func put(_ t: Int, _ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        guard t < nt else { return }
        let o = UnsafeMutableRawPointer(y + t * yStride)
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
                           _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ nt: Int) {
    let p = UnsafeRawPointer(panel) + 64 &* half
    var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
    var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
    var c40 = SIMD8<Float>(), c41 = SIMD8<Float>(), c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
    let x0 = x, x1 = x + xStride * min(1, nt - 1), x2 = x + xStride * min(2, nt - 1)
    let x3 = x + xStride * min(3, nt - 1), x4 = x + xStride * min(4, nt - 1), x5 = x + xStride * min(5, nt - 1)
    for i in 0..<k {
        let w0 = p.load(fromByteOffset: 128 &* i, as: SIMD8<Float>.self)
        let w1 = p.load(fromByteOffset: 128 &* i &+ 32, as: SIMD8<Float>.self)
        var b = SIMD8<Float>(repeating: x0[i]); c00 = c00.addingProduct(w0, b); c01 = c01.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x1[i]); c10 = c10.addingProduct(w0, b); c11 = c11.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x2[i]); c20 = c20.addingProduct(w0, b); c21 = c21.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x3[i]); c30 = c30.addingProduct(w0, b); c31 = c31.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x4[i]); c40 = c40.addingProduct(w0, b); c41 = c41.addingProduct(w1, b)
        b = SIMD8<Float>(repeating: x5[i]); c50 = c50.addingProduct(w0, b); c51 = c51.addingProduct(w1, b)
    }
    @inline(__always) func put(_ t: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        guard t < nt else { return }
        let o = UnsafeMutableRawPointer(y + t * yStride) + 64 &* half
        o.storeBytes(of: a, as: SIMD8<Float>.self)
        o.storeBytes(of: b, toByteOffset: 32, as: SIMD8<Float>.self)
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
}

extension WeightMatrix {
    /// Panel GEMM over 32-row panels `panels` (of the full matrix) for `tokens` activation rows.
    /// `panel` holds 32 * cols floats, `row` cols floats (per worker).
    func gemmPanels(_ panels: Range<Int>, _ x: UnsafePointer<Float>, xStride: Int, tokens: Int,
                    into y: UnsafeMutablePointer<Float>, yStride: Int,
                    panel: UnsafeMutablePointer<Float>, row: UnsafeMutablePointer<Float>) {
        let k = cols
        for pI in panels {
            for i in 0..<32 {
                dequantizeRow(32 * pI + i, into: row)
                for j in 0..<k { panel[j * 32 + i] = row[j] }
            }
            var t = 0
            while t < tokens {
                let yt = y + t * yStride + 32 * pI, nt = min(6, tokens - t)
                if CPUFeatures.avx512 {
                    gemmMicro32x6(panel, x + t * xStride, xStride, k, yt, yStride, nt)
                } else {
                    gemmMicro16x6(panel, half: 0, x + t * xStride, xStride, k, yt, yStride, nt)
                    gemmMicro16x6(panel, half: 1, x + t * xStride, xStride, k, yt, yStride, nt)
                }
                t += 6
            }
        }
    }
}
