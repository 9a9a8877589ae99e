// Per-channel int4 (TensorType.int4Channel, WeightEncoding.int4): the quantizer and dequantizer against the
// independent NumPy reference of dm/gemma's `uniform_quantize` (scripts/reference/make_int4_channel_refs.py,
// Tests/Fixtures/int4-channel-reference.json), byte for byte and bit for bit; and the GGUF container that holds it
// without masquerading as ggml (an id past ggml's range, declared by `swift_gemma.extended_types`).
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

@Suite struct Int4ChannelTests {
    struct Row {
        let name: String, input: [Float], bytes: [UInt8], scaleBits: UInt32, dequantized: [UInt32]
    }

    static func rows() throws -> [Row] {
        let doc = try #require(try TestPaths.json("int4-channel-reference.json") as? [String: Any])
        let rows = try #require(doc["rows"] as? [[String: Any]])
        return try rows.map { r in
            let hex = try #require(r["bytes"] as? String)
            let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                let s = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[s...hex.index(after: s)], radix: 16)!
            }
            return Row(name: try #require(r["name"] as? String),
                       input: try #require(r["input_bits"] as? [Int]).map { Float(bitPattern: UInt32($0)) },
                       bytes: bytes, scaleBits: UInt32(try #require(r["scale_bits"] as? Int)),
                       dequantized: try #require(r["dequantized_bits"] as? [Int]).map { UInt32($0) })
        }
    }

    @Test func quantizerAndDequantizerMatchTheNumPyReference() throws {
        let rows = try Self.rows()
        // Gaussian rows, exact ties, an all-zero row (scale inf), the 1e-6 floor, a negative max, -0 and subnormals.
        #expect(rows.count == 7)
        for row in rows {
            let cols = row.input.count
            #expect(TensorType.int4Channel.rowBytes(cols) == 4 + cols / 2)
            var bytes = [UInt8](repeating: 0, count: 4 + cols / 2)
            try row.input.withUnsafeBufferPointer { src in
                try bytes.withUnsafeMutableBytes { try TensorType.int4Channel.quantize(src.baseAddress!, count: cols, into: $0.baseAddress!) }
            }
            #expect(bytes == row.bytes, "\(row.name): bytes differ")
            #expect(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == row.scaleBits, "\(row.name): scale")
            // Dequantized from the reference's bytes, by the tensor type and by the weight encoding.
            var out = [Float](repeating: .nan, count: cols), viaEncoding = out
            try row.bytes.withUnsafeBytes { try TensorType.int4Channel.dequantize($0.baseAddress!, count: cols, into: &out) }
            row.bytes.withUnsafeBytes { src in
                viaEncoding.withUnsafeMutableBufferPointer { WeightEncoding.int4.dequantizeRow!(src.baseAddress!, cols, $0.baseAddress!) }
            }
            #expect(out.map(\.bitPattern) == row.dequantized, "\(row.name): dequantized values differ")
            #expect(viaEncoding.map(\.bitPattern) == row.dequantized, "\(row.name): WeightEncoding.int4 differs")
        }
        // The cases the fixture is for, checked on its own numbers so that a regenerated fixture cannot lose them.
        let ties = try #require(rows.first { $0.name == "ties" })
        #expect(ties.scaleBits == Float(1).bitPattern)
        #expect(Array(ties.dequantized.prefix(14)).map { Float(bitPattern: $0) } == [-6, -6, -4, -4, -2, -2, 0, 0, 2, 2, 4, 4, 6, 6])
        let zero = try #require(rows.first { $0.name == "zero" })
        #expect(Float(bitPattern: zero.scaleBits) == .infinity && zero.dequantized.allSatisfy { $0 == 0 })
        #expect(try #require(rows.first { $0.name == "floor-1e7" }).scaleBits == Float(1e-6).bitPattern)
    }

    @Test func encodingGeometry() {
        let e = WeightEncoding.int4
        #expect(e.rowBytes(640) == 4 + 320 && e.rowBytes(48) == nil)
        #expect(e.tensorType == .int4Channel && e.integerLayout == .int4Channel && e.canDequantize)
        #expect(WeightEncoding.of(.int4Channel) == .int4 && WeightEncoding.named("int4-channel") == .int4)
        #expect(!TensorType.int4Channel.isGGML && TensorType.int4Channel.rawValue == 1024)
        #expect(TensorType.allCases.filter { !$0.isGGML } == [.int4Channel])
        #expect(TensorType.int4Channel.byteCount(rows: 3, cols: 64) == 3 * 36)
    }

