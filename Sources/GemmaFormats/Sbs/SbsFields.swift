// gemma.cpp's field serialization (io/fields.h, io/fields.cc), which its .sbs files use for the `config` and `toc`
// blobs: a stream of little-endian u32 words. A struct ("IFields") is one word holding the number of words that
// follow, then its fields in a fixed order: u32, i32, bool and enums one word each, u64 two (low, high), f32 its bit
// pattern, a string a word count (at most 64) and its ASCII bytes zero-padded to whole words, a vector a u32 count
// (at most 65,536) and its elements, a nested struct its own length word and fields. Data older than the code ends
// early (the missing fields keep their defaults); data newer than the code has trailing words the reader skips.
//
// One `visitFields` per struct names the order for reading and writing alike, as gemma.cpp's `VisitFields` does.
// Unlike gemma.cpp's reader, a nested struct with trailing words is skipped to its end (gemma.cpp counts the extra
// words but goes on reading inside them), and a nested struct may not claim more words than its parent holds.

/// A struct stored as gemma.cpp serializes its `IFields`.
public protocol SbsFields: Sendable {
    init()
    /// Visits every field in its serialization order (which must never change).
    mutating func visitFields<V: SbsFieldVisitor>(_ v: inout V) throws(FormatError)
}

/// What `visitFields` calls for each field: a reader sets the value, a writer appends it.
public protocol SbsFieldVisitor {
    mutating func visit(_ value: inout UInt32, _ field: String) throws(FormatError)
    mutating func visit(_ value: inout Int32, _ field: String) throws(FormatError)
    mutating func visit(_ value: inout UInt64, _ field: String) throws(FormatError)
    mutating func visit(_ value: inout Float, _ field: String) throws(FormatError)
    mutating func visit(_ value: inout Bool, _ field: String) throws(FormatError)
    mutating func visit(_ value: inout String, _ field: String) throws(FormatError)
    mutating func visit<T: SbsFields>(_ value: inout T, _ field: String) throws(FormatError)
    mutating func visit(_ value: inout [UInt32], _ field: String) throws(FormatError)
    mutating func visit(_ value: inout [String], _ field: String) throws(FormatError)
    mutating func visit<T: SbsFields>(_ value: inout [T], _ field: String) throws(FormatError)
}

enum SbsFieldLimits {
    /// Words of a string (gemma.cpp: "Disallow long strings for safety").
    static let maxStringWords: UInt32 = 64
    /// Elements of a vector.
    static let maxVectorCount: UInt32 = 64 * 1024
}

// MARK: - Reading

/// Reads structs from a word stream, checking every length against the words that hold it.
public struct SbsFieldReader: SbsFieldVisitor {
    let words: [UInt32]
    let blob: String
    private(set) var position: Int
    /// The end of each struct being read, innermost last.
    private var ends: [Int] = []
    /// Fields the data did not have (they keep their defaults).
    public private(set) var missingFields = 0
    /// Words the data had past the fields this code knows.
    public private(set) var extraWords = 0

    init(words: [UInt32], position: Int = 0, blob: String) {
        self.words = words
        self.position = position
        self.blob = blob
    }

    /// Reads one struct starting at word `position`; returns it and the word after it.
    public static func read<T: SbsFields>(_: T.Type, from words: [UInt32], at position: Int = 0,
                                          blob: String) throws(FormatError) -> (value: T, next: Int, reader: SbsFieldReader) {
        var reader = SbsFieldReader(words: words, position: position, blob: blob)
        reader.ends = [words.count]
        var value = T()
        try reader.visit(&value, T.self == SbsMatPtr.self ? "MatPtr" : "\(T.self)")
        return (value, reader.position, reader)
    }

    func fail(_ field: String, _ reason: String) -> FormatError {
        .badBlob(blob: blob, reason: "field \(field) at word \(position): \(reason)")
    }

    /// True when the current struct has ended: the field keeps its default.
    private mutating func skip() -> Bool {
        if position >= ends.last ?? words.count {
            missingFields += 1
            return true
        }
        return false
    }

    private mutating func word() -> UInt32 {
        defer { position += 1 }
        return words[position]
    }

    public mutating func visit(_ value: inout UInt32, _ field: String) throws(FormatError) {
        if skip() { return }
        value = word()
    }

    public mutating func visit(_ value: inout Int32, _ field: String) throws(FormatError) {
        if skip() { return }
        value = Int32(bitPattern: word())
    }

    public mutating func visit(_ value: inout UInt64, _ field: String) throws(FormatError) {
        // Two words, each of which may be missing (gemma.cpp reads them as two u32 fields).
        var low = UInt32(truncatingIfNeeded: value), high = UInt32(truncatingIfNeeded: value >> 32)
        try visit(&low, field)
        try visit(&high, field)
        value = UInt64(low) | UInt64(high) << 32
    }

    public mutating func visit(_ value: inout Float, _ field: String) throws(FormatError) {
        if skip() { return }
        let v = Float(bitPattern: word())
        guard v.isFinite else { throw fail(field, "\(v) is not a finite number") }
        value = v
    }

    public mutating func visit(_ value: inout Bool, _ field: String) throws(FormatError) {
        if skip() { return }
        let w = word()
        guard w <= 1 else { throw fail(field, "\(w) is not a bool (0 or 1)") }
        value = w == 1
    }

