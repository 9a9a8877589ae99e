// The f32 matrix products of training, in one general form: C[m][n] (+)= sum_k A(m, k) B[k][n], A read at
// a[m * lda + k * aStep] (so either A or its transpose can be given as stored), B row-major. The forward pass's
// x Wᵀ takes W transposed (`TransposedWeights`), the backward pass's dy W takes W as stored and dyᵀ x takes dy with
// aStep = its width. Register tiles of 6 rows x 32 columns (12 zmm accumulators; two 6 x 16 halves without
// AVX-512, so AVX2's 16 ymm registers hold them), broadcast A values, FMA over B's rows; blocked in k (256) and n
// (the B block kept in L2), so that long reductions (the head's backward pass sums over 262,144 vocabulary rows)
// stream B once per column block.
import Dispatch
import GemmaKernels

/// C[m][n] = (accumulate ? C[m][n] : 0) + sum_k a[m * lda + k * aStep] * b[k * ldb + n], for m < M, n < N, k < K.
package func sgemm(_ M: Int, _ N: Int, _ K: Int, a: UnsafePointer<Float>, lda: Int, aStep: Int = 1,
           b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    guard M > 0, N > 0 else { return }
    if K == 0 {
        if !accumulate { for m in 0..<M { (c + m * ldc).update(repeating: 0, count: N) } }
        return
    }
    let kc = 256, nc = N <= 1024 ? N : 512
    let wide = CPUFeatures.avx512
    var n0 = 0
    while n0 < N {
        let n1 = min(N, n0 + nc)
        var k0 = 0
        while k0 < K {
            let kLen = min(kc, K - k0), load = accumulate || k0 > 0
            var m0 = 0
            while m0 < M {
                let mr = min(6, M - m0)
                let ap = a + m0 * lda + k0 * aStep, bp = b + k0 * ldb
                var n = n0
                while n + 32 <= n1 {
                    if wide {
                        tile6x32(ap, lda, aStep, mr, bp + n, ldb, kLen, c + m0 * ldc + n, ldc, load)
                    } else {
                        tile6x16(ap, lda, aStep, mr, bp + n, ldb, kLen, c + m0 * ldc + n, ldc, load)
                        tile6x16(ap, lda, aStep, mr, bp + n + 16, ldb, kLen, c + m0 * ldc + n + 16, ldc, load)
                    }
                    n += 32
                }
                if n + 16 <= n1 {
                    tile6x16(ap, lda, aStep, mr, bp + n, ldb, kLen, c + m0 * ldc + n, ldc, load)
                    n += 16
                }
                while n < n1 {  // the last columns, one at a time
                    for i in 0..<mr {
                        var s: Float = load ? c[(m0 + i) * ldc + n] : 0
                        let ar = ap + i * lda
                        for k in 0..<kLen { s += ar[k * aStep] * bp[k * ldb + n] }
                        c[(m0 + i) * ldc + n] = s
                    }
                    n += 1
                }
                m0 += 6
            }
            k0 += kc
        }
        n0 = n1
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

/// The model's weight matrices transposed ([in, out] where the layout has [out, in]; vectors copied), at the
/// layout's offsets: the B operand of the forward pass's x Wᵀ. Built once for a frozen base (LoRA), after every
/// update in full fine-tuning.
final class TransposedWeights: @unchecked Sendable {
    let values: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        values = .allocate(capacity: count)
    }

    deinit { values.deallocate() }

    /// Fills from `parameters` (in `layout`), the tensors spread over `threads` threads.
    func fill(from parameters: UnsafePointer<Float>, layout: ParameterLayout, threads: Int) {
        let entries = layout.entries
        let dst = PointerBox(values), source = PointerBox(UnsafeMutablePointer(mutating: parameters))
        // Split big matrices into row bands so that the threads share the work evenly.
        var jobs: [(ParameterLayout.Entry, Range<Int>)] = []
        for e in entries {
            let rows = e.shape.count == 2 ? e.shape[0] : 1
            let band = max(64, rows / 16)
            var r = 0
            while r < rows { jobs.append((e, r..<min(rows, r + band))); r += band }
        }
        let list = jobs
        DispatchQueue.concurrentPerform(iterations: max(1, threads)) { w in
            for (j, (e, band)) in list.enumerated() where j % max(1, threads) == w {
                let src = UnsafePointer(source.pointer) + e.offset, out = dst.pointer + e.offset
                guard e.shape.count == 2 else { out.update(from: src, count: e.count); continue }
                let rows = e.shape[0], cols = e.shape[1]
                // 16 x 16 blocks: out[c][r] = src[r][c].
                var r0 = band.lowerBound
                while r0 < band.upperBound {
                    let r1 = min(band.upperBound, r0 + 16)
                    var c0 = 0
                    while c0 < cols {
                        let c1 = min(cols, c0 + 16)
                        for r in r0..<r1 { for c in c0..<c1 { out[c * rows + r] = src[r * cols + c] } }
                        c0 = c1
                    }
                    r0 = r1
                }
            }
        }
    }
}

struct PointerBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
}
