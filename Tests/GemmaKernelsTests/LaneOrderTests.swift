// Q5_0, Q8_0 and Q4_K regrouped at load into the decode kernels' lane order (WeightEncoding.q5_0Lanes, ...) must
// change nothing but speed: the regrouping is undone exactly, and every product that can meet such a matrix (the
// one-row decode kernel, the 2- to 11-row batched kernels, the int16 and f32 prompt GEMMs with one or two workers,
// exact precision's dequantized rows) gives bit for bit what the file's order gives. On CPUs without VBMI the same
// products take the fallbacks (each group put back in file order), which this also checks.
import CPUHints
import GemmaFormats
import GemmaKernels
import GemmaTestSupport
import Testing

@Suite struct LaneOrderTests {
    static let cases: [(TensorType, Int)] = [TensorType.q5_0, .q8_0].flatMap { t in [128, 640, 2048, 5376, 6912].map { (t, $0) } }
        + [256, 768, 1024, 2048, 6912].map { (TensorType.q4_K, $0) }

    /// Bytes of one regrouped unit: four blocks, or a Q4_K super-block.
    static func unit(_ type: TensorType) -> Int { type == .q4_K ? 144 : 4 * type.blockBytes }

    /// `rows` x `cols` random weights of `type` in file order and in lane order.
    static func matrices(_ type: TensorType, rows: Int, cols: Int, seed: UInt64) throws -> (file: [UInt8], lanes: [UInt8]) {
        var r = SplitMix64(seed: seed)
        let file = try randomMatrix(type, rows: rows, cols: cols, &r)
        var lanes = [UInt8](repeating: 0, count: file.count)
        file.withUnsafeBytes { s in lanes.withUnsafeMutableBytes { d in
            WeightEncoding.repackLanes(type, s.baseAddress!, groups: file.count / unit(type), into: d.baseAddress!)
        } }
        return (file, lanes)
    }

    static func lanesMatrix(_ type: TensorType, rows: Int, cols: Int, _ base: UnsafeRawPointer) -> WeightMatrix {
        WeightMatrix(encoding: WeightEncoding.laneOrder(of: type, cols: cols)!, rows: rows, cols: cols, base: base)
    }

    /// The portable C regrouping (`toLanes`) or its inverse, unit by unit from `src` into `dst`.
    static func eachUnit(_ type: TensorType, _ src: [UInt8], _ dst: inout [UInt8], bytes: Int, toLanes: Bool) {
        src.withUnsafeBytes { s in dst.withUnsafeMutableBytes { d in
            for g in 0..<src.count / bytes {
                let from = s.baseAddress!.assumingMemoryBound(to: UInt8.self) + bytes * g
                let to = d.baseAddress!.assumingMemoryBound(to: UInt8.self) + bytes * g
                switch (type, toLanes) {
                case (.q5_0, true): cpu_q5_0_lanes(from, to)
                case (.q5_0, false): cpu_q5_0_from_lanes(from, to)
                case (.q8_0, true): cpu_q8_0_lanes(from, to)
                case (.q8_0, false): cpu_q8_0_from_lanes(from, to)
                case (_, true): cpu_q4_K_lanes(from, to)
                case (_, false): cpu_q4_K_from_lanes(from, to)
                }
            }
        } }
    }

