// Activations of a prompt batch quantized to int16 per 32 elements with an f32 scale, in element order, for the
// int16 prompt GEMM (GemmInt16.swift). Same values as QuantizedActivations (the row kernels' activations, stored
// chunk-interleaved) for the default limit; see QuantizedActivations for why int16.

/// Rows of activations quantized per 32 elements: `q` (int16), `scales` (f32) and `scaledSums` (scale * sum of q,
/// for formats with a min term such as Q4_K).
package final class PanelActivations: @unchecked Sendable {  // written before a product, read-only during it
    package let maxRows: Int
    package let maxCols: Int
    let q: UnsafeMutablePointer<Int16>
    let scales, scaledSums: UnsafeMutablePointer<Float>
    package private(set) var cols = 0
    /// The largest |q| of the last quantization: 32767, or 16383 for the int16 GEMM's Q6_K (see GemmInt16.swift).
    package private(set) var qMax: Int32 = 32767

    package init(maxRows: Int, maxCols: Int) {
        self.maxRows = max(1, maxRows)
        self.maxCols = (maxCols + 31) / 32 * 32
        // 64-byte aligned rows (maxCols % 32 == 0): the row kernels' zmm loads of activations never split cache lines (+10%).
        q = UnsafeMutableRawPointer.allocate(byteCount: 2 * self.maxRows * self.maxCols, alignment: 64)
            .bindMemory(to: Int16.self, capacity: self.maxRows * self.maxCols)
        let blocks = self.maxRows * self.maxCols / 32
        scales = .allocate(capacity: blocks)
        scaledSums = .allocate(capacity: blocks)
    }

    deinit {
        q.deallocate()
        scales.deallocate()
        scaledSums.deallocate()
    }

    /// Quantizes `rows` rows of `cols` floats (`cols % 32 == 0`), `stride` floats apart. Rounds half away from zero.
    /// `limit`: the largest |q| (32767; 16383 lets the int16 GEMM sum a Q6_K block of 32 in int32 without overflow).
    package func quantize(_ x: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int, limit: Int32 = 32767) {
        prepare(cols: cols, limit: limit)
        quantizeRows(x, stride: stride, rows: 0..<rows, cols: cols, limit: limit)
    }

    /// Sets the row width and limit for `quantizeRows` (once, before the workers quantize their rows).
    package func prepare(cols: Int, limit: Int32 = 32767) {
        precondition(cols <= maxCols && cols % 32 == 0 && limit > 0 && limit <= 32767)
        self.cols = cols
        self.qMax = limit
    }

    /// Quantizes the rows in `rows` only (`x` points at row 0), e.g. one worker's share of a prefill batch: the same
    /// values as `quantize`. `cols` and `limit` must be those given to `prepare`.
    package func quantizeRows(_ x: UnsafePointer<Float>, stride: Int, rows: Range<Int>, cols: Int, limit: Int32 = 32767) {
        precondition(rows.upperBound <= maxRows && cols <= maxCols && cols % 32 == 0)
        let lim = Float(limit)
        // Written so that LLVM vectorizes both loops (7.7x faster than max(abs) and Int16(rounded), whose NaN
        // semantics and trapping conversion kept them scalar; same results bit for bit): the largest magnitude as
        // the unsigned maximum of the sign-cleared bit patterns (same order for non-NaN floats), and the rounded
        // value (|r| <= 32767) read from the low bits of r + 1.5 * 2^23.
        for r in rows {
            let src = x + r * stride, dst = q + r * cols, rowBlock = r * cols / 32
            for b in 0..<cols / 32 {
                let xb = src + 32 &* b, qb = dst + 32 &* b
                var bits: UInt32 = 0
                for i in 0..<32 { bits = max(bits, xb[i].bitPattern & 0x7fff_ffff) }
                let d = Float(bitPattern: bits) / lim, id: Float = d == 0 ? 0 : 1 / d
                var s: Int32 = 0
                for i in 0..<32 {
                    let rounded = (xb[i] * id).rounded(.toNearestOrAwayFromZero)
                    let v = Int32(bitPattern: (rounded + 12_582_912).bitPattern) &- 0x4B40_0000
                    qb[i] = Int16(truncatingIfNeeded: v)
                    s &+= v
                }
                scales[rowBlock + b] = d
                scaledSums[rowBlock + b] = d * Float(s)
            }
        }
    }

    @inline(__always) func row(_ r: Int) -> (q: UnsafePointer<Int16>, d: UnsafePointer<Float>, ds: UnsafePointer<Float>) {
        let b = r * cols / 32
        return (UnsafePointer(q + r * cols), UnsafePointer(scales + b), UnsafePointer(scaledSums + b))
    }
}
