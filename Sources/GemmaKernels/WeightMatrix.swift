// A weight matrix in its stored format (memory-mapped, never dequantized whole) and the products the model needs:
// Y[t] = W · X[t] for a batch of activation rows, choosing the kernel by batch size and precision:
//  - batches of `gemmMinimumBatch` rows or more: in `.fast` precision on CPUs with AVX-512 the int16 GEMM
//    (GemmInt16.swift: activations quantized to int16 per 32 as for the row kernels, weights unpacked to int16 panels
//    per call, vpdpwssd), otherwise the f32 panel GEMM (exact f32; each panel dequantized once; CPUFeatures.swift);
//  - smaller batches (decode) in `.fast` precision: integer row kernels over int16-quantized activations, each
//    weight row unpacked once for all activation rows (RowKernels.swift); q/k/v and gate/up as one product;
//  - otherwise: each weight row dequantized once into scratch, then f32 dots (exact f32).
import GemmaFormats

/// How activations meet quantized weights in small-batch products.
public enum Precision: String, Sendable, CaseIterable {
    /// Activations quantized to int16 per 32 elements for the integer kernels (relative error ~1e-5 per block).
    case fast
    /// f32 activations and dequantized f32 weights everywhere.
    case exact
}

package struct WeightMatrix: @unchecked Sendable {  // points into a read-only mapping that the model keeps alive
    /// How the rows are stored.
    package let encoding: WeightEncoding
    /// Output features (rows of W).
    package let rows: Int
    /// Input features (elements per row).
    package let cols: Int
    package let base: UnsafeRawPointer
    package let rowBytes: Int
    /// The integer kernels' layout of the rows, when they compute on them directly.
    package let layout: IntegerLayout?
    /// Batches at least this large use the panel GEMM.
    package static let gemmMinimumBatch = 8

    /// A matrix of `rows` x `cols` elements stored in `encoding` at `base` (rows one after the other). The encoding
    /// must be computable (`canDequantize`) and `cols` a whole number of its blocks.
    package init(encoding: WeightEncoding, rows: Int, cols: Int, base: UnsafeRawPointer) {
        precondition(encoding.canDequantize && encoding.rowBytes(cols) != nil)
        self.encoding = encoding
        self.rows = rows
        self.cols = cols
        self.base = base
        self.rowBytes = encoding.rowBytes(cols) ?? 0
        layout = encoding.integerLayout
    }

    /// A matrix of a ggml tensor type (see `init(encoding:rows:cols:base:)`).
    package init(type: TensorType, rows: Int, cols: Int, base: UnsafeRawPointer) {
        guard let e = WeightEncoding.of(type) else { preconditionFailure("no weight encoding for \(type)") }
        self.init(encoding: e, rows: rows, cols: cols, base: base)
    }

    /// The ggml tensor type of the rows, when the encoding has one.
    package var type: TensorType? { encoding.tensorType }

    /// Dequantizes row `r` into `out` (`cols` floats).
    @inlinable
    package func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if encoding.tensorType == .f32 {
            out.update(from: (base + r * rowBytes).assumingMemoryBound(to: Float.self), count: cols)
            return
        }
        // Set: checked at init.
        encoding.dequantizeRow?(base + r * rowBytes, cols, out)
    }
}

