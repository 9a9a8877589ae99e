import GemmaFormats
// Dot products of one quantized weight row with 1, 2 or 4 rows of int16-quantized activations, per format
// ("row kernels" for decoding several sequences at once). Entry points: `dotRows` (one weight row, any batch >= 1)
// and `dotRowsMany` (consecutive weight rows, same results, +3-6% from paying the dispatch once).
//
// Scheme: the weight row is unpacked, up to 64 blocks of 32 at a time, into a scratch buffer of int16 values
// (q minus the format's offset; Q6_K times its per-16 int8 scale, |w| <= 4096) and one f32 scale per 32 weights
// (plus, for Q4_K, one f32 min per 32). Then, for each activation row, every block gives 16 exact Int32 lanes
// (vpmaddwd: lane j = w[2j]x[2j] + w[2j+1]x[2j+1]), converted to f32 (vcvtdq2ps) and accumulated with one FMA into
// 16 f32 lanes ("vertical" accumulation) with block scale = weight scale * activation scale (one f32 product).
// Even and odd blocks go to two accumulators (two FMA chains); the 32 lanes are summed once per row by a fixed
// tree. Q4_K's min term is an 8-lane FMA per super-block, summed by a fixed tree.
// Bit-identity: the 1-, 2- and 4-row kernels (fused or not, chunked or not) do, for each row, exactly the same f32
// operations in the same order (the integer block sums are exact), so a row's result does not depend on how many
// rows are computed with it: batched decoding == decoding alone, bit for bit (checked: 0 mismatches in 8280).
// Ranges: |w| <= 127 (Q8_0; Q6_K 4096) times |x| <= 32767, two products per lane: below 2^31.
//
// Measured (klab2, 2-vCPU Zen 4 shared with another busy session, per core, thread CPU time, best of 6 alternating
// runs x 100 reps of 4096 rows, MANY=1, -O -target-cpu native; rows 640 wide, K formats 2048), G MAC/s:
//            1-row          2-row          4-row
//   Q8_0     16.5 -> 16.7   22.1 -> 21.9   30.7 -> 39.8   (ROWS=65536, streaming from DRAM: 4-row 29.8 -> 38.9)
//   Q4_0     13.2 -> 13.2   20.5 -> 20.4   30.0 -> 34.2
//   Q5_0     10.4 -> 10.5   16.9 -> 17.0   24.4 -> 29.0
//   Q4_K     18.3 -> 18.4   29.8 -> 29.5   38.7 -> 38.3
//   Q6_K     15.1 -> 15.2   25.4 -> 25.3   35.4 -> 35.9
// Q5_0 unpack without the table (q5lab, see unpackBlockQ5_0), same kind of run, 4096 rows: 1-row 10.7 -> 12.3,
// 2-row 17.1 -> 18.7, 4-row 28.7 -> 32.1.
// Changes of the 4-row `dotRowsMany` path (klab2 round 3), each bit-identical (per output the same f32 operations):
//  * the deferred reduction `finish4` had been scalarized by LLVM (~35 scalar instructions per output); now each
//    weight row's 4 outputs are reduced by two tree levels as shuffles across outputs (treeLevel1/2: one vector of
//    4 x 4 partial sums) and every 4 weight rows `finishGroup` does the last two levels for 16 outputs at once;
//  * `kernelOpaqueZero` is read once per call (RowScratch.z): each read of a global `let`
//    was a swift_once call plus vzeroupper per weight row;
//  * block scales: the four products d * x_t.d[b] as one 4-lane multiply with the activation scales transposed once
//    per call (RowScratch.xdT), stored and read back as FMA broadcast operands (2 vector ops instead of 8 per block);
//  * two weight rows per iteration (kernel4FusedPairQ8_0, kernel4Pair): each activation block is loaded once for
//    both (6 instead of 10 vector loads per block pair); Q8_0 (fused) takes its two rows from two sequential
//    streams (rows i and count/2 + i; adjacent rows interleaved block by block streamed 30% slower from DRAM) with a
//    software prefetch 2 KB ahead (ROWS=65536, i.e. streaming from DRAM like the output head: 28.2 -> 38.0);
//    Q5_0 / Q4_0 unpack both rows one after the other (nb <= 32), then compute the pair.
// Next step if more is needed: the per-block work is now ~12 zmm ops per block and activation row (vpmaddwd, vcvtdq2ps,
// FMA); an activation layout interleaved by 8 elements across the 4 rows (vpmaddwd + 3 vpdpwssd per block, exact
// integer sums) would need 1 convert + 1 FMA per block for all 4 rows, but changes the per-row arithmetic of every path.
// Max error vs an f64 dot of the dequantized values: 9e-8 of sum |w x|.
//
// Codegen notes (Swift 6.1, Zen 4):
//  * the unpack functions are @inline(never): the kernels then only see loads of the int16 buffer, which keeps
//    `pairDot16` (both operands Int16 memory) as vpmaddwd;
//  * each unpacked block is built as a SIMD32<Int16> from 32 written-out lane expressions over byte *pointers*
//    (all loads before the single vector store): vpmovsxbw / vpmovzxbw + vpand / vpsrlvw and one zmm store.
//    Loops over lanes (`o[i] = ...`), lane subscripts of SIMD values in loops, and SIMD operators on
//    SIMD32<Int16> (&>>, &, .replacing) compile to scalar lane loops;
//  * Q5_0's high bits: written-out `(qh >> j) & 1` lanes became ~100 shuffle instructions, a 4 KB table (4 lookups
//    per block) 28 instructions per block; now an AVX-512 mask register made from qh by whole-vector SIMD32<Int32>
//    operations (two kmovw + kunpckwd) and one masked move: 13 per block (see q5ClearMask / unpackBlockQ5_0);
//  * whole-vector SIMD operations that are builtins for concrete types (Swift 6.3 stdlib): init(repeating:),
//    init(lowHalf:highHalf:), &+ &- &*, the comparisons .== .< ..., and SIMDMask's .& .| .^ (so a bitwise AND of
//    two integer vectors is unsafeBitCast to SIMDMask, .&, unsafeBitCast back). Not: & | ^ << >> on SIMD types,
//    .replacing, conversions (scalar lane loops). Vector LLVM intrinsics via @_silgen_name fail ("Cannot select":
//    Swift declares them without memory(none), so they get a chain); the scalar-void llvm.prefetch works;
//  * a lone pairDot16 (one row) is turned by instcombine into 64-bit multiplies (vpmuldq + vcvtqq2ps); adding an
//    opaque zero vector keeps it vpdpwssd;
//  * no global `var` and no class `var` reads in the hot path: under -O each costs a dynamic exclusivity check
//    (swift_beginAccess), e.g. QuantizedActivations.cols; the row width comes from the caller;
//  * scalar stores followed by vector loads of the same data stall store forwarding (Q4_K scales are stored as
//    SIMD8, the 32-weight formats compute block scales in the loop);
//  * shuffles written as SIMD16(a[0], ..., b[15]) of two vectors compile to vshuff64x2 / vpermt2ps when the whole
//    result is used; when only 4-lane pieces are used (SIMD4 stores) LLVM narrows the whole tree to xmm shuffles
//    (still vector code, ~20 instructions per 4 outputs in finishGroup);
//  * a value stored and read back through `pointer + opaque zero` is not forwarded by LLVM: the read stays a memory
//    operand (here the {1to16} broadcast of the FMA);
//  * `@_silgen_name("llvm.prefetch.p0")` gives prefetcht0 (Swift has no prefetch).
// Generated by gen/gen.py from gen/template.swift (the lane expressions are written out by the generator).

/// 16 lanes of pairwise products, lane j = w[2j] x[2j] + w[2j+1] x[2j+1] (vpmaddwd).
/// Written out lane by lane on purpose: a loop or SIMD conversions do not become vpmaddwd.
@inline(__always) func pairDot16(_ w: UnsafePointer<Int16>, _ x: UnsafePointer<Int16>) -> SIMD16<Int32> {
    SIMD16<Int32>(
        Int32(w[0]) &* Int32(x[0]) &+ Int32(w[1]) &* Int32(x[1]),
        Int32(w[2]) &* Int32(x[2]) &+ Int32(w[3]) &* Int32(x[3]),
        Int32(w[4]) &* Int32(x[4]) &+ Int32(w[5]) &* Int32(x[5]),
        Int32(w[6]) &* Int32(x[6]) &+ Int32(w[7]) &* Int32(x[7]),
        Int32(w[8]) &* Int32(x[8]) &+ Int32(w[9]) &* Int32(x[9]),
        Int32(w[10]) &* Int32(x[10]) &+ Int32(w[11]) &* Int32(x[11]),
        Int32(w[12]) &* Int32(x[12]) &+ Int32(w[13]) &* Int32(x[13]),
        Int32(w[14]) &* Int32(x[14]) &+ Int32(w[15]) &* Int32(x[15]),
        Int32(w[16]) &* Int32(x[16]) &+ Int32(w[17]) &* Int32(x[17]),
        Int32(w[18]) &* Int32(x[18]) &+ Int32(w[19]) &* Int32(x[19]),
        Int32(w[20]) &* Int32(x[20]) &+ Int32(w[21]) &* Int32(x[21]),
        Int32(w[22]) &* Int32(x[22]) &+ Int32(w[23]) &* Int32(x[23]),
        Int32(w[24]) &* Int32(x[24]) &+ Int32(w[25]) &* Int32(x[25]),
        Int32(w[26]) &* Int32(x[26]) &+ Int32(w[27]) &* Int32(x[27]),
        Int32(w[28]) &* Int32(x[28]) &+ Int32(w[29]) &* Int32(x[29]),
        Int32(w[30]) &* Int32(x[30]) &+ Int32(w[31]) &* Int32(x[31]))
}

/// Int32 lanes to Float lanes: the lane loop compiles to one vcvtdq2ps (SIMD16<Float>(v) is an outlined call).
@inline(__always) func lanesToFloat(_ v: SIMD16<Int32>) -> SIMD16<Float> {
    var f = SIMD16<Float>()
    for i in 0..<16 { f[i] = Float(v[i]) }
    return f
}

/// Activation rows for the kernels: int16 values, f32 scale and scale * sum per 32 elements.
@usableFromInline struct ActRow {
    let q: UnsafePointer<Int16>, d: UnsafePointer<Float>, ds: UnsafePointer<Float>
}

extension QuantizedActivations {
    /// Row `r` when the rows are `cols` wide. Reading `self.cols` (a class `var`) costs a dynamic exclusivity check
    /// (swift_beginAccess) per read under -O, so the kernels take the width from their caller.
    @inline(__always) func actRow(_ r: Int, cols: Int) -> ActRow {
        let b = r &* (cols / 32)
        return ActRow(q: UnsafePointer(q + r &* cols), d: UnsafePointer(scales + b), ds: UnsafePointer(scaledSums + b))
    }
}

// MARK: Scratch

/// Blocks of 32 weights unpacked per pass (the whole row for rows of up to 2048 weights).
let rowChunkBlocks = 64

/// Scratch bytes `dotRows` needs (per concurrent caller): 4 KB of int16 weights, 3 x 256 B of scales/mins.
public let rowKernelScratchBytes = rowChunkBlocks * (64 + 4 + 4 + 4 * 4) + 4 * 80 * 4 + rowChunkBlocks * 4 * 4 + 64

@usableFromInline struct RowScratch {
    var w: UnsafeMutablePointer<Int16>   // rowChunkBlocks * 32 unpacked weights
    var ws: UnsafeMutablePointer<Float>  // weight scale per 32
    let wm: UnsafeMutablePointer<Float>  // weight min per 32 (Q4_K)
    let comb: UnsafeMutablePointer<Float>  // 4 rows x rowChunkBlocks: ws * activation scale
    let red: UnsafeMutablePointer<Float>  // 2 streams x 2 group slots x 80 floats (see finishGroup)
    /// Opaque zero (see kernel1), read once per call by the entry points: each read of a
    /// global `let` is a swift_once call (with a vzeroupper), which cost ~3% per weight row in the 4-row loop.
    var z = 0
    let xdT: UnsafeMutablePointer<Float>  // 4-row group's activation scales, transposed: block b's four at 4b (see kernel4FusedQ8_0)
    let cb: UnsafeMutablePointer<Float>  // 8 floats: two blocks' four block scales
    var useXdT = false
    @inline(__always) init(_ p: UnsafeMutableRawPointer, z: Int) {
        self.init(p); self.z = z
    }
    @inline(__always) init(_ p: UnsafeMutableRawPointer) {
        red = (p + rowChunkBlocks * (64 + 4 + 4 + 4 * 4)).bindMemory(to: Float.self, capacity: 320 + rowChunkBlocks * 4 + 16)
        xdT = red + 320
        cb = xdT + rowChunkBlocks * 4
        w = p.bindMemory(to: Int16.self, capacity: rowChunkBlocks * 32)
        let f = (p + rowChunkBlocks * 64).bindMemory(to: Float.self, capacity: rowChunkBlocks * 6)
        ws = f
        wm = f + rowChunkBlocks
        comb = f + 2 * rowChunkBlocks
    }
}

