// A private copy of a file's tensor data on transparent huge pages. Decoding streams every weight once per token
// (the 270M's 178 MB output head alone runs at the DRAM rate), and a file mapping is made of 4 KB pages: a TLB miss
// every 4 KB and hardware prefetchers that stop at each page boundary. On 2 MB pages the same stream reads faster
// (a 2-vCPU VM, 2 threads summing 178 MB: 29.4-30.6 GB/s on 4 KB pages, 33.5 GB/s on huge pages). The copy is made
// 2 MB at a time and, when the source is a read-only file mapping, each copied piece of it is released at once
// (MADV_DONTNEED), so the resident set never holds both: the file's pages stay in the page cache, shared, but leave
// this process's resident set. Only whole pages inside the source are released (never heap memory, never a byte
// outside the range). Whether to copy at all is `decide(placement:bytes:)`: the copy is not evictable, so it is made
// only when the weights fit in half of the memory this process may use (RAM, or its cgroup's limit).
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
    /// half of the memory limit (the smaller of the physical memory and the cgroup's `memory.max` /
    /// `memory.limit_in_bytes`); otherwise `mapped` (see `HugePageCopy.decide`).
    case auto
}

/// Read-only bytes copied from a source range into an anonymous mapping advised for transparent huge pages.
package final class HugePageCopy: @unchecked Sendable {  // immutable after init (mapped read-only)
    package let base: UnsafeRawPointer
    package let count: Int
    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int
    static let hugePage = 2 << 20

    /// Whether the kernel's transparent huge pages are available to `madvise` (mode `always` or `madvise`).
    package static var available: Bool {
        #if os(Linux)
        guard let s = readText("/sys/kernel/mm/transparent_hugepage/enabled") else { return false }
        return s.contains("[always]") || s.contains("[madvise]")
        #else
        return false
        #endif
    }

    /// Physical memory in bytes (0 if unknown).
    package static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 0
    }

    /// This process's cgroup memory limit, if it has one (see `cgroupMemoryLimit(selfCgroup:read:)`).
    package static var memoryLimit: (bytes: Int, source: String)? {
        #if os(Linux)
        cgroupMemoryLimit(selfCgroup: readText("/proc/self/cgroup"), read: readText)
        #else
        nil
        #endif
    }

    /// Whether to copy `bytes` of weights onto huge pages for `placement`, and for `.auto` a note saying why not when
    /// it falls back to the file mapping. `.auto` copies when the kernel offers transparent huge pages and the
    /// weights take at most half of the memory limit: the physical memory or, if smaller, the cgroup's limit (the
    /// copy cannot be evicted, so in a container it must leave room for everything else).
    package static func decide(placement: WeightPlacement, bytes: Int) -> (copy: Bool, note: String?) {
        switch placement {
        case .mapped: (false, nil)
        case .hugePages: (true, nil)
        case .auto: decide(placement: placement, bytes: bytes, hugePagesAvailable: available,
                           physicalMemory: physicalMemory, memoryLimit: memoryLimit)
        }
    }

    /// `decide(placement:bytes:)` with the machine's facts as parameters (0 physical memory = unknown).
    package static func decide(placement: WeightPlacement, bytes: Int, hugePagesAvailable: Bool, physicalMemory: Int,
                               memoryLimit: (bytes: Int, source: String)?) -> (copy: Bool, note: String?) {
        switch placement {
        case .mapped: return (false, nil)
        case .hugePages: return (true, nil)
        case .auto: break
        }
        guard hugePagesAvailable else {
            return (false, "the kernel offers no transparent huge pages: reading the weights from the file mapping")
        }
        var limit: (bytes: Int, source: String)? = physicalMemory > 0 ? (physicalMemory, "physical memory") : nil
        if let cg = memoryLimit, cg.bytes > 0, cg.bytes < limit?.bytes ?? .max { limit = cg }
        guard let limit else {
            return (false, "the memory size is unknown: reading the weights from the file mapping")
        }
        if bytes > limit.bytes / 2 {
            return (false, "weights (\(gigabytes(bytes)) GB) exceed half the memory limit (\(gigabytes(limit.bytes)) GB, "
                           + "\(limit.source)): reading them from the file mapping")
        }
        return (true, nil)
    }

    /// The memory limit of the cgroup described by `selfCgroup` (the text of /proc/self/cgroup): the smallest
    /// `memory.max` (cgroup v2, "max" = none) or `memory.limit_in_bytes` (v1) from the process's cgroup up to the
    /// root of its hierarchy, read with `read` (a container sees its own cgroup as the root, so the root's files
    /// count too). Nil when no limit is set. `source` names the file kind, e.g. "cgroup memory.max".
    package static func cgroupMemoryLimit(selfCgroup: String?, read: (String) -> String?) -> (bytes: Int, source: String)? {
        // (mount point, path of this process's cgroup in it, limit file) per hierarchy holding the memory controller.
        var places: [(root: String, path: String, file: String)] = []
        for line in (selfCgroup ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                places.append(("/sys/fs/cgroup", String(parts[2]), "memory.max"))
            } else if parts[1].split(separator: ",").contains("memory") {
                places.append(("/sys/fs/cgroup/memory", String(parts[2]), "memory.limit_in_bytes"))
            }
        }
        if places.isEmpty {
            places = [("/sys/fs/cgroup", "/", "memory.max"), ("/sys/fs/cgroup/memory", "/", "memory.limit_in_bytes")]
        }
        var best: (bytes: Int, source: String)?
        for place in places {
            var dir = place.path.split(separator: "/").map(String.init)
            while true {
                let path = place.root + (dir.isEmpty ? "" : "/" + dir.joined(separator: "/")) + "/" + place.file
                if let text = read(path), let bytes = Int(text.trimmingWhitespace), bytes > 0, bytes < best?.bytes ?? .max {
                    best = (bytes, "cgroup " + place.file)
                }
                if dir.isEmpty { break }
                dir.removeLast()
            }
        }
        return best
    }

    /// Copies the bytes `range` of `storage`, releasing the copied pages of the source only when `storage` is a
    /// read-only file mapping (`ByteStorage.isFileMapping`; owned heap bytes are never released).
    package convenience init?(of storage: ByteStorage, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count, "range outside the storage")
        self.init(of: UnsafeRawBufferPointer(rebasing: storage.buffer[range]), releasingSource: storage.isFileMapping)
    }

    /// Copies `source` 2 MB at a time. `releasingSource` is for a source inside a read-only file mapping only (never
    /// heap or other anonymous memory, whose released pages would read back as zeros): each copied piece's whole
    /// pages are dropped from this process (MADV_DONTNEED), rounded inward, so no byte outside `source` is touched.
    /// Nil if the anonymous mapping cannot be made (the caller keeps reading the source).
    package convenience init?(of source: UnsafeRawBufferPointer, releasingSource: Bool) {
        guard let src = source.baseAddress, source.count > 0 else { return nil }
        self.init(count: source.count) { dst in
            Self.copy(source, from: src, to: dst, releasingSource: releasingSource)
        }
    }

    /// `count` bytes of anonymous memory on transparent huge pages, written once by `fill` and then made read-only.
    /// Nil if the mapping cannot be made.
    package init?(count: Int, fill: (UnsafeMutableRawPointer) -> Void) {
        guard count > 0 else { return nil }
        let huge = Self.hugePage
        let len = (count + huge - 1) / huge * huge
        guard let p = mmap(nil, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            return nil
        }
        mapping = p
        mappingBytes = len + huge
        let dst = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: p) + huge - 1) & ~(huge - 1))!
        #if os(Linux)
        _ = madvise(dst, len, MADV_HUGEPAGE)
        #endif
        fill(dst)
        _ = mprotect(dst, len, PROT_READ)
        base = UnsafeRawPointer(dst)
        self.count = count
    }

    private static func copy(_ source: UnsafeRawBufferPointer, from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer,
                             releasingSource: Bool) {
        let huge = hugePage
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
    }

    deinit { munmap(mapping, mappingBytes) }

    /// Lets `body` rewrite `bytes` (inside this copy) in place: their pages are writable during the call only.
    /// For load-time rewrites that keep a tensor's size (the decode kernels' lane order).
    package func rewrite(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeMutableRawPointer) -> Void) {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(p >= base && p + bytes.count <= base + count, "bytes outside the copy")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: p) & ~(page - 1), end = (Int(bitPattern: p) + bytes.count + page - 1) & ~(page - 1)
        let pages = UnsafeMutableRawPointer(bitPattern: start)!
        _ = mprotect(pages, end - start, PROT_READ | PROT_WRITE)
        body(UnsafeMutableRawPointer(mutating: p))
        _ = mprotect(pages, end - start, PROT_READ)
    }

    /// Drops the whole pages inside `bytes` (rounded inward) from this process (MADV_DONTNEED). Only for bytes that
    /// are never read again or that the kernel reads back from a file: a file mapping, or a copy's bytes that nothing
    /// reads any more (they read back as zeros).
    package static func release(_ bytes: UnsafeRawBufferPointer) {
        guard let p = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: p) + page - 1) & ~(page - 1), end = (Int(bitPattern: p) + bytes.count) & ~(page - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) }
    }

    /// A whole small file (sysfs, procfs: their size reads as 0, so read to the end), or nil.
    static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `bytes` in GB (10^9) with two decimals.
    static func gigabytes(_ bytes: Int) -> String {
        let hundredths = (bytes + 5_000_000) / 10_000_000
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}

extension String {
    /// Without leading and trailing spaces and newlines.
    fileprivate var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}
