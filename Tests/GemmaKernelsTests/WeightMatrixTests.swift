// Weight products in every format the model uses, against dequantize-the-whole-matrix then multiply in f64.
import Foundation
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import Testing

/// `rows` x `cols` uniform random weights quantized row by row into `type`'s blocks.
func randomMatrix(_ type: TensorType, rows: Int, cols: Int, _ r: inout SplitMix64) throws -> [UInt8] {
    let w = r.floats(rows * cols), rowBytes = type.rowBytes(cols)!
    var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
    try bytes.withUnsafeMutableBytes { dst in
        try w.withUnsafeBufferPointer { src in
            for row in 0..<rows { try type.quantize(src.baseAddress! + row * cols, count: cols, into: dst.baseAddress! + row * rowBytes) }
        }
    }
    return bytes
}

/// The matrix `bytes` dequantized row by row (int4Channel rows carry their own scale, so a whole matrix is not one
/// run of blocks).
func dequantizeMatrix(_ type: TensorType, _ bytes: [UInt8], rows: Int, cols: Int) throws -> [Float] {
    var deq = [Float](repeating: 0, count: rows * cols)
    let rowBytes = type.rowBytes(cols)!
    try bytes.withUnsafeBytes { src in
        try deq.withUnsafeMutableBufferPointer { out in
            for r in 0..<rows { try type.dequantize(src.baseAddress! + r * rowBytes, count: cols, into: out.baseAddress! + r * cols) }
        }
    }
    return deq
}

/// The largest |y - W x| / sum |w x| over a batch, against an f64 product of the dequantized weights `deq`.
func relativeError(_ y: [Float], _ deq: [Float], _ x: [Float], rows: Int, cols: Int, batch: Int) -> Double {
    var worst = 0.0
    for t in 0..<batch {
        for row in 0..<rows {
            var want = 0.0, norm = 0.0
            for c in 0..<cols {
                want += Double(deq[row * cols + c]) * Double(x[t * cols + c])
                norm += abs(Double(deq[row * cols + c]) * Double(x[t * cols + c]))
            }
            worst = max(worst, abs(Double(y[t * rows + row]) - want) / max(norm, 1e-9))
        }
    }
    return worst
}

@Suite struct WeightMatrixTests {
    static let relativeTolerance = 1e-5

    @Test(arguments: [TensorType.f32, .f16, .bf16, .q4_0, .q5_0, .q8_0, .q4_K, .q6_K, .int4Channel])
    func batchProductMatchesReference(type: TensorType) throws {
        let cols = type.blockSize == 256 ? 512 : 96, rows = 37, batch = 5
        var r = SplitMix64(seed: UInt64(type.rawValue) + 1)
        let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
        let deq = try dequantizeMatrix(type, bytes, rows: rows, cols: cols)
        let x = r.floats(batch * cols)
        var y = [Float](repeating: .nan, count: batch * rows)
        bytes.withUnsafeBytes { raw in
            let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
            m.multiply(x, xStride: cols, batch: batch, into: &y, yStride: rows, pool: WorkerPool.shared(threads: 2),
                       scratch: MatmulScratch(workers: 2, maxCols: cols))
        }
        #expect(relativeError(y, deq, x, rows: rows, cols: cols, batch: batch) <= Self.relativeTolerance)
    }

    /// Decode-shaped products (one and four activation rows, widths of whole 128-weight groups: the kernels that
    /// unpack in registers where the CPU has AVX-512 VBMI) against f64.
    @Test(arguments: [TensorType.q4_0, .q5_0, .q8_0, .q4_K, .q6_K, .int4Channel])
    func decodeProductMatchesReference(type: TensorType) throws {
        let cols = type.blockSize == 256 ? 2048 : 640, rows = 37
        var r = SplitMix64(seed: UInt64(type.rawValue) + 101)
        let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
        let deq = try dequantizeMatrix(type, bytes, rows: rows, cols: cols)
        for batch in [1, 4] {
            let x = r.floats(batch * cols)
            var y = [Float](repeating: .nan, count: batch * rows)
            bytes.withUnsafeBytes { raw in
                let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
                m.multiply(x, xStride: cols, batch: batch, into: &y, yStride: rows, allowGemm: false, pool: WorkerPool.shared(threads: 2),
                           scratch: MatmulScratch(workers: 2, maxCols: cols, maxBatch: batch))
            }
            #expect(relativeError(y, deq, x, rows: rows, cols: cols, batch: batch) <= Self.relativeTolerance, "\(type) batch \(batch)")
        }
    }

