// GGUF reader and writer: header, every metadata type, tensor infos, alignment, round trips, typed errors.
import Foundation
import GemmaTestSupport
import Testing
import GemmaFormats

/// A small valid GGUF with every metadata value type and tensors of a few types and shapes.
func sampleGGUF(alignment: UInt32? = nil) throws -> [UInt8] {
    var m = GGUFMetadata()
    m["general.architecture"] = .string("gemma3")
    if let alignment { m["general.alignment"] = .uint32(alignment) }
    m["u8"] = .uint8(200); m["i8"] = .int8(-100); m["u16"] = .uint16(60_000); m["i16"] = .int16(-30_000)
    m["u32"] = .uint32(4_000_000_000); m["i32"] = .int32(-2_000_000_000); m["f32"] = .float32(1.5)
    m["bool"] = .bool(true); m["str"] = .string("héllo ▁ wörld 🎉"); m["u64"] = .uint64(.max); m["i64"] = .int64(.min)
    m["f64"] = .float64(-2.25)
    m["tokens"] = .array(.string(["<pad>", "<eos>", "▁a", ""]))
    m["scores"] = .array(.float32([0, -1.5, 3.25]))
    m["flags"] = .array(.bool([true, false, true]))
    m["nested"] = .array(.array([.int32([1, 2]), .uint8([]), .string(["x"])]))
    m["empty"] = .array(.uint64([]))
    var w = GGUFWriter(metadata: m)
    var rng = SplitMix64(seed: 7)
    try w.addTensor(name: "a.f32", type: .f32, dimensions: [5, 3], data: rng.bytes(60))
    try w.addTensor(name: "b.q8_0", type: .q8_0, dimensions: [64, 2], data: rng.bytes(2 * 2 * 34))
    try w.addTensor(name: "c.q4_K", type: .q4_K, dimensions: [256], data: rng.bytes(144))
    try w.addTensor(name: "d.f16", type: .f16, dimensions: [3, 1, 1, 2], data: rng.bytes(12))
    return w.serialized()
}

@Suite struct GGUFTests {
    @Test func readsEveryMetadataTypeAndTensor() throws {
        let f = try GGUFFile(bytes: try sampleGGUF())
        #expect(f.version == 3)
        #expect(f.metadata.count == 18)
        #expect(f.metadata["u64"] == .uint64(.max))
        #expect(f.metadata["i64"] == .int64(.min))
        #expect(f.metadata["str"]?.string == "héllo ▁ wörld 🎉")
        #expect(f.metadata["tokens"] == .array(.string(["<pad>", "<eos>", "▁a", ""])))
        #expect(f.metadata["nested"] == .array(.array([.int32([1, 2]), .uint8([]), .string(["x"])])))
        #expect(f.metadata.entries.map(\.key).first == "general.architecture")
        #expect(f.tensors.map(\.name) == ["a.f32", "b.q8_0", "c.q4_K", "d.f16"])
        let b = try #require(f.tensor(named: "b.q8_0"))
        #expect(b.dimensions == [64, 2] && b.type == .q8_0 && b.byteCount == 136 && b.rowCount == 2 && b.rowBytes == 68)
        #expect(f.dataOffset % 32 == 0)
        for t in f.tensors { #expect(t.offset % 32 == 0) }
    }

    @Test(arguments: [UInt32(32), 64, 1, 4096])
    func roundTripGivesIdenticalMetadataAndBytes(alignment: UInt32) throws {
        let bytes = try sampleGGUF(alignment: alignment)
        let a = try GGUFFile(bytes: bytes)
        #expect(a.alignment == Int(alignment))
        let again = try GGUFWriter(copying: a).serialized()
        let b = try GGUFFile(bytes: again)
        #expect(a.metadata == b.metadata)
        #expect(a.tensors == b.tensors)
        for t in a.tensors { #expect(Array(a.data(for: t)) == Array(b.data(for: t.self))) }
        #expect(again == bytes)
    }

    @Test func writerRefusesWrongSizes() throws {
        var w = GGUFWriter()
        func add(_ type: TensorType, _ dims: [Int], _ data: [UInt8]) -> FormatError? {
            do { try w.addTensor(name: "x", type: type, dimensions: dims, data: data); return nil } catch { return error }
        }
        #expect(add(.q8_0, [33], []) != nil)
        #expect(add(.f32, [2], [0, 0, 0]) != nil)
        #expect(add(.f32, [1], [0, 0, 0, 0]) == nil)
        #expect(add(.f32, [1], [0, 0, 0, 0]) == .duplicate(what: "tensor", name: "x"))
    }

    /// Parses `bytes` and returns the error it throws, or nil when it loads.
    static func parseError(_ bytes: [UInt8]) -> FormatError? {
        do { _ = try GGUFFile(bytes: bytes); return nil } catch { return error }
    }

    @Test func typedErrorsNameTheFieldAndNumbers() throws {
        let good = try sampleGGUF()
        let badMagic = [UInt8(0x46)] + good.dropFirst()
        #expect(Self.parseError(badMagic) == .badMagic(found: 0x4655_4746))
        var v1 = good
        v1[4] = 1
        #expect(Self.parseError(v1) == .unsupportedVersion(1))
        #expect(Self.parseError(Array(good.prefix(6))) == .truncated(field: "version", offset: 4, needed: 4, remaining: 2))
        // Cut the data section short (past the 20 bytes of end padding): the last tensor's data no longer fits.
        let cut = Array(good.dropLast(24))
        guard case let .badTensorData(tensor, reason)? = Self.parseError(cut) else {
            Issue.record("truncated data section was accepted or gave another error")
            return
        }
        #expect(tensor == "d.f16")
        #expect(reason.contains("but the file has \(cut.count) bytes"))
        // A tensor count that could not fit in the file.
        var huge = good
        for i in 8..<16 { huge[i] = 0xFF }
        guard case let .implausible(field, value, _)? = Self.parseError(huge) else {
            Issue.record("huge tensor count was not refused as implausible: \(String(describing: Self.parseError(huge)))")
            return
        }
        #expect(field == "tensor_count" && value == .max)
        #expect(FormatError.truncated(field: "x", offset: 1, needed: 2, remaining: 0).description
            == "x: needs 2 bytes at offset 1 but the file has only 0 bytes left")
    }

    @Test func typeNamesAreGGMLs() {
        #expect(TensorType.q4_K.description == "Q4_K" && TensorType.q8_0.description == "Q8_0")
        #expect(TensorType.allCases.allSatisfy { TensorType(rawValue: $0.rawValue) == $0 && !$0.description.isEmpty })
        #expect(FormatError.notWholeBlocks(type: .q6_K, count: 100).description
            == "100 elements is not a whole number of Q6_K blocks of 256")
    }

