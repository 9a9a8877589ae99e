// The KV cache of the Gemma 3 report: global layers keep every position; local (sliding-window) layers keep a ring
// of exactly their window, so KV memory at long context is dominated by one layer in six. Storage is f32, f16,
// bf16 or q8_0. The model reads keys and values through `LayerKV`, converting to f32 one position at a time.
import GemmaFormats

/// How keys and values are stored.
public enum KVStorage: String, Sendable, CaseIterable {
    case f32, f16, bf16, q8_0

    /// Bytes for `count` values (count a multiple of 32 for q8_0).
    public func bytes(_ count: Int) -> Int {
        switch self {
        case .f32: 4 * count
        case .f16, .bf16: 2 * count
        case .q8_0: count / 32 * 34
        }
    }

    var tensorType: TensorType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        }
    }

    /// Rounds `n` floats in place to what this storage gives back (so that freshly computed keys are used at the
    /// same precision as stored ones, and results do not depend on how a prompt was chunked).
    func round(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .f32: return
        case .f16: for i in 0..<n { x[i] = Float(Float16(x[i])) }
        case .bf16: for i in 0..<n { x[i] = Float(bf16Bits: x[i].bf16Bits) }
        case .q8_0:
            withUnsafeTemporaryAllocation(byteCount: bytes(n), alignment: 16) { tmp in
                try? TensorType.q8_0.quantize(x, count: n, into: tmp.baseAddress!)
                try? TensorType.q8_0.dequantize(tmp.baseAddress!, count: n, into: x)
            }
        }
    }
}

/// One layer's keys and values: `slots` positions of `kvDim` values each, either every position (global layers)
/// or a ring over the last `slots` positions (local layers).
package final class LayerKV {
    package let kvDim: Int
    package let storage: KVStorage
    /// True for a ring: position p lives in slot p % slots.
    package let isRing: Bool
    package private(set) var slots: Int
    private let rowBytes: Int
    private var keys: UnsafeMutableRawPointer
    private var values: UnsafeMutableRawPointer

    init(kvDim: Int, storage: KVStorage, slots: Int, isRing: Bool) {
        precondition(storage != .q8_0 || kvDim % 32 == 0)
        self.kvDim = kvDim
        self.storage = storage
        self.isRing = isRing
        self.slots = max(slots, 1)
        rowBytes = storage.bytes(kvDim)
        keys = .allocate(byteCount: self.slots * rowBytes, alignment: 64)
        values = .allocate(byteCount: self.slots * rowBytes, alignment: 64)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    package var bytes: Int { 2 * slots * rowBytes }

    /// Grows a full (non-ring) layer to hold `positions`, keeping what it holds.
    func reserve(_ positions: Int) {
        guard !isRing, positions > slots else { return }
        let newSlots = max(positions, slots * 2)
        for which in 0..<2 {
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: newSlots * rowBytes, alignment: 64)
            let old = which == 0 ? keys : values
            fresh.copyMemory(from: old, byteCount: slots * rowBytes)
            old.deallocate()
            if which == 0 { keys = fresh } else { values = fresh }
        }
        slots = newSlots
    }

    @inline(__always) func slot(_ position: Int) -> Int { isRing ? position % slots : position }

    /// Stores position `p`'s key and value (f32, `kvDim` each).
    func write(position p: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        let s = slot(p)
        store(key, to: keys + s * rowBytes)
        store(value, to: values + s * rowBytes)
    }

    private func store(_ x: UnsafePointer<Float>, to dst: UnsafeMutableRawPointer) {
        switch storage {
        case .f32: dst.copyMemory(from: x, byteCount: kvDim * 4)
        case .f16:
            let d = dst.assumingMemoryBound(to: Float16.self)
            for i in 0..<kvDim { d[i] = Float16(x[i]) }
        case .bf16:
            let d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<kvDim { d[i] = x[i].bf16Bits }
        case .q8_0: try? TensorType.q8_0.quantize(x, count: kvDim, into: dst)
        }
    }

    /// Position `p`'s key as f32: a pointer into the cache (f32 storage) or into `scratch` (converted).
    @inline(__always) func key(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        load(keys + slot(p) * rowBytes, scratch)
    }

    /// Position `p`'s value as f32, as `key`.
    @inline(__always) func value(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        load(values + slot(p) * rowBytes, scratch)
    }

    @inline(__always) private func load(_ src: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        switch storage {
        case .f32: return UnsafePointer(src.assumingMemoryBound(to: Float.self))
        case .f16:
            let s = src.assumingMemoryBound(to: Float16.self)
            for i in 0..<kvDim { scratch[i] = Float(s[i]) }
        case .bf16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<kvDim { scratch[i] = Float(bitPattern: UInt32(s[i]) << 16) }
        case .q8_0: try? TensorType.q8_0.dequantize(src, count: kvDim, into: scratch)
        }
        return UnsafePointer(scratch)
    }

    /// A copy of the ring's contents (for prefix reuse after the ring has moved on).
    func copyContents() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 2 * slots * rowBytes)
        out.withUnsafeMutableBytes { b in
            b.baseAddress!.copyMemory(from: keys, byteCount: slots * rowBytes)
            (b.baseAddress! + slots * rowBytes).copyMemory(from: values, byteCount: slots * rowBytes)
        }
        return out
    }

    func restoreContents(_ bytes: [UInt8]) {
        precondition(bytes.count == 2 * slots * rowBytes)
        bytes.withUnsafeBytes { b in
            keys.copyMemory(from: b.baseAddress!, byteCount: slots * rowBytes)
            values.copyMemory(from: b.baseAddress! + slots * rowBytes, byteCount: slots * rowBytes)
        }
    }
}

