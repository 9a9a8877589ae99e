// Quantization formats against gguf-py, element for element: dequantization of every supported type (bit patterns
// compared), quantization to the types gguf-py quantizes (bytes compared), error bounds and round trips of the
// K-quant quantizers gguf-py lacks, and the errors for bad counts and unsupported types.
// Reference data: Tests/Fixtures/generated/quant-fixtures.gguf, made by scripts/make_quant_fixtures.py.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

enum QuantFixtures {
    static let path = TestPaths.generated + "/quant-fixtures.gguf"
    static let script = "python3 scripts/make_quant_fixtures.py"

    /// The fixture file, or nil after recording a failure that names the script to run.
    static func open() throws -> GGUFFile? {
        guard let path = TestPaths.require(path, makeWith: script) else { return nil }
        return try GGUFFile(path: path)
    }

    /// The tensor `name`, or nil after recording a failure.
    static func tensor(_ file: GGUFFile, _ name: String) -> GGUFTensorInfo? {
        let info = file.tensor(named: name)
        if info == nil { Issue.record("\(path) has no tensor \(name): run \(script) again") }
        return info
    }

    /// The f32 contents of an F32 tensor.
    static func floats(_ file: GGUFFile, _ info: GGUFTensorInfo) -> [Float] {
        precondition(info.type == .f32)
        let raw = file.data(for: info)
        return (0..<info.elementCount).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
    }
}

/// Dequantizes `count` elements of `type` from `bytes`.
func dequantized(_ type: TensorType, _ bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
    try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        try type.dequantize(bytes.baseAddress!, count: count, into: buffer.baseAddress!)
        initialized = count
    }
}

/// Quantizes `values` to `type`.
func quantized(_ type: TensorType, _ values: [Float]) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: type.rowBytes(values.count)!)
    try values.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBytes { dst in try type.quantize(src.baseAddress!, count: values.count, into: dst.baseAddress!) }
    }
    return out
}

/// Indices where the bit patterns of `a` and `b` differ.
func bitMismatches(_ a: [Float], _ b: [Float]) -> [Int] {
    precondition(a.count == b.count)
    return a.indices.filter { a[$0].bitPattern != b[$0].bitPattern }
}

/// Root-mean-square of `x`, and of `x - y`.
func rms(_ x: [Float]) -> Double { (x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)).squareRoot() }
func rmsError(_ x: [Float], _ y: [Float]) -> Double {
    (zip(x, y).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) } / Double(x.count)).squareRoot()
}

@Suite("Quantization formats")
struct QuantizationTests {
    static let dequantTypes: [TensorType] = [
        .f32, .f16, .bf16, .i8, .i16, .i32, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
    ]
    static let ggufPyQuantTypes: [TensorType] = [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0]

    @Test("dequantization is bit-identical to gguf-py", arguments: dequantTypes)
    func dequantizeMatchesReference(type: TensorType) throws {
        #expect(type.canDequantize)
        guard let file = try QuantFixtures.open(),
              let q = QuantFixtures.tensor(file, "\(type).q"), let ref = QuantFixtures.tensor(file, "\(type).ref")
        else { return }
        #expect(q.type == type)
        #expect(q.dimensions == ref.dimensions)
        let expected = QuantFixtures.floats(file, ref)
        #expect(!expected.contains { !$0.isFinite }, "fixture references should be finite")

        // The whole tensor at once.
        let all = try dequantized(type, file.data(for: q), count: q.elementCount)
        let bad = bitMismatches(all, expected)
        #expect(bad.isEmpty, "\(type): \(bad.count) of \(all.count) differ; first at \(bad.first ?? -1): \(bad.first.map { "\(all[$0]) vs \(expected[$0])" } ?? "")")

        // Row by row, from a copy at an odd address (blocks are never aligned in a file).
        let rowLength = q.dimensions[0]
        let rowBytes = type.rowBytes(rowLength)!
        var shifted = [UInt8](repeating: 0, count: q.byteCount + 1)
        shifted.withUnsafeMutableBytes { dst in
            dst.baseAddress!.advanced(by: 1).copyMemory(from: file.data(for: q).baseAddress!, byteCount: q.byteCount)
        }
        var rowWise = [Float](repeating: .nan, count: q.elementCount)
        try shifted.withUnsafeBytes { src in
            try rowWise.withUnsafeMutableBufferPointer { dst in
                for row in 0..<q.rowCount {
                    try type.dequantize(src.baseAddress! + 1 + row * rowBytes, count: rowLength, into: dst.baseAddress! + row * rowLength)
                }
            }
        }
        #expect(bitMismatches(rowWise, expected).isEmpty, "\(type): row-wise dequantization from an unaligned copy differs")
        print("dequantize \(type): \(all.count) elements compared with gguf-py, \(bad.count) bit mismatches")
    }

