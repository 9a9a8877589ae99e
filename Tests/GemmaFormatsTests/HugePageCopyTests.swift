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

/// `.auto` placement: a copy only when huge pages are offered and the weights fit in half of the smaller of the
/// physical memory and the cgroup's limit; the note says why not.
@Suite struct WeightPlacementTests {
    static let gb = 1_000_000_000

    static func decide(_ bytes: Int, ram: Int, limit: (bytes: Int, source: String)?, thp: Bool = true,
                       placement: WeightPlacement = .auto) -> (copy: Bool, note: String?) {
        HugePageCopy.decide(placement: placement, bytes: bytes, hugePagesAvailable: thp, physicalMemory: ram, memoryLimit: limit)
    }

    static func fallback(_ weights: String, _ limit: String, _ source: String) -> String {
        "weights (\(weights) GB) exceed half the memory limit (\(limit) GB, \(source)): reading them from the file mapping"
    }

    @Test func explicitPlacementsAreObeyed() {
        let mapped = Self.decide(1, ram: 64 * Self.gb, limit: nil, placement: .mapped)
        #expect(!mapped.copy)
        #expect(mapped.note == nil)
        let huge = Self.decide(60 * Self.gb, ram: 64 * Self.gb, limit: (Self.gb, "cgroup memory.max"), thp: false,
                               placement: .hugePages)
        #expect(huge.copy)
        #expect(huge.note == nil)
    }

    @Test func autoCopiesWhatFitsInHalfTheMemoryLimit() {
        let gb = Self.gb
        // No cgroup limit: half the RAM.
        let fits = Self.decide(8 * gb, ram: 16 * gb, limit: nil)
        #expect(fits.copy)
        #expect(fits.note == nil)
        let over = Self.decide(8 * gb + 1, ram: 16 * gb, limit: nil)
        #expect(!over.copy)
        #expect(over.note == Self.fallback("8.00", "16.00", "physical memory"))
        // A container limit below the RAM binds (about 7.3 GB of weights in an 8 GB container on a 64 GB host).
        let container = Self.decide(7_300_000_000, ram: 64 * gb, limit: (8 * gb, "cgroup memory.max"))
        #expect(!container.copy)
        #expect(container.note == Self.fallback("7.30", "8.00", "cgroup memory.max"))
        #expect(Self.decide(300_000_000, ram: 64 * gb, limit: (8 * gb, "cgroup memory.max")).copy)
        // A limit above the RAM (cgroup v1's "unlimited" 9223372036854771712) does not bind: the RAM does.
        let v1 = Self.decide(40 * gb, ram: 64 * gb, limit: (9_223_372_036_854_771_712, "cgroup memory.limit_in_bytes"))
        #expect(!v1.copy)
        #expect(v1.note == Self.fallback("40.00", "64.00", "physical memory"))
        // Unknown RAM: the cgroup limit alone; neither known: no copy, and a note.
        #expect(Self.decide(gb, ram: 0, limit: (4 * gb, "cgroup memory.max")).copy)
        let unknown = Self.decide(gb, ram: 0, limit: nil)
        #expect(!unknown.copy)
        #expect(unknown.note != nil)
        // No transparent huge pages: no copy, whatever the memory, and a note.
        let noTHP = Self.decide(1, ram: 64 * gb, limit: nil, thp: false)
        #expect(!noTHP.copy)
        #expect(noTHP.note != nil)
    }

    @Test func cgroupLimitIsTheSmallestOnThePathToTheRoot() {
        func limit(_ selfCgroup: String?, _ files: [String: String]) -> (bytes: Int, source: String)? {
            HugePageCopy.cgroupMemoryLimit(selfCgroup: selfCgroup, read: { files[$0] })
        }
        // cgroup v2 in a container (its own cgroup is the root): "max" is no limit.
        #expect(limit("0::/\n", ["/sys/fs/cgroup/memory.max": "max\n"]) == nil)
        let container = limit("0::/\n", ["/sys/fs/cgroup/memory.max": "8589934592\n"])
        #expect(container?.bytes == 8_589_934_592)
        #expect(container?.source == "cgroup memory.max")
        // v2 on a host: the process's cgroup and its ancestors; the smallest counts.
        let host = limit("0::/user.slice/user-0.slice/session-1.scope\n",
                         ["/sys/fs/cgroup/user.slice/memory.max": "4294967296\n",
                          "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/memory.max": "max\n"])
        #expect(host?.bytes == 4_294_967_296)
        // v1 (or hybrid): the memory hierarchy's limit_in_bytes, "unlimited" being a huge number.
        let v1Text = "9:name=systemd:/\n4:memory:/docker/abc\n0::/\n"
        let v1 = limit(v1Text, ["/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "2147483648\n",
                                "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"])
        #expect(v1?.bytes == 2_147_483_648)
        #expect(v1?.source == "cgroup memory.limit_in_bytes")
        // A container whose cgroup path is not visible inside it: the mount's root file.
        #expect(limit(v1Text, ["/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824"])?.bytes == 1_073_741_824)
        // No /proc/self/cgroup: the root files only; nothing readable: no limit.
        #expect(limit(nil, ["/sys/fs/cgroup/memory.max": "536870912"])?.bytes == 536_870_912)
        #expect(limit(nil, [:]) == nil)
    }
}
