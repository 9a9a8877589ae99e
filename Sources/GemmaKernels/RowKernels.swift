import GemmaFormats
// Dot products of one quantized weight row with 1, 2 or 4 rows of int16-quantized activations, per format
// ("row kernels" for decoding several sequences at once). Entry points: `dotRows` (one weight row, any batch >= 1)
// and `dotRowsMany` (consecutive weight rows, same results, +3-6% from paying the dispatch once).
//
// Scheme ("chunk-interleaved", klab3): blocks of 32 are taken in groups of 4 (128 elements). Activations
// (QuantizedActivations) and unpacked weights store a group as 4 vectors of 32 int16; vector c holds elements
// 8c ..< 8c + 8 of block 0, then of block 1, 2, 3 (lane 8m + k = block m, element 8c + k). A row is padded to a
// whole number of groups: zero activations with zero scales; the missing weight blocks read a zero block (scale 0).
// The weight row is unpacked, up to `rowChunkBlocks` blocks at a time, into int16 values (q minus the format's
// offset; Q6_K times its per-16 int8 scale, |w| <= 4096) and the group's 4 block scales expanded to 16 f32 lanes
// [s0 x4, s1 x4, s2 x4, s3 x4] (plus, for Q4_K, one f32 min per 32). Then, per activation row and group:
//     P = pairDot(w0, x0) + pairDot(w1, x1) + pairDot(w2, x2) + pairDot(w3, x3)   (vpmaddwd + 3 vpdpwssd, exact)
//     acc += Float(P) * (ws * xs)          (vcvtdq2ps, vmulps with the activation's expanded scales, one FMA)
// 16 Int32 lanes, lanes 4m ..< 4m + 4 = block m, each a sum of 8 products: 7 vector ops per 128 MACs and activation
// row (old scheme, one block per FMA: 12-16). The 16 lanes are summed once per row by a fixed tree. Q4_K's min term
// is an 8-lane FMA per super-block (scale * sum of the activation block), summed by a fixed tree.
// Bit-identity: the 1-, 2- and 4-row kernels (fused or not, paired or not, chunked or not) do, for each row, exactly
// the same f32 operations in the same order (the integer group sums are exact, the scale product ws * xs is one
// rounded f32 multiply everywhere), so a row's result does not depend on how many rows are computed with it:
// batched decoding == decoding alone, bit for bit (checked: 0 mismatches in 312,832 comparisons: batches 1...11,
// widths 32, 96, 160, 256, 640, 2048, 2560, 4096, dotRows / dotRowsMany / dotRow, every format).
// Ranges: a lane sums 8 products |w| * |x| <= 128 * 32767 (Q8_0; Q4_0 8, Q5_0 16, Q4_K 15) or 4096 * 32767 (Q6_K):
// at most 8 * 4096 * 32767 = 1.07e9 < 2^31, exact in Int32 (vpdpwssd wraps, never saturates; no overflow here).
// Max error vs an f64 dot of the dequantized values: 6.0e-8 ... 1.09e-7 of sum |w x| over 3 random runs of the check
// (old scheme 6.5e-8 ... 1.06e-7 in the same runs).
//
// Measured (klab3, 2-vCPU Zen 4 shared with other busy sessions, per core, thread CPU time, best of 5 alternating
// old/new runs x 30 reps of 4096 rows, MANY=1, -O -target-cpu native; rows 640 wide, K formats 2048), G MAC/s:
//            1-row          2-row          4-row
//   Q8_0     16.7 -> 17.2   22.0 -> 23.9   39.8 -> 48.1   (ROWS=65536, from DRAM: 1-row 16.2 -> 15.3, 4-row 37.9 -> 45.3)
//   Q4_0     13.2 -> 12.8   20.3 -> 22.1   34.1 -> 40.6
//   Q5_0     10.5 -> 10.9   17.0 -> 18.4   28.8 -> 34.5
//   Q4_K     18.4 -> 15.8   29.4 -> 26.4   38.5 -> 41.5
//   Q6_K     15.1 -> 13.4   25.2 -> 23.0   34.6 -> 38.1
// Q8_0 1-row: -2..+3% from L2 (noise level), -5..-10% streaming from DRAM (1-row fused kernel; a software prefetch,
// two alternating group buffers and unpack-then-compute did not recover it: 14.9, 14.3, 13.5 vs old 16.1-16.5).
// The K formats lose 11-14% at 1 and 2 rows: a byte of Q4_K / Q6_K feeds two blocks (low / high nibble), which land
// in different 16-byte lanes of the same vector, so their unpacking needs a 4 x 4 transpose of 16-byte pieces per
// group (storeGroup: ~16 shuffles per super-block on Zen 4's two shuffle pipes, which the unpacking already loads
// with vpmovzx/vpermw); their compute got cheaper, the unpacking more expensive. Tried and slower: building each
// vector by written-out lanes from the source bytes (Q4_K 1-row 12.9, Q6_K 9.6: LLVM gathers 8-byte pieces with
// vinserti128 chains), 16-byte stores of each block (LLVM then splits the lane computation into xmm pieces:
// Q6_K 1-row 9.5), a zmm store + four 16-byte copies (store forwarding fails: Q4_K 8.4), nibble split as 64-bit
// lanes + permute (LLVM scalarizes the lane extracts: Q4_K 8.2). (Since qk byte unpack they work on bytes and
// interleave 8-byte pieces in-lane instead of the transpose, see unpackQ4_K: unpacking 1.3-1.5x faster.)
//
// Codegen notes (Swift 6.1, Zen 4):
//  * the unpack functions are @inline(never): the kernels then only see loads of the int16 buffer, which keeps
//    `pairDot16` (both operands Int16 memory) as vpmaddwd / vpdpwssd; `groupDot` = pairDot16 + 3 x pairDot16
//    compiles to vpmaddwd + 3 vpdpwssd with memory operands;
//  * each unpacked vector is built as a SIMD32<Int16> from 32 written-out lane expressions over byte *pointers*
//    (all loads before the single vector store). Q8_0 / Q4_0 build the group's 4 vectors directly from the 4 blocks'
//    bytes (8-byte pieces: vmovq / vpunpcklqdq / vinserti128, one vpmovsxbw / vpmovzxbw per vector); Q5_0, Q4_K
//    and Q6_K compute their values as bytes in 32-byte vectors of two blocks' 16-byte halves and interleave 8-byte
//    pieces in-lane (SIMD4<UInt64>(a[i], b[i], a[i + 2], b[i + 2]): vpunpcklqdq / vpunpckhqdq) before one widening
//    per vector (q5lab / qk byte unpack; the 4 x 4 transpose of int16 16-byte pieces they used before, storeGroup,
//    cost 12-16 shuffles per group). Q6_K multiplies by its int8 scales after the widening (2 scale vectors per
//    group). A whole-vector `&-` / `&+` between two shuffle levels keeps LLVM from merging them (unpackQ6_K);
//    Loops over lanes (`o[i] = ...`), lane subscripts of SIMD values in loops, and SIMD operators on
//    SIMD32<Int16> (&>>, &, .replacing) compile to scalar lane loops;
//  * Q5_0's high bits: written-out `(qh >> j) & 1` lanes became ~100 shuffle instructions, a 4 KB table (4 lookups
//    per block) 28 instructions per block; now an AVX-512 mask register made from qh by whole-vector SIMD32<Int32>
//    operations (two kmovw + kunpckwd) and one masked move (q5lab; see q5ClearMask); Q5_0 now masks signed bytes
//    (vmovdqu8, 32 lanes) and sign-extends after an in-lane 8-byte interleave (see unpackQ5_0);
//  * whole-vector SIMD operations that are builtins for concrete types (Swift 6.3 stdlib): init(repeating:),
//    init(lowHalf:highHalf:), &+ &- &*, the comparisons .== .< ..., and SIMDMask's .& .| .^ (so a bitwise AND of
//    two integer vectors is unsafeBitCast to SIMDMask, .&, unsafeBitCast back). Not: & | ^ << >> on SIMD types,
//    .replacing, conversions (scalar lane loops). Vector LLVM intrinsics via @_silgen_name fail ("Cannot select":
//    Swift declares them without memory(none)); the scalar-void llvm.prefetch works;
//  * a group product read from the scratch right after storing it (the fused Q8_0 kernels) goes through
//    `pointer + opaque zero`, so it stays a memory operand of vpdpwssd (zmm store -> zmm load, store-forwarded);
//  * no global `var` and no class `var` reads in the hot path: under -O each costs a dynamic exclusivity check
//    (swift_beginAccess), e.g. QuantizedActivations.cols; the row width comes from the caller. `kernelOpaqueZero`
//    is read once per call (RowScratch.z): each read of a global `let` was a swift_once call plus vzeroupper;
//  * scalar stores followed by vector loads of the same data stall store forwarding, so are narrower stores
//    followed by a wider load shortly after: weight scales are stored as one SIMD16 per group;
//  * the 4-row `dotRowsMany` path reduces each weight row's 4 outputs by two tree levels as shuffles across outputs
//    (treeLevel1/2) and every 4 weight rows `finishGroup` does the last two levels for 16 outputs at once;
//  * two weight rows per iteration in the 4-row `dotRowsMany` path (kernel4FusedPairQ8_0, kernel4Pair; now also for
//    Q4_K / Q6_K when both rows fit the 128-block scratch, cols <= 2048: 4-row Q4_K 38.3 -> 41.5, Q6_K 35.6 -> 38.1):
//    each activation vector is loaded once for both. Q8_0 (fused) takes its two rows from two sequential streams (rows i and count/2 + i; adjacent
//    rows interleaved block by block streamed 30% slower from DRAM) with a software prefetch 2 KB ahead;
//  * `@_silgen_name("llvm.prefetch.p0")` gives prefetcht0 (Swift has no prefetch).
// Generated by scripts/kernels/gen_row_kernels.py from row_kernels_template.swift (lane expressions written out).

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

/// One group of 4 blocks (128 weights, chunk-interleaved) times the same group of activations: 16 exact Int32
/// lanes, lanes 4m ..< 4m + 4 = block m (vpmaddwd + 3 vpdpwssd; 8 products per lane).
@inline(__always) func groupDot(_ w: UnsafePointer<Int16>, _ x: UnsafePointer<Int16>) -> SIMD16<Int32> {
    pairDot16(w, x) &+ pairDot16(w + 32, x + 32) &+ pairDot16(w + 64, x + 64) &+ pairDot16(w + 96, x + 96)
}

/// Int32 lanes to Float lanes: the lane loop compiles to one vcvtdq2ps (SIMD16<Float>(v) is an outlined call).
@inline(__always) func lanesToFloat(_ v: SIMD16<Int32>) -> SIMD16<Float> {
    var f = SIMD16<Float>()
    for i in 0..<16 { f[i] = Float(v[i]) }
    return f
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always) func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

/// The four block scales of a group expanded to 16 lanes: [d0 x4, d1 x4, d2 x4, d3 x4].
@inline(__always) func expand4(_ d0: Float, _ d1: Float, _ d2: Float, _ d3: Float) -> SIMD16<Float> {
    SIMD16<Float>(d0, d0, d0, d0, d1, d1, d1, d1, d2, d2, d2, d2, d3, d3, d3, d3)
}

/// Activation rows for the kernels (chunk-interleaved int16 values, expanded scales per group, scale * sum per
/// block); `g` groups of 128 elements.
@usableFromInline struct ActRow {
    let q: UnsafePointer<Int16>, xs: UnsafePointer<Float>, ds: UnsafePointer<Float>
}

extension QuantizedActivations {
    /// Row `r` when the rows are `cols` wide. Reading `self.cols` (a class `var`) costs a dynamic exclusivity check
    /// (swift_beginAccess) per read under -O, so the kernels take the width from their caller.
    @inline(__always) func actRow(_ r: Int, cols: Int) -> ActRow {
        let pc = QuantizedActivations.paddedCols(cols), b = r &* (pc / 32)
        return ActRow(q: UnsafePointer(q + r &* pc), xs: UnsafePointer(expandedScales + 4 &* b), ds: UnsafePointer(scaledSums + b))
    }
}

// MARK: Scratch

/// Blocks of 32 weights unpacked per pass (the whole row for rows of up to 4096 weights; two rows of up to 2048 for
/// the paired 4-row kernels); a multiple of 8.
let rowChunkBlocks = 128
let rowChunkGroups = rowChunkBlocks / 4

/// Scratch bytes `dotRows` needs (per concurrent caller, ~12 KB): 8 KB of int16 weights, 2 KB of expanded weight
/// scales, 512 B of mins, the 4-row reduction slots and a zero block.
public let rowKernelScratchBytes = rowChunkBlocks * (64 + 16 + 4) + 4 * 80 * 4 + 64 + 64

