// Dequantization of GGUF tensor data to f32: the public entry point, the scalar types and the 32-element formats.
// K-quants are in Dequantize+KQuants.swift; layouts are documented in BlockLayouts.swift.
// Every formula multiplies and adds in gguf-py's order (no fused multiply-add), so results are bit-identical to
// gguf.quants.dequantize.

extension TensorType {
    /// True for the types `dequantize` handles.
    public var canDequantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32,
             .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
             .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .int4Channel:
            true
        default:
            false
        }
    }

    /// Dequantizes `count` elements (a whole number of blocks) from `source` into `destination`.
    /// INT4_CHANNEL dequantizes one row (its scale is the row's): `count` is the row length.
    public func dequantize(
        _ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>
    ) throws(FormatError) {
        guard canDequantize else { throw .unsupportedConversion(type: self, operation: "dequantization") }
        guard count >= 0, count % blockSize == 0, rowBytes(count) != nil else { throw .notWholeBlocks(type: self, count: count) }
        let blocks = count / blockSize
        switch self {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count { destination[i] = source.blockF16(2 * i) }
        case .bf16:
            for i in 0..<count {
                destination[i] = Float(bf16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .i8:
            for i in 0..<count { destination[i] = Float(Int8(bitPattern: source.blockByte(i))) }
        case .i16:
            for i in 0..<count {
                destination[i] = Float(Int16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            }
        case .i32:
            for i in 0..<count {
                destination[i] = Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
            }
        case .q4_0: Self.dequantizeQ4_0(source, blocks: blocks, into: destination)
        case .q4_1: Self.dequantizeQ4_1(source, blocks: blocks, into: destination)
        case .q5_0: Self.dequantizeQ5_0(source, blocks: blocks, into: destination)
        case .q5_1: Self.dequantizeQ5_1(source, blocks: blocks, into: destination)
        case .q8_0: Self.dequantizeQ8_0(source, blocks: blocks, into: destination)
        case .q2_K: Self.dequantizeQ2_K(source, blocks: blocks, into: destination)
        case .q3_K: Self.dequantizeQ3_K(source, blocks: blocks, into: destination)
        case .q4_K: Self.dequantizeQ4_K(source, blocks: blocks, into: destination)
        case .q5_K: Self.dequantizeQ5_K(source, blocks: blocks, into: destination)
        case .q6_K: Self.dequantizeQ6_K(source, blocks: blocks, into: destination)
        case .q8_K: Self.dequantizeQ8_K(source, blocks: blocks, into: destination)
        case .int4Channel: Self.dequantizeInt4Channel(source, count: count, into: destination)
        default:
            throw .unsupportedConversion(type: self, operation: "dequantization")
        }
    }

    // MARK: 32-element formats

    static func dequantizeQ4_0(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q4_0
        for b in 0..<blocks {
            let block = src + b * 18, out = dst + b * 32
            let d = block.blockF16(L.d)
            for j in 0..<16 {
                let byte = block.blockByte(L.qs + j)
                out[j] = d * Float(Int8(byte & 0x0F) - 8)
                out[j + 16] = d * Float(Int8(byte >> 4) - 8)
            }
        }
    }

    static func dequantizeQ4_1(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q4_1
        for b in 0..<blocks {
            let block = src + b * 20, out = dst + b * 32
            let d = block.blockF16(L.d), m = block.blockF16(L.m)
            for j in 0..<16 {
                let byte = block.blockByte(L.qs + j)
                out[j] = d * Float(byte & 0x0F) + m
                out[j + 16] = d * Float(byte >> 4) + m
            }
        }
    }

    static func dequantizeQ5_0(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q5_0
        for b in 0..<blocks {
            let block = src + b * 22, out = dst + b * 32
            let d = block.blockF16(L.d)
            for j in 0..<16 {
                let (lo, hi) = q5_0Integers(block, j)
                out[j] = d * Float(lo)
                out[j + 16] = d * Float(hi)
            }
        }
    }

    /// Values j and j + 16 of a Q5_0 block as integers in -16...15: a nibble of qs[j] with bit j (or j + 16) of qh
    /// above it, minus 16.
    @inline(__always) static func q5_0Integers(_ block: UnsafeRawPointer, _ j: Int) -> (Int8, Int8) {
        typealias L = BlockLayout.Q5_0
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: L.qh, as: UInt32.self))
        let byte = block.blockByte(L.qs + j)
        let lo = (byte & 0x0F) | UInt8(truncatingIfNeeded: (qh >> UInt32(j)) & 1) << 4
        let hi = (byte >> 4) | UInt8(truncatingIfNeeded: (qh >> UInt32(j + 16)) & 1) << 4
        return (Int8(lo) - 16, Int8(hi) - 16)
    }

    static func dequantizeQ5_1(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q5_1
        for b in 0..<blocks {
            let block = src + b * 24, out = dst + b * 32
            let d = block.blockF16(L.d), m = block.blockF16(L.m)
            let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: L.qh, as: UInt32.self))
            for j in 0..<16 {
                let byte = block.blockByte(L.qs + j)
                let lo = (byte & 0x0F) | UInt8(truncatingIfNeeded: (qh >> UInt32(j)) & 1) << 4
                let hi = (byte >> 4) | UInt8(truncatingIfNeeded: (qh >> UInt32(j + 16)) & 1) << 4
                out[j] = d * Float(lo) + m
                out[j + 16] = d * Float(hi) + m
            }
        }
    }

    static func dequantizeQ8_0(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutablePointer<Float>) {
        typealias L = BlockLayout.Q8_0
        for b in 0..<blocks {
            let block = src + b * 34, out = dst + b * 32
            let d = block.blockF16(L.d)
            for j in 0..<32 {
                out[j] = Float(Int8(bitPattern: block.blockByte(L.qs + j))) * d
            }
        }
    }
}

extension TensorType {
    /// Rewrites `blocks` Q5_0 blocks as Q8_0 blocks, losslessly: the same f16 scale and the same integers
    /// (q - 16 in -16...15), one byte each. Q8_0's kernels are simpler than Q5_0's bit unpacking.
    package static func repackQ5_0AsQ8_0(_ src: UnsafeRawPointer, blocks: Int, into dst: UnsafeMutableRawPointer) {
        typealias L = BlockLayout.Q5_0
        for b in 0..<blocks {
            let block = src + b * 22, out = dst + b * 34
            out.storeBytes(of: block.loadUnaligned(fromByteOffset: L.d, as: UInt16.self), as: UInt16.self)
            let q = (out + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<16 { (q[j], q[j + 16]) = q5_0Integers(block, j) }
        }
    }
}