    /// The float row kernels (bf16 pairs, f16 converted per row, f32 in place) at widths with a tail past the last
    /// 32-weight chunk (72: the tiny fixture's hidden size; 100), whole chunks (640), and rows longer than 4096 (4352,
    /// 21504), for one and several activation rows, against f64; and `.fast` against `.exact` (another summation
    /// order over the same f32 products: equal to rounding).
    /// SFP8 rows (decoded to bf16 in scratch for the bf16 kernel, the tensor scale on the sums) for decode-sized
    /// batches and the f32 panel GEMM for prompts, against f64 over `dequantizeRow` (decode times scale).
    @Test(arguments: [72, 640, 4352])
    func sfp8ProductsMatchReference(cols: Int) throws {
        let rows = 37
        var r = SplitMix64(seed: 0x5f98 &+ UInt64(cols))
        let codes: [UInt8] = (0..<rows * cols).map { _ in
            let c = UInt8.random(in: 0...255, using: &r)
            return c == 0x80 ? 0 : c
        }
        for scale: Float in [1, 1.7] {
            let encoding = WeightEncoding.sfp8(scale: scale)
            var deq = [Float](repeating: 0, count: rows * cols)
            codes.withUnsafeBytes { raw in
                for i in 0..<rows { encoding.dequantizeRow!(raw.baseAddress! + i * cols, cols, &deq[i * cols]) }
            }
            #expect(deq[0] == SFP8.decode(codes[0]) * scale)
            for batch in [1, 3, 29] {
                let x = r.floats(batch * cols, scale: 3)
                for precision in Precision.allCases {
                    var y = [Float](repeating: .nan, count: batch * rows)
                    codes.withUnsafeBytes { raw in
                        let m = WeightMatrix(encoding: encoding, rows: rows, cols: cols, base: raw.baseAddress!)
                        m.multiply(x, xStride: cols, batch: batch, into: &y, yStride: rows, precision: precision,
                                   pool: WorkerPool.shared(threads: 2), scratch: MatmulScratch(workers: 2, maxCols: cols, maxBatch: batch))
                    }
                    #expect(relativeError(y, deq, x, rows: rows, cols: cols, batch: batch) <= Self.relativeTolerance,
                            "cols \(cols) batch \(batch) \(precision) scale \(scale)")
                }
            }
        }
    }

    /// SFP8 rows give exactly what the bf16 kernel gives on their codes decoded to bf16 (`decodeSFP8ToBF16`, checked
    /// code by code in SFP8Tests): the same pair steps in the same order, whichever decoder runs (the byte-table
    /// lookups of CPUHints.h with AVX-512 VBMI, else integer arithmetic). Every code, 0x80 included; widths with an
    /// odd number of chunks (672) and a tail (72); 11 rows = passes of 4, 2 and 1.
    @Test(arguments: [72, 640, 672, 2048])
    func sfp8RowsEqualTheBF16KernelOnTheirDecodedCodes(cols: Int) throws {
        let rows = 11
        var r = SplitMix64(seed: 0x5f99 &+ UInt64(cols))
        let codes: [UInt8] = (0..<rows * cols).map { _ in UInt8.random(in: 0...255, using: &r) }
        var bf16 = [UInt16](repeating: 0, count: rows * cols)
        decodeSFP8ToBF16(codes, rows * cols, into: &bf16)
        let x = r.floats(cols, scale: 3)
        let paired = PairedActivations(maxRows: 1, maxCols: cols)
        x.withUnsafeBufferPointer { paired.split($0.baseAddress!, stride: cols, rows: 1, cols: cols) }
        var ySFP8 = [Float](repeating: .nan, count: rows), yBF16 = [Float](repeating: .nan, count: rows)
        codes.withUnsafeBytes { c in
            dotRowsSFP8(c.baseAddress!, rowBytes: cols, count: rows, cols: cols, x: x, paired: paired.row(0), into: &ySFP8)
        }
        bf16.withUnsafeBytes { b in
            dotRowsBF16(b.baseAddress!, rowBytes: 2 * cols, count: rows, cols: cols, x: x, paired: paired.row(0), into: &yBF16)
        }
        let differing = (0..<rows).filter { ySFP8[$0].bitPattern != yBF16[$0].bitPattern }
        #expect(differing.isEmpty, "cols \(cols): rows \(differing) differ")
        #expect(ySFP8.allSatisfy { $0.isFinite })
    }

    static let floatCases: [(TensorType, Int)] = [TensorType.bf16, .f16, .f32].flatMap { t in [72, 100, 640, 4352, 21504].map { (t, $0) } }

    @Test(arguments: floatCases)
    func floatRowKernelsMatchReference(type: TensorType, cols: Int) throws {
        let rows = cols > 4096 ? 9 : 37
        var r = SplitMix64(seed: UInt64(type.rawValue) &* 31 &+ UInt64(cols))
        let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
        let deq = try dequantizeMatrix(type, bytes, rows: rows, cols: cols)
        for batch in [1, 3] {
            let x = r.floats(batch * cols, scale: 3)
            var fast = [Float](repeating: .nan, count: batch * rows), exact = fast
            bytes.withUnsafeBytes { raw in
                let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
                let scratch = MatmulScratch(workers: 2, maxCols: cols, maxBatch: batch)
                for (precision, out) in [(Precision.fast, 0), (.exact, 1)] {
                    var y = [Float](repeating: .nan, count: batch * rows)
                    m.multiply(x, xStride: cols, batch: batch, into: &y, yStride: rows, precision: precision,
                               pool: WorkerPool.shared(threads: 2), scratch: scratch)
                    if out == 0 { fast = y } else { exact = y }
                }
            }
            #expect(relativeError(fast, deq, x, rows: rows, cols: cols, batch: batch) <= Self.relativeTolerance)
            #expect(relativeError(exact, deq, x, rows: rows, cols: cols, batch: batch) <= Self.relativeTolerance)
            if type != .bf16 {  // f16 and f32 rows take the exact path's arithmetic
                #expect(zip(fast, exact).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(type) cols \(cols): fast != exact")
            }
        }
    }
}

