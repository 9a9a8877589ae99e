// Activations quantized to int16 per 32 elements with an f32 scale, for the integer row kernels. The machine's
// integer dot instructions reachable from Swift (vpmaddwd / vpdpwssd) multiply int16 pairs anyway, so 16-bit
// activations cost no more than 8-bit ones (llama.cpp's choice) and carry 256x less rounding error:
// |x - d*q| <= d/2 with d = max|x| / 32767 per block.
//
// Chunk-interleaved layout (see RowKernels.swift): a row is padded to a multiple of 128 elements (`paddedCols`) with
// zero values and zero scales; each group of 4 blocks (128 elements) is stored as 4 vectors of 32 int16, vector c
// holding elements 8c ..< 8c + 8 of blocks 4g, 4g + 1, 4g + 2, 4g + 3 in turn (`position(_:)`). Per group the
// kernels also read the four block scales expanded to 16 lanes ([d0 x4, d1 x4, d2 x4, d3 x4], `expandedScales`), and
// the fused nibble kernels (Q4_0, int4Channel) 8 times the sum of each Int32 lane's 8 values (`offsetSums`), so that
// they multiply the unsigned nibbles q and subtract: sum (q - 8) x = sum q x - 8 sum x, the same integer.
// Where the CPU has the byte dot product (CPUFeatures.avx512vbmi), a single row (a decode step's, the only one the
// register kernels read) is also kept split into high and low bytes (`split`, cpu_split_activations in CPUHints.h).
import CPUHints

