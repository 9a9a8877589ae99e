// The streaming writers against the in-memory ones: the same bytes for the same content, whatever the pieces the
// data comes in; nothing under the final name until finish(); errors for data that does not fit the declared tensors.
// Also JSONValue.pretty against Python's json.dumps(indent=2).
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

@Suite struct StreamWriterTests {
    static func temporaryPath(_ suffix: String) -> String {
        NSTemporaryDirectory() + "gemma-stream-\(UUID().uuidString)" + suffix
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Writes `data` in pieces of `piece` bytes (the last one shorter).
    static func writeInPieces(_ data: [UInt8], piece: Int, _ write: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try data.withUnsafeBytes { all in
            var i = 0
            repeat {
                let n = min(piece, all.count - i)
                try write(UnsafeRawBufferPointer(rebasing: all[i..<(i + n)]))
                i += n
            } while i < all.count
        }
    }

    @Test(arguments: [UInt32(32), 64, 1], [1, 7, 1000])
    func ggufStreamIsTheInMemoryFile(alignment: UInt32, piece: Int) throws {
        let reference = try GGUFFile(bytes: try sampleGGUF(alignment: alignment))
        let path = Self.temporaryPath(".gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let declared = reference.tensors.map { GGUFStreamWriter.Tensor(name: $0.name, type: $0.type, dimensions: $0.dimensions) }
        let w = try GGUFStreamWriter(path: path, metadata: reference.metadata, tensors: declared)
        for t in reference.tensors {
            #expect(w.nextTensor == t.name)
            #expect(!FileManager.default.fileExists(atPath: path))
            try Self.writeInPieces(Array(reference.data(for: t)), piece: piece) { try w.write($0) }
        }
        #expect(w.nextTensor == nil)
        try w.finish()
        #expect(try Self.bytes(path) == GGUFWriter(copying: reference).serialized())
    }

    @Test func ggufStreamRefusesDataThatDoesNotFit() throws {
        let path = Self.temporaryPath(".gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tensors = [GGUFStreamWriter.Tensor(name: "a", type: .f32, dimensions: [2]),
                       GGUFStreamWriter.Tensor(name: "b", type: .q8_0, dimensions: [32])]
        #expect(throws: FormatError.duplicate(what: "tensor", name: "a")) {
            _ = try GGUFStreamWriter(path: path, metadata: GGUFMetadata(), tensors: [tensors[0], tensors[0]])
        }
        #expect(throws: FormatError.self) {
            _ = try GGUFStreamWriter(path: path, metadata: GGUFMetadata(), tensors: [.init(name: "c", type: .q8_0, dimensions: [31])])
        }
        let w = try GGUFStreamWriter(path: path, metadata: GGUFMetadata(), tensors: tensors)
        #expect(throws: FormatError.self) { try w.write([UInt8](repeating: 0, count: 9)) }  // a holds 8 bytes
        try w.write([UInt8](repeating: 0, count: 8))
        try w.write([UInt8](repeating: 0, count: 30))
        #expect(throws: FormatError.badTensorData(tensor: "b", reason: "has 30 of its 34 bytes at finish()")) { try w.finish() }
        w.cancel()
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).allSatisfy {
            !$0.hasPrefix((path as NSString).lastPathComponent)
        })
    }

    @Test func droppingAnUnfinishedWriterLeavesNoFile() throws {
        let path = Self.temporaryPath(".safetensors")
        do {
            let w = try SafetensorsStreamWriter(path: path, tensors: [.init(name: "x", dtype: .F32, shape: [4])])
            try w.write([UInt8](repeating: 1, count: 4))
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"))
    }

    @Test(arguments: SafetensorsFixtures.all, [3, 4096])
    func safetensorsStreamIsTheInMemoryFile(fixture: String, piece: Int) throws {
        let reference = try SafetensorsFile(path: SafetensorsFixtures.path(fixture))
        let path = Self.temporaryPath(".safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try SafetensorsStreamWriter(
            path: path, metadata: reference.metadata,
            tensors: reference.tensors.map { .init(name: $0.name, dtype: $0.dtype, shape: $0.shape) })
        for t in reference.tensors {
            try Self.writeInPieces(Array(reference.data(for: t)), piece: piece) { try w.write($0) }
        }
        try w.finish()
        // The fixtures were written by the safetensors library; the stream in header order reproduces each one.
        #expect(try Self.bytes(path) == SafetensorsFixtures.bytes(fixture))
    }

    @Test func prettyJSONIsPythonsIndentTwo() throws {
        let v: JSONValue = ["a": [1, 2, ["b": []]], "c": .object([]), "d": "x\"y", "e": nil, "f": true, "g": 1.5, "h": [[]]]
        // python3 -c 'import json; print(json.dumps({...}, indent=2))'
        let python = "{\n  \"a\": [\n    1,\n    2,\n    {\n      \"b\": []\n    }\n  ],\n  \"c\": {},\n  \"d\": \"x\\\"y\",\n  \"e\": null,\n  \"f\": true,\n  \"g\": 1.5,\n  \"h\": [\n    []\n  ]\n}"
        #expect(v.pretty() == python)
        #expect(try JSONValue.parse(Array(v.pretty().utf8)) == v)
    }
}
