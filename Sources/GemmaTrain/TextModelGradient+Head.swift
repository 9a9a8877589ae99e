// The tied head of training: the cross-entropy of a batch's target rows and its gradient, the 262k-row head read
// once for all of them (see `Trainer`), the vocabulary split among the threads.
import Foundation
import GemmaKernels

extension TextModelGradient {
    /// Rows the head takes at once in a trainer's step (their logits are held: 256 x 262,144 floats for the 270M).
    static let headGroup = 256

    /// The tied head's cross-entropy on rows of final-normed states `z` (rows x hidden) and its gradient: per row
    /// the loss (of its token, or with a soft target of the teacher's distribution), returned; with `dz`, the
    /// gradient of sum(rowWeights x loss) with respect to z is written there (rows x hidden), and with `dE` added to
    /// the embedding's. The vocabulary is split among `threads` threads, each reading its share of the head once
    /// for all rows: a batch's rows together make the 262k-row head's products compute-bound.
    func headLoss(z: UnsafePointer<Float>, targets: [Int?], soft: [SoftTarget?], rowWeights: [Float], parameters: UnsafePointer<Float>,
                  dz: UnsafeMutablePointer<Float>?, dE: UnsafeMutablePointer<Float>?,
                  threads: Int, scratch: UnsafeMutablePointer<Float>? = nil) -> [Double] {
        let R = targets.count, V = config.vocabSize, H = config.hiddenSize
        guard R > 0 else { return [] }
        let e = parameters + layout.offset(.embedding)
        // The logits (rows x vocabulary): in `scratch` when given (that many floats), so that a trainer's steps do
        // not page in a fresh quarter gigabyte each.
        let logits = scratch ?? UnsafeMutablePointer<Float>.allocate(capacity: R * V)
        defer { if scratch == nil { logits.deallocate() } }
        let workers = max(1, min(threads, V / 64))
        // Vocabulary slices, multiples of 32 wide but the last.
        let slices = (0...workers).map { w in w == workers ? V : min(V, (V * w / workers) / 32 * 32) }
        var partMax = [Float](repeating: -.infinity, count: workers * R), partSum = [Double](repeating: 0, count: workers * R)
        let box = PointerBox(logits)
        let zBox = PointerBox(UnsafeMutablePointer(mutating: z)), eBox = PointerBox(UnsafeMutablePointer(mutating: e))
        partMax.withUnsafeMutableBufferPointer { pm in
            partSum.withUnsafeMutableBufferPointer { ps in
                let pmBox = PointerBox(pm.baseAddress!), psBox = DoubleBox(ps.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let v0 = slices[w], n = slices[w + 1] - v0
                    sgemm(R, n, H, a: zBox.pointer, lda: H, b: .transposed(eBox.pointer + v0 * H, ld: H), c: box.pointer + v0, ldc: V,
                          accumulate: false)
                    for r in 0..<R {
                        let row = box.pointer + r * V + v0
                        var mx = -Float.infinity
                        for v in 0..<n { mx = max(mx, row[v]) }
                        var sum = 0.0, v = 0
                        while v < n {  // f32 partial sums of 4096 exponentials, added in f64
                            let end = min(n, v + 4096)
                            var s: Float = 0
                            for i in v..<end { s += expFast(row[i] - mx) }
                            sum += Double(s)
                            v = end
                        }
                        pmBox.pointer[w * R + r] = mx
                        psBox.pointer[w * R + r] = sum
                    }
                }
            }
        }
        var logZ = [Double](repeating: 0, count: R), losses = [Double](repeating: 0, count: R)
        for r in 0..<R {
            var mx = -Float.infinity
            for w in 0..<workers { mx = max(mx, partMax[w * R + r]) }
            var sum = 0.0
            for w in 0..<workers where partSum[w * R + r] > 0 { sum += partSum[w * R + r] * exp(Double(partMax[w * R + r] - mx)) }
            logZ[r] = Double(mx) + log(sum)
            let row = logits + r * V
            if let d = soft[r] {
                // -sum_i q_i log p_i over the sampled ids; d/dz = p - q (q sums to 1).
                for (id, q) in zip(d.ids, d.probabilities) { losses[r] += Double(q) * (logZ[r] - Double(row[id])) }
            } else if let y = targets[r] {
                losses[r] = logZ[r] - Double(row[y])
            }
        }
        guard let dz else { return losses }
        let logZs = logZ
        // The logits become their gradient in place, (softmax - target) x weight; then dz = dlogits E and
        // dE += dlogits^T z, each thread over its slice (dz summed after).
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: workers * R * H)
        defer { partials.deallocate() }
        let pBox = PointerBox(partials), dEBox = dE.map { PointerBox($0) }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let v0 = slices[w], v1 = slices[w + 1]
            for r in 0..<R {
                let row = box.pointer + r * V, shift = Float(logZs[r]), scale = rowWeights[r]
                // Probabilities below 1e-30 count as zero: times the row's weight they would be subnormal, and
                // subnormal operands slow every product they enter many times over (a converging run's steps took
                // 11 s instead of 3 as more of the vocabulary fell there).
                for v in v0..<v1 {
                    let p = expFast(row[v] - shift)
                    row[v] = (p < 1e-30 ? 0 : p) * scale
                }
                if let d = soft[r] {
                    for (id, q) in zip(d.ids, d.probabilities) where id >= v0 && id < v1 { row[id] -= q * scale }
                } else if let y = targets[r], y >= v0, y < v1 {
                    row[y] -= scale
                }
            }
            sgemm(R, H, v1 - v0, a: box.pointer + v0, lda: V, b: eBox.pointer + v0 * H, ldb: H, c: pBox.pointer + w * R * H, ldc: H,
                  accumulate: false)
            if let dEBox {
                sgemm(v1 - v0, H, R, a: box.pointer + v0, lda: 1, aStep: V, b: zBox.pointer, ldb: H, c: dEBox.pointer + v0 * H, ldc: H,
                      accumulate: true)
            }
        }
        dz.update(from: partials, count: R * H)
        for w in 1..<workers { for i in 0..<(R * H) { dz[i] += partials[w * R * H + i] } }
        return losses
    }
}

struct DoubleBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>
    init(_ p: UnsafeMutablePointer<Double>) { pointer = p }
}
