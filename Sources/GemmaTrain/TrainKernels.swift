// The f32 matrix products of training, in one general form: C[m][n] (+)= sum_k A(m, k) B[k][n], A read at
// a[m * lda + k * aStep] (so either A or its transpose can be given as stored) and B described by `GemmB`: row-major,
// or the transpose of a row-major matrix (the forward pass's x Wᵀ reads W as stored), in f32 or dequantized from a
// stored format on the fly (a LoRA base kept quantized). Each block of B is packed into panels of 32 columns, k-major
// (panel[k * 32 + i]), so that the register tiles (6 rows x 32 columns, 12 zmm accumulators; two 6 x 16 halves
// without AVX-512, which AVX2's 16 ymm registers hold) read it as one sequential stream; the blocks are sized to
// stay in L2 and, for transposed and quantized B, to take whole rows of the stored matrix, so that each is
// dequantized once per product.
import Dispatch
import GemmaKernels

/// The B operand of `sgemm`: B[k][n] for k < K, n < N.
enum GemmB {
    /// B[k][n] = p[k * ld + n].
    case rows(UnsafePointer<Float>, ld: Int)
    /// B[k][n] = p[n * ld + k]: a matrix stored [N, K] (a weight [out, in] for x Wᵀ).
    case transposed(UnsafePointer<Float>, ld: Int)
    /// B[k][n] = W[k][n] of a stored matrix (K rows of N).
    case storedRows(WeightMatrix)
    /// B[k][n] = W[n][k] of a stored matrix (N rows of K).
    case storedTransposed(WeightMatrix)

    var byRows: Bool {
        switch self {
        case .rows, .storedRows: true
        default: false
        }
    }
}

/// C[m][n] = (accumulate ? C[m][n] : 0) + sum_k a[m * lda + k * aStep] * b[k * ldb + n], for m < M, n < N, k < K.
package func sgemm(_ M: Int, _ N: Int, _ K: Int, a: UnsafePointer<Float>, lda: Int, aStep: Int = 1,
                   b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    sgemm(M, N, K, a: a, lda: lda, aStep: aStep, b: .rows(b, ld: ldb), c: c, ldc: ldc, accumulate: accumulate)
}

/// C[m][n] = (accumulate ? C[m][n] : 0) + sum_k A(m, k) B[k][n], A(m, k) = a[m * lda + k * aStep].
func sgemm(_ M: Int, _ N: Int, _ K: Int, a: UnsafePointer<Float>, lda: Int, aStep: Int = 1, b: GemmB,
           c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    guard M > 0, N > 0 else { return }
    if K == 0 {
        if !accumulate { for m in 0..<M { (c + m * ldc).update(repeating: 0, count: N) } }
        return
    }
    // Block sizes: B blocks of at most 256K floats (1 MiB, in L2).
    let budget = 1 << 18
    let kc: Int, nc: Int
    if b.byRows {
        nc = min(N, 4096)
        kc = min(K, max(16, budget / ((nc + 31) / 32 * 32)))
    } else {
        kc = min(K, 4096)
        nc = min((N + 31) / 32 * 32, max(32, budget / kc / 32 * 32))
    }
    let panels = UnsafeMutablePointer<Float>.allocate(capacity: kc * ((nc + 31) / 32 * 32))
    defer { panels.deallocate() }
    let scratchRows = b.byRows ? nil : UnsafeMutablePointer<Float>.allocate(capacity: 8 * K)
    defer { scratchRows?.deallocate() }
    let rowBuffer: UnsafeMutablePointer<Float>? = {
        if case let .storedRows(w) = b { return .allocate(capacity: w.cols) }
        return nil
    }()
    defer { rowBuffer?.deallocate() }
    let wide = CPUFeatures.avx512
    var tile = [Float](repeating: 0, count: 6 * 32)
    var n0 = 0
    while n0 < N {
        let nLen = min(nc, N - n0), panelCount = (nLen + 31) / 32
        var k0 = 0
        while k0 < K {
            let kLen = min(kc, K - k0), load = accumulate || k0 > 0
            pack(b, k0: k0, kLen: kLen, n0: n0, nLen: nLen, N: N, K: K, into: panels, rows: scratchRows, rowBuffer: rowBuffer)
            var m0 = 0
            while m0 < M {
                let mr = min(6, M - m0)
                let ap = a + m0 * lda + k0 * aStep
                for j in 0..<panelCount {
                    let panel = panels + j * kLen * 32, cols = min(32, nLen - 32 * j)
                    let cp = c + m0 * ldc + n0 + 32 * j
                    if cols == 32 {
                        if wide {
                            tile6x32(ap, lda, aStep, mr, panel, 32, kLen, cp, ldc, load)
                        } else {
                            tile6x16(ap, lda, aStep, mr, panel, 32, kLen, cp, ldc, load)
                            tile6x16(ap, lda, aStep, mr, panel + 16, 32, kLen, cp + 16, ldc, load)
                        }
                    } else {
                        // A partial panel (zero-padded): through a full tile, then its columns.
                        tile.withUnsafeMutableBufferPointer { t in
                            let tp = t.baseAddress!
                            for i in 0..<mr { for n in 0..<cols { tp[i * 32 + n] = load ? cp[i * ldc + n] : 0 } }
                            tile6x16(ap, lda, aStep, mr, panel, 32, kLen, tp, 32, true)
                            if cols > 16 { tile6x16(ap, lda, aStep, mr, panel + 16, 32, kLen, tp + 16, 32, true) }
                            for i in 0..<mr { for n in 0..<cols { cp[i * ldc + n] = tp[i * 32 + n] } }
                        }
                    }
                }
                m0 += 6
            }
            k0 += kLen
        }
        n0 += nLen
    }
}

