import GemmaFormats
// Prefill GEMM with int16 activations and int16 weights (vpdpwssd): Y[t][r] = W[r] . X[t] for batches of tokens,
// the `.fast` counterpart of the f32 panel GEMM (Gemm.swift); relative error ~6e-6 of sum |w x| (the activation
// rounding) instead of ~3e-7. The tile and the transpose are written out by the generator (line 1).
//
// Entry point: `WeightMatrix.gemmPanelsInt16(panels, a, tokens:, into:, yStride:, scratch:)` with the same panel
// ranges and y layout as `gemmPanels`; `a` = the tokens' activations quantized once per product by the caller
// (`a.quantize(x, stride:, rows: tokens, cols:)`, shared by all workers and by q/k/v or gate/up; for Q6_K pass
// `limit: 16383`, see below). Scratch per worker: `gemmInt16ScratchBytes` (~640 KB), 64-byte aligned. Formats:
// Q8_0, Q4_0, Q5_0, Q4_K, Q6_K, int4Channel (the `IntegerLayout`s). Workers split the panels, or from
// `gemmInt16TokenSplitMinimum` tokens the tokens (GemmInt16Product.swift).
//
// Scheme, per worker, for passes of up to 32 panels of 32 rows:
//  * for each chunk of 8 blocks of 32 (one K-quant super-block): every row of the pass is unpacked by `panelUnpack`
//    (PanelUnpack.swift: int16 q minus offset, Q6_K scales folded in; f32 scale per 32, Q4_K negated min per 32) into a
//    row-major buffer, then each block's two 16 x 16 squares of 32-bit words (row i, pair j = (w[2j], w[2j+1])) are
//    transposed (vpermt2d) into the panel layout: one zmm = 16 rows' pair j. Blocks of a tile pass (4) are
//    contiguous for all panels (`gemmI16Blk`), so a pass over the panels streams one run;
//  * for each 4-block pass and group of 6 tokens, every activation pair (x[2j], x[2j+1]) is broadcast into a 64-byte
//    buffer (16 copies of its 32-bit word; 24 KB, reused by all panels of the pass), and the token scales copied;
//  * the 32 x 6 tile: per block, 12 int32 accumulators built by 16 x 12 vpdpwssd (2 weight zmm x 6 broadcast
//    pairs), then per token and half: vcvtdq2ps, times (weight scales (vector) * token scale (broadcast)), FMA into
//    12 f32 accumulators; Q4_K adds negated min (vector) * token scale*sum (broadcast). The f32 accumulators are
//    loaded from / stored to y once per 4-block pass (first pass starts from 0). No spills (checked in the asm).
//  * Ranges: a vpdpwssd lane sums 32 products |w| |x| per block: Q8_0 127 * 32767 * 32 < 2^31. Q6_K's folded
//    weights reach 4096: with 16-bit activations each 16-element half block is converted on its own (`halves`);
//    with activations quantized to |q| <= 16383 (`limit: 16383`, a.qMax) a block of 32 fits (4096 * 16383 * 32
//    < 2^31) and Q6_K takes the plain kernel.
//  Exactness: each output is the same f32 operations whatever the panel range / token range / pass split (GemmTests).
// Measurements, the codegen lessons behind the code's shape (no broadcast operands from Swift, one conversion per
// loop body to avoid spills) and what was tried: docs/kernels.md.

/// Blocks of 32 (k) per tile pass: the broadcast activations of one pass and token group (4 * 16 * 6 * 64 B = 24 KB) stay in L1.
let gemmI16KC = 4
/// Default blocks per tile pass for `gemmPanelsInt16` (1, 2 or 4; measured equal within noise).
package let gemmInt16PassBlocks = 4
/// Blocks of 32 (k) unpacked at a time for all panels (one Q4_K / Q6_K super-block).
let gemmI16UC = 8
/// Tokens per block (a multiple of 6).
package let gemmInt16TokenBlock = 192
/// Panels (of 32 rows) per pass; a larger range is done in passes.
package let gemmInt16MaxPanels = 32