@usableFromInline struct RowScratch {
    var w: UnsafeMutablePointer<Int16>   // rowChunkGroups groups of 128 unpacked weights (chunk-interleaved)
    var ws: UnsafeMutablePointer<Float>  // weight scales, 16 lanes per group (each block's 4 times)
    var wm: UnsafeMutablePointer<Float>  // weight min per 32 (Q4_K)
    let red: UnsafeMutablePointer<Float>  // 2 streams x 2 group slots x 80 floats (see finishGroup)
    let zeroBlock: UnsafeRawPointer  // 64 zero bytes: the missing blocks of a row's last group (scale 0)
    /// Opaque zero (see kernel1), read once per call by the entry points: each read of a global `let` is a
    /// swift_once call (with a vzeroupper), which cost ~3% per weight row in the 4-row loop.
    var z = 0
    @inline(__always) init(_ p: UnsafeMutableRawPointer, z: Int) {
        w = p.bindMemory(to: Int16.self, capacity: rowChunkBlocks * 32)
        let f = (p + rowChunkBlocks * 64).bindMemory(to: Float.self, capacity: rowChunkBlocks * 5 + 320 + 16)
        ws = f
        wm = f + 4 * rowChunkBlocks
        red = f + 5 * rowChunkBlocks
        let zb = UnsafeMutableRawPointer(red + 320)
        zb.initializeMemory(as: UInt64.self, repeating: 0, count: 8)
        zeroBlock = UnsafeRawPointer(zb)
        self.z = z
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

// MARK: Unpacking (groups of 4 blocks of 32, chunk-interleaved: vector c of a group = elements 8c ..< 8c + 8 of
// each of its 4 blocks; for Q4_K / Q6_K a super-block is 2 groups)

@inline(__always) func store32(_ v: SIMD32<Int16>, _ p: UnsafeMutablePointer<Int16>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD32<Int16>.self)
}

/// Lane-wise wrapping product (vpmullw; written out, see the header).
@inline(__always) func mul32(_ a: SIMD32<Int16>, _ b: SIMD32<Int16>) -> SIMD32<Int16> {
    SIMD32<Int16>(
            a[0] &* b[0],
            a[1] &* b[1],
            a[2] &* b[2],
            a[3] &* b[3],
            a[4] &* b[4],
            a[5] &* b[5],
            a[6] &* b[6],
            a[7] &* b[7],
            a[8] &* b[8],
            a[9] &* b[9],
            a[10] &* b[10],
            a[11] &* b[11],
            a[12] &* b[12],
            a[13] &* b[13],
            a[14] &* b[14],
            a[15] &* b[15],
            a[16] &* b[16],
            a[17] &* b[17],
            a[18] &* b[18],
            a[19] &* b[19],
            a[20] &* b[20],
            a[21] &* b[21],
            a[22] &* b[22],
            a[23] &* b[23],
            a[24] &* b[24],
            a[25] &* b[25],
            a[26] &* b[26],
            a[27] &* b[27],
            a[28] &* b[28],
            a[29] &* b[29],
            a[30] &* b[30],
            a[31] &* b[31])
}

/// Block pointers of group `g` of a row of `nb` 32-weight blocks of `bytes` bytes; the missing blocks of a last
/// partial group point to 64 zero bytes (scale 0; the activations there are 0 with scale 0 too).
@inline(__always) func groupBlocks(_ row: UnsafeRawPointer, _ g: Int, _ nb: Int, _ bytes: Int, _ zero: UnsafeRawPointer)
    -> (UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer) {
    let b = 4 &* g, p = row + bytes &* b
    if b &+ 4 <= nb { return (p, p + bytes, p + 2 &* bytes, p + 3 &* bytes) }
    return (p, b &+ 1 < nb ? p + bytes : zero, b &+ 2 < nb ? p + 2 &* bytes : zero, zero)
}

/// A Q8_0 group (4 block pointers) as int16 into `w` (128, chunk-interleaved); returns its expanded scales.
@inline(__always) func unpackGroupQ8_0(_ b0: UnsafeRawPointer, _ b1: UnsafeRawPointer, _ b2: UnsafeRawPointer, _ b3: UnsafeRawPointer,
                                       _ w: UnsafeMutablePointer<Int16>) -> SIMD16<Float> {
    let p0 = (b0 + 2).assumingMemoryBound(to: Int8.self), p1 = (b1 + 2).assumingMemoryBound(to: Int8.self)
    let p2 = (b2 + 2).assumingMemoryBound(to: Int8.self), p3 = (b3 + 2).assumingMemoryBound(to: Int8.self)
    let lo02 = unsafeBitCast(SIMD32<Int8>(
            p0[0],
            p0[1],
            p0[2],
            p0[3],
            p0[4],
            p0[5],
            p0[6],
            p0[7],
            p0[8],
            p0[9],
            p0[10],
            p0[11],
            p0[12],
            p0[13],
            p0[14],
            p0[15],
            p2[0],
            p2[1],
            p2[2],
            p2[3],
            p2[4],
            p2[5],
            p2[6],
            p2[7],
            p2[8],
            p2[9],
            p2[10],
            p2[11],
            p2[12],
            p2[13],
            p2[14],
            p2[15]), to: SIMD4<UInt64>.self)
    let lo13 = unsafeBitCast(SIMD32<Int8>(
            p1[0],
            p1[1],
            p1[2],
            p1[3],
            p1[4],
            p1[5],
            p1[6],
            p1[7],
            p1[8],
            p1[9],
            p1[10],
            p1[11],
            p1[12],
            p1[13],
            p1[14],
            p1[15],
            p3[0],
            p3[1],
            p3[2],
            p3[3],
            p3[4],
            p3[5],
            p3[6],
            p3[7],
            p3[8],
            p3[9],
            p3[10],
            p3[11],
            p3[12],
            p3[13],
            p3[14],
            p3[15]), to: SIMD4<UInt64>.self)
    let hi02 = unsafeBitCast(SIMD32<Int8>(
            p0[16],
            p0[17],
            p0[18],
            p0[19],
            p0[20],
            p0[21],
            p0[22],
            p0[23],
            p0[24],
            p0[25],
            p0[26],
            p0[27],
            p0[28],
            p0[29],
            p0[30],
            p0[31],
            p2[16],
            p2[17],
            p2[18],
            p2[19],
            p2[20],
            p2[21],
            p2[22],
            p2[23],
            p2[24],
            p2[25],
            p2[26],
            p2[27],
            p2[28],
            p2[29],
            p2[30],
            p2[31]), to: SIMD4<UInt64>.self)
    let hi13 = unsafeBitCast(SIMD32<Int8>(
            p1[16],
            p1[17],
            p1[18],
            p1[19],
            p1[20],
            p1[21],
            p1[22],
            p1[23],
            p1[24],
            p1[25],
            p1[26],
            p1[27],
            p1[28],
            p1[29],
            p1[30],
            p1[31],
            p3[16],
            p3[17],
            p3[18],
            p3[19],
            p3[20],
            p3[21],
            p3[22],
            p3[23],
            p3[24],
            p3[25],
            p3[26],
            p3[27],
            p3[28],
            p3[29],
            p3[30],
            p3[31]), to: SIMD4<UInt64>.self)
    let c0 = unsafeBitCast(SIMD4<UInt64>(lo02[0], lo13[0], lo02[2], lo13[2]), to: SIMD32<Int8>.self)
    let c1 = unsafeBitCast(SIMD4<UInt64>(lo02[1], lo13[1], lo02[3], lo13[3]), to: SIMD32<Int8>.self)
    let c2 = unsafeBitCast(SIMD4<UInt64>(hi02[0], hi13[0], hi02[2], hi13[2]), to: SIMD32<Int8>.self)
    let c3 = unsafeBitCast(SIMD4<UInt64>(hi02[1], hi13[1], hi02[3], hi13[3]), to: SIMD32<Int8>.self)
    store32(SIMD32<Int16>(
            Int16(c0[0]),
            Int16(c0[1]),
            Int16(c0[2]),
            Int16(c0[3]),
            Int16(c0[4]),
            Int16(c0[5]),
            Int16(c0[6]),
            Int16(c0[7]),
            Int16(c0[8]),
            Int16(c0[9]),
            Int16(c0[10]),
            Int16(c0[11]),
            Int16(c0[12]),
            Int16(c0[13]),
            Int16(c0[14]),
            Int16(c0[15]),
            Int16(c0[16]),
            Int16(c0[17]),
            Int16(c0[18]),
            Int16(c0[19]),
            Int16(c0[20]),
            Int16(c0[21]),
            Int16(c0[22]),
            Int16(c0[23]),
            Int16(c0[24]),
            Int16(c0[25]),
            Int16(c0[26]),
            Int16(c0[27]),
            Int16(c0[28]),
            Int16(c0[29]),
            Int16(c0[30]),
            Int16(c0[31])), w + 0)
    store32(SIMD32<Int16>(
            Int16(c1[0]),
            Int16(c1[1]),
            Int16(c1[2]),
            Int16(c1[3]),
            Int16(c1[4]),
            Int16(c1[5]),
            Int16(c1[6]),
            Int16(c1[7]),
            Int16(c1[8]),
            Int16(c1[9]),
            Int16(c1[10]),
            Int16(c1[11]),
            Int16(c1[12]),
            Int16(c1[13]),
            Int16(c1[14]),
            Int16(c1[15]),
            Int16(c1[16]),
            Int16(c1[17]),
            Int16(c1[18]),
            Int16(c1[19]),
            Int16(c1[20]),
            Int16(c1[21]),
            Int16(c1[22]),
            Int16(c1[23]),
            Int16(c1[24]),
            Int16(c1[25]),
            Int16(c1[26]),
            Int16(c1[27]),
            Int16(c1[28]),
            Int16(c1[29]),
            Int16(c1[30]),
            Int16(c1[31])), w + 32)
    store32(SIMD32<Int16>(
            Int16(c2[0]),
            Int16(c2[1]),
            Int16(c2[2]),
            Int16(c2[3]),
            Int16(c2[4]),
            Int16(c2[5]),
            Int16(c2[6]),
            Int16(c2[7]),
            Int16(c2[8]),
            Int16(c2[9]),
            Int16(c2[10]),
            Int16(c2[11]),
            Int16(c2[12]),
            Int16(c2[13]),
            Int16(c2[14]),
            Int16(c2[15]),
            Int16(c2[16]),
            Int16(c2[17]),
            Int16(c2[18]),
            Int16(c2[19]),
            Int16(c2[20]),
            Int16(c2[21]),
            Int16(c2[22]),
            Int16(c2[23]),
            Int16(c2[24]),
            Int16(c2[25]),
            Int16(c2[26]),
            Int16(c2[27]),
            Int16(c2[28]),
            Int16(c2[29]),
            Int16(c2[30]),
            Int16(c2[31])), w + 64)
    store32(SIMD32<Int16>(
            Int16(c3[0]),
            Int16(c3[1]),
            Int16(c3[2]),
            Int16(c3[3]),
            Int16(c3[4]),
            Int16(c3[5]),
            Int16(c3[6]),
            Int16(c3[7]),
            Int16(c3[8]),
            Int16(c3[9]),
            Int16(c3[10]),
            Int16(c3[11]),
            Int16(c3[12]),
            Int16(c3[13]),
            Int16(c3[14]),
            Int16(c3[15]),
            Int16(c3[16]),
            Int16(c3[17]),
            Int16(c3[18]),
            Int16(c3[19]),
            Int16(c3[20]),
            Int16(c3[21]),
            Int16(c3[22]),
            Int16(c3[23]),
            Int16(c3[24]),
            Int16(c3[25]),
            Int16(c3[26]),
            Int16(c3[27]),
            Int16(c3[28]),
            Int16(c3[29]),
            Int16(c3[30]),
            Int16(c3[31])), w + 96)
    return expand4(kF16(b0, 0), kF16(b1, 0), kF16(b2, 0), kF16(b3, 0))
}

@inline(__always) func unpackGroupQ4_0(_ b0: UnsafeRawPointer, _ b1: UnsafeRawPointer, _ b2: UnsafeRawPointer, _ b3: UnsafeRawPointer,
                                       _ w: UnsafeMutablePointer<Int16>) -> SIMD16<Float> {
    let p0 = (b0 + 2).assumingMemoryBound(to: UInt8.self), p1 = (b1 + 2).assumingMemoryBound(to: UInt8.self)
    let p2 = (b2 + 2).assumingMemoryBound(to: UInt8.self), p3 = (b3 + 2).assumingMemoryBound(to: UInt8.self)
    store32(SIMD32<Int16>(
            Int16(p0[0] & 15) &- 8,
            Int16(p0[1] & 15) &- 8,
            Int16(p0[2] & 15) &- 8,
            Int16(p0[3] & 15) &- 8,
            Int16(p0[4] & 15) &- 8,
            Int16(p0[5] & 15) &- 8,
            Int16(p0[6] & 15) &- 8,
            Int16(p0[7] & 15) &- 8,
            Int16(p1[0] & 15) &- 8,
            Int16(p1[1] & 15) &- 8,
            Int16(p1[2] & 15) &- 8,
            Int16(p1[3] & 15) &- 8,
            Int16(p1[4] & 15) &- 8,
            Int16(p1[5] & 15) &- 8,
            Int16(p1[6] & 15) &- 8,
            Int16(p1[7] & 15) &- 8,
            Int16(p2[0] & 15) &- 8,
            Int16(p2[1] & 15) &- 8,
            Int16(p2[2] & 15) &- 8,
            Int16(p2[3] & 15) &- 8,
            Int16(p2[4] & 15) &- 8,
            Int16(p2[5] & 15) &- 8,
            Int16(p2[6] & 15) &- 8,
            Int16(p2[7] & 15) &- 8,
            Int16(p3[0] & 15) &- 8,
            Int16(p3[1] & 15) &- 8,
            Int16(p3[2] & 15) &- 8,
            Int16(p3[3] & 15) &- 8,
            Int16(p3[4] & 15) &- 8,
            Int16(p3[5] & 15) &- 8,
            Int16(p3[6] & 15) &- 8,
            Int16(p3[7] & 15) &- 8), w + 0)
    store32(SIMD32<Int16>(
            Int16(p0[8] & 15) &- 8,
            Int16(p0[9] & 15) &- 8,
            Int16(p0[10] & 15) &- 8,
            Int16(p0[11] & 15) &- 8,
            Int16(p0[12] & 15) &- 8,
            Int16(p0[13] & 15) &- 8,
            Int16(p0[14] & 15) &- 8,
            Int16(p0[15] & 15) &- 8,
            Int16(p1[8] & 15) &- 8,
            Int16(p1[9] & 15) &- 8,
            Int16(p1[10] & 15) &- 8,
            Int16(p1[11] & 15) &- 8,
            Int16(p1[12] & 15) &- 8,
            Int16(p1[13] & 15) &- 8,
            Int16(p1[14] & 15) &- 8,
            Int16(p1[15] & 15) &- 8,
            Int16(p2[8] & 15) &- 8,
            Int16(p2[9] & 15) &- 8,
            Int16(p2[10] & 15) &- 8,
            Int16(p2[11] & 15) &- 8,
            Int16(p2[12] & 15) &- 8,
            Int16(p2[13] & 15) &- 8,
            Int16(p2[14] & 15) &- 8,
            Int16(p2[15] & 15) &- 8,
            Int16(p3[8] & 15) &- 8,
            Int16(p3[9] & 15) &- 8,
            Int16(p3[10] & 15) &- 8,
            Int16(p3[11] & 15) &- 8,
            Int16(p3[12] & 15) &- 8,
            Int16(p3[13] & 15) &- 8,
            Int16(p3[14] & 15) &- 8,
            Int16(p3[15] & 15) &- 8), w + 32)
    store32(SIMD32<Int16>(
            Int16(p0[0] >> 4) &- 8,
            Int16(p0[1] >> 4) &- 8,
            Int16(p0[2] >> 4) &- 8,
            Int16(p0[3] >> 4) &- 8,
            Int16(p0[4] >> 4) &- 8,
            Int16(p0[5] >> 4) &- 8,
            Int16(p0[6] >> 4) &- 8,
            Int16(p0[7] >> 4) &- 8,
            Int16(p1[0] >> 4) &- 8,
            Int16(p1[1] >> 4) &- 8,
            Int16(p1[2] >> 4) &- 8,
            Int16(p1[3] >> 4) &- 8,
            Int16(p1[4] >> 4) &- 8,
            Int16(p1[5] >> 4) &- 8,
            Int16(p1[6] >> 4) &- 8,
            Int16(p1[7] >> 4) &- 8,
            Int16(p2[0] >> 4) &- 8,
            Int16(p2[1] >> 4) &- 8,
            Int16(p2[2] >> 4) &- 8,
            Int16(p2[3] >> 4) &- 8,
            Int16(p2[4] >> 4) &- 8,
            Int16(p2[5] >> 4) &- 8,
            Int16(p2[6] >> 4) &- 8,
            Int16(p2[7] >> 4) &- 8,
            Int16(p3[0] >> 4) &- 8,
            Int16(p3[1] >> 4) &- 8,
            Int16(p3[2] >> 4) &- 8,
            Int16(p3[3] >> 4) &- 8,
            Int16(p3[4] >> 4) &- 8,
            Int16(p3[5] >> 4) &- 8,
            Int16(p3[6] >> 4) &- 8,
            Int16(p3[7] >> 4) &- 8), w + 64)
    store32(SIMD32<Int16>(
            Int16(p0[8] >> 4) &- 8,
            Int16(p0[9] >> 4) &- 8,
            Int16(p0[10] >> 4) &- 8,
            Int16(p0[11] >> 4) &- 8,
            Int16(p0[12] >> 4) &- 8,
            Int16(p0[13] >> 4) &- 8,
            Int16(p0[14] >> 4) &- 8,
            Int16(p0[15] >> 4) &- 8,
            Int16(p1[8] >> 4) &- 8,
            Int16(p1[9] >> 4) &- 8,
            Int16(p1[10] >> 4) &- 8,
            Int16(p1[11] >> 4) &- 8,
            Int16(p1[12] >> 4) &- 8,
            Int16(p1[13] >> 4) &- 8,
            Int16(p1[14] >> 4) &- 8,
            Int16(p1[15] >> 4) &- 8,
            Int16(p2[8] >> 4) &- 8,
            Int16(p2[9] >> 4) &- 8,
            Int16(p2[10] >> 4) &- 8,
            Int16(p2[11] >> 4) &- 8,
            Int16(p2[12] >> 4) &- 8,
            Int16(p2[13] >> 4) &- 8,
            Int16(p2[14] >> 4) &- 8,
            Int16(p2[15] >> 4) &- 8,
            Int16(p3[8] >> 4) &- 8,
            Int16(p3[9] >> 4) &- 8,
            Int16(p3[10] >> 4) &- 8,
            Int16(p3[11] >> 4) &- 8,
            Int16(p3[12] >> 4) &- 8,
            Int16(p3[13] >> 4) &- 8,
            Int16(p3[14] >> 4) &- 8,
            Int16(p3[15] >> 4) &- 8), w + 96)
    return expand4(kF16(b0, 0), kF16(b1, 0), kF16(b2, 0), kF16(b3, 0))
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

// Q5_0 groups are unpacked at the byte level (q5lab 2): the 128 values as signed bytes (nibble | 0xF0 = n - 16 where
// the high bit is clear, the nibble where it is set: vpand / vgf2p8affineqb, vpor and one masked vmovdqu8 per 32
// bytes with the qh mask register from q5ClearMask), in four 32-byte vectors of two blocks each (blocks 0 and 2,
// 1 and 3; low / high nibbles); the chunk layout is then an in-lane interleave of 8-byte pieces (vpunpcklqdq /
// vpunpckhqdq) and one vpmovsxbw per chunk vector; the 4 f16 scales are gathered in a general register (vmovq,
// vcvtph2ps, vpermps). 32 vector (5 stores) + 12 mask instructions per group, 68 in all, where the int16 unpacking
// (see q5ClearMask) plus storeGroup's 4 x 4 transpose of 16-byte pieces and vpinsrw scales took 56 + 9, 79 in all
// (q5lab: 6.6 -> 4.2-4.4 ns per group; a 4 x 4 transpose of 8-byte pieces with two vpermt2q on 64-byte vectors +
// vextracti64x4: 4.8; whole-group loop without the per-group partial test: 4.4-4.5, not faster).

/// Groups g0 ..< g0 + ng of a 32-weight-format row of `nb` blocks into the scratch (from its group 0).
@inline(never) func unpackQ8_0(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    for g in 0..<ng {
        let (b0, b1, b2, b3) = groupBlocks(row, g0 &+ g, nb, 34, s.zeroBlock)
        store16(unpackGroupQ8_0(b0, b1, b2, b3, s.w + 128 &* g), s.ws + 16 &* g)
    }
}

@inline(never) func unpackQ4_0(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    for g in 0..<ng {
        let (b0, b1, b2, b3) = groupBlocks(row, g0 &+ g, nb, 18, s.zeroBlock)
        store16(unpackGroupQ4_0(b0, b1, b2, b3, s.w + 128 &* g), s.ws + 16 &* g)
    }
}

@inline(never) func unpackQ5_0(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    for g in 0..<ng {
        let (b0, b1, b2, b3) = groupBlocks(row, g0 &+ g, nb, 22, s.zeroBlock)
        let w = s.w + 128 &* g
        llvmPrefetch(b0 + rowPrefetchDistance, 0, 3, 1); llvmPrefetch(b0 + (rowPrefetchDistance + 64), 0, 3, 1)
        // Byte-level unpacking (see above; written out by the generator: four calls of an @inline(__always) block
        // function were left as calls by the optimizer).
        let p0 = (b0 + 6).assumingMemoryBound(to: UInt8.self), cm0 = q5ClearMask(b0)
        let p1 = (b1 + 6).assumingMemoryBound(to: UInt8.self), cm1 = q5ClearMask(b1)
        let p2 = (b2 + 6).assumingMemoryBound(to: UInt8.self), cm2 = q5ClearMask(b2)
        let p3 = (b3 + 6).assumingMemoryBound(to: UInt8.self), cm3 = q5ClearMask(b3)
        let rl02 = SIMD32<UInt8>(
            p0[0] | 0xF0,
            p0[1] | 0xF0,
            p0[2] | 0xF0,
            p0[3] | 0xF0,
            p0[4] | 0xF0,
            p0[5] | 0xF0,
            p0[6] | 0xF0,
            p0[7] | 0xF0,
            p0[8] | 0xF0,
            p0[9] | 0xF0,
            p0[10] | 0xF0,
            p0[11] | 0xF0,
            p0[12] | 0xF0,
            p0[13] | 0xF0,
            p0[14] | 0xF0,
            p0[15] | 0xF0,
            p2[0] | 0xF0,
            p2[1] | 0xF0,
            p2[2] | 0xF0,
            p2[3] | 0xF0,
            p2[4] | 0xF0,
            p2[5] | 0xF0,
            p2[6] | 0xF0,
            p2[7] | 0xF0,
            p2[8] | 0xF0,
            p2[9] | 0xF0,
            p2[10] | 0xF0,
            p2[11] | 0xF0,
            p2[12] | 0xF0,
            p2[13] | 0xF0,
            p2[14] | 0xF0,
            p2[15] | 0xF0)
        let l02 = unsafeBitCast(SIMD32<UInt8>(
            cm0[0] == 0 ? rl02[0] &+ 16 : rl02[0],
            cm0[1] == 0 ? rl02[1] &+ 16 : rl02[1],
            cm0[2] == 0 ? rl02[2] &+ 16 : rl02[2],
            cm0[3] == 0 ? rl02[3] &+ 16 : rl02[3],
            cm0[4] == 0 ? rl02[4] &+ 16 : rl02[4],
            cm0[5] == 0 ? rl02[5] &+ 16 : rl02[5],
            cm0[6] == 0 ? rl02[6] &+ 16 : rl02[6],
            cm0[7] == 0 ? rl02[7] &+ 16 : rl02[7],
            cm0[8] == 0 ? rl02[8] &+ 16 : rl02[8],
            cm0[9] == 0 ? rl02[9] &+ 16 : rl02[9],
            cm0[10] == 0 ? rl02[10] &+ 16 : rl02[10],
            cm0[11] == 0 ? rl02[11] &+ 16 : rl02[11],
            cm0[12] == 0 ? rl02[12] &+ 16 : rl02[12],
            cm0[13] == 0 ? rl02[13] &+ 16 : rl02[13],
            cm0[14] == 0 ? rl02[14] &+ 16 : rl02[14],
            cm0[15] == 0 ? rl02[15] &+ 16 : rl02[15],
            cm2[0] == 0 ? rl02[16] &+ 16 : rl02[16],
            cm2[1] == 0 ? rl02[17] &+ 16 : rl02[17],
            cm2[2] == 0 ? rl02[18] &+ 16 : rl02[18],
            cm2[3] == 0 ? rl02[19] &+ 16 : rl02[19],
            cm2[4] == 0 ? rl02[20] &+ 16 : rl02[20],
            cm2[5] == 0 ? rl02[21] &+ 16 : rl02[21],
            cm2[6] == 0 ? rl02[22] &+ 16 : rl02[22],
            cm2[7] == 0 ? rl02[23] &+ 16 : rl02[23],
            cm2[8] == 0 ? rl02[24] &+ 16 : rl02[24],
            cm2[9] == 0 ? rl02[25] &+ 16 : rl02[25],
            cm2[10] == 0 ? rl02[26] &+ 16 : rl02[26],
            cm2[11] == 0 ? rl02[27] &+ 16 : rl02[27],
            cm2[12] == 0 ? rl02[28] &+ 16 : rl02[28],
            cm2[13] == 0 ? rl02[29] &+ 16 : rl02[29],
            cm2[14] == 0 ? rl02[30] &+ 16 : rl02[30],
            cm2[15] == 0 ? rl02[31] &+ 16 : rl02[31]), to: SIMD4<UInt64>.self)
        let rl13 = SIMD32<UInt8>(
            p1[0] | 0xF0,
            p1[1] | 0xF0,
            p1[2] | 0xF0,
            p1[3] | 0xF0,
            p1[4] | 0xF0,
            p1[5] | 0xF0,
            p1[6] | 0xF0,
            p1[7] | 0xF0,
            p1[8] | 0xF0,
            p1[9] | 0xF0,
            p1[10] | 0xF0,
            p1[11] | 0xF0,
            p1[12] | 0xF0,
            p1[13] | 0xF0,
            p1[14] | 0xF0,
            p1[15] | 0xF0,
            p3[0] | 0xF0,
            p3[1] | 0xF0,
            p3[2] | 0xF0,
            p3[3] | 0xF0,
            p3[4] | 0xF0,
            p3[5] | 0xF0,
            p3[6] | 0xF0,
            p3[7] | 0xF0,
            p3[8] | 0xF0,
            p3[9] | 0xF0,
            p3[10] | 0xF0,
            p3[11] | 0xF0,
            p3[12] | 0xF0,
            p3[13] | 0xF0,
            p3[14] | 0xF0,
            p3[15] | 0xF0)
        let l13 = unsafeBitCast(SIMD32<UInt8>(
            cm1[0] == 0 ? rl13[0] &+ 16 : rl13[0],
            cm1[1] == 0 ? rl13[1] &+ 16 : rl13[1],
            cm1[2] == 0 ? rl13[2] &+ 16 : rl13[2],
            cm1[3] == 0 ? rl13[3] &+ 16 : rl13[3],
            cm1[4] == 0 ? rl13[4] &+ 16 : rl13[4],
            cm1[5] == 0 ? rl13[5] &+ 16 : rl13[5],
            cm1[6] == 0 ? rl13[6] &+ 16 : rl13[6],
            cm1[7] == 0 ? rl13[7] &+ 16 : rl13[7],
            cm1[8] == 0 ? rl13[8] &+ 16 : rl13[8],
            cm1[9] == 0 ? rl13[9] &+ 16 : rl13[9],
            cm1[10] == 0 ? rl13[10] &+ 16 : rl13[10],
            cm1[11] == 0 ? rl13[11] &+ 16 : rl13[11],
            cm1[12] == 0 ? rl13[12] &+ 16 : rl13[12],
            cm1[13] == 0 ? rl13[13] &+ 16 : rl13[13],
            cm1[14] == 0 ? rl13[14] &+ 16 : rl13[14],
            cm1[15] == 0 ? rl13[15] &+ 16 : rl13[15],
            cm3[0] == 0 ? rl13[16] &+ 16 : rl13[16],
            cm3[1] == 0 ? rl13[17] &+ 16 : rl13[17],
            cm3[2] == 0 ? rl13[18] &+ 16 : rl13[18],
            cm3[3] == 0 ? rl13[19] &+ 16 : rl13[19],
            cm3[4] == 0 ? rl13[20] &+ 16 : rl13[20],
            cm3[5] == 0 ? rl13[21] &+ 16 : rl13[21],
            cm3[6] == 0 ? rl13[22] &+ 16 : rl13[22],
            cm3[7] == 0 ? rl13[23] &+ 16 : rl13[23],
            cm3[8] == 0 ? rl13[24] &+ 16 : rl13[24],
            cm3[9] == 0 ? rl13[25] &+ 16 : rl13[25],
            cm3[10] == 0 ? rl13[26] &+ 16 : rl13[26],
            cm3[11] == 0 ? rl13[27] &+ 16 : rl13[27],
            cm3[12] == 0 ? rl13[28] &+ 16 : rl13[28],
            cm3[13] == 0 ? rl13[29] &+ 16 : rl13[29],
            cm3[14] == 0 ? rl13[30] &+ 16 : rl13[30],
            cm3[15] == 0 ? rl13[31] &+ 16 : rl13[31]), to: SIMD4<UInt64>.self)
        let rh02 = SIMD32<UInt8>(
            (p0[0] >> 4) | 0xF0,
            (p0[1] >> 4) | 0xF0,
            (p0[2] >> 4) | 0xF0,
            (p0[3] >> 4) | 0xF0,
            (p0[4] >> 4) | 0xF0,
            (p0[5] >> 4) | 0xF0,
            (p0[6] >> 4) | 0xF0,
            (p0[7] >> 4) | 0xF0,
            (p0[8] >> 4) | 0xF0,
            (p0[9] >> 4) | 0xF0,
            (p0[10] >> 4) | 0xF0,
            (p0[11] >> 4) | 0xF0,
            (p0[12] >> 4) | 0xF0,
            (p0[13] >> 4) | 0xF0,
            (p0[14] >> 4) | 0xF0,
            (p0[15] >> 4) | 0xF0,
            (p2[0] >> 4) | 0xF0,
            (p2[1] >> 4) | 0xF0,
            (p2[2] >> 4) | 0xF0,
            (p2[3] >> 4) | 0xF0,
            (p2[4] >> 4) | 0xF0,
            (p2[5] >> 4) | 0xF0,
            (p2[6] >> 4) | 0xF0,
            (p2[7] >> 4) | 0xF0,
            (p2[8] >> 4) | 0xF0,
            (p2[9] >> 4) | 0xF0,
            (p2[10] >> 4) | 0xF0,
            (p2[11] >> 4) | 0xF0,
            (p2[12] >> 4) | 0xF0,
            (p2[13] >> 4) | 0xF0,
            (p2[14] >> 4) | 0xF0,
            (p2[15] >> 4) | 0xF0)
        let h02 = unsafeBitCast(SIMD32<UInt8>(
            cm0[16] == 0 ? rh02[0] &+ 16 : rh02[0],
            cm0[17] == 0 ? rh02[1] &+ 16 : rh02[1],
            cm0[18] == 0 ? rh02[2] &+ 16 : rh02[2],
            cm0[19] == 0 ? rh02[3] &+ 16 : rh02[3],
            cm0[20] == 0 ? rh02[4] &+ 16 : rh02[4],
            cm0[21] == 0 ? rh02[5] &+ 16 : rh02[5],
            cm0[22] == 0 ? rh02[6] &+ 16 : rh02[6],
            cm0[23] == 0 ? rh02[7] &+ 16 : rh02[7],
            cm0[24] == 0 ? rh02[8] &+ 16 : rh02[8],
            cm0[25] == 0 ? rh02[9] &+ 16 : rh02[9],
            cm0[26] == 0 ? rh02[10] &+ 16 : rh02[10],
            cm0[27] == 0 ? rh02[11] &+ 16 : rh02[11],
            cm0[28] == 0 ? rh02[12] &+ 16 : rh02[12],
            cm0[29] == 0 ? rh02[13] &+ 16 : rh02[13],
            cm0[30] == 0 ? rh02[14] &+ 16 : rh02[14],
            cm0[31] == 0 ? rh02[15] &+ 16 : rh02[15],
            cm2[16] == 0 ? rh02[16] &+ 16 : rh02[16],
            cm2[17] == 0 ? rh02[17] &+ 16 : rh02[17],
            cm2[18] == 0 ? rh02[18] &+ 16 : rh02[18],
            cm2[19] == 0 ? rh02[19] &+ 16 : rh02[19],
            cm2[20] == 0 ? rh02[20] &+ 16 : rh02[20],
            cm2[21] == 0 ? rh02[21] &+ 16 : rh02[21],
            cm2[22] == 0 ? rh02[22] &+ 16 : rh02[22],
            cm2[23] == 0 ? rh02[23] &+ 16 : rh02[23],
            cm2[24] == 0 ? rh02[24] &+ 16 : rh02[24],
            cm2[25] == 0 ? rh02[25] &+ 16 : rh02[25],
            cm2[26] == 0 ? rh02[26] &+ 16 : rh02[26],
            cm2[27] == 0 ? rh02[27] &+ 16 : rh02[27],
            cm2[28] == 0 ? rh02[28] &+ 16 : rh02[28],
            cm2[29] == 0 ? rh02[29] &+ 16 : rh02[29],
            cm2[30] == 0 ? rh02[30] &+ 16 : rh02[30],
            cm2[31] == 0 ? rh02[31] &+ 16 : rh02[31]), to: SIMD4<UInt64>.self)
        let rh13 = SIMD32<UInt8>(
            (p1[0] >> 4) | 0xF0,
            (p1[1] >> 4) | 0xF0,
            (p1[2] >> 4) | 0xF0,
            (p1[3] >> 4) | 0xF0,
            (p1[4] >> 4) | 0xF0,
            (p1[5] >> 4) | 0xF0,
            (p1[6] >> 4) | 0xF0,
            (p1[7] >> 4) | 0xF0,
            (p1[8] >> 4) | 0xF0,
            (p1[9] >> 4) | 0xF0,
            (p1[10] >> 4) | 0xF0,
            (p1[11] >> 4) | 0xF0,
            (p1[12] >> 4) | 0xF0,
            (p1[13] >> 4) | 0xF0,
            (p1[14] >> 4) | 0xF0,
            (p1[15] >> 4) | 0xF0,
            (p3[0] >> 4) | 0xF0,
            (p3[1] >> 4) | 0xF0,
            (p3[2] >> 4) | 0xF0,
            (p3[3] >> 4) | 0xF0,
            (p3[4] >> 4) | 0xF0,
            (p3[5] >> 4) | 0xF0,
            (p3[6] >> 4) | 0xF0,
            (p3[7] >> 4) | 0xF0,
            (p3[8] >> 4) | 0xF0,
            (p3[9] >> 4) | 0xF0,
            (p3[10] >> 4) | 0xF0,
            (p3[11] >> 4) | 0xF0,
            (p3[12] >> 4) | 0xF0,
            (p3[13] >> 4) | 0xF0,
            (p3[14] >> 4) | 0xF0,
            (p3[15] >> 4) | 0xF0)
        let h13 = unsafeBitCast(SIMD32<UInt8>(
            cm1[16] == 0 ? rh13[0] &+ 16 : rh13[0],
            cm1[17] == 0 ? rh13[1] &+ 16 : rh13[1],
            cm1[18] == 0 ? rh13[2] &+ 16 : rh13[2],
            cm1[19] == 0 ? rh13[3] &+ 16 : rh13[3],
            cm1[20] == 0 ? rh13[4] &+ 16 : rh13[4],
            cm1[21] == 0 ? rh13[5] &+ 16 : rh13[5],
            cm1[22] == 0 ? rh13[6] &+ 16 : rh13[6],
            cm1[23] == 0 ? rh13[7] &+ 16 : rh13[7],
            cm1[24] == 0 ? rh13[8] &+ 16 : rh13[8],
            cm1[25] == 0 ? rh13[9] &+ 16 : rh13[9],
            cm1[26] == 0 ? rh13[10] &+ 16 : rh13[10],
            cm1[27] == 0 ? rh13[11] &+ 16 : rh13[11],
            cm1[28] == 0 ? rh13[12] &+ 16 : rh13[12],
            cm1[29] == 0 ? rh13[13] &+ 16 : rh13[13],
            cm1[30] == 0 ? rh13[14] &+ 16 : rh13[14],
            cm1[31] == 0 ? rh13[15] &+ 16 : rh13[15],
            cm3[16] == 0 ? rh13[16] &+ 16 : rh13[16],
            cm3[17] == 0 ? rh13[17] &+ 16 : rh13[17],
            cm3[18] == 0 ? rh13[18] &+ 16 : rh13[18],
            cm3[19] == 0 ? rh13[19] &+ 16 : rh13[19],
            cm3[20] == 0 ? rh13[20] &+ 16 : rh13[20],
            cm3[21] == 0 ? rh13[21] &+ 16 : rh13[21],
            cm3[22] == 0 ? rh13[22] &+ 16 : rh13[22],
            cm3[23] == 0 ? rh13[23] &+ 16 : rh13[23],
            cm3[24] == 0 ? rh13[24] &+ 16 : rh13[24],
            cm3[25] == 0 ? rh13[25] &+ 16 : rh13[25],
            cm3[26] == 0 ? rh13[26] &+ 16 : rh13[26],
            cm3[27] == 0 ? rh13[27] &+ 16 : rh13[27],
            cm3[28] == 0 ? rh13[28] &+ 16 : rh13[28],
            cm3[29] == 0 ? rh13[29] &+ 16 : rh13[29],
            cm3[30] == 0 ? rh13[30] &+ 16 : rh13[30],
            cm3[31] == 0 ? rh13[31] &+ 16 : rh13[31]), to: SIMD4<UInt64>.self)
        let c0 = unsafeBitCast(SIMD4<UInt64>(l02[0], l13[0], l02[2], l13[2]), to: SIMD32<Int8>.self)
        let c1 = unsafeBitCast(SIMD4<UInt64>(l02[1], l13[1], l02[3], l13[3]), to: SIMD32<Int8>.self)
        let c2 = unsafeBitCast(SIMD4<UInt64>(h02[0], h13[0], h02[2], h13[2]), to: SIMD32<Int8>.self)
        let c3 = unsafeBitCast(SIMD4<UInt64>(h02[1], h13[1], h02[3], h13[3]), to: SIMD32<Int8>.self)
        store32(SIMD32<Int16>(
            Int16(c0[0]),
            Int16(c0[1]),
            Int16(c0[2]),
            Int16(c0[3]),
            Int16(c0[4]),
            Int16(c0[5]),
            Int16(c0[6]),
            Int16(c0[7]),
            Int16(c0[8]),
            Int16(c0[9]),
            Int16(c0[10]),
            Int16(c0[11]),
            Int16(c0[12]),
            Int16(c0[13]),
            Int16(c0[14]),
            Int16(c0[15]),
            Int16(c0[16]),
            Int16(c0[17]),
            Int16(c0[18]),
            Int16(c0[19]),
            Int16(c0[20]),
            Int16(c0[21]),
            Int16(c0[22]),
            Int16(c0[23]),
            Int16(c0[24]),
            Int16(c0[25]),
            Int16(c0[26]),
            Int16(c0[27]),
            Int16(c0[28]),
            Int16(c0[29]),
            Int16(c0[30]),
            Int16(c0[31])), w + 0)
        store32(SIMD32<Int16>(
            Int16(c1[0]),
            Int16(c1[1]),
            Int16(c1[2]),
            Int16(c1[3]),
            Int16(c1[4]),
            Int16(c1[5]),
            Int16(c1[6]),
            Int16(c1[7]),
            Int16(c1[8]),
            Int16(c1[9]),
            Int16(c1[10]),
            Int16(c1[11]),
            Int16(c1[12]),
            Int16(c1[13]),
            Int16(c1[14]),
            Int16(c1[15]),
            Int16(c1[16]),
            Int16(c1[17]),
            Int16(c1[18]),
            Int16(c1[19]),
            Int16(c1[20]),
            Int16(c1[21]),
            Int16(c1[22]),
            Int16(c1[23]),
            Int16(c1[24]),
            Int16(c1[25]),
            Int16(c1[26]),
            Int16(c1[27]),
            Int16(c1[28]),
            Int16(c1[29]),
            Int16(c1[30]),
            Int16(c1[31])), w + 32)
        store32(SIMD32<Int16>(
            Int16(c2[0]),
            Int16(c2[1]),
            Int16(c2[2]),
            Int16(c2[3]),
            Int16(c2[4]),
            Int16(c2[5]),
            Int16(c2[6]),
            Int16(c2[7]),
            Int16(c2[8]),
            Int16(c2[9]),
            Int16(c2[10]),
            Int16(c2[11]),
            Int16(c2[12]),
            Int16(c2[13]),
            Int16(c2[14]),
            Int16(c2[15]),
            Int16(c2[16]),
            Int16(c2[17]),
            Int16(c2[18]),
            Int16(c2[19]),
            Int16(c2[20]),
            Int16(c2[21]),
            Int16(c2[22]),
            Int16(c2[23]),
            Int16(c2[24]),
            Int16(c2[25]),
            Int16(c2[26]),
            Int16(c2[27]),
            Int16(c2[28]),
            Int16(c2[29]),
            Int16(c2[30]),
            Int16(c2[31])), w + 64)
        store32(SIMD32<Int16>(
            Int16(c3[0]),
            Int16(c3[1]),
            Int16(c3[2]),
            Int16(c3[3]),
            Int16(c3[4]),
            Int16(c3[5]),
            Int16(c3[6]),
            Int16(c3[7]),
            Int16(c3[8]),
            Int16(c3[9]),
            Int16(c3[10]),
            Int16(c3[11]),
            Int16(c3[12]),
            Int16(c3[13]),
            Int16(c3[14]),
            Int16(c3[15]),
            Int16(c3[16]),
            Int16(c3[17]),
            Int16(c3[18]),
            Int16(c3[19]),
            Int16(c3[20]),
            Int16(c3[21]),
            Int16(c3[22]),
            Int16(c3[23]),
            Int16(c3[24]),
            Int16(c3[25]),
            Int16(c3[26]),
            Int16(c3[27]),
            Int16(c3[28]),
            Int16(c3[29]),
            Int16(c3[30]),
            Int16(c3[31])), w + 96)
        // The 4 f16 scales gathered in a general register (4 movzwl, shifts, ors), then vmovq + vcvtph2ps + vpermps
        // (vs vpinsrw x4 + 3 unpacks: 6 fewer vector instructions).
        let h = UInt64(b0.loadUnaligned(as: UInt16.self)) | UInt64(b1.loadUnaligned(as: UInt16.self)) &<< 16
            | UInt64(b2.loadUnaligned(as: UInt16.self)) &<< 32 | UInt64(b3.loadUnaligned(as: UInt16.self)) &<< 48
        let hv = unsafeBitCast(SIMD2<UInt64>(h, 0), to: SIMD8<Float16>.self)
        let d0 = Float(hv[0]), d1 = Float(hv[1]), d2 = Float(hv[2]), d3 = Float(hv[3])
        store16(expand4(d0, d1, d2, d3), s.ws + 16 &* g)
    }
}

// Q4_K / Q6_K groups are unpacked at the byte level too (qk byte unpack): the group's values as bytes in 32-byte
// vectors a{h} = [sub-block 0 | sub-block 2], b{h} = [1 | 3] (elements 16h ..< 16h + 16 of each, one per 128-bit
// lane), chunk vector 2h + i = SIMD4<UInt64>(a[i], b[i], a[i + 2], b[i + 2]) (vpunpcklqdq / vpunpckhqdq), one
// vpmovzxbw (Q4_K) / vpmovsxbw (Q6_K, then vpmullw by its scales) per chunk vector. Q4_K: a{h} / b{h} are the low /
// high nibbles of [q[16h ..< +16] | q[32 + 16h ..< +16]] (vmovdqu + vinserti128, vpand / vgf2p8affineqb): 20
// instructions per group (storeGroup's transpose: 27, 13 of them shuffles besides the 4 vpmovzxbw). Q6_K: each
// sub-block in element order as bytes (uniform byte operations per vector), lanes paired (vinserti128 / vperm2i128),
// minus 32 after the pairing, in-lane interleave: 42 per group with the scales (old 51: 12 vpermt2q / vshufi64x2 /
// vinserti transposing int16, 8 for the scale vectors). Per super-block loop 94 -> 79 (Q4_K), 111 -> 93 (Q6_K).
// Measured (q5lab, 2-core Zen 4 shared, best of 20 slices, 10 alternating rounds): unpacking per group, hot, 32
// groups per call: Q4_K 4.58 -> 3.09 ns (1.48x), Q6_K 6.30 -> 4.65 ns (1.36x); decode product (dotRowsMany batch 1),
// G MAC/s: Q4_K 640 x 1024 hot 18.4 -> 23.0, 64 MB 17.7 -> 22.1 (median); Q6_K 640 x 2048 hot 14.7 -> 18.2,
// 64 MB 14.0 -> 17.0. Bit-identical (unpack scratch bytewise, products batch 1 and 4).
/// Q4_K / Q6_K: super-blocks g0 / 2 ..< (g0 + ng) / 2 (2 groups each).
@inline(never) func unpackQ4_K(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    for sb in 0..<ng / 2 {
        let blk = row + 144 &* (g0 / 2 &+ sb)
        let d = kF16(blk, 0), dmin = kF16(blk, 2)
        for G in 0..<2 {
            // Group G: sub-blocks 4G ..< 4G + 4 = low and high nibbles of the 32-byte chunks 2G and 2G + 1, as
            // bytes (see above), interleaved in-lane and zero-extended into the group's four vectors at w.
            let q = (blk + 16 + 64 &* G).assumingMemoryBound(to: UInt8.self)
            let w = s.w + 128 &* (2 &* sb &+ G)
            let a0 = unsafeBitCast(SIMD32<UInt8>(
            q[0] & 15,
            q[1] & 15,
            q[2] & 15,
            q[3] & 15,
            q[4] & 15,
            q[5] & 15,
            q[6] & 15,
            q[7] & 15,
            q[8] & 15,
            q[9] & 15,
            q[10] & 15,
            q[11] & 15,
            q[12] & 15,
            q[13] & 15,
            q[14] & 15,
            q[15] & 15,
            q[32] & 15,
            q[33] & 15,
            q[34] & 15,
            q[35] & 15,
            q[36] & 15,
            q[37] & 15,
            q[38] & 15,
            q[39] & 15,
            q[40] & 15,
            q[41] & 15,
            q[42] & 15,
            q[43] & 15,
            q[44] & 15,
            q[45] & 15,
            q[46] & 15,
            q[47] & 15), to: SIMD4<UInt64>.self)
            let b0 = unsafeBitCast(SIMD32<UInt8>(
            q[0] >> 4,
            q[1] >> 4,
            q[2] >> 4,
            q[3] >> 4,
            q[4] >> 4,
            q[5] >> 4,
            q[6] >> 4,
            q[7] >> 4,
            q[8] >> 4,
            q[9] >> 4,
            q[10] >> 4,
            q[11] >> 4,
            q[12] >> 4,
            q[13] >> 4,
            q[14] >> 4,
            q[15] >> 4,
            q[32] >> 4,
            q[33] >> 4,
            q[34] >> 4,
            q[35] >> 4,
            q[36] >> 4,
            q[37] >> 4,
            q[38] >> 4,
            q[39] >> 4,
            q[40] >> 4,
            q[41] >> 4,
            q[42] >> 4,
            q[43] >> 4,
            q[44] >> 4,
            q[45] >> 4,
            q[46] >> 4,
            q[47] >> 4), to: SIMD4<UInt64>.self)
            let a1 = unsafeBitCast(SIMD32<UInt8>(
            q[16] & 15,
            q[17] & 15,
            q[18] & 15,
            q[19] & 15,
            q[20] & 15,
            q[21] & 15,
            q[22] & 15,
            q[23] & 15,
            q[24] & 15,
            q[25] & 15,
            q[26] & 15,
            q[27] & 15,
            q[28] & 15,
            q[29] & 15,
            q[30] & 15,
            q[31] & 15,
            q[48] & 15,
            q[49] & 15,
            q[50] & 15,
            q[51] & 15,
            q[52] & 15,
            q[53] & 15,
            q[54] & 15,
            q[55] & 15,
            q[56] & 15,
            q[57] & 15,
            q[58] & 15,
            q[59] & 15,
            q[60] & 15,
            q[61] & 15,
            q[62] & 15,
            q[63] & 15), to: SIMD4<UInt64>.self)
            let b1 = unsafeBitCast(SIMD32<UInt8>(
            q[16] >> 4,
            q[17] >> 4,
            q[18] >> 4,
            q[19] >> 4,
            q[20] >> 4,
            q[21] >> 4,
            q[22] >> 4,
            q[23] >> 4,
            q[24] >> 4,
            q[25] >> 4,
            q[26] >> 4,
            q[27] >> 4,
            q[28] >> 4,
            q[29] >> 4,
            q[30] >> 4,
            q[31] >> 4,
            q[48] >> 4,
            q[49] >> 4,
            q[50] >> 4,
            q[51] >> 4,
            q[52] >> 4,
            q[53] >> 4,
            q[54] >> 4,
            q[55] >> 4,
            q[56] >> 4,
            q[57] >> 4,
            q[58] >> 4,
            q[59] >> 4,
            q[60] >> 4,
            q[61] >> 4,
            q[62] >> 4,
            q[63] >> 4), to: SIMD4<UInt64>.self)
            let c0 = unsafeBitCast(SIMD4<UInt64>(a0[0], b0[0], a0[2], b0[2]), to: SIMD32<UInt8>.self)
            let c1 = unsafeBitCast(SIMD4<UInt64>(a0[1], b0[1], a0[3], b0[3]), to: SIMD32<UInt8>.self)
            let c2 = unsafeBitCast(SIMD4<UInt64>(a1[0], b1[0], a1[2], b1[2]), to: SIMD32<UInt8>.self)
            let c3 = unsafeBitCast(SIMD4<UInt64>(a1[1], b1[1], a1[3], b1[3]), to: SIMD32<UInt8>.self)
            store32(SIMD32<Int16>(
            Int16(c0[0]),
            Int16(c0[1]),
            Int16(c0[2]),
            Int16(c0[3]),
            Int16(c0[4]),
            Int16(c0[5]),
            Int16(c0[6]),
            Int16(c0[7]),
            Int16(c0[8]),
            Int16(c0[9]),
            Int16(c0[10]),
            Int16(c0[11]),
            Int16(c0[12]),
            Int16(c0[13]),
            Int16(c0[14]),
            Int16(c0[15]),
            Int16(c0[16]),
            Int16(c0[17]),
            Int16(c0[18]),
            Int16(c0[19]),
            Int16(c0[20]),
            Int16(c0[21]),
            Int16(c0[22]),
            Int16(c0[23]),
            Int16(c0[24]),
            Int16(c0[25]),
            Int16(c0[26]),
            Int16(c0[27]),
            Int16(c0[28]),
            Int16(c0[29]),
            Int16(c0[30]),
            Int16(c0[31])), w + 0)
            store32(SIMD32<Int16>(
            Int16(c1[0]),
            Int16(c1[1]),
            Int16(c1[2]),
            Int16(c1[3]),
            Int16(c1[4]),
            Int16(c1[5]),
            Int16(c1[6]),
            Int16(c1[7]),
            Int16(c1[8]),
            Int16(c1[9]),
            Int16(c1[10]),
            Int16(c1[11]),
            Int16(c1[12]),
            Int16(c1[13]),
            Int16(c1[14]),
            Int16(c1[15]),
            Int16(c1[16]),
            Int16(c1[17]),
            Int16(c1[18]),
            Int16(c1[19]),
            Int16(c1[20]),
            Int16(c1[21]),
            Int16(c1[22]),
            Int16(c1[23]),
            Int16(c1[24]),
            Int16(c1[25]),
            Int16(c1[26]),
            Int16(c1[27]),
            Int16(c1[28]),
            Int16(c1[29]),
            Int16(c1[30]),
            Int16(c1[31])), w + 32)
            store32(SIMD32<Int16>(
            Int16(c2[0]),
            Int16(c2[1]),
            Int16(c2[2]),
            Int16(c2[3]),
            Int16(c2[4]),
            Int16(c2[5]),
            Int16(c2[6]),
            Int16(c2[7]),
            Int16(c2[8]),
            Int16(c2[9]),
            Int16(c2[10]),
            Int16(c2[11]),
            Int16(c2[12]),
            Int16(c2[13]),
            Int16(c2[14]),
            Int16(c2[15]),
            Int16(c2[16]),
            Int16(c2[17]),
            Int16(c2[18]),
            Int16(c2[19]),
            Int16(c2[20]),
            Int16(c2[21]),
            Int16(c2[22]),
            Int16(c2[23]),
            Int16(c2[24]),
            Int16(c2[25]),
            Int16(c2[26]),
            Int16(c2[27]),
            Int16(c2[28]),
            Int16(c2[29]),
            Int16(c2[30]),
            Int16(c2[31])), w + 64)
            store32(SIMD32<Int16>(
            Int16(c3[0]),
            Int16(c3[1]),
            Int16(c3[2]),
            Int16(c3[3]),
            Int16(c3[4]),
            Int16(c3[5]),
            Int16(c3[6]),
            Int16(c3[7]),
            Int16(c3[8]),
            Int16(c3[9]),
            Int16(c3[10]),
            Int16(c3[11]),
            Int16(c3[12]),
            Int16(c3[13]),
            Int16(c3[14]),
            Int16(c3[15]),
            Int16(c3[16]),
            Int16(c3[17]),
            Int16(c3[18]),
            Int16(c3[19]),
            Int16(c3[20]),
            Int16(c3[21]),
            Int16(c3[22]),
            Int16(c3[23]),
            Int16(c3[24]),
            Int16(c3[25]),
            Int16(c3[26]),
            Int16(c3[27]),
            Int16(c3[28]),
            Int16(c3[29]),
            Int16(c3[30]),
            Int16(c3[31])), w + 96)
        }
        let sm = blk + 4
        let (s0, m0) = kScaleMinQ4K(sm, 0), (s1, m1) = kScaleMinQ4K(sm, 1), (s2, m2) = kScaleMinQ4K(sm, 2), (s3, m3) = kScaleMinQ4K(sm, 3)
        let (s4, m4) = kScaleMinQ4K(sm, 4), (s5, m5) = kScaleMinQ4K(sm, 5), (s6, m6) = kScaleMinQ4K(sm, 6), (s7, m7) = kScaleMinQ4K(sm, 7)
        store16(expand4(d * s0, d * s1, d * s2, d * s3), s.ws + 32 &* sb)
        store16(expand4(d * s4, d * s5, d * s6, d * s7), s.ws + (32 &* sb &+ 16))
        // Mins as one 8-lane store (the min term loads them as vectors: scalar stores would stall store forwarding).
        UnsafeMutableRawPointer(s.wm + 8 &* sb).storeBytes(of: SIMD8<Float>(dmin * m0, dmin * m1, dmin * m2, dmin * m3, dmin * m4, dmin * m5, dmin * m6, dmin * m7), as: SIMD8<Float>.self)
    }
}

@inline(never) func unpackQ6_K(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    for sb in 0..<ng / 2 {
        let blk = row + 210 &* (g0 / 2 &+ sb)
        let p = blk.assumingMemoryBound(to: UInt8.self)
        let d = kF16(blk, 208)
        // Group c (elements 128c ..< +128): block t = elements 128c + 32t ..< +32; 6-bit q from ql (nibble) and qh
        // (2 bits), minus 32 (as signed bytes), times the int8 scale of each 16 (|q| <= 32 * 128 fits Int16).
        let zs = SIMD8<Int16>(repeating: Int16(truncatingIfNeeded: s.z))
        do {
            let v0 = unsafeBitCast(SIMD32<UInt8>(
            (p[0] & 15) | ((p[128] >> 0) & 3) << 4,
            (p[1] & 15) | ((p[129] >> 0) & 3) << 4,
            (p[2] & 15) | ((p[130] >> 0) & 3) << 4,
            (p[3] & 15) | ((p[131] >> 0) & 3) << 4,
            (p[4] & 15) | ((p[132] >> 0) & 3) << 4,
            (p[5] & 15) | ((p[133] >> 0) & 3) << 4,
            (p[6] & 15) | ((p[134] >> 0) & 3) << 4,
            (p[7] & 15) | ((p[135] >> 0) & 3) << 4,
            (p[8] & 15) | ((p[136] >> 0) & 3) << 4,
            (p[9] & 15) | ((p[137] >> 0) & 3) << 4,
            (p[10] & 15) | ((p[138] >> 0) & 3) << 4,
            (p[11] & 15) | ((p[139] >> 0) & 3) << 4,
            (p[12] & 15) | ((p[140] >> 0) & 3) << 4,
            (p[13] & 15) | ((p[141] >> 0) & 3) << 4,
            (p[14] & 15) | ((p[142] >> 0) & 3) << 4,
            (p[15] & 15) | ((p[143] >> 0) & 3) << 4,
            (p[16] & 15) | ((p[144] >> 0) & 3) << 4,
            (p[17] & 15) | ((p[145] >> 0) & 3) << 4,
            (p[18] & 15) | ((p[146] >> 0) & 3) << 4,
            (p[19] & 15) | ((p[147] >> 0) & 3) << 4,
            (p[20] & 15) | ((p[148] >> 0) & 3) << 4,
            (p[21] & 15) | ((p[149] >> 0) & 3) << 4,
            (p[22] & 15) | ((p[150] >> 0) & 3) << 4,
            (p[23] & 15) | ((p[151] >> 0) & 3) << 4,
            (p[24] & 15) | ((p[152] >> 0) & 3) << 4,
            (p[25] & 15) | ((p[153] >> 0) & 3) << 4,
            (p[26] & 15) | ((p[154] >> 0) & 3) << 4,
            (p[27] & 15) | ((p[155] >> 0) & 3) << 4,
            (p[28] & 15) | ((p[156] >> 0) & 3) << 4,
            (p[29] & 15) | ((p[157] >> 0) & 3) << 4,
            (p[30] & 15) | ((p[158] >> 0) & 3) << 4,
            (p[31] & 15) | ((p[159] >> 0) & 3) << 4), to: SIMD4<UInt64>.self)
            let v1 = unsafeBitCast(SIMD32<UInt8>(
            (p[32] & 15) | ((p[128] >> 2) & 3) << 4,
            (p[33] & 15) | ((p[129] >> 2) & 3) << 4,
            (p[34] & 15) | ((p[130] >> 2) & 3) << 4,
            (p[35] & 15) | ((p[131] >> 2) & 3) << 4,
            (p[36] & 15) | ((p[132] >> 2) & 3) << 4,
            (p[37] & 15) | ((p[133] >> 2) & 3) << 4,
            (p[38] & 15) | ((p[134] >> 2) & 3) << 4,
            (p[39] & 15) | ((p[135] >> 2) & 3) << 4,
            (p[40] & 15) | ((p[136] >> 2) & 3) << 4,
            (p[41] & 15) | ((p[137] >> 2) & 3) << 4,
            (p[42] & 15) | ((p[138] >> 2) & 3) << 4,
            (p[43] & 15) | ((p[139] >> 2) & 3) << 4,
            (p[44] & 15) | ((p[140] >> 2) & 3) << 4,
            (p[45] & 15) | ((p[141] >> 2) & 3) << 4,
            (p[46] & 15) | ((p[142] >> 2) & 3) << 4,
            (p[47] & 15) | ((p[143] >> 2) & 3) << 4,
            (p[48] & 15) | ((p[144] >> 2) & 3) << 4,
            (p[49] & 15) | ((p[145] >> 2) & 3) << 4,
            (p[50] & 15) | ((p[146] >> 2) & 3) << 4,
            (p[51] & 15) | ((p[147] >> 2) & 3) << 4,
            (p[52] & 15) | ((p[148] >> 2) & 3) << 4,
            (p[53] & 15) | ((p[149] >> 2) & 3) << 4,
            (p[54] & 15) | ((p[150] >> 2) & 3) << 4,
            (p[55] & 15) | ((p[151] >> 2) & 3) << 4,
            (p[56] & 15) | ((p[152] >> 2) & 3) << 4,
            (p[57] & 15) | ((p[153] >> 2) & 3) << 4,
            (p[58] & 15) | ((p[154] >> 2) & 3) << 4,
            (p[59] & 15) | ((p[155] >> 2) & 3) << 4,
            (p[60] & 15) | ((p[156] >> 2) & 3) << 4,
            (p[61] & 15) | ((p[157] >> 2) & 3) << 4,
            (p[62] & 15) | ((p[158] >> 2) & 3) << 4,
            (p[63] & 15) | ((p[159] >> 2) & 3) << 4), to: SIMD4<UInt64>.self)
            let v2 = unsafeBitCast(SIMD32<UInt8>(
            (p[0] >> 4) | ((p[128] >> 4) & 3) << 4,
            (p[1] >> 4) | ((p[129] >> 4) & 3) << 4,
            (p[2] >> 4) | ((p[130] >> 4) & 3) << 4,
            (p[3] >> 4) | ((p[131] >> 4) & 3) << 4,
            (p[4] >> 4) | ((p[132] >> 4) & 3) << 4,
            (p[5] >> 4) | ((p[133] >> 4) & 3) << 4,
            (p[6] >> 4) | ((p[134] >> 4) & 3) << 4,
            (p[7] >> 4) | ((p[135] >> 4) & 3) << 4,
            (p[8] >> 4) | ((p[136] >> 4) & 3) << 4,
            (p[9] >> 4) | ((p[137] >> 4) & 3) << 4,
            (p[10] >> 4) | ((p[138] >> 4) & 3) << 4,
            (p[11] >> 4) | ((p[139] >> 4) & 3) << 4,
            (p[12] >> 4) | ((p[140] >> 4) & 3) << 4,
            (p[13] >> 4) | ((p[141] >> 4) & 3) << 4,
            (p[14] >> 4) | ((p[142] >> 4) & 3) << 4,
            (p[15] >> 4) | ((p[143] >> 4) & 3) << 4,
            (p[16] >> 4) | ((p[144] >> 4) & 3) << 4,
            (p[17] >> 4) | ((p[145] >> 4) & 3) << 4,
            (p[18] >> 4) | ((p[146] >> 4) & 3) << 4,
            (p[19] >> 4) | ((p[147] >> 4) & 3) << 4,
            (p[20] >> 4) | ((p[148] >> 4) & 3) << 4,
            (p[21] >> 4) | ((p[149] >> 4) & 3) << 4,
            (p[22] >> 4) | ((p[150] >> 4) & 3) << 4,
            (p[23] >> 4) | ((p[151] >> 4) & 3) << 4,
            (p[24] >> 4) | ((p[152] >> 4) & 3) << 4,
            (p[25] >> 4) | ((p[153] >> 4) & 3) << 4,
            (p[26] >> 4) | ((p[154] >> 4) & 3) << 4,
            (p[27] >> 4) | ((p[155] >> 4) & 3) << 4,
            (p[28] >> 4) | ((p[156] >> 4) & 3) << 4,
            (p[29] >> 4) | ((p[157] >> 4) & 3) << 4,
            (p[30] >> 4) | ((p[158] >> 4) & 3) << 4,
            (p[31] >> 4) | ((p[159] >> 4) & 3) << 4), to: SIMD4<UInt64>.self)
            let v3 = unsafeBitCast(SIMD32<UInt8>(
            (p[32] >> 4) | (p[128] >> 6) << 4,
            (p[33] >> 4) | (p[129] >> 6) << 4,
            (p[34] >> 4) | (p[130] >> 6) << 4,
            (p[35] >> 4) | (p[131] >> 6) << 4,
            (p[36] >> 4) | (p[132] >> 6) << 4,
            (p[37] >> 4) | (p[133] >> 6) << 4,
            (p[38] >> 4) | (p[134] >> 6) << 4,
            (p[39] >> 4) | (p[135] >> 6) << 4,
            (p[40] >> 4) | (p[136] >> 6) << 4,
            (p[41] >> 4) | (p[137] >> 6) << 4,
            (p[42] >> 4) | (p[138] >> 6) << 4,
            (p[43] >> 4) | (p[139] >> 6) << 4,
            (p[44] >> 4) | (p[140] >> 6) << 4,
            (p[45] >> 4) | (p[141] >> 6) << 4,
            (p[46] >> 4) | (p[142] >> 6) << 4,
            (p[47] >> 4) | (p[143] >> 6) << 4,
            (p[48] >> 4) | (p[144] >> 6) << 4,
            (p[49] >> 4) | (p[145] >> 6) << 4,
            (p[50] >> 4) | (p[146] >> 6) << 4,
            (p[51] >> 4) | (p[147] >> 6) << 4,
            (p[52] >> 4) | (p[148] >> 6) << 4,
            (p[53] >> 4) | (p[149] >> 6) << 4,
            (p[54] >> 4) | (p[150] >> 6) << 4,
            (p[55] >> 4) | (p[151] >> 6) << 4,
            (p[56] >> 4) | (p[152] >> 6) << 4,
            (p[57] >> 4) | (p[153] >> 6) << 4,
            (p[58] >> 4) | (p[154] >> 6) << 4,
            (p[59] >> 4) | (p[155] >> 6) << 4,
            (p[60] >> 4) | (p[156] >> 6) << 4,
            (p[61] >> 4) | (p[157] >> 6) << 4,
            (p[62] >> 4) | (p[158] >> 6) << 4,
            (p[63] >> 4) | (p[159] >> 6) << 4), to: SIMD4<UInt64>.self)
            let a0 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v0[0], v0[1], v2[0], v2[1]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let b0 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v1[0], v1[1], v3[0], v3[1]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let a1 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v0[2], v0[3], v2[2], v2[3]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let b1 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v1[2], v1[3], v3[2], v3[3]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let c0 = unsafeBitCast(SIMD4<UInt64>(a0[0], b0[0], a0[2], b0[2]), to: SIMD32<Int8>.self)
            let c1 = unsafeBitCast(SIMD4<UInt64>(a0[1], b0[1], a0[3], b0[3]), to: SIMD32<Int8>.self)
            let c2 = unsafeBitCast(SIMD4<UInt64>(a1[0], b1[0], a1[2], b1[2]), to: SIMD32<Int8>.self)
            let c3 = unsafeBitCast(SIMD4<UInt64>(a1[1], b1[1], a1[3], b1[3]), to: SIMD32<Int8>.self)
            let sv = SIMD8<Int16>(Int16(Int8(bitPattern: p[192])), Int16(Int8(bitPattern: p[193])), Int16(Int8(bitPattern: p[194])), Int16(Int8(bitPattern: p[195])), Int16(Int8(bitPattern: p[196])), Int16(Int8(bitPattern: p[197])), Int16(Int8(bitPattern: p[198])), Int16(Int8(bitPattern: p[199]))) &+ zs
            let sc0 = SIMD32<Int16>(
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6])
            let sc1 = SIMD32<Int16>(
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7])
            let w0 = s.w + 128 &* (2 &* sb &+ 0)
            store32(mul32(SIMD32<Int16>(
            Int16(c0[0]),
            Int16(c0[1]),
            Int16(c0[2]),
            Int16(c0[3]),
            Int16(c0[4]),
            Int16(c0[5]),
            Int16(c0[6]),
            Int16(c0[7]),
            Int16(c0[8]),
            Int16(c0[9]),
            Int16(c0[10]),
            Int16(c0[11]),
            Int16(c0[12]),
            Int16(c0[13]),
            Int16(c0[14]),
            Int16(c0[15]),
            Int16(c0[16]),
            Int16(c0[17]),
            Int16(c0[18]),
            Int16(c0[19]),
            Int16(c0[20]),
            Int16(c0[21]),
            Int16(c0[22]),
            Int16(c0[23]),
            Int16(c0[24]),
            Int16(c0[25]),
            Int16(c0[26]),
            Int16(c0[27]),
            Int16(c0[28]),
            Int16(c0[29]),
            Int16(c0[30]),
            Int16(c0[31])), sc0), w0 + 0)
            store32(mul32(SIMD32<Int16>(
            Int16(c1[0]),
            Int16(c1[1]),
            Int16(c1[2]),
            Int16(c1[3]),
            Int16(c1[4]),
            Int16(c1[5]),
            Int16(c1[6]),
            Int16(c1[7]),
            Int16(c1[8]),
            Int16(c1[9]),
            Int16(c1[10]),
            Int16(c1[11]),
            Int16(c1[12]),
            Int16(c1[13]),
            Int16(c1[14]),
            Int16(c1[15]),
            Int16(c1[16]),
            Int16(c1[17]),
            Int16(c1[18]),
            Int16(c1[19]),
            Int16(c1[20]),
            Int16(c1[21]),
            Int16(c1[22]),
            Int16(c1[23]),
            Int16(c1[24]),
            Int16(c1[25]),
            Int16(c1[26]),
            Int16(c1[27]),
            Int16(c1[28]),
            Int16(c1[29]),
            Int16(c1[30]),
            Int16(c1[31])), sc0), w0 + 32)
            store32(mul32(SIMD32<Int16>(
            Int16(c2[0]),
            Int16(c2[1]),
            Int16(c2[2]),
            Int16(c2[3]),
            Int16(c2[4]),
            Int16(c2[5]),
            Int16(c2[6]),
            Int16(c2[7]),
            Int16(c2[8]),
            Int16(c2[9]),
            Int16(c2[10]),
            Int16(c2[11]),
            Int16(c2[12]),
            Int16(c2[13]),
            Int16(c2[14]),
            Int16(c2[15]),
            Int16(c2[16]),
            Int16(c2[17]),
            Int16(c2[18]),
            Int16(c2[19]),
            Int16(c2[20]),
            Int16(c2[21]),
            Int16(c2[22]),
            Int16(c2[23]),
            Int16(c2[24]),
            Int16(c2[25]),
            Int16(c2[26]),
            Int16(c2[27]),
            Int16(c2[28]),
            Int16(c2[29]),
            Int16(c2[30]),
            Int16(c2[31])), sc1), w0 + 64)
            store32(mul32(SIMD32<Int16>(
            Int16(c3[0]),
            Int16(c3[1]),
            Int16(c3[2]),
            Int16(c3[3]),
            Int16(c3[4]),
            Int16(c3[5]),
            Int16(c3[6]),
            Int16(c3[7]),
            Int16(c3[8]),
            Int16(c3[9]),
            Int16(c3[10]),
            Int16(c3[11]),
            Int16(c3[12]),
            Int16(c3[13]),
            Int16(c3[14]),
            Int16(c3[15]),
            Int16(c3[16]),
            Int16(c3[17]),
            Int16(c3[18]),
            Int16(c3[19]),
            Int16(c3[20]),
            Int16(c3[21]),
            Int16(c3[22]),
            Int16(c3[23]),
            Int16(c3[24]),
            Int16(c3[25]),
            Int16(c3[26]),
            Int16(c3[27]),
            Int16(c3[28]),
            Int16(c3[29]),
            Int16(c3[30]),
            Int16(c3[31])), sc1), w0 + 96)
        }
        do {
            let v0 = unsafeBitCast(SIMD32<UInt8>(
            (p[64] & 15) | ((p[160] >> 0) & 3) << 4,
            (p[65] & 15) | ((p[161] >> 0) & 3) << 4,
            (p[66] & 15) | ((p[162] >> 0) & 3) << 4,
            (p[67] & 15) | ((p[163] >> 0) & 3) << 4,
            (p[68] & 15) | ((p[164] >> 0) & 3) << 4,
            (p[69] & 15) | ((p[165] >> 0) & 3) << 4,
            (p[70] & 15) | ((p[166] >> 0) & 3) << 4,
            (p[71] & 15) | ((p[167] >> 0) & 3) << 4,
            (p[72] & 15) | ((p[168] >> 0) & 3) << 4,
            (p[73] & 15) | ((p[169] >> 0) & 3) << 4,
            (p[74] & 15) | ((p[170] >> 0) & 3) << 4,
            (p[75] & 15) | ((p[171] >> 0) & 3) << 4,
            (p[76] & 15) | ((p[172] >> 0) & 3) << 4,
            (p[77] & 15) | ((p[173] >> 0) & 3) << 4,
            (p[78] & 15) | ((p[174] >> 0) & 3) << 4,
            (p[79] & 15) | ((p[175] >> 0) & 3) << 4,
            (p[80] & 15) | ((p[176] >> 0) & 3) << 4,
            (p[81] & 15) | ((p[177] >> 0) & 3) << 4,
            (p[82] & 15) | ((p[178] >> 0) & 3) << 4,
            (p[83] & 15) | ((p[179] >> 0) & 3) << 4,
            (p[84] & 15) | ((p[180] >> 0) & 3) << 4,
            (p[85] & 15) | ((p[181] >> 0) & 3) << 4,
            (p[86] & 15) | ((p[182] >> 0) & 3) << 4,
            (p[87] & 15) | ((p[183] >> 0) & 3) << 4,
            (p[88] & 15) | ((p[184] >> 0) & 3) << 4,
            (p[89] & 15) | ((p[185] >> 0) & 3) << 4,
            (p[90] & 15) | ((p[186] >> 0) & 3) << 4,
            (p[91] & 15) | ((p[187] >> 0) & 3) << 4,
            (p[92] & 15) | ((p[188] >> 0) & 3) << 4,
            (p[93] & 15) | ((p[189] >> 0) & 3) << 4,
            (p[94] & 15) | ((p[190] >> 0) & 3) << 4,
            (p[95] & 15) | ((p[191] >> 0) & 3) << 4), to: SIMD4<UInt64>.self)
            let v1 = unsafeBitCast(SIMD32<UInt8>(
            (p[96] & 15) | ((p[160] >> 2) & 3) << 4,
            (p[97] & 15) | ((p[161] >> 2) & 3) << 4,
            (p[98] & 15) | ((p[162] >> 2) & 3) << 4,
            (p[99] & 15) | ((p[163] >> 2) & 3) << 4,
            (p[100] & 15) | ((p[164] >> 2) & 3) << 4,
            (p[101] & 15) | ((p[165] >> 2) & 3) << 4,
            (p[102] & 15) | ((p[166] >> 2) & 3) << 4,
            (p[103] & 15) | ((p[167] >> 2) & 3) << 4,
            (p[104] & 15) | ((p[168] >> 2) & 3) << 4,
            (p[105] & 15) | ((p[169] >> 2) & 3) << 4,
            (p[106] & 15) | ((p[170] >> 2) & 3) << 4,
            (p[107] & 15) | ((p[171] >> 2) & 3) << 4,
            (p[108] & 15) | ((p[172] >> 2) & 3) << 4,
            (p[109] & 15) | ((p[173] >> 2) & 3) << 4,
            (p[110] & 15) | ((p[174] >> 2) & 3) << 4,
            (p[111] & 15) | ((p[175] >> 2) & 3) << 4,
            (p[112] & 15) | ((p[176] >> 2) & 3) << 4,
            (p[113] & 15) | ((p[177] >> 2) & 3) << 4,
            (p[114] & 15) | ((p[178] >> 2) & 3) << 4,
            (p[115] & 15) | ((p[179] >> 2) & 3) << 4,
            (p[116] & 15) | ((p[180] >> 2) & 3) << 4,
            (p[117] & 15) | ((p[181] >> 2) & 3) << 4,
            (p[118] & 15) | ((p[182] >> 2) & 3) << 4,
            (p[119] & 15) | ((p[183] >> 2) & 3) << 4,
            (p[120] & 15) | ((p[184] >> 2) & 3) << 4,
            (p[121] & 15) | ((p[185] >> 2) & 3) << 4,
            (p[122] & 15) | ((p[186] >> 2) & 3) << 4,
            (p[123] & 15) | ((p[187] >> 2) & 3) << 4,
            (p[124] & 15) | ((p[188] >> 2) & 3) << 4,
            (p[125] & 15) | ((p[189] >> 2) & 3) << 4,
            (p[126] & 15) | ((p[190] >> 2) & 3) << 4,
            (p[127] & 15) | ((p[191] >> 2) & 3) << 4), to: SIMD4<UInt64>.self)
            let v2 = unsafeBitCast(SIMD32<UInt8>(
            (p[64] >> 4) | ((p[160] >> 4) & 3) << 4,
            (p[65] >> 4) | ((p[161] >> 4) & 3) << 4,
            (p[66] >> 4) | ((p[162] >> 4) & 3) << 4,
            (p[67] >> 4) | ((p[163] >> 4) & 3) << 4,
            (p[68] >> 4) | ((p[164] >> 4) & 3) << 4,
            (p[69] >> 4) | ((p[165] >> 4) & 3) << 4,
            (p[70] >> 4) | ((p[166] >> 4) & 3) << 4,
            (p[71] >> 4) | ((p[167] >> 4) & 3) << 4,
            (p[72] >> 4) | ((p[168] >> 4) & 3) << 4,
            (p[73] >> 4) | ((p[169] >> 4) & 3) << 4,
            (p[74] >> 4) | ((p[170] >> 4) & 3) << 4,
            (p[75] >> 4) | ((p[171] >> 4) & 3) << 4,
            (p[76] >> 4) | ((p[172] >> 4) & 3) << 4,
            (p[77] >> 4) | ((p[173] >> 4) & 3) << 4,
            (p[78] >> 4) | ((p[174] >> 4) & 3) << 4,
            (p[79] >> 4) | ((p[175] >> 4) & 3) << 4,
            (p[80] >> 4) | ((p[176] >> 4) & 3) << 4,
            (p[81] >> 4) | ((p[177] >> 4) & 3) << 4,
            (p[82] >> 4) | ((p[178] >> 4) & 3) << 4,
            (p[83] >> 4) | ((p[179] >> 4) & 3) << 4,
            (p[84] >> 4) | ((p[180] >> 4) & 3) << 4,
            (p[85] >> 4) | ((p[181] >> 4) & 3) << 4,
            (p[86] >> 4) | ((p[182] >> 4) & 3) << 4,
            (p[87] >> 4) | ((p[183] >> 4) & 3) << 4,
            (p[88] >> 4) | ((p[184] >> 4) & 3) << 4,
            (p[89] >> 4) | ((p[185] >> 4) & 3) << 4,
            (p[90] >> 4) | ((p[186] >> 4) & 3) << 4,
            (p[91] >> 4) | ((p[187] >> 4) & 3) << 4,
            (p[92] >> 4) | ((p[188] >> 4) & 3) << 4,
            (p[93] >> 4) | ((p[189] >> 4) & 3) << 4,
            (p[94] >> 4) | ((p[190] >> 4) & 3) << 4,
            (p[95] >> 4) | ((p[191] >> 4) & 3) << 4), to: SIMD4<UInt64>.self)
            let v3 = unsafeBitCast(SIMD32<UInt8>(
            (p[96] >> 4) | (p[160] >> 6) << 4,
            (p[97] >> 4) | (p[161] >> 6) << 4,
            (p[98] >> 4) | (p[162] >> 6) << 4,
            (p[99] >> 4) | (p[163] >> 6) << 4,
            (p[100] >> 4) | (p[164] >> 6) << 4,
            (p[101] >> 4) | (p[165] >> 6) << 4,
            (p[102] >> 4) | (p[166] >> 6) << 4,
            (p[103] >> 4) | (p[167] >> 6) << 4,
            (p[104] >> 4) | (p[168] >> 6) << 4,
            (p[105] >> 4) | (p[169] >> 6) << 4,
            (p[106] >> 4) | (p[170] >> 6) << 4,
            (p[107] >> 4) | (p[171] >> 6) << 4,
            (p[108] >> 4) | (p[172] >> 6) << 4,
            (p[109] >> 4) | (p[173] >> 6) << 4,
            (p[110] >> 4) | (p[174] >> 6) << 4,
            (p[111] >> 4) | (p[175] >> 6) << 4,
            (p[112] >> 4) | (p[176] >> 6) << 4,
            (p[113] >> 4) | (p[177] >> 6) << 4,
            (p[114] >> 4) | (p[178] >> 6) << 4,
            (p[115] >> 4) | (p[179] >> 6) << 4,
            (p[116] >> 4) | (p[180] >> 6) << 4,
            (p[117] >> 4) | (p[181] >> 6) << 4,
            (p[118] >> 4) | (p[182] >> 6) << 4,
            (p[119] >> 4) | (p[183] >> 6) << 4,
            (p[120] >> 4) | (p[184] >> 6) << 4,
            (p[121] >> 4) | (p[185] >> 6) << 4,
            (p[122] >> 4) | (p[186] >> 6) << 4,
            (p[123] >> 4) | (p[187] >> 6) << 4,
            (p[124] >> 4) | (p[188] >> 6) << 4,
            (p[125] >> 4) | (p[189] >> 6) << 4,
            (p[126] >> 4) | (p[190] >> 6) << 4,
            (p[127] >> 4) | (p[191] >> 6) << 4), to: SIMD4<UInt64>.self)
            let a0 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v0[0], v0[1], v2[0], v2[1]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let b0 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v1[0], v1[1], v3[0], v3[1]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let a1 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v0[2], v0[3], v2[2], v2[3]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let b1 = unsafeBitCast(unsafeBitCast(SIMD4<UInt64>(v1[2], v1[3], v3[2], v3[3]), to: SIMD32<UInt8>.self) &- SIMD32<UInt8>(repeating: 32), to: SIMD4<UInt64>.self)
            let c0 = unsafeBitCast(SIMD4<UInt64>(a0[0], b0[0], a0[2], b0[2]), to: SIMD32<Int8>.self)
            let c1 = unsafeBitCast(SIMD4<UInt64>(a0[1], b0[1], a0[3], b0[3]), to: SIMD32<Int8>.self)
            let c2 = unsafeBitCast(SIMD4<UInt64>(a1[0], b1[0], a1[2], b1[2]), to: SIMD32<Int8>.self)
            let c3 = unsafeBitCast(SIMD4<UInt64>(a1[1], b1[1], a1[3], b1[3]), to: SIMD32<Int8>.self)
            let sv = SIMD8<Int16>(Int16(Int8(bitPattern: p[200])), Int16(Int8(bitPattern: p[201])), Int16(Int8(bitPattern: p[202])), Int16(Int8(bitPattern: p[203])), Int16(Int8(bitPattern: p[204])), Int16(Int8(bitPattern: p[205])), Int16(Int8(bitPattern: p[206])), Int16(Int8(bitPattern: p[207]))) &+ zs
            let sc0 = SIMD32<Int16>(
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[0],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[2],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[4],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6],
            sv[6])
            let sc1 = SIMD32<Int16>(
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[1],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[3],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[5],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7],
            sv[7])
            let w1 = s.w + 128 &* (2 &* sb &+ 1)
            store32(mul32(SIMD32<Int16>(
            Int16(c0[0]),
            Int16(c0[1]),
            Int16(c0[2]),
            Int16(c0[3]),
            Int16(c0[4]),
            Int16(c0[5]),
            Int16(c0[6]),
            Int16(c0[7]),
            Int16(c0[8]),
            Int16(c0[9]),
            Int16(c0[10]),
            Int16(c0[11]),
            Int16(c0[12]),
            Int16(c0[13]),
            Int16(c0[14]),
            Int16(c0[15]),
            Int16(c0[16]),
            Int16(c0[17]),
            Int16(c0[18]),
            Int16(c0[19]),
            Int16(c0[20]),
            Int16(c0[21]),
            Int16(c0[22]),
            Int16(c0[23]),
            Int16(c0[24]),
            Int16(c0[25]),
            Int16(c0[26]),
            Int16(c0[27]),
            Int16(c0[28]),
            Int16(c0[29]),
            Int16(c0[30]),
            Int16(c0[31])), sc0), w1 + 0)
            store32(mul32(SIMD32<Int16>(
            Int16(c1[0]),
            Int16(c1[1]),
            Int16(c1[2]),
            Int16(c1[3]),
            Int16(c1[4]),
            Int16(c1[5]),
            Int16(c1[6]),
            Int16(c1[7]),
            Int16(c1[8]),
            Int16(c1[9]),
            Int16(c1[10]),
            Int16(c1[11]),
            Int16(c1[12]),
            Int16(c1[13]),
            Int16(c1[14]),
            Int16(c1[15]),
            Int16(c1[16]),
            Int16(c1[17]),
            Int16(c1[18]),
            Int16(c1[19]),
            Int16(c1[20]),
            Int16(c1[21]),
            Int16(c1[22]),
            Int16(c1[23]),
            Int16(c1[24]),
            Int16(c1[25]),
            Int16(c1[26]),
            Int16(c1[27]),
            Int16(c1[28]),
            Int16(c1[29]),
            Int16(c1[30]),
            Int16(c1[31])), sc0), w1 + 32)
            store32(mul32(SIMD32<Int16>(
            Int16(c2[0]),
            Int16(c2[1]),
            Int16(c2[2]),
            Int16(c2[3]),
            Int16(c2[4]),
            Int16(c2[5]),
            Int16(c2[6]),
            Int16(c2[7]),
            Int16(c2[8]),
            Int16(c2[9]),
            Int16(c2[10]),
            Int16(c2[11]),
            Int16(c2[12]),
            Int16(c2[13]),
            Int16(c2[14]),
            Int16(c2[15]),
            Int16(c2[16]),
            Int16(c2[17]),
            Int16(c2[18]),
            Int16(c2[19]),
            Int16(c2[20]),
            Int16(c2[21]),
            Int16(c2[22]),
            Int16(c2[23]),
            Int16(c2[24]),
            Int16(c2[25]),
            Int16(c2[26]),
            Int16(c2[27]),
            Int16(c2[28]),
            Int16(c2[29]),
            Int16(c2[30]),
            Int16(c2[31])), sc1), w1 + 64)
            store32(mul32(SIMD32<Int16>(
            Int16(c3[0]),
            Int16(c3[1]),
            Int16(c3[2]),
            Int16(c3[3]),
            Int16(c3[4]),
            Int16(c3[5]),
            Int16(c3[6]),
            Int16(c3[7]),
            Int16(c3[8]),
            Int16(c3[9]),
            Int16(c3[10]),
            Int16(c3[11]),
            Int16(c3[12]),
            Int16(c3[13]),
            Int16(c3[14]),
            Int16(c3[15]),
            Int16(c3[16]),
            Int16(c3[17]),
            Int16(c3[18]),
            Int16(c3[19]),
            Int16(c3[20]),
            Int16(c3[21]),
            Int16(c3[22]),
            Int16(c3[23]),
            Int16(c3[24]),
            Int16(c3[25]),
            Int16(c3[26]),
            Int16(c3[27]),
            Int16(c3[28]),
            Int16(c3[29]),
            Int16(c3[30]),
            Int16(c3[31])), sc1), w1 + 96)
        }
        let ws = SIMD16<Float>(repeating: d)
        store16(ws, s.ws + 32 &* sb)
        store16(ws, s.ws + (32 &* sb &+ 16))
    }
}

