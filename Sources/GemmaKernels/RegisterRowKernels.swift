import CPUHints
import GemmaFormats
// The decode product of one activation row with AVX-512 VBMI: every integer format's weights unpacked in registers
// by the C kernels of CPUHints.h (byte permutes into RowKernels.swift's chunk-interleaved order), four weight rows
// per call, then the rest one by one. Where the activations are also kept split into bytes, the formats whose codes
// fit a byte take VNNI's byte dot product (cpu_bdot_*) on the same Int32 lane sums. The arithmetic is kernel1's (and
// minStep's for Q4_K) in its order, so every result is bit-identical to the unpack-then-kernel1 path
// (RowKernelBatchTests). The measurements: docs/kernels.md.

/// `dotRowsMany` for one activation row `x0` where the CPU has VBMI; false (nothing done) for rows that are not whole
/// 128-weight groups (the 32-weight formats) or formats without a register kernel.
@inline(__always)
func dotRowsInRegisters(_ f: TensorType, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ x0: ActRow,
                        into y: UnsafeMutablePointer<Float>) -> Bool {
    switch f {
    case .q8_0, .q4_0, .q5_0, .int4Channel, .q4_K, .q6_K: break
    default: return false
    }
    let superBlocks = f == .q4_K || f == .q6_K
    guard superBlocks || cols & 127 == 0 else { return false }
    // Groups of 128 weights, or super-blocks of 256 for the K formats.
    let n = superBlocks ? cols &>> 8 : cols &>> 7
    let ahead = f == .q8_0 ? rowPrefetchDistance : CPUFeatures.weightPrefetchDistance
    // The byte dot product where the activations are kept split and the codes fit a byte (all but Q6_K).
    let xb = f == .q6_K ? nil : x0.split
    var i = 0
    while i &+ 4 <= count {
        let r = rows + i &* rowBytes, y4 = y + i
        if let xb {
            switch f {
            case .q8_0: cpu_bdot_q8_0_rows4(r, rowBytes, n, xb, x0.xs, y4, ahead)
            case .q4_0: cpu_bdot_q4_0_rows4(r, rowBytes, n, xb, x0.xs, y4, ahead)
            case .q5_0: cpu_bdot_q5_0_rows4(r, rowBytes, n, xb, x0.xs, y4, ahead)
            case .int4Channel: cpu_bdot_nib_rows4(r, rowBytes, n, xb, x0.xs, y4, ahead)
            default: cpu_bdot_q4_K_rows4(r, rowBytes, n, xb, x0.xs, x0.ds, y4, ahead)
            }
        } else {
            switch f {
            case .q8_0: cpu_dot_q8_0_rows4(r, rowBytes, n, x0.q, x0.xs, y4, ahead)
            case .q4_0: cpu_dot_q4_0_rows4(r, rowBytes, n, x0.q, x0.xs, y4, ahead)
            case .q5_0: cpu_dot_q5_0_rows4(r, rowBytes, n, x0.q, x0.xs, y4, ahead)
            case .int4Channel: cpu_dot_nib_rows4(r, rowBytes, n, x0.q, x0.xs, y4, ahead)
            case .q4_K: cpu_dot_q4_K_rows4(r, rowBytes, n, x0.q, x0.xs, x0.ds, y4, ahead)
            default: cpu_dot_q6_K_rows4(r, rowBytes, n, x0.q, x0.xs, x0.ds, y4, ahead)
            }
        }
        i &+= 4
    }
    var acc = RowAcc()  // its min lanes are written by the K formats' kernels (zeros for Q6_K), else stay 0
    for j in i..<count {
        let r = rows + j &* rowBytes
        withUnsafeMutableBytes(of: &acc.e) { e in
            withUnsafeMutableBytes(of: &acc.m) { m in
                let e = e.baseAddress!.assumingMemoryBound(to: Float.self), m = m.baseAddress!.assumingMemoryBound(to: Float.self)
                if let xb {
                    switch f {
                    case .q8_0: cpu_bdot_q8_0_row(r, n, xb, x0.xs, e, ahead)
                    case .q4_0: cpu_bdot_q4_0_row(r, n, xb, x0.xs, e, ahead)
                    case .q5_0: cpu_bdot_q5_0_row(r, n, xb, x0.xs, e, ahead)
                    case .int4Channel: cpu_bdot_nib_row(r, n, xb, x0.xs, e, ahead)
                    default: cpu_bdot_q4_K_row(r, n, xb, x0.xs, x0.ds, e, m, ahead)
                    }
                } else {
                    switch f {
                    case .q8_0: cpu_dot_q8_0_row(r, n, x0.q, x0.xs, e, ahead)
                    case .q4_0: cpu_dot_q4_0_row(r, n, x0.q, x0.xs, e, ahead)
                    case .q5_0: cpu_dot_q5_0_row(r, n, x0.q, x0.xs, e, ahead)
                    case .int4Channel: cpu_dot_nib_row(r, n, x0.q, x0.xs, e, ahead)
                    case .q4_K: cpu_dot_q4_K_row(r, n, x0.q, x0.xs, x0.ds, e, m, ahead)
                    default: cpu_dot_q6_K_row(r, n, x0.q, x0.xs, x0.ds, e, m, ahead)
                    }
                }
            }
        }
        y[j] = acc.result
    }
    return true
}
