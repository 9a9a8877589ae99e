// Vector kernels against scalar twins, over sizes that hit every tail (1, 7, 8, 9, 15, 16, 17, 31..33, 4095).
import Foundation
import GemmaKernels
import GemmaTestSupport
import Testing

@Suite struct VectorTests {
    static let sizes = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 640, 4095]
    /// Relative tolerance of an f32 dot product against an f64 one, for these sizes and inputs.
    static let dotTolerance: Float = 1e-5

    @Test(arguments: sizes) func dotMatchesScalarTwin(n: Int) {
        var r = SplitMix64(seed: UInt64(n))
        let a = r.floats(n), b = r.floats(n)
        let fast = dot(a, b, n), exact = dotScalar(a, b, n)
        let norm = zip(a, b).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
        #expect(abs(fast - exact) <= Self.dotTolerance * max(norm, 1e-6))
    }

    /// Several heads' scores against one key: each head's exactly as when it is scored alone (so a head's result
    /// does not depend on how the workers split the heads), and each within the dot tolerance of the f64 sum.
    @Test(arguments: [16, 33, 72, 256]) func dotHeadsScoresEachHeadAsAlone(n: Int) {
        var r = SplitMix64(seed: UInt64(n))
        let heads = 7, q = r.floats(heads * n), key = r.floats(n)
        var all = [Float](repeating: 0, count: heads * 3), alone = [Float](repeating: 0, count: 1)
        dotHeads(q, qStride: n, count: heads, key: key, n, scale: 0.5, into: &all, outStride: 3)
        for h in 0..<heads {
            q.withUnsafeBufferPointer { qp in
                dotHeads(qp.baseAddress! + h * n, qStride: n, count: 1, key: key, n, scale: 0.5, into: &alone, outStride: 1)
                let exact = dotScalar(qp.baseAddress! + h * n, key, n) * 0.5
                let norm = (0..<n).reduce(Float(0)) { $0 + abs(qp[h * n + $1] * key[$1]) }
                #expect(abs(all[h * 3] - exact) <= Self.dotTolerance * max(norm, 1e-6))
            }
            #expect(all[h * 3] == alone[0], "head \(h) of \(heads), n \(n)")
        }
    }

    /// Weighted sums of value rows: the same bits as adding one key at a time with fused multiply-adds, for every
    /// head count (blocks of 4 heads x 16 lanes and 2 heads x 32 lanes, the rest one head at a time) and widths
    /// with and without remainders.
    @Test(arguments: [3, 8, 40, 48, 72, 256]) func accumulateHeadsAddsKeysInOrder(n: Int) {
        for heads in 1...6 {
            var r = SplitMix64(seed: UInt64(n * 8 + heads) + 5)
            let keys = 5, v = r.floats(keys * n), w = r.floats(heads * keys)
            var out = r.floats(heads * n)
            var want = out
            for h in 0..<heads { for i in 0..<n { for j in 0..<keys { want[h * n + i] = want[h * n + i].addingProduct(w[h * keys + j], v[j * n + i]) } } }
            accumulateHeads(&out, outStride: n, count: heads, weights: w, wStride: keys, values: v, vStride: n, keys: keys, n)
            #expect(out == want, "\(heads) heads")
        }
    }

    /// Softmax numerators: the maximum, each e^(x - max) and their sum, against f64 (of the f32 differences).
    @Test(arguments: sizes) func expShiftedMatchesDefinition(n: Int) {
        var r = SplitMix64(seed: UInt64(n) + 11)
        let x = r.floats(n, scale: 20)
        var y = x
        let (mx, sum) = expShifted(&y, n)
        #expect(mx == x.max()!)
        var want = 0.0
        for i in 0..<n {
            let e = Foundation.exp(Double(x[i] - mx))  // of the f32 difference, as the kernel takes it
            want += e
            #expect(abs(Double(y[i]) - e) <= 1e-6 * max(e, 1e-30))
        }
        #expect(abs(Double(sum) - want) <= 1e-6 * want)
    }

    @Test(arguments: [1, 7, 256, 640]) func rmsNormMatchesDefinition(n: Int) {
        var r = SplitMix64(seed: 99)
        let x = r.floats(n, scale: 30), w = r.floats(n)
        var out = [Float](repeating: 0, count: n)
        rmsNorm(x, weight: w, offset: 1, eps: 1e-6, count: n, into: &out)
        let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
        let inv = 1 / (ms + 1e-6).squareRoot()
        for i in 0..<n {
            let want = Double(x[i]) * inv * (1 + Double(w[i]))
            #expect(abs(Double(out[i]) - want) <= 1e-5 * max(1, abs(want)))
        }
    }

    @Test func geluTanhMatchesPyTorchFormula() {
        for x in stride(from: Float(-8), through: 8, by: 0.25) {
            let d = Double(x)
            let want = 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
            #expect(abs(Double(geluTanh(x)) - want) <= 1e-6 * max(1, abs(want)))
        }
    }

    @Test(arguments: [1, 5, 512]) func softmaxSumsToOneAndKeepsOrder(n: Int) {
        var r = SplitMix64(seed: 5)
        var x = r.floats(n, scale: 20)
        let original = x
        softmaxInPlace(&x, n)
        #expect(abs(x.reduce(0, +) - 1) < 1e-5)
        let m = original.max()!
        let denom = original.reduce(0.0) { $0 + exp(Double($1 - m)) }
        for i in 0..<n { #expect(abs(Double(x[i]) - exp(Double(original[i] - m)) / denom) < 1e-6) }
    }

    @Test func workerPoolCoversEveryIndexOnce() {
        for pool in [WorkerPool.shared(threads: 2), WorkerPool.shared(threads: 3)] {
            for count in [0, 1, 2, 3, 17, 31, 1000, 1536, 262_144] { for minimum in [1, 4, 16] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress
                    pool.parallelFor(count, minimumPerWorker: minimum) { _, range in for i in range { base![i] += 1 } }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "threads \(pool.threads) count \(count) minimum \(minimum)")
            } }
        }
    }

    /// The guided slices: they tile 0..<count in order, at most `most`, none shorter than the minimum but the last,
    /// at multiples of 4 where the minimum is 4 or more, never growing, and the last short (1/64 of the head's 262,144 rows at most).
    @Test func guidedSlicesShrinkAndTileTheRange() {
        let b = UnsafeMutablePointer<Int>.allocate(capacity: 65)
        defer { b.deallocate() }
        for (count, most, minimum) in [(262_144, 16, 16), (1536, 16, 16), (4096, 16, 16), (1000, 12, 1), (17, 8, 4), (5, 4, 1)] {
            let n = WorkerPool.guidedBounds(count, most: most, least: minimum, threads: 2, into: b)
            let sizes = (0..<n).map { b[$0 + 1] - b[$0] }
            #expect(b[0] == 0 && b[n] == count && n <= most && sizes.allSatisfy { $0 > 0 }, "\(count): \(sizes)")
            #expect(sizes.dropLast().allSatisfy { $0 >= minimum }, "\(count): \(sizes)")
            #expect(zip(sizes.dropLast(), sizes.dropLast().dropFirst()).allSatisfy { $0 >= $1 }, "\(count): \(sizes)")
            if minimum >= 4 { #expect(sizes.dropLast().allSatisfy { $0 % 4 == 0 }, "\(count): \(sizes)") }
            if count == 262_144 { #expect(sizes[0] == count / 4 && sizes[n - 1] <= count / 64, "\(sizes)") }
        }
    }
}

@Suite struct ExpTests {
    /// Relative error of `expFast` against libm over the range softmax and GELU use.
    static let tolerance = 3e-7

    @Test func expFastMatchesLibm() {
        var worst = 0.0
        var x: Float = -87
        while x <= 88 {
            let want = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(expFast(x)) - want) / want)
            x += 0.0137
        }
        #expect(worst < Self.tolerance, "worst relative error \(worst)")
        #expect(expFast(0) == 1)
        #expect(expFast(-1000) >= 0 && expFast(-1000) < 1e-37)
        #expect(expFast(1000).isFinite)
    }
}
