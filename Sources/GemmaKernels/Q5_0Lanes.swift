// Q5_0 in the decode kernels' lane order (IntegerLayout.q5_0Lanes), made at load from a file's Q5_0 rows whose width
// is a multiple of 128 (GemmaModel does it where the CPU has the VBMI byte kernels). A group of four blocks keeps
// its 88 bytes, reordered (CPUHints.h, cpu_q5_0_lanes): the 64 quant bytes in the order the byte dot product reads
// them, the 128 high bits as two 64-bit masks in the same order, the four f16 scales. The file's order needs two
// two-source byte permutes and a word permute per group (6 of its 23 vector slots) only to move bytes into place;
// here the quants are one load and the masks load into mask registers. Every value is Q5_0's, so every product is
// bit-identical to the file order's (Q5_0LanesTests).
import CPUHints
import GemmaFormats

extension WeightEncoding {
    /// Q5_0 rows in lane order: 128-weight groups of 88 bytes (in memory only: no tensor type).
    package static let q5_0Lanes = WeightEncoding(
        name: "q5_0 (lane order)", blockSize: 128, bytesPerBlock: 88, integerLayout: .q5_0Lanes,
        dequantizeRow: { src, cols, out in
            // Each group back in file order, then Q5_0's dequantization (gguf-py's values).
            withUnsafeTemporaryAllocation(byteCount: 88, alignment: 16) { tmp in
                let t = tmp.baseAddress!
                for g in 0..<cols / 128 {
                    cpu_q5_0_from_lanes((src + 88 * g).assumingMemoryBound(to: UInt8.self), t.assumingMemoryBound(to: UInt8.self))
                    try? TensorType.q5_0.dequantize(UnsafeRawPointer(t), count: 128, into: out + 128 * g)
                }
            }
        })

    /// Rewrites `groups` groups of four file-order Q5_0 blocks at `src` in lane order at `dst` (88 bytes each).
    package static func repackQ5_0Lanes(_ src: UnsafeRawPointer, groups: Int, into dst: UnsafeMutableRawPointer) {
        let s = src.assumingMemoryBound(to: UInt8.self), d = dst.assumingMemoryBound(to: UInt8.self)
        for g in 0..<groups { cpu_q5_0_lanes(s + 88 * g, d + 88 * g) }
    }
}
