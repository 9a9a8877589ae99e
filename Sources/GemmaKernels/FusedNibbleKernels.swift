import GemmaFormats
// One weight row of 4-bit nibble blocks (Q4_0, int4Channel) times one activation row, the unpacking fused into the
// loop: the decode kernel on CPUs without AVX-512 (AVX2), where the one-row kernel's separate unpacking pass
// (RowUnpack.swift, written for 512-bit vectors) took ~100 instructions per group of 128 weights.
//
// Per group of 4 blocks: the nibbles are loaded 8 bytes per block and chunk (vmovq, vpunpcklqdq: blocks 0 and 1,
// then 2 and 3), split into low and high nibbles as bytes (vpand, vpsrlw + vpand) and widened unsigned (vpmovzxbw)
// into the chunk-interleaved order of RowKernels.swift, all computed before the 8 stores to the scratch (so LLVM loads
// each block's bytes once); groupDot reads them back store-forwarded. The nibbles are not offset by 8: the group's
// integer sums are sum q x - 8 sum x, with 8 sum x per lane precomputed with the activations
// (QuantizedActivations.offsetSums) — the same integers as sum (q - 8) x, exactly. The float part is `groupStep`'s.
// So the result is bit-identical to the unpack-then-kernel1 path (and to the several-row kernels): RowKernelBatchTests.
// Measured on AMD EPYC Zen 3 (AVX2), one core, thread CPU time, Q4_0 640-wide rows, a lab outside the repository:
// 8.8-9.5 -> 12.1-12.4 G MAC/s (hot and from DRAM); see docs/kernels.md.

/// Low nibbles of bytes p[0..<8] then q[0..<8], unsigned, as 16 int16 lanes.
@inline(__always) func nibblesLow(_ p: UnsafePointer<UInt8>, _ q: UnsafePointer<UInt8>) -> SIMD16<Int16> {
    SIMD16<Int16>(
        Int16(p[0]) & 15,
        Int16(p[1]) & 15,
        Int16(p[2]) & 15,
        Int16(p[3]) & 15,
        Int16(p[4]) & 15,
        Int16(p[5]) & 15,
        Int16(p[6]) & 15,
        Int16(p[7]) & 15,
        Int16(q[0]) & 15,
        Int16(q[1]) & 15,
        Int16(q[2]) & 15,
        Int16(q[3]) & 15,
        Int16(q[4]) & 15,
        Int16(q[5]) & 15,
        Int16(q[6]) & 15,
        Int16(q[7]) & 15)
}

/// High nibbles of bytes p[0..<8] then q[0..<8], as 16 int16 lanes.
@inline(__always) func nibblesHigh(_ p: UnsafePointer<UInt8>, _ q: UnsafePointer<UInt8>) -> SIMD16<Int16> {
    SIMD16<Int16>(
        Int16(p[0]) &>> 4,
        Int16(p[1]) &>> 4,
        Int16(p[2]) &>> 4,
        Int16(p[3]) &>> 4,
        Int16(p[4]) &>> 4,
        Int16(p[5]) &>> 4,
        Int16(p[6]) &>> 4,
        Int16(p[7]) &>> 4,
        Int16(q[0]) &>> 4,
        Int16(q[1]) &>> 4,
        Int16(q[2]) &>> 4,
        Int16(q[3]) &>> 4,
        Int16(q[4]) &>> 4,
        Int16(q[5]) &>> 4,
        Int16(q[6]) &>> 4,
        Int16(q[7]) &>> 4)
}

@inline(__always) func store16(_ v: SIMD16<Int16>, _ p: UnsafeMutablePointer<Int16>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Int16>.self)
}