    @Test func unknownTypesAndDuplicatesAreErrors() throws {
        var m = GGUFMetadata()
        m["a"] = .uint8(1)
        var w = GGUFWriter(metadata: m)
        try w.addTensor(name: "t", type: .f32, dimensions: [1], data: [0, 0, 0, 0])
        var bytes = w.serialized()
        // Tensor type id sits after: header 24, kv (8+1 key, 4 type, 1 value), name (8+1), n_dims 4, dim 8.
        let typeAt = 24 + 14 + 9 + 4 + 8
        #expect(bytes[typeAt] == 0)
        bytes[typeAt] = 250
        #expect(Self.parseError(bytes) == .unknownTensorType(tensor: "t", id: 250))
        bytes[typeAt] = 0
        bytes[24 + 9] = 77  // value type of "a"
        #expect(Self.parseError(bytes) == .unknownValueType(field: "metadata a", id: 77))
    }

    @Test func readsTheRealModelHeader() throws {
        guard let path = TestPaths.require(TestPaths.model, makeWith: "scripts/fetch-model.sh") else { return }
        let f = try GGUFFile(path: path)
        #expect(f.version == 3)
        #expect(f.tensors.count == 236)
        #expect(f.metadata.count == 33)  // gguf-py's 36 fields include the three header counts
        #expect(f.metadata["general.architecture"]?.string == "gemma3")
        #expect(f.metadata["tokenizer.ggml.tokens"]?.array?.count == 262_144)
        let counts = Dictionary(grouping: f.tensors, by: \.type).mapValues(\.count)
        #expect(counts == [.f32: 109, .q5_0: 81, .q4_K: 27, .q8_0: 10, .q6_K: 9])
        let embd = try #require(f.tensor(named: "token_embd.weight"))
        #expect(embd.dimensions == [640, 262_144] && embd.type == .q8_0)
        // Writing the model back gives the same file, byte for byte.
        let again = try GGUFWriter(copying: f).serialized()
        #expect(again.count == f.fileSize)
        #expect(again.elementsEqual(f.storage.buffer))
    }
}