@inline(__always) func unpack(_ type: TensorType, _ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    switch type {
    case .q8_0: unpackQ8_0(row, g0, ng, nb, s)
    case .q4_0: unpackQ4_0(row, g0, ng, nb, s)
    case .q5_0: unpackQ5_0(row, g0, ng, nb, s)
    case .q4_K: unpackQ4_K(row, g0, ng, nb, s)
    case .q6_K: unpackQ6_K(row, g0, ng, nb, s)
    default: preconditionFailure("no integer row kernel for \(type)")
    }
}

// MARK: Kernels over unpacked groups g0 ..< g0 + ng (accumulators carried across chunks)

/// One activation row's accumulators: 16 f32 lanes (lanes 4m ..< 4m + 4: block m of each group) and the min term.
@usableFromInline struct RowAcc {
    var e = SIMD16<Float>()
    var m = SIMD8<Float>()  // min term (Q4_K), 8 lanes: sub-block j of each super-block in lane j
    /// The min term's 8 lanes summed as a fixed tree.
    @inline(__always) var minTerm: Float { ((m[0] + m[4]) + (m[2] + m[6])) + ((m[1] + m[5]) + (m[3] + m[7])) }
    /// Sum of the 16 lanes as a fixed tree (SIMD's .sum() is a serial chain of 15 adds), minus the min term.
    @inline(__always) var result: Float {
        let a = e
        let h = SIMD8<Float>(a[0] + a[8], a[1] + a[9], a[2] + a[10], a[3] + a[11], a[4] + a[12], a[5] + a[13], a[6] + a[14], a[7] + a[15])
        let q = SIMD4<Float>(h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7])
        return ((q[0] + q[2]) + (q[1] + q[3])) - minTerm
    }
}

