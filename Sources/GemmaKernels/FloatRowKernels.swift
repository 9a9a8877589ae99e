// Row kernels for float weights (bf16, f16, f32: Hugging Face checkpoints; SFP8) in `.fast` precision: each weight row is
// read from the mapping once per block of rows and met by every activation row in f32 FMA; nothing is copied to an
// f32 matrix. Decoding reads each weight once per token, so these run at memory speed when a row costs fewer cycles
// than its bytes take to arrive.
//
// bf16 is the top half of an f32. Two neighbouring weights loaded as one UInt32 (little-endian: element 2i in the low
// half, 2i + 1 in the high half) are the floats `bits << 16` (even element) and `bits & 0xffff0000` (odd element):
// lane-wise integer operations and a bit cast, no widening conversion (Swift's SIMD type conversions are slow). The
// activations are split once per product into even and odd halves (`PairedActivations`), so that lane j of a
// 16-lane step meets weights 2j and 2j + 1 of its 32-weight chunk.
// SFP8 rows go through the same pair kernel, each 32-code chunk decoded to bf16 pairs in registers (SFP8Pairs).
// f16 rows are converted to f32 into worker scratch (vcvtph2ps where the CPU has F16C), then dotted with each
// activation row; f32 rows are dotted where they lie.
// The sums run in another order than `dot` over dequantized rows (`.exact`), so results agree to rounding, not bits.
import CPUHints
import GemmaFormats

/// Activation rows with each 32-element chunk stored as its 16 even elements, then its 16 odd ones (the bf16 pair
/// kernel's order). Elements past the last whole chunk are not stored: the kernels take them from the rows as given.
package final class PairedActivations: @unchecked Sendable {  // written before a product, read-only during it
    package let maxRows: Int
    package let maxCols: Int
    let values: UnsafeMutablePointer<Float>

    package init(maxRows: Int, maxCols: Int) {
        self.maxRows = max(1, maxRows)
        self.maxCols = maxCols / 32 * 32
        values = UnsafeMutableRawPointer.allocate(byteCount: 4 * self.maxRows * max(32, self.maxCols), alignment: 64)
            .bindMemory(to: Float.self, capacity: self.maxRows * max(32, self.maxCols))
    }

    deinit { values.deallocate() }

    /// Splits `rows` rows of `cols` floats (`stride` floats apart).
    package func split(_ x: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int) {
        precondition(rows <= maxRows && cols / 32 * 32 <= maxCols)
        let chunks = cols / 32
        for r in 0..<rows {
            let src = x + r &* stride, dst = values + r &* maxCols
            for c in 0..<chunks {
                let s = src + 32 &* c, d = dst + 32 &* c
                for j in 0..<16 {
                    d[j] = s[2 &* j]
                    d[16 &+ j] = s[2 &* j &+ 1]
                }
            }
        }
    }

    @inline(__always) package func row(_ r: Int) -> UnsafePointer<Float> { UnsafePointer(values + r &* maxCols) }
}