    /// `rows` x `cols` uniform random weights quantized to int4Channel.
    static func int4Tensor(rows: Int, cols: Int, seed: UInt64) throws -> [UInt8] {
        var r = SplitMix64(seed: seed)
        let w = r.floats(rows * cols), rowBytes = TensorType.int4Channel.rowBytes(cols)!
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        try bytes.withUnsafeMutableBytes { dst in
            try w.withUnsafeBufferPointer { src in
                for i in 0..<rows { try TensorType.int4Channel.quantize(src.baseAddress! + i * cols, count: cols, into: dst.baseAddress! + i * rowBytes) }
            }
        }
        return bytes
    }

    static func int4File() throws -> (bytes: [UInt8], a: [UInt8], b: [UInt8]) {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("gemma3")
        var w = GGUFWriter(metadata: m)
        let a = try int4Tensor(rows: 3, cols: 64, seed: 1), b = try int4Tensor(rows: 2, cols: 96, seed: 2)
        try w.addTensor(name: "a", type: .int4Channel, dimensions: [64, 3], data: a)
        try w.addTensor(name: "f", type: .f32, dimensions: [4], data: [UInt8](repeating: 0, count: 16))
        try w.addTensor(name: "b", type: .int4Channel, dimensions: [96, 2], data: b)
        return (w.serialized(), a, b)
    }

    @Test func ggufWithInt4ChannelTensorsRoundTrips() throws {
        let (bytes, a, b) = try Self.int4File()
        let f = try GGUFFile(bytes: bytes)
        #expect(f.metadata[GGUFFile.extendedTypesKey] == .array(.string(["1024:INT4_CHANNEL"])))
        let ta = try #require(f.tensor(named: "a")), tb = try #require(f.tensor(named: "b"))
        #expect(ta.type == .int4Channel && ta.rowBytes == 36 && ta.byteCount == 108 && tb.byteCount == 2 * 52)
        #expect(Array(f.data(for: ta)) == a && Array(f.data(for: tb)) == b)
        let s = try #require(f.sourceTensor(named: "b"))
        #expect(s.encoding == .int4 && s.shape == [2, 96] && s.storedType == "INT4_CHANNEL")
        // Written back (the marker kept in its place) and streamed: the same bytes.
        #expect(try GGUFWriter(copying: f).serialized() == bytes)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("int4-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.gguf").path
        let stream = try GGUFStreamWriter(path: path, metadata: f.metadata, tensors: f.tensors.map {
            GGUFStreamWriter.Tensor(name: $0.name, type: $0.type, dimensions: $0.dimensions)
        })
        for t in f.tensors { try stream.write(f.data(for: t)) }
        try stream.finish()
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: path))) == bytes)
        // A writer given metadata without the marker adds it; with only ggml types it writes none.
        var plain = GGUFWriter(metadata: GGUFMetadata())
        try plain.addTensor(name: "f", type: .f32, dimensions: [4], data: [UInt8](repeating: 0, count: 16))
        #expect(try GGUFFile(bytes: plain.serialized()).metadata[GGUFFile.extendedTypesKey] == nil)
    }

    /// The id without the marker, a marker naming the id differently, an unknown extended id or a ggml id: refused.
    @Test func readerRefusesUndeclaredOrForeignExtendedTypes() throws {
        let (bytes, _, _) = try Self.int4File()
        let key = Array(GGUFFile.extendedTypesKey.utf8)
        func replacing(_ old: String, _ new: String) -> [UInt8] {
            let o = Array(old.utf8), n = Array(new.utf8)
            precondition(o.count == n.count)
            var b = bytes
            let i = (0...(b.count - o.count)).first { Array(b[$0..<$0 + o.count]) == o }!
            b.replaceSubrange(i..<i + o.count, with: n)
            return b
        }
        // The key renamed (same length): the tensors' id 1024 is undeclared.
        let renamed = replacing(GGUFFile.extendedTypesKey, String(repeating: "x", count: key.count))
        #expect(throws: FormatError.metadata(key: GGUFFile.extendedTypesKey,
                                             reason: "tensor a has the extended type 1024 (INT4_CHANNEL), which the file does not declare")) {
            try GGUFFile(bytes: renamed)
        }
        for entry in ["1024:INT4_CHANNEX", "1025:INT4_CHANNEL", "0002:INT4_CHANNEL"] {
            #expect(throws: FormatError.self, "\(entry)") { try GGUFFile(bytes: replacing("1024:INT4_CHANNEL", entry)) }
        }
    }
}