/// Per activation row and group: acc += Float(groupDot) * (weight scales * activation scales), 16 lanes.
@inline(__always) func groupStep(_ acc: inout SIMD16<Float>, _ w: UnsafePointer<Int16>, _ ws: SIMD16<Float>, _ x: ActRow, _ g: Int) {
    acc = acc.addingProduct(lanesToFloat(groupDot(w, x.q + 128 &* g)), ws * load16(x.xs + 16 &* g))
}

/// Min term (Q4_K) of blocks b0 ..< b0 + n (multiples of 8) for one activation row.
@inline(__always) func minStep(_ m: inout SIMD8<Float>, _ s: RowScratch, _ b0: Int, _ n: Int, _ x: ActRow) {
    for j in stride(from: 0, to: n, by: 8) { m = m.addingProduct(load8(s.wm + j), load8(x.ds + b0 + j)) }
}

@inline(__always)
func kernel1(_ s: RowScratch, _ g0: Int, _ ng: Int, _ hasMin: Bool, _ x0: ActRow, _ a0: inout RowAcc) {
    var e0 = a0.e
    let w = UnsafePointer(s.w + s.z)
    for g in 0..<ng { groupStep(&e0, w + 128 &* g, load16(s.ws + 16 &* g), x0, g0 &+ g) }
    a0.e = e0
    if hasMin { minStep(&a0.m, s, 4 &* g0, 4 &* ng, x0) }
}

