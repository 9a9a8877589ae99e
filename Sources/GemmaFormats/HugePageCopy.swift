// A private copy of a file's tensor data on transparent huge pages. Decoding streams every weight once per token
// (the 270M's 178 MB output head alone runs at the DRAM rate), and a file mapping is made of 4 KB pages: a TLB miss
// every 4 KB and hardware prefetchers that stop at each page boundary. On 2 MB pages the same stream reads faster
// (a 2-vCPU VM, 2 threads summing 178 MB: 29.4-30.6 GB/s on 4 KB pages, 33.5 GB/s on huge pages). The copy is made
// 2 MB at a time and, when the source is a read-only file mapping, each copied piece of it is released at once
// (MADV_DONTNEED), so the resident set never holds both: the file's pages stay in the page cache, shared, but leave
// this process's resident set. Only whole pages inside the source are released (never heap memory, never a byte
// outside the range).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a model's weights live while it runs.
public enum WeightPlacement: String, Sendable, CaseIterable {
    /// Read in place from the file mapping (4 KB pages; the kernel may evict and re-read them under memory pressure).
    case mapped
    /// Copied once at load into private memory on transparent huge pages (faster streaming; not evictable).
    case hugePages
    /// `hugePages` when the kernel offers transparent huge pages (`always` or `madvise`) and the weights take at most
    /// half of the physical memory; otherwise `mapped`.
    case auto
}

/// Read-only bytes copied from a source range into an anonymous mapping advised for transparent huge pages.
public final class HugePageCopy: @unchecked Sendable {  // immutable after init (mapped read-only)
    public let base: UnsafeRawPointer
    public let count: Int
    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int
    static let hugePage = 2 << 20

    /// Whether the kernel's transparent huge pages are available to `madvise` (mode `always` or `madvise`).
    public static var available: Bool {
        #if os(Linux)
        guard let f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), f) != nil else { return false }
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return s.contains("[always]") || s.contains("[madvise]")
        #else
        return false
        #endif
    }

    /// Physical memory in bytes (0 if unknown).
    public static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 0
    }

    /// Copies the bytes `range` of `storage`, releasing the copied pages of the source only when `storage` is a
    /// read-only file mapping (`ByteStorage.isFileMapping`; owned heap bytes are never released).
    public convenience init?(of storage: ByteStorage, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count, "range outside the storage")
        self.init(of: UnsafeRawBufferPointer(rebasing: storage.buffer[range]), releasingSource: storage.isFileMapping)
    }

    /// Copies `source` 2 MB at a time. `releasingSource` is for a source inside a read-only file mapping only (never
    /// heap or other anonymous memory, whose released pages would read back as zeros): each copied piece's whole
    /// pages are dropped from this process (MADV_DONTNEED), rounded inward, so no byte outside `source` is touched.
    /// Nil if the anonymous mapping cannot be made (the caller keeps reading the source).
    public init?(of source: UnsafeRawBufferPointer, releasingSource: Bool) {
        guard let src = source.baseAddress, source.count > 0 else { return nil }
        let huge = Self.hugePage
        let len = (source.count + huge - 1) / huge * huge
        guard let p = mmap(nil, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            return nil
        }
        mapping = p
        mappingBytes = len + huge
        let dst = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: p) + huge - 1) & ~(huge - 1))!
        #if os(Linux)
        _ = madvise(dst, len, MADV_HUGEPAGE)
        #endif
        // Whole pages of the source only (rounded inward): from the first page boundary at or after its start to the
        // last one at or before the end of what has been copied; `released` is where the next release starts.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var released = (Int(bitPattern: src) + page - 1) & ~(page - 1)
        var off = 0
        while off < source.count {
            let n = min(huge, source.count - off)
            (dst + off).copyMemory(from: src + off, byteCount: n)
            off += n
            if releasingSource {
                let end = (Int(bitPattern: src) + off) & ~(page - 1)
                if end > released {
                    _ = madvise(UnsafeMutableRawPointer(bitPattern: released), end - released, MADV_DONTNEED)
                    released = end
                }
            }
        }
        _ = mprotect(dst, len, PROT_READ)
        base = UnsafeRawPointer(dst)
        count = source.count
    }

    deinit { munmap(mapping, mappingBytes) }
}
