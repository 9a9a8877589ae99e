// Safetensors reader and writer against the reference library: every tensor of the tiny Gemma 3 checkpoints (f32,
// bf16) and of a file with every dtype, as safetensors 0.8.0 reads them (Tests/Fixtures/safetensors-reference.json,
// made by scripts/reference/make_safetensors_refs.py); the checkpoint's layout as its README documents it; and files
// written by the library reproduced byte for byte by our writer.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

enum SafetensorsFixtures {
    static let f32 = "gemma3-tiny-text/model.safetensors"
    static let bf16 = "gemma3-tiny-text/bf16/model.safetensors"
    static let dtypes = "safetensors-dtypes.safetensors"
    static let all = [f32, bf16, dtypes]

    static func path(_ name: String) -> String { TestPaths.fixtures + "/" + name }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    /// The library's view of `name`: ["metadata": [String: String], "count": Int, "tensors": [name: entry]].
    static func reference(_ name: String) throws -> [String: Any] {
        let json = try #require(TestPaths.json("safetensors-reference.json") as? [String: Any])
        let files = try #require(json["files"] as? [String: Any])
        return try #require(files[name] as? [String: Any], "no reference for \(name)")
    }

    /// A fresh empty directory, removed by the caller.
    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }
}

/// FNV-1a 64, as the reference script computes it, in 16 hex digits.
func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// The values of an F32 or BF16 tensor as doubles (bf16 widens exactly: its bits are the top half of an f32's).
func floatValues(_ t: SourceTensor) -> [Double] {
    switch t.storedType {
    case "F32": stride(from: 0, to: t.bytes.count, by: 4).map {
        Double(Float(bitPattern: t.bytes.loadUnaligned(fromByteOffset: $0, as: UInt32.self).littleEndian)) }
    case "BF16": stride(from: 0, to: t.bytes.count, by: 2).map {
        Double(Float(bitPattern: UInt32(t.bytes.loadUnaligned(fromByteOffset: $0, as: UInt16.self).littleEndian) << 16)) }
    default: []
    }
}

@Suite struct SafetensorsTests {
    @Test(arguments: SafetensorsFixtures.all)
    func everyTensorIsWhatTheLibraryReads(file: String) throws {
        let ref = try SafetensorsFixtures.reference(file)
        let expected = try #require(ref["tensors"] as? [String: [String: Any]])
        let f = try SafetensorsFile(path: SafetensorsFixtures.path(file))
        #expect(f.tensors.count == ref["count"] as? Int)
        #expect(Set(f.tensorNames) == Set(expected.keys))
        let metadata = Dictionary(uniqueKeysWithValues: f.metadata.map { ($0.key, $0.value) })
        #expect(metadata == ref["metadata"] as? [String: String])
        for (name, e) in expected {
            let t = try #require(f.sourceTensor(named: name), "\(name)")
            #expect(t.storedType == e["dtype"] as? String, "\(name)")
            #expect(t.shape == e["shape"] as? [Int], "\(name)")
            #expect(t.bytes.count == e["bytes"] as? Int, "\(name)")
            #expect(fnv1a64(t.bytes) == e["fnv1a64"] as? String, "\(name)")
            guard let sum = e["sum"] as? Double else { continue }
            let v = floatValues(t)
            #expect(abs(v.reduce(0, +) - sum) <= 1e-9 * (1 + abs(sum)), "\(name)")
            #expect(v.first.map { Float($0).bitPattern } == (e["first_bits"] as? Int).map(UInt32.init), "\(name)")
            #expect(v.last.map { Float($0).bitPattern } == (e["last_bits"] as? Int).map(UInt32.init), "\(name)")
        }
    }

