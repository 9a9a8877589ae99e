// The training products (`sgemm`) against the plain triple loop in f64: every combination of a row count that is
// not a multiple of the 6-row tile, column counts with and without 32- and 16-wide tiles and a scalar tail, a
// reduction longer than one 256 block, A given transposed (aStep), and accumulation into C.
import GemmaTrain
import Testing

@Suite struct TrainKernelTests {
    @Test(arguments: [(1, 1, 1), (5, 48, 7), (7, 33, 300), (13, 640, 513), (6, 1100, 64), (2, 17, 1)])
    func sgemmMatchesTheDefinition(_ shape: (Int, Int, Int)) {
        let (M, N, K) = shape
        var rng = TestRandom(seed: UInt64(M * 1_000_003 + N * 1009 + K))
        for transposedA in [false, true] {
            for accumulate in [false, true] {
                let a = (0..<(M * K)).map { _ in rng.gaussian() }
                let b = (0..<(K * N)).map { _ in rng.gaussian() }
                let c0 = (0..<(M * N)).map { _ in rng.gaussian() }
                // A(m, k) = a[m * K + k], or stored transposed: a[k * M + m].
                func aValue(_ m: Int, _ k: Int) -> Float { transposedA ? a[k * M + m] : a[m * K + k] }
                var c = c0
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            sgemm(M, N, K, a: ap.baseAddress!, lda: transposedA ? 1 : K, aStep: transposedA ? M : 1,
                                  b: bp.baseAddress!, ldb: N, c: cp.baseAddress!, ldc: N, accumulate: accumulate)
                        }
                    }
                }
                var worst = 0.0
                for m in 0..<M {
                    for n in 0..<N {
                        var s = accumulate ? Double(c0[m * N + n]) : 0, mag = abs(s)
                        for k in 0..<K {
                            let p = Double(aValue(m, k)) * Double(b[k * N + n])
                            s += p; mag += abs(p)
                        }
                        worst = max(worst, abs(Double(c[m * N + n]) - s) / max(mag, 1e-30))
                    }
                }
                // f32 sums of K products: errors of order K x 2^-24 of the sum of magnitudes, far below 1e-5.
                #expect(worst < 1e-5, "M \(M) N \(N) K \(K) transposed \(transposedA) accumulate \(accumulate): \(worst)")
            }
        }
    }
}
