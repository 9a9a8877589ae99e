import CPUHints
import GemmaFormats
// Unpacking of quantized weight rows for the row kernels (RowKernels.swift, whose header explains the layout and the
// codegen lessons): groups of 4 blocks of 32 weights into int16, chunk-interleaved, with their scales, per format.
// The lane expressions are written out by the generator (line 1).

// MARK: Unpacking (groups of 4 blocks of 32, chunk-interleaved: vector c of a group = elements 8c ..< 8c + 8 of
// each of its 4 blocks; for Q4_K / Q6_K a super-block is 2 groups)

@inline(__always) func store32(_ v: SIMD32<Int16>, _ p: UnsafeMutablePointer<Int16>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD32<Int16>.self)
}

/// Lane-wise wrapping product (vpmullw; written out, see the header).
@inline(__always) func mul32(_ a: SIMD32<Int16>, _ b: SIMD32<Int16>) -> SIMD32<Int16> {
    @@MUL32@@
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
    @@Q8G@@
    return expand4(kF16(b0, 0), kF16(b1, 0), kF16(b2, 0), kF16(b3, 0))
}

/// Four blocks of Q4_0 nibbles (16 bytes each: element j low nibble of byte j, j + 16 high; q = nibble - 8) as int16
/// into `w` (128, chunk-interleaved). Shared by Q4_0 and int4Channel (the same nibbles, one scale per row).
@inline(__always) func unpackNibbles4(_ p0: UnsafePointer<UInt8>, _ p1: UnsafePointer<UInt8>, _ p2: UnsafePointer<UInt8>,
                                      _ p3: UnsafePointer<UInt8>, _ w: UnsafeMutablePointer<Int16>) {
    @@Q4G@@
}

@inline(__always) func unpackGroupQ4_0(_ b0: UnsafeRawPointer, _ b1: UnsafeRawPointer, _ b2: UnsafeRawPointer, _ b3: UnsafeRawPointer,
                                       _ w: UnsafeMutablePointer<Int16>) -> SIMD16<Float> {
    unpackNibbles4((b0 + 2).assumingMemoryBound(to: UInt8.self), (b1 + 2).assumingMemoryBound(to: UInt8.self),
                   (b2 + 2).assumingMemoryBound(to: UInt8.self), (b3 + 2).assumingMemoryBound(to: UInt8.self), w)
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

// Q5_0 groups are unpacked at the byte level: the 128 values as signed bytes (nibble | 0xF0 = n - 16 where
// the high bit is clear, the nibble where it is set: vpand / vgf2p8affineqb, vpor and one masked vmovdqu8 per 32
// bytes with the qh mask register from q5ClearMask), in four 32-byte vectors of two blocks each (blocks 0 and 2,
// 1 and 3; low / high nibbles); the chunk layout is then an in-lane interleave of 8-byte pieces (vpunpcklqdq /
// vpunpckhqdq) and one vpmovsxbw per chunk vector; the 4 f16 scales are gathered in a general register (vmovq,
// vcvtph2ps, vpermps). 32 vector (5 stores) + 12 mask instructions per group, 68 in all (what it replaced, the
// measurements and the alternatives tried: docs/kernels.md).

/// Groups g0 ..< g0 + ng of a 32-weight-format row of `nb` blocks into the scratch (from its group 0).
@inline(never) func unpackQ8_0(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    let vbmi = CPUFeatures.avx512vbmi
    for g in 0..<ng {
        if vbmi && 4 &* (g0 &+ g &+ 1) <= nb {
            // A whole group inside the row: the C unpacking (CPUHints.h), the same values.
            cpu_unpack_q8_0_group(row + 136 &* (g0 &+ g), 0, s.w + 128 &* g, s.ws + 16 &* g)
            continue
        }
        let (b0, b1, b2, b3) = groupBlocks(row, g0 &+ g, nb, 34, s.zeroBlock)
        store16(unpackGroupQ8_0(b0, b1, b2, b3, s.w + 128 &* g), s.ws + 16 &* g)
    }
}

@inline(never) func unpackQ4_0(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    let vbmi = CPUFeatures.avx512vbmi
    for g in 0..<ng {
        if vbmi && 4 &* (g0 &+ g &+ 1) <= nb {
            let p = row + 72 &* (g0 &+ g)
            llvmPrefetch(p + rowPrefetchDistance, 0, 3, 1); llvmPrefetch(p + (rowPrefetchDistance + 64), 0, 3, 1)
            cpu_unpack_q4_0_group(p, 0, s.w + 128 &* g, s.ws + 16 &* g)
            continue
        }
        let (b0, b1, b2, b3) = groupBlocks(row, g0 &+ g, nb, 18, s.zeroBlock)
        store16(unpackGroupQ4_0(b0, b1, b2, b3, s.w + 128 &* g), s.ws + 16 &* g)
    }
}

/// int4Channel (per-row scale; BlockLayouts.swift): the row's 16-byte nibble blocks from byte 4 unpacked as Q4_0's,
/// every block's scale the row's 1 / scale (the kernels then compute q * (1 / scale) * x, within an f32 rounding of
/// dm/gemma's q / scale; `.exact` divides). A row's missing blocks in its last group read the zero block: their
/// activations are 0, so the row's nonzero scale there multiplies a zero integer sum.
@inline(never) func unpackInt4Channel(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    let ws = SIMD16<Float>(repeating: 1 / Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(as: UInt32.self))))
    let blocks = row + 4, vbmi = CPUFeatures.avx512vbmi
    for g in 0..<ng {
        if vbmi && 4 &* (g0 &+ g &+ 1) <= nb {
            cpu_unpack_nib_group(blocks + 64 &* (g0 &+ g), ws[0], s.w + 128 &* g, s.ws + 16 &* g)
            continue
        }
        let (b0, b1, b2, b3) = groupBlocks(blocks, g0 &+ g, nb, 16, s.zeroBlock)
        unpackNibbles4(b0.assumingMemoryBound(to: UInt8.self), b1.assumingMemoryBound(to: UInt8.self),
                       b2.assumingMemoryBound(to: UInt8.self), b3.assumingMemoryBound(to: UInt8.self), s.w + 128 &* g)
        store16(ws, s.ws + 16 &* g)
    }
}