/// Scratch for matrix products: per worker 8 dequantized rows and a GEMM panel; shared quantized activations.
package final class MatmulScratch: @unchecked Sendable {  // each worker uses only its own rows and panel
    let rows: UnsafeMutablePointer<Float>
    let panels: UnsafeMutablePointer<Float>
    /// The f32 GEMM's activations in 6-token tiles (`packGemmActivations`); empty when batches never reach the GEMM.
    let packed: UnsafeMutablePointer<Float>
    let packedTokens: Int
    let stride: Int
    package let activations: QuantizedActivations
    /// Per worker: the row kernels' unpacked weights (`rowKernelScratchBytes`, 64-byte aligned).
    let rowKernel: UnsafeMutableRawPointer
    /// Per worker: the int16 GEMM's panels (`gemmInt16ScratchBytes`); nil when batches never reach the GEMM.
    let gemmInt16: UnsafeMutableRawPointer?
    /// The int16 GEMM's activations (element order; the row kernels' are chunk-interleaved).
    let gemmActivations: PanelActivations
    /// The bf16 row kernels' activations (even/odd halves per 32-element chunk), for up to 32 rows.
    let paired: PairedActivations

    package init(workers: Int, maxCols: Int, maxBatch: Int = 1) {
        stride = (maxCols + 31) / 32 * 32
        rows = .allocate(capacity: workers * 8 * stride)
        panels = .allocate(capacity: workers * 32 * stride)
        activations = QuantizedActivations(maxRows: max(1, maxBatch), maxCols: stride)
        rowKernel = .allocate(byteCount: workers * rowKernelScratchBytes, alignment: 64)
        let gemm = maxBatch >= WeightMatrix.gemmMinimumBatch
        packedTokens = gemm ? (maxBatch + 5) / 6 * 6 : 0
        packed = .allocate(capacity: max(1, packedTokens * stride))
        gemmInt16 = gemm ? .allocate(byteCount: workers * gemmInt16ScratchBytes, alignment: 64) : nil
        gemmActivations = PanelActivations(maxRows: gemm ? maxBatch : 1, maxCols: gemm ? stride : 32)
        paired = PairedActivations(maxRows: min(max(1, maxBatch), 32), maxCols: stride)
    }

    deinit {
        rows.deallocate()
        panels.deallocate()
        packed.deallocate()
        rowKernel.deallocate()
        gemmInt16?.deallocate()
    }

    func row(_ w: Int) -> UnsafeMutablePointer<Float> { rows + w * 8 * stride }
    func panel(_ w: Int) -> UnsafeMutablePointer<Float> { panels + w * 32 * stride }
    func rowKernelScratch(_ w: Int) -> UnsafeMutableRawPointer { rowKernel + w * rowKernelScratchBytes }
}

extension WeightMatrix {
    /// `y[t][rowRange] = W[rowRange] · x[t]` for `t < batch`; x rows are `xStride` floats apart, y rows `yStride`.
    /// Rows of W are split across the pool's workers. With `allowGemm` false, batches never take the GEMM, so that
    /// each activation row gets the same arithmetic whatever else is in the batch (decoding several sequences).
    package func multiply(_ x: UnsafePointer<Float>, xStride: Int, batch: Int,
                         into y: UnsafeMutablePointer<Float>, yStride: Int,
                         rowRange: Range<Int>? = nil, precision: Precision = .fast, allowGemm: Bool = true,
                         pool: WorkerPool, scratch: MatmulScratch) {
        let range = rowRange ?? 0..<rows
        guard batch > 0, !range.isEmpty else { return }
        let cols = cols
        if allowGemm, batch >= Self.gemmMinimumBatch, batch <= scratch.packedTokens, range.lowerBound % 32 == 0 {
            // Whole 32-row panels by GEMM, a tail of fewer than 32 rows by dequantized-row dots.
            let panels = (range.lowerBound / 32)..<(range.lowerBound / 32 + range.count / 32)
            if precision == .fast, layout != nil, CPUFeatures.int16Gemm, let gemmScratch = scratch.gemmInt16,
               batch <= scratch.gemmActivations.maxRows {
                // int16 activations and weights (GemmInt16.swift): 1.2-2x the f32 GEMM where the CPU has AVX-512.
                multiplyGemmInt16(x, xStride: xStride, batch: batch, panels: panels, into: y, yStride: yStride,
                                  activations: scratch.gemmActivations, scratch: gemmScratch, pool: pool)
            } else if !panels.isEmpty {
                let packed = scratch.packed
                pool.parallelFor((batch + 5) / 6) { _, tiles in
                    packGemmActivations(x, xStride: xStride, tokens: batch, k: cols, tiles: tiles, into: packed)
                }
                pool.parallelFor(panels.count, GemmJob(m: self, firstPanel: panels.lowerBound, x: packed, batch: batch,
                                                       y: y, yStride: yStride, scratch: scratch))
            }
            let tail = (panels.upperBound * 32)..<range.upperBound
            if !tail.isEmpty { multiplyByRows(x, xStride: xStride, batch: batch, into: y, yStride: yStride, range: tail, pool: pool, scratch: scratch) }
            return
        }
        if precision == .fast, layout != nil, batch <= scratch.activations.maxRows {
            let a = scratch.activations
            a.quantize(x, stride: xStride, rows: batch, cols: cols)
            pool.parallelFor(range.count, minimumPerWorker: 16,
                             RowKernelJob(m: (self, self, nil), y: (y, y, nil), yStride: (yStride, 0, 0), split: (range.count, range.count),
                                          firstRow: range.lowerBound, a: a, batch: batch, scratch: scratch))
            return
        }
        if precision == .fast, hasFloatRowKernels, batch <= scratch.paired.maxRows {
            // Float weights (bf16, f16, f32) where they lie, f32 FMA (FloatRowKernels.swift).
            if takesPairedActivations { scratch.paired.split(x, stride: xStride, rows: batch, cols: cols) }
            pool.parallelFor(range.count, minimumPerWorker: 16,
                             FloatRowJob(m: self, firstRow: range.lowerBound, x: x, xStride: xStride, batch: batch, y: y, yStride: yStride,
                                         paired: scratch.paired, scratch: scratch))
            return
        }
        multiplyByRows(x, xStride: xStride, batch: batch, into: y, yStride: yStride, range: range, pool: pool, scratch: scratch)
    }