/// Prompt-sized batches: the int16 GEMM (`.fast`) and the f32 panel GEMM (`.exact`) against an f64 product of the
/// dequantized weights, over panel tails (rows not a multiple of 32), block counts that are not a multiple of the
/// GEMM's 4-block pass, token counts around its 6-token tile, and one or two workers (which split the panels).
@Suite struct GemmTests {
    /// Float weights (f32 panel GEMM both ways) also at widths that are not a multiple of the panel fill's 8 x 8
    /// transposition (72, 100).
    @Test(arguments: [TensorType.q4_0, .q5_0, .q8_0, .q4_K, .q6_K, .int4Channel, .f32, .f16, .bf16])
    func promptBatchesMatchReference(type: TensorType) throws {
        var r = SplitMix64(seed: 77 &+ UInt64(type.rawValue))
        var worst: [Precision: Double] = [:]
        let shapes = type.blockSize == 1 ? [(72, 100, 8), (100, 64, 29), (640, 35, 70)]
            : [(type.blockSize == 256 ? 256 : 96, 100, 8), (type.blockSize == 256 ? 768 : 640, 64, 29), (type.blockSize == 256 ? 512 : 160, 35, 70)]
        for (cols, rows, batch) in shapes {
            let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
            let deq = try dequantizeMatrix(type, bytes, rows: rows, cols: cols)
            let x = r.floats(batch * cols, scale: 3)
            for precision in Precision.allCases {
                for threads in [1, 2] {
                    var y = [Float](repeating: .nan, count: batch * rows)
                    bytes.withUnsafeBytes { raw in
                        let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
                        m.multiply(x, xStride: cols, batch: batch, into: &y, yStride: rows, precision: precision, pool: WorkerPool.shared(threads: threads),
                                   scratch: MatmulScratch(workers: threads, maxCols: cols, maxBatch: batch))
                    }
                    worst[precision] = max(worst[precision] ?? 0, relativeError(y, deq, x, rows: rows, cols: cols, batch: batch))
                }
            }
        }
        print("GEMM \(type): max error / sum|w x|: fast (int16) \(worst[.fast]!), exact (f32) \(worst[.exact]!)")
        // int16 activation rounding: ~6e-6 measured (Q6_K, quantized to |q| <= 16383: ~9e-6); f32: ~3e-7.
        #expect(worst[.fast]! < 2e-5)
        #expect(worst[.exact]! < 1e-6)
    }

