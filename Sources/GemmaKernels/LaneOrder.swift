// Q5_0 and Q8_0 in the decode kernels' lane order (IntegerLayout.q5_0Lanes, q8_0Lanes), made at load from a file's
// rows whose width is a multiple of 128 (GemmaModel does it where the CPU has the VBMI byte kernels). A group of four
// blocks keeps its bytes (88 / 136), reordered (CPUHints.h, cpu_q5_0_lanes / cpu_q8_0_lanes): the quants in the order
// the byte dot product reads them (Q5_0's high bits as two 64-bit masks in the same order), then the four f16 scales.
// In the file's order a decode group spends its permutes only on moving bytes into place (Q5_0: two two-source byte
// permutes and a word permute, 6 of its 23 vector slots; Q8_0: two byte permutes and four loads); here the quants
// are plain loads. Every value is the file's, so every product is bit-identical (LaneOrderTests).
import CPUHints
import GemmaFormats

extension WeightEncoding {
    /// Q5_0 rows in lane order: 128-weight groups of 88 bytes (in memory only: no tensor type).
    package static let q5_0Lanes = WeightEncoding(
        name: "q5_0 (lane order)", blockSize: 128, bytesPerBlock: 88, integerLayout: .q5_0Lanes,
        dequantizeRow: { src, cols, out in fromLanes(src, cols: cols, out, bytes: 88, per: 128, cpu_q5_0_from_lanes, .q5_0) })

    /// Q8_0 rows in lane order: 128-weight groups of 136 bytes (in memory only: no tensor type).
    package static let q8_0Lanes = WeightEncoding(
        name: "q8_0 (lane order)", blockSize: 128, bytesPerBlock: 136, integerLayout: .q8_0Lanes,
        dequantizeRow: { src, cols, out in fromLanes(src, cols: cols, out, bytes: 136, per: 128, cpu_q8_0_from_lanes, .q8_0) })

    /// Q4_K rows in lane order: super-blocks of 144 bytes, the scales first as in the file (in memory only).
    package static let q4_KLanes = WeightEncoding(
        name: "q4_k (lane order)", blockSize: 256, bytesPerBlock: 144, integerLayout: .q4_KLanes,
        dequantizeRow: { src, cols, out in fromLanes(src, cols: cols, out, bytes: 144, per: 256, cpu_q4_K_from_lanes, .q4_K) })

    /// The lane-order encoding of a file type's rows of `cols` weights, if there is one.
    package static func laneOrder(of type: TensorType, cols: Int) -> WeightEncoding? {
        switch type {
        case .q5_0: cols % 128 == 0 ? q5_0Lanes : nil
        case .q8_0: cols % 128 == 0 ? q8_0Lanes : nil
        case .q4_K: cols % 256 == 0 ? q4_KLanes : nil
        default: nil
        }
    }

    /// Rewrites `groups` groups of four file-order blocks of `type` (Q5_0 or Q8_0; for Q4_K super-blocks) at `src`
    /// in lane order at `dst`;
    /// `dst` may be `src` (in place). With VBMI by the decode kernels' permutes (~0.1 s for the 270M's 222 MB), else
    /// byte by byte.
    package static func repackLanes(_ type: TensorType, _ src: UnsafeRawPointer, groups: Int, into dst: UnsafeMutableRawPointer) {
        let s = src.assumingMemoryBound(to: UInt8.self), d = dst.assumingMemoryBound(to: UInt8.self)
        let vbmi = CPUFeatures.avx512vbmi
        switch type {
        case .q5_0:
            if vbmi { for g in 0..<groups { cpu_q5_0_lanes_vbmi(s + 88 * g, d + 88 * g) }; return }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 88) { t in
                for g in 0..<groups { t.baseAddress!.update(from: s + 88 * g, count: 88); cpu_q5_0_lanes(t.baseAddress!, d + 88 * g) }
            }
        case .q8_0:
            if vbmi { for g in 0..<groups { cpu_q8_0_lanes_vbmi(s + 136 * g, d + 136 * g) }; return }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 136) { t in
                for g in 0..<groups { t.baseAddress!.update(from: s + 136 * g, count: 136); cpu_q8_0_lanes(t.baseAddress!, d + 136 * g) }
            }
        case .q4_K:  // `groups`: super-blocks
            if vbmi { for g in 0..<groups { cpu_q4_K_lanes_vbmi(s + 144 * g, d + 144 * g) }; return }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 144) { t in
                for g in 0..<groups { t.baseAddress!.update(from: s + 144 * g, count: 144); cpu_q4_K_lanes(t.baseAddress!, d + 144 * g) }
            }
        default: preconditionFailure("no lane order for \(type)")
        }
    }

    /// A lane-order row dequantized: each group back in file order, then the file type's dequantization (gguf-py's
    /// values).
    private static func fromLanes(_ src: UnsafeRawPointer, cols: Int, _ out: UnsafeMutablePointer<Float>, bytes: Int, per: Int,
                                  _ back: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void, _ type: TensorType) {
        withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 16) { tmp in
            let t = tmp.baseAddress!
            for g in 0..<cols / per {
                back((src + bytes * g).assumingMemoryBound(to: UInt8.self), t.assumingMemoryBound(to: UInt8.self))
                try? type.dequantize(UnsafeRawPointer(t), count: per, into: out + per * g)
            }
        }
    }
}