    /// `y_i = W_i · x` for two or three matrices over the same activations (q/k/v, gate/up), as one product:
    /// small batches quantize `x` once and split all the matrices' rows across the workers in one dispatch.
    /// Each output gets exactly the arithmetic of `multiply` on its own.
    package static func multiply(_ m: (WeightMatrix, WeightMatrix, WeightMatrix?), _ x: UnsafePointer<Float>, xStride: Int, batch: Int,
                                into y: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?),
                                yStride: (Int, Int, Int), precision: Precision = .fast, allowGemm: Bool = true,
                                pool: WorkerPool, scratch: MatmulScratch) {
        let cols = m.0.cols
        let fused = precision == .fast && batch > 0 && batch <= scratch.activations.maxRows
            && !(allowGemm && batch >= gemmMinimumBatch)
            && m.0.layout != nil && m.1.layout != nil && (m.2.map { $0.layout != nil } ?? true)
            && m.1.cols == cols && (m.2.map { $0.cols == cols } ?? true) && (m.2 == nil) == (y.2 == nil)
        if !fused, precision == .fast, allowGemm, batch >= gemmMinimumBatch, CPUFeatures.int16Gemm,
           multiplyGemmInt16TokenSplit(m, x, xStride: xStride, batch: batch, into: y, yStride: yStride, pool: pool, scratch: scratch) {
            return
        }
        guard fused else {
            m.0.multiply(x, xStride: xStride, batch: batch, into: y.0, yStride: yStride.0, precision: precision, allowGemm: allowGemm,
                         pool: pool, scratch: scratch)
            m.1.multiply(x, xStride: xStride, batch: batch, into: y.1, yStride: yStride.1, precision: precision, allowGemm: allowGemm,
                         pool: pool, scratch: scratch)
            if let m2 = m.2, let y2 = y.2 {
                m2.multiply(x, xStride: xStride, batch: batch, into: y2, yStride: yStride.2, precision: precision, allowGemm: allowGemm,
                            pool: pool, scratch: scratch)
            }
            return
        }
        let a = scratch.activations
        a.quantize(x, stride: xStride, rows: batch, cols: cols)
        let n0 = m.0.rows, n1 = m.1.rows, total = n0 + n1 + (m.2?.rows ?? 0)
        pool.parallelFor(total, minimumPerWorker: 16,
                         RowKernelJob(m: m, y: y, yStride: yStride, split: (n0, n0 + n1), firstRow: 0, a: a, batch: batch, scratch: scratch))
    }

    /// Each weight row dequantized once into worker scratch, then an f32 dot per activation row.
    private func multiplyByRows(_ x: UnsafePointer<Float>, xStride: Int, batch: Int, into y: UnsafeMutablePointer<Float>,
                                yStride: Int, range: Range<Int>, pool: WorkerPool, scratch: MatmulScratch) {
        pool.parallelFor(range.count, minimumPerWorker: 16,
                         DequantizedRowJob(m: self, firstRow: range.lowerBound, x: x, xStride: xStride, batch: batch, y: y, yStride: yStride,
                                           scratch: scratch))
    }
}

// The products' worker jobs (structs, so that a dispatch allocates nothing).

