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

/// The B operand of `sgemm` (K x N): a matrix as stored, read by rows (B[k][n] = M[k][n]) or transposed
/// (B[k][n] = M[n][k], a weight [out, in] for x Wᵀ).
enum GemmB {
    /// Where the stored matrix's rows are.
    enum Source {
        /// f32 rows `ld` floats apart.
        case f32(UnsafePointer<Float>, ld: Int)
        /// A matrix in its stored format, dequantized row by row.
        case stored(WeightMatrix)

        /// Row `r` (its elements from `from`, `count` of them) into `out`; `scratch` holds a whole stored row.
        func read(_ r: Int, from: Int, count: Int, into out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?) {
            switch self {
            case let .f32(p, ld):
                out.update(from: p + r * ld + from, count: count)
            case let .stored(w):
                if from == 0 && count == w.cols { w.dequantizeRow(r, into: out); return }
                w.dequantizeRow(r, into: scratch!)
                out.update(from: scratch! + from, count: count)
            }
        }

        var storedCols: Int? {
            if case let .stored(w) = self { return w.cols }
            return nil
        }
    }

    case rows(Source)
    case transposed(Source)

    static func rows(_ p: UnsafePointer<Float>, ld: Int) -> GemmB { .rows(.f32(p, ld: ld)) }
    static func transposed(_ p: UnsafePointer<Float>, ld: Int) -> GemmB { .transposed(.f32(p, ld: ld)) }
}

/// C[m][n] = (accumulate ? C[m][n] : 0) + sum_k a[m * lda + k * aStep] * b[k * ldb + n], for m < M, n < N, k < K.
package func sgemm(_ M: Int, _ N: Int, _ K: Int, a: UnsafePointer<Float>, lda: Int, aStep: Int = 1,
                   b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    sgemm(M, N, K, a: a, lda: lda, aStep: aStep, b: GemmB.rows(b, ld: ldb), c: c, ldc: ldc, accumulate: accumulate)
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
    let kc: Int, nc: Int, source: GemmB.Source
    switch b {
    case let .rows(src):
        source = src
        nc = min(N, 4096)
        kc = min(K, max(16, budget / ((nc + 31) / 32 * 32)))
    case let .transposed(src):
        source = src
        kc = min(K, 4096)
        nc = min((N + 31) / 32 * 32, max(32, budget / kc / 32 * 32))
    }
    let panels = UnsafeMutablePointer<Float>.allocate(capacity: kc * ((nc + 31) / 32 * 32))
    defer { panels.deallocate() }
    // Transposing takes eight rows at a time; a stored row is dequantized whole.
    let eight: UnsafeMutablePointer<Float>? = { if case .transposed = b { return .allocate(capacity: 8 * kc) } else { return nil } }()
    defer { eight?.deallocate() }
    let rowScratch: UnsafeMutablePointer<Float>? = source.storedCols.map { .allocate(capacity: $0) }
    defer { rowScratch?.deallocate() }
    // A partial last panel goes through a full tile here.
    let tile: UnsafeMutablePointer<Float>? = N % 32 == 0 && nc % 32 == 0 ? nil : .allocate(capacity: 6 * 32)
    defer { tile?.deallocate() }
    var n0 = 0
    while n0 < N {
        let nLen = min(nc, N - n0), panelCount = (nLen + 31) / 32
        var k0 = 0
        while k0 < K {
            let kLen = min(kc, K - k0), load = accumulate || k0 > 0
            pack(b, k0: k0, kLen: kLen, n0: n0, nLen: nLen, into: panels, eight: eight, rowScratch: rowScratch)
            var m0 = 0
            while m0 < M {
                let mr = min(6, M - m0)
                let ap = a + m0 * lda + k0 * aStep
                for j in 0..<panelCount {
                    let panel = panels + j * kLen * 32, cols = min(32, nLen - 32 * j)
                    let cp = c + m0 * ldc + n0 + 32 * j
                    if cols == 32 {
                        gemmTile32x6(panel, ap, lda, kLen, cp, ldc, mr, xStep: aStep, accumulate: load)
                    } else {
                        // A partial panel (zero-padded): through a full tile, then its columns.
                        let tp = tile!
                        for i in 0..<mr { for n in 0..<cols { tp[i * 32 + n] = load ? cp[i * ldc + n] : 0 } }
                        gemmTile32x6(panel, ap, lda, kLen, tp, 32, mr, xStep: aStep, accumulate: true)
                        for i in 0..<mr { for n in 0..<cols { cp[i * ldc + n] = tp[i * 32 + n] } }
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
/// columns past the end zero.
private func pack(_ b: GemmB, k0: Int, kLen: Int, n0: Int, nLen: Int, into panels: UnsafeMutablePointer<Float>,
                  eight: UnsafeMutablePointer<Float>?, rowScratch: UnsafeMutablePointer<Float>?) {
    let panelCount = (nLen + 31) / 32
    switch b {
    case let .rows(.f32(p, ld)):
        for j in 0..<panelCount {
            let panel = panels + j * kLen * 32, cols = min(32, nLen - 32 * j)
            for k in 0..<kLen {
                let dst = panel + k * 32
                dst.update(from: p + (k0 + k) * ld + n0 + 32 * j, count: cols)
                if cols < 32 { (dst + cols).update(repeating: 0, count: 32 - cols) }
            }
        }
    case let .rows(.stored(w)):
        let row = rowScratch!
        for k in 0..<kLen {
            w.dequantizeRow(k0 + k, into: row)
            for j in 0..<panelCount {
                let cols = min(32, nLen - 32 * j), dst = panels + j * kLen * 32 + k * 32
                dst.update(from: row + n0 + 32 * j, count: cols)
                if cols < 32 { (dst + cols).update(repeating: 0, count: 32 - cols) }
            }
        }
    case let .transposed(source):
        // Eight rows of the stored [N, K] matrix at a time, transposed into the panel's columns.
        for j in 0..<panelCount {
            let panel = panels + j * kLen * 32, cols = min(32, nLen - 32 * j)
            for g in 0..<4 {
                let first = n0 + 32 * j + 8 * g
                let valid = max(0, min(8, n0 + 32 * j + cols - first))
                if case let .f32(p, ld) = source, valid == 8 {  // in place
                    transposeEightRows(p + first * ld + k0, srcStride: ld, k: kLen, into: panel + 8 * g)
                    continue
                }
                let rows = eight!
                for i in 0..<8 {
                    if i < valid { source.read(first + i, from: k0, count: kLen, into: rows + i * kLen, scratch: rowScratch) }
                    else { (rows + i * kLen).update(repeating: 0, count: kLen) }
                }
                transposeEightRows(rows, srcStride: kLen, k: kLen, into: panel + 8 * g)
            }
        }
    }
}

struct PointerBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
}
