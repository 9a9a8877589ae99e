// A whole product with the int16 GEMM (GemmInt16.swift) over a worker pool: the activations quantized by the workers
// (each its share of the tokens), then the 32-row panels (or, from `gemmInt16TokenSplitMinimum` tokens, the tokens)
// split across the workers. `WeightMatrix.multiply` calls it for batches >= gemmMinimumBatch in `.fast` precision
// when the matrix has an integer `layout` (a tail of fewer than 32 rows still by dequantized-row dots). See docs/kernels.md.

/// Workers quantize their share of the tokens (`prepare` done by the caller).
struct QuantizeRowsJob: RangeJob {
    let a: PanelActivations, x: UnsafePointer<Float>, xStride: Int, cols: Int, limit: Int32
    func run(worker: Int, range: Range<Int>) { a.quantizeRows(x, stride: xStride, rows: range, cols: cols, limit: limit) }
}

/// Panels `firstPanel + range` by `gemmPanelsInt16`, worker scratch `scratch + worker * scratchStride`.
struct GemmInt16Job: RangeJob {
    let m: WeightMatrix, firstPanel: Int, a: PanelActivations, tokens: Int
    let y: UnsafeMutablePointer<Float>, yStride: Int, scratch: UnsafeMutableRawPointer, scratchStride: Int
    func run(worker w: Int, range: Range<Int>) {
        m.gemmPanelsInt16((firstPanel + range.lowerBound)..<(firstPanel + range.upperBound), a, tokens: tokens,
                          into: y, yStride: yStride, scratch: scratch + w * scratchStride)
    }
}

/// Up to three products over the same quantized activations (`a`) for the tokens of 6-token tiles `range`: each
/// part's `panels` of its matrix, worker scratch `scratch + worker * scratchStride` (see `dispatchTokenSplit`).
struct GemmInt16TokenJob: RangeJob {
    struct Part { let m: WeightMatrix, panels: Range<Int>, y: UnsafeMutablePointer<Float>, yStride: Int }
    let parts: (Part, Part?, Part?), a: PanelActivations, tokens: Int, scratch: UnsafeMutableRawPointer, scratchStride: Int
    func run(worker w: Int, range: Range<Int>) {
        let t = (6 * range.lowerBound)..<min(tokens, 6 * range.upperBound), s = scratch + w * scratchStride
        func run(_ p: Part?) {
            if let p { p.m.gemmPanelsInt16(p.panels, a, tokenRange: t, into: p.y, yStride: p.yStride, scratch: s) }
        }
        run(parts.0); run(parts.1); run(parts.2)
    }

    /// Splits the tokens between the workers in whole 6-token tiles, one slice each.
    static func dispatch(_ parts: (Part, Part?, Part?), _ a: PanelActivations, tokens: Int, scratch: UnsafeMutableRawPointer, pool: WorkerPool) {
        let tiles = (tokens + 5) / 6
        pool.parallelFor(tiles, minimumPerWorker: (tiles + pool.threads - 1) / pool.threads,
                         GemmInt16TokenJob(parts: parts, a: a, tokens: tokens, scratch: scratch, scratchStride: gemmInt16ScratchBytes))
    }
}

/// Tokens from which a product is split across workers by tokens rather than panels (see multiplyGemmInt16; below
/// it, unpacking the weights twice costs more than the broadcasts saved: 10-20% slower per core at 64 tokens).
package let gemmInt16TokenSplitMinimum = 96

/// Panels per dispatched slice at least: each slice broadcasts every activation pair once per 4-block pass for all of
/// its panels (measured per core, Q5_0 640->1024 at 512 tokens: 85.2 G MAC/s with passes of 32 panels, 83.8 with 16,
/// 78.3 with 8); the pool's default 4 slices per worker would leave 1-8 panels per slice on this model's shapes.
package let gemmInt16MinimumPanels = 8

extension WeightMatrix {
    /// The limit for `PanelActivations.quantize` with which `gemmPanelsInt16` is fastest for this format
    /// (16383 for Q6_K: one int32 conversion per block of 32 instead of two; error ~1.5x).
    package var gemmInt16ActivationLimit: Int32 { layout?.activationLimit ?? 32767 }