    /// Names and shapes from gemma3-tiny-text/README.md: vocab 1024, hidden 72, MLP 144, 8 layers, 4 query heads and
    /// 1 KV head of dimension 32, tied embeddings (no lm_head.weight).
    @Test(arguments: [(SafetensorsFixtures.f32, "F32", "f32"), (SafetensorsFixtures.bf16, "BF16", "bf16")])
    func tinyGemmaHasTheDocumentedLayout(file: String, dtype: String, encoding: String) throws {
        let f = try SafetensorsFile(path: SafetensorsFixtures.path(file))
        var expected: [String: [Int]] = ["model.embed_tokens.weight": [1024, 72], "model.norm.weight": [72]]
        for l in 0..<8 {
            let p = "model.layers.\(l)."
            for norm in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
                expected[p + norm + ".weight"] = [72]
            }
            expected[p + "self_attn.q_proj.weight"] = [128, 72]
            expected[p + "self_attn.k_proj.weight"] = [32, 72]
            expected[p + "self_attn.v_proj.weight"] = [32, 72]
            expected[p + "self_attn.o_proj.weight"] = [72, 128]
            expected[p + "self_attn.q_norm.weight"] = [32]
            expected[p + "self_attn.k_norm.weight"] = [32]
            expected[p + "mlp.gate_proj.weight"] = [144, 72]
            expected[p + "mlp.up_proj.weight"] = [144, 72]
            expected[p + "mlp.down_proj.weight"] = [72, 144]
        }
        #expect(expected.count == 106)
        #expect(Set(f.tensorNames) == Set(expected.keys))
        for (name, shape) in expected {
            let t = try #require(f.sourceTensor(named: name))
            #expect(t.shape == shape, "\(name)")
            #expect(t.storedType == dtype && t.encoding?.name == encoding && t.encoding?.canDequantize == true, "\(name)")
        }
        #expect(f.sourceTensor(named: "lm_head.weight") == nil)
        #expect(f.metadataValue(forKey: "format") == "pt")
        // One region: the byte buffer after the header, which the library pads so that it starts 8-aligned.
        #expect(f.dataOffset % 8 == 0)
        let regions = f.dataRegions
        #expect(regions.count == 1 && regions[0].releasable)
        #expect(regions[0].bytes.count == f.fileSize - f.dataOffset)
        #expect(regions[0].bytes.count == f.tensors.reduce(0) { $0 + $1.byteCount })
    }

    /// The README says the bf16 file is the f32 weights rounded to nearest even: checks both readers' bytes at once.
    @Test func bf16FileIsTheF32FileRoundedToNearestEven() throws {
        let a = try SafetensorsFile(path: SafetensorsFixtures.path(SafetensorsFixtures.f32))
        let b = try SafetensorsFile(path: SafetensorsFixtures.path(SafetensorsFixtures.bf16))
        for name in a.tensorNames {
            let x = try #require(a.sourceTensor(named: name)), y = try #require(b.sourceTensor(named: name))
            #expect(x.shape == y.shape && y.bytes.count * 2 == x.bytes.count)
            var mismatches = 0
            for i in 0..<(y.bytes.count / 2) {
                let bits = x.bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian
                let rounded = UInt16((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
                if rounded != y.bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian { mismatches += 1 }
            }
            #expect(mismatches == 0, "\(name)")
        }
    }

    @Test func onlyFloatTypesTheEngineComputesWithHaveEncodings() throws {
        let f = try SafetensorsFile(path: SafetensorsFixtures.path(SafetensorsFixtures.dtypes))
        #expect(Set(f.tensors.map(\.dtype)) == Set(SafetensorsDType.allCases).subtracting([.F6_E2M3, .F6_E3M2]))
        for name in f.tensorNames {
            let t = try #require(f.sourceTensor(named: name))
            switch t.storedType {
            case "F32": #expect(t.encoding == WeightEncoding.of(.f32))
            case "F16": #expect(t.encoding == WeightEncoding.of(.f16))
            case "BF16": #expect(t.encoding == WeightEncoding.of(.bf16))
            default: #expect(t.encoding == nil, "\(name) \(t.storedType)")
            }
        }
        let scalar = try #require(f.sourceTensor(named: "i64.scalar"))
        #expect(scalar.shape == [] && scalar.bytes.count == 8)
        let empty = try #require(f.sourceTensor(named: "u8.empty"))
        #expect(empty.shape == [0, 4] && empty.bytes.count == 0 && empty.bytes.baseAddress != nil)
        #expect(f.tensor(named: "f4.matrix")?.shape == [2, 4] && f.tensor(named: "f4.matrix")?.byteCount == 4)
        #expect(f.sourceTensor(named: "weird \"name\"\n\té ▁")?.shape == [1])
    }

    @Test(arguments: SafetensorsFixtures.all)
    func writerReproducesTheLibrarysFiles(file: String) throws {
        let original = try SafetensorsFixtures.bytes(file)
        let f = try SafetensorsFile(bytes: original)
        // Header order (the library's order already) as read.
        #expect(try SafetensorsWriter(copying: f).serialized() == original)
        // Any order, then sorted as the library sorts.
        var w = SafetensorsWriter()
        for (k, v) in f.metadata { w.setMetadata(v, forKey: k) }
        for t in f.tensors.reversed() {
            try w.addTensor(name: t.name, dtype: t.dtype, shape: t.shape, data: [UInt8](f.data(for: t)))
        }
        #expect(try w.serialized() != original || f.tensors.count < 2)
        w.sortLikeReference()
        #expect(try w.serialized() == original)
        // Through a file: same bytes on disk, and no temporary file left behind.
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try w.write(to: dir + "/out.safetensors")
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/out.safetensors"))) == original)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.safetensors"])
    }

    /// Expected bytes from the reference's own tests (tensor.rs `test_empty`, `test_serialization_forced_alignement`).
    @Test func writerPadsTheHeaderAsTheReferenceDoes() throws {
        #expect(try SafetensorsWriter().serialized() == [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
        var w = SafetensorsWriter()
        w.setMetadata("pt", forKey: "framework")
        #expect(try w.serialized() == [
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32])
        w = SafetensorsWriter()
        let data = [Float(0), 1, 2, 3, 4, 5].flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { [UInt8]($0) } }
        try w.addTensor(name: "attn0", dtype: .F32, shape: [1, 1, 2, 3], data: data)
        #expect(try w.serialized() == [
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64])
    }

    @Test func writerRefusesTensorsThatCannotBeWritten() throws {
        var w = SafetensorsWriter()
        try w.addTensor(name: "a", dtype: .BF16, shape: [2], data: [1, 2, 3, 4])
        #expect(throws: FormatError.duplicate(what: "tensor", name: "a")) {
            try w.addTensor(name: "a", dtype: .BF16, shape: [2], data: [1, 2, 3, 4])
        }
        let bad: [(String, SafetensorsDType, [Int], Int)] = [
            ("short", .F32, [2, 2], 15), ("negative", .U8, [-1, -2], 2), ("halfbyte", .F4, [3], 2),
            ("__metadata__", .U8, [1], 1), ("overflow", .U8, [1 << 40, 1 << 40], 0),
        ]
        for (name, dtype, shape, count) in bad {
            #expect(throws: FormatError.self, "\(name)") {
                try w.addTensor(name: name, dtype: dtype, shape: shape, data: [UInt8](repeating: 0, count: count))
            }
        }
        #expect(w.tensors.map(\.name) == ["a"])
        #expect(throws: FormatError.self) { try w.write(to: "/nonexistent-directory/x.safetensors") }
    }
}
