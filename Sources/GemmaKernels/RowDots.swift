// Dot products of one quantized weight row with int16-quantized activations (QuantizedActivations), per format.
// Per block the integer products are exact (Int32 sums of 16x16-bit products; the compiler turns these loops into
// vpmaddwd/vpdpwssd); blocks combine in f32. Ranges: |q| <= 127 (Q8_0) times |x| <= 32767 over 32 elements stays
// below 2^31; Q6_K's group scale is applied in f32 to keep it so. Written in the project's kernel lab, where the
// int8-activation versions measured (per core, Zen 4): Q8_0 12-15, Q5_0 9-10, Q4_0 10.5, Q4_K 6.4-7.5, Q6_K 4.7
// G weights/s. Scalar twin: `dotRowReference`.
import GemmaFormats

@inline(__always)
func dotQ8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>, blocks nb: Int) -> Float {
    var acc: Float = 0
    for b in 0..<nb {
        let blk = row + 34 * b, xb = x + 32 * b
        var s: Int32 = 0
        for i in 0..<32 { s &+= Int32(Int8(bitPattern: kU8(blk, 2 + i))) &* Int32(xb[i]) }
        acc = acc.addingProduct(Float(s), kF16(blk, 0) * xd[b])
    }
    return acc
}

@inline(__always)
func dotQ4_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>, _ xs: UnsafePointer<Int32>,
             blocks nb: Int) -> Float {
    var acc: Float = 0
    for b in 0..<nb {
        let blk = row + 18 * b, xb = x + 32 * b
        var s: Int32 = 0
        for j in 0..<16 {
            let byte = kU8(blk, 2 + j)
            s &+= Int32(byte & 15) &* Int32(xb[j]) &+ Int32(byte >> 4) &* Int32(xb[j + 16])
        }
        acc = acc.addingProduct(Float(s &- 8 &* xs[b]), kF16(blk, 0) * xd[b])  // sum (q-8)x = sum qx - 8 sum x
    }
    return acc
}

@inline(__always)
func dotQ5_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>, _ xs: UnsafePointer<Int32>,
             blocks nb: Int) -> Float {
    var acc: Float = 0
    for b in 0..<nb {
        let blk = row + 22 * b, xb = x + 32 * b
        let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        var s: Int32 = 0
        for j in 0..<16 {
            let byte = kU8(blk, 6 + j)
            let lo = Int32(byte & 15) | Int32((qh >> UInt32(j)) & 1) << 4
            let hi = Int32(byte >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
            s &+= lo &* Int32(xb[j]) &+ hi &* Int32(xb[j + 16])
        }
        acc = acc.addingProduct(Float(s &- 16 &* xs[b]), kF16(blk, 0) * xd[b])
    }
    return acc
}

/// Q4_K: `xds` are the activations' scale * sum per 32 elements (for the min term).
@inline(__always)
func dotQ4_K(_ row: UnsafeRawPointer, _ x: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>, _ xds: UnsafePointer<Float>,
             blocks nb: Int) -> Float {
    var acc: Float = 0
    for b in 0..<nb {
        let blk = row + 144 * b
        let d = kF16(blk, 0), dmin = kF16(blk, 2)
        var sumq: Float = 0, summ: Float = 0
        for c in 0..<4 {
            let qs = blk + 16 + 32 * c
            let xb0 = x + 256 * b + 64 * c, xb1 = xb0 + 32
            var s0: Int32 = 0, s1: Int32 = 0
            for l in 0..<32 {
                let byte = kU8(qs, l)
                s0 &+= Int32(byte & 15) &* Int32(xb0[l])
                s1 &+= Int32(byte >> 4) &* Int32(xb1[l])
            }
            let (sc0, m0) = kScaleMinQ4K(blk + 4, 2 * c), (sc1, m1) = kScaleMinQ4K(blk + 4, 2 * c + 1)
            let j0 = 8 * b + 2 * c
            sumq += sc0 * xd[j0] * Float(s0) + sc1 * xd[j0 + 1] * Float(s1)
            summ += m0 * xds[j0] + m1 * xds[j0 + 1]
        }
        acc += d * sumq - dmin * summ
    }
    return acc
}

@inline(__always)
func dotQ6_K(_ row: UnsafeRawPointer, _ x: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>, blocks nb: Int) -> Float {
    var acc: Float = 0
    for b in 0..<nb {
        let blk = row + 210 * b
        var sb: Float = 0
        for c in 0..<2 {
            for t in 0..<4 {
                let ql = blk + 64 * c + 32 * (t & 1), qh = blk + 128 + 32 * c
                let ls = UInt8(4 * (t >> 1)), hs = UInt8(2 * t)
                let g = 8 * c + 2 * t
                let xb = x + 256 * b + 128 * c + 32 * t
                var s0: Int32 = 0, s1: Int32 = 0
                for l in 0..<16 {
                    let q0 = Int32((kU8(ql, l) >> ls) & 15 | ((kU8(qh, l) >> hs) & 3) << 4) - 32
                    let q1 = Int32((kU8(ql, l + 16) >> ls) & 15 | ((kU8(qh, l + 16) >> hs) & 3) << 4) - 32
                    s0 &+= q0 &* Int32(xb[l])
                    s1 &+= q1 &* Int32(xb[l + 16])
                }
                let sc0 = Float(Int8(bitPattern: kU8(blk, 192 + g))), sc1 = Float(Int8(bitPattern: kU8(blk, 193 + g)))
                sb = sb.addingProduct(sc0 * Float(s0) + sc1 * Float(s1), xd[8 * b + 4 * c + t])
            }
        }
        acc = acc.addingProduct(sb, kF16(blk, 208))
    }
    return acc
}

extension TensorType {
    /// True for the formats with an integer row kernel over int16 activations.
    public var hasIntegerRowKernel: Bool {
        switch self {
        case .q8_0, .q4_0, .q5_0, .q4_K, .q6_K: true
        default: false
        }
    }
}

/// `W[row] . x` for activation row `r` of `a`; `type.hasIntegerRowKernel` must hold.
@inline(__always)
func dotRow(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Float {
    let x = a.row(r)
    switch type {
    case .q8_0: return dotQ8_0(row, x.q, x.d, blocks: cols / 32)
    case .q4_0: return dotQ4_0(row, x.q, x.d, x.s, blocks: cols / 32)
    case .q5_0: return dotQ5_0(row, x.q, x.d, x.s, blocks: cols / 32)
    case .q4_K: return dotQ4_K(row, x.q, x.d, x.ds, blocks: cols / 256)
    case .q6_K: return dotQ6_K(row, x.q, x.d, blocks: cols / 256)
    default: preconditionFailure("no integer row kernel for \(type)")
    }
}

/// Scalar twin of `dotRow`: the weights dequantized by GemmaFormats (gguf-py's values) times the dequantized
/// activations, summed in f64. Agrees with `dotRow` to f32 rounding of the per-block combination.
public func dotRowReference(_ type: TensorType, _ row: UnsafeRawPointer, cols: Int, _ a: QuantizedActivations, _ r: Int) -> Double {
    var w = [Float](repeating: 0, count: cols)
    try? type.dequantize(row, count: cols, into: &w)
    let x = a.row(r)
    var s = 0.0
    for i in 0..<cols { s += Double(w[i]) * Double(x.q[i]) * Double(x.d[i / 32]) }
    return s
}