    public mutating func visit(_ value: inout String, _ field: String) throws(FormatError) {
        if skip() { return }
        let n = word()
        guard n <= SbsFieldLimits.maxStringWords else {
            throw fail(field, "a string of \(n) words is longer than the \(SbsFieldLimits.maxStringWords) allowed")
        }
        guard Int(n) <= (ends.last ?? words.count) - position else {
            throw fail(field, "a string of \(n) words runs past the end of its struct")
        }
        var bytes: [UInt8] = []
        for _ in 0..<n {
            let w = word()
            // Zero-padded to whole words, but no word is all zero, and only ASCII (gemma.cpp's CheckStringU32).
            guard w != 0, w & 0x8080_8080 == 0 else {
                throw fail(field, "string word 0x\(String(w, radix: 16)) is zero or not ASCII")
            }
            withUnsafeBytes(of: w.littleEndian) { bytes.append(contentsOf: $0) }
        }
        while bytes.last == 0 { bytes.removeLast() }
        value = String(decoding: bytes, as: UTF8.self)
    }

    public mutating func visit<T: SbsFields>(_ value: inout T, _ field: String) throws(FormatError) {
        if skip() { return }
        let n = Int(word())
        let end = ends.last ?? words.count
        guard n <= end - position else {
            throw fail(field, "a struct of \(n) words runs past the \(end - position) words left")
        }
        ends.append(position + n)
        try value.visitFields(&self)
        let structEnd = ends.removeLast()
        extraWords += structEnd - position
        position = structEnd
    }

    private mutating func count(_ field: String) throws(FormatError) -> Int? {
        if skip() { return nil }
        let n = word()
        guard n <= SbsFieldLimits.maxVectorCount else {
            throw fail(field, "a vector of \(n) elements is longer than the \(SbsFieldLimits.maxVectorCount) allowed")
        }
        return Int(n)
    }

    public mutating func visit(_ value: inout [UInt32], _ field: String) throws(FormatError) {
        guard let n = try count(field) else { return }
        var out = [UInt32](repeating: 0, count: n)
        for i in 0..<n { try visit(&out[i], "\(field)[\(i)]") }
        value = out
    }

    public mutating func visit(_ value: inout [String], _ field: String) throws(FormatError) {
        guard let n = try count(field) else { return }
        var out = [String](repeating: "", count: n)
        for i in 0..<n { try visit(&out[i], "\(field)[\(i)]") }
        value = out
    }

    public mutating func visit<T: SbsFields>(_ value: inout [T], _ field: String) throws(FormatError) {
        guard let n = try count(field) else { return }
        var out = [T](repeating: T(), count: n)
        for i in 0..<n { try visit(&out[i], "\(field)[\(i)]") }
        value = out
    }
}

// MARK: - Writing

/// Appends structs to a word stream as gemma.cpp's `IFields::AppendTo` does.
public struct SbsFieldWriter: SbsFieldVisitor {
    public private(set) var words: [UInt32] = []

    public init() {}

    /// Appends `value` (its length word, then its fields).
    public mutating func append<T: SbsFields>(_ value: T) throws(FormatError) {
        var copy = value
        try visit(&copy, "\(T.self)")
    }

    public mutating func visit(_ value: inout UInt32, _ field: String) throws(FormatError) { words.append(value) }
    public mutating func visit(_ value: inout Int32, _ field: String) throws(FormatError) { words.append(UInt32(bitPattern: value)) }

    public mutating func visit(_ value: inout UInt64, _ field: String) throws(FormatError) {
        words.append(UInt32(truncatingIfNeeded: value))
        words.append(UInt32(truncatingIfNeeded: value >> 32))
    }

    public mutating func visit(_ value: inout Float, _ field: String) throws(FormatError) {
        guard value.isFinite else { throw .badBlob(blob: "(writing)", reason: "field \(field) is \(value), not finite") }
        words.append(value.bitPattern)
    }

    public mutating func visit(_ value: inout Bool, _ field: String) throws(FormatError) { words.append(value ? 1 : 0) }

    public mutating func visit(_ value: inout String, _ field: String) throws(FormatError) {
        let bytes = Array(value.utf8)
        let n = (bytes.count + 3) / 4
        guard n <= SbsFieldLimits.maxStringWords, bytes.allSatisfy({ $0 != 0 && $0 < 0x80 }) else {
            throw .badBlob(blob: "(writing)", reason: "field \(field) \"\(value)\" is not ASCII of at most \(4 * SbsFieldLimits.maxStringWords) bytes")
        }
        words.append(UInt32(n))
        for w in 0..<n {
            var word: UInt32 = 0
            for (k, b) in bytes[(4 * w)..<min(4 * w + 4, bytes.count)].enumerated() { word |= UInt32(b) << (8 * k) }
            words.append(word)
        }
    }

    public mutating func visit<T: SbsFields>(_ value: inout T, _ field: String) throws(FormatError) {
        let lengthAt = words.count
        words.append(0)
        try value.visitFields(&self)
        words[lengthAt] = UInt32(words.count - lengthAt - 1)
    }

    private mutating func count(_ n: Int, _ field: String) throws(FormatError) {
        guard n <= Int(SbsFieldLimits.maxVectorCount) else {
            throw .badBlob(blob: "(writing)", reason: "field \(field) has \(n) elements, more than \(SbsFieldLimits.maxVectorCount)")
        }
        words.append(UInt32(n))
    }

    public mutating func visit(_ value: inout [UInt32], _ field: String) throws(FormatError) {
        try count(value.count, field)
        words.append(contentsOf: value)
    }

    public mutating func visit(_ value: inout [String], _ field: String) throws(FormatError) {
        try count(value.count, field)
        for i in value.indices { try visit(&value[i], field) }
    }

    public mutating func visit<T: SbsFields>(_ value: inout [T], _ field: String) throws(FormatError) {
        try count(value.count, field)
        for i in value.indices { try visit(&value[i], field) }
    }
}
