// A weight matrix in its stored format (memory-mapped, never dequantized whole) and the products the model needs:
// Y[t] = W · X[t] for a batch of activation rows. Each weight row is dequantized once into per-worker scratch
// and reused for every activation row of the batch.
import GemmaFormats

public struct WeightMatrix: @unchecked Sendable {  // points into a read-only mapping that the model keeps alive
    public let type: TensorType
    /// Output features (rows of W).
    public let rows: Int
    /// Input features (elements per row).
    public let cols: Int
    public let base: UnsafeRawPointer
    public let rowBytes: Int

    public init(type: TensorType, rows: Int, cols: Int, base: UnsafeRawPointer) {
        precondition(type.canDequantize && cols % type.blockSize == 0)
        self.type = type
        self.rows = rows
        self.cols = cols
        self.base = base
        self.rowBytes = type.rowBytes(cols)!
    }

    /// Dequantizes row `r` into `out` (`cols` floats).
    @inlinable
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if type == .f32 {
            out.update(from: (base + r * rowBytes).assumingMemoryBound(to: Float.self), count: cols)
            return
        }
        // Cannot throw: the type and the whole-block count were checked at init.
        try? type.dequantize(base + r * rowBytes, count: cols, into: out)
    }
}

/// Scratch a worker needs for matrix products: one dequantized row per worker.
public final class MatmulScratch: @unchecked Sendable {  // each worker uses only its own row
    let rows: UnsafeMutablePointer<Float>
    let stride: Int
    public init(workers: Int, maxCols: Int) {
        stride = (maxCols + 15) / 16 * 16
        rows = .allocate(capacity: workers * stride)
    }
    deinit { rows.deallocate() }
    func row(_ w: Int) -> UnsafeMutablePointer<Float> { rows + w * stride }
}

extension WeightMatrix {
    /// `y[t][rowRange] = W[rowRange] · x[t]` for `t < batch`; x rows are `xStride` floats apart, y rows `yStride`.
    /// Rows of W are split across the pool's workers.
    public func multiply(_ x: UnsafePointer<Float>, xStride: Int, batch: Int,
                         into y: UnsafeMutablePointer<Float>, yStride: Int,
                         rowRange: Range<Int>? = nil, pool: WorkerPool, scratch: MatmulScratch) {
        let range = rowRange ?? 0..<rows
        let cols = cols
        pool.parallelFor(range.count, minimumPerWorker: 16) { w, slice in
            let buf = scratch.row(w)
            for r in slice.lowerBound + range.lowerBound..<slice.upperBound + range.lowerBound {
                dequantizeRow(r, into: buf)
                for t in 0..<batch {
                    y[t * yStride + r] = dot(buf, x + t * xStride, cols)
                }
            }
        }
    }
}