/// Packs B[k0 ..< k0 + kLen][n0 ..< n0 + nLen] into panels of 32 columns (panel j at j * kLen * 32, k-major),
/// columns past N zero.
private func pack(_ b: GemmB, k0: Int, kLen: Int, n0: Int, nLen: Int, N: Int, K: Int, into panels: UnsafeMutablePointer<Float>,
                  rows: UnsafeMutablePointer<Float>?, rowBuffer: UnsafeMutablePointer<Float>?) {
    let panelCount = (nLen + 31) / 32
    switch b {
    case let .rows(p, ld):
        for j in 0..<panelCount {
            let panel = panels + j * kLen * 32, cols = min(32, nLen - 32 * j)
            for k in 0..<kLen {
                let src = p + (k0 + k) * ld + n0 + 32 * j, dst = panel + k * 32
                dst.update(from: src, count: cols)
                if cols < 32 { (dst + cols).update(repeating: 0, count: 32 - cols) }
            }
        }
    case let .storedRows(w):
        let row = rowBuffer!
        for k in 0..<kLen {
            w.dequantizeRow(k0 + k, into: row)
            for j in 0..<panelCount {
                let cols = min(32, nLen - 32 * j), dst = panels + j * kLen * 32 + k * 32
                dst.update(from: row + n0 + 32 * j, count: cols)
                if cols < 32 { (dst + cols).update(repeating: 0, count: 32 - cols) }
            }
        }
    case .transposed, .storedTransposed:
        // Eight rows of the stored [N, K] matrix at a time, transposed into the panel's columns.
        let scratch = rows!
        for j in 0..<panelCount {
            let panel = panels + j * kLen * 32, cols = min(32, nLen - 32 * j)
            for g in 0..<4 {
                let first = n0 + 32 * j + 8 * g
                let valid = max(0, min(8, n0 + 32 * j + cols - first))
                let src: UnsafePointer<Float>, stride: Int
                switch b {
                case let .transposed(p, ld) where valid == 8:
                    src = p + first * ld + k0; stride = ld
                case let .transposed(p, ld):
                    for i in 0..<8 {
                        if i < valid { (scratch + i * kLen).update(from: p + (first + i) * ld + k0, count: kLen) }
                        else { (scratch + i * kLen).update(repeating: 0, count: kLen) }
                    }
                    src = UnsafePointer(scratch); stride = kLen
                case let .storedTransposed(w):
                    for i in 0..<8 {
                        if i < valid {
                            if k0 == 0 && kLen == K { w.dequantizeRow(first + i, into: scratch + i * K) }
                            else {
                                w.dequantizeRow(first + i, into: scratch + i * K)
                                (scratch + i * kLen).update(from: scratch + i * K + k0, count: kLen)
                            }
                        } else { (scratch + i * kLen).update(repeating: 0, count: kLen) }
                    }
                    src = UnsafePointer(scratch); stride = k0 == 0 && kLen == K ? K : kLen
                default: fatalError("unreachable")
                }
                transposeEightRows(src, srcStride: stride, k: kLen, into: panel + 8 * g)
            }
        }
    }
}

