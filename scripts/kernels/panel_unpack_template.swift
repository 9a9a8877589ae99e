import CPUHints
import GemmaFormats
// Quantized weight rows unpacked to int16 in element order, one f32 scale per 32 (Q4_K also its min; int4Channel the
// row's 1 / scale for each 32), for the int16 prompt GEMM (GemmInt16.swift), which transposes them into its panels.
// (The row kernels unpack into their own chunk-interleaved layout, RowKernels.swift.) Values: q minus the format's offset; Q6_K times its per-16 int8
// scale (|w| <= 4096). The lane expressions are written out by the generator (line 1; RowKernels.swift's header
// says why).

/// Where `panelUnpack` writes: `w` (n * 32 int16), `ws` (n scales), `wm` (n mins, Q4_K).
struct PanelUnpackTarget {
    var w: UnsafeMutablePointer<Int16>
    let ws: UnsafeMutablePointer<Float>
    let wm: UnsafeMutablePointer<Float>
}

@inline(__always) func panelUnpackBlockQ8_0(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float {
    let blk = row + 34 &* g
    let p = (blk + 2).assumingMemoryBound(to: Int8.self)
    store32(@@Q8@@, dst)
    return kF16(blk, 0)
}

/// 16 bytes of Q4_0-style nibbles (element j low nibble of byte j, element j + 16 high nibble, stored as q + 8).
@inline(__always) func panelUnpackNibbles(_ p: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<Int16>) {
    store32(@@Q4@@, dst)
}

@inline(__always) func panelUnpackBlockQ4_0(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float {
    let blk = row + 18 &* g
    panelUnpackNibbles((blk + 2).assumingMemoryBound(to: UInt8.self), dst)
    return kF16(blk, 0)
}

/// int4Channel: block g's 16 nibble bytes (from byte 4 of the row) as Q4_0's; the scale of every block is the
/// row's 1 / scale (see unpackInt4Channel).
@inline(__always) func panelUnpackBlockInt4Channel(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) {
    panelUnpackNibbles((row + (4 &+ 16 &* g)).assumingMemoryBound(to: UInt8.self), dst)
}

@inline(__always) func panelUnpackBlockQ5_0(_ row: UnsafeRawPointer, _ g: Int, _ dst: UnsafeMutablePointer<Int16>) -> Float {
    let blk = row + 22 &* g
    let cm = q5ClearMask(blk)
    let p = (blk + 6).assumingMemoryBound(to: UInt8.self)
    let n = @@Q5N@@
    store32(@@Q5@@, dst)
    return kF16(blk, 0)
}

@inline(never) func panelUnpackQ8_0(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    for b in 0..<n { s.ws[b] = panelUnpackBlockQ8_0(row, b0 &+ b, s.w + 32 &* b) }
}

@inline(never) func panelUnpackQ4_0(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    for b in 0..<n { s.ws[b] = panelUnpackBlockQ4_0(row, b0 &+ b, s.w + 32 &* b) }
}

@inline(never) func panelUnpackInt4Channel(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    let ws = 1 / Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(as: UInt32.self)))
    for b in 0..<n {
        panelUnpackBlockInt4Channel(row, b0 &+ b, s.w + 32 &* b)
        s.ws[b] = ws
    }
}

@inline(never) func panelUnpackQ5_0(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    for b in 0..<n { s.ws[b] = panelUnpackBlockQ5_0(row, b0 &+ b, s.w + 32 &* b) }
}

/// Lane-order Q4_K (`IntegerLayout.q4_KLanes`): each super-block put back in file order, then panelUnpackQ4_K.
@inline(never) func panelUnpackQ4_KLanes(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    withUnsafeTemporaryAllocation(byteCount: 144, alignment: 64) { tmp in
        let t = tmp.baseAddress!
        for sb in 0..<n / 8 {
            cpu_q4_K_from_lanes((row + 144 &* (b0 / 8 &+ sb)).assumingMemoryBound(to: UInt8.self), t.assumingMemoryBound(to: UInt8.self))
            panelUnpackQ4_K(UnsafeRawPointer(t), 0, 8, PanelUnpackTarget(w: s.w + 256 &* sb, ws: s.ws + 8 &* sb, wm: s.wm + 8 &* sb))
        }
    }
}