/// Rows of activations quantized per 32 elements: `q` (int16, chunk-interleaved), `scales` (f32 per block),
/// `expandedScales` (each block's scale 4 times, 16 per group of 4 blocks) and `scaledSums` (scale * sum of q per
/// block, for formats with a min term such as Q4_K).
package final class QuantizedActivations: @unchecked Sendable {  // written before a product, read-only during it
    package let maxRows: Int
    package let maxCols: Int
    package let q: UnsafeMutablePointer<Int16>
    package let scales, scaledSums, expandedScales: UnsafeMutablePointer<Float>
    /// Per row and group, 16 Int32: lane 4m + i = 8 * the sum of the values the row kernels' Int32 lane 4m + i
    /// multiplies (block m, elements 8c + 2i and 8c + 2i + 1 for c < 4); |8 * sum| <= 8 * 8 * 32767 < 2^21.
    package let offsetSums: UnsafeMutablePointer<Int32>
    /// Row 0 in CPUHints.h's split form (cpu_split_group_bytes per group), when `isSplit`.
    let split: UnsafeMutablePointer<UInt8>
    package private(set) var cols = 0
    /// The last quantize was of one row, and it is kept split (the several-row kernels unpack to int16 and use `q`).
    @exclusivity(unchecked) private(set) var isSplit = false  // read per kernel call (see actRow)

    /// Row width in the buffers: `cols` rounded up to a multiple of 128 (a whole number of 4-block groups).
    @inline(__always) package static func paddedCols(_ cols: Int) -> Int { (cols &+ 127) & ~127 }

    /// Index of element `i` of a row in its chunk-interleaved storage.
    @inline(__always) package static func position(_ i: Int) -> Int {
        let b = i &>> 5, e = i & 31
        return (b &>> 2) &* 128 &+ (e &>> 3) &* 32 &+ (b & 3) &* 8 &+ (e & 7)
    }

    package init(maxRows: Int, maxCols: Int) {
        self.maxRows = max(1, maxRows)
        self.maxCols = Self.paddedCols(maxCols)
        // 64-byte aligned rows (maxCols % 128 == 0): the row kernels' zmm loads never split cache lines (+10%).
        q = UnsafeMutableRawPointer.allocate(byteCount: 2 * self.maxRows * self.maxCols, alignment: 64)
            .bindMemory(to: Int16.self, capacity: self.maxRows * self.maxCols)
        let blocks = self.maxRows * self.maxCols / 32
        scales = .allocate(capacity: blocks)
        scaledSums = .allocate(capacity: blocks)
        expandedScales = UnsafeMutableRawPointer.allocate(byteCount: 16 * blocks, alignment: 64).bindMemory(to: Float.self, capacity: 4 * blocks)
        offsetSums = UnsafeMutableRawPointer.allocate(byteCount: 16 * blocks, alignment: 64).bindMemory(to: Int32.self, capacity: 4 * blocks)
        let splitBytes = CPUFeatures.avx512vbmi ? self.maxCols / 128 * Int(cpu_split_group_bytes) : 0
        split = UnsafeMutableRawPointer.allocate(byteCount: max(64, splitBytes), alignment: 64).bindMemory(to: UInt8.self, capacity: max(64, splitBytes))
    }

    deinit {
        q.deallocate()
        scales.deallocate()
        scaledSums.deallocate()
        expandedScales.deallocate()
        offsetSums.deallocate()
        split.deallocate()
    }

    /// Quantizes `rows` rows of `cols` floats (`cols % 32 == 0`), `stride` floats apart. Rounds half away from zero.
    /// `vectorized`: CPUHints.h's cpu_quantize_row (AVX-512), the same values bit for bit (tests compare the two).
    package func quantize(_ x: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int, vectorized: Bool = CPUFeatures.avx512vbmi) {
        precondition(rows <= maxRows && cols <= maxCols && cols % 32 == 0)
        self.cols = cols
        let pc = Self.paddedCols(cols), nb = cols / 32
        for r in 0..<rows {
            let src = x + r * stride, dst = q + r * pc, rowBlock = r * pc / 32
            if vectorized {
                cpu_quantize_row(src, cols, pc, dst, scales + rowBlock, scaledSums + rowBlock, expandedScales + 4 * rowBlock,
                                 offsetSums + 4 * rowBlock)
                continue
            }
            for b in 0..<pc / 32 {
                let o = dst + (b >> 2) * 128 + (b & 3) * 8
                guard b < nb else {
                    // Padding of the last group: zero values, zero scales.
                    for c in 0..<4 { for k in 0..<8 { o[32 * c + k] = 0 } }
                    scales[rowBlock + b] = 0
                    scaledSums[rowBlock + b] = 0
                    for k in 0..<4 { expandedScales[4 * (rowBlock + b) + k] = 0; offsetSums[4 * (rowBlock + b) + k] = 0 }
                    continue
                }
                // Written so that LLVM vectorizes the loops (7.7x faster than max(abs) and Int16(rounded), whose
                // NaN semantics and trapping conversion kept them scalar; same values bit for bit): the largest
                // magnitude as the unsigned maximum of the sign-cleared bit patterns (same order for non-NaN
                // floats), the rounded value (|r| <= 32767) read from the low bits of r + 1.5 * 2^23.
                let xb = src + 32 &* b
                var bits: UInt32 = 0
                for i in 0..<32 { bits = max(bits, xb[i].bitPattern & 0x7fff_ffff) }
                let d = Float(bitPattern: bits) / 32767, id: Float = d == 0 ? 0 : 1 / d
                var s: Int32 = 0
                var lane = SIMD4<Int32>()  // the block's four Int32 lanes (element pairs 2i, 2i + 1 of each chunk)
                for c in 0..<4 {
                    for k in 0..<8 {
                        let rounded = (xb[8 &* c &+ k] * id).rounded(.toNearestOrAwayFromZero)
                        let v = Int32(bitPattern: (rounded + 12_582_912).bitPattern) &- 0x4B40_0000
                        o[32 &* c &+ k] = Int16(truncatingIfNeeded: v)
                        s &+= v
                        lane[k &>> 1] &+= v
                    }
                }
                for i in 0..<4 { offsetSums[4 * (rowBlock + b) + i] = 8 &* lane[i] }
                scales[rowBlock + b] = d
                scaledSums[rowBlock + b] = d * Float(s)
                for k in 0..<4 { expandedScales[4 * (rowBlock + b) + k] = d }
            }
        }
        isSplit = CPUFeatures.avx512vbmi && rows == 1
        if isSplit { cpu_split_activations(q, offsetSums, pc / 128, split) }
    }

    /// Row `r`'s buffers (rows as last quantized): values (chunk-interleaved, see `position`), scales, scaled sums.
    @inline(__always) func row(_ r: Int) -> (q: UnsafePointer<Int16>, d: UnsafePointer<Float>, ds: UnsafePointer<Float>) {
        let pc = Self.paddedCols(cols), b = r * pc / 32
        return (UnsafePointer(q + r * pc), UnsafePointer(scales + b), UnsafePointer(scaledSums + b))
    }

    /// Element `i` of row `r`, dequantized (scale * q), in f64.
    package func value(_ r: Int, _ i: Int) -> Double {
        let x = row(r)
        return Double(x.q[Self.position(i)]) * Double(x.d[i / 32])
    }
}