    /// `y[t][panels] = W[panels] . x[t]` for t < batch and the 32-row panels `panels` (e.g. 0..<rows / 32), by the
    /// int16 GEMM. `quantize`: quantize `x` into `a` first (false when `a` already holds `x`, e.g. k and v after q,
    /// with the same limit). `scratch`: `pool.threads * gemmInt16ScratchBytes` bytes, 64-byte aligned.
    package func multiplyGemmInt16(_ x: UnsafePointer<Float>, xStride: Int, batch: Int, panels: Range<Int>,
                                  into y: UnsafeMutablePointer<Float>, yStride: Int, quantize: Bool = true,
                                  activations a: PanelActivations, scratch: UnsafeMutableRawPointer, pool: WorkerPool) {
        guard batch > 0, !panels.isEmpty else { return }
        if quantize {
            let limit = gemmInt16ActivationLimit
            a.prepare(cols: cols, limit: limit)
            pool.parallelFor(batch, minimumPerWorker: 32, QuantizeRowsJob(a: a, x: x, xStride: xStride, cols: cols, limit: limit))
        }
        // Many tokens: each worker takes all the panels for its share of the tokens (whole 6-token tiles), so each
        // activation pair is broadcast once per pass for all the panels instead of each worker's half; both workers
        // unpack all the weights instead, which is cheap at this many tokens. Bit-identical to the panel split (each
        // output gets the same operations). pp512 (gemma bench, A/B interleaved): 991-1036 -> 1082-1109 tok/s.
        if pool.threads > 1, batch >= gemmInt16TokenSplitMinimum {
            GemmInt16TokenJob.dispatch((.init(m: self, panels: panels, y: y, yStride: yStride), nil, nil), a, tokens: batch,
                                       scratch: scratch, pool: pool)
            return
        }
        // One slice per worker (no stealing), unless that is below gemmInt16MinimumPanels.
        let perWorker = max(gemmInt16MinimumPanels, (panels.count + pool.threads - 1) / pool.threads)
        pool.parallelFor(panels.count, minimumPerWorker: perWorker,
                         GemmInt16Job(m: self, firstPanel: panels.lowerBound, a: a, tokens: batch, y: y, yStride: yStride,
                                      scratch: scratch, scratchStride: gemmInt16ScratchBytes))
    }
}

extension WeightMatrix {
    /// q/k/v or gate/up (matrices over the same activations) as one int16 GEMM product split by tokens: the
    /// activations quantized once, each worker computing all the matrices for its share of the tokens in one
    /// dispatch (instead of one quantization and one dispatch, with its wait for the slower worker, per matrix).
    /// Each output gets the operations of `multiplyGemmInt16`. Returns false, doing nothing, where that does not
    /// apply (one worker, fewer than `gemmInt16TokenSplitMinimum` tokens, rows not whole panels, formats needing
    /// different activation limits, no int16 scratch).
    static func multiplyGemmInt16TokenSplit(_ m: (WeightMatrix, WeightMatrix, WeightMatrix?), _ x: UnsafePointer<Float>, xStride: Int,
                                            batch: Int, into y: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?),
                                            yStride: (Int, Int, Int), pool: WorkerPool, scratch: MatmulScratch) -> Bool {
        let cols = m.0.cols, limit = m.0.gemmInt16ActivationLimit
        guard pool.threads > 1, batch >= gemmInt16TokenSplitMinimum, let gemmScratch = scratch.gemmInt16,
              batch <= scratch.gemmActivations.maxRows, (m.2 == nil) == (y.2 == nil) else { return false }
        func fits(_ w: WeightMatrix) -> Bool {
            w.layout != nil && w.cols == cols && w.rows % 32 == 0 && w.gemmInt16ActivationLimit == limit
        }
        guard fits(m.0), fits(m.1), m.2.map(fits) ?? true else { return false }
        let a = scratch.gemmActivations
        a.prepare(cols: cols, limit: limit)
        pool.parallelFor(batch, minimumPerWorker: 32, QuantizeRowsJob(a: a, x: x, xStride: xStride, cols: cols, limit: limit))
        typealias Part = GemmInt16TokenJob.Part
        func part(_ w: WeightMatrix, _ y: UnsafeMutablePointer<Float>, _ ys: Int) -> Part { Part(m: w, panels: 0..<(w.rows / 32), y: y, yStride: ys) }
        let third: Part? = if let m2 = m.2, let y2 = y.2 { part(m2, y2, yStride.2) } else { nil }
        GemmInt16TokenJob.dispatch((part(m.0, y.0, yStride.0), part(m.1, y.1, yStride.1), third), a, tokens: batch,
                                   scratch: gemmScratch, pool: pool)
        return true
    }
}
