// Dequantization of the K-quant super-block formats (256 elements per block). Layouts and formulas are in
// BlockLayouts.swift; the arithmetic order is gguf-py's, so results are bit-identical to gguf.quants.dequantize.

extension TensorType {
    /// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K/Q5_K block's 12 packed scale bytes.
    @inline(__always)
    static func kScaleMin(_ scales: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
        if j < 4 {
            return (scales.blockByte(j) & 63, scales.blockByte(j + 4) & 63)
        }
        let packed = scales.blockByte(j + 4)
        return ((packed & 0x0F) | (scales.blockByte(j - 4) >> 6) << 4, (packed >> 4) | (scales.blockByte(j) >> 6) << 4)
    }

    static func dequantizeQ2_K(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q2_K
        for b in 0..<blocks {
            let block = src + b * 84, out = dst + b * 256
            let d = block.blockF16(L.d), dmin = block.blockF16(L.dmin)
            // e = 128c + 32s + l: q = (qs[32c + l] >> 2s) & 3; group g = e/16 = 8c + 2s + l/16.
            for c in 0..<2 {
                for s in 0..<4 {
                    let qs = block + L.qs + 32 * c, shift = UInt8(2 * s)
                    for half in 0..<2 {
                        let g = 8 * c + 2 * s + half
                        let sc = block.blockByte(L.scales + g)
                        let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                        let o = out + 16 * g
                        for i in 0..<16 {
                            o[i] = dl * Float((qs.blockByte(16 * half + i) >> shift) & 3) - ml
                        }
                    }
                }
            }
        }
    }

    static func dequantizeQ3_K(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q3_K
        for b in 0..<blocks {
            let block = src + b * 110, out = dst + b * 256
            let d = block.blockF16(L.d)
            let scales = block + L.scales
            // e = 128c + 32s + l: low bits (qs[32c + l] >> 2s) & 3, high bit (hmask[l] >> (4c + s)) & 1; g = 8c + 2s + l/16.
            for c in 0..<2 {
                for s in 0..<4 {
                    let qs = block + L.qs + 32 * c, shift = UInt8(2 * s), hshift = UInt8(4 * c + s)
                    for half in 0..<2 {
                        let g = 8 * c + 2 * s + half
                        let low = g < 8 ? scales.blockByte(g) & 0x0F : scales.blockByte(g - 8) >> 4
                        let high = (scales.blockByte(8 + g % 4) >> UInt8(2 * (g / 4))) & 3
                        let dl = d * Float(Int8(low | high << 4) - 32)
                        let o = out + 16 * g
                        for i in 0..<16 {
                            let l = 16 * half + i
                            let q = Int8((qs.blockByte(l) >> shift) & 3)
                            let h = (block.blockByte(L.hmask + l) >> hshift) & 1
                            o[i] = dl * Float(h == 0 ? q - 4 : q)
                        }
                    }
                }
            }
        }
    }

    static func dequantizeQ4_K(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q4_K
        for b in 0..<blocks {
            let block = src + b * 144, out = dst + b * 256
            let d = block.blockF16(L.d), dmin = block.blockF16(L.dmin)
            for j in 0..<8 {
                let (sc, m) = kScaleMin(block + L.scales, j)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let qs = block + L.qs + 32 * (j >> 1), shift = UInt8(4 * (j & 1))
                let o = out + 32 * j
                for l in 0..<32 {
                    o[l] = dl * Float((qs.blockByte(l) >> shift) & 0x0F) - ml
                }
            }
        }
    }

    static func dequantizeQ5_K(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q5_K
        for b in 0..<blocks {
            let block = src + b * 176, out = dst + b * 256
            let d = block.blockF16(L.d), dmin = block.blockF16(L.dmin)
            for j in 0..<8 {
                let (sc, m) = kScaleMin(block + L.scales, j)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let qs = block + L.qs + 32 * (j >> 1), shift = UInt8(4 * (j & 1))
                let qh = block + L.qh, hshift = UInt8(j)
                let o = out + 32 * j
                for l in 0..<32 {
                    let q = (qs.blockByte(l) >> shift) & 0x0F | ((qh.blockByte(l) >> hshift) & 1) << 4
                    o[l] = dl * Float(q) - ml
                }
            }
        }
    }

    static func dequantizeQ6_K(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q6_K
        for b in 0..<blocks {
            let block = src + b * 210, out = dst + b * 256
            let d = block.blockF16(L.d)
            // e = 128c + 32t + l: low nibble from ql[64c + 32(t&1) + l] >> 4(t>>1), high bits from qh[32c + l] >> 2t.
            for c in 0..<2 {
                for t in 0..<4 {
                    let ql = block + L.ql + 64 * c + 32 * (t & 1), qh = block + L.qh + 32 * c
                    let lowShift = UInt8(4 * (t >> 1)), highShift = UInt8(2 * t)
                    for half in 0..<2 {
                        let g = 8 * c + 2 * t + half
                        let dl = d * Float(Int8(bitPattern: block.blockByte(L.scales + g)))
                        let o = out + 16 * g
                        for i in 0..<16 {
                            let l = 16 * half + i
                            let low = (ql.blockByte(l) >> lowShift) & 0x0F
                            let high = (qh.blockByte(l) >> highShift) & 3
                            o[i] = dl * Float(Int8(low | high << 4) - 32)
                        }
                    }
                }
            }
        }
    }

    static func dequantizeQ8_K(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q8_K
        for b in 0..<blocks {
            let block = src + b * 292, out = dst + b * 256
            let d = Float(bitPattern: UInt32(littleEndian: block.loadUnaligned(fromByteOffset: L.d, as: UInt32.self)))
            for e in 0..<256 {
                out[e] = d * Float(Int8(bitPattern: block.blockByte(L.qs + e)))
            }
        }
    }
}