/// A group's four blocks of 16 nibble bytes (p0 ... p3) into `w` as 128 unsigned int16, chunk-interleaved (vector c:
/// elements 8c ..< 8c + 8 of each block; elements 0..<16 are the low nibbles of bytes 0..<16, 16..<32 the high).
@inline(__always) func unpackNibbleGroup(_ p0: UnsafePointer<UInt8>, _ p1: UnsafePointer<UInt8>, _ p2: UnsafePointer<UInt8>,
                                         _ p3: UnsafePointer<UInt8>, _ w: UnsafeMutablePointer<Int16>) {
    let v0 = nibblesLow(p0, p1), v1 = nibblesLow(p2, p3), v2 = nibblesLow(p0 + 8, p1 + 8), v3 = nibblesLow(p2 + 8, p3 + 8)
    let v4 = nibblesHigh(p0, p1), v5 = nibblesHigh(p2, p3), v6 = nibblesHigh(p0 + 8, p1 + 8), v7 = nibblesHigh(p2 + 8, p3 + 8)
    store16(v0, w); store16(v1, w + 16); store16(v2, w + 32); store16(v3, w + 48)
    store16(v4, w + 64); store16(v5, w + 80); store16(v6, w + 96); store16(v7, w + 112)
}

@inline(__always) func load16(_ p: UnsafePointer<Int32>) -> SIMD16<Int32> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int32>.self) }

/// `groupStep` for unsigned nibbles: the integer sums corrected by the activations' offset sums.
@inline(__always) func nibbleGroupStep(_ acc: inout SIMD16<Float>, _ w: UnsafePointer<Int16>, _ ws: SIMD16<Float>, _ x: ActRow, _ g: Int) {
    let p = groupDot(w, x.q + 128 &* g) &- load16(x.os + 16 &* g)
    acc = acc.addingProduct(lanesToFloat(p), ws * load16(x.xs + 16 &* g))
}

/// One Q4_0 (`f == .q4_0`: 18-byte blocks, f16 scale then 16 nibble bytes) or int4Channel (f32 scale, then 16-byte
/// blocks, each block's scale the row's 1 / scale) row of `nb` blocks times activation row `x0`. Same result as
/// unpack + `kernel1`, bit for bit.
@inline(__always)
func kernel1FusedNibbles(_ f: IntegerLayout, _ row: UnsafeRawPointer, _ nb: Int, _ s: RowScratch, _ x0: ActRow) -> Float {
    let q4 = f == .q4_0, stride = q4 ? 18 : 16, offset = q4 ? 2 : 0
    let blocks = q4 ? row : row + 4
    let rowScale = q4 ? SIMD16<Float>() : SIMD16<Float>(repeating: 1 / Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(as: UInt32.self))))
    let full = nb &>> 2, ng = (nb &+ 3) &>> 2
    var e0 = SIMD16<Float>()
    let w = s.w, v = UnsafePointer(s.w + s.z)
    @inline(__always) func step(_ b0: UnsafeRawPointer, _ b1: UnsafeRawPointer, _ b2: UnsafeRawPointer, _ b3: UnsafeRawPointer, _ g: Int) {
        unpackNibbleGroup((b0 + offset).assumingMemoryBound(to: UInt8.self), (b1 + offset).assumingMemoryBound(to: UInt8.self),
                          (b2 + offset).assumingMemoryBound(to: UInt8.self), (b3 + offset).assumingMemoryBound(to: UInt8.self), w)
        let ws = q4 ? expand4(kF16(b0, 0), kF16(b1, 0), kF16(b2, 0), kF16(b3, 0)) : rowScale
        nibbleGroupStep(&e0, v, ws, x0, g)
    }
    for g in 0..<full {
        let b0 = blocks + (4 &* stride) &* g
        let pf = b0 + rowPrefetchDistance
        llvmPrefetch(pf, 0, 3, 1); llvmPrefetch(pf + 64, 0, 3, 1)
        step(b0, b0 + stride, b0 + 2 &* stride, b0 + 3 &* stride, g)
    }
    if full < ng {
        // The last group's missing blocks read the zero block (their activations and scales are zero).
        let (b0, b1, b2, b3) = groupBlocks(blocks, full, nb, stride, s.zeroBlock)
        step(b0, b1, b2, b3, full)
    }
    var a0 = RowAcc()
    a0.e = e0
    return a0.result
}