/// Groups g0 ..< g0 + ng of a lane-order Q5_0 / Q8_0 row (`IntegerLayout.q5_0Lanes`, `q8_0Lanes`: whole groups
/// only) into `s`: `vbmi` (cpu_unpack_q5l_group / q8l) with VBMI, else each group of `bytes` put back in file order
/// (`back`) and unpacked by the file format's `file` (the same values).
@inline(__always) func unpackLanes(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ s: RowScratch, bytes: Int,
                                   _ vbmi: (UnsafeRawPointer, UnsafeMutablePointer<Int16>, UnsafeMutablePointer<Float>) -> Void,
                                   _ back: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void,
                                   _ file: (UnsafeRawPointer, RowScratch) -> Void) {
    if CPUFeatures.avx512vbmi {
        for g in 0..<ng {
            let p = row + bytes &* (g0 &+ g)
            for line in stride(from: 0, to: bytes, by: 64) { llvmPrefetch(p + (rowPrefetchDistance &+ line), 0, 3, 1) }
            vbmi(p, s.w + 128 &* g, s.ws + 16 &* g)
        }
        return
    }
    withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 64) { tmp in
        let t = tmp.baseAddress!
        for g in 0..<ng {
            back((row + bytes &* (g0 &+ g)).assumingMemoryBound(to: UInt8.self), t.assumingMemoryBound(to: UInt8.self))
            var sg = s
            sg.w = s.w + 128 &* g; sg.ws = s.ws + 16 &* g
            file(UnsafeRawPointer(t), sg)
        }
    }
}

@inline(never) func unpackQ5_0Lanes(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ s: RowScratch) {
    unpackLanes(row, g0, ng, s, bytes: 88, { cpu_unpack_q5l_group($0, $1, $2) }, { cpu_q5_0_from_lanes($0, $1) },
                { unpackQ5_0($0, 0, 1, 4, $1) })
}