/// Blocks b0 ..< b0 + n of a lane-order Q5_0 / Q8_0 row (`IntegerLayout.q5_0Lanes`, `q8_0Lanes`): block b is block
/// b % 4 of group b / 4. With VBMI in registers (`vbmi`: cpu_panel_q5l_block / q8l), else from the group of `bytes`
/// put back in file order (`back`) by the file format's `file`; the same values as the file order's.
@inline(__always) func panelUnpackLanes(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget, bytes: Int,
                                        _ vbmi: (UnsafeRawPointer, Int, UnsafeMutablePointer<Int16>) -> Float,
                                        _ back: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void,
                                        _ file: (UnsafeRawPointer, Int, UnsafeMutablePointer<Int16>) -> Float) {
    if CPUFeatures.avx512vbmi {
        for b in 0..<n {
            let blk = b0 &+ b
            s.ws[b] = vbmi(row + bytes &* (blk &>> 2), blk & 3, s.w + 32 &* b)
        }
        return
    }
    withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 64) { tmp in
        let t = tmp.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for b in 0..<n {
            let blk = b0 &+ b
            back((row + bytes &* (blk &>> 2)).assumingMemoryBound(to: UInt8.self), t)
            s.ws[b] = file(UnsafeRawPointer(t), blk & 3, s.w + 32 &* b)
        }
    }
}

@inline(never) func panelUnpackQ5_0Lanes(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    panelUnpackLanes(row, b0, n, s, bytes: 88, { cpu_panel_q5l_block($0, $1, $2) }, { cpu_q5_0_from_lanes($0, $1) },
                     { panelUnpackBlockQ5_0($0, $1, $2) })
}

@inline(never) func panelUnpackQ8_0Lanes(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    panelUnpackLanes(row, b0, n, s, bytes: 136, { cpu_panel_q8l_block($0, $1, $2) }, { cpu_q8_0_from_lanes($0, $1) },
                     { panelUnpackBlockQ8_0($0, $1, $2) })
}

/// Q4_K / Q6_K: super-blocks b0/8 ..< (b0+n)/8.
@inline(never) func panelUnpackQ4_K(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    for sb in 0..<n / 8 {
        let blk = row + 144 &* (b0 / 8 &+ sb)
        let d = kF16(blk, 0), dmin = kF16(blk, 2)
        for c in 0..<4 {
            let p = (blk + 16 + 32 &* c).assumingMemoryBound(to: UInt8.self)
            let j = 8 &* sb &+ 2 &* c
            store32(@@Q4KLO@@, s.w + 32 &* j)
            store32(@@Q4KHI@@, s.w + (32 &* j &+ 32))
        }
        let sm = blk + 4
        let (s0, m0) = kScaleMinQ4K(sm, 0), (s1, m1) = kScaleMinQ4K(sm, 1), (s2, m2) = kScaleMinQ4K(sm, 2), (s3, m3) = kScaleMinQ4K(sm, 3)
        let (s4, m4) = kScaleMinQ4K(sm, 4), (s5, m5) = kScaleMinQ4K(sm, 5), (s6, m6) = kScaleMinQ4K(sm, 6), (s7, m7) = kScaleMinQ4K(sm, 7)
        UnsafeMutableRawPointer(s.ws + 8 &* sb).storeBytes(of: SIMD8<Float>(d * s0, d * s1, d * s2, d * s3, d * s4, d * s5, d * s6, d * s7), as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(s.wm + 8 &* sb).storeBytes(of: SIMD8<Float>(dmin * m0, dmin * m1, dmin * m2, dmin * m3, dmin * m4, dmin * m5, dmin * m6, dmin * m7), as: SIMD8<Float>.self)
    }
}

@inline(never) func panelUnpackQ6_K(_ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    for sb in 0..<n / 8 {
        let blk = row + 210 &* (b0 / 8 &+ sb)
        let p = blk.assumingMemoryBound(to: UInt8.self)
        let d = kF16(blk, 208)
        // Sub-block (c, t) of 32: elements 128c + 32t ..< +32; 6-bit q from ql (nibble) and qh (2 bits), minus 32,
        // times the int8 scale of each 16 (|q| <= 32 * 128 fits Int16).
        @@Q6@@
        UnsafeMutableRawPointer(s.ws + 8 &* sb).storeBytes(of: SIMD8<Float>(repeating: d), as: SIMD8<Float>.self)
    }
}

/// Blocks b0 ..< b0 + n of a row (for Q4_K / Q6_K whole super-blocks: b0 and n multiples of 8) into `s`.
@inline(__always) func panelUnpack(_ type: IntegerLayout, _ row: UnsafeRawPointer, _ b0: Int, _ n: Int, _ s: PanelUnpackTarget) {
    switch type {
    case .q8_0: panelUnpackQ8_0(row, b0, n, s)
    case .q4_0: panelUnpackQ4_0(row, b0, n, s)
    case .q5_0: panelUnpackQ5_0(row, b0, n, s)
    case .q4_K: panelUnpackQ4_K(row, b0, n, s)
    case .q6_K: panelUnpackQ6_K(row, b0, n, s)
    case .int4Channel: panelUnpackInt4Channel(row, b0, n, s)
    case .q5_0Lanes: panelUnpackQ5_0Lanes(row, b0, n, s)
    case .q8_0Lanes: panelUnpackQ8_0Lanes(row, b0, n, s)
    case .q4_KLanes: panelUnpackQ4_KLanes(row, b0, n, s)
    }
}
