import CPUHints
import GemmaFormats
// Dot products of one quantized weight row with 1, 2 or 4 rows of int16-quantized activations, per format
// ("row kernels" for decoding several sequences at once). Entry points: `dotRows` (one weight row, any batch >= 1)
// and `dotRowsMany` (consecutive weight rows, same results, the dispatch paid once).
//
// Scheme ("chunk-interleaved"): blocks of 32 are taken in groups of 4 (128 elements). Activations
// (QuantizedActivations) and unpacked weights store a group as 4 vectors of 32 int16; vector c holds elements
// 8c ..< 8c + 8 of block 0, then of block 1, 2, 3 (lane 8m + k = block m, element 8c + k). A row is padded to a
// whole number of groups: zero activations with zero scales; the missing weight blocks read a zero block (scale 0).
// The weight row is unpacked (RowUnpack.swift), up to `rowChunkBlocks` blocks at a time, into int16 values (q minus
// the format's offset; Q6_K times its per-16 int8 scale, |w| <= 4096) and the group's 4 block scales expanded to 16
// f32 lanes [s0 x4, s1 x4, s2 x4, s3 x4] (plus, for Q4_K, one f32 min per 32; int4Channel: Q4_0's nibbles, every
// block's scale the row's 1 / scale). Then, per activation row and group:
//     P = pairDot(w0, x0) + pairDot(w1, x1) + pairDot(w2, x2) + pairDot(w3, x3)   (vpmaddwd + 3 vpdpwssd, exact)
//     acc += Float(P) * (ws * xs)          (vcvtdq2ps, vmulps with the activation's expanded scales, one FMA)
// 16 Int32 lanes, lanes 4m ..< 4m + 4 = block m, each a sum of 8 products, summed once per row by a fixed tree.
// Q4_K's min term is an 8-lane FMA per super-block (scale * sum of the activation block), summed by a fixed tree.
// Invariants:
//  * bit-identity: the 1-, 2- and 4-row kernels (fused or not, paired or not, chunked or not) do, for each row,
//    exactly the same f32 operations in the same order (the integer group sums are exact, the scale product ws * xs
//    is one rounded f32 multiply everywhere), so a row's result does not depend on how many rows are computed with
//    it: batched decoding == decoding alone, bit for bit (RowKernelBatchTests);
//  * ranges: a lane sums 8 products |w| * |x| <= 128 * 32767 (Q8_0; Q4_0 8, Q5_0 16, Q4_K 15) or 4096 * 32767
//    (Q6_K): at most 8 * 4096 * 32767 = 1.07e9 < 2^31, exact in Int32 (vpdpwssd wraps, never saturates).
// The code's shape follows what Swift compiles to good AVX-512 code (unpack functions @inline(never), lanes written
// out over byte pointers, no global `var` reads in the hot path, `pointer + opaque zero` to keep store-forwarded
// memory operands): see docs/kernels.md for these rules, the measurements and what was tried, before changing it.
// With AVX-512 VBMI one activation row takes RegisterRowKernels.swift instead (the same arithmetic, unpacked in
// registers by CPUHints.h).
// Hand-written (not generated); the unpacking, with its written-out lane expressions, is RowUnpack.swift, generated
// by scripts/kernels/gen_row_kernels.py from scripts/kernels/row_unpack_template.swift (`make kernels`).

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
    /// 16 Int32 per group: 8 * each lane's sum of values (QuantizedActivations.offsetSums).
    let os: UnsafePointer<Int32>
    /// The row in CPUHints.h's split form, or nil where it is not kept (QuantizedActivations.split).
    let split: UnsafePointer<UInt8>?
}

extension QuantizedActivations {
    /// Row `r` when the rows are `cols` wide. Reading `self.cols` (a class `var`) costs a dynamic exclusivity check
    /// (swift_beginAccess) per read under -O, so the kernels take the width from their caller.
    @inline(__always) func actRow(_ r: Int, cols: Int) -> ActRow {
        let pc = QuantizedActivations.paddedCols(cols), b = r &* (pc / 32)
        return ActRow(q: UnsafePointer(q + r &* pc), xs: UnsafePointer(expandedScales + 4 &* b), ds: UnsafePointer(scaledSums + b),
                      os: UnsafePointer(offsetSums + 4 &* b),
                      split: r == 0 && isSplit ? UnsafePointer(split) : nil)
    }
}

