// Q5_0, Q8_0 and Q4_K in the decode kernels' lane order (IntegerLayout.q5_0Lanes, q8_0Lanes, q4_KLanes), made at
// load in the weights' private copy (GemmaModel does it where the CPU has the VBMI byte kernels). A group of four
// blocks (Q5_0 88 bytes, Q8_0 136; rows whose width is a multiple of 128) or a Q4_K super-block (144) keeps its bytes,
// reordered (CPUHints.h, cpu_*_lanes): the quants in the order the byte dot product reads them (Q5_0's high bits as
// two 64-bit masks in the same order; Q4_K's two codes of a lane byte in one byte), the scales last (Q4_K: first, as
// in the file). In the file's order a decode group spends its permutes only on moving bytes into place (Q5_0: two
// two-source byte permutes and a word permute, 6 of its 23 vector slots; Q8_0: two byte permutes and four loads;
// Q4_K: two byte permutes); here the quants are plain loads. Every value is the file's, so every product is
// bit-identical (LaneOrderTests).
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

    /// Rewrites `groups` units (groups of four file-order blocks of Q5_0 or Q8_0, Q4_K super-blocks) of `type` at `src`
    /// in lane order at `dst`; `dst` may be `src` (in place). With VBMI by the decode kernels' permutes (~0.1 s for the
    /// 270M's 222 MB), else byte by byte through a copy of each unit.
    package static func repackLanes(_ type: TensorType, _ src: UnsafeRawPointer, groups: Int, into dst: UnsafeMutableRawPointer) {
        typealias Unit = (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void
        let (bytes, vbmi, portable): (Int, Unit, Unit) = switch type {
        case .q5_0: (88, { cpu_q5_0_lanes_vbmi($0, $1) }, { cpu_q5_0_lanes($0, $1) })
        case .q8_0: (136, { cpu_q8_0_lanes_vbmi($0, $1) }, { cpu_q8_0_lanes($0, $1) })
        case .q4_K: (144, { cpu_q4_K_lanes_vbmi($0, $1) }, { cpu_q4_K_lanes($0, $1) })
        default: preconditionFailure("no lane order for \(type)")
        }
        let s = src.assumingMemoryBound(to: UInt8.self), d = dst.assumingMemoryBound(to: UInt8.self)
        if CPUFeatures.avx512vbmi {
            for g in 0..<groups { vbmi(s + bytes * g, d + bytes * g) }
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes) { t in
            for g in 0..<groups {
                t.baseAddress!.update(from: s + bytes * g, count: bytes)
                portable(UnsafePointer(t.baseAddress!), d + bytes * g)
            }
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
