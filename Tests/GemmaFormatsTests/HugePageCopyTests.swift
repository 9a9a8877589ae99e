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