    /// q/k/v as one token-split product (activations quantized once, one dispatch) must give each matrix exactly
    /// what its own product gives on one worker.
    @Test func fusedTokenSplitProductIsBitIdenticalToSeparateProducts() throws {
        var r = SplitMix64(seed: 4242)
        let cols = 160, rows = [96, 64, 32], batch = gemmInt16TokenSplitMinimum + 7
        let types: [TensorType] = [.q5_0, .q4_0, .q8_0]
        let bytes = try (0..<3).map { try randomMatrix(types[$0], rows: rows[$0], cols: cols, &r) }
        let x = r.floats(batch * cols, scale: 3)
        var f0 = [Float](repeating: .nan, count: batch * rows[0]), f1 = [Float](repeating: .nan, count: batch * rows[1])
        var f2 = [Float](repeating: .nan, count: batch * rows[2])
        var alone = [f0, f1, f2]
        let pool2 = WorkerPool.shared(threads: 2), pool1 = WorkerPool.shared(threads: 1)
        bytes[0].withUnsafeBytes { b0 in bytes[1].withUnsafeBytes { b1 in bytes[2].withUnsafeBytes { b2 in
            let m = [b0, b1, b2].enumerated().map { WeightMatrix(type: types[$0.offset], rows: rows[$0.offset], cols: cols, base: $0.element.baseAddress!) }
            f0.withUnsafeMutableBufferPointer { y0 in f1.withUnsafeMutableBufferPointer { y1 in f2.withUnsafeMutableBufferPointer { y2 in
                WeightMatrix.multiply((m[0], m[1], m[2]), x, xStride: cols, batch: batch, into: (y0.baseAddress!, y1.baseAddress!, y2.baseAddress!),
                                      yStride: (rows[0], rows[1], rows[2]), pool: pool2, scratch: MatmulScratch(workers: 2, maxCols: cols, maxBatch: batch))
            } } }
            for i in 0..<3 {
                m[i].multiply(x, xStride: cols, batch: batch, into: &alone[i], yStride: rows[i], pool: pool1,
                              scratch: MatmulScratch(workers: 1, maxCols: cols, maxBatch: batch))
            }
        } } }
        let fused = [f0, f1, f2]
        for i in 0..<3 {
            let differing = (0..<fused[i].count).filter { fused[i][$0].bitPattern != alone[i][$0].bitPattern }.count
            #expect(differing == 0, "matrix \(i) (\(types[i])): \(differing) of \(fused[i].count) outputs differ")
        }
    }

    /// From `gemmInt16TokenSplitMinimum` tokens two workers split a product by tokens instead of panels: every output
    /// must be bit for bit what one worker computes (tokens not a multiple of the 6-token tile, a tail of rows).
    @Test(arguments: [TensorType.q4_0, .q5_0, .q8_0, .q4_K, .q6_K, .int4Channel])
    func tokenSplitIsBitIdenticalToOneWorker(type: TensorType) throws {
        var r = SplitMix64(seed: 991 &+ UInt64(type.rawValue))
        let cols = type.blockSize == 256 ? 512 : 160, rows = 70, batch = gemmInt16TokenSplitMinimum + 5
        let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
        let x = r.floats(batch * cols, scale: 3)
        var y: [[Float]] = []
        for threads in [1, 2] {
            var out = [Float](repeating: .nan, count: batch * rows)
            bytes.withUnsafeBytes { raw in
                let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
                m.multiply(x, xStride: cols, batch: batch, into: &out, yStride: rows, precision: .fast, pool: WorkerPool.shared(threads: threads),
                           scratch: MatmulScratch(workers: threads, maxCols: cols, maxBatch: batch))
            }
            y.append(out)
        }
        let differing = (0..<batch * rows).filter { y[0][$0].bitPattern != y[1][$0].bitPattern }.count
        #expect(differing == 0, "\(type): \(differing) of \(batch * rows) outputs differ between 1 and 2 workers")
        #expect(y[1].allSatisfy { $0.isFinite })
    }
}

