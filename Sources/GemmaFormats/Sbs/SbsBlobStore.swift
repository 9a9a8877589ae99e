// gemma.cpp's BlobStore, the container of its .sbs files (formats.md 1.6; gemma.cpp io/blob_store.cc): named blobs
// at 256-byte-aligned offsets, found through a directory of 16-byte keys and {u64 offset, u64 size} pairs.
//
//   V1: header (num_blobs > 0) + directory + zeros to 256 | blobs, each padded to 256 | (zeros to 64 KiB)
//   V2: header (num_blobs = 0) + zeros to 256 | blobs, each padded to 256 | zeros | directory + header
//
// V2 is what gemma.cpp writes since 2025-07-31; a reader tries V1 first (a header at 0 with blobs), else reads the
// real header from the file's last 16 bytes. gemma.cpp's own check (`BlobStore::IsValid`) is followed and then some:
// the header's file size must equal the file's, blobs must lie back to back in directory order from the first blob
// offset, each at a multiple of 256 with a non-zero size, and none may run into the directory (V2) or past the end.
// Every number is checked before it is used, so a hostile file ends in a `FormatError`, never a read outside it.

/// One blob: its key and where its bytes are.
public struct SbsBlob: Sendable, Equatable {
    public let name: String
    /// File offset of the first byte (a multiple of 256).
    public let offset: Int
    /// Bytes, without the padding to 256.
    public let size: Int
}

/// The parsed header and directory of a BlobStore file.
public struct SbsBlobStore: Sendable {
    public enum Layout: String, Sendable { case v1, v2 }

    /// "SBS\n" little-endian.
    public static let magic: UInt32 = 0x0A53_4253
    /// Every blob offset is a multiple of this.
    public static let blobAlign = 256
    /// Files are padded to a multiple of this (older files may lack the padding).
    public static let endAlign = 64 * 1024
    /// gemma.cpp refuses more blobs (`kMaxBlobs`).
    public static let maxBlobs = 16 * 1024
    static let headerBytes = 16
    static let keyBytes = 16

    public let layout: Layout
    /// In directory order (which is also file order).
    public let blobs: [SbsBlob]
    private let index: [String: Int]