private struct GemmJob: RangeJob {
    let m: WeightMatrix, firstPanel: Int, x: UnsafePointer<Float>, batch: Int
    let y: UnsafeMutablePointer<Float>, yStride: Int, scratch: MatmulScratch
    func run(worker w: Int, range: Range<Int>) {
        m.gemmPanels((firstPanel + range.lowerBound)..<(firstPanel + range.upperBound), packed: x, tokens: batch,
                     into: y, yStride: yStride, panel: scratch.panel(w), rows: scratch.row(w))
    }
}

/// What the row kernels read of a matrix (no class references: copying a job retains nothing, where the matrices'
/// shared encoding objects' reference counts bounced between the cores on every dispatch).
private struct RowSource {
    let layout: IntegerLayout, base: UnsafeRawPointer, rowBytes: Int, cols: Int
    init(_ m: WeightMatrix) { (layout, base, rowBytes, cols) = (m.layout!, m.base, m.rowBytes, m.cols) }
}

/// Integer row kernels over one to three matrices whose rows are numbered one after the other: job rows below
/// `split.0` belong to `m.0` (from its row `firstRow`), then `m.1` up to `split.1`, then `m.2`. The matrices have
/// an integer layout; the activations and scratch outlive the dispatch (unretained: no reference counting).
private struct RowKernelJob: RangeJob {
    let m: (RowSource, RowSource, RowSource?)
    let y: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?)
    let yStride: (Int, Int, Int), split: (Int, Int), firstRow: Int
    let a: Unmanaged<QuantizedActivations>
    let batch: Int
    let scratch: Unmanaged<MatmulScratch>

    init(m: (WeightMatrix, WeightMatrix, WeightMatrix?), y: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?),
         yStride: (Int, Int, Int), split: (Int, Int), firstRow: Int, a: QuantizedActivations, batch: Int, scratch: MatmulScratch) {
        self.m = (RowSource(m.0), RowSource(m.1), m.2.map(RowSource.init))
        self.y = y
        self.yStride = yStride
        self.split = split
        self.firstRow = firstRow
        self.a = .passUnretained(a)
        self.batch = batch
        self.scratch = .passUnretained(scratch)
    }

    @inline(__always) private func rows(_ w: RowSource, _ range: Range<Int>, _ y: UnsafeMutablePointer<Float>, _ ys: Int, _ buf: UnsafeMutableRawPointer) {
        a._withUnsafeGuaranteedRef { a in
            dotRowsMany(w.layout, w.base + range.lowerBound * w.rowBytes, rowBytes: w.rowBytes, count: range.count, cols: w.cols, a,
                        batch: batch, into: y + range.lowerBound, yStride: ys, buf)
        }
    }

    func run(worker: Int, range slice: Range<Int>) {
        let buf = scratch._withUnsafeGuaranteedRef { $0.rowKernelScratch(worker) }
        let s0 = slice.clamped(to: 0..<split.0)
        if !s0.isEmpty { rows(m.0, (s0.lowerBound + firstRow)..<(s0.upperBound + firstRow), y.0, yStride.0, buf) }
        let s1 = slice.clamped(to: split.0..<split.1)
        if !s1.isEmpty { rows(m.1, (s1.lowerBound - split.0)..<(s1.upperBound - split.0), y.1, yStride.1, buf) }
        if let m2 = m.2, let y2 = y.2 {
            let s2 = slice.clamped(to: split.1..<Int.max)
            if !s2.isEmpty { rows(m2, (s2.lowerBound - split.1)..<(s2.upperBound - split.1), y2, yStride.2, buf) }
        }
    }
}

private struct DequantizedRowJob: RangeJob {
    let m: WeightMatrix, firstRow: Int, x: UnsafePointer<Float>, xStride: Int, batch: Int
    let y: UnsafeMutablePointer<Float>, yStride: Int, scratch: MatmulScratch
    func run(worker w: Int, range: Range<Int>) {
        let buf = scratch.row(w), cols = m.cols
        for r in (range.lowerBound + firstRow)..<(range.upperBound + firstRow) {
            m.dequantizeRow(r, into: buf)
            for t in 0..<batch { y[t * yStride + r] = dot(buf, x + t * xStride, cols) }
        }
    }
}