    @Test("quantization gives the same bytes as gguf-py", arguments: ggufPyQuantTypes)
    func quantizeMatchesReference(type: TensorType) throws {
        #expect(type.canQuantize)
        guard let file = try QuantFixtures.open(),
              let src = QuantFixtures.tensor(file, "\(type).src"), let ref = QuantFixtures.tensor(file, "\(type).quant")
        else { return }
        #expect(ref.type == type)
        let values = QuantFixtures.floats(file, src)
        let bytes = try quantized(type, values)
        let expected = [UInt8](file.data(for: ref))
        #expect(bytes.count == expected.count)
        let badBlocks = Set(zip(bytes, expected).enumerated().filter { $0.element.0 != $0.element.1 }.map { $0.offset / type.blockBytes })
        #expect(badBlocks.isEmpty, "\(type): \(badBlocks.count) of \(bytes.count / type.blockBytes) blocks differ from gguf-py; first \(badBlocks.min() ?? -1)")
        print("quantize \(type): \(values.count) elements, \(bytes.count) bytes compared with gguf-py, \(badBlocks.count) blocks differ")
    }

    @Test("F32 converts to itself; F16 and BF16 round trip exactly")
    func scalarRoundTrips() throws {
        let values: [Float] = [0, -0.0, 1, -2.5, 3.14159, 1e-8, -6.1e-5, 65504, .infinity, -.infinity, 1e30]
        let asF32 = try quantized(.f32, values)
        #expect(asF32.count == 4 * values.count)
        #expect(bitMismatches(try asF32.withUnsafeBytes { try dequantized(.f32, $0, count: values.count) }, values).isEmpty)
        // Every finite f16 and bf16 pattern survives f32 and back.
        for bits in UInt16.min...UInt16.max {
            let h = Float(f16Bits: bits)
            if h.isFinite { #expect(h.f16Bits == bits) }
            let b = Float(bf16Bits: bits)
            if !b.isNaN { #expect(b.bf16Bits == bits) } else { #expect(Float(bf16Bits: b.bf16Bits).isNaN) }
        }
    }

    @Test("K-quant quantizers: error bounds, better than a naive fit, stable round trip", arguments: [TensorType.q4_K, .q6_K])
    func kQuantQuality(type: TensorType) throws {
        #expect(type.canQuantize && type.canDequantize)
        guard let file = try QuantFixtures.open(), let src = QuantFixtures.tensor(file, "kquant.src") else { return }
        let x = QuantFixtures.floats(file, src)
        let rowLength = src.dimensions[0]
        let q = try quantized(type, x)
        let y = try q.withUnsafeBytes { try dequantized(type, $0, count: x.count) }
        #expect(y.allSatisfy { $0.isFinite })

        // Relative RMSE per row (each row has its own magnitude) and its worst case.
        var relative: [Double] = []
        var naiveRelative: [Double] = []
        let naive = type == .q4_K ? NaiveKQuant.q4_K(x) : NaiveKQuant.q6_K(x)
        for row in 0..<(x.count / rowLength) {
            let r = (row * rowLength)..<((row + 1) * rowLength)
            let xr = Array(x[r])
            relative.append(rmsError(xr, Array(y[r])) / rms(xr).nonZero)
            naiveRelative.append(rmsError(xr, Array(naive[r])) / rms(xr).nonZero)
        }
        let total = rmsError(x, y) / rms(x)
        let naiveTotal = rmsError(x, naive) / rms(x)
        let bound = type == .q4_K ? 0.12 : 0.03
        #expect(relative.max()! < bound, "\(type): worst row relative RMSE \(relative.max()!) ≥ \(bound)")
        for (row, (mine, simple)) in zip(relative, naiveRelative).enumerated() where row > 0 {
            #expect(mine <= simple, "\(type) row \(row): relative RMSE \(mine) is worse than the naive fit's \(simple)")
        }
        // The all-zero super-block stays exactly zero.
        #expect(y[0..<256].allSatisfy { $0 == 0 })

        // Round trip: quantizing the dequantized values again changes them far less than the first quantization did.
        let q2 = try quantized(type, y)
        let y2 = try q2.withUnsafeBytes { try dequantized(type, $0, count: y.count) }
        let drift = rmsError(y, y2) / rms(x)
        #expect(drift < total / 4, "\(type): requantizing drifts by \(drift) (first pass error \(total))")
        let sameBlocks = (0..<(q.count / type.blockBytes)).filter {
            q[($0 * type.blockBytes)..<(($0 + 1) * type.blockBytes)] == q2[($0 * type.blockBytes)..<(($0 + 1) * type.blockBytes)]
        }.count
        print(String(format: "quantize %@: %d elements, relative RMSE %.5f (worst row %.5f); naive fit %.5f; requantize drift %.6f, %d of %d blocks byte-identical",
                     type.description, x.count, total, relative.max()!, naiveTotal, drift, sameBlocks, q.count / type.blockBytes))
    }

    @Test("K-quant quantizers on Gaussian data vs the 32-element formats")
    func kQuantVersusLegacy() throws {
        var rng = SplitMix64(seed: 42)
        let x = (0..<(64 * 256)).map { _ in rng.gaussian() }
        func err(_ t: TensorType) throws -> Double {
            let y = try quantized(t, x).withUnsafeBytes { try dequantized(t, $0, count: x.count) }
            return rmsError(x, y) / rms(x)
        }
        let (q4K, q4_1, q4_0, q6K, q5_0, q8_0) = (try err(.q4_K), try err(.q4_1), try err(.q4_0), try err(.q6_K), try err(.q5_0), try err(.q8_0))
        print(String(format: "Gaussian relative RMSE: Q4_0 %.5f, Q4_1 %.5f, Q4_K %.5f, Q5_0 %.5f, Q6_K %.5f, Q8_0 %.5f", q4_0, q4_1, q4K, q5_0, q6K, q8_0))
        #expect(q4K < q4_0)
        #expect(q6K < q5_0)
        #expect(q6K > q8_0)
    }

    @Test("non-finite and extreme inputs quantize without trapping", arguments: [
        TensorType.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q6_K,
    ])
    func extremeInputs(type: TensorType) throws {
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                 .leastNonzeroMagnitude, 1e-38, 0, -0.0, 1, -1]
        var rng = SplitMix64(seed: 9)
        for pattern in 0..<8 {
            // Blocks made only of specials, and blocks of ordinary values with one special in them.
            let x: [Float] = (0..<512).map { i in
                pattern < 4 ? specials[(i * (pattern + 1) + pattern) % specials.count]
                    : i % 97 == pattern ? specials[(i + pattern) % specials.count] : rng.gaussian()
            }
            let q = try quantized(type, x)
            _ = try q.withUnsafeBytes { try dequantized(type, $0, count: x.count) }
        }
        // Ordinary values still quantize finitely after all that.
        let x = (0..<512).map { _ in rng.gaussian() }
        let y = try quantized(type, x).withUnsafeBytes { try dequantized(type, $0, count: x.count) }
        #expect(y.allSatisfy { $0.isFinite })
    }

    @Test("counts that are not whole blocks throw notWholeBlocks")
    func notWholeBlocks() throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: 1024)
        defer { floats.deallocate() }
        floats.initialize(repeating: 1, count: 1024)
        for type in TensorType.allCases where type.blockSize > 1 {
            for count in [1, type.blockSize - 1, type.blockSize + 1, 2 * type.blockSize + 7, -type.blockSize] {
                if type.canDequantize {
                    #expect(throws: FormatError.notWholeBlocks(type: type, count: count)) {
                        try type.dequantize(buffer, count: count, into: floats)
                    }
                }
                if type.canQuantize {
                    #expect(throws: FormatError.notWholeBlocks(type: type, count: count)) {
                        try type.quantize(floats, count: count, into: buffer)
                    }
                }
            }
        }
        #expect(throws: FormatError.notWholeBlocks(type: .f32, count: -1)) { try TensorType.f32.dequantize(buffer, count: -1, into: floats) }
        // Zero elements is zero blocks: fine.
        try TensorType.q4_K.dequantize(buffer, count: 0, into: floats)
        try TensorType.q4_K.quantize(floats, count: 0, into: buffer)
    }

    @Test("unsupported types throw unsupportedConversion")
    func unsupportedTypes() throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: 1024)
        defer { floats.deallocate() }
        floats.initialize(repeating: 1, count: 1024)
        var supportedD: [TensorType] = [], supportedQ: [TensorType] = []
        for type in TensorType.allCases {
            if type.canDequantize { supportedD.append(type) } else {
                #expect(throws: FormatError.unsupportedConversion(type: type, operation: "dequantization")) {
                    try type.dequantize(buffer, count: type.blockSize, into: floats)
                }
            }
            if type.canQuantize { supportedQ.append(type) } else {
                #expect(throws: FormatError.unsupportedConversion(type: type, operation: "quantization")) {
                    try type.quantize(floats, count: type.blockSize, into: buffer)
                }
            }
        }
        // int4Channel (not a gguf-py type) is checked against its own reference in Int4ChannelTests.
        #expect(Set(supportedD) == Set(Self.dequantTypes + [.int4Channel]))
        #expect(Set(supportedQ) == [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q6_K, .int4Channel])
    }
}