    @Test(arguments: [TensorType.q5_0, .q8_0, .q4_K])
    func regroupingIsUndoneExactly(type: TensorType) throws {
        var r = SplitMix64(seed: 0x1a9e5 &+ UInt64(type.rawValue))
        let groups = 512, bytes = Self.unit(type)
        let file = r.bytes(groups * bytes)  // any bytes: every bit must land in its place and come back
        var lanes = [UInt8](repeating: 0, count: file.count), back = lanes
        file.withUnsafeBytes { s in lanes.withUnsafeMutableBytes { d in
            WeightEncoding.repackLanes(type, s.baseAddress!, groups: groups, into: d.baseAddress!)
        } }
        Self.eachUnit(type, lanes, &back, bytes: bytes, toLanes: false)
        #expect(back == file)
        #expect(lanes != file)
        // The portable byte-by-byte regrouping writes what repackLanes (the VBMI permutes where the CPU has them) does.
        var portable = [UInt8](repeating: 0, count: file.count)
        Self.eachUnit(type, file, &portable, bytes: bytes, toLanes: true)
        #expect(portable == lanes)
        if type == .q4_K {
            // The scales stay first; lane byte 0 holds element 0 and element 16 of sub-block 0 (low nibbles).
            #expect(Array(lanes[0..<16]) == Array(file[0..<16]))
            let want: UInt8 = (file[16] & 15) | (file[32] & 15) << 4
            #expect(lanes[16] == want)
            return
        }
        // The scales move to the end of a group; block m's quant byte 0 is lane byte 16 m.
        let quants = type == .q5_0 ? 6 : 2
        for m in 0..<4 {
            let scaleByte: UInt8 = file[type.blockBytes * m], firstQuant: UInt8 = file[type.blockBytes * m + quants]
            #expect(lanes[bytes - 8 + 2 * m] == scaleByte)
            #expect(lanes[16 * m] == firstQuant)
        }
    }

    @Test(arguments: cases)
    func dequantizedRowsAreTheFiles(type: TensorType, cols: Int) throws {
        let rows = 5
        let (file, lanes) = try Self.matrices(type, rows: rows, cols: cols, seed: 0x51 &+ UInt64(cols))
        var want = [Float](repeating: 0, count: cols), got = want
        for row in 0..<rows {
            file.withUnsafeBytes { WeightMatrix(type: type, rows: rows, cols: cols, base: $0.baseAddress!).dequantizeRow(row, into: &want) }
            lanes.withUnsafeBytes { Self.lanesMatrix(type, rows: rows, cols: cols, $0.baseAddress!).dequantizeRow(row, into: &got) }
            #expect(want.map(\.bitPattern) == got.map(\.bitPattern), "\(type) row \(row)")
        }
    }

    /// Decode batches (1 ... 11 rows, the batched kernels: allowGemm false) and prompt batches (GEMM from 8 rows; 101
    /// rows split by tokens between two workers), both precisions, one and two workers.
    @Test(arguments: cases)
    func everyProductIsBitIdenticalToFileOrder(type: TensorType, cols: Int) throws {
        let rows = cols > 4096 ? 37 : 70
        let (file, lanes) = try Self.matrices(type, rows: rows, cols: cols, seed: 0x1a4e &+ UInt64(cols))
        var r = SplitMix64(seed: 7 &+ UInt64(cols))
        let maxBatch = gemmInt16TokenSplitMinimum + 5
        let x = r.floats(maxBatch * cols, scale: 3)
        var checked = 0
        for (batch, gemm) in [(1, false), (2, false), (3, false), (4, false), (5, false), (11, false), (8, true), (29, true), (maxBatch, true)] {
            for precision in Precision.allCases {
                for threads in [1, 2] {
                    var y = [[Float]]()
                    for inLanes in [false, true] {
                        var out = [Float](repeating: .nan, count: batch * rows)
                        (inLanes ? lanes : file).withUnsafeBytes { raw in
                            let m = inLanes ? Self.lanesMatrix(type, rows: rows, cols: cols, raw.baseAddress!)
                                : WeightMatrix(type: type, rows: rows, cols: cols, base: raw.baseAddress!)
                            m.multiply(x, xStride: cols, batch: batch, into: &out, yStride: rows, precision: precision, allowGemm: gemm,
                                       pool: WorkerPool.shared(threads: threads),
                                       scratch: MatmulScratch(workers: threads, maxCols: cols, maxBatch: batch))
                        }
                        y.append(out)
                    }
                    let differing = (0..<batch * rows).filter { y[0][$0].bitPattern != y[1][$0].bitPattern }.count
                    #expect(differing == 0, "\(type) cols \(cols) batch \(batch) \(precision) \(threads) workers: \(differing) of \(batch * rows) differ")
                    #expect(y[1].allSatisfy { $0.isFinite })
                    checked += 1
                }
            }
        }
        #expect(checked == 36)
    }
}