/// Scratch bytes per worker for `gemmPanelsInt16`.
package let gemmInt16ScratchBytes = gemmInt16MaxPanels * gemmI16UC * (2048 + 2 * 128)  // int16 panels + weight scales + negated mins
    + gemmI16KC * 16 * 6 * 64 + gemmI16KC * 16 * 4     // broadcast activations + token scales
    + 32 * gemmI16UC * 64                               // one panel's rows, row-major (before the transpose)
    + 2 * gemmI16UC * 4 + 64                            // one row's scales and mins (panelUnpack)

/// Quantized activations from a first token on (int16 rows `cols` apart, per block scale and scale * sum).
struct GemmI16Acts { let q: UnsafePointer<Int16>, d: UnsafePointer<Float>, ds: UnsafePointer<Float> }

@inline(__always) func yl(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always) func ys(_ p: UnsafeMutablePointer<Float>, _ v: SIMD16<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self) }

/// 32 rows x 6 tokens over `n` blocks of one chunk. `w`: the panel's blocks (2048 B each: pair j, half h at
/// (2j + h) * 64 B, lane i = row 16h + i); `ws` / `nwm`: per block 32 weight scales / negated mins; `bc`: broadcast
/// activations, per block 16 pairs x 6 tokens x 64 B; `sc`: per block 16 floats (token scales, then scale * sum).
@inline(__always)
func gemmI16Tile(_ w: UnsafeRawPointer, _ ws: UnsafePointer<Float>, _ nwm: UnsafePointer<Float>, _ bc: UnsafeRawPointer,
                 _ sc: UnsafePointer<Float>, _ n: Int, _ hasMin: Bool, _ halves: Bool, _ first: Bool, _ z: Int32,
                 _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ nt: Int) {
@@FDECL@@
@@FLOAD@@
    let zi = SIMD16<Int32>(repeating: z)
    // Q6_K (halves): sub-blocks of 16 elements (8 pairs): its folded weights (|w| <= 4096) may overflow an int32 sum of 32.
    let shift = halves ? 1 : 0, P = halves ? 8 : 16
    for sb in 0..<(n &<< shift) {
        let b = sb &>> shift
        let wb = w + 128 &* P &* sb, bb = bc + 384 &* P &* sb
        let c = sc + 16 &* b
        let s0 = UnsafeRawPointer(ws + 32 &* b).load(as: SIMD16<Float>.self)
        let s1 = UnsafeRawPointer(ws + (32 &* b &+ 16)).load(as: SIMD16<Float>.self)
@@IDECL@@
        for j in 0..<P {
            let w0 = (wb + 128 &* j).assumingMemoryBound(to: Int16.self), w1 = w0 + 32
            let x = (bb + 384 &* j).assumingMemoryBound(to: Int16.self)
@@STEP@@
        }
@@CONV@@
        if hasMin {
            let m0 = UnsafeRawPointer(nwm + 32 &* b).load(as: SIMD16<Float>.self)
            let m1 = UnsafeRawPointer(nwm + (32 &* b &+ 16)).load(as: SIMD16<Float>.self)
@@MINS@@
        }
    }
@@FSTORE@@
}

// 16 x 16 transpose of 32-bit words, the classic way (generated and checked by gen/tr.py): unpack low/high of
// 32-bit then 64-bit elements within 128-bit lanes, then two rounds of 128-bit lane shuffles, each two-source shuffle
// written out lane by lane (vpunpck*dq / vpunpck*qdq / vshufi64x2).
@@STAGES@@

/// Rows `src + k * 64 * gemmI16UC` (16 words each) to columns `dst + j * 128` (16 words each).
@inline(__always) func gemmI16Transpose16(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer) {
    @inline(__always) func ld(_ k: Int) -> SIMD16<Int32> { src.load(fromByteOffset: 64 &* gemmI16UC &* k, as: SIMD16<Int32>.self) }
    @inline(__always) func st(_ j: Int, _ v: SIMD16<Int32>) { dst.storeBytes(of: v, toByteOffset: 128 &* j, as: SIMD16<Int32>.self) }
@@TRANSPOSE@@
}