extension Double {
    fileprivate var nonZero: Double { self == 0 ? 1 : self }
}

/// Baselines in the K-quant formats without any search: the values a naive fit (min/max affine for Q4_K, absmax
/// symmetric for Q6_K) reconstructs, with the same 6/8-bit sub-scales and f16 super-scales as the real formats.
enum NaiveKQuant {
    static func f16(_ x: Float) -> Float { Float(f16Bits: x.f16Bits) }
    static func round(_ x: Float) -> Float { x.rounded(.toNearestOrEven) }

    static func q4_K(_ x: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for b in stride(from: 0, to: x.count, by: 256) {
            var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
            for j in 0..<8 {
                let s = x[(b + 32 * j)..<(b + 32 * j + 32)]
                let lo = min(0, s.min()!), hi = s.max()!
                scales[j] = (hi - lo) / 15
                mins[j] = -lo
            }
            let maxScale = scales.max()!, maxMin = mins.max()!
            let d = f16(maxScale / 63), dmin = f16(maxMin / 63)
            for j in 0..<8 {
                let ls = maxScale > 0 ? min(63, round(63 / maxScale * scales[j])) : 0
                let lm = maxMin > 0 ? min(63, round(63 / maxMin * mins[j])) : 0
                let dl = d * ls, ml = dmin * lm
                for l in 0..<32 {
                    let i = b + 32 * j + l
                    let q = dl == 0 ? 0 : min(15, max(0, round((x[i] + ml) / dl)))
                    out[i] = dl * q - ml
                }
            }
        }
        return out
    }

    static func q6_K(_ x: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for b in stride(from: 0, to: x.count, by: 256) {
            var scales = [Float](repeating: 0, count: 16)
            for g in 0..<16 {
                let s = x[(b + 16 * g)..<(b + 16 * g + 16)]
                let m = s.max { abs($0) < abs($1) }!
                scales[g] = m / -32
            }
            let maxScale = scales.max { abs($0) < abs($1) }!
            guard abs(maxScale) > 1e-15 else { continue }
            let iscale = -128 / maxScale
            let d = f16(1 / iscale)
            for g in 0..<16 {
                let dl = d * min(127, round(iscale * scales[g]))
                for l in 0..<16 {
                    let i = b + 16 * g + l
                    out[i] = dl == 0 ? 0 : dl * min(31, max(-32, round(x[i] / dl)))
                }
            }
        }
        return out
    }
}