/// The cache of one sequence: a `LayerKV` per layer, the number of positions stored, and the tokens they hold.
public final class KVCache {
    package let layers: [LayerKV]
    /// Positions the cache may hold (the model's context, or less).
    public let capacity: Int
    /// The tokens whose keys and values are stored, in order (positions 0..<count).
    public internal(set) var tokens: [Int] = []
    public var count: Int { tokens.count }
    /// Ring snapshots by position, for reusing a prefix after the rings have moved on.
    private var snapshots: [Int: [[UInt8]]] = [:]

    /// A cache for `config` holding up to `capacity` positions. With `ringLocalLayers`, local layers keep a ring of
    /// exactly their window (the report's design); without, every layer keeps every position.
    public init(config: Gemma3Config, capacity: Int, storage: KVStorage = .f16, ringLocalLayers: Bool = true) {
        self.capacity = min(capacity, config.maxPositionEmbeddings)
        let kvDim = config.numKeyValueHeads * config.headDim
        layers = config.layers.map { a in
            if ringLocalLayers, case let .local(w) = a.kind, w < capacity {
                return LayerKV(kvDim: kvDim, storage: storage, slots: w, isRing: true)
            }
            return LayerKV(kvDim: kvDim, storage: storage, slots: min(capacity, 4096), isRing: false)
        }
    }

    /// Bytes of key/value storage held now.
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } }

    /// Grows full-length layers to hold `positions` (rings never grow).
    public func reserve(_ positions: Int) { for l in layers { l.reserve(positions) } }

    /// Keeps a copy of every ring at the current position, so that `truncate(to:)` can come back here later.
    public func snapshot() {
        if snapshots.count >= Self.maxSnapshots, let oldest = snapshots.keys.min() { snapshots[oldest] = nil }
        snapshots[count] = layers.map { $0.isRing ? $0.copyContents() : [] }
    }

    /// Snapshots kept at most (each is the size of the rings: 7.5 MiB at f16 on 270M).
    static let maxSnapshots = 8

    /// Positions with a snapshot.
    public var snapshotPositions: [Int] { snapshots.keys.sorted() }

    /// Positions that can be kept when cutting back: every position up to a snapshot, or the current count when
    /// no ring has moved past the cut (a ring keeps position p until p + window is written).
    public func canTruncate(to n: Int) -> Bool {
        guard n <= count else { return false }
        // Resuming at n needs positions max(0, n-W+1) ... n-1 of every ring; position j is overwritten once j + W is
        // written, so they are intact while count <= max(W, n + 1).
        if n == 0 || n == count || snapshots[n] != nil { return true }
        guard let w = layers.filter(\.isRing).map(\.slots).min() else { return true }
        return count <= max(w, n + 1)
    }

    /// Cuts the cache back to its first `n` positions. Returns false (and changes nothing) when the rings no
    /// longer hold what position n needs and no snapshot at n exists.
    @discardableResult
    public func truncate(to n: Int) -> Bool {
        guard canTruncate(to: n) else { return false }
        if n < count, let snap = snapshots[n] {
            for (l, bytes) in zip(layers, snap) where l.isRing { l.restoreContents(bytes) }
        }
        tokens.removeLast(count - n)
        snapshots = snapshots.filter { $0.key <= n }
        return true
    }

    /// The longest prefix of `newTokens` that this cache can keep: the common prefix with the stored tokens, cut
    /// back to the nearest position it can truncate to. At least one token is always left to process.
    public func reusablePrefix(of newTokens: [Int]) -> Int {
        var common = 0
        while common < min(count, newTokens.count - 1), tokens[common] == newTokens[common] { common += 1 }
        if canTruncate(to: common) { return common }
        return snapshots.keys.filter { $0 <= common }.max() ?? 0
    }
}
