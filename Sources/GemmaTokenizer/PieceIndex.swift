// Exact-bytes lookup from a piece to its id: every piece's UTF-8 in one buffer and an open-addressing hash table.
// Keys are bytes, not Swift Strings, because String equality is canonical equivalence ("é" == "e\u{301}") and the
// tokenizer must tell those apart, as llama.cpp's std::string map does.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// All pieces as UTF-8 bytes, with a hash table from bytes to token id.
struct PieceIndex: Sendable {
    /// Every piece's bytes, concatenated in id order.
    let bytes: [UInt8]
    /// `offsets[id] ..< offsets[id + 1]` is piece `id` in `bytes`.
    let offsets: [Int]
    /// Open-addressing table (linear probing) whose count is a power of two. A slot holds `id + 1` in its low 32
    /// bits (0 for empty) and the high 32 bits of the key's hash above them, so that a probe that meets another
    /// piece is rejected without touching `offsets` or `bytes`: most lookups during merging fail, and each memory
    /// access into these multi-megabyte tables is a cache miss.
    let slots: [UInt64]

    init(pieces: [String]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pieces.count * 8)
        var offsets: [Int] = []
        offsets.reserveCapacity(pieces.count + 1)
        offsets.append(0)
        for piece in pieces {
            bytes.append(contentsOf: piece.utf8)
            offsets.append(bytes.count)
        }
        var capacity = 1024
        while capacity < pieces.count * 2 { capacity <<= 1 }
        var slots = [UInt64](repeating: 0, count: capacity)
        let mask = capacity - 1
        bytes.withUnsafeBufferPointer { b in
            offsets.withUnsafeBufferPointer { o in
                slots.withUnsafeMutableBufferPointer { s in
                    for id in 0..<pieces.count {
                        let start = o[id], end = o[id + 1]
                        // Empty pieces are never matched (llama.cpp renames them "[EMPTY_i]").
                        guard end > start else { continue }
                        let key = UnsafeBufferPointer(rebasing: b[start..<end])
                        let hash = Self.hash(key)
                        let tag = hash & 0xFFFF_FFFF_0000_0000
                        var i = Int(truncatingIfNeeded: hash) & mask
                        while s[i] != 0 {
                            let other = Int(s[i] & 0xFFFF_FFFF) - 1
                            // A duplicate piece: the later id wins, as in llama.cpp's token_to_id map.
                            if s[i] & 0xFFFF_FFFF_0000_0000 == tag,
                               Self.equal(key, UnsafeBufferPointer(rebasing: b[o[other]..<o[other + 1]])) { break }
                            i = (i + 1) & mask
                        }
                        s[i] = tag | UInt64(id + 1)
                    }
                }
            }
        }
        self.bytes = bytes
        self.offsets = offsets
        self.slots = slots
    }

    /// The id whose piece is exactly `key`, or nil.
    func id(of key: UnsafeBufferPointer<UInt8>) -> TokenID? {
        withView { view in
            let id = view.lookup(key)
            return id >= 0 ? id : nil
        }
    }

    /// Calls `body` with unsafe views of the tables, for lookups in a hot loop.
    func withView<R>(_ body: (View) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer { b in
            try offsets.withUnsafeBufferPointer { o in
                try slots.withUnsafeBufferPointer { s in
                    try body(View(bytes: b, offsets: o, slots: s))
                }
            }
        }
    }

    /// The tables as unsafe buffers, valid only inside `withView`.
    struct View {
        let bytes: UnsafeBufferPointer<UInt8>
        let offsets: UnsafeBufferPointer<Int>
        let slots: UnsafeBufferPointer<UInt64>

        /// The id whose piece is exactly `key`, or -1.
        @inline(__always)
        func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32 {
            let mask = slots.count - 1
            let hash = PieceIndex.hash(key)
            let tag = hash & 0xFFFF_FFFF_0000_0000
            var i = Int(truncatingIfNeeded: hash) & mask
            while true {
                let slot = slots[i]
                if slot == 0 { return -1 }
                if slot & 0xFFFF_FFFF_0000_0000 == tag {
                    let id = Int(slot & 0xFFFF_FFFF) - 1
                    if PieceIndex.equal(key, piece(id)) { return Int32(truncatingIfNeeded: id) }
                }
                i = (i + 1) & mask
            }
        }

        /// The bytes of piece `id` (which must be in range).
        @inline(__always)
        func piece(_ id: Int) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: bytes[offsets[id]..<offsets[id + 1]])
        }
    }

    /// A hash of the bytes, eight at a time (pieces are short, so this is mostly one or two rounds), mixed so that
    /// the low bits used as the slot index are well spread.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        guard let base = key.baseAddress else { return 0 }
        let raw = UnsafeRawPointer(base)
        var h = UInt64(truncatingIfNeeded: key.count) &* 0x9E37_79B9_7F4A_7C15
        var offset = 0
        while offset + 8 <= key.count {
            h = mix(h ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if offset < key.count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < key.count {
                tail |= UInt64(base[offset]) << shift
                shift += 8
                offset += 1
            }
            h = mix(h ^ tail)
        }
        return h
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var x = x &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 31
        x = x &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 29)
    }

    @inline(__always)
    static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        return memcmp(pa, pb, a.count) == 0
    }
}
