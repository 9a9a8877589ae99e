// Quantization of f32 data into GGUF tensor formats: the public entry point, the scalar types and the 32-element
// formats. The 32-element quantizers compute exactly what gguf-py's `gguf.quants.quantize` computes, in the same
// order, and so produce the same bytes. K-quant quantizers are in Quantize+KQuants.swift.

extension TensorType {
    /// True for the types `quantize` handles.
    public var canQuantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q6_K, .int4Channel: true
        default: false
        }
    }

    /// Quantizes `count` floats (whole blocks) into `destination`, which holds rowBytes(count)! bytes.
    /// INT4_CHANNEL quantizes one row (its scale is the row's): `count` is the row length.
    public func quantize(
        _ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer
    ) throws(FormatError) {
        guard canQuantize else { throw .unsupportedConversion(type: self, operation: "quantization") }
        guard count >= 0, count % blockSize == 0, rowBytes(count) != nil else { throw .notWholeBlocks(type: self, count: count) }
        let blocks = count / blockSize
        switch self {
        case .f32:
            destination.copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count { destination.storeBytes(of: source[i].f16Bits.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { destination.storeBytes(of: source[i].bf16Bits.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q4_0: Self.quantizeQ4_0(source, blocks: blocks, into: destination)
        case .q4_1: Self.quantizeQ4_1(source, blocks: blocks, into: destination)
        case .q5_0: Self.quantizeQ5_0(source, blocks: blocks, into: destination)
        case .q5_1: Self.quantizeQ5_1(source, blocks: blocks, into: destination)
        case .q8_0: Self.quantizeQ8_0(source, blocks: blocks, into: destination)
        case .q4_K: Self.quantizeQ4_K(source, blocks: blocks, into: destination)
        case .q6_K: Self.quantizeQ6_K(source, blocks: blocks, into: destination)
        case .int4Channel: Self.quantizeInt4Channel(source, count: count, into: destination)
        default:
            throw .unsupportedConversion(type: self, operation: "quantization")
        }
    }

    // MARK: 32-element formats (gguf-py's algorithms)

    /// The element of largest magnitude, the first one on ties (numpy's argmax of abs).
    @inline(__always)
    static func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var best = x[0], bestAbs = abs(x[0])
        for i in 1..<n where abs(x[i]) > bestAbs {
            best = x[i]
            bestAbs = abs(x[i])
        }
        return best
    }

    /// The minimum and maximum of `n` floats (NaNs are skipped rather than propagated).
    @inline(__always)
    static func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (min: Float, max: Float) {
        var lo = x[0], hi = x[0]
        for i in 1..<n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
        }
        return (lo, hi)
    }

    /// `value` truncated toward zero and clamped to 0...top (NaN gives 0); gguf-py's `trunc(...).astype(uint8).clip`.
    @inline(__always)
    static func truncClamp(_ value: Float, _ top: UInt8) -> UInt8 {
        value >= Float(top) ? top : value > 0 ? UInt8(value) : 0
    }

    @inline(__always)
    static func storeF16(_ value: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: value.f16Bits.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    static func quantizeQ4_0(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Q4_0
        for b in 0..<blocks {
            let x = src + 32 * b, block = dst + 18 * b
            let d = signedAbsMax(x, 32) / -8
            let id: Float = d == 0 ? 0 : 1 / d
            for j in 0..<16 {
                let lo = truncClamp((x[j] * id + 8.5).rounded(.towardZero), 15)
                let hi = truncClamp((x[j + 16] * id + 8.5).rounded(.towardZero), 15)
                block.storeBytes(of: lo | hi << 4, toByteOffset: L.qs + j, as: UInt8.self)
            }
            storeF16(d, block, L.d)
        }
    }

    static func quantizeQ4_1(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Q4_1
        for b in 0..<blocks {
            let x = src + 32 * b, block = dst + 20 * b
            let (lo, hi) = minMax(x, 32)
            let d = (hi - lo) / 15
            let id: Float = d == 0 ? 0 : 1 / d
            for j in 0..<16 {
                let q0 = truncClamp(((x[j] - lo) * id + 0.5).rounded(.towardZero), 15)
                let q1 = truncClamp(((x[j + 16] - lo) * id + 0.5).rounded(.towardZero), 15)
                block.storeBytes(of: q0 | q1 << 4, toByteOffset: L.qs + j, as: UInt8.self)
            }
            storeF16(d, block, L.d)
            storeF16(lo, block, L.m)
        }
    }

    static func quantizeQ5_0(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Q5_0
        for b in 0..<blocks {
            let x = src + 32 * b, block = dst + 22 * b
            let d = signedAbsMax(x, 32) / -16
            let id: Float = d == 0 ? 0 : 1 / d
            var qh: UInt32 = 0
            for j in 0..<16 {
                let q0 = truncClamp((x[j] * id + 16.5).rounded(.towardZero), 31)
                let q1 = truncClamp((x[j + 16] * id + 16.5).rounded(.towardZero), 31)
                block.storeBytes(of: (q0 & 0x0F) | q1 << 4, toByteOffset: L.qs + j, as: UInt8.self)
                qh |= UInt32(q0 >> 4) << UInt32(j) | UInt32(q1 >> 4) << UInt32(j + 16)
            }
            storeF16(d, block, L.d)
            block.storeBytes(of: qh.littleEndian, toByteOffset: L.qh, as: UInt32.self)
        }
    }

    static func quantizeQ5_1(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Q5_1
        for b in 0..<blocks {
            let x = src + 32 * b, block = dst + 24 * b
            let (lo, hi) = minMax(x, 32)
            let d = (hi - lo) / 31
            let id: Float = d == 0 ? 0 : 1 / d
            var qh: UInt32 = 0
            for j in 0..<16 {
                let q0 = truncClamp(((x[j] - lo) * id + 0.5).rounded(.towardZero), 31)
                let q1 = truncClamp(((x[j + 16] - lo) * id + 0.5).rounded(.towardZero), 31)
                block.storeBytes(of: (q0 & 0x0F) | q1 << 4, toByteOffset: L.qs + j, as: UInt8.self)
                qh |= UInt32(q0 >> 4) << UInt32(j) | UInt32(q1 >> 4) << UInt32(j + 16)
            }
            storeF16(d, block, L.d)
            storeF16(lo, block, L.m)
            block.storeBytes(of: qh.littleEndian, toByteOffset: L.qh, as: UInt32.self)
        }
    }

    static func quantizeQ8_0(_ src: UnsafePointer<Float>, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Q8_0
        for b in 0..<blocks {
            let x = src + 32 * b, block = dst + 34 * b
            var amax: Float = 0
            for j in 0..<32 where abs(x[j]) > amax { amax = abs(x[j]) }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            for j in 0..<32 {
                // Round half away from zero (gguf-py's np_roundf, C's roundf).
                let r = (x[j] * id).rounded(.toNearestOrAwayFromZero)
                let q: Int8 = r >= 127 ? 127 : r > -128 ? Int8(r) : r.isNaN ? 0 : -128
                block.storeBytes(of: UInt8(bitPattern: q), toByteOffset: L.qs + j, as: UInt8.self)
            }
            storeF16(d, block, L.d)
        }
    }
}
