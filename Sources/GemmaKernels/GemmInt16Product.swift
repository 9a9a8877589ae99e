// A whole product with the int16 GEMM (GemmInt16.swift) over a worker pool: the activations quantized by the workers
// (each its share of the tokens), then the 32-row panels split across the workers. Written in the gemm lab as the
// integration sketch of `gemmPanelsInt16`; `WeightMatrix.multiply` would call it for batches >= gemmMinimumBatch in
// `.fast` precision when `type.hasIntegerRowKernel` (a tail of fewer than 32 rows still by dequantized-row dots).

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

/// All of `panels` for the tokens of 6-token tiles `range`, worker scratch `scratch + worker * scratchStride`.
struct GemmInt16TokenJob: RangeJob {
    let m: WeightMatrix, panels: Range<Int>, a: PanelActivations, tokens: Int
    let y: UnsafeMutablePointer<Float>, yStride: Int, scratch: UnsafeMutableRawPointer, scratchStride: Int
    func run(worker w: Int, range: Range<Int>) {
        m.gemmPanelsInt16(panels, a, tokenRange: (6 * range.lowerBound)..<min(tokens, 6 * range.upperBound),
                          into: y, yStride: yStride, scratch: scratch + w * scratchStride)
    }
}

/// Tokens from which a product is split across workers by tokens rather than panels (see multiplyGemmInt16; below
/// it, unpacking the weights twice costs more than the broadcasts saved: 10-20% slower per core at 64 tokens).
public let gemmInt16TokenSplitMinimum = 96

/// Panels per dispatched slice at least: each slice broadcasts every activation pair once per 4-block pass for all of
/// its panels (measured per core, Q5_0 640->1024 at 512 tokens: 85.2 G MAC/s with passes of 32 panels, 83.8 with 16,
/// 78.3 with 8); the pool's default 4 slices per worker would leave 1-8 panels per slice on this model's shapes.
public let gemmInt16MinimumPanels = 8

extension WeightMatrix {
    /// The limit for `PanelActivations.quantize` with which `gemmPanelsInt16` is fastest for this format
    /// (16383 for Q6_K: one int32 conversion per block of 32 instead of two; error ~1.5x).
    public var gemmInt16ActivationLimit: Int32 { type == .q6_K ? 16383 : 32767 }

    /// `y[t][panels] = W[panels] . x[t]` for t < batch and the 32-row panels `panels` (e.g. 0..<rows / 32), by the
    /// int16 GEMM. `quantize`: quantize `x` into `a` first (false when `a` already holds `x`, e.g. k and v after q,
    /// with the same limit). `scratch`: `pool.threads * gemmInt16ScratchBytes` bytes, 64-byte aligned.
    public func multiplyGemmInt16(_ x: UnsafePointer<Float>, xStride: Int, batch: Int, panels: Range<Int>,
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
        let threads = pool.threads
        if threads > 1, batch >= gemmInt16TokenSplitMinimum {
            let tiles = (batch + 5) / 6
            pool.parallelFor(tiles, minimumPerWorker: (tiles + threads - 1) / threads,
                             GemmInt16TokenJob(m: self, panels: panels, a: a, tokens: batch, y: y, yStride: yStride,
                                               scratch: scratch, scratchStride: gemmInt16ScratchBytes))
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
        let threads = pool.threads, cols = m.0.cols, limit = m.0.gemmInt16ActivationLimit
        guard threads > 1, batch >= gemmInt16TokenSplitMinimum, let gemmScratch = scratch.gemmInt16,
              batch <= scratch.gemmActivations.maxRows, (m.2 == nil) == (y.2 == nil) else { return false }
        for w in [m.0, m.1, m.2].compactMap({ $0 }) {
            guard w.type.hasIntegerRowKernel, w.cols == cols, w.rows % 32 == 0, w.gemmInt16ActivationLimit == limit else { return false }
        }
        let a = scratch.gemmActivations
        a.prepare(cols: cols, limit: limit)
        pool.parallelFor(batch, minimumPerWorker: 32, QuantizeRowsJob(a: a, x: x, xStride: xStride, cols: cols, limit: limit))
        let tiles = (batch + 5) / 6
        pool.parallelFor(tiles, minimumPerWorker: (tiles + threads - 1) / threads,
                         GemmInt16FusedTokenJob(m: m, y: y, yStride: yStride, a: a, tokens: batch, scratch: gemmScratch,
                                                scratchStride: gemmInt16ScratchBytes))
        return true
    }
}

/// All panels of two or three matrices for the tokens of 6-token tiles `range` (see multiplyGemmInt16TokenSplit).
struct GemmInt16FusedTokenJob: RangeJob {
    let m: (WeightMatrix, WeightMatrix, WeightMatrix?)
    let y: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?)
    let yStride: (Int, Int, Int), a: PanelActivations, tokens: Int, scratch: UnsafeMutableRawPointer, scratchStride: Int
    func run(worker w: Int, range: Range<Int>) {
        let t = (6 * range.lowerBound)..<min(tokens, 6 * range.upperBound), s = scratch + w * scratchStride
        m.0.gemmPanelsInt16(0..<(m.0.rows / 32), a, tokenRange: t, into: y.0, yStride: yStride.0, scratch: s)
        m.1.gemmPanelsInt16(0..<(m.1.rows / 32), a, tokenRange: t, into: y.1, yStride: yStride.1, scratch: s)
        if let m2 = m.2, let y2 = y.2 { m2.gemmPanelsInt16(0..<(m2.rows / 32), a, tokenRange: t, into: y2, yStride: yStride.2, scratch: s) }
    }
}