@inline(never) func unpackQ8_0Lanes(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ s: RowScratch) {
    unpackLanes(row, g0, ng, s, bytes: 136, { cpu_unpack_q8l_group($0, $1, $2) }, { cpu_q8_0_from_lanes($0, $1) },
                { unpackQ8_0($0, 0, 1, 4, $1) })
}

/// Super-blocks g0 / 2 ..< (g0 + ng) / 2 of a lane-order Q4_K row (`IntegerLayout.q4_KLanes`) into `s`, as
/// unpackQ4_K: cpu_unpack_q4Kl_sb with VBMI, else each super-block put back in file order and unpacked as Q4_K.
@inline(never) func unpackQ4_KLanes(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ s: RowScratch) {
    let ahead = CPUFeatures.weightPrefetchDistance
    if CPUFeatures.avx512vbmi {
        for sb in 0..<ng / 2 {
            let blk = row + 144 &* (g0 / 2 &+ sb)
            llvmPrefetch(blk + ahead, 0, 3, 1); llvmPrefetch(blk + (ahead &+ 64), 0, 3, 1); llvmPrefetch(blk + (ahead &+ 128), 0, 3, 1)
            cpu_unpack_q4Kl_sb(blk, s.w + 256 &* sb, s.ws + 32 &* sb, s.wm + 8 &* sb)
        }
        return
    }
    withUnsafeTemporaryAllocation(byteCount: 144, alignment: 64) { tmp in
        let t = tmp.baseAddress!
        for sb in 0..<ng / 2 {
            cpu_q4_K_from_lanes((row + 144 &* (g0 / 2 &+ sb)).assumingMemoryBound(to: UInt8.self), t.assumingMemoryBound(to: UInt8.self))
            var ss = s
            ss.w = s.w + 256 &* sb; ss.ws = s.ws + 32 &* sb; ss.wm = s.wm + 8 &* sb
            unpackQ4_K(UnsafeRawPointer(t), 0, 2, 8, ss)
        }
    }
}

@inline(never) func unpackQ5_0(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    let vbmi = CPUFeatures.avx512vbmi
    for g in 0..<ng {
        if vbmi && 4 &* (g0 &+ g &+ 1) <= nb {
            // A whole group inside the row: the C unpacking (CPUHints.h), the same bytes in 20 vector instructions.
            let p = row + 88 &* (g0 &+ g)
            llvmPrefetch(p + rowPrefetchDistance, 0, 3, 1); llvmPrefetch(p + (rowPrefetchDistance + 64), 0, 3, 1)
            cpu_unpack_q5_0_group(p, 0, s.w + 128 &* g, s.ws + 16 &* g)
            continue
        }
        let (b0, b1, b2, b3) = groupBlocks(row, g0 &+ g, nb, 22, s.zeroBlock)
        let w = s.w + 128 &* g
        llvmPrefetch(b0 + rowPrefetchDistance, 0, 3, 1); llvmPrefetch(b0 + (rowPrefetchDistance + 64), 0, 3, 1)
        // Byte-level unpacking (see above; written out by the generator: four calls of an @inline(__always) block
        // function were left as calls by the optimizer).
        @@Q5GROUP@@
        store16(expand4(d0, d1, d2, d3), s.ws + 16 &* g)
    }
}