/// A row format whose 32-weight chunks the pair kernel reads as 16 UInt32 lanes of bf16 pairs (element 2j in the low
/// half of lane j, 2j + 1 in the high half).
protocol PairRowFormat {
    /// Bytes per 32-weight chunk.
    static var chunkBytes: Int { get }
    /// Chunk `c` of `row` as bf16 pairs.
    static func chunk(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<UInt32>
    /// Weight `k` of `row` as f32 (the elements past the last whole chunk).
    static func weight(_ row: UnsafeRawPointer, _ k: Int) -> Float
}

/// bf16 rows: the chunk is the stored bytes.
enum BF16Pairs: PairRowFormat {
    static var chunkBytes: Int { 64 }
    @inline(__always) static func chunk(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<UInt32> {
        row.loadUnaligned(fromByteOffset: 64 &* c, as: SIMD16<UInt32>.self)
    }
    @inline(__always) static func weight(_ row: UnsafeRawPointer, _ k: Int) -> Float {
        Float(bitPattern: UInt32(row.loadUnaligned(fromByteOffset: 2 &* k, as: UInt16.self)) &<< 16)
    }
}

/// SFP8 rows: 32 codes decoded to bf16 in int16 lanes (every SFP8 value is a bf16 value). With e the low 7 bits, a
/// small code is (e << 5) + 0x3400, a large one (e << 4) + 0x3800 (small + 0x400 - 16e), e = 0 is +0, and bit 7
/// moves to bit 15: `SFP8.bits`, 16 bits wide. The tests are written on words (large: e * 512 < 0; zero: small !=
/// 0x3400) so that LLVM does not narrow them to byte compares and widen the masks again (148 -> 95 instructions per
/// two rows' chunk; 4 -> 6 G weights/s per core fused with the dot, AMD EPYC Zen 3).
enum SFP8Pairs: PairRowFormat {
    static var chunkBytes: Int { 32 }
    @inline(__always) static func chunk(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<UInt32> {
        unsafeBitCast(decode32(row.assumingMemoryBound(to: UInt8.self) + 32 &* c), to: SIMD16<UInt32>.self)
    }
    @inline(__always) static func weight(_ row: UnsafeRawPointer, _ k: Int) -> Float {
        SFP8.decode(row.load(fromByteOffset: k, as: UInt8.self))
    }

    typealias V = SIMD32<Int16>
    typealias M = SIMDMask<SIMD32<Int16>>
    @inline(__always) static func and(_ a: V, _ m: M) -> V { unsafeBitCast(unsafeBitCast(a, to: M.self) .& m, to: V.self) }
    @inline(__always) static func and(_ a: V, _ b: V) -> V { and(a, unsafeBitCast(b, to: M.self)) }
    @inline(__always) static func or(_ a: V, _ b: V) -> V { unsafeBitCast(unsafeBitCast(a, to: M.self) .| unsafeBitCast(b, to: M.self), to: V.self) }

    /// The bf16 bit patterns of 32 codes.
    @inline(__always) static func decode32(_ p: UnsafePointer<UInt8>) -> V {
        let b = V(Int16(p[0]), Int16(p[1]), Int16(p[2]), Int16(p[3]), Int16(p[4]), Int16(p[5]), Int16(p[6]), Int16(p[7]),
                  Int16(p[8]), Int16(p[9]), Int16(p[10]), Int16(p[11]), Int16(p[12]), Int16(p[13]), Int16(p[14]), Int16(p[15]),
                  Int16(p[16]), Int16(p[17]), Int16(p[18]), Int16(p[19]), Int16(p[20]), Int16(p[21]), Int16(p[22]), Int16(p[23]),
                  Int16(p[24]), Int16(p[25]), Int16(p[26]), Int16(p[27]), Int16(p[28]), Int16(p[29]), Int16(p[30]), Int16(p[31]))
        let e = and(b, V(repeating: 0x7f))
        let sign = and(b &* V(repeating: 256), V(repeating: Int16(bitPattern: 0x8000)))
        let small = e &* V(repeating: 32) &+ V(repeating: 0x3400)
        let value = small &+ and(V(repeating: 0x400) &- e &* V(repeating: 16), (e &* V(repeating: 512)) .< V(repeating: 0))
        return and(or(value, sign), small .!= V(repeating: 0x3400))
    }
}

/// Decodes `count` SFP8 codes to bf16 bit patterns (`SFP8Pairs.decode32` per 32, then `SFP8.bits`): the pair kernel's
/// decoding laid out in memory, so that tests can check it code by code.
package func decodeSFP8ToBF16(_ src: UnsafePointer<UInt8>, _ count: Int, into out: UnsafeMutablePointer<UInt16>) {
    var i = 0
    while i &+ 32 <= count {
        UnsafeMutableRawPointer(out + i).storeBytes(of: SFP8Pairs.decode32(src + i), as: SIMD32<Int16>.self)
        i &+= 32
    }
    while i < count {
        out[i] = UInt16(truncatingIfNeeded: SFP8.bits(src[i]) >> 16)
        i &+= 1
    }
}

/// One 32-weight chunk (bf16 pairs `v`) times the paired activations (`xe` even, `xo` odd).
@inline(__always)
private func pairStep(_ acc: inout SIMD16<Float>, _ v: SIMD16<UInt32>, _ xe: SIMD16<Float>, _ xo: SIMD16<Float>) {
    acc = acc.addingProduct(unsafeBitCast(v &<< 16, to: SIMD16<Float>.self), xe)
    acc = acc.addingProduct(unsafeBitCast(v & SIMD16<UInt32>(repeating: 0xffff_0000), to: SIMD16<Float>.self), xo)
}

/// The sum of 16 lanes as a tree of vector adds (`sum()` adds them one by one).
@inline(__always)
private func laneSum(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf, b = a.lowHalf + a.highHalf, c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// The elements of a row past its whole 32-weight chunks.
@inline(__always)
private func pairTail<F: PairRowFormat>(_: F.Type, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ from: Int, _ cols: Int) -> Float {
    var s: Float = 0
    for k in from..<cols { s += F.weight(row, k) * x[k] }
    return s
}

/// `y[i] = row_i · x` for `count` bf16 rows (`rowBytes` apart, `cols` weights each); `paired` is `x` split by
/// `PairedActivations`.
@inline(never)
package func dotRowsBF16(_ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, x: UnsafePointer<Float>,
                         paired: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    dotPairRows(BF16Pairs.self, rows, rowBytes: rowBytes, count: count, cols: cols, x: x, paired: paired, into: y)
}

/// `y[i] = row_i · x` for `count` SFP8 rows (the tensor scale not applied).
@inline(never)
package func dotRowsSFP8(_ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, x: UnsafePointer<Float>,
                         paired: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    guard CPUFeatures.avx512vbmi else {
        dotPairRows(SFP8Pairs.self, rows, rowBytes: rowBytes, count: count, cols: cols, x: x, paired: paired, into: y)
        return
    }
    // AVX-512 VBMI: the codes decoded by byte-table lookups (CPUHints.h), then the pair kernel's steps in its order:
    // the same results as dotPairRows, bit for bit.
    let chunks = cols &>> 5, tail = chunks &<< 5, ahead = 4 &* rowBytes &* max(1, 12288 / (4 &* rowBytes))
    withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 4) { acc in
        let a = UnsafeMutableRawPointer(acc.baseAddress!).assumingMemoryBound(to: Float.self)
        @inline(__always) func finish(_ k: Int, _ i: Int) {
            y[i] = laneSum(acc[k]) + pairTail(SFP8Pairs.self, rows + i &* rowBytes, x, tail, cols)
        }
        var i = 0
        while i &+ 4 <= count {
            cpu_dot_sfp8_rows4(rows + i &* rowBytes, rowBytes, chunks, paired, a, ahead)
            finish(0, i); finish(1, i &+ 1); finish(2, i &+ 2); finish(3, i &+ 3)
            i &+= 4
        }
        if i &+ 2 <= count {
            cpu_dot_sfp8_rows2(rows + i &* rowBytes, rowBytes, chunks, paired, a, ahead)
            finish(0, i); finish(1, i &+ 1)
            i &+= 2
        }
        if i < count {
            cpu_dot_sfp8_rows1(rows + i &* rowBytes, rowBytes, chunks, paired, a, ahead)
            finish(0, i)
        }
    }
}

/// The pair kernel: several rows per pass share the activation loads (four with AVX-512's 32 registers, two with
/// AVX2's 16, where four spill).
@inline(__always)
private func dotPairRows<F: PairRowFormat>(_ f: F.Type, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int,
                                           x: UnsafePointer<Float>, paired: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    let chunks = cols &>> 5, tail = chunks &<< 5, cb = F.chunkBytes
    let p = UnsafeRawPointer(paired), four = CPUFeatures.avx512
    // Software prefetch of the same chunk of the rows some passes ahead (8 rows of 640 bf16: 10 KB): one core streaming
    // from DRAM keeps more lines in flight than its hardware prefetcher does (one core, the 270M's bf16 head: 9.5 ->
    // 12.5 GB/s).
    let ahead = 4 &* rowBytes &* max(1, 12288 / (4 &* rowBytes))
    var i = 0
    while four, i &+ 4 <= count {
        let r0 = rows + i &* rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        for c in 0..<chunks {
            cpu_prefetch(r0 + (ahead &+ cb &* c))
            cpu_prefetch(r1 + (ahead &+ cb &* c))
            cpu_prefetch(r2 + (ahead &+ cb &* c))
            cpu_prefetch(r3 + (ahead &+ cb &* c))
            let xe = p.load(fromByteOffset: 128 &* c, as: SIMD16<Float>.self)
            let xo = p.load(fromByteOffset: 128 &* c &+ 64, as: SIMD16<Float>.self)
            pairStep(&a0, F.chunk(r0, c), xe, xo)
            pairStep(&a1, F.chunk(r1, c), xe, xo)
            pairStep(&a2, F.chunk(r2, c), xe, xo)
            pairStep(&a3, F.chunk(r3, c), xe, xo)
        }
        y[i] = laneSum(a0) + pairTail(f, r0, x, tail, cols)
        y[i &+ 1] = laneSum(a1) + pairTail(f, r1, x, tail, cols)
        y[i &+ 2] = laneSum(a2) + pairTail(f, r2, x, tail, cols)
        y[i &+ 3] = laneSum(a3) + pairTail(f, r3, x, tail, cols)
        i &+= 4
    }
    while i &+ 2 <= count {
        let r0 = rows + i &* rowBytes, r1 = r0 + rowBytes
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        for c in 0..<chunks {
            cpu_prefetch(r0 + (ahead &+ cb &* c))
            cpu_prefetch(r1 + (ahead &+ cb &* c))
            let xe = p.load(fromByteOffset: 128 &* c, as: SIMD16<Float>.self)
            let xo = p.load(fromByteOffset: 128 &* c &+ 64, as: SIMD16<Float>.self)
            pairStep(&a0, F.chunk(r0, c), xe, xo)
            pairStep(&a1, F.chunk(r1, c), xe, xo)
        }
        y[i] = laneSum(a0) + pairTail(f, r0, x, tail, cols)
        y[i &+ 1] = laneSum(a1) + pairTail(f, r1, x, tail, cols)
        i &+= 2
    }
    while i < count {
        let r0 = rows + i &* rowBytes
        var a0 = SIMD16<Float>()
        for c in 0..<chunks {
            pairStep(&a0, F.chunk(r0, c), p.load(fromByteOffset: 128 &* c, as: SIMD16<Float>.self),
                     p.load(fromByteOffset: 128 &* c &+ 64, as: SIMD16<Float>.self))
        }
        y[i] = laneSum(a0) + pairTail(f, r0, x, tail, cols)
        i &+= 1
    }
}

/// Converts `count` f16 values to f32 (vectorized: vcvtph2ps with F16C).
@inline(__always)
package func convertF16(_ src: UnsafeRawPointer, _ count: Int, into out: UnsafeMutablePointer<Float>) {
    let h = src.assumingMemoryBound(to: UInt16.self)  // 2-byte aligned: tensor data is 32-byte aligned
    for k in 0..<count { out[k] = Float(Float16(bitPattern: h[k])) }
}

extension WeightMatrix {
    /// Whether `multiply` has float row kernels for this matrix's rows (bf16, f16, f32, SFP8).
    var hasFloatRowKernels: Bool {
        switch encoding.tensorType {
        case .bf16?, .f16?, .f32?: true
        default: isSFP8
        }
    }

