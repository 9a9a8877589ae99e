// The bytes of one output tensor, produced in pieces of whole rows so that no tensor is ever held whole as f32: each
// row is dequantized (bit-identically to gguf-py), shifted when it is a norm, and quantized to the output type
// (Quantize.swift). A tensor already stored in its output type with nothing to add is copied byte for byte.
import GemmaFormats
import GemmaKernels

enum TensorProducer {
    /// f32 elements converted per piece (64 MB of floats).
    static let pieceElements = 16 << 20

    /// Calls `write` with the bytes of `plan` made from `source`, in order, in pieces of whole rows.
    static func produce(_ plan: PlannedTensor, from source: SourceTensor, threads: Int,
                        write: (UnsafeRawBufferPointer) throws(ConvertError) -> Void) throws(ConvertError) {
        let cols = plan.columns, rows = plan.rows
        if plan.shift == 0, source.encoding?.tensorType == plan.type {
            precondition(source.bytes.count == plan.byteCount, "planned bytes differ from the stored ones")
            try write(source.bytes)
            return
        }
        guard let encoding = source.encoding, let dequantizeRow = encoding.dequantizeRow,
              let sourceRowBytes = encoding.rowBytes(cols), sourceRowBytes * rows == source.bytes.count else {
            throw .unsupportedWeight(name: source.name, type: source.storedType)
        }
        let type = plan.type, shift = plan.shift
        guard type.canQuantize, let outRowBytes = type.rowBytes(cols) else {
            throw .unsupported("cannot write \(plan.name) as \(type) (rows of \(cols))")
        }
        let rowsPerPiece = max(1, min(rows, pieceElements / max(cols, 1)))
        var floats = [Float](repeating: 0, count: rowsPerPiece * cols)
        var out = [UInt8](repeating: 0, count: rowsPerPiece * outRowBytes)
        let pool = WorkerPool.shared(threads: max(1, threads))
        var first = 0
        while first < rows {
            let n = min(rowsPerPiece, rows - first), start = first
            floats.withUnsafeMutableBufferPointer { f in
                out.withUnsafeMutableBytes { o in
                    pool.parallelFor(n) { _, range in
                        for r in range {
                            let x = f.baseAddress! + r * cols
                            dequantizeRow(source.bytes.baseAddress! + (start + r) * sourceRowBytes, cols, x)
                            if shift != 0 { for i in 0..<cols { x[i] += shift } }
                            // Cannot throw: the type quantizes and the row is whole blocks (checked above).
                            try? type.quantize(x, count: cols, into: o.baseAddress! + r * outRowBytes)
                        }
                    }
                }
            }
            var failure: ConvertError?
            out.withUnsafeBytes { o in
                do throws(ConvertError) { try write(UnsafeRawBufferPointer(rebasing: o[0..<(n * outRowBytes)])) } catch { failure = error }
            }
            if let failure { throw failure }
            first += n
        }
    }
}
