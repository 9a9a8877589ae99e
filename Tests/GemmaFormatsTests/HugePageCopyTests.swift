// The weights' private copy on huge pages: the same bytes, and the file mapping still readable after its pages were
// released piece by piece.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

@Suite struct HugePageCopyTests {
    @Test(arguments: [1, 4095, 4096, 2 << 20, (5 << 20) + 123])
    func copyHasTheSourceBytes(size: Int) throws {
        var rng = SplitMix64(seed: UInt64(size))
        let bytes = rng.bytes(size + 77)
        let path = NSTemporaryDirectory() + "hugepagecopy-\(size)-\(getpid()).bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let storage = try ByteStorage(mapping: path)
        // An unaligned source range inside the mapping, as a GGUF data section starts at a 32-byte boundary.
        let source = UnsafeRawBufferPointer(rebasing: storage.buffer[77...])
        let copy = try #require(HugePageCopy(of: source, releasingSource: true))
        #expect(copy.count == size)
        #expect(Int(bitPattern: copy.base) % (2 << 20) == 0)
        let copied = UnsafeRawBufferPointer(start: copy.base, count: copy.count)
        #expect(copied.elementsEqual(bytes[77...]))
        // The released file pages come back from the page cache when read again.
        #expect(source.elementsEqual(bytes[77...]))
    }
}

/// What the copy may release: whole pages of a file mapping inside the copied range, never a byte outside it and
/// never heap memory (released heap pages would read back as zeros).
@Suite struct HugePageCopyReleaseTests {
    @Test func heapSourceIsNeverReleased() throws {
        var rng = SplitMix64(seed: 31)
        let bytes = rng.bytes((5 << 20) + 123)
        let storage = ByteStorage(bytes: bytes)
        #expect(!storage.isFileMapping)
        let copy = try #require(HugePageCopy(of: storage, range: 77..<bytes.count))
        #expect(UnsafeRawBufferPointer(start: copy.base, count: copy.count).elementsEqual(bytes[77...]))
        #expect(storage.buffer.elementsEqual(bytes))
    }

    /// A private writable mapping of a file: bytes written into it are private copies, which a release would drop
    /// (they read back from the file), so the test can see exactly which pages were released.
    @Test func releaseStaysInsideTheRangeOfAFileMapping() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var rng = SplitMix64(seed: 32)
        let size = (3 << 20) + 5 * page
        let fileBytes = rng.bytes(size)
        let path = NSTemporaryDirectory() + "hugepagecopy-release-\(getpid()).bin"
        try Data(fileBytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let raw = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0))
        try #require(raw != MAP_FAILED)
        defer { munmap(raw, size) }
        let m = raw.assumingMemoryBound(to: UInt8.self)
        // The range starts and ends inside pages; mark (privately) the bytes just outside it, its first and last
        // bytes (in the partly covered pages, which must be kept) and bytes of whole pages inside it.
        let lower = page + 77, upper = size - 2 * page - 100
        let outside = [lower - 1, upper], edges = [lower, upper - 1]
        let inside = [2 * page, 2 * page + 5, (1 << 20) + 3, upper - upper % page - 1]
        for i in outside + edges + inside { m[i] = ~fileBytes[i] }
        var expected = Array(UnsafeRawBufferPointer(start: raw, count: size))
        let copy = try #require(HugePageCopy(of: UnsafeRawBufferPointer(start: raw + lower, count: upper - lower),
                                             releasingSource: true))
        #expect(UnsafeRawBufferPointer(start: copy.base, count: copy.count).elementsEqual(expected[lower..<upper]))
        for i in outside + edges { #expect(m[i] == ~fileBytes[i], "byte \(i) (outside the released pages) changed") }
        // Whole pages inside the range were released: their private bytes are gone, the file's read back.
        for i in inside { #expect(m[i] == fileBytes[i], "byte \(i) (a whole page inside the range) was not released") }
        for i in inside { expected[i] = fileBytes[i] }
        let differing = (0..<size).filter { m[$0] != expected[$0] }.count
        #expect(differing == 0, "\(differing) bytes of the mapping changed")
    }
}
