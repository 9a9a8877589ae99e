// A bounds-checked little-endian cursor over untrusted bytes: every read names its field and fails cleanly.

struct ByteReader {
    let base: UnsafeRawPointer
    let count: Int
    private(set) var offset = 0

    init(_ buffer: UnsafeRawBufferPointer) {
        base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!
        count = buffer.count
    }

    var remaining: Int { count - offset }

    mutating func need(_ n: Int, _ field: @autoclosure () -> String) throws(FormatError) {
        guard n >= 0, n <= remaining else {
            throw .truncated(field: field(), offset: offset, needed: n, remaining: remaining)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String) throws(FormatError) -> T {
        try need(MemoryLayout<T>.size, field())
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    /// Reads a u64 count and checks that `count * minimumElementSize` bytes could follow.
    mutating func readCount(_ field: @autoclosure () -> String, minimumElementSize: Int) throws(FormatError) -> Int {
        let raw = try read(UInt64.self, field())
        let limit = UInt64(remaining / max(minimumElementSize, 1))
        guard raw <= limit else {
            throw .implausible(field: field(), value: raw,
                               reason: "needs at least \(minimumElementSize) bytes each but only \(remaining) bytes remain")
        }
        return Int(raw)
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (invalid UTF-8 is repaired with U+FFFD).
    mutating func readString(_ field: @autoclosure () -> String) throws(FormatError) -> String {
        let n = try readCount(field() + " (string length)", minimumElementSize: 1)
        let s = String(decoding: UnsafeRawBufferPointer(start: base + offset, count: n), as: UTF8.self)
        offset += n
        return s
    }

    /// Reads `n` fixed-width values into an array (n was checked by `readCount`).
    mutating func readArray<T: FixedWidthInteger>(_: T.Type, count n: Int, _ field: @autoclosure () -> String) throws(FormatError) -> [T] {
        let bytes = n * MemoryLayout<T>.size
        try need(bytes, field())
        let start = base + offset
        offset += bytes
        return [T](unsafeUninitializedCapacity: n) { buf, initialized in
            for i in 0..<n {
                buf[i] = T(littleEndian: start.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
            }
            initialized = n
        }
    }

    mutating func skip(to newOffset: Int) { offset = newOffset }
}
