// Per-channel int4 (one f32 scale per row, Q4_0's nibbles) through every product path, against an f64 product of
// the dequantized weights (q / scale): the row kernels (decode, batches 1 ... 11, `.fast`), the dequantized-row
// dots (`.exact`), and the prompt GEMM (f32 panels; the int16 GEMM where the CPU has AVX-512, or with
// GEMMA_AVX512=1), on one and two workers, at the widths of the 270M (640, 2048) and of 27B's down projection
// (21504, longer than the row kernels' 4096-weight chunk). Bit-identity across batch sizes is RowKernelBatchTests'.
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import Testing

@Suite struct Int4ChannelKernelTests {
    /// int16 activation rounding (~6e-6 of sum |w x| for the other formats; the weight scale 1 / scale adds one f32
    /// rounding); `.exact` is f32 over the dequantized weights (~3e-7).
    static let fastTolerance = 2e-5, exactTolerance = 1e-6

    @Test(arguments: [640, 2048, 21504])
    func everyPathMatchesTheF64Product(cols: Int) throws {
        // A 32-row panel and a tail of rows (the GEMM does the tail by dequantized rows).
        let rows = cols > 4096 ? 33 : 40
        var r = SplitMix64(seed: 1024 &+ UInt64(cols))
        let bytes = try randomMatrix(.int4Channel, rows: rows, cols: cols, &r)
        let deq = try dequantizeMatrix(.int4Channel, bytes, rows: rows, cols: cols)
        var worst: [String: Double] = [:]
        for threads in [1, 2] {
            let pool = WorkerPool.shared(threads: threads)
            // Decode-sized batches by the row kernels (no GEMM), then prompt sizes (GEMM from 8 tokens).
            for (batch, allowGemm) in (1...11).map({ ($0, false) }) + [8, 29, 70].map({ ($0, true) }) {
                let x = r.floats(batch * cols, scale: 3)
                for precision in Precision.allCases {
                    var y = [Float](repeating: .nan, count: batch * rows)
                    bytes.withUnsafeBytes { raw in
                        let m = WeightMatrix(encoding: .int4, rows: rows, cols: cols, base: raw.baseAddress!)
                        m.multiply(x, xStride: cols, batch: batch, into: &y, yStride: rows, precision: precision, allowGemm: allowGemm,
                                   pool: pool, scratch: MatmulScratch(workers: threads, maxCols: cols, maxBatch: batch))
                    }
                    let e = relativeError(y, deq, x, rows: rows, cols: cols, batch: batch)
                    let key = "\(allowGemm ? "gemm" : "rows") \(precision)"
                    worst[key] = max(worst[key] ?? 0, e)
                    #expect(e <= (precision == .fast ? Self.fastTolerance : Self.exactTolerance),
                            "cols \(cols) batch \(batch) \(key) threads \(threads): \(e)")
                }
            }
        }
        print("int4-channel cols \(cols): max error / sum|w x|: \(worst.sorted { $0.key < $1.key })")
    }

    /// The fused products (q/k/v, gate/up: several matrices over one quantization of the activations) give each
    /// int4 matrix what its own product gives, and mixed with another integer layout.
    @Test func fusedProductsMatchSeparateProducts() throws {
        var r = SplitMix64(seed: 4)
        let cols = 640, rows = [64, 32, 48], batch = 3
        let types: [TensorType] = [.int4Channel, .q4_0, .int4Channel]
        let bytes = try (0..<3).map { try randomMatrix(types[$0], rows: rows[$0], cols: cols, &r) }
        let x = r.floats(batch * cols, scale: 3)
        let pool = WorkerPool.shared(threads: 2), scratch = MatmulScratch(workers: 2, maxCols: cols, maxBatch: batch)
        var f0 = [Float](repeating: .nan, count: batch * rows[0]), f1 = [Float](repeating: .nan, count: batch * rows[1])
        var f2 = [Float](repeating: .nan, count: batch * rows[2])
        var alone = [f0, f1, f2]
        bytes[0].withUnsafeBytes { b0 in bytes[1].withUnsafeBytes { b1 in bytes[2].withUnsafeBytes { b2 in
            let m = [b0, b1, b2].enumerated().map {
                WeightMatrix(encoding: WeightEncoding.of(types[$0.offset])!, rows: rows[$0.offset], cols: cols, base: $0.element.baseAddress!)
            }
            f0.withUnsafeMutableBufferPointer { y0 in f1.withUnsafeMutableBufferPointer { y1 in f2.withUnsafeMutableBufferPointer { y2 in
                WeightMatrix.multiply((m[0], m[1], m[2]), x, xStride: cols, batch: batch, into: (y0.baseAddress!, y1.baseAddress!, y2.baseAddress!),
                                      yStride: (rows[0], rows[1], rows[2]), allowGemm: false, pool: pool, scratch: scratch)
            } } }
            for i in 0..<3 {
                m[i].multiply(x, xStride: cols, batch: batch, into: &alone[i], yStride: rows[i], allowGemm: false, pool: pool, scratch: scratch)
            }
        } } }
        let fused = [f0, f1, f2]
        for i in 0..<3 { #expect(fused[i].map(\.bitPattern) == alone[i].map(\.bitPattern), "matrix \(i) (\(types[i]))") }
        #expect(fused[0].allSatisfy { $0.isFinite })
    }
}