/// Decoding several sequences together must give each exactly what it gets alone: the row kernels compute groups
/// of 4, 2 and 1 activation rows, and every group size must agree bit for bit with the one-row path (which takes
/// 4 or 2 weight rows per pass where they are whole groups: cols 256 ... 2048 here). Rows longer than
/// `rowChunkBlocks` (128 blocks, 4096 weights) are unpacked and multiplied in chunks (dotRowsImpl's long-row path):
/// 5376 (27B's hidden size), 6912 and 21504 (the down projections of 1B and 27B).
@Suite struct RowKernelBatchTests {
    /// Every format (the float formats through FloatRowJob) at every width; 640 (20 blocks of 32) is no whole number of the K formats' 256-weight
    /// super-blocks, so they take 768 (3 super-blocks) instead.
    static let cases: [(TensorType, Int)] = [TensorType.q4_0, .q5_0, .q8_0, .q4_K, .q6_K, .int4Channel, .bf16, .f16, .f32].flatMap { type in
        [256, type.blockSize == 256 ? 768 : 640, 1024, 2048, 2560, 4096, 5376, 6912, 21504].map { (type, $0) }
    }

    @Test(arguments: cases)
    func everyBatchSizeGivesEachRowItsAloneResult(type: TensorType, cols: Int) throws {
        #expect(cols % type.blockSize == 0)
        // Fewer rows for the long rows (still a group of 4, a pair and a single row at the end: 4 + 4 + 1).
        let rows = cols > 4096 ? 9 : 21, batch = 11
        var r = SplitMix64(seed: UInt64(type.rawValue) * 7 + UInt64(cols))
        let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
        let x = r.floats(batch * cols, scale: 3)
        let pool = WorkerPool.shared(threads: 2)
        bytes.withUnsafeBytes { raw in
            let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
            var alone = [Float](repeating: .nan, count: batch * rows)
            let one = MatmulScratch(workers: 2, maxCols: cols, maxBatch: 1)
            x.withUnsafeBufferPointer { xs in
                alone.withUnsafeMutableBufferPointer { ys in
                    for t in 0..<batch {
                        m.multiply(xs.baseAddress! + t * cols, xStride: cols, batch: 1, into: ys.baseAddress! + t * rows, yStride: rows,
                                   allowGemm: false, pool: pool, scratch: one)
                    }
                }
            }
            for n in [2, 3, 4, 5, 7, 8, 11] {
                var together = [Float](repeating: .nan, count: n * rows)
                m.multiply(x, xStride: cols, batch: n, into: &together, yStride: rows, allowGemm: false, pool: pool,
                           scratch: MatmulScratch(workers: 2, maxCols: cols, maxBatch: n))
                let differing = (0..<n * rows).filter { together[$0].bitPattern != alone[$0].bitPattern }.count
                #expect(differing == 0, "\(type) cols \(cols) batch \(n): \(differing) of \(n * rows) results differ from the row alone")
            }
            #expect(alone.allSatisfy { $0.isFinite })
        }
    }