@inline(__always)
func kernel2(_ s: RowScratch, _ g0: Int, _ ng: Int, _ hasMin: Bool, _ x0: ActRow, _ x1: ActRow, _ a0: inout RowAcc, _ a1: inout RowAcc) {
    var e0 = a0.e, e1 = a1.e
    for g in 0..<ng {
        let w = UnsafePointer(s.w + 128 &* g), ws = load16(s.ws + 16 &* g)
        groupStep(&e0, w, ws, x0, g0 &+ g)
        groupStep(&e1, w, ws, x1, g0 &+ g)
    }
    a0.e = e0; a1.e = e1
    if hasMin { minStep(&a0.m, s, 4 &* g0, 4 &* ng, x0); minStep(&a1.m, s, 4 &* g0, 4 &* ng, x1) }
}

@inline(__always)
func kernel4(_ s: RowScratch, _ g0: Int, _ ng: Int, _ hasMin: Bool, _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
             _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc) {
    var e0 = a0.e, e1 = a1.e, e2 = a2.e, e3 = a3.e
    for g in 0..<ng {
        let w = UnsafePointer(s.w + 128 &* g), ws = load16(s.ws + 16 &* g)
        groupStep(&e0, w, ws, x0, g0 &+ g)
        groupStep(&e1, w, ws, x1, g0 &+ g)
        groupStep(&e2, w, ws, x2, g0 &+ g)
        groupStep(&e3, w, ws, x3, g0 &+ g)
    }
    a0.e = e0; a1.e = e1; a2.e = e2; a3.e = e3
    if hasMin {
        minStep(&a0.m, s, 4 &* g0, 4 &* ng, x0); minStep(&a1.m, s, 4 &* g0, 4 &* ng, x1)
        minStep(&a2.m, s, 4 &* g0, 4 &* ng, x2); minStep(&a3.m, s, 4 &* g0, 4 &* ng, x3)
    }
}