/// Index of unpacked block b (of a chunk) of panel pi in a pass of g panels: each tile pass (gemmI16KC blocks) reads
/// its g panels' blocks as one contiguous run.
@inline(__always) func gemmI16Blk(_ b: Int, _ pi: Int, _ g: Int, _ kc: Int) -> Int {
    ((b / kc) &* g &+ pi) &* kc &+ b % kc
}

/// Unpacks blocks b0 ..< b0 + n (n <= gemmI16UC) of panels p0 ..< p0 + g (32 rows each) into the pair-interleaved int16
/// layout: panel pi, block b at 2048 * gemmI16Blk(b, pi, g, kc) bytes. Each row is unpacked by `panelUnpack` (PanelUnpack.swift)
/// into `tmp` (row i at i * 64 * gemmI16UC bytes), then each block's two 16 x 16 word squares are transposed.
@inline(never)
func gemmI16Unpack(_ m: WeightMatrix, _ p0: Int, _ g: Int, _ b0: Int, _ n: Int, _ pw: UnsafeMutableRawPointer,
                   _ pws: UnsafeMutablePointer<Float>, _ pwm: UnsafeMutablePointer<Float>, _ rs0: PanelUnpackTarget,
                   _ tmp: UnsafeMutableRawPointer, _ kc: Int, _ hasMin: Bool) {
    var rs = rs0
    let U = gemmI16UC
    for pi in 0..<g {
        for i in 0..<32 {
            let row = m.base + (32 &* (p0 &+ pi) &+ i) &* m.rowBytes
            rs.w = (tmp + 64 &* U &* i).assumingMemoryBound(to: Int16.self)
            panelUnpack(m.layout!, row, b0, n, rs)
            for b in 0..<n {
                let blk = gemmI16Blk(b, pi, g, kc)
                pws[32 &* blk &+ i] = rs.ws[b]
                if hasMin { pwm[32 &* blk &+ i] = -rs.wm[b] }
            }
        }
        for b in 0..<n {
            let blk = gemmI16Blk(b, pi, g, kc)
            gemmI16Transpose16(UnsafeRawPointer(tmp + 64 &* b), pw + 2048 &* blk)
            gemmI16Transpose16(UnsafeRawPointer(tmp + (64 &* b &+ 64 &* U &* 16)), pw + (2048 &* blk &+ 64))
        }
    }
}

/// Broadcasts tokens t0 ..< t0 + nt (nt <= 6; missing tokens repeat the last), blocks b0 ..< b0 + n, each activation pair
/// (x[2j], x[2j+1]) as 16 copies of its 32-bit word (the vpdpwssd memory operand), and copies the token scales.
@inline(__always)
func gemmI16Broadcast(_ q: UnsafePointer<Int16>, _ d: UnsafePointer<Float>, _ ds: UnsafePointer<Float>, cols: Int, _ t0: Int, _ nt: Int,
                      _ b0: Int, _ n: Int, _ bc: UnsafeMutableRawPointer, _ sc: UnsafeMutablePointer<Float>) {
    let nb = cols / 32
    for t in 0..<6 {
        let tt = t0 &+ min(t, nt &- 1)
        let src = UnsafeRawPointer(q + (tt &* cols &+ 32 &* b0))
        for bl in 0..<n {
            for j in 0..<16 {
                let v = src.load(fromByteOffset: 64 &* bl &+ 4 &* j, as: Int32.self)
                bc.storeBytes(of: SIMD16<Int32>(repeating: v), toByteOffset: 6144 &* bl &+ 384 &* j &+ 64 &* t, as: SIMD16<Int32>.self)
            }
            sc[16 &* bl &+ t] = d[tt &* nb &+ b0 &+ bl]
            sc[16 &* bl &+ 8 &+ t] = ds[tt &* nb &+ b0 &+ bl]
        }
    }
}