    /// The decode product (one activation row; on CPUs without AVX-512 the Q4_0 / int4Channel rows take the fused
    /// nibble kernel, which multiplies unsigned nibbles and subtracts the activations' offset sums; with AVX-512 VBMI
    /// every format's rows take the register-unpacking C kernels of CPUHints.h) gives every row exactly the
    /// unpack-then-kernel1 result of `dotRow`, including rows whose last group of 4 blocks is partial.
    @Test(arguments: [TensorType.q4_0, .int4Channel, .q8_0, .q5_0].flatMap { t in [32, 96, 160, 640, 2048, 2080, 6912].map { (t, $0) } }
                     + [TensorType.q4_K, .q6_K].flatMap { t in [256, 768, 1024, 2048, 6912].map { (t, $0) } })
    func decodeProductEqualsTheUnpackedRowKernel(type: TensorType, cols: Int) throws {
        let rows = 13
        var r = SplitMix64(seed: UInt64(type.rawValue) * 31 + UInt64(cols))
        let bytes = try randomMatrix(type, rows: rows, cols: cols, &r)
        let x = r.floats(cols, scale: 3)
        let a = QuantizedActivations(maxRows: 1, maxCols: cols)
        x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, stride: cols, rows: 1, cols: cols) }
        bytes.withUnsafeBytes { raw in
            let m = WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
            var y = [Float](repeating: .nan, count: rows)
            m.multiply(x, xStride: cols, batch: 1, into: &y, yStride: rows, allowGemm: false, pool: WorkerPool.shared(threads: 2),
                       scratch: MatmulScratch(workers: 2, maxCols: cols, maxBatch: 1))
            let rowBytes = type.rowBytes(cols)!
            let differing = (0..<rows).filter { y[$0].bitPattern != dotRow(type, raw.baseAddress! + $0 * rowBytes, cols: cols, a, 0).bitPattern }
            #expect(differing.isEmpty, "\(type) cols \(cols): rows \(differing) differ from dotRow")
            #expect(y.allSatisfy { $0.isFinite })
        }
    }

    /// The AVX-512 activation quantizer (cpu_quantize_row) stores what the Swift loop does, bit for bit: values,
    /// scales, scaled sums, expanded scales and lane sums, for rows with padding (cols % 128 != 0), a zero block,
    /// exact ties of half (x * (1 / d) = k + 0.5, rounded away from zero), and large and tiny magnitudes.
    @Test(.enabled(if: CPUFeatures.avx512vbmi, "the kernel's instructions (and its only use) are AVX-512 VBMI machines'"),
          arguments: [32, 96, 640, 2080])
    func vectorizedQuantizerEqualsTheSwiftLoop(cols: Int) throws {
        let rows = 3
        var r = SplitMix64(seed: 0x9a + UInt64(cols))
        var x = r.floats(rows * cols, scale: 3)
        for i in 0..<32 { x[i] = 0 }                                              // a zero block
        if cols >= 64 { for (i, v) in [32767, 0.5, -0.5, 1.5, -2.5, 16383.5, -32766.5].enumerated() { x[32 + i] = Float(v) } }
        for i in 0..<cols where i % 7 == 3 { x[cols + i] *= 1e-30 }              // tiny, and below, huge values
        for i in 0..<cols where i % 11 == 5 { x[2 * cols + i] *= 1e30 }
        let a = QuantizedActivations(maxRows: rows, maxCols: cols), b = QuantizedActivations(maxRows: rows, maxCols: cols)
        x.withUnsafeBufferPointer {
            a.quantize($0.baseAddress!, stride: cols, rows: rows, cols: cols, vectorized: false)
            b.quantize($0.baseAddress!, stride: cols, rows: rows, cols: cols, vectorized: true)
        }
        let pc = QuantizedActivations.paddedCols(cols), blocks = rows * pc / 32
        #expect((0..<rows * pc).allSatisfy { a.q[$0] == b.q[$0] })
        #expect((0..<blocks).allSatisfy { a.scales[$0].bitPattern == b.scales[$0].bitPattern && a.scaledSums[$0].bitPattern == b.scaledSums[$0].bitPattern })
        #expect((0..<4 * blocks).allSatisfy { a.expandedScales[$0].bitPattern == b.expandedScales[$0].bitPattern && a.offsetSums[$0] == b.offsetSums[$0] })
        if cols >= 64 {  // the ties: d = 1 in block 1 of row 0, so the values are the inputs rounded away from zero
            #expect([1, 2, 3, 4, 5, 6].map { Int(b.q[QuantizedActivations.position(32 + $0)]) } == [1, -1, 2, -3, 16384, -32767])
        }
    }

    /// The K formats' rows are whole 256-weight super-blocks: a width that is not is refused by the geometry
    /// (`rowBytes` is nil), so no matrix of that shape can be made.
    @Test(arguments: [TensorType.q4_K, .q6_K])
    func kFormatsRefuseWidthsThatAreNotWholeSuperBlocks(type: TensorType) {
        #expect(type.rowBytes(640) == nil)
        #expect(type.rowBytes(768) == 3 * type.blockBytes)
    }
}