/// One row, Q8_0, unpacking fused into the loop (each group is stored to the scratch and read back through a
/// pointer the optimizer cannot relate to the store, so it stays a memory operand of vpdpwssd; the scales stay in
/// registers): the weight loads overlap the arithmetic. Same arithmetic as `kernel1`.
@inline(__always)
func kernel1FusedQ8_0(_ row: UnsafeRawPointer, _ nb: Int, _ s: RowScratch, _ x0: ActRow) -> Float {
    let z = s.z, ng = (nb &+ 3) &>> 2
    var e0 = SIMD16<Float>()
    let w = s.w, v = UnsafePointer(s.w + z)
    for g in 0..<ng {
        let (b0, b1, b2, b3) = groupBlocks(row, g, nb, 34, s.zeroBlock)
        let pf = b0 + rowPrefetchDistance
        llvmPrefetch(pf, 0, 3, 1); llvmPrefetch(pf + 64, 0, 3, 1); llvmPrefetch(pf + 128, 0, 3, 1)
        groupStep(&e0, v, unpackGroupQ8_0(b0, b1, b2, b3, w), x0, g)
    }
    var a0 = RowAcc()
    a0.e = e0
    return a0.result
}

/// Four rows, Q8_0, unpacking fused into the loop (see kernel1FusedQ8_0). Same arithmetic as `kernel4`.
@inline(__always)
func kernel4FusedQ8_0(_ row: UnsafeRawPointer, _ nb: Int, _ s: RowScratch, _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
                      _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc) {
    let z = s.z, ng = (nb &+ 3) &>> 2
    var e0 = a0.e, e1 = a1.e, e2 = a2.e, e3 = a3.e
    let w = s.w, v = UnsafePointer(s.w + z)
    for g in 0..<ng {
        let (b0, b1, b2, b3) = groupBlocks(row, g, nb, 34, s.zeroBlock)
        let ws = unpackGroupQ8_0(b0, b1, b2, b3, w)
        groupStep(&e0, v, ws, x0, g)
        groupStep(&e1, v, ws, x1, g)
        groupStep(&e2, v, ws, x2, g)
        groupStep(&e3, v, ws, x3, g)
    }
    a0.e = e0; a1.e = e1; a2.e = e2; a3.e = e3
}

