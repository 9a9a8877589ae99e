// Safetensors header validation, case by case: each way the reference reader (tensor.rs) refuses a file is refused here
// with a typed error naming the tensor, and what it accepts (unknown fields, empty tensors, null metadata, trailing
// spaces) is accepted.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

/// A safetensors file: the u64 length of `header` (or `length`), the header, then `data` bytes 0, 1, 2, ...
func safetensorsBytes(_ header: String, data: Int = 0, length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { out += $0 }
    return out + h + (0..<data).map { UInt8(truncatingIfNeeded: $0) }
}

@Suite struct SafetensorsValidationTests {
    static func error(_ bytes: [UInt8]) -> FormatError? {
        do { _ = try SafetensorsFile(bytes: bytes); return nil } catch { return error }
    }

    static let a8 = #""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#

    @Test func acceptsWhatTheReferenceAccepts() throws {
        // Unknown fields ignored, trailing spaces (the writer's padding), null metadata, a scalar, zero-size tensors
        // sharing an offset, tensors listed out of offset order.
        let header = #"{"__metadata__":null,"b":{"dtype":"U8","shape":[],"data_offsets":[8,9],"extra":[1,{"x":2}]},"#
            + #""z1":{"dtype":"BF16","shape":[0,5],"data_offsets":[8,8]},"z2":{"dtype":"I64","shape":[3,0],"data_offsets":[8,8]},"#
            + Self.a8 + "}   "
        let f = try SafetensorsFile(bytes: safetensorsBytes(header, data: 9))
        #expect(f.tensorNames == ["b", "z1", "z2", "a"])
        #expect(f.metadata.isEmpty)
        #expect(Array(try #require(f.sourceTensor(named: "b")).bytes) == [8])
        #expect(Array(try #require(f.sourceTensor(named: "a")).bytes) == (0..<8).map { UInt8($0) })
        #expect(f.sourceTensor(named: "z1")?.bytes.count == 0 && f.sourceTensor(named: "z2")?.shape == [3, 0])
        // No tensors at all.
        #expect(try SafetensorsFile(bytes: safetensorsBytes("{}")).tensors.isEmpty)
        // The packed types need whole bytes: 6 F6 values are 36 bits, no; 4 are 24 bits, yes.
        let f6 = try SafetensorsFile(bytes: safetensorsBytes(#"{"p":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[0,3]}}"#, data: 3))
        #expect(f6.tensor(named: "p")?.byteCount == 3)
    }

    /// Hostile headers and the error each must give.
    static let cases: [(what: String, bytes: [UInt8], expected: FormatError)] = [
        ("short", [8, 0, 0], .truncated(field: "safetensors header length", offset: 0, needed: 8, remaining: 3)),
        ("header too long for the format", safetensorsBytes("{}", length: 100_000_001),
         .implausible(field: "safetensors header length", value: 100_000_001, reason: "larger than the format's limit of 100000000 bytes")),
        ("header length 2^64-1", safetensorsBytes("{}", length: .max),
         .implausible(field: "safetensors header length", value: .max, reason: "larger than the format's limit of 100000000 bytes")),
        ("header past the end", safetensorsBytes("{}", length: 3),
         .truncated(field: "safetensors header", offset: 8, needed: 3, remaining: 2)),
        ("empty header", safetensorsBytes(""), .badHeader(reason: "does not start with {")),
        ("leading space", safetensorsBytes(" {}"), .badHeader(reason: "does not start with {")),
        ("unknown dtype", safetensorsBytes(#"{"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}"#, data: 8),
         .unknownDType(tensor: "a", dtype: "F128")),
        ("lowercase dtype", safetensorsBytes(#"{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}"#, data: 8),
         .unknownDType(tensor: "a", dtype: "f32")),
        ("duplicate tensor", safetensorsBytes("{" + a8 + "," + a8 + "}", data: 8), .duplicate(what: "tensor", name: "a")),
        ("duplicate metadata", safetensorsBytes(#"{"__metadata__":{},"__metadata__":{}}"#), .duplicate(what: "header key", name: "__metadata__")),
        ("duplicate metadata key", safetensorsBytes(#"{"__metadata__":{"k":"1","k":"2"}}"#), .duplicate(what: "__metadata__ key", name: "k")),
        ("duplicate field", safetensorsBytes(#"{"a":{"dtype":"F32","dtype":"U8","shape":[2],"data_offsets":[0,8]}}"#, data: 8),
         .duplicate(what: "field of tensor a", name: "dtype")),
        ("metadata number", safetensorsBytes(#"{"__metadata__":{"k":1}}"#), .metadata(key: "__metadata__.k", reason: "must be a string, found number")),
        ("metadata array", safetensorsBytes(#"{"__metadata__":[]}"#), .metadata(key: "__metadata__", reason: "must be an object of strings, found array")),
        ("entry not an object", safetensorsBytes(#"{"a":[0,8]}"#, data: 8), .badTensorData(tensor: "a", reason: "entry must be an object, found array")),
        ("no dtype", safetensorsBytes(#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "dtype must be a string, found nothing")),
        ("no shape", safetensorsBytes(#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "shape must be an array, found nothing")),
        ("negative dimension", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "shape[0] must be a non-negative integer up to 2^53, found -2.0")),
        ("fractional dimension", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}"#, data: 10),
         .badTensorData(tensor: "a", reason: "shape[0] must be a non-negative integer up to 2^53, found 2.5")),
        ("string dimension", safetensorsBytes(#"{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "shape[0] must be a non-negative integer, found string")),
        ("huge dimension", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[1e300],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "shape[0] must be a non-negative integer up to 2^53, found 1e+300")),
        ("element count overflows", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: 8),
         .implausible(field: "tensor a shape[1]", value: 4_294_967_296, reason: "element count overflows")),
        ("byte count overflows", safetensorsBytes(#"{"a":{"dtype":"U64","shape":[4503599627370496,1024],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "4611686018427387904 U64 elements are not a whole number of bytes or overflow")),
        ("half a byte", safetensorsBytes(#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#, data: 1),
         .badTensorData(tensor: "a", reason: "3 F4 elements are not a whole number of bytes or overflow")),
        ("three offsets", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "data_offsets must be an array of two integers")),
        ("offsets reversed", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "data_offsets [8, 0] end before they begin")),
        ("size mismatch", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "data_offsets [0, 8] hold 8 bytes but F32 [3] needs 12")),
        ("past the buffer", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "data_offsets [4, 12] run past the byte buffer of 8 bytes")),
        ("gap", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8),
         .badTensorData(tensor: "a", reason: "data starts at byte 4 of the byte buffer but the tensors before it end at byte 0 (gap)")),
        ("overlap", safetensorsBytes("{" + a8 + #","b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8),
         .badTensorData(tensor: "b", reason: "data starts at byte 4 of the byte buffer but the tensors before it end at byte 8 (overlap)")),
        ("same bytes twice", safetensorsBytes("{" + a8 + #","b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#, data: 8),
         .badTensorData(tensor: "b", reason: "data starts at byte 0 of the byte buffer but the tensors before it end at byte 8 (overlap)")),
        ("trailing bytes", safetensorsBytes("{" + a8 + "}", data: 9),
         .badHeader(reason: "the tensors cover 8 bytes of a 9-byte buffer (the file must end with the last tensor)")),
        ("unterminated object", safetensorsBytes("{"), .badHeader(reason: "")),
        ("trailing NUL padding", safetensorsBytes("{}\0\0\0\0\0\0"), .badHeader(reason: "")),
        ("deep nesting", safetensorsBytes("{\"a\":" + String(repeating: "[", count: 100_000) + "}"), .badHeader(reason: "")),
    ]

    @Test(arguments: 0..<cases.count)
    func refusesHostileHeader(_ i: Int) {
        let (what, bytes, expected) = Self.cases[i]
        let error = Self.error(bytes)
        if case let .badHeader(reason) = expected, reason.isEmpty {
            // JSON errors: the parser's message and offset are its own business; the kind is ours.
            guard case .badHeader? = error else { Issue.record("\(what): \(String(describing: error))"); return }
        } else {
            #expect(error == expected, "\(what)")
        }
    }

    @Test func errorsFromAPathNameTheFile() throws {
        let dir = try SafetensorsFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/bad.safetensors"
        try Data(safetensorsBytes(#"{"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}"#, data: 8)).write(to: URL(fileURLWithPath: path))
        #expect(throws: FormatError.inFile(path: path, error: .unknownDType(tensor: "a", dtype: "F128"))) {
            try SafetensorsFile(path: path)
        }
        #expect(FormatError.inFile(path: path, error: .unknownDType(tensor: "a", dtype: "F128")).description
            == "\(path): tensor a: unknown safetensors dtype \"F128\"")
        #expect(throws: FormatError.self) { try SafetensorsFile(path: dir + "/absent.safetensors") }
        #expect(throws: FormatError.self) { try SafetensorsFile(path: dir) }
    }
}
