import CPUHints
import GemmaFormats
// The decode product of one activation row with AVX-512 VBMI, four weight rows per call, then the rest one by one,
// by the C kernels of CPUHints.h: VNNI's byte dot product on the activations split into bytes (cpu_bdot_*) for every
// integer format but Q6_K, whose weights are unpacked in registers to int16 (cpu_dot_q6_K_*). The Int32 lane sums and
// the arithmetic after them are kernel1's (and minStep's for Q4_K) in its order, so every result is bit-identical to
// the unpack-then-kernel1 path (RowKernelBatchTests). The measurements: docs/kernels.md.

/// `dotRowsMany` for one activation row `x0` where the CPU has VBMI; false (nothing done) for rows that are not whole
/// 128-weight groups (the 32-weight formats), formats without a register kernel, or (all but Q6_K, which takes the
/// int16 activations) activations not kept split.
@inline(__always)
func dotRowsInRegisters(_ f: IntegerLayout, _ rows: UnsafeRawPointer, rowBytes: Int, count: Int, cols: Int, _ x0: ActRow,
                        into y: UnsafeMutablePointer<Float>) -> Bool {
    let superBlocks = f.blockType == .q4_K || f == .q6_K
    guard superBlocks || cols & 127 == 0 else { return false }
    // Groups of 128 weights, or super-blocks of 256 for the K formats.
    let n = superBlocks ? cols &>> 8 : cols &>> 7
    let ahead = f == .q8_0 || f == .q8_0Lanes ? rowPrefetchDistance : CPUFeatures.weightPrefetchDistance
    if f == .q6_K {  // int16 activations (an int8 scale per 16 weights: no byte form)
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y,
                    { cpu_dot_q6_K_rows4($0, rowBytes, n, x0.q, x0.xs, x0.ds, $1, ahead) },
                    { cpu_dot_q6_K_row($0, n, x0.q, x0.xs, x0.ds, $1, $2, ahead) })
        return true
    }
    // The byte dot product on the split activations.
    guard let xb = x0.split else { return false }
    switch f {
    case .q8_0:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y, { cpu_bdot_q8_0_rows4($0, rowBytes, n, xb, x0.xs, $1, ahead) },
                    { r, e, _ in cpu_bdot_q8_0_row(r, n, xb, x0.xs, e, ahead) })
    case .q4_0:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y, { cpu_bdot_q4_0_rows4($0, rowBytes, n, xb, x0.xs, $1, ahead) },
                    { r, e, _ in cpu_bdot_q4_0_row(r, n, xb, x0.xs, e, ahead) })
    case .q5_0:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y, { cpu_bdot_q5_0_rows4($0, rowBytes, n, xb, x0.xs, $1, ahead) },
                    { r, e, _ in cpu_bdot_q5_0_row(r, n, xb, x0.xs, e, ahead) })
    case .q4_KLanes:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y,
                    { cpu_bdot_q4Kl_rows4($0, rowBytes, n, xb, x0.xs, x0.ds, $1, ahead) },
                    { cpu_bdot_q4Kl_row($0, n, xb, x0.xs, x0.ds, $1, $2, ahead) })
    case .q8_0Lanes:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y, { cpu_bdot_q8l_rows4($0, rowBytes, n, xb, x0.xs, $1, ahead) },
                    { r, e, _ in cpu_bdot_q8l_row(r, n, xb, x0.xs, e, ahead) })
    case .q5_0Lanes:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y, { cpu_bdot_q5l_rows4($0, rowBytes, n, xb, x0.xs, $1, ahead) },
                    { r, e, _ in cpu_bdot_q5l_row(r, n, xb, x0.xs, e, ahead) })
    case .int4Channel:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y, { cpu_bdot_nib_rows4($0, rowBytes, n, xb, x0.xs, $1, ahead) },
                    { r, e, _ in cpu_bdot_nib_row(r, n, xb, x0.xs, e, ahead) })
    case .q4_K, .q6_K:
        fourThenOne(rows, rowBytes: rowBytes, count: count, into: y,
                    { cpu_bdot_q4_K_rows4($0, rowBytes, n, xb, x0.xs, x0.ds, $1, ahead) },
                    { cpu_bdot_q4_K_row($0, n, xb, x0.xs, x0.ds, $1, $2, ahead) })
    }
    return true
}

/// `four(rows, y)` for each four rows (RowAcc.result's sums into y[0...3]), then `one(row, e, m)` for each row left
/// (kernel1's 16 accumulator lanes into e; the K formats' min lanes into m, which the others leave 0), reduced as
/// RowAcc.result.
@inline(__always)
private func fourThenOne(_ rows: UnsafeRawPointer, rowBytes: Int, count: Int, into y: UnsafeMutablePointer<Float>,
                         _ four: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void,
                         _ one: (UnsafeRawPointer, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    var i = 0
    while i &+ 4 <= count {
        four(rows + i &* rowBytes, y + i)
        i &+= 4
    }
    var acc = RowAcc()
    for j in i..<count {
        withUnsafeMutableBytes(of: &acc.e) { e in
            withUnsafeMutableBytes(of: &acc.m) { m in
                one(rows + j &* rowBytes, e.baseAddress!.assumingMemoryBound(to: Float.self), m.baseAddress!.assumingMemoryBound(to: Float.self))
            }
        }
        y[j] = acc.result
    }
}
