// Writes a gemma.cpp .sbs file the way gemma.cpp writes it since 2025-07-31 (io/blob_store.cc `BlobWriter`, V2
// layout; gemma/model_store.cc `WriteSingleFile`): a placeholder header (no blobs) padded to 256 bytes, one blob per
// tensor in the order given, each padded with zeros to a multiple of 256, then the `config`, `tokenizer` and `toc`
// blobs, zeros up to 64 KiB alignment less the directory, the directory (16-byte keys, then {offset, size} pairs) and
// the real header at the very end. The file is written under a temporary name and renamed when complete.

/// Streams an .sbs file: tensors (as `beginTensor` / `write` / `endTensor`, or `addTensor`), then `finish`.
public final class SbsWriter: TensorByteStream {
    private let file: PendingFile
    private var keys: [String] = []
    private var sizes: [Int] = []
    private var toc = SbsFieldWriter()
    private var smallestType: SbsType?
    /// The open blob: its name, start offset and, for a tensor, the byte count it must reach.
    private var open: (name: String, start: Int, expected: Int?)?

    public var path: String { file.path }

    /// Creates `path` (under a temporary name until `finish`) and writes the placeholder header.
    public init(path: String) throws(FormatError) {
        file = try PendingFile(path: path)
        var header = [UInt8](repeating: 0, count: SbsBlobStore.blobAlign)
        Self.putHeader(&header, at: 0, count: 0, fileBytes: UInt64(SbsBlobStore.endAlign))
        try file.write(header)
    }

    /// Starts the blob of a tensor: `rows` x `cols` packed elements of `type` follow through `write`.
    public func beginTensor(name: String, type: SbsType, rows: Int, cols: Int, scale: Float = 1) throws(FormatError) {
        guard type == .f32 || type == .bf16 || type == .sfp || type == .f64 || type == .u32 || type == .u64 else {
            throw .badBlob(blob: name, reason: "cannot write \(type) tensors (their size is not rows x cols elements)")
        }
        guard rows > 0, cols > 0, rows <= Int(UInt32.max), cols <= Int(UInt32.max), rows * cols <= Int(UInt32.max) else {
            throw .badTensorData(tensor: name, reason: "shape \(rows) x \(cols) does not fit gemma.cpp's u32 fields")
        }
        guard scale.isFinite, scale > 0 else { throw .badTensorData(tensor: name, reason: "scale \(scale) is not positive") }
        try toc.append(SbsMatPtr(name: name, type: type, rows: rows, cols: cols, scale: scale))
        if type.bits < smallestType?.bits ?? .max { smallestType = type }
        try begin(name, expected: rows * cols * type.elementBytes)
    }