@inline(__always)
func gemmI16Driver(_ m: WeightMatrix, _ panels: Range<Int>, _ a: GemmI16Acts, _ cols: Int, _ tokens: Int,
                   _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ scratch: UnsafeMutableRawPointer, _ tb: Int, _ kc: Int, _ gp: Int, _ hasMin: Bool, _ halves: Bool) {
    let nb = cols / 32
    let G = gemmInt16MaxPanels, U = gemmI16UC
    let pw = scratch
    let pws = (scratch + G * U * 2048).bindMemory(to: Float.self, capacity: G * U * 64)
    let pwm = pws + G * U * 32
    let bc = scratch + G * U * (2048 + 256)
    let sc = (bc + gemmI16KC * 6144).bindMemory(to: Float.self, capacity: gemmI16KC * 16)
    let tmp = UnsafeMutableRawPointer(sc + gemmI16KC * 16)
    let rsBase = tmp + 32 * U * 64
    let rsScales = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: rsBase) + 63) & ~63)!.bindMemory(to: Float.self, capacity: 2 * U)
    let rs = PanelUnpackTarget(w: tmp.assumingMemoryBound(to: Int16.self), ws: rsScales, wm: rsScales + U)
    let z = kernelOpaqueZero
    let q = a.q, d = a.d, ds = a.ds
    let zi = Int32(truncatingIfNeeded: z)
    var p0 = panels.lowerBound
    while p0 < panels.upperBound {
        // Balanced passes of at most gp panels.
        let left = panels.upperBound &- p0, passes = (left &+ gp &- 1) / gp
        let g = (left &+ passes &- 1) / passes
        var u0 = 0
        while u0 < nb {
            let un = min(U, nb &- u0)
            gemmI16Unpack(m, p0, g, u0, un, pw, pws, pwm, rs, tmp, kc, hasMin)
            // Token blocks of `tb`: the block's outputs stay in L2 across the chunk's tile passes.
            var tb0 = 0
            while tb0 < tokens {
            let tb1 = min(tokens, tb0 &+ tb)
            var k0 = 0
            while k0 < un {
                let n = min(kc, un &- k0)
                var t = tb0
                while t < tb1 {
                    let nt = min(6, tb1 &- t)
                    gemmI16Broadcast(q, d, ds, cols: cols, t, nt, u0 &+ k0, n, bc, sc)
                    for pi in 0..<g {
                        let blk = gemmI16Blk(k0, pi, g, kc)
                        gemmI16Tile(UnsafeRawPointer(pw + 2048 &* blk), UnsafePointer(pws + 32 &* blk), UnsafePointer(pwm + 32 &* blk),
                                    UnsafeRawPointer(bc), UnsafePointer(sc), n, hasMin, halves, u0 &+ k0 == 0, zi,
                                    y + (t &* yStride &+ 32 &* (p0 &+ pi)), yStride, nt)
                    }
                    t &+= 6
                }
                k0 &+= n
            }
            tb0 = tb1
            }
            u0 &+= un
        }
        p0 &+= g
    }
}

@inline(never) func gemmI16Plain(_ m: WeightMatrix, _ panels: Range<Int>, _ a: GemmI16Acts, _ cols: Int, _ tokens: Int,
                                 _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ scratch: UnsafeMutableRawPointer, _ tb: Int, _ kc: Int, _ gp: Int) {
    gemmI16Driver(m, panels, a, cols, tokens, y, yStride, scratch, tb, kc, gp, false, false)
}
@inline(never) func gemmI16Min(_ m: WeightMatrix, _ panels: Range<Int>, _ a: GemmI16Acts, _ cols: Int, _ tokens: Int,
                               _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ scratch: UnsafeMutableRawPointer, _ tb: Int, _ kc: Int, _ gp: Int) {
    gemmI16Driver(m, panels, a, cols, tokens, y, yStride, scratch, tb, kc, gp, true, false)
}
@inline(never) func gemmI16Halves(_ m: WeightMatrix, _ panels: Range<Int>, _ a: GemmI16Acts, _ cols: Int, _ tokens: Int,
                                  _ y: UnsafeMutablePointer<Float>, _ yStride: Int, _ scratch: UnsafeMutableRawPointer, _ tb: Int, _ kc: Int, _ gp: Int) {
    gemmI16Driver(m, panels, a, cols, tokens, y, yStride, scratch, tb, kc, gp, false, true)
}