    /// SFP8 rows (decoded to bf16 pairs in registers by the pair kernel, `SFP8Pairs`).
    var isSFP8: Bool { encoding.name == WeightEncoding.sfp8.name }

    /// Whether the float row kernels take the activations paired (bf16 and SFP8 rows).
    var takesPairedActivations: Bool { encoding.tensorType == .bf16 || isSFP8 }

    /// Rows per block in `FloatRowJob`: a block of rows (at most 64 KiB, at least 4 rows) stays in L2 while every
    /// activation row passes over it.
    var floatRowBlock: Int { max(4, (65536 / max(1, rowBytes)) & ~3) }
}

/// Float row kernels over rows `firstRow + range` of `m`, for `batch` activation rows.
struct FloatRowJob: RangeJob {
    let m: WeightMatrix, firstRow: Int, x: UnsafePointer<Float>, xStride: Int, batch: Int
    let y: UnsafeMutablePointer<Float>, yStride: Int, paired: PairedActivations, scratch: MatmulScratch

    func run(worker w: Int, range: Range<Int>) {
        let cols = m.cols, block = m.floatRowBlock
        var r0 = range.lowerBound &+ firstRow
        let end = range.upperBound &+ firstRow
        while r0 < end {
            let n = min(block, end &- r0), rows = m.base + r0 &* m.rowBytes
            switch m.encoding.tensorType {
            case .bf16?:
                for t in 0..<batch {
                    dotRowsBF16(rows, rowBytes: m.rowBytes, count: n, cols: cols, x: x + t &* xStride,
                                paired: paired.row(t), into: y + t &* yStride + r0)
                }
            case nil where m.isSFP8:
                // Decoded in registers by the pair kernel; the tensor's scale multiplies the sums.
                let scale = m.encoding.scale
                for t in 0..<batch {
                    let yt = y + (t &* yStride &+ r0)
                    dotRowsSFP8(rows, rowBytes: m.rowBytes, count: n, cols: cols, x: x + t &* xStride, paired: paired.row(t), into: yt)
                    if scale != 1 { for j in 0..<n { yt[j] *= scale } }
                }
            case .f16?:
                // Software prefetch of the row 8 rows ahead, a line per 64 bytes, as the pair kernel does (one core
                // streaming from DRAM keeps more lines in flight than its hardware prefetcher).
                let buf = scratch.row(w), ahead = 8 &* m.rowBytes
                for i in 0..<n {
                    let row = rows + i &* m.rowBytes
                    var line = 0
                    while line < m.rowBytes {
                        cpu_prefetch(row + (ahead &+ line))
                        line &+= 64
                    }
                    convertF16(row, cols, into: buf)
                    for t in 0..<batch { y[t &* yStride &+ r0 &+ i] = dot(buf, x + t &* xStride, cols) }
                }
            default:  // f32
                for i in 0..<n {
                    let row = (rows + i &* m.rowBytes).assumingMemoryBound(to: Float.self)
                    for t in 0..<batch { y[t &* yStride &+ r0 &+ i] = dot(row, x + t &* xStride, cols) }
                }
            }
            r0 &+= n
        }
    }
}
