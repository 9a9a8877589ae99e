// Quantization to Q4_K and Q6_K, following the reference (non-imatrix) algorithms of ggml's quantize_row_*_ref:
// Q4_K fits each 32-element sub-block with an affine scale and min found by a weighted least-squares search over
// candidate scales ("make_qkx2_quants"), Q6_K fits each 16-element sub-block with a symmetric scale found by an
// x²-weighted search ("make_qx_quants"); both then quantize the sub-block scales against one f16 super-scale.
// gguf-py cannot quantize K-quants, so these are checked by error bounds and round trips rather than bytes.

extension TensorType {
    /// Below this magnitude a group is treated as all zeros (ggml's GROUP_MAX_EPS).
    static let groupMaxEpsilon: Float = 1e-15

    /// `x` rounded to the nearest integer, ties to even (ggml's nearest_int); NaN gives 0, huge values saturate.
    @inline(__always)
    static func nearestInt(_ x: Float) -> Int32 {
        let r = x.rounded(.toNearestOrEven)
        return r >= 1e9 ? 1_000_000_000 : r > -1e9 ? Int32(r) : r.isNaN ? 0 : -1_000_000_000
    }

    /// Fits `x[0..<n]` ≈ scale * L - min with L in 0...nmax, minimizing the `weights`-weighted squared error.
    /// Writes L and returns (scale, min), min ≥ 0. `laux` is scratch space of n bytes.
    static func fitScaleAndMin(
        _ x: UnsafePointer<Float>, _ n: Int, nmax: Int32, weights: UnsafePointer<Float>,
        levels: UnsafeMutablePointer<UInt8>, scratch laux: UnsafeMutablePointer<UInt8>,
        rmin: Float, rdelta: Float, steps: Int
    ) -> (scale: Float, min: Float) {
        var lo = x[0], hi = x[0]
        var sumW = weights[0], sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if lo > 0 { lo = 0 }
        if hi == lo {
            for i in 0..<n { levels[i] = 0 }
            return (0, -lo)
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / (hi - lo)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = min(max(nearestInt(iscale * (x[i] - lo)), 0), nmax)
            levels[i] = UInt8(l)
            let diff = scale * Float(l) + lo - x[i]
            bestError += weights[i] * (diff * diff)
        }
        var bestMin = lo
        for step in 0...steps {
            iscale = (rmin + rdelta * Float(step) + fnmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = min(max(nearestInt(iscale * (x[i] - lo)), 0), nmax)
                laux[i] = UInt8(l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let det = sumW * sumL2 - sumL * sumL
            guard det > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / det
            var thisMin = (sumL2 * sumX - sumL * sumXL) / det
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                let diff = thisScale * Float(laux[i]) + thisMin - x[i]
                error += weights[i] * (diff * diff)
            }
            if error < bestError {
                for i in 0..<n { levels[i] = laux[i] }
                bestError = error
                scale = thisScale
                bestMin = thisMin
            }
        }
        return (scale, -bestMin)
    }

    /// Fits `x[0..<n]` ≈ scale * (L - nmax) with L - nmax in -nmax..<nmax, weighting element i by x[i]²,
    /// trying 19 candidate scales around -nmax/max. Writes L (biased by nmax) and returns the scale.
    static func fitSymmetricScale(
        _ x: UnsafePointer<Float>, _ n: Int, nmax: Int32, levels: UnsafeMutablePointer<UInt8>
    ) -> Float {
        var signedMax: Float = 0, amax: Float = 0
        for i in 0..<n where abs(x[i]) > amax {
            amax = abs(x[i])
            signedMax = x[i]
        }
        if amax < groupMaxEpsilon {
            for i in 0..<n { levels[i] = 0 }
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = -fnmax / signedMax
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = min(max(nearestInt(iscale * x[i]), -nmax), nmax - 1)
            levels[i] = UInt8(l + nmax)
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(fnmax + 0.1 * Float(step)) / signedMax
            sumLX = 0
            sumL2 = 0
            for i in 0..<n {
                let l = min(max(nearestInt(iscale * x[i]), -nmax), nmax - 1)
                let w = x[i] * x[i], fl = Float(l)
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n {
                    levels[i] = UInt8(min(max(nearestInt(iscale * x[i]), -nmax), nmax - 1) + nmax)
                }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }

    static func quantizeQ4_K(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias Layout = BlockLayout.Q4_K
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 32) { buffer in
            let levels = buffer.baseAddress!, laux = levels + 256
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 16) { floats in
                let weights = floats.baseAddress!, scales = weights + 32, mins = scales + 8
                for b in 0..<blocks {
                    let x = src + 256 * b, block = dst + 144 * b
                    var maxScale: Float = 0, maxMin: Float = 0
                    for j in 0..<8 {
                        let xs = x + 32 * j
                        var sumX2: Float = 0
                        for l in 0..<32 { sumX2 += xs[l] * xs[l] }
                        let avX = (sumX2 / 32).squareRoot()
                        for l in 0..<32 { weights[l] = avX + abs(xs[l]) }
                        let (scale, minimum) = fitScaleAndMin(
                            xs, 32, nmax: 15, weights: weights, levels: levels + 32 * j, scratch: laux,
                            rmin: -1, rdelta: 0.1, steps: 20)
                        scales[j] = scale
                        mins[j] = minimum
                        if scale > maxScale { maxScale = scale }
                        if minimum > maxMin { maxMin = minimum }
                    }
                    let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
                    let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
                    // Pack the 6-bit scales and mins (layout in BlockLayouts.swift).
                    let packed = block + Layout.scales
                    for k in 0..<12 { packed.storeBytes(of: 0, toByteOffset: k, as: UInt8.self) }
                    for j in 0..<8 {
                        let ls = UInt8(min(max(nearestInt(invScale * scales[j]), 0), 63))
                        let lm = UInt8(min(max(nearestInt(invMin * mins[j]), 0), 63))
                        if j < 4 {
                            packed.storeBytes(of: ls, toByteOffset: j, as: UInt8.self)
                            packed.storeBytes(of: lm, toByteOffset: j + 4, as: UInt8.self)
                        } else {
                            packed.storeBytes(of: (ls & 0x0F) | (lm & 0x0F) << 4, toByteOffset: j + 4, as: UInt8.self)
                            let a = UnsafeRawPointer(packed).blockByte(j - 4), m = UnsafeRawPointer(packed).blockByte(j)
                            packed.storeBytes(of: a | (ls >> 4) << 6, toByteOffset: j - 4, as: UInt8.self)
                            packed.storeBytes(of: m | (lm >> 4) << 6, toByteOffset: j, as: UInt8.self)
                        }
                    }
                    let dBits = (maxScale / 63).f16Bits, dminBits = (maxMin / 63).f16Bits
                    block.storeBytes(of: dBits.littleEndian, toByteOffset: Layout.d, as: UInt16.self)
                    block.storeBytes(of: dminBits.littleEndian, toByteOffset: Layout.dmin, as: UInt16.self)
                    // Requantize every element against the scales as they will be decoded.
                    let d = Float(f16Bits: dBits), dmin = Float(f16Bits: dminBits)
                    for j in 0..<8 {
                        let (sc, m) = kScaleMin(UnsafeRawPointer(packed), j)
                        let dl = d * Float(sc)
                        guard dl != 0 else { continue }  // keeps the levels of the search (ggml does the same)
                        let ml = dmin * Float(m)
                        for l in 0..<32 {
                            levels[32 * j + l] = UInt8(min(max(nearestInt((x[32 * j + l] + ml) / dl), 0), 15))
                        }
                    }
                    for c in 0..<4 {
                        for l in 0..<32 {
                            let q = levels[64 * c + l] | levels[64 * c + 32 + l] << 4
                            block.storeBytes(of: q, toByteOffset: Layout.qs + 32 * c + l, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    static func quantizeQ6_K(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias Layout = BlockLayout.Q6_K
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer in
            let levels = buffer.baseAddress!
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { floats in
                let scales = floats.baseAddress!
                for b in 0..<blocks {
                    let x = src + 256 * b, block = dst + 210 * b
                    var maxScale: Float = 0, maxAbsScale: Float = 0
                    for g in 0..<16 {
                        let scale = fitSymmetricScale(x + 16 * g, 16, nmax: 32, levels: levels + 16 * g)
                        scales[g] = scale
                        if abs(scale) > maxAbsScale {
                            maxAbsScale = abs(scale)
                            maxScale = scale
                        }
                    }
                    if maxAbsScale < groupMaxEpsilon {
                        block.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                        continue
                    }
                    let iscale = -128 / maxScale
                    let dBits = (1 / iscale).f16Bits
                    block.storeBytes(of: dBits.littleEndian, toByteOffset: Layout.d, as: UInt16.self)
                    for g in 0..<16 {
                        let s = Int8(min(max(nearestInt(iscale * scales[g]), -128), 127))
                        block.storeBytes(of: UInt8(bitPattern: s), toByteOffset: Layout.scales + g, as: UInt8.self)
                    }
                    let d = Float(f16Bits: dBits)
                    for g in 0..<16 {
                        let dl = d * Float(Int8(bitPattern: UnsafeRawPointer(block).blockByte(Layout.scales + g)))
                        guard dl != 0 else { continue }
                        for i in 0..<16 {
                            levels[16 * g + i] = UInt8(min(max(nearestInt(x[16 * g + i] / dl), -32), 31) + 32)
                        }
                    }
                    for c in 0..<2 {
                        let lv = levels + 128 * c
                        for l in 0..<32 {
                            let q1 = lv[l], q2 = lv[l + 32], q3 = lv[l + 64], q4 = lv[l + 96]
                            block.storeBytes(of: (q1 & 0x0F) | (q3 & 0x0F) << 4, toByteOffset: Layout.ql + 64 * c + l, as: UInt8.self)
                            block.storeBytes(of: (q2 & 0x0F) | (q4 & 0x0F) << 4, toByteOffset: Layout.ql + 64 * c + l + 32, as: UInt8.self)
                            let h = (q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6
                            block.storeBytes(of: h, toByteOffset: Layout.qh + 32 * c + l, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }
}