extension WeightMatrix {
    /// `y[t][32p ..< 32p + 32] = W[those rows] . x[t]` for the 32-row panels p in `panels` and t < tokens, with `a` holding the
    /// tokens' activations quantized (`a.quantize(x, stride:, rows: tokens, cols: cols)`, done once per product and shared
    /// by the workers). `scratch`: `gemmInt16ScratchBytes` bytes per worker, 64-byte aligned.
    /// Formats: those with an integer layout (`layout`: Q8_0, Q4_0, Q5_0, Q4_K, Q6_K, int4Channel).
    package func gemmPanelsInt16(_ panels: Range<Int>, _ a: PanelActivations, tokens: Int,
                                into y: UnsafeMutablePointer<Float>, yStride: Int, scratch: UnsafeMutableRawPointer,
                                tokenBlock: Int = gemmInt16TokenBlock, passBlocks: Int = gemmInt16PassBlocks,
                                passPanels: Int = gemmInt16MaxPanels) {
        gemmPanelsInt16(panels, a, tokenRange: 0..<tokens, into: y, yStride: yStride, scratch: scratch, tokenBlock: tokenBlock,
                        passBlocks: passBlocks, passPanels: passPanels)
    }

    /// The same for the tokens in `tokenRange` only (y rows `tokenRange` written): workers may split tokens instead of
    /// panels (each then unpacks all of its panels' weights, but broadcasts each activation pair for more rows).
    package func gemmPanelsInt16(_ panels: Range<Int>, _ a: PanelActivations, tokenRange: Range<Int>,
                                into y: UnsafeMutablePointer<Float>, yStride: Int, scratch: UnsafeMutableRawPointer,
                                tokenBlock: Int = gemmInt16TokenBlock, passBlocks: Int = gemmInt16PassBlocks,
                                passPanels: Int = gemmInt16MaxPanels) {
        let gp = max(1, min(gemmInt16MaxPanels, passPanels))
        guard !tokenRange.isEmpty, !panels.isEmpty else { return }
        let kc = passBlocks == 1 ? 1 : passBlocks == 2 ? 2 : 4
        let tb = max(6, tokenBlock / 6 * 6)
        let cols = cols, nb = cols / 32, t0 = tokenRange.lowerBound, tokens = tokenRange.count
        let acts = GemmI16Acts(q: UnsafePointer(a.q + t0 * cols), d: UnsafePointer(a.scales + t0 * nb), ds: UnsafePointer(a.scaledSums + t0 * nb))
        let yt = y + t0 * yStride
        switch layout {
        case .q4_K, .q4_KLanes: gemmI16Min(self, panels, acts, cols, tokens, yt, yStride, scratch, tb, kc, gp)
        case .q6_K:
            // Folded Q6_K weights (|w| <= 4096): with |q| <= 16383 a block of 32 sums below 2^31 (4096 * 16383 * 32);
            // with 16-bit activations each half block is converted on its own.
            if a.qMax <= 16383 { gemmI16Plain(self, panels, acts, cols, tokens, yt, yStride, scratch, tb, kc, gp) }
            else { gemmI16Halves(self, panels, acts, cols, tokens, yt, yStride, scratch, tb, kc, gp) }
        default: gemmI16Plain(self, panels, acts, cols, tokens, yt, yStride, scratch, tb, kc, gp)
        }
    }
}