    /// Reads the header and directory of `file` (the whole file's bytes).
    public init(_ file: UnsafeRawBufferPointer) throws(FormatError) {
        let size = file.count
        guard size >= Self.headerBytes else {
            throw .badBlobStore(reason: "the file has \(size) bytes, fewer than the \(Self.headerBytes)-byte header")
        }
        func header(at offset: Int) -> (magic: UInt32, count: UInt32, fileBytes: UInt64) {
            (UInt32(littleEndian: file.loadUnaligned(fromByteOffset: offset, as: UInt32.self)),
             UInt32(littleEndian: file.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)),
             UInt64(littleEndian: file.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
        }
        let front = header(at: 0)
        let layout: Layout, count: Int, fileBytes: UInt64, directoryOffset: Int, firstBlob: Int, blobsEnd: Int
        if front.magic == Self.magic && front.count > 0 {
            layout = .v1
            guard front.count <= Self.maxBlobs else {
                throw .badBlobStore(reason: "the header lists \(front.count) blobs, more than the \(Self.maxBlobs) gemma.cpp accepts")
            }
            count = Int(front.count)
            fileBytes = front.fileBytes
            directoryOffset = Self.headerBytes
            firstBlob = Self.roundUp(Self.headerBytes + 2 * Self.keyBytes * count, Self.blobAlign)
            blobsEnd = size
        } else {
            // V2 (or not a BlobStore at all): the real header is the last 16 bytes.
            let back = header(at: size - Self.headerBytes)
            guard back.magic == Self.magic else {
                throw .badBlobStore(reason: "magic is 0x\(String(front.magic, radix: 16)) at the start and 0x\(String(back.magic, radix: 16)) at the end, but a BlobStore has 0x\(String(Self.magic, radix: 16)) (\"SBS\\n\")")
            }
            guard front.magic == Self.magic else {
                throw .badBlobStore(reason: "the header at the end is a V2 header but the file does not start with the magic 0x\(String(Self.magic, radix: 16))")
            }
            layout = .v2
            guard back.count > 0 else { throw .badBlobStore(reason: "the header lists no blobs") }
            guard back.count <= Self.maxBlobs else {
                throw .badBlobStore(reason: "the header lists \(back.count) blobs, more than the \(Self.maxBlobs) gemma.cpp accepts")
            }
            count = Int(back.count)
            fileBytes = back.fileBytes
            let tail = Self.headerBytes + 2 * Self.keyBytes * count
            guard tail + Self.blobAlign <= size else {
                throw .truncated(field: "V2 directory of \(count) blobs", offset: 0, needed: tail + Self.blobAlign, remaining: size)
            }
            directoryOffset = size - tail
            firstBlob = Self.blobAlign
            blobsEnd = directoryOffset
        }
        guard fileBytes == UInt64(size) else {
            throw .badBlobStore(reason: "the header says the file has \(fileBytes) bytes but it has \(size) (truncated or extended?)")
        }
        let directoryBytes = 2 * Self.keyBytes * count
        guard directoryOffset + directoryBytes <= size, firstBlob <= blobsEnd else {
            throw .truncated(field: "directory of \(count) blobs and its padding", offset: directoryOffset,
                             needed: max(directoryBytes, firstBlob - directoryOffset), remaining: size - directoryOffset)
        }

        var blobs: [SbsBlob] = []
        var index: [String: Int] = [:]
        blobs.reserveCapacity(count)
        var expected = firstBlob
        for i in 0..<count {
            let keyOffset = directoryOffset + i * Self.keyBytes
            let key = UnsafeRawBufferPointer(rebasing: file[keyOffset..<keyOffset + Self.keyBytes])
            let name = try Self.name(ofKey: key, index: i)
            let rangeOffset = directoryOffset + (count + i) * Self.keyBytes
            let offset = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: rangeOffset, as: UInt64.self))
            let bytes = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: rangeOffset + 8, as: UInt64.self))
            guard bytes > 0 else { throw .badBlobStore(reason: "blob \(name) has size 0") }
            guard offset == UInt64(expected) else {
                throw .badBlobStore(reason: "blob \(name) (#\(i)) is at offset \(offset) but blobs lie back to back from \(firstBlob), so it must be at \(expected)")
            }
            guard bytes <= UInt64(blobsEnd - expected) else {
                throw .badBlobStore(reason: "blob \(name) at offset \(offset) has \(bytes) bytes, past the end of the blob area at \(blobsEnd)")
            }
            guard index.updateValue(i, forKey: name) == nil else { throw .duplicate(what: "blob", name: name) }
            blobs.append(SbsBlob(name: name, offset: expected, size: Int(bytes)))
            expected = Self.roundUp(expected + Int(bytes), Self.blobAlign)
        }
        guard expected <= blobsEnd else {
            throw .badBlobStore(reason: "the last blob's padding ends at \(expected), past the end of the blob area at \(blobsEnd)")
        }
        self.layout = layout
        self.blobs = blobs
        self.index = index
    }

    /// The blob named `name`, if present.
    public func blob(named name: String) -> SbsBlob? { index[name].map { blobs[$0] } }

    /// A key: up to 16 ASCII bytes, zero-padded (gemma.cpp's `StringFromKey` stops at the first zero).
    static func name(ofKey key: UnsafeRawBufferPointer, index: Int) throws(FormatError) -> String {
        let length = key.firstIndex(of: 0) ?? key.count
        guard length > 0 else { throw .badBlobStore(reason: "blob #\(index) has an empty key") }
        let bytes = key[..<length]
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw .badBlobStore(reason: "blob #\(index) has a key that is not printable ASCII: \(bytes.map { String($0, radix: 16) })")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func roundUp(_ n: Int, _ align: Int) -> Int { (n + align - 1) / align * align }
}