/// Zero, but opaque to the optimizer (see kernel1). Read through a pointer: a global `var` would cost a dynamic
/// exclusivity check (swift_beginAccess) per read under -O.
nonisolated(unsafe) let kernelOpaqueZeroBox: UnsafeMutablePointer<Int> = {
    let p = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()
@inline(__always) var kernelOpaqueZero: Int { kernelOpaqueZeroBox.pointee }

/// Activation scales of the (up to 4) rows whose block scales `ws * xd` the unpacking also writes to `comb`
/// (row t at comb + t * rowChunkBlocks), so that the 2- and 4-row kernels can use them as broadcast memory operands.
/// (Computing them in a separate vector loop right after the unpacking stalls: vector loads of freshly scalar-stored
/// `ws` can't be store-forwarded.)
@usableFromInline struct CombRows {
    var d0, d1, d2, d3: UnsafePointer<Float>
    var k: Int
    @inline(__always) init(k: Int, _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow) {
        d0 = x0.d; d1 = x1.d; d2 = x2.d; d3 = x3.d; self.k = k
    }
    /// Writes the scales of 32-weight block `b` (global index `g`) with weight scale `w`.
    @inline(__always) func put(_ s: RowScratch, _ b: Int, _ g: Int, _ w: Float) {
        if k > 0 { s.comb[b] = w * d0[g] }
        if k > 1 { s.comb[rowChunkBlocks &+ b] = w * d1[g] }
        if k > 2 { s.comb[2 &* rowChunkBlocks &+ b] = w * d2[g] }
        if k > 3 { s.comb[3 &* rowChunkBlocks &+ b] = w * d3[g] }
    }
    /// The same for 8 consecutive blocks.
    @inline(__always) func put8(_ s: RowScratch, _ b: Int, _ g: Int, _ w: SIMD8<Float>) {
        @inline(__always) func st(_ t: Int, _ d: UnsafePointer<Float>) {
            UnsafeMutableRawPointer(s.comb + (t &* rowChunkBlocks &+ b)).storeBytes(of: w * load8(d + g), as: SIMD8<Float>.self)
        }
        if k > 0 { st(0, d0) }
        if k > 1 { st(1, d1) }
        if k > 2 { st(2, d2) }
        if k > 3 { st(3, d3) }
    }
}

// MARK: Unpacking (blocks b0 ..< b0 + n of 32 weights; for Q4_K / Q6_K super-blocks b0/8 ..< (b0+n)/8)

@inline(__always) func store32(_ v: SIMD32<Int16>, _ p: UnsafeMutablePointer<Int16>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD32<Int16>.self)
}