// MARK: Scratch

/// Blocks of 32 weights unpacked per pass (the whole row for rows of up to 4096 weights; two rows of up to 2048 for
/// the paired 4-row kernels); a multiple of 8.
let rowChunkBlocks = 128
let rowChunkGroups = rowChunkBlocks / 4

/// Scratch bytes `dotRows` needs (per concurrent caller, ~12 KB): 8 KB of int16 weights, 2 KB of expanded weight
/// scales, 512 B of mins, the 4-row reduction slots and a zero block.
package let rowKernelScratchBytes = rowChunkBlocks * (64 + 16 + 4) + 4 * 80 * 4 + 64 + 64

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

// Unpacking: RowUnpack.swift (groups of 4 blocks of 32 into int16, chunk-interleaved, per format).

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
/// Bytes ahead for the software prefetch of streamed weight rows (the Q8_0 head, Q4_0 / Q5_0 unpacking). Interleaved
/// on an Intel Xeon (2 vCPU), 8 KB against the earlier 2 KB: tg128 86.0-89.5 vs 75.9-86.1 tok/s with 2 threads (every
/// pair of 6 faster), 45.1-47.8 vs 43.7-46.0 with 1; the same as CPUFeatures.weightPrefetchDistance for the K formats.
let rowPrefetchDistance = 8192

