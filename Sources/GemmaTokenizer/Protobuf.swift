// The protocol-buffers wire format, as much of it as SentencePiece's tokenizer.model needs
// (https://protobuf.dev/programming-guides/encoding/): fields of wire type varint, 64-bit, length-delimited and
// 32-bit; unknown fields are skipped. Every length is checked against the bytes that remain, so a hostile file
// throws instead of reading out of bounds, and nothing recurses on the input's say-so.

/// Why bytes are not a valid protocol-buffers message.
struct ProtobufError: Error, Equatable {
    var reason: String
    /// Byte offset in the whole buffer.
    var offset: Int
}

/// Reads the fields of one message, in order, from a range of a byte buffer.
struct ProtobufReader {
    /// A field's payload. Length-delimited payloads are a range of `bytes`, read as a string or a nested message.
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(Range<Int>)
        case fixed32(UInt32)
    }

    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    /// A reader over `bytes[range]` (the whole buffer by default).
    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        let range = range ?? 0..<bytes.count
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "range outside the buffer")
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = range.upperBound
    }

    /// A reader over a nested message: the payload of a length-delimited field.
    func message(_ range: Range<Int>) -> ProtobufReader { ProtobufReader(bytes, range: range) }

    /// The next field number and its value, or nil at the end of the message.
    mutating func next() throws(ProtobufError) -> (field: Int, value: Value)? {
        guard offset < end else { return nil }
        let keyOffset = offset
        let key = try varint()
        let field = key >> 3
        guard field >= 1 && field <= 0x1FFF_FFFF else {
            throw ProtobufError(reason: "field number \(field) is outside 1...536870911", offset: keyOffset)
        }
        switch key & 7 {
        case 0:
            return (Int(field), .varint(try varint()))
        case 1:
            return (Int(field), .fixed64(try fixed(8)))
        case 2:
            let lengthOffset = offset
            let length = try varint()
            guard length <= UInt64(end - offset) else {
                throw ProtobufError(
                    reason: "field \(field) says \(length) bytes follow but the message has \(end - offset) left",
                    offset: lengthOffset)
            }
            let range = offset..<(offset + Int(length))
            offset = range.upperBound
            return (Int(field), .bytes(range))
        case 5:
            return (Int(field), .fixed32(UInt32(truncatingIfNeeded: try fixed(4))))
        case let wireType:
            // 3 and 4 are the deprecated groups; 6 and 7 are not defined.
            throw ProtobufError(reason: "field \(field) has wire type \(wireType), which this reader does not accept",
                                offset: keyOffset)
        }
    }

    /// A base-128 varint: at most ten bytes, the tenth holding only the top bit of 64.
    private mutating func varint() throws(ProtobufError) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw ProtobufError(reason: "varint runs past the end of the message", offset: start) }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { throw ProtobufError(reason: "varint overflows 64 bits", offset: start) }
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    /// A little-endian fixed-width integer of `count` bytes.
    private mutating func fixed(_ count: Int) throws(ProtobufError) -> UInt64 {
        guard end - offset >= count else {
            throw ProtobufError(reason: "\(count)-byte field runs past the end of the message", offset: offset)
        }
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += count
        return value
    }

    /// The payload of a length-delimited field as UTF-8 text, or nil if it is not valid UTF-8.
    func string(_ range: Range<Int>) -> String? { String(validating: bytes[range], as: UTF8.self) }
}

/// Appends fields to a message, in the order they are written (write them by increasing field number, as
/// protobuf's own serializers do, for byte-identical output).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ field: Int, _ value: UInt64) {
        key(field, wireType: 0)
        rawVarint(value)
    }

    /// An `int32` or `enum` field: negative values are sign-extended to ten bytes, as protobuf writes them.
    mutating func int32(_ field: Int, _ value: Int32) { varint(field, UInt64(bitPattern: Int64(value))) }

    mutating func bool(_ field: Int, _ value: Bool) { varint(field, value ? 1 : 0) }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        let bits = value.bitPattern
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt32(i)))) }
    }

    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    /// A nested message, built by `body`.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        body(&nested)
        lengthDelimited(field, nested.bytes)
    }

    private mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, wireType: 2)
        rawVarint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    private mutating func key(_ field: Int, wireType: UInt64) {
        precondition(field >= 1 && field <= 0x1FFF_FFFF, "protobuf field numbers are 1...536870911")
        rawVarint(UInt64(field) << 3 | wireType)
    }

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
}