@inline(__always)
private func tile6x32(_ a: UnsafePointer<Float>, _ lda: Int, _ aStep: Int, _ mr: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ k: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ load: Bool) {
    var c00 = SIMD16<Float>(), c01 = SIMD16<Float>(), c10 = SIMD16<Float>(), c11 = SIMD16<Float>()
    var c20 = SIMD16<Float>(), c21 = SIMD16<Float>(), c30 = SIMD16<Float>(), c31 = SIMD16<Float>()
    var c40 = SIMD16<Float>(), c41 = SIMD16<Float>(), c50 = SIMD16<Float>(), c51 = SIMD16<Float>()
    let a0 = a, a1 = a + lda &* min(1, mr - 1), a2 = a + lda &* min(2, mr - 1)
    let a3 = a + lda &* min(3, mr - 1), a4 = a + lda &* min(4, mr - 1), a5 = a + lda &* min(5, mr - 1)
    let rb = UnsafeRawPointer(b)
    for i in 0..<k {
        let row = 4 &* (i &* ldb)
        let w0 = rb.loadUnaligned(fromByteOffset: row, as: SIMD16<Float>.self)
        let w1 = rb.loadUnaligned(fromByteOffset: row &+ 64, as: SIMD16<Float>.self)
        let o = i &* aStep
        var x = SIMD16<Float>(repeating: a0[o]); c00 = c00.addingProduct(w0, x); c01 = c01.addingProduct(w1, x)
        x = SIMD16<Float>(repeating: a1[o]); c10 = c10.addingProduct(w0, x); c11 = c11.addingProduct(w1, x)
        x = SIMD16<Float>(repeating: a2[o]); c20 = c20.addingProduct(w0, x); c21 = c21.addingProduct(w1, x)
        x = SIMD16<Float>(repeating: a3[o]); c30 = c30.addingProduct(w0, x); c31 = c31.addingProduct(w1, x)
        x = SIMD16<Float>(repeating: a4[o]); c40 = c40.addingProduct(w0, x); c41 = c41.addingProduct(w1, x)
        x = SIMD16<Float>(repeating: a5[o]); c50 = c50.addingProduct(w0, x); c51 = c51.addingProduct(w1, x)
    }
    @inline(__always) func put(_ r: Int, _ u: SIMD16<Float>, _ v: SIMD16<Float>) {
        guard r < mr else { return }
        let p = UnsafeMutableRawPointer(c + r &* ldc)
        var u = u, v = v
        if load {
            u += p.loadUnaligned(as: SIMD16<Float>.self)
            v += p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        }
        p.storeBytes(of: u, as: SIMD16<Float>.self)
        p.storeBytes(of: v, toByteOffset: 64, as: SIMD16<Float>.self)
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
}

@inline(__always)
private func tile6x16(_ a: UnsafePointer<Float>, _ lda: Int, _ aStep: Int, _ mr: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ k: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ load: Bool) {
    var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>()
    var c3 = SIMD16<Float>(), c4 = SIMD16<Float>(), c5 = SIMD16<Float>()
    let a0 = a, a1 = a + lda &* min(1, mr - 1), a2 = a + lda &* min(2, mr - 1)
    let a3 = a + lda &* min(3, mr - 1), a4 = a + lda &* min(4, mr - 1), a5 = a + lda &* min(5, mr - 1)
    let rb = UnsafeRawPointer(b)
    for i in 0..<k {
        let w = rb.loadUnaligned(fromByteOffset: 4 &* (i &* ldb), as: SIMD16<Float>.self)
        let o = i &* aStep
        c0 = c0.addingProduct(w, SIMD16<Float>(repeating: a0[o]))
        c1 = c1.addingProduct(w, SIMD16<Float>(repeating: a1[o]))
        c2 = c2.addingProduct(w, SIMD16<Float>(repeating: a2[o]))
        c3 = c3.addingProduct(w, SIMD16<Float>(repeating: a3[o]))
        c4 = c4.addingProduct(w, SIMD16<Float>(repeating: a4[o]))
        c5 = c5.addingProduct(w, SIMD16<Float>(repeating: a5[o]))
    }
    @inline(__always) func put(_ r: Int, _ u: SIMD16<Float>) {
        guard r < mr else { return }
        let p = UnsafeMutableRawPointer(c + r &* ldc)
        var u = u
        if load { u += p.loadUnaligned(as: SIMD16<Float>.self) }
        p.storeBytes(of: u, as: SIMD16<Float>.self)
    }
    put(0, c0); put(1, c1); put(2, c2); put(3, c3); put(4, c4); put(5, c5)
}

struct PointerBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
}