/// Block `g` of a Q8_0 row as int16 into `dst`; returns its scale.
@inline(__always) func unpackBlockQ8_0(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float {
    let blk = row + 34 &* g
    let p = (blk + 2).assumingMemoryBound(to: Int8.self)
    store32(SIMD32<Int16>(
            Int16(p[0]),
            Int16(p[1]),
            Int16(p[2]),
            Int16(p[3]),
            Int16(p[4]),
            Int16(p[5]),
            Int16(p[6]),
            Int16(p[7]),
            Int16(p[8]),
            Int16(p[9]),
            Int16(p[10]),
            Int16(p[11]),
            Int16(p[12]),
            Int16(p[13]),
            Int16(p[14]),
            Int16(p[15]),
            Int16(p[16]),
            Int16(p[17]),
            Int16(p[18]),
            Int16(p[19]),
            Int16(p[20]),
            Int16(p[21]),
            Int16(p[22]),
            Int16(p[23]),
            Int16(p[24]),
            Int16(p[25]),
            Int16(p[26]),
            Int16(p[27]),
            Int16(p[28]),
            Int16(p[29]),
            Int16(p[30]),
            Int16(p[31])), dst)
    return kF16(blk, 0)
}

@inline(__always) func unpackBlockQ4_0(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float {
    let blk = row + 18 &* g
    let p = (blk + 2).assumingMemoryBound(to: UInt8.self)
    store32(SIMD32<Int16>(
            Int16(p[0] & 15) &- 8,
            Int16(p[1] & 15) &- 8,
            Int16(p[2] & 15) &- 8,
            Int16(p[3] & 15) &- 8,
            Int16(p[4] & 15) &- 8,
            Int16(p[5] & 15) &- 8,
            Int16(p[6] & 15) &- 8,
            Int16(p[7] & 15) &- 8,
            Int16(p[8] & 15) &- 8,
            Int16(p[9] & 15) &- 8,
            Int16(p[10] & 15) &- 8,
            Int16(p[11] & 15) &- 8,
            Int16(p[12] & 15) &- 8,
            Int16(p[13] & 15) &- 8,
            Int16(p[14] & 15) &- 8,
            Int16(p[15] & 15) &- 8,
            Int16(p[0] >> 4) &- 8,
            Int16(p[1] >> 4) &- 8,
            Int16(p[2] >> 4) &- 8,
            Int16(p[3] >> 4) &- 8,
            Int16(p[4] >> 4) &- 8,
            Int16(p[5] >> 4) &- 8,
            Int16(p[6] >> 4) &- 8,
            Int16(p[7] >> 4) &- 8,
            Int16(p[8] >> 4) &- 8,
            Int16(p[9] >> 4) &- 8,
            Int16(p[10] >> 4) &- 8,
            Int16(p[11] >> 4) &- 8,
            Int16(p[12] >> 4) &- 8,
            Int16(p[13] >> 4) &- 8,
            Int16(p[14] >> 4) &- 8,
            Int16(p[15] >> 4) &- 8), dst)
    return kF16(blk, 0)
}

@inline(never) func unpackQ8_0(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: RowScratch, _ c: CombRows) {
    for b in 0..<n {
        let w = unpackBlockQ8_0(row, b0 &+ b, s.w + 32 &* b)
        s.ws[b] = w
        c.put(s, b, b0 &+ b, w)
    }
}

@inline(never) func unpackQ4_0(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: RowScratch, _ c: CombRows) {
    for b in 0..<n {
        let w = unpackBlockQ4_0(row, b0 &+ b, s.w + 32 &* b)
        s.ws[b] = w
        c.put(s, b, b0 &+ b, w)
    }
}

/// Q5_0's 32 high bits (qh at blk + 2) as lanes: lane j is -1 where bit j is clear, 0 where it is set.
/// Written as whole-vector operations that the standard library implements with vector builtins for concrete types
/// (SIMD32<Int32>(repeating:), init(lowHalf:highHalf:), `.==`; `.&` through SIMDMask, whose concrete `.&` is a
/// builtin while SIMD32's `&` is a scalar lane loop; unsafeBitCast because `SIMDMask(v)` picks a generic init).
/// LLVM recognizes "splat & (1 << lane) == 0" and makes the mask register straight from memory: two `kmovw` + one
/// `kunpckwd`, no vector instruction. (One 32-bit load splatted instead gives vpbroadcastd + vmovd + kmovd + shr +
/// kmovd + kunpckwd; 32 bits per lane are needed because 1 << j does not fit 16-bit lanes.)
@inline(__always) func q5ClearMask(_ blk: UnsafeRawPointer) -> SIMD32<Int32> {
    typealias M = SIMDMask<SIMD32<Int32>>
    let lo = Int32(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
    let hi = Int32(blk.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
    let q = SIMD32<Int32>(lowHalf: SIMD16(repeating: lo), highHalf: SIMD16(repeating: hi))
    let bits = SIMD32<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
                             1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
    let t = unsafeBitCast(unsafeBitCast(q, to: M.self) .& unsafeBitCast(bits, to: M.self), to: SIMD32<Int32>.self)
    return (t .== SIMD32<Int32>())._storage
}

/// Block `g` of a Q5_0 row as int16 (q - 16) into `dst`; returns its scale.
/// The nibbles are one written-out SIMD32 (`Int16(p[j]) & 15`, `Int16(p[j]) >> 4`: vpmovzxbw from memory, vpand,
/// vpsrlw, vinserti64x4; the form `Int16(p[j] & 15)` compiled to 7 instructions with vpsrlvw + vpmovwb), then
/// lane j = n[j] where the high bit is set, n[j] - 16 where it is clear: vporq (n | 0xFFF0 == n - 16 for n < 16)
/// + one masked vmovdqu16 with the qh mask register. 13 instructions per block (was 28: 4 table lookups with
/// index arithmetic and inserts, a 7-instruction nibble unpack, vpaddw).
/// Measured (q5lab, 2-vCPU Zen 4 shared, per core, thread CPU time, best of 12 alternating rounds x 10 reps, 2048 rows
/// x 20 blocks hot in L2, ~3.7 GHz): unpack 1.77 -> 1.13 ns/block (6.5 -> 4.2 cycles; Q8_0's unpack: 0.92 ns, 3.4
/// cycles); unpack + kernel1 per 640-wide row 63.2 -> 52.5 ns. Through dotRowsMany (q5lab/prod, 4096 rows x 640,
/// G MAC/s): 1-row 10.7 -> 12.3, 2-row 17.1 -> 18.7, 4-row 28.7 -> 32.1 (-> 29.7 in one run of three); 2048 wide:
/// 11.9 -> 14.8, 19.1 -> 22.7, 27.4 -> 30.5; 200000 rows streamed from DRAM: 10.3 -> 11.4, 16.6 -> 18.0, 26.8 -> 30.5.
/// Bit-identical: all 65536 16-bit patterns in both qh halves + 40960 random blocks vs a scalar reference; every
/// dotRowsMany output (1, 2, 4 rows) equal to the table version's.
@inline(__always) func unpackBlockQ5_0(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float {
    let blk = row + 22 &* g
    let cm = q5ClearMask(blk)
    let p = (blk + 6).assumingMemoryBound(to: UInt8.self)
    let n = SIMD32<Int16>(
            Int16(p[0]) & 15,
            Int16(p[1]) & 15,
            Int16(p[2]) & 15,
            Int16(p[3]) & 15,
            Int16(p[4]) & 15,
            Int16(p[5]) & 15,
            Int16(p[6]) & 15,
            Int16(p[7]) & 15,
            Int16(p[8]) & 15,
            Int16(p[9]) & 15,
            Int16(p[10]) & 15,
            Int16(p[11]) & 15,
            Int16(p[12]) & 15,
            Int16(p[13]) & 15,
            Int16(p[14]) & 15,
            Int16(p[15]) & 15,
            Int16(p[0]) >> 4,
            Int16(p[1]) >> 4,
            Int16(p[2]) >> 4,
            Int16(p[3]) >> 4,
            Int16(p[4]) >> 4,
            Int16(p[5]) >> 4,
            Int16(p[6]) >> 4,
            Int16(p[7]) >> 4,
            Int16(p[8]) >> 4,
            Int16(p[9]) >> 4,
            Int16(p[10]) >> 4,
            Int16(p[11]) >> 4,
            Int16(p[12]) >> 4,
            Int16(p[13]) >> 4,
            Int16(p[14]) >> 4,
            Int16(p[15]) >> 4)
    store32(SIMD32<Int16>(
            cm[0] == 0 ? n[0] : n[0] &- 16,
            cm[1] == 0 ? n[1] : n[1] &- 16,
            cm[2] == 0 ? n[2] : n[2] &- 16,
            cm[3] == 0 ? n[3] : n[3] &- 16,
            cm[4] == 0 ? n[4] : n[4] &- 16,
            cm[5] == 0 ? n[5] : n[5] &- 16,
            cm[6] == 0 ? n[6] : n[6] &- 16,
            cm[7] == 0 ? n[7] : n[7] &- 16,
            cm[8] == 0 ? n[8] : n[8] &- 16,
            cm[9] == 0 ? n[9] : n[9] &- 16,
            cm[10] == 0 ? n[10] : n[10] &- 16,
            cm[11] == 0 ? n[11] : n[11] &- 16,
            cm[12] == 0 ? n[12] : n[12] &- 16,
            cm[13] == 0 ? n[13] : n[13] &- 16,
            cm[14] == 0 ? n[14] : n[14] &- 16,
            cm[15] == 0 ? n[15] : n[15] &- 16,
            cm[16] == 0 ? n[16] : n[16] &- 16,
            cm[17] == 0 ? n[17] : n[17] &- 16,
            cm[18] == 0 ? n[18] : n[18] &- 16,
            cm[19] == 0 ? n[19] : n[19] &- 16,
            cm[20] == 0 ? n[20] : n[20] &- 16,
            cm[21] == 0 ? n[21] : n[21] &- 16,
            cm[22] == 0 ? n[22] : n[22] &- 16,
            cm[23] == 0 ? n[23] : n[23] &- 16,
            cm[24] == 0 ? n[24] : n[24] &- 16,
            cm[25] == 0 ? n[25] : n[25] &- 16,
            cm[26] == 0 ? n[26] : n[26] &- 16,
            cm[27] == 0 ? n[27] : n[27] &- 16,
            cm[28] == 0 ? n[28] : n[28] &- 16,
            cm[29] == 0 ? n[29] : n[29] &- 16,
            cm[30] == 0 ? n[30] : n[30] &- 16,
            cm[31] == 0 ? n[31] : n[31] &- 16), dst)
    return kF16(blk, 0)
}

@inline(never) func unpackQ5_0(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: RowScratch, _ c: CombRows) {
    for b in 0..<n {
        let w = unpackBlockQ5_0(row, b0 &+ b, s.w + 32 &* b)
        s.ws[b] = w
        c.put(s, b, b0 &+ b, w)
    }
}

@inline(never) func unpackQ4_K(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: RowScratch, _ c: CombRows) {
    for sb in 0..<n / 8 {
        let blk = row + 144 &* (b0 / 8 &+ sb)
        let d = kF16(blk, 0), dmin = kF16(blk, 2)
        for c in 0..<4 {
            let p = (blk + 16 + 32 &* c).assumingMemoryBound(to: UInt8.self)
            let j = 8 &* sb &+ 2 &* c
            store32(SIMD32<Int16>(
            Int16(p[0] & 15),
            Int16(p[1] & 15),
            Int16(p[2] & 15),
            Int16(p[3] & 15),
            Int16(p[4] & 15),
            Int16(p[5] & 15),
            Int16(p[6] & 15),
            Int16(p[7] & 15),
            Int16(p[8] & 15),
            Int16(p[9] & 15),
            Int16(p[10] & 15),
            Int16(p[11] & 15),
            Int16(p[12] & 15),
            Int16(p[13] & 15),
            Int16(p[14] & 15),
            Int16(p[15] & 15),
            Int16(p[16] & 15),
            Int16(p[17] & 15),
            Int16(p[18] & 15),
            Int16(p[19] & 15),
            Int16(p[20] & 15),
            Int16(p[21] & 15),
            Int16(p[22] & 15),
            Int16(p[23] & 15),
            Int16(p[24] & 15),
            Int16(p[25] & 15),
            Int16(p[26] & 15),
            Int16(p[27] & 15),
            Int16(p[28] & 15),
            Int16(p[29] & 15),
            Int16(p[30] & 15),
            Int16(p[31] & 15)), s.w + 32 &* j)
            store32(SIMD32<Int16>(
            Int16(p[0] >> 4),
            Int16(p[1] >> 4),
            Int16(p[2] >> 4),
            Int16(p[3] >> 4),
            Int16(p[4] >> 4),
            Int16(p[5] >> 4),
            Int16(p[6] >> 4),
            Int16(p[7] >> 4),
            Int16(p[8] >> 4),
            Int16(p[9] >> 4),
            Int16(p[10] >> 4),
            Int16(p[11] >> 4),
            Int16(p[12] >> 4),
            Int16(p[13] >> 4),
            Int16(p[14] >> 4),
            Int16(p[15] >> 4),
            Int16(p[16] >> 4),
            Int16(p[17] >> 4),
            Int16(p[18] >> 4),
            Int16(p[19] >> 4),
            Int16(p[20] >> 4),
            Int16(p[21] >> 4),
            Int16(p[22] >> 4),
            Int16(p[23] >> 4),
            Int16(p[24] >> 4),
            Int16(p[25] >> 4),
            Int16(p[26] >> 4),
            Int16(p[27] >> 4),
            Int16(p[28] >> 4),
            Int16(p[29] >> 4),
            Int16(p[30] >> 4),
            Int16(p[31] >> 4)), s.w + (32 &* j &+ 32))
        }
        // Scales and mins as one 8-lane store each (the min term loads them as vectors: scalar stores would stall
        // store forwarding).
        let sm = blk + 4
        let (s0, m0) = kScaleMinQ4K(sm, 0), (s1, m1) = kScaleMinQ4K(sm, 1), (s2, m2) = kScaleMinQ4K(sm, 2), (s3, m3) = kScaleMinQ4K(sm, 3)
        let (s4, m4) = kScaleMinQ4K(sm, 4), (s5, m5) = kScaleMinQ4K(sm, 5), (s6, m6) = kScaleMinQ4K(sm, 6), (s7, m7) = kScaleMinQ4K(sm, 7)
        let ws = SIMD8<Float>(d * s0, d * s1, d * s2, d * s3, d * s4, d * s5, d * s6, d * s7)
        UnsafeMutableRawPointer(s.ws + 8 &* sb).storeBytes(of: ws, as: SIMD8<Float>.self)
        c.put8(s, 8 &* sb, b0 &+ 8 &* sb, ws)
        UnsafeMutableRawPointer(s.wm + 8 &* sb).storeBytes(of: SIMD8<Float>(dmin * m0, dmin * m1, dmin * m2, dmin * m3, dmin * m4, dmin * m5, dmin * m6, dmin * m7), as: SIMD8<Float>.self)
    }
}

@inline(never) func unpackQ6_K(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: RowScratch, _ c: CombRows) {
    for sb in 0..<n / 8 {
        let blk = row + 210 &* (b0 / 8 &+ sb)
        let p = blk.assumingMemoryBound(to: UInt8.self)
        let d = kF16(blk, 208)
        // Sub-block (c, t) of 32: elements 128c + 32t ..< +32; 6-bit q from ql (nibble) and qh (2 bits), minus 32,
        // times the int8 scale of each 16 (|q| <= 32 * 128 fits Int16).
        do {
                let s0 = Int16(Int8(bitPattern: p[192])), s1 = Int16(Int8(bitPattern: p[193]))
                store32(SIMD32<Int16>(
            ((Int16(p[0]) & 15) | ((Int16(p[128]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[1]) & 15) | ((Int16(p[129]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[2]) & 15) | ((Int16(p[130]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[3]) & 15) | ((Int16(p[131]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[4]) & 15) | ((Int16(p[132]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[5]) & 15) | ((Int16(p[133]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[6]) & 15) | ((Int16(p[134]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[7]) & 15) | ((Int16(p[135]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[8]) & 15) | ((Int16(p[136]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[9]) & 15) | ((Int16(p[137]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[10]) & 15) | ((Int16(p[138]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[11]) & 15) | ((Int16(p[139]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[12]) & 15) | ((Int16(p[140]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[13]) & 15) | ((Int16(p[141]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[14]) & 15) | ((Int16(p[142]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[15]) & 15) | ((Int16(p[143]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[16]) & 15) | ((Int16(p[144]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[17]) & 15) | ((Int16(p[145]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[18]) & 15) | ((Int16(p[146]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[19]) & 15) | ((Int16(p[147]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[20]) & 15) | ((Int16(p[148]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[21]) & 15) | ((Int16(p[149]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[22]) & 15) | ((Int16(p[150]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[23]) & 15) | ((Int16(p[151]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[24]) & 15) | ((Int16(p[152]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[25]) & 15) | ((Int16(p[153]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[26]) & 15) | ((Int16(p[154]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[27]) & 15) | ((Int16(p[155]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[28]) & 15) | ((Int16(p[156]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[29]) & 15) | ((Int16(p[157]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[30]) & 15) | ((Int16(p[158]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[31]) & 15) | ((Int16(p[159]) >> 0) & 3) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 0))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[194])), s1 = Int16(Int8(bitPattern: p[195]))
                store32(SIMD32<Int16>(
            ((Int16(p[32]) & 15) | ((Int16(p[128]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[33]) & 15) | ((Int16(p[129]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[34]) & 15) | ((Int16(p[130]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[35]) & 15) | ((Int16(p[131]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[36]) & 15) | ((Int16(p[132]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[37]) & 15) | ((Int16(p[133]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[38]) & 15) | ((Int16(p[134]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[39]) & 15) | ((Int16(p[135]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[40]) & 15) | ((Int16(p[136]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[41]) & 15) | ((Int16(p[137]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[42]) & 15) | ((Int16(p[138]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[43]) & 15) | ((Int16(p[139]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[44]) & 15) | ((Int16(p[140]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[45]) & 15) | ((Int16(p[141]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[46]) & 15) | ((Int16(p[142]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[47]) & 15) | ((Int16(p[143]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[48]) & 15) | ((Int16(p[144]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[49]) & 15) | ((Int16(p[145]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[50]) & 15) | ((Int16(p[146]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[51]) & 15) | ((Int16(p[147]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[52]) & 15) | ((Int16(p[148]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[53]) & 15) | ((Int16(p[149]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[54]) & 15) | ((Int16(p[150]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[55]) & 15) | ((Int16(p[151]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[56]) & 15) | ((Int16(p[152]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[57]) & 15) | ((Int16(p[153]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[58]) & 15) | ((Int16(p[154]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[59]) & 15) | ((Int16(p[155]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[60]) & 15) | ((Int16(p[156]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[61]) & 15) | ((Int16(p[157]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[62]) & 15) | ((Int16(p[158]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[63]) & 15) | ((Int16(p[159]) >> 2) & 3) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 1))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[196])), s1 = Int16(Int8(bitPattern: p[197]))
                store32(SIMD32<Int16>(
            ((Int16(p[0]) >> 4) | ((Int16(p[128]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[1]) >> 4) | ((Int16(p[129]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[2]) >> 4) | ((Int16(p[130]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[3]) >> 4) | ((Int16(p[131]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[4]) >> 4) | ((Int16(p[132]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[5]) >> 4) | ((Int16(p[133]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[6]) >> 4) | ((Int16(p[134]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[7]) >> 4) | ((Int16(p[135]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[8]) >> 4) | ((Int16(p[136]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[9]) >> 4) | ((Int16(p[137]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[10]) >> 4) | ((Int16(p[138]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[11]) >> 4) | ((Int16(p[139]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[12]) >> 4) | ((Int16(p[140]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[13]) >> 4) | ((Int16(p[141]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[14]) >> 4) | ((Int16(p[142]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[15]) >> 4) | ((Int16(p[143]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[16]) >> 4) | ((Int16(p[144]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[17]) >> 4) | ((Int16(p[145]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[18]) >> 4) | ((Int16(p[146]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[19]) >> 4) | ((Int16(p[147]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[20]) >> 4) | ((Int16(p[148]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[21]) >> 4) | ((Int16(p[149]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[22]) >> 4) | ((Int16(p[150]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[23]) >> 4) | ((Int16(p[151]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[24]) >> 4) | ((Int16(p[152]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[25]) >> 4) | ((Int16(p[153]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[26]) >> 4) | ((Int16(p[154]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[27]) >> 4) | ((Int16(p[155]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[28]) >> 4) | ((Int16(p[156]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[29]) >> 4) | ((Int16(p[157]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[30]) >> 4) | ((Int16(p[158]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[31]) >> 4) | ((Int16(p[159]) >> 4) & 3) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 2))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[198])), s1 = Int16(Int8(bitPattern: p[199]))
                store32(SIMD32<Int16>(
            ((Int16(p[32]) >> 4) | (Int16(p[128]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[33]) >> 4) | (Int16(p[129]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[34]) >> 4) | (Int16(p[130]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[35]) >> 4) | (Int16(p[131]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[36]) >> 4) | (Int16(p[132]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[37]) >> 4) | (Int16(p[133]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[38]) >> 4) | (Int16(p[134]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[39]) >> 4) | (Int16(p[135]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[40]) >> 4) | (Int16(p[136]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[41]) >> 4) | (Int16(p[137]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[42]) >> 4) | (Int16(p[138]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[43]) >> 4) | (Int16(p[139]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[44]) >> 4) | (Int16(p[140]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[45]) >> 4) | (Int16(p[141]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[46]) >> 4) | (Int16(p[142]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[47]) >> 4) | (Int16(p[143]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[48]) >> 4) | (Int16(p[144]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[49]) >> 4) | (Int16(p[145]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[50]) >> 4) | (Int16(p[146]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[51]) >> 4) | (Int16(p[147]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[52]) >> 4) | (Int16(p[148]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[53]) >> 4) | (Int16(p[149]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[54]) >> 4) | (Int16(p[150]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[55]) >> 4) | (Int16(p[151]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[56]) >> 4) | (Int16(p[152]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[57]) >> 4) | (Int16(p[153]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[58]) >> 4) | (Int16(p[154]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[59]) >> 4) | (Int16(p[155]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[60]) >> 4) | (Int16(p[156]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[61]) >> 4) | (Int16(p[157]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[62]) >> 4) | (Int16(p[158]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[63]) >> 4) | (Int16(p[159]) >> 6) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 3))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[200])), s1 = Int16(Int8(bitPattern: p[201]))
                store32(SIMD32<Int16>(
            ((Int16(p[64]) & 15) | ((Int16(p[160]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[65]) & 15) | ((Int16(p[161]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[66]) & 15) | ((Int16(p[162]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[67]) & 15) | ((Int16(p[163]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[68]) & 15) | ((Int16(p[164]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[69]) & 15) | ((Int16(p[165]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[70]) & 15) | ((Int16(p[166]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[71]) & 15) | ((Int16(p[167]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[72]) & 15) | ((Int16(p[168]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[73]) & 15) | ((Int16(p[169]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[74]) & 15) | ((Int16(p[170]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[75]) & 15) | ((Int16(p[171]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[76]) & 15) | ((Int16(p[172]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[77]) & 15) | ((Int16(p[173]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[78]) & 15) | ((Int16(p[174]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[79]) & 15) | ((Int16(p[175]) >> 0) & 3) << 4 &- 32) &* s0,
            ((Int16(p[80]) & 15) | ((Int16(p[176]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[81]) & 15) | ((Int16(p[177]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[82]) & 15) | ((Int16(p[178]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[83]) & 15) | ((Int16(p[179]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[84]) & 15) | ((Int16(p[180]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[85]) & 15) | ((Int16(p[181]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[86]) & 15) | ((Int16(p[182]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[87]) & 15) | ((Int16(p[183]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[88]) & 15) | ((Int16(p[184]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[89]) & 15) | ((Int16(p[185]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[90]) & 15) | ((Int16(p[186]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[91]) & 15) | ((Int16(p[187]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[92]) & 15) | ((Int16(p[188]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[93]) & 15) | ((Int16(p[189]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[94]) & 15) | ((Int16(p[190]) >> 0) & 3) << 4 &- 32) &* s1,
            ((Int16(p[95]) & 15) | ((Int16(p[191]) >> 0) & 3) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 4))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[202])), s1 = Int16(Int8(bitPattern: p[203]))
                store32(SIMD32<Int16>(
            ((Int16(p[96]) & 15) | ((Int16(p[160]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[97]) & 15) | ((Int16(p[161]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[98]) & 15) | ((Int16(p[162]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[99]) & 15) | ((Int16(p[163]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[100]) & 15) | ((Int16(p[164]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[101]) & 15) | ((Int16(p[165]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[102]) & 15) | ((Int16(p[166]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[103]) & 15) | ((Int16(p[167]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[104]) & 15) | ((Int16(p[168]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[105]) & 15) | ((Int16(p[169]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[106]) & 15) | ((Int16(p[170]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[107]) & 15) | ((Int16(p[171]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[108]) & 15) | ((Int16(p[172]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[109]) & 15) | ((Int16(p[173]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[110]) & 15) | ((Int16(p[174]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[111]) & 15) | ((Int16(p[175]) >> 2) & 3) << 4 &- 32) &* s0,
            ((Int16(p[112]) & 15) | ((Int16(p[176]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[113]) & 15) | ((Int16(p[177]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[114]) & 15) | ((Int16(p[178]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[115]) & 15) | ((Int16(p[179]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[116]) & 15) | ((Int16(p[180]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[117]) & 15) | ((Int16(p[181]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[118]) & 15) | ((Int16(p[182]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[119]) & 15) | ((Int16(p[183]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[120]) & 15) | ((Int16(p[184]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[121]) & 15) | ((Int16(p[185]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[122]) & 15) | ((Int16(p[186]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[123]) & 15) | ((Int16(p[187]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[124]) & 15) | ((Int16(p[188]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[125]) & 15) | ((Int16(p[189]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[126]) & 15) | ((Int16(p[190]) >> 2) & 3) << 4 &- 32) &* s1,
            ((Int16(p[127]) & 15) | ((Int16(p[191]) >> 2) & 3) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 5))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[204])), s1 = Int16(Int8(bitPattern: p[205]))
                store32(SIMD32<Int16>(
            ((Int16(p[64]) >> 4) | ((Int16(p[160]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[65]) >> 4) | ((Int16(p[161]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[66]) >> 4) | ((Int16(p[162]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[67]) >> 4) | ((Int16(p[163]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[68]) >> 4) | ((Int16(p[164]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[69]) >> 4) | ((Int16(p[165]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[70]) >> 4) | ((Int16(p[166]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[71]) >> 4) | ((Int16(p[167]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[72]) >> 4) | ((Int16(p[168]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[73]) >> 4) | ((Int16(p[169]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[74]) >> 4) | ((Int16(p[170]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[75]) >> 4) | ((Int16(p[171]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[76]) >> 4) | ((Int16(p[172]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[77]) >> 4) | ((Int16(p[173]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[78]) >> 4) | ((Int16(p[174]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[79]) >> 4) | ((Int16(p[175]) >> 4) & 3) << 4 &- 32) &* s0,
            ((Int16(p[80]) >> 4) | ((Int16(p[176]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[81]) >> 4) | ((Int16(p[177]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[82]) >> 4) | ((Int16(p[178]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[83]) >> 4) | ((Int16(p[179]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[84]) >> 4) | ((Int16(p[180]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[85]) >> 4) | ((Int16(p[181]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[86]) >> 4) | ((Int16(p[182]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[87]) >> 4) | ((Int16(p[183]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[88]) >> 4) | ((Int16(p[184]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[89]) >> 4) | ((Int16(p[185]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[90]) >> 4) | ((Int16(p[186]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[91]) >> 4) | ((Int16(p[187]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[92]) >> 4) | ((Int16(p[188]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[93]) >> 4) | ((Int16(p[189]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[94]) >> 4) | ((Int16(p[190]) >> 4) & 3) << 4 &- 32) &* s1,
            ((Int16(p[95]) >> 4) | ((Int16(p[191]) >> 4) & 3) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 6))
            }
            do {
                let s0 = Int16(Int8(bitPattern: p[206])), s1 = Int16(Int8(bitPattern: p[207]))
                store32(SIMD32<Int16>(
            ((Int16(p[96]) >> 4) | (Int16(p[160]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[97]) >> 4) | (Int16(p[161]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[98]) >> 4) | (Int16(p[162]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[99]) >> 4) | (Int16(p[163]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[100]) >> 4) | (Int16(p[164]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[101]) >> 4) | (Int16(p[165]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[102]) >> 4) | (Int16(p[166]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[103]) >> 4) | (Int16(p[167]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[104]) >> 4) | (Int16(p[168]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[105]) >> 4) | (Int16(p[169]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[106]) >> 4) | (Int16(p[170]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[107]) >> 4) | (Int16(p[171]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[108]) >> 4) | (Int16(p[172]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[109]) >> 4) | (Int16(p[173]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[110]) >> 4) | (Int16(p[174]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[111]) >> 4) | (Int16(p[175]) >> 6) << 4 &- 32) &* s0,
            ((Int16(p[112]) >> 4) | (Int16(p[176]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[113]) >> 4) | (Int16(p[177]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[114]) >> 4) | (Int16(p[178]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[115]) >> 4) | (Int16(p[179]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[116]) >> 4) | (Int16(p[180]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[117]) >> 4) | (Int16(p[181]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[118]) >> 4) | (Int16(p[182]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[119]) >> 4) | (Int16(p[183]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[120]) >> 4) | (Int16(p[184]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[121]) >> 4) | (Int16(p[185]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[122]) >> 4) | (Int16(p[186]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[123]) >> 4) | (Int16(p[187]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[124]) >> 4) | (Int16(p[188]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[125]) >> 4) | (Int16(p[189]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[126]) >> 4) | (Int16(p[190]) >> 6) << 4 &- 32) &* s1,
            ((Int16(p[127]) >> 4) | (Int16(p[191]) >> 6) << 4 &- 32) &* s1), s.w + 32 &* (8 &* sb &+ 7))
            }
        let ws = SIMD8<Float>(repeating: d)
        UnsafeMutableRawPointer(s.ws + 8 &* sb).storeBytes(of: ws, as: SIMD8<Float>.self)
        c.put8(s, 8 &* sb, b0 &+ 8 &* sb, ws)
    }
}

@inline(__always) func unpack(_ type: TensorType, _ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: RowScratch, _ c: CombRows) {
    switch type {
    case .q8_0: unpackQ8_0(row, b0, n, s, c)
    case .q4_0: unpackQ4_0(row, b0, n, s, c)
    case .q5_0: unpackQ5_0(row, b0, n, s, c)
    case .q4_K: unpackQ4_K(row, b0, n, s, c)
    case .q6_K: unpackQ6_K(row, b0, n, s, c)
    default: preconditionFailure("no integer row kernel for \(type)")
    }
}

// MARK: Kernels over unpacked blocks b0 ..< b0 + n (accumulators carried across chunks)

/// One activation row's accumulators: 16 f32 lanes for the even blocks, 16 for the odd ones (two FMA chains), and
/// the min term.
@usableFromInline struct RowAcc {
    var e = SIMD16<Float>(), o = SIMD16<Float>()
    var m = SIMD8<Float>()  // min term (Q4_K), 8 lanes: sub-block j of each super-block in lane j
    /// The min term's 8 lanes summed as a fixed tree.
    @inline(__always) var minTerm: Float { ((m[0] + m[4]) + (m[2] + m[6])) + ((m[1] + m[5]) + (m[3] + m[7])) }
    /// Sum of the 32 lanes as a fixed tree (SIMD's .sum() is a serial chain of 15 adds), minus the min term.
    @inline(__always) var result: Float {
        let a = e + o
        let h = SIMD8<Float>(a[0] + a[8], a[1] + a[9], a[2] + a[10], a[3] + a[11], a[4] + a[12], a[5] + a[13], a[6] + a[14], a[7] + a[15])
        let q = SIMD4<Float>(h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7])
        return ((q[0] + q[2]) + (q[1] + q[3])) - minTerm
    }
}

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

/// Block b's 16 f32 products (lane sums) for activation row x at global block index o32 (vpmaddwd, vcvtdq2ps).
@inline(__always) func blockLanes(_ s: RowScratch, _ b: Int, _ x: ActRow, _ g: Int) -> SIMD16<Float> {
    lanesToFloat(pairDot16(UnsafePointer(s.w + 32 &* b), x.q + 32 &* g))
}

@inline(__always)
func kernel1(_ s: RowScratch, _ b0: Int, _ n: Int, _ hasMin: Bool, _ x0: ActRow, _ a0: inout RowAcc) {
    var e0 = a0.e, o0 = a0.o
    // Alone, the block product is mangled by instcombine into 64-bit multiplies (vpmuldq + vcvtqq2ps); added to an
    // opaque zero it stays vpdpwssd.
    let z = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: s.z))
    @inline(__always) func lanes(_ b: Int) -> SIMD16<Float> {
        lanesToFloat(z &+ pairDot16(UnsafePointer(s.w + 32 &* b), x0.q + 32 &* (b0 &+ b)))
    }
    var b = 0
    while b &+ 2 <= n {
        e0 = e0.addingProduct(lanes(b), SIMD16(repeating: s.ws[b] * x0.d[b0 &+ b]))
        o0 = o0.addingProduct(lanes(b &+ 1), SIMD16(repeating: s.ws[b &+ 1] * x0.d[b0 &+ b &+ 1]))
        b &+= 2
    }
    if b < n { e0 = e0.addingProduct(lanes(b), SIMD16(repeating: s.ws[b] * x0.d[b0 &+ b])) }
    a0.e = e0; a0.o = o0
    if hasMin {
        var m0 = a0.m
        for j in stride(from: 0, to: n, by: 8) { m0 = m0.addingProduct(load8(s.wm + j), load8(x0.ds + b0 + j)) }
        a0.m = m0
    }
}

@inline(__always)
func kernel2(_ s: RowScratch, _ b0: Int, _ n: Int, _ hasMin: Bool, _ pre: Bool, _ x0: ActRow, _ x1: ActRow, _ a0: inout RowAcc, _ a1: inout RowAcc) {
    let c0 = UnsafePointer(s.comb), c1 = c0 + rowChunkBlocks
    var e0 = a0.e, o0 = a0.o, e1 = a1.e, o1 = a1.o
    var b = 0
    while b &+ 2 <= n {
        e0 = e0.addingProduct(blockLanes(s, b, x0, b0 &+ b), SIMD16(repeating: pre ? c0[b] : s.ws[b] * x0.d[b0 &+ b]))
        e1 = e1.addingProduct(blockLanes(s, b, x1, b0 &+ b), SIMD16(repeating: pre ? c1[b] : s.ws[b] * x1.d[b0 &+ b]))
        o0 = o0.addingProduct(blockLanes(s, b &+ 1, x0, b0 &+ b &+ 1), SIMD16(repeating: pre ? c0[b &+ 1] : s.ws[b &+ 1] * x0.d[b0 &+ b &+ 1]))
        o1 = o1.addingProduct(blockLanes(s, b &+ 1, x1, b0 &+ b &+ 1), SIMD16(repeating: pre ? c1[b &+ 1] : s.ws[b &+ 1] * x1.d[b0 &+ b &+ 1]))
        b &+= 2
    }
    if b < n {
        e0 = e0.addingProduct(blockLanes(s, b, x0, b0 &+ b), SIMD16(repeating: pre ? c0[b] : s.ws[b] * x0.d[b0 &+ b]))
        e1 = e1.addingProduct(blockLanes(s, b, x1, b0 &+ b), SIMD16(repeating: pre ? c1[b] : s.ws[b] * x1.d[b0 &+ b]))
    }
    a0.e = e0; a0.o = o0; a1.e = e1; a1.o = o1
    if hasMin {
        var m0 = a0.m, m1 = a1.m
        for j in stride(from: 0, to: n, by: 8) {
            let wm = load8(s.wm + j)
            m0 = m0.addingProduct(wm, load8(x0.ds + b0 + j))
            m1 = m1.addingProduct(wm, load8(x1.ds + b0 + j))
        }
        a0.m = m0; a1.m = m1
    }
}

@inline(__always)
func kernel4(_ s: RowScratch, _ b0: Int, _ n: Int, _ hasMin: Bool, _ pre: Bool, _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
             _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc) {
    let c0 = UnsafePointer(s.comb), c1 = c0 + rowChunkBlocks, c2 = c1 + rowChunkBlocks, c3 = c2 + rowChunkBlocks
    var e0 = a0.e, o0 = a0.o, e1 = a1.e, o1 = a1.o, e2 = a2.e, o2 = a2.o, e3 = a3.e, o3 = a3.o
    var b = 0
    while b &+ 2 <= n {
        e0 = e0.addingProduct(blockLanes(s, b, x0, b0 &+ b), SIMD16(repeating: pre ? c0[b] : s.ws[b] * x0.d[b0 &+ b]))
        e1 = e1.addingProduct(blockLanes(s, b, x1, b0 &+ b), SIMD16(repeating: pre ? c1[b] : s.ws[b] * x1.d[b0 &+ b]))
        e2 = e2.addingProduct(blockLanes(s, b, x2, b0 &+ b), SIMD16(repeating: pre ? c2[b] : s.ws[b] * x2.d[b0 &+ b]))
        e3 = e3.addingProduct(blockLanes(s, b, x3, b0 &+ b), SIMD16(repeating: pre ? c3[b] : s.ws[b] * x3.d[b0 &+ b]))
        o0 = o0.addingProduct(blockLanes(s, b &+ 1, x0, b0 &+ b &+ 1), SIMD16(repeating: pre ? c0[b &+ 1] : s.ws[b &+ 1] * x0.d[b0 &+ b &+ 1]))
        o1 = o1.addingProduct(blockLanes(s, b &+ 1, x1, b0 &+ b &+ 1), SIMD16(repeating: pre ? c1[b &+ 1] : s.ws[b &+ 1] * x1.d[b0 &+ b &+ 1]))
        o2 = o2.addingProduct(blockLanes(s, b &+ 1, x2, b0 &+ b &+ 1), SIMD16(repeating: pre ? c2[b &+ 1] : s.ws[b &+ 1] * x2.d[b0 &+ b &+ 1]))
        o3 = o3.addingProduct(blockLanes(s, b &+ 1, x3, b0 &+ b &+ 1), SIMD16(repeating: pre ? c3[b &+ 1] : s.ws[b &+ 1] * x3.d[b0 &+ b &+ 1]))
        b &+= 2
    }
    if b < n {
        e0 = e0.addingProduct(blockLanes(s, b, x0, b0 &+ b), SIMD16(repeating: pre ? c0[b] : s.ws[b] * x0.d[b0 &+ b]))
        e1 = e1.addingProduct(blockLanes(s, b, x1, b0 &+ b), SIMD16(repeating: pre ? c1[b] : s.ws[b] * x1.d[b0 &+ b]))
        e2 = e2.addingProduct(blockLanes(s, b, x2, b0 &+ b), SIMD16(repeating: pre ? c2[b] : s.ws[b] * x2.d[b0 &+ b]))
        e3 = e3.addingProduct(blockLanes(s, b, x3, b0 &+ b), SIMD16(repeating: pre ? c3[b] : s.ws[b] * x3.d[b0 &+ b]))
    }
    a0.e = e0; a0.o = o0; a1.e = e1; a1.o = o1; a2.e = e2; a2.o = o2; a3.e = e3; a3.o = o3
    if hasMin {
        var m0 = a0.m, m1 = a1.m, m2 = a2.m, m3 = a3.m
        for j in stride(from: 0, to: n, by: 8) {
            let wm = load8(s.wm + j)
            m0 = m0.addingProduct(wm, load8(x0.ds + b0 + j))
            m1 = m1.addingProduct(wm, load8(x1.ds + b0 + j))
            m2 = m2.addingProduct(wm, load8(x2.ds + b0 + j))
            m3 = m3.addingProduct(wm, load8(x3.ds + b0 + j))
        }
        a0.m = m0; a1.m = m1; a2.m = m2; a3.m = m3
    }
}

/// One row of Q8_0 (the other formats measured no faster fused), unpacking fused into the loop (each block is stored to the scratch and read back
/// through a pointer the optimizer cannot relate to the store, so it stays a memory operand of vpdpwssd): the
/// weight loads overlap the arithmetic. Same arithmetic as `kernel1`.
@inline(__always)
func kernel1FusedQ8_0(_ row: UnsafeRawPointer, _ nb: Int, _ s: RowScratch, _ x0: ActRow) -> Float {
    let z = s.z, zv = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: z))
    @inline(__always) func unpackTo(_ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float { unpackBlockQ8_0(row, g, dst) }
    var a0 = RowAcc()
    var e0 = a0.e, o0 = a0.o
    var b = 0
    let w0 = s.w, w1 = s.w + 32
    while b &+ 2 <= nb {
        let d0 = unpackTo(b, w0), d1 = unpackTo(b &+ 1, w1)
        let l0 = lanesToFloat(zv &+ pairDot16(UnsafePointer(w0 + z), x0.q + 32 &* b))
        let l1 = lanesToFloat(zv &+ pairDot16(UnsafePointer(w1 + z), x0.q + (32 &* b &+ 32)))
        e0 = e0.addingProduct(l0, SIMD16(repeating: d0 * x0.d[b]))
        o0 = o0.addingProduct(l1, SIMD16(repeating: d1 * x0.d[b &+ 1]))
        b &+= 2
    }
    if b < nb {
        let d0 = unpackTo(b, w0)
        e0 = e0.addingProduct(lanesToFloat(zv &+ pairDot16(UnsafePointer(w0 + z), x0.q + 32 &* b)), SIMD16(repeating: d0 * x0.d[b]))
    }
    a0.e = e0; a0.o = o0
    return a0.result
}

/// Four rows of Q8_0, unpacking fused into the loop (see kernel1FusedQ8_0). Same arithmetic as `kernel4`.
@inline(__always)
func kernel4FusedQ8_0(_ row: UnsafeRawPointer, _ nb: Int, _ s: RowScratch,
                  _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
                  _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc) {
    let z = s.z
    @inline(__always) func unpackTo(_ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float { unpackBlockQ8_0(row, g, dst) }
        var e0 = a0.e, o0 = a0.o, e1 = a1.e, o1 = a1.o, e2 = a2.e, o2 = a2.o, e3 = a3.e, o3 = a3.o
    let w0 = s.w, w1 = s.w + 32
    let v0 = UnsafePointer(w0 + z), v1 = UnsafePointer(w1 + z)
    @inline(__always) func lanes(_ w: UnsafePointer<Int16>, _ x: ActRow, _ b: Int) -> SIMD16<Float> {
        lanesToFloat(pairDot16(w, x.q + 32 &* b))
    }
    var b = 0
    if s.useXdT && nb <= rowChunkBlocks {
        // The four block scales d * x_t.d[b] as one 4-lane product (activation scales pre-transposed by the caller),
        // stored and read back as broadcast memory operands of the FMAs (through an opaque offset, so that they
        // are not turned back into register broadcasts): 2 vector ops per block instead of 4 vmulss + 4 vbroadcastss.
        let cb = s.cb, cq = UnsafePointer(s.cb + z)
        @inline(__always) func put(_ d: Float, _ b: Int, _ o: Int) {
            let xt = UnsafeRawPointer(s.xdT + 4 &* b).loadUnaligned(as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(cb + o).storeBytes(of: SIMD4<Float>(repeating: d) * xt, as: SIMD4<Float>.self)
        }
        while b &+ 2 <= nb {
            let d0 = unpackTo(b, w0), d1 = unpackTo(b &+ 1, w1)
            put(d0, b, 0); put(d1, b &+ 1, 4)
            e0 = e0.addingProduct(lanes(v0, x0, b), SIMD16(repeating: cq[0]))
            e1 = e1.addingProduct(lanes(v0, x1, b), SIMD16(repeating: cq[1]))
            e2 = e2.addingProduct(lanes(v0, x2, b), SIMD16(repeating: cq[2]))
            e3 = e3.addingProduct(lanes(v0, x3, b), SIMD16(repeating: cq[3]))
            o0 = o0.addingProduct(lanes(v1, x0, b &+ 1), SIMD16(repeating: cq[4]))
            o1 = o1.addingProduct(lanes(v1, x1, b &+ 1), SIMD16(repeating: cq[5]))
            o2 = o2.addingProduct(lanes(v1, x2, b &+ 1), SIMD16(repeating: cq[6]))
            o3 = o3.addingProduct(lanes(v1, x3, b &+ 1), SIMD16(repeating: cq[7]))
            b &+= 2
        }
    }
    while b &+ 2 <= nb {
        let d0 = unpackTo(b, w0), d1 = unpackTo(b &+ 1, w1)
        e0 = e0.addingProduct(lanes(v0, x0, b), SIMD16(repeating: d0 * x0.d[b]))
        e1 = e1.addingProduct(lanes(v0, x1, b), SIMD16(repeating: d0 * x1.d[b]))
        e2 = e2.addingProduct(lanes(v0, x2, b), SIMD16(repeating: d0 * x2.d[b]))
        e3 = e3.addingProduct(lanes(v0, x3, b), SIMD16(repeating: d0 * x3.d[b]))
        o0 = o0.addingProduct(lanes(v1, x0, b &+ 1), SIMD16(repeating: d1 * x0.d[b &+ 1]))
        o1 = o1.addingProduct(lanes(v1, x1, b &+ 1), SIMD16(repeating: d1 * x1.d[b &+ 1]))
        o2 = o2.addingProduct(lanes(v1, x2, b &+ 1), SIMD16(repeating: d1 * x2.d[b &+ 1]))
        o3 = o3.addingProduct(lanes(v1, x3, b &+ 1), SIMD16(repeating: d1 * x3.d[b &+ 1]))
        b &+= 2
    }
    if b < nb {
        let d0 = unpackTo(b, w0)
        e0 = e0.addingProduct(lanes(v0, x0, b), SIMD16(repeating: d0 * x0.d[b]))
        e1 = e1.addingProduct(lanes(v0, x1, b), SIMD16(repeating: d0 * x1.d[b]))
        e2 = e2.addingProduct(lanes(v0, x2, b), SIMD16(repeating: d0 * x2.d[b]))
        e3 = e3.addingProduct(lanes(v0, x3, b), SIMD16(repeating: d0 * x3.d[b]))
    }
    a0.e = e0; a0.o = o0; a1.e = e1; a1.o = o1; a2.e = e2; a2.o = o2; a3.e = e3; a3.o = o3
}

/// LLVM's prefetch intrinsic (address, rw 0 = read, locality 0...3, cache 1 = data): `prefetcht0`. Swift has no
/// prefetch; declaring the intrinsic by its symbol name works (Swift 6.1) and compiles to the single instruction.
@_silgen_name("llvm.prefetch.p0")
func llvmPrefetch(_ p: UnsafeRawPointer, _ rw: Int32, _ locality: Int32, _ cache: Int32)
/// Bytes ahead for the software prefetch of streamed weight rows.
let rowPrefetchDistance = 2048

/// Two Q8_0 weight rows times four activation rows (the 4-row `dotRowsMany` path): each activation block is loaded
/// once for both weight rows (10 -> 6 vector loads per block and weight-row pair). Per output, exactly the operations
/// of `kernel4FusedQ8_0` (block scales from the transposed table, see there). Needs `s.useXdT` and nb <= rowChunkBlocks.
@inline(__always)
func kernel4FusedPairQ8_0(_ rowA: UnsafeRawPointer, _ rowB: UnsafeRawPointer, _ nb: Int, _ s: RowScratch,
                          _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
                          _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc,
                          _ c0: inout RowAcc, _ c1: inout RowAcc, _ c2: inout RowAcc, _ c3: inout RowAcc) {
    let z = s.z
    var eA0 = a0.e, oA0 = a0.o, eA1 = a1.e, oA1 = a1.o, eA2 = a2.e, oA2 = a2.o, eA3 = a3.e, oA3 = a3.o
    var eB0 = c0.e, oB0 = c0.o, eB1 = c1.e, oB1 = c1.o, eB2 = c2.e, oB2 = c2.o, eB3 = c3.e, oB3 = c3.o
    let w0 = s.w, w1 = s.w + 32, w2 = s.w + 64, w3 = s.w + 96
    let vA0 = UnsafePointer(w0 + z), vA1 = UnsafePointer(w1 + z), vB0 = UnsafePointer(w2 + z), vB1 = UnsafePointer(w3 + z)
    let cb = s.cb, cq = UnsafePointer(s.cb + z)
    @inline(__always) func put(_ d: Float, _ b: Int, _ o: Int) {
        let xt = UnsafeRawPointer(s.xdT + 4 &* b).loadUnaligned(as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(cb + o).storeBytes(of: SIMD4<Float>(repeating: d) * xt, as: SIMD4<Float>.self)
    }
    @inline(__always) func lanes(_ w: UnsafePointer<Int16>, _ x: ActRow, _ b: Int) -> SIMD16<Float> {
        lanesToFloat(pairDot16(w, x.q + 32 &* b))
    }
    var b = 0
    while b &+ 2 <= nb {
        // Software prefetch ~3 rows ahead in both streams (the head streams from DRAM).
        let pa = rowA + (34 &* b &+ rowPrefetchDistance), pb = rowB + (34 &* b &+ rowPrefetchDistance)
        llvmPrefetch(pa, 0, 3, 1); llvmPrefetch(pa + 64, 0, 3, 1); llvmPrefetch(pb, 0, 3, 1); llvmPrefetch(pb + 64, 0, 3, 1)
        put(unpackBlockQ8_0(rowA, b, w0), b, 0); put(unpackBlockQ8_0(rowA, b &+ 1, w1), b &+ 1, 4)
        put(unpackBlockQ8_0(rowB, b, w2), b, 8); put(unpackBlockQ8_0(rowB, b &+ 1, w3), b &+ 1, 12)
        eA0 = eA0.addingProduct(lanes(vA0, x0, b), SIMD16(repeating: cq[0]))
        eB0 = eB0.addingProduct(lanes(vB0, x0, b), SIMD16(repeating: cq[8]))
        eA1 = eA1.addingProduct(lanes(vA0, x1, b), SIMD16(repeating: cq[1]))
        eB1 = eB1.addingProduct(lanes(vB0, x1, b), SIMD16(repeating: cq[9]))
        eA2 = eA2.addingProduct(lanes(vA0, x2, b), SIMD16(repeating: cq[2]))
        eB2 = eB2.addingProduct(lanes(vB0, x2, b), SIMD16(repeating: cq[10]))
        eA3 = eA3.addingProduct(lanes(vA0, x3, b), SIMD16(repeating: cq[3]))
        eB3 = eB3.addingProduct(lanes(vB0, x3, b), SIMD16(repeating: cq[11]))
        oA0 = oA0.addingProduct(lanes(vA1, x0, b &+ 1), SIMD16(repeating: cq[4]))
        oB0 = oB0.addingProduct(lanes(vB1, x0, b &+ 1), SIMD16(repeating: cq[12]))
        oA1 = oA1.addingProduct(lanes(vA1, x1, b &+ 1), SIMD16(repeating: cq[5]))
        oB1 = oB1.addingProduct(lanes(vB1, x1, b &+ 1), SIMD16(repeating: cq[13]))
        oA2 = oA2.addingProduct(lanes(vA1, x2, b &+ 1), SIMD16(repeating: cq[6]))
        oB2 = oB2.addingProduct(lanes(vB1, x2, b &+ 1), SIMD16(repeating: cq[14]))
        oA3 = oA3.addingProduct(lanes(vA1, x3, b &+ 1), SIMD16(repeating: cq[7]))
        oB3 = oB3.addingProduct(lanes(vB1, x3, b &+ 1), SIMD16(repeating: cq[15]))
        b &+= 2
    }
    if b < nb {
        put(unpackBlockQ8_0(rowA, b, w0), b, 0); put(unpackBlockQ8_0(rowB, b, w2), b, 8)
        eA0 = eA0.addingProduct(lanes(vA0, x0, b), SIMD16(repeating: cq[0]))
        eB0 = eB0.addingProduct(lanes(vB0, x0, b), SIMD16(repeating: cq[8]))
        eA1 = eA1.addingProduct(lanes(vA0, x1, b), SIMD16(repeating: cq[1]))
        eB1 = eB1.addingProduct(lanes(vB0, x1, b), SIMD16(repeating: cq[9]))
        eA2 = eA2.addingProduct(lanes(vA0, x2, b), SIMD16(repeating: cq[2]))
        eB2 = eB2.addingProduct(lanes(vB0, x2, b), SIMD16(repeating: cq[10]))
        eA3 = eA3.addingProduct(lanes(vA0, x3, b), SIMD16(repeating: cq[3]))
        eB3 = eB3.addingProduct(lanes(vB0, x3, b), SIMD16(repeating: cq[11]))
    }
    a0.e = eA0; a0.o = oA0; a1.e = eA1; a1.o = oA1; a2.e = eA2; a2.o = oA2; a3.e = eA3; a3.o = oA3
    c0.e = eB0; c0.o = oB0; c1.e = eB1; c1.o = oB1; c2.e = eB2; c2.o = oB2; c3.e = eB3; c3.o = oB3
}

/// Two weight rows, unpacked one after the other (row A: blocks 0 ..< nb of the scratch, row B: nb ..< 2 nb), times
/// four activation rows: each activation block is loaded once for both weight rows (6 instead of 10 vector loads per
/// block and weight-row pair). Per output exactly the operations of `kernel4` / `kernel4FusedQ8_0` (block scale
/// ws * x.d as one f32 product, from the transposed activation scales; see kernel4Fused). (Fusing the unpacking
/// into this loop interleaves the two rows' reads, which streamed 30% slower from DRAM.)
@inline(__always)
func kernel4Pair(_ nb: Int, _ s: RowScratch, _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
                 _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc,
                 _ c0: inout RowAcc, _ c1: inout RowAcc, _ c2: inout RowAcc, _ c3: inout RowAcc) {
    let z = s.z
    var eA0 = a0.e, oA0 = a0.o, eA1 = a1.e, oA1 = a1.o, eA2 = a2.e, oA2 = a2.o, eA3 = a3.e, oA3 = a3.o
    var eB0 = c0.e, oB0 = c0.o, eB1 = c1.e, oB1 = c1.o, eB2 = c2.e, oB2 = c2.o, eB3 = c3.e, oB3 = c3.o
    let wA = UnsafePointer(s.w + z), wB = UnsafePointer(s.w + (32 &* nb &+ z))
    let wsA = UnsafePointer(s.ws), wsB = UnsafePointer(s.ws + nb)
    let cb = s.cb, cq = UnsafePointer(s.cb + z)
    @inline(__always) func put(_ d: Float, _ b: Int, _ o: Int) {
        let xt = UnsafeRawPointer(s.xdT + 4 &* b).loadUnaligned(as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(cb + o).storeBytes(of: SIMD4<Float>(repeating: d) * xt, as: SIMD4<Float>.self)
    }
    @inline(__always) func lanes(_ w: UnsafePointer<Int16>, _ x: ActRow, _ b: Int) -> SIMD16<Float> {
        lanesToFloat(pairDot16(w + 32 &* b, x.q + 32 &* b))
    }
    var b = 0
    while b &+ 2 <= nb {
        put(wsA[b], b, 0); put(wsA[b &+ 1], b &+ 1, 4); put(wsB[b], b, 8); put(wsB[b &+ 1], b &+ 1, 12)
        eA0 = eA0.addingProduct(lanes(wA, x0, b), SIMD16(repeating: cq[0]))
        eB0 = eB0.addingProduct(lanes(wB, x0, b), SIMD16(repeating: cq[8]))
        eA1 = eA1.addingProduct(lanes(wA, x1, b), SIMD16(repeating: cq[1]))
        eB1 = eB1.addingProduct(lanes(wB, x1, b), SIMD16(repeating: cq[9]))
        eA2 = eA2.addingProduct(lanes(wA, x2, b), SIMD16(repeating: cq[2]))
        eB2 = eB2.addingProduct(lanes(wB, x2, b), SIMD16(repeating: cq[10]))
        eA3 = eA3.addingProduct(lanes(wA, x3, b), SIMD16(repeating: cq[3]))
        eB3 = eB3.addingProduct(lanes(wB, x3, b), SIMD16(repeating: cq[11]))
        oA0 = oA0.addingProduct(lanes(wA, x0, b &+ 1), SIMD16(repeating: cq[4]))
        oB0 = oB0.addingProduct(lanes(wB, x0, b &+ 1), SIMD16(repeating: cq[12]))
        oA1 = oA1.addingProduct(lanes(wA, x1, b &+ 1), SIMD16(repeating: cq[5]))
        oB1 = oB1.addingProduct(lanes(wB, x1, b &+ 1), SIMD16(repeating: cq[13]))
        oA2 = oA2.addingProduct(lanes(wA, x2, b &+ 1), SIMD16(repeating: cq[6]))
        oB2 = oB2.addingProduct(lanes(wB, x2, b &+ 1), SIMD16(repeating: cq[14]))
        oA3 = oA3.addingProduct(lanes(wA, x3, b &+ 1), SIMD16(repeating: cq[7]))
        oB3 = oB3.addingProduct(lanes(wB, x3, b &+ 1), SIMD16(repeating: cq[15]))
        b &+= 2
    }
    if b < nb {
        put(wsA[b], b, 0); put(wsB[b], b, 8)
        eA0 = eA0.addingProduct(lanes(wA, x0, b), SIMD16(repeating: cq[0]))
        eB0 = eB0.addingProduct(lanes(wB, x0, b), SIMD16(repeating: cq[8]))
        eA1 = eA1.addingProduct(lanes(wA, x1, b), SIMD16(repeating: cq[1]))
        eB1 = eB1.addingProduct(lanes(wB, x1, b), SIMD16(repeating: cq[9]))
        eA2 = eA2.addingProduct(lanes(wA, x2, b), SIMD16(repeating: cq[2]))
        eB2 = eB2.addingProduct(lanes(wB, x2, b), SIMD16(repeating: cq[10]))
        eA3 = eA3.addingProduct(lanes(wA, x3, b), SIMD16(repeating: cq[3]))
        eB3 = eB3.addingProduct(lanes(wB, x3, b), SIMD16(repeating: cq[11]))
    }
    a0.e = eA0; a0.o = oA0; a1.e = eA1; a1.o = oA1; a2.e = eA2; a2.o = oA2; a3.e = eA3; a3.o = oA3
    c0.e = eB0; c0.o = oB0; c1.e = eB1; c1.o = oB1; c2.e = eB2; c2.o = oB2; c3.e = eB3; c3.o = oB3
}

/// The reduction tree of `RowAcc.result` as shuffles across outputs ("transposed"): each level adds the lanes that
/// `result` adds, for several outputs at once, so every output gets exactly `result`'s additions (bit-identical).
/// Level 1 (lane i + lane i+8): lanes 0..<8 from p, 8..<16 from q.
@inline(__always) func treeLevel1(_ p: SIMD16<Float>, _ q: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16(lowHalf: p.lowHalf, highHalf: q.lowHalf) + SIMD16(lowHalf: p.highHalf, highHalf: q.highHalf)
}
/// Level 2 (i + i+4 within each 8): outputs [a.lo, a.hi, b.lo, b.hi] as 4-lane chunks (h0 ..< h4 each).
@inline(__always) func treeLevel2(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16<Float>(a[0], a[1], a[2], a[3], a[8], a[9], a[10], a[11], b[0], b[1], b[2], b[3], b[8], b[9], b[10], b[11])
        + SIMD16<Float>(a[4], a[5], a[6], a[7], a[12], a[13], a[14], a[15], b[4], b[5], b[6], b[7], b[12], b[13], b[14], b[15])
}
/// Level 3 (q0 + q2, q1 + q3): per 4-lane chunk k, (a's chunk k output, b's chunk k output), 2 lanes each.
@inline(__always) func treeLevel3(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16<Float>(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5], a[8], a[9], b[8], b[9], a[12], a[13], b[12], b[13])
        + SIMD16<Float>(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7], a[10], a[11], b[10], b[11], a[14], a[15], b[14], b[15])
}
/// Level 4 ((q0 + q2) + (q1 + q3)) for one 4-lane chunk of two level-3 vectors: 4 finished outputs.
@inline(__always) func treeLevel4(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    SIMD4<Float>(a[0], a[2], b[0], b[2]) + SIMD4<Float>(a[1], a[3], b[1], b[3])
}

/// Slots of `dotRowsMany4`'s deferred reduction: 2 groups x (4 weight rows x 16 lanes + 4 x 4 min terms), per stream.
let groupSlotFloats = 80

/// A 4-row group's output: written to `y` now (`slot == nil`), or reduced by two tree levels (4 outputs -> one
/// vector, 4 lanes each) and stored as weight row `j` of a group slot, for `finishGroup` to finish with three more
/// weight rows' (the remaining levels then serve 16 outputs at once).
@inline(__always) func emit4(_ a0: RowAcc, _ a1: RowAcc, _ a2: RowAcc, _ a3: RowAcc, _ slot: UnsafeMutablePointer<Float>?, _ j: Int,
                             _ hasMin: Bool, _ y: UnsafeMutablePointer<Float>, _ yStride: Int) {
    if let p = slot {
        let u = treeLevel2(treeLevel1(a0.e + a0.o, a1.e + a1.o), treeLevel1(a2.e + a2.o, a3.e + a3.o))
        UnsafeMutableRawPointer(p + 16 &* j).storeBytes(of: u, as: SIMD16<Float>.self)
        if hasMin {
            UnsafeMutableRawPointer(p + (64 &+ 4 &* j)).storeBytes(of: SIMD4<Float>(a0.minTerm, a1.minTerm, a2.minTerm, a3.minTerm), as: SIMD4<Float>.self)
        }
        return
    }
    let r = results4(a0, a1, a2, a3)
    y[0] = r[0]; y[yStride] = r[1]; y[2 &* yStride] = r[2]; y[3 &* yStride] = r[3]
}

/// Finishes a group slot of `n` (1...4) weight rows: y[t * yStride + j] for activation row t, weight row j < n.
@inline(__always) func finishGroup(_ p: UnsafePointer<Float>, _ n: Int, _ hasMin: Bool, _ y: UnsafeMutablePointer<Float>, _ yStride: Int) {
    @inline(__always) func ld(_ q: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(q).loadUnaligned(as: SIMD16<Float>.self) }
    let wa = treeLevel3(ld(p), ld(p + 16)), wb = treeLevel3(ld(p + 32), ld(p + 48))
    @inline(__always) func out(_ t: Int, _ a: SIMD4<Float>, _ b: SIMD4<Float>) {
        var r = treeLevel4(a, b)
        if hasMin {
            // Min terms stored per weight row j (lane t): gather lane t of each.
            let m = SIMD4<Float>(p[64 &+ t], p[68 &+ t], p[72 &+ t], p[76 &+ t])
            r = r - m
        }
        let q = y + t &* yStride
        if n == 4 { UnsafeMutableRawPointer(q).storeBytes(of: r, as: SIMD4<Float>.self) }
        else { for j in 0..<n { q[j] = r[j] } }
    }
    out(0, wa.lowHalf.lowHalf, wb.lowHalf.lowHalf)
    out(1, wa.lowHalf.highHalf, wb.lowHalf.highHalf)
    out(2, wa.highHalf.lowHalf, wb.highHalf.lowHalf)
    out(3, wa.highHalf.highHalf, wb.highHalf.highHalf)
}

/// The four rows' `result`s, with the same additions as `RowAcc.result` (same pairs, same order), vectorized across
/// the rows by shuffles: bit-identical to four scalar trees.
@inline(__always) func results4(_ a0: RowAcc, _ a1: RowAcc, _ a2: RowAcc, _ a3: RowAcc) -> SIMD4<Float> {
    let v0 = a0.e + a0.o, v1 = a1.e + a1.o, v2 = a2.e + a2.o, v3 = a3.e + a3.o
    // h_t[i] = v_t[i] + v_t[i + 8]: rows 0, 1 in one vector, rows 2, 3 in another.
    let h01 = SIMD16<Float>(v0[0], v0[1], v0[2], v0[3], v0[4], v0[5], v0[6], v0[7], v1[0], v1[1], v1[2], v1[3], v1[4], v1[5], v1[6], v1[7])
        + SIMD16<Float>(v0[8], v0[9], v0[10], v0[11], v0[12], v0[13], v0[14], v0[15], v1[8], v1[9], v1[10], v1[11], v1[12], v1[13], v1[14], v1[15])
    let h23 = SIMD16<Float>(v2[0], v2[1], v2[2], v2[3], v2[4], v2[5], v2[6], v2[7], v3[0], v3[1], v3[2], v3[3], v3[4], v3[5], v3[6], v3[7])
        + SIMD16<Float>(v2[8], v2[9], v2[10], v2[11], v2[12], v2[13], v2[14], v2[15], v3[8], v3[9], v3[10], v3[11], v3[12], v3[13], v3[14], v3[15])
    // q_t[i] = h_t[i] + h_t[i + 4], row t in lanes 4t ..< 4t + 4.
    let q = SIMD16<Float>(h01[0], h01[1], h01[2], h01[3], h01[8], h01[9], h01[10], h01[11], h23[0], h23[1], h23[2], h23[3], h23[8], h23[9], h23[10], h23[11])
        + SIMD16<Float>(h01[4], h01[5], h01[6], h01[7], h01[12], h01[13], h01[14], h01[15], h23[4], h23[5], h23[6], h23[7], h23[12], h23[13], h23[14], h23[15])
    // (q[0] + q[2]) + (q[1] + q[3])
    let u = SIMD4<Float>(q[0], q[4], q[8], q[12]) + SIMD4<Float>(q[2], q[6], q[10], q[14])
    let w = SIMD4<Float>(q[1], q[5], q[9], q[13]) + SIMD4<Float>(q[3], q[7], q[11], q[15])
    return (u + w) - SIMD4<Float>(a0.minTerm, a1.minTerm, a2.minTerm, a3.minTerm)
}

// MARK: Entry point

extension TensorType {
    /// True for the formats with an integer row kernel over int16 activations.
    public var hasIntegerRowKernel: Bool {
        switch self {
        case .q8_0, .q4_0, .q5_0, .q4_K, .q6_K: true
        default: false
        }
    }
}

/// `y[t * yStride] = W[row] . x[firstRow + t]` for `t < batch` (any batch >= 1): four activation rows at a time, then
/// two, then one; the result for an activation row is bit-identical whichever group computes it.
/// `scratch`: `rowKernelScratchBytes` bytes (64-byte aligned is best), owned by the caller, one per worker.
/// `cols % 32 == 0` (`% 256` for Q4_K / Q6_K). Activation rows should be 64-byte aligned (measured +10%).
@inline(never)
func dotRows(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, batch: Int,
             into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int = 0) {
    dotRowsImpl(type, row, cols: cols, a, batch: batch, into: y, yStride: yStride,
                RowScratch(scratch, z: kernelOpaqueZero), firstRow: firstRow)
}

/// `dotRows` for `count` consecutive weight rows (`rowBytes` apart; outputs `y + i`, i.e. y[t * yStride + i]):
/// the same results, with the per-call overhead (dispatch, setup) paid once.
@inline(never)
func dotRowsMany(_ type: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                 batch: Int, into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int = 0) {
    if batch == 4 {
        dotRowsMany4(type, rows, rowBytes: rowBytes, count: count, cols: cols, a, into: y, yStride: yStride, scratch, firstRow: firstRow)
        return
    }
    let s = RowScratch(scratch, z: kernelOpaqueZero)
    @inline(__always) func run(_ f: TensorType) {
        for i in 0..<count {
            dotRowsImpl(f, rows + i &* rowBytes, cols: cols, a, batch: batch, into: y + i, yStride: yStride, s, firstRow: firstRow)
        }
    }
    switch type {
    case .q8_0: run(.q8_0)
    case .q4_0: run(.q4_0)
    case .q5_0: run(.q5_0)
    case .q4_K: run(.q4_K)
    case .q6_K: run(.q6_K)
    default: preconditionFailure("no integer row kernel for \(type)")
    }
}

/// `dotRowsMany` for four activation rows (the server's batch), in its own function so that the other batches' code
/// is compiled as before (inlined next to them, this path cost the 1- and 2-row kernels 3-13%). Each weight row's
/// 4 outputs are half reduced and stored (emit4), every 4 weight rows finished together (finishGroup): the same
/// additions as RowAcc.result. 32-weight formats: two weight rows per iteration (kernel4FusedPairQ8_0, kernel4Pair).
@inline(never)
func dotRowsMany4(_ type: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                  into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int) {
    // `s` is a `let` below: a captured `var` is boxed, costs exclusivity checks and kept `dotRowsImpl` from being
    // inlined and specialized per format (Q4_K 4-row -7%).
    var s0 = RowScratch(scratch, z: kernelOpaqueZero)
    if cols / 32 <= rowChunkBlocks {
        // Activation scales transposed for the 4-row kernels (see kernel4FusedQ8_0).
        let x0 = a.actRow(firstRow, cols: cols), x1 = a.actRow(firstRow &+ 1, cols: cols)
        let x2 = a.actRow(firstRow &+ 2, cols: cols), x3 = a.actRow(firstRow &+ 3, cols: cols)
        for b in 0..<cols / 32 {
            UnsafeMutableRawPointer(s0.xdT + 4 &* b).storeBytes(of: SIMD4<Float>(x0.d[b], x1.d[b], x2.d[b], x3.d[b]), as: SIMD4<Float>.self)
        }
        s0.useXdT = true
    }
    let s = s0, red = s0.red
    @inline(__always) func run(_ f: TensorType) {
        let hasMin = f == .q4_K
        var i = 0
        if f == .q8_0 || f == .q5_0 || f == .q4_0 {
            // In its own function: inlined here, it kept dotRowsImpl from being inlined for the K formats (-5%).
            i = dotRowsMany4Pairs(f, rows, rowBytes: rowBytes, count: count, cols: cols, a, into: y, yStride: yStride, s, firstRow: firstRow)
            if i < 0 { return }
        }
        while i < count {
            defer { i &+= 1 }
            dotRowsImpl(f, rows + i &* rowBytes, cols: cols, a, batch: 4, into: y + i, yStride: yStride, s, firstRow: firstRow,
                        slot: red + ((i &>> 2) & 1) &* groupSlotFloats, slotRow: i & 3)
            // Group i/4 - 1 is complete: finish it now that a row of the next group has been computed (its stores
            // have had time to leave the store queue).
            if i & 3 == 0 && i > 0 {
                finishGroup(UnsafePointer(red + (((i &>> 2) &- 1) & 1) &* groupSlotFloats), 4, hasMin, y + (i &- 4), yStride)
            }
        }
        if count > 0 {
            let g = (count &- 1) &>> 2
            finishGroup(UnsafePointer(red + (g & 1) &* groupSlotFloats), count &- 4 &* g, hasMin, y + 4 &* g, yStride)
        }
    }
    switch type {
    case .q8_0: run(.q8_0)
    case .q4_0: run(.q4_0)
    case .q5_0: run(.q5_0)
    case .q4_K: run(.q4_K)
    case .q6_K: run(.q6_K)
    default: preconditionFailure("no integer row kernel for \(type)")
    }
}

/// The 4-row `dotRowsMany` path for 32-weight formats, two weight rows at a time (kernel4FusedPairQ8_0, kernel4Pair).
/// Returns the number of weight rows done (their group slots as in dotRowsMany4), or -1 when all are done and stored.
@inline(never)
func dotRowsMany4Pairs(_ f: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                       into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int) -> Int {
    let red = s.red
    var i = 0
    let nb = cols / 32
    if f == .q8_0 && s.useXdT {
        // Q8_0: two weight rows at a time with the unpacking fused (kernel4FusedPairQ8_0), from two sequential
        // streams (rows i and h + i): adjacent rows interleaved block by block streamed 30% slower from DRAM.
        let x0 = a.actRow(firstRow, cols: cols), x1 = a.actRow(firstRow &+ 1, cols: cols)
        let x2 = a.actRow(firstRow &+ 2, cols: cols), x3 = a.actRow(firstRow &+ 3, cols: cols)
        let h = count / 2, redB = red + 2 &* groupSlotFloats
        for i in 0..<h {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            var c0 = RowAcc(), c1 = RowAcc(), c2 = RowAcc(), c3 = RowAcc()
            kernel4FusedPairQ8_0(rows + i &* rowBytes, rows + (h &+ i) &* rowBytes, nb, s, x0, x1, x2, x3,
                                 &a0, &a1, &a2, &a3, &c0, &c1, &c2, &c3)
            let o = ((i &>> 2) & 1) &* groupSlotFloats
            emit4(a0, a1, a2, a3, red + o, i & 3, false, y, yStride)
            emit4(c0, c1, c2, c3, redB + o, i & 3, false, y, yStride)
            if i & 3 == 0 && i > 0 {
                let p = (((i &>> 2) &- 1) & 1) &* groupSlotFloats
                finishGroup(UnsafePointer(red + p), 4, false, y + (i &- 4), yStride)
                finishGroup(UnsafePointer(redB + p), 4, false, y + (h &+ i &- 4), yStride)
            }
        }
        if h > 0 {
            let g = (h &- 1) &>> 2, p = (g & 1) &* groupSlotFloats
            finishGroup(UnsafePointer(red + p), h &- 4 &* g, false, y + 4 &* g, yStride)
            finishGroup(UnsafePointer(redB + p), h &- 4 &* g, false, y + (h &+ 4 &* g), yStride)
        }
        if count & 1 != 0 {
            dotRowsImpl(f, rows + (count &- 1) &* rowBytes, cols: cols, a, batch: 4, into: y + (count &- 1), yStride: yStride, s,
                        firstRow: firstRow)
        }
        return -1
    }
    if (f == .q8_0 || f == .q5_0 || f == .q4_0) && s.useXdT && 2 &* nb <= rowChunkBlocks {
        // 32-weight formats: two weight rows at a time (see kernel4Pair).
        let x0 = a.actRow(firstRow, cols: cols), x1 = a.actRow(firstRow &+ 1, cols: cols)
        let x2 = a.actRow(firstRow &+ 2, cols: cols), x3 = a.actRow(firstRow &+ 3, cols: cols)
        while i &+ 2 <= count {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            var c0 = RowAcc(), c1 = RowAcc(), c2 = RowAcc(), c3 = RowAcc()
            var sB = s
            sB.w = s.w + 32 &* nb; sB.ws = s.ws + nb
            let none = CombRows(k: 0, x0, x0, x0, x0)
            unpack(f, rows + i &* rowBytes, 0, nb, s, none)
            unpack(f, rows + (i &+ 1) &* rowBytes, 0, nb, sB, none)
            kernel4Pair(nb, s, x0, x1, x2, x3, &a0, &a1, &a2, &a3, &c0, &c1, &c2, &c3)
            let slot = red + ((i &>> 2) & 1) &* groupSlotFloats
            emit4(a0, a1, a2, a3, slot, i & 3, false, y, yStride)
            emit4(c0, c1, c2, c3, slot, (i &+ 1) & 3, false, y, yStride)
            if i & 3 == 0 && i > 0 {
                finishGroup(UnsafePointer(red + (((i &>> 2) &- 1) & 1) &* groupSlotFloats), 4, false, y + (i &- 4), yStride)
            }
            i &+= 2
        }
    }
    return i
}

@inline(__always)
func dotRowsImpl(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, batch: Int,
                 into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int,
                 slot: UnsafeMutablePointer<Float>? = nil, slotRow: Int = 0) {
    let nb = cols / 32, hasMin = type == .q4_K
    // Precomputed block scales (broadcast memory operands) measured faster for Q4_K / Q6_K (+10%), slower for the
    // 32-weight formats (-15%), which compute them in the loop (vmulss + vbroadcastss).
    let pre = type == .q4_K || type == .q6_K
    assert(a.cols == cols, "activations quantized with a different width")
    @inline(__always) func x(_ t: Int) -> ActRow { a.actRow(firstRow &+ min(t, batch &- 1), cols: cols) }
    /// Block scales for the group of rows t ..< t + k (k = 2 or 4; 0 for one row, whose kernel computes them inline).
    @inline(__always) func comb(_ t: Int, _ k: Int) -> CombRows { CombRows(k: k, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3)) }
    if batch == 1 {
        switch type {
        // Fused only where it measured faster (Q8_0: +15%; Q4_0 -9%; Q5_0 equal).
        case .q8_0: y[0] = kernel1FusedQ8_0(row, nb, s, x(0)); return
        default: break
        }
    }
    if type == .q8_0 && batch >= 4 {
        // Q8_0: groups of four with the unpacking fused (re-unpacked per group; +8%), then the rest. (For Q4_0 / Q5_0
        // the fused 4-row loop measured 7-9% slower than unpack-then-compute.)
        var t = 0
        while t &+ 4 <= batch {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            kernel4FusedQ8_0(row, nb, s, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3)
            emit4(a0, a1, a2, a3, batch == 4 ? slot : nil, slotRow, hasMin, y + t &* yStride, yStride)
            t &+= 4
        }
        if t == batch { return }
        // The remaining rows below, as for any batch (the kernels ignore `t`'s group history).
        let rest = batch &- t
        dotRowsTail(type, row, cols: cols, a, batch: rest, into: y + t &* yStride, yStride: yStride, s, firstRow: firstRow &+ t)
        return
    }
    if nb <= rowChunkBlocks {
        // The whole row fits: unpack once for all activation rows.
        unpack(type, row, 0, nb, s, comb(0, !pre ? 0 : batch >= 4 ? 4 : batch >= 2 ? 2 : 0))
        var t = 0
        while t &+ 4 <= batch {
            if t > 0 && pre { let c = comb(t, 4); for b in 0..<nb { c.put(s, b, b, s.ws[b]) } }
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            if pre { kernel4(s, 0, nb, hasMin, true, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3) }
            else { kernel4(s, 0, nb, false, false, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3) }
            emit4(a0, a1, a2, a3, batch == 4 ? slot : nil, slotRow, hasMin, y + t &* yStride, yStride)
            t &+= 4
        }
        if t &+ 2 <= batch {
            if t > 0 && pre { let c = comb(t, 2); for b in 0..<nb { c.put(s, b, b, s.ws[b]) } }
            var a0 = RowAcc(), a1 = RowAcc()
            if pre { kernel2(s, 0, nb, hasMin, true, x(t), x(t &+ 1), &a0, &a1) }
            else { kernel2(s, 0, nb, false, false, x(t), x(t &+ 1), &a0, &a1) }
            y[t * yStride] = a0.result; y[(t &+ 1) * yStride] = a1.result
            t &+= 2
        }
        if t < batch {
            var a0 = RowAcc()
            kernel1(s, 0, nb, hasMin, x(t), &a0)
            y[t * yStride] = a0.result
        }
        return
    }
    // Long rows: chunks of rowChunkBlocks blocks, unpacked again for each group of activation rows.
    var t = 0
    while t < batch {
        let g = batch - t >= 4 ? 4 : batch - t >= 2 ? 2 : 1
        var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
        var b0 = 0
        while b0 < nb {
            let n = min(rowChunkBlocks, nb - b0)
            unpack(type, row, b0, n, s, comb(t, g == 1 || !pre ? 0 : g))
            switch g {
            case 4:
                if pre { kernel4(s, b0, n, hasMin, true, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3) }
                else { kernel4(s, b0, n, false, false, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3) }
            case 2:
                if pre { kernel2(s, b0, n, hasMin, true, x(t), x(t &+ 1), &a0, &a1) }
                else { kernel2(s, b0, n, false, false, x(t), x(t &+ 1), &a0, &a1) }
            default: kernel1(s, b0, n, hasMin, x(t), &a0)
            }
            b0 += n
        }
        if g == 4 {
            emit4(a0, a1, a2, a3, batch == 4 ? slot : nil, slotRow, hasMin, y + t &* yStride, yStride)
        } else {
            y[t * yStride] = a0.result
            if g == 2 { y[(t &+ 1) * yStride] = a1.result }
        }
        t &+= g
    }
}

@inline(never)
func dotRowsTail(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, batch: Int,
                 into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int) {
    precondition(batch < 4)
    dotRowsImpl(type, row, cols: cols, a, batch: batch, into: y, yStride: yStride, s, firstRow: firstRow)
}

/// `W[row] . x[r]` for activation row `r` of `a` (the one-row kernels; bit-identical to any batched computation).
public func dotRow(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Float {
    withUnsafeTemporaryAllocation(byteCount: rowKernelScratchBytes, alignment: 64) { buf in
        var y: Float = 0
        dotRows(type, row, cols: cols, a, batch: 1, into: &y, yStride: 1, buf.baseAddress!, firstRow: r)
        return y
    }
}

/// Scalar twin of the row kernels: the weights dequantized by GemmaFormats (gguf-py's values) times the dequantized
/// activations, summed in f64. Agrees with the kernels to about 1e-7 of sum |w x|.
public func dotRowReference(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Double {
    var w = [Float](repeating: 0, count: cols)
    try? type.dequantize(row, count: cols, into: &w)
    let x = a.row(r)
    var s = 0.0
    for i in 0..<cols { s += Double(w[i]) * Double(x.q[i]) * Double(x.d[i / 32]) }
    return s
}