    /// Appends bytes to the open blob.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard let open else { throw .badBlob(blob: "(writing)", reason: "bytes written outside a blob") }
        if let expected = open.expected, file.bytesWritten - open.start + bytes.count > expected {
            throw .badTensorData(tensor: open.name, reason: "more than its \(expected) bytes written")
        }
        try file.write(bytes)
    }

    /// Ends the open tensor blob (all its bytes must have been written).
    public func endTensor() throws(FormatError) { try end() }

    /// Writes a whole tensor.
    public func addTensor(name: String, type: SbsType, rows: Int, cols: Int, scale: Float = 1,
                          bytes: UnsafeRawBufferPointer) throws(FormatError) {
        try beginTensor(name: name, type: type, rows: rows, cols: cols, scale: scale)
        try write(bytes)
        try endTensor()
    }

    /// Adds the `config` (its `weight` set to the smallest tensor type, which gemma.cpp checks), `tokenizer` (a
    /// SentencePiece model proto; gemma.cpp's "unavailable" when nil) and `toc` blobs, then the directory and the
    /// header, and renames the file into place.
    public func finish(config: SbsModelConfig, tokenizer: [UInt8]?) throws(FormatError) {
        guard let smallestType else { throw .badBlob(blob: "toc", reason: "no tensors were written") }
        var config = config
        config.weight = smallestType.rawValue
        try config.validate()
        var serialized = SbsFieldWriter()
        try serialized.append(config)
        try addBlob("config", Self.bytes(of: serialized.words))
        try addBlob("tokenizer", tokenizer.map { $0.isEmpty ? SbsFile.mockTokenizer : $0 } ?? SbsFile.mockTokenizer)
        try addBlob("toc", Self.bytes(of: toc.words))

        let n = keys.count
        let directoryBytes = 2 * SbsBlobStore.keyBytes * n
        let fileBytes = SbsBlobStore.roundUp(file.bytesWritten + SbsBlobStore.roundUp(SbsBlobStore.headerBytes + directoryBytes, SbsBlobStore.blobAlign),
                                             SbsBlobStore.endAlign)
        var tail = [UInt8](repeating: 0, count: fileBytes - file.bytesWritten)
        var at = tail.count - directoryBytes - SbsBlobStore.headerBytes
        var offset = SbsBlobStore.blobAlign
        var ranges: [(Int, Int)] = []
        for size in sizes {
            ranges.append((offset, size))
            offset = SbsBlobStore.roundUp(offset + size, SbsBlobStore.blobAlign)
        }
        for key in keys {
            for (i, b) in key.utf8.enumerated() { tail[at + i] = b }
            at += SbsBlobStore.keyBytes
        }
        for (offset, size) in ranges {
            Self.put(UInt64(offset), into: &tail, at: at)
            Self.put(UInt64(size), into: &tail, at: at + 8)
            at += 16
        }
        Self.putHeader(&tail, at: at, count: UInt32(n), fileBytes: UInt64(fileBytes))
        try file.write(tail)
        try file.commit()
    }

    /// Deletes the partial file (also done when the writer is dropped unfinished).
    public func discard() { file.discard() }

    // MARK: - Blobs

    private func begin(_ name: String, expected: Int?) throws(FormatError) {
        guard open == nil else { throw .badBlob(blob: name, reason: "started while blob \(open!.name) is open") }
        guard !name.isEmpty, name.utf8.count <= SbsBlobStore.keyBytes, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw .badBlob(blob: name, reason: "a key must be 1 to 16 printable ASCII characters")
        }
        guard !keys.contains(name) else { throw .duplicate(what: "blob", name: name) }
        guard keys.count + 1 < SbsBlobStore.maxBlobs else {
            throw .badBlob(blob: name, reason: "more than \(SbsBlobStore.maxBlobs - 1) blobs")
        }
        open = (name, file.bytesWritten, expected)
    }

    private func end() throws(FormatError) {
        guard let o = open else { throw .badBlob(blob: "(writing)", reason: "no blob is open") }
        let size = file.bytesWritten - o.start
        if let expected = o.expected, size != expected {
            throw .badTensorData(tensor: o.name, reason: "\(size) bytes written but it has \(expected)")
        }
        guard size > 0 else { throw .badBlob(blob: o.name, reason: "is empty (gemma.cpp refuses empty blobs)") }
        open = nil
        keys.append(o.name)
        sizes.append(size)
        try file.write([UInt8](repeating: 0, count: SbsBlobStore.roundUp(size, SbsBlobStore.blobAlign) - size))
    }

    private func addBlob(_ name: String, _ bytes: [UInt8]) throws(FormatError) {
        try begin(name, expected: nil)
        try file.write(bytes)
        try end()
    }

    static func bytes(of words: [UInt32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 * words.count)
        for w in words { withUnsafeBytes(of: w.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    private static func put(_ v: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    private static func putHeader(_ bytes: inout [UInt8], at offset: Int, count: UInt32, fileBytes: UInt64) {
        put(UInt64(SbsBlobStore.magic) | UInt64(count) << 32, into: &bytes, at: offset)
        put(fileBytes, into: &bytes, at: offset + 8)
    }
}