/// LLVM's prefetch intrinsic (address, rw 0 = read, locality 0...3, cache 1 = data): `prefetcht0`. Swift has no
/// prefetch; declaring the intrinsic by its symbol name works (Swift 6.1) and compiles to the single instruction.
@_silgen_name("llvm.prefetch.p0")
func llvmPrefetch(_ p: UnsafeRawPointer, _ rw: Int32, _ locality: Int32, _ cache: Int32)
/// Bytes ahead for the software prefetch of streamed weight rows.
let rowPrefetchDistance = 2048

/// Two Q8_0 weight rows times four activation rows (the 4-row `dotRowsMany` path), unpacking fused: each activation
/// vector is loaded once for both weight rows. Per output exactly the operations of `kernel4`.
@inline(__always)
func kernel4FusedPairQ8_0(_ rowA: UnsafeRawPointer, _ rowB: UnsafeRawPointer, _ nb: Int, _ s: RowScratch,
                          _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
                          _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc,
                          _ c0: inout RowAcc, _ c1: inout RowAcc, _ c2: inout RowAcc, _ c3: inout RowAcc) {
    let z = s.z, ng = (nb &+ 3) &>> 2
    var eA0 = a0.e, eA1 = a1.e, eA2 = a2.e, eA3 = a3.e
    var eB0 = c0.e, eB1 = c1.e, eB2 = c2.e, eB3 = c3.e
    let wA = s.w, wB = s.w + 128
    let vA = UnsafePointer(wA + z), vB = UnsafePointer(wB + z)
    for g in 0..<ng {
        // Software prefetch ~3 rows ahead in both streams (the head streams from DRAM).
        let pa = rowA + (136 &* g &+ rowPrefetchDistance), pb = rowB + (136 &* g &+ rowPrefetchDistance)
        llvmPrefetch(pa, 0, 3, 1); llvmPrefetch(pa + 64, 0, 3, 1); llvmPrefetch(pa + 128, 0, 3, 1)
        llvmPrefetch(pb, 0, 3, 1); llvmPrefetch(pb + 64, 0, 3, 1); llvmPrefetch(pb + 128, 0, 3, 1)
        let (a0p, a1p, a2p, a3p) = groupBlocks(rowA, g, nb, 34, s.zeroBlock)
        let (b0p, b1p, b2p, b3p) = groupBlocks(rowB, g, nb, 34, s.zeroBlock)
        let wsA = unpackGroupQ8_0(a0p, a1p, a2p, a3p, wA)
        let wsB = unpackGroupQ8_0(b0p, b1p, b2p, b3p, wB)
        groupStep(&eA0, vA, wsA, x0, g); groupStep(&eB0, vB, wsB, x0, g)
        groupStep(&eA1, vA, wsA, x1, g); groupStep(&eB1, vB, wsB, x1, g)
        groupStep(&eA2, vA, wsA, x2, g); groupStep(&eB2, vB, wsB, x2, g)
        groupStep(&eA3, vA, wsA, x3, g); groupStep(&eB3, vB, wsB, x3, g)
    }
    a0.e = eA0; a1.e = eA1; a2.e = eA2; a3.e = eA3
    c0.e = eB0; c1.e = eB1; c2.e = eB2; c3.e = eB3
}