/// Two Q8_0 weight rows times four activation rows (the 4-row `dotRowsMany` path), unpacking fused: each activation
/// vector is loaded once for both weight rows. Per output exactly the operations of `kernel4`. `lanes`: the rows are
/// in lane order (`IntegerLayout.q8_0Lanes`, whole groups), unpacked by cpu_unpack_q8l_group.
@inline(__always)
func kernel4FusedPairQ8_0(lanes: Bool, _ rowA: UnsafeRawPointer, _ rowB: UnsafeRawPointer, _ nb: Int, _ s: RowScratch,
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
        let wsA: SIMD16<Float>, wsB: SIMD16<Float>
        if lanes {
            cpu_unpack_q8l_group(rowA + 136 &* g, wA, s.ws)
            cpu_unpack_q8l_group(rowB + 136 &* g, wB, s.ws + 16)
            (wsA, wsB) = (load16(s.ws), load16(s.ws + 16))
        } else {
            let (a0p, a1p, a2p, a3p) = groupBlocks(rowA, g, nb, 34, s.zeroBlock)
            let (b0p, b1p, b2p, b3p) = groupBlocks(rowB, g, nb, 34, s.zeroBlock)
            wsA = unpackGroupQ8_0(a0p, a1p, a2p, a3p, wA)
            wsB = unpackGroupQ8_0(b0p, b1p, b2p, b3p, wB)
        }
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

/// `y[t * yStride] = W[row] . x[firstRow + t]` for `t < batch` (any batch >= 1): four activation rows at a time, then
/// two, then one; the result for an activation row is bit-identical whichever group computes it.
/// `scratch`: `rowKernelScratchBytes` bytes (64-byte aligned is best), owned by the caller, one per worker.
/// `cols % 32 == 0` (`% 256` for Q4_K / Q6_K).
@inline(never)
func dotRows(_ type: IntegerLayout, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, batch: Int,
             into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int = 0) {
    dotRowsImpl(type, row, cols: cols, a, batch: batch, into: y, yStride: yStride,
                RowScratch(scratch, z: kernelOpaqueZero), firstRow: firstRow)
}

/// `dotRows` for `count` consecutive weight rows (`rowBytes` apart; outputs `y + i`, i.e. y[t * yStride + i]):
/// the same results, with the per-call overhead (dispatch, setup) paid once.
@inline(never)
func dotRowsMany(_ layout: IntegerLayout, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                 batch: Int, into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int = 0) {
    let wide = CPUFeatures.avx512
    if batch > 1 && !wide {
        // Without 512-bit vectors the several-row kernels spill; the one-row kernels per activation row give the
        // same results (see dotRows) with the weight rows re-read from cache.
        for t in 0..<batch {
            dotRowsMany(layout, rows, rowBytes: rowBytes, count: count, cols: cols, a, batch: 1, into: y + t &* yStride,
                        yStride: yStride, scratch, firstRow: firstRow &+ t)
        }
        return
    }
    if batch == 4 {
        dotRowsMany4(layout, rows, rowBytes: rowBytes, count: count, cols: cols, a, into: y, yStride: yStride, scratch, firstRow: firstRow)
        return
    }
    let s = RowScratch(scratch, z: kernelOpaqueZero), vbmi = CPUFeatures.avx512vbmi
    @inline(__always) func run(_ f: IntegerLayout) {
        if batch == 1 && !wide && (f == .q4_0 || f == .int4Channel) {
            // Without AVX-512: the unpacking fused into the one-row loop (FusedNibbleKernels.swift), same results.
            let x0 = a.actRow(firstRow, cols: cols), nb = cols / 32
            for i in 0..<count { y[i] = kernel1FusedNibbles(f, rows + i &* rowBytes, nb, s, x0) }
            return
        }
        if batch == 1 && vbmi && dotRowsInRegisters(f, rows, rowBytes: rowBytes, count: count, cols: cols, a.actRow(firstRow, cols: cols), into: y) {
            return
        }
        // One activation row (decode): several weight rows per unpacking pass (dotRowsMany1), the rest one by one.
        let done = batch == 1 ? dotRowsMany1(f, rows, rowBytes: rowBytes, count: count, cols: cols, a, into: y, s, firstRow: firstRow) : 0
        for i in done..<count {
            dotRowsImpl(f, rows + i &* rowBytes, cols: cols, a, batch: batch, into: y + i, yStride: yStride, s, firstRow: firstRow)
        }
    }
    // Each layout's kernels specialized on its block type (a constant inside `run`).
    switch layout {
    case .q8_0: run(.q8_0)
    case .q4_0: run(.q4_0)
    case .q5_0: run(.q5_0)
    case .q4_K: run(.q4_K)
    case .q6_K: run(.q6_K)
    case .int4Channel: run(.int4Channel)
    case .q5_0Lanes: run(.q5_0Lanes)
    case .q8_0Lanes: run(.q8_0Lanes)
    case .q4_KLanes: run(.q4_KLanes)
    }
}

/// `dotRowsMany` for one activation row, `k` weight rows per pass (4 when they fit the scratch, else 2): the rows
/// are contiguous whole groups (32-weight formats with `cols % 128 == 0`, the K formats always), so one unpacking
/// call reads them as one long row, and the `k` rows' dot products run interleaved (independent accumulator chains).
/// (int4Channel rows, which each start with their scale, are unpacked one by one into the same places.)
/// Per output exactly the operations of `kernel1` (bit-identical to `dotRowsImpl` with batch 1). Short rows of the
/// decode step (Q5_0 q/k/gate/up, 640 weights: 5 groups) otherwise paid an unpacking call, a loop setup and a
/// 20-cycle reduction chain each. Returns the number of rows done (a multiple of `k`; 0 where it does not apply:
/// Q8_0, which has its fused kernel, or partial groups).
@inline(never)
func dotRowsMany1(_ f: IntegerLayout, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                  into y: UnsafeMutablePointer<Float>, _ s: RowScratch, firstRow: Int) -> Int {
    let nb = cols / 32, ng = nb &>> 2, hasMin = f.blockType == .q4_K
    guard f != .q8_0, nb & 3 == 0, 2 &* ng <= rowChunkGroups else { return 0 }
    let k = 4 &* ng <= rowChunkGroups ? 4 : 2
    let x0 = a.actRow(firstRow, cols: cols)
    var i = 0
    while i &+ k <= count {
        if f == .int4Channel {
            // Rows with a scale each (not one long row of blocks): unpacked one by one into consecutive groups.
            for r in 0..<k {
                var sr = s
                sr.w = s.w + 128 &* ng &* r; sr.ws = s.ws + 16 &* ng &* r
                unpack(f, rows + (i &+ r) &* rowBytes, 0, ng, nb, sr)
            }
        } else {
            unpack(f, rows + i &* rowBytes, 0, k &* ng, k &* nb, s)
        }
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
func dotRowsMany4(_ layout: IntegerLayout, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                  into y: UnsafeMutablePointer<Float>, yStride: Int, _ scratch: UnsafeMutableRawPointer, firstRow: Int) {
    let s = RowScratch(scratch, z: kernelOpaqueZero), red = s.red
    @inline(__always) func run(_ f: IntegerLayout) {
        let hasMin = f.blockType == .q4_K
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
    // Each layout's kernels specialized on its block type (a constant inside `run`).
    switch layout {
    case .q8_0: run(.q8_0)
    case .q4_0: run(.q4_0)
    case .q5_0: run(.q5_0)
    case .q4_K: run(.q4_K)
    case .q6_K: run(.q6_K)
    case .int4Channel: run(.int4Channel)
    case .q5_0Lanes: run(.q5_0Lanes)
    case .q8_0Lanes: run(.q8_0Lanes)
    case .q4_KLanes: run(.q4_KLanes)
    }
}

/// The 4-row `dotRowsMany` path, two weight rows at a time (kernel4FusedPairQ8_0; kernel4Pair when both rows fit
/// the scratch).
/// Returns the number of weight rows done (their group slots as in dotRowsMany4), or -1 when all are done and stored.
@inline(never)
func dotRowsMany4Pairs(_ f: IntegerLayout, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ a: QuantizedActivations,
                       into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int) -> Int {
    let red = s.red
    var i = 0
    let nb = cols / 32, ng = (nb &+ 3) &>> 2
    let x0 = a.actRow(firstRow, cols: cols), x1 = a.actRow(firstRow &+ 1, cols: cols)
    let x2 = a.actRow(firstRow &+ 2, cols: cols), x3 = a.actRow(firstRow &+ 3, cols: cols)
    if f == .q8_0 || (f == .q8_0Lanes && CPUFeatures.avx512vbmi) {
        // Q8_0: two weight rows at a time with the unpacking fused (kernel4FusedPairQ8_0), from two sequential
        // streams (rows i and h + i): adjacent rows interleaved block by block streamed 30% slower from DRAM.
        let h = count / 2, redB = red + 2 &* groupSlotFloats
        for i in 0..<h {
            var a0 = RowAcc(), a1 = RowAcc(), a2 = RowAcc(), a3 = RowAcc()
            var c0 = RowAcc(), c1 = RowAcc(), c2 = RowAcc(), c3 = RowAcc()
            kernel4FusedPairQ8_0(lanes: f == .q8_0Lanes, rows + i &* rowBytes, rows + (h &+ i) &* rowBytes, nb, s, x0, x1, x2, x3,
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
        let hasMin = f.blockType == .q4_K
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
func dotRowsImpl(_ type: IntegerLayout, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, batch: Int,
                 into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int,
                 slot: UnsafeMutablePointer<Float>? = nil, slotRow: Int = 0) {
    let nb = cols / 32, ng = (nb &+ 3) &>> 2, hasMin = type.blockType == .q4_K
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
func dotRowsTail(_ type: IntegerLayout, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, batch: Int,
                 into y: UnsafeMutablePointer<Float>, yStride: Int, _ s: RowScratch, firstRow: Int) {
    precondition(batch < 4)
    dotRowsImpl(type, row, cols: cols, a, batch: batch, into: y, yStride: yStride, s, firstRow: firstRow)
}

/// `W[row] . x[r]` for activation row `r` of `a` (the one-row kernels; bit-identical to any batched computation).
package func dotRow(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Float {
    guard let layout = IntegerLayout.of(fileType: type) else { preconditionFailure("no integer row kernel for \(type)") }
    return dotRow(layout, row, cols: cols, a, r)
}

/// `dotRow` for rows in an integer layout (including the lane orders made at load).
package func dotRow(_ type: IntegerLayout, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Float {
    withUnsafeTemporaryAllocation(byteCount: rowKernelScratchBytes, alignment: 64) { buf in
        var y: Float = 0
        dotRows(type, row, cols: cols, a, batch: 1, into: &y, yStride: 1, buf.baseAddress!, firstRow: r)
        return y
    }
}

/// Scalar twin of the row kernels: the weights dequantized by GemmaFormats (gguf-py's values) times the dequantized
/// activations (`QuantizedActivations.value`, which undoes the chunk-interleaved layout), summed in f64. Agrees with
/// the kernels to about 1e-7 of sum |w x|.
package func dotRowReference(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Double {
    var w = [Float](repeating: 0, count: cols)
    try? type.dequantize(row, count: cols, into: &w)
    var s = 0.0
    for i in 0..<cols { s += Double(w[i]) * a.value(r, i) }
    return s
}