// Q4_K / Q6_K groups are unpacked at the byte level too: the group's values as bytes in 32-byte
// vectors a{h} = [sub-block 0 | sub-block 2], b{h} = [1 | 3] (elements 16h ..< 16h + 16 of each, one per 128-bit
// lane), chunk vector 2h + i = SIMD4<UInt64>(a[i], b[i], a[i + 2], b[i + 2]) (vpunpcklqdq / vpunpckhqdq), one
// vpmovzxbw (Q4_K) / vpmovsxbw (Q6_K, then vpmullw by its scales) per chunk vector. Q4_K: a{h} / b{h} are the low /
// high nibbles of [q[16h ..< +16] | q[32 + 16h ..< +16]] (vmovdqu + vinserti128, vpand / vgf2p8affineqb): 20
// instructions per group. Q6_K: each sub-block in element order as bytes (uniform byte operations per vector), lanes
// paired (vinserti128 / vperm2i128), minus 32 after the pairing, in-lane interleave: 42 per group with the scales.
// What they replaced and the measurements: docs/kernels.md.
/// Q4_K / Q6_K: super-blocks g0 / 2 ..< (g0 + ng) / 2 (2 groups each).
@inline(never) func unpackQ4_K(_ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    let ahead = CPUFeatures.weightPrefetchDistance, vbmi = CPUFeatures.avx512vbmi
    for sb in 0..<ng / 2 {
        let blk = row + 144 &* (g0 / 2 &+ sb)
        // Software prefetch of the super-block `ahead` bytes on (3 lines cover its 144 bytes).
        llvmPrefetch(blk + ahead, 0, 3, 1); llvmPrefetch(blk + (ahead &+ 64), 0, 3, 1); llvmPrefetch(blk + (ahead &+ 128), 0, 3, 1)
        if vbmi {
            cpu_unpack_q4_K_sb(blk, s.w + 256 &* sb, s.ws + 32 &* sb, s.wm + 8 &* sb)
            continue
        }
        let d = kF16(blk, 0), dmin = kF16(blk, 2)
        for G in 0..<2 {
            // Group G: sub-blocks 4G ..< 4G + 4 = low and high nibbles of the 32-byte chunks 2G and 2G + 1, as
            // bytes (see above), interleaved in-lane and zero-extended into the group's four vectors at w.
            let q = (blk + 16 + 64 &* G).assumingMemoryBound(to: UInt8.self)
            let w = s.w + 128 &* (2 &* sb &+ G)
            @@Q4KB@@
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
    let ahead = CPUFeatures.weightPrefetchDistance, vbmi = CPUFeatures.avx512vbmi
    for sb in 0..<ng / 2 {
        let blk = row + 210 &* (g0 / 2 &+ sb)
        // Software prefetch of the super-block `ahead` bytes on (4 lines cover its 210 bytes).
        llvmPrefetch(blk + ahead, 0, 3, 1); llvmPrefetch(blk + (ahead &+ 64), 0, 3, 1)
        llvmPrefetch(blk + (ahead &+ 128), 0, 3, 1); llvmPrefetch(blk + (ahead &+ 192), 0, 3, 1)
        if vbmi {
            cpu_unpack_q6_K_sb(blk, s.w + 256 &* sb, s.ws + 32 &* sb)
            continue
        }
        let p = blk.assumingMemoryBound(to: UInt8.self)
        let d = kF16(blk, 208)
        // Group c (elements 128c ..< +128): block t = elements 128c + 32t ..< +32; 6-bit q from ql (nibble) and qh
        // (2 bits), minus 32 (as signed bytes), times the int8 scale of each 16 (|q| <= 32 * 128 fits Int16).
        @@Q6B@@
        let ws = SIMD16<Float>(repeating: d)
        store16(ws, s.ws + 32 &* sb)
        store16(ws, s.ws + (32 &* sb &+ 16))
    }
}

@inline(__always) func unpack(_ type: IntegerLayout, _ row: UnsafeRawPointer, _ g0: Int, _ ng: Int, _ nb: Int, _ s: RowScratch) {
    switch type {
    case .q8_0: unpackQ8_0(row, g0, ng, nb, s)
    case .q4_0: unpackQ4_0(row, g0, ng, nb, s)
    case .q5_0: unpackQ5_0(row, g0, ng, nb, s)
    case .q4_K: unpackQ4_K(row, g0, ng, nb, s)
    case .q6_K: unpackQ6_K(row, g0, ng, nb, s)
    case .int4Channel: unpackInt4Channel(row, g0, ng, nb, s)
    case .q5_0Lanes: unpackQ5_0Lanes(row, g0, ng, s)
    case .q8_0Lanes: unpackQ8_0Lanes(row, g0, ng, s)
    case .q4_KLanes: unpackQ4_KLanes(row, g0, ng, s)
    }
}