/// Two weight rows, unpacked one after the other (row A: groups 0 ..< ng of the scratch, row B: ng ..< 2 ng), times
/// four activation rows: each activation vector is loaded once for both weight rows. Per output exactly the
/// operations of `kernel4`.
@inline(__always)
func kernel4Pair(_ ng: Int, _ s: RowScratch, _ x0: ActRow, _ x1: ActRow, _ x2: ActRow, _ x3: ActRow,
                 _ a0: inout RowAcc, _ a1: inout RowAcc, _ a2: inout RowAcc, _ a3: inout RowAcc,
                 _ c0: inout RowAcc, _ c1: inout RowAcc, _ c2: inout RowAcc, _ c3: inout RowAcc) {
    let z = s.z
    var eA0 = a0.e, eA1 = a1.e, eA2 = a2.e, eA3 = a3.e
    var eB0 = c0.e, eB1 = c1.e, eB2 = c2.e, eB3 = c3.e
    let wA = UnsafePointer(s.w + z), wB = UnsafePointer(s.w + (128 &* ng &+ z))
    let sA = UnsafePointer(s.ws), sB = UnsafePointer(s.ws + 16 &* ng)
    for g in 0..<ng {
        let wa = wA + 128 &* g, wb = wB + 128 &* g, wsA = load16(sA + 16 &* g), wsB = load16(sB + 16 &* g)
        groupStep(&eA0, wa, wsA, x0, g); groupStep(&eB0, wb, wsB, x0, g)
        groupStep(&eA1, wa, wsA, x1, g); groupStep(&eB1, wb, wsB, x1, g)
        groupStep(&eA2, wa, wsA, x2, g); groupStep(&eB2, wb, wsB, x2, g)
        groupStep(&eA3, wa, wsA, x3, g); groupStep(&eB3, wb, wsB, x3, g)
    }
    a0.e = eA0; a1.e = eA1; a2.e = eA2; a3.e = eA3
    c0.e = eB0; c1.e = eB1; c2.e = eB2; c3.e = eB3
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
        let u = treeLevel2(treeLevel1(a0.e, a1.e), treeLevel1(a2.e, a3.e))
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
    let v0 = a0.e, v1 = a1.e, v2 = a2.e, v3 = a3.e
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
/// `cols % 32 == 0` (`% 256` for Q4_K / Q6_K).
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
        // One activation row (decode): several weight rows per unpacking pass (dotRowsMany1), the rest one by one.
        let done = batch == 1 ? dotRowsMany1(f, rows, rowBytes: rowBytes, count: count, cols: cols, a, into: y, s, firstRow: firstRow) : 0
        for i in done..<count {
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

/// `dotRowsMany` for one activation row, `k` weight rows per pass (4 when they fit the scratch, else 2): the rows
/// are contiguous whole groups (32-weight formats with `cols % 128 == 0`, the K formats always), so one unpacking
/// call reads them as one long row, and the `k` rows' dot products run interleaved (independent accumulator chains).
/// Per output exactly the operations of `kernel1` (bit-identical to `dotRowsImpl` with batch 1). Short rows of the
/// decode step (Q5_0 q/k/gate/up, 640 weights: 5 groups) otherwise paid an unpacking call, a loop setup and a
/// 20-cycle reduction chain each. Returns the number of rows done (a multiple of `k`; 0 where it does not apply:
/// Q8_0, which has its fused kernel, or partial groups).
@inline(never)
func dotRowsMany1(_ f: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                  into y: UnsafeMutablePointer<Float>, _ s: RowScratch, firstRow: Int) -> Int {
    let nb = cols / 32, ng = nb &>> 2, hasMin = f == .q4_K
    guard f != .q8_0, nb & 3 == 0, 2 &* ng <= rowChunkGroups else { return 0 }
    let k = 4 &* ng <= rowChunkGroups ? 4 : 2
    let x0 = a.actRow(firstRow, cols: cols)
    var i = 0
    while i &+ k <= count {
        unpack(f, rows + i &* rowBytes, 0, k &* ng, k &* nb, s)
        let w = UnsafePointer(s.w + s.z)
        var e0 = SIMD16<Float>(), e1 = SIMD16<Float>(), e2 = SIMD16<Float>(), e3 = SIMD16<Float>()
        if k == 4 {
            for g in 0..<ng {
                groupStep(&e0, w + 128 &* g, load16(s.ws + 16 &* g), x0, g)
                groupStep(&e1, w + 128 &* (ng &+ g), load16(s.ws + 16 &* (ng &+ g)), x0, g)
                groupStep(&e2, w + 128 &* (2 &* ng &+ g), load16(s.ws + 16 &* (2 &* ng &+ g)), x0, g)
                groupStep(&e3, w + 128 &* (3 &* ng &+ g), load16(s.ws + 16 &* (3 &* ng &+ g)), x0, g)
            }
        } else {
            for g in 0..<ng {
                groupStep(&e0, w + 128 &* g, load16(s.ws + 16 &* g), x0, g)
                groupStep(&e1, w + 128 &* (ng &+ g), load16(s.ws + 16 &* (ng &+ g)), x0, g)
            }
        }
        var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
        a0.e = e0; a1.e = e1; a2.e = e2; a3.e = e3
        if hasMin {
            // Row r's mins start at block 4 ng r of the scratch; its activations at block 0.
            var sr = s
            minStep(&a0.m, sr, 0, nb, x0)
            sr.wm = s.wm + nb; minStep(&a1.m, sr, 0, nb, x0)
            if k == 4 {
                sr.wm = s.wm + 2 &* nb; minStep(&a2.m, sr, 0, nb, x0)
                sr.wm = s.wm + 3 &* nb; minStep(&a3.m, sr, 0, nb, x0)
            }
        }
        y[i] = a0.result; y[i &+ 1] = a1.result
        if k == 4 { y[i &+ 2] = a2.result; y[i &+ 3] = a3.result }
        i &+= k
    }
    return i
}

/// `dotRowsMany` for four activation rows (the server's batch), in its own function so that the other batches' code
/// is compiled as before. Each weight row's 4 outputs are half reduced and stored (emit4), every 4 weight rows
/// finished together (finishGroup): the same additions as RowAcc.result. 32-weight formats: two weight rows per
/// iteration (kernel4FusedPairQ8_0, kernel4Pair).
@inline(never)
func dotRowsMany4(_ type: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                  into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int) {
    let s = RowScratch(scratch, z: kernelOpaqueZero), red = s.red
    @inline(__always) func run(_ f: TensorType) {
        let hasMin = f == .q4_K
        var i = 0
        do {
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

/// The 4-row `dotRowsMany` path, two weight rows at a time (kernel4FusedPairQ8_0; kernel4Pair when both rows fit
/// the scratch).
/// Returns the number of weight rows done (their group slots as in dotRowsMany4), or -1 when all are done and stored.
@inline(never)
func dotRowsMany4Pairs(_ f: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                       into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int) -> Int {
    let red = s.red
    var i = 0
    let nb = cols / 32, ng = (nb &+ 3) &>> 2
    let x0 = a.actRow(firstRow, cols: cols), x1 = a.actRow(firstRow &+ 1, cols: cols)
    let x2 = a.actRow(firstRow &+ 2, cols: cols), x3 = a.actRow(firstRow &+ 3, cols: cols)
    if f == .q8_0 {
        // Q8_0: two weight rows at a time with the unpacking fused (kernel4FusedPairQ8_0), from two sequential
        // streams (rows i and h + i): adjacent rows interleaved block by block streamed 30% slower from DRAM.
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
    if 2 &* ng <= rowChunkGroups {
        // Two weight rows at a time (see kernel4Pair).
        let hasMin = f == .q4_K
        while i &+ 2 <= count {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            var c0 = RowAcc(), c1 = RowAcc(), c2 = RowAcc(), c3 = RowAcc()
            var sB = s
            sB.w = s.w + 128 &* ng; sB.ws = s.ws + 16 &* ng; sB.wm = s.wm + 4 &* ng
            unpack(f, rows + i &* rowBytes, 0, ng, nb, s)
            unpack(f, rows + (i &+ 1) &* rowBytes, 0, ng, nb, sB)
            kernel4Pair(ng, s, x0, x1, x2, x3, &a0, &a1, &a2, &a3, &c0, &c1, &c2, &c3)
            if hasMin {
                minStep(&a0.m, s, 0, nb, x0); minStep(&a1.m, s, 0, nb, x1); minStep(&a2.m, s, 0, nb, x2); minStep(&a3.m, s, 0, nb, x3)
                minStep(&c0.m, sB, 0, nb, x0); minStep(&c1.m, sB, 0, nb, x1); minStep(&c2.m, sB, 0, nb, x2); minStep(&c3.m, sB, 0, nb, x3)
            }
            let slot = red + ((i &>> 2) & 1) &* groupSlotFloats
            emit4(a0, a1, a2, a3, slot, i & 3, hasMin, y, yStride)
            emit4(c0, c1, c2, c3, slot, (i &+ 1) & 3, hasMin, y, yStride)
            if i & 3 == 0 && i > 0 {
                finishGroup(UnsafePointer(red + (((i &>> 2) &- 1) & 1) &* groupSlotFloats), 4, hasMin, y + (i &- 4), yStride)
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
    let nb = cols / 32, ng = (nb &+ 3) &>> 2, hasMin = type == .q4_K
    assert(a.cols == cols, "activations quantized with a different width")
    @inline(__always) func x(_ t: Int) -> ActRow { a.actRow(firstRow &+ min(t, batch &- 1), cols: cols) }
    if batch == 1 {
        switch type {
        case .q8_0: y[0] = kernel1FusedQ8_0(row, nb, s, x(0)); return
        default: break
        }
    }
    if type == .q8_0 && batch >= 4 {
        // Q8_0: groups of four activation rows with the unpacking fused (re-unpacked per group), then the rest.
        var t = 0
        while t &+ 4 <= batch {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            kernel4FusedQ8_0(row, nb, s, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3)
            emit4(a0, a1, a2, a3, batch == 4 ? slot : nil, slotRow, hasMin, y + t &* yStride, yStride)
            t &+= 4
        }
        if t == batch { return }
        // The remaining rows below, as for any batch (the kernels ignore `t`'s group history).
        dotRowsTail(type, row, cols: cols, a, batch: batch &- t, into: y + t &* yStride, yStride: yStride, s, firstRow: firstRow &+ t)
        return
    }
    if ng <= rowChunkGroups {
        // The whole row fits: unpack once for all activation rows.
        unpack(type, row, 0, ng, nb, s)
        var t = 0
        while t &+ 4 <= batch {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            kernel4(s, 0, ng, hasMin, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3)
            emit4(a0, a1, a2, a3, batch == 4 ? slot : nil, slotRow, hasMin, y + t &* yStride, yStride)
            t &+= 4
        }
        if t &+ 2 <= batch {
            var a0 = RowAcc(), a1 = RowAcc()
            kernel2(s, 0, ng, hasMin, x(t), x(t &+ 1), &a0, &a1)
            y[t * yStride] = a0.result; y[(t &+ 1) * yStride] = a1.result
            t &+= 2
        }
        if t < batch {
            var a0 = RowAcc()
            kernel1(s, 0, ng, hasMin, x(t), &a0)
            y[t * yStride] = a0.result
        }
        return
    }
    // Long rows: chunks of rowChunkGroups groups, unpacked again for each group of activation rows.
    var t = 0
    while t < batch {
        let k = batch - t >= 4 ? 4 : batch - t >= 2 ? 2 : 1
        var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
        var g0 = 0
        while g0 < ng {
            let n = min(rowChunkGroups, ng - g0)
            unpack(type, row, g0, n, nb, s)
            switch k {
            case 4: kernel4(s, g0, n, hasMin, x(t), x(t &+ 1), x(t &+ 2), x(t &+ 3), &a0, &a1, &a2, &a3)
            case 2: kernel2(s, g0, n, hasMin, x(t), x(t &+ 1), &a0, &a1)
            default: kernel1(s, g0, n, hasMin, x(t), &a0)
            }
            g0 += n
        }
        if k == 4 {
            emit4(a0, a1, a2, a3, batch == 4 ? slot : nil, slotRow, hasMin, y + t &* yStride, yStride)
        } else {
            y[t * yStride] = a0.result
            if k == 2 { y[(t &+ 1) * yStride] = a1.result }
        }
        t &+= k
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
/// activations (`QuantizedActivations.value`, which undoes the chunk-interleaved layout), summed in f64. Agrees with
/// the kernels to about 1e-7 of sum |w x|.
public func dotRowReference(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Double {
    var w = [Float](repeating: 0, count: cols)
    try? type.dequantize(row, count: cols, into: &w)
    var s = 0.0
    for i in 0..<cols { s += Double(w[i]) * a.value(r, i) }
    return s
}
