// Q5_0 regrouped at load into the decode kernels' lane order (WeightEncoding.q5_0Lanes) must change nothing but
// speed: the regrouping is undone exactly, and every product that can meet such a matrix (the one-row decode kernel,
// the 2- to 11-row batched kernels, the int16 and f32 prompt GEMMs with one or two workers, exact precision's
// dequantized rows) gives bit for bit what the file's order gives. On CPUs without VBMI the same products take the
// fallbacks (each group put back in file order), which this also checks.
import CPUHints
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import Testing

@Suite struct Q5_0LanesTests {
    /// `rows` x `cols` random Q5_0 weights in file order and in lane order.
    static func matrices(rows: Int, cols: Int, seed: UInt64) throws -> (file: [UInt8], lanes: [UInt8]) {
        var r = SplitMix64(seed: seed)
        let file = try randomMatrix(.q5_0, rows: rows, cols: cols, &r)
        var lanes = [UInt8](repeating: 0, count: file.count)
        file.withUnsafeBytes { s in lanes.withUnsafeMutableBytes { d in
            WeightEncoding.repackQ5_0Lanes(s.baseAddress!, groups: rows * cols / 128, into: d.baseAddress!)
        } }
        return (file, lanes)
    }

    @Test func regroupingIsUndoneExactly() throws {
        var r = SplitMix64(seed: 0x1a9e5)
        let groups = 512
        let file = r.bytes(groups * 88)  // any bytes: every bit must land in its place and come back
        var lanes = [UInt8](repeating: 0, count: file.count), back = lanes
        file.withUnsafeBytes { s in lanes.withUnsafeMutableBytes { d in
            WeightEncoding.repackQ5_0Lanes(s.baseAddress!, groups: groups, into: d.baseAddress!)
        } }
        lanes.withUnsafeBytes { s in back.withUnsafeMutableBytes { d in
            for g in 0..<groups {
                cpu_q5_0_from_lanes(s.baseAddress!.assumingMemoryBound(to: UInt8.self) + 88 * g,
                                    d.baseAddress!.assumingMemoryBound(to: UInt8.self) + 88 * g)
            }
        } }
        #expect(back == file)
        #expect(lanes != file)
        // The scales move to the end of a group; block m's quant byte 0 is lane byte 16 m.
        for m in 0..<4 {
            let scaleByte: UInt8 = file[22 * m], firstQuant: UInt8 = file[22 * m + 6]
            #expect(lanes[80 + 2 * m] == scaleByte)
            #expect(lanes[16 * m] == firstQuant)
        }
    }

    @Test(arguments: [128, 640, 2048, 5376, 6912])
    func dequantizedRowsAreQ5_0s(cols: Int) throws {
        let rows = 5
        let (file, lanes) = try Self.matrices(rows: rows, cols: cols, seed: 0x51 &+ UInt64(cols))
        var want = [Float](repeating: 0, count: cols), got = want
        for row in 0..<rows {
            file.withUnsafeBytes { WeightMatrix(type: .q5_0, rows: rows, cols: cols, base: $0.baseAddress!).dequantizeRow(row, into: &want) }
            lanes.withUnsafeBytes { WeightMatrix(encoding: .q5_0Lanes, rows: rows, cols: cols, base: $0.baseAddress!).dequantizeRow(row, into: &got) }
            #expect(want.map(\.bitPattern) == got.map(\.bitPattern), "row \(row)")
        }
    }

    /// Decode batches (1 ... 11 rows, the batched kernels: allowGemm false) and prompt batches (GEMM from 8 rows; 101
    /// rows split by tokens between two workers), both precisions, one and two workers.
    @Test(arguments: [128, 640, 2048, 5376, 6912])
    func everyProductIsBitIdenticalToFileOrder(cols: Int) throws {
        let rows = cols > 4096 ? 37 : 70
        let (file, lanes) = try Self.matrices(rows: rows, cols: cols, seed: 0x1a4e &+ UInt64(cols))
        var r = SplitMix64(seed: 7 &+ UInt64(cols))
        let maxBatch = gemmInt16TokenSplitMinimum + 5
        let x = r.floats(maxBatch * cols, scale: 3)
        var checked = 0
        for (batch, gemm) in [(1, false), (2, false), (3, false), (4, false), (5, false), (11, false), (8, true), (29, true), (maxBatch, true)] {
            for precision in Precision.allCases {
                for threads in [1, 2] {
                    var y = [[Float]]()
                    for bytes in [file, lanes] {
                        var out = [Float](repeating: .nan, count: batch * rows)
                        bytes.withUnsafeBytes { raw in
                            let m = bytes == file ? WeightMatrix(type: .q5_0, rows: rows, cols: cols, base: raw.baseAddress!)
                                : WeightMatrix(encoding: .q5_0Lanes, rows: rows, cols: cols, base: raw.baseAddress!)
                            m.multiply(x, xStride: cols, batch: batch, into: &out, yStride: rows, precision: precision, allowGemm: gemm,
                                       pool: WorkerPool.shared(threads: threads),
                                       scratch: MatmulScratch(workers: threads, maxCols: cols, maxBatch: batch))
                        }
                        y.append(out)
                    }
                    let differing = (0..<batch * rows).filter { y[0][$0].bitPattern != y[1][$0].bitPattern }.count
                    #expect(differing == 0, "cols \(cols) batch \(batch) \(precision) \(threads) workers: \(differing) of \(batch * rows) differ")
                    #expect(y[1].allSatisfy { $0.isFinite })
                    checked += 1
                }
            }
        }
        #expect(checked == 36)
    }
}
