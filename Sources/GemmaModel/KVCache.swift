// The KV cache of the Gemma 3 report: global layers keep every position; local (sliding-window) layers keep a ring
// of exactly their window, so KV memory at long context is dominated by one layer in six. Storage is f32, f16,
// bf16 or q8_0. The model reads keys and values through `LayerKV`, converting to f32 one position at a time.
import CPUHints
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
    package func round(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
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

    package init(kvDim: Int, storage: KVStorage, slots: Int, isRing: Bool) {
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

    /// Grows a full (non-ring) layer to hold `positions` (doubling, but never past `limit`), keeping what it holds.
    func reserve(_ positions: Int, limit: Int) {
        guard !isRing, positions > slots else { return }
        let newSlots = max(positions, min(slots * 2, limit))
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
    package func write(position p: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
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

    /// The layer's storage as a value: what attention reads per key, without reference counting on the layer
    /// (workers retaining one object per key contend for its count). Valid until the layer next grows.
    @inline(__always) package var view: KVView {
        KVView(keys: keys, values: values, rowBytes: rowBytes, slots: slots, isRing: isRing, kvDim: kvDim, storage: storage)
    }

    /// Position `p`'s key as f32 (see `KVView.key`).
    package func key(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> { view.key(p, scratch: scratch) }

    /// Position `p`'s value as f32 (see `KVView.value`).
    package func value(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> { view.value(p, scratch: scratch) }

    /// The stored rows of a ring's `positions` slots (keys, then values, position by position): what writing those
    /// positions would overwrite. Empty for a full layer (it overwrites nothing).
    func saveRows(_ positions: Range<Int>) -> [UInt8] {
        guard isRing else { return [] }
        precondition(positions.count < slots)
        var out = [UInt8](repeating: 0, count: 2 * positions.count * rowBytes)
        out.withUnsafeMutableBytes { b in
            for (i, p) in positions.enumerated() {
                let s = slot(p)
                (b.baseAddress! + 2 * i * rowBytes).copyMemory(from: keys + s * rowBytes, byteCount: rowBytes)
                (b.baseAddress! + (2 * i + 1) * rowBytes).copyMemory(from: values + s * rowBytes, byteCount: rowBytes)
            }
        }
        return out
    }

    /// Puts back the rows `saveRows(saved)` kept for the positions of `restore` (a part of `saved`).
    func restoreRows(_ restore: Range<Int>, from bytes: [UInt8], saved: Range<Int>) {
        guard isRing else { return }
        bytes.withUnsafeBytes { b in
            for p in restore {
                let i = p - saved.lowerBound, s = slot(p)
                (keys + s * rowBytes).copyMemory(from: b.baseAddress! + 2 * i * rowBytes, byteCount: rowBytes)
                (values + s * rowBytes).copyMemory(from: b.baseAddress! + (2 * i + 1) * rowBytes, byteCount: rowBytes)
            }
        }
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

/// The cache of one sequence: a `LayerKV` per layer, what each stored position holds (its content key), and which
/// forward steps of a prefill wrote them (for exact prefix reuse).
public final class KVCache {
    package let layers: [LayerKV]
    /// Positions the cache may hold (the model's context, or less).
    public let capacity: Int
    /// What each stored position holds, in order (positions 0..<count): a token id or a row of an embedding span.
    public private(set) var keys: [ContentKey] = []
    public var count: Int { keys.count }
    /// The prefill steps (position ranges, in order) that wrote the positions they cover; positions written otherwise
    /// (decode steps, or forward calls outside a `Prefill`) belong to none.
    public private(set) var prefillSteps: [Range<Int>] = []
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
        keys.reserveCapacity(min(self.capacity, 4096))
    }

    /// Bytes of key/value storage held now.
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } }

    /// Grows full-length layers (and the content keys) to hold `positions` (rings never grow). Growth doubles, so
    /// that a decode step, which reserves one more position, allocates nothing on most steps, but stops at the
    /// capacity: a full cache holds what `MemoryPlan` says, never up to twice that.
    public func reserve(_ positions: Int) {
        for l in layers { l.reserve(positions, limit: capacity) }
        if positions > keys.capacity { keys.reserveCapacity(min(max(positions, 2 * keys.capacity), max(positions, capacity))) }
    }

    /// Records that the positions just written by a forward step hold these tokens (called once per step, for the
    /// step's rows in order, after their keys and values are stored).
    func append<C: Collection<Int>>(tokens: C) {
        for t in tokens { keys.append(.token(t)) }
    }

    /// Records that the positions just written hold positions `positions` of `prompt` (token ids, embedding rows).
    func append(_ prompt: Prompt, positions: Range<Int>) {
        var p = 0
        for part in prompt.parts {
            let here = p..<(p + part.count)
            p = here.upperBound
            let mine = here.clamped(to: positions)
            guard !mine.isEmpty else { continue }
            switch part {
            case let .tokens(t): for q in mine { keys.append(.token(t[q - here.lowerBound])) }
            case let .embeddings(e): for q in mine { keys.append(.embedding(digest: e.digest, row: q - here.lowerBound)) }
            }
        }
    }

    /// Marks `step` (the positions a prefill just wrote in one forward step) as written by a prefill.
    func recordPrefillStep(_ step: Range<Int>) {
        precondition(step.upperBound <= count && (prefillSteps.last?.upperBound ?? 0) <= step.lowerBound)
        prefillSteps.append(step)
    }

    /// A speculative step's checkpoint: the ring rows that the next positions will overwrite.
    private var speculation: (positions: Range<Int>, rows: [[UInt8]])? = nil

    /// Before writing up to `k` positions that may be taken back (speculative decoding: k proposed tokens and one
    /// more, verified in one step): keeps the ring rows they will overwrite, so that `rollback(to:)` can return to
    /// any count from here to here + k. `k` must be smaller than the smallest window.
    public func checkpoint(ahead k: Int) {
        let positions = count..<(count + k)
        speculation = (positions, layers.map { $0.saveRows(positions) })
    }

    /// Takes back the positions from `n` on, written since the last `checkpoint(ahead:)` (n at or after the
    /// checkpoint): every ring gets back the rows they overwrote, so the cache is what it was with n positions.
    public func rollback(to n: Int) {
        guard n < count else { speculation = nil; return }
        guard let (saved, rows) = speculation, n >= saved.lowerBound, count <= saved.upperBound else {
            preconditionFailure("rollback(to: \(n)) without a checkpoint covering \(n)..<\(count)")
        }
        for (l, r) in zip(layers, rows) { l.restoreRows(n..<count, from: r, saved: saved) }
        keys.removeLast(count - n)
        while let last = prefillSteps.last, last.upperBound > n { prefillSteps.removeLast() }
        snapshots = snapshots.filter { $0.key <= n }
        speculation = nil
    }

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
        keys.removeLast(count - n)
        while let last = prefillSteps.last, last.upperBound > n { prefillSteps.removeLast() }
        snapshots = snapshots.filter { $0.key <= n }
        return true
    }

    /// How much of `prompt` this cache may keep under `policy` (see `PrefixReuse`); `schedule` is the prompt's
    /// prefill schedule (used by `.exact`).
    public func reusablePrefix(of prompt: Prompt, policy: PrefixReuse, schedule: PrefillSchedule) -> Int {
        switch policy {
        case .exact: exactReusablePrefix(of: prompt, schedule: schedule)
        case .longest: longestReusablePrefix(of: prompt)
        }
    }

    /// The longest prefix of `prompt` that this cache can keep whatever wrote it (decode steps included): the common
    /// content prefix, never ending inside a bidirectional span, cut back to the nearest position the cache can
    /// truncate to. At least one position is always left to process.
    public func longestReusablePrefix(of prompt: Prompt) -> Int {
        var common = commonPrefix(with: prompt)
        for span in prompt.bidirectionalSpans where span.lowerBound < common && common < span.upperBound {
            common = span.lowerBound
        }
        if canTruncate(to: common) { return common }
        return snapshots.keys.filter { n in
            n <= common && !prompt.bidirectionalSpans.contains { $0.lowerBound < n && n < $0.upperBound }
        }.max() ?? 0
    }

    /// The longest prefix of `prompt` whose reuse gives bit for bit what a cold prefill of `prompt` under `schedule`
    /// gives: the largest n (below the prompt's length, within the common content prefix, a position the cache can
    /// truncate to) at which the prompt's own cold schedule has a step boundary and every cold step below n was
    /// written by an identical prefill step. The rest is then processed in exactly the steps (rows, kernels) of a
    /// cold run, and positions written by decode steps (other kernels) are never kept. Holds for any chunk size.
    public func exactReusablePrefix(of prompt: Prompt, schedule: PrefillSchedule) -> Int {
        let common = commonPrefix(with: prompt)
        guard common > 0, let cold = try? schedule.steps(of: prompt) else { return 0 }
        var best = 0, written = prefillSteps.startIndex
        for step in cold {
            guard step.upperBound <= common else { break }
            // The cache's records are ordered and disjoint: skip those that end before this step.
            while written < prefillSteps.endIndex, prefillSteps[written].upperBound <= step.lowerBound { written += 1 }
            guard written < prefillSteps.endIndex, prefillSteps[written] == step else { break }
            if canTruncate(to: step.upperBound) { best = step.upperBound }
        }
        return best
    }

    /// Positions whose content equals the prompt's, from 0, leaving at least one position of the prompt.
    private func commonPrefix(with prompt: Prompt) -> Int {
        let limit = min(count, prompt.count - 1)
        guard limit > 0 else { return 0 }
        var common = 0
        var p = 0
        parts: for part in prompt.parts {
            switch part {
            case let .tokens(t):
                for id in t {
                    guard p < limit, keys[p] == .token(id) else { break parts }
                    p += 1
                    common = p
                }
            case let .embeddings(e):
                for row in 0..<e.count {
                    guard p < limit, keys[p] == .embedding(digest: e.digest, row: row) else { break parts }
                    p += 1
                    common = p
                }
            }
        }
        return common
    }
}

/// Which cached positions a new prompt may keep.
public enum PrefixReuse: Sendable, Equatable {
    /// Only what makes the result bit for bit that of a cold prefill (see `KVCache.exactReusablePrefix`): the
    /// server's rule, so that an answer never depends on what a slot did before.
    case exact
    /// Every position with the same content that the cache can keep, decoded ones included (see
    /// `KVCache.longestReusablePrefix`): a chat's rule, so that only the new turn is prefilled.
    case longest
}

/// One layer's keys and values as raw storage (`LayerKV.view`): conversion of positions to f32 and prefetching.
package struct KVView {
    package let keys, values: UnsafeMutableRawPointer
    let rowBytes, slots: Int
    let isRing: Bool
    let kvDim: Int
    let storage: KVStorage

    @inline(__always) func slot(_ position: Int) -> Int { isRing ? position % slots : position }

    /// Position `p`'s key as f32: a pointer into the cache (f32 storage) or into `scratch` (converted).
    @inline(__always) func key(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        load(keys + slot(p) * rowBytes, 0, kvDim, scratch)
    }

    /// Position `p`'s value as f32, as `key`.
    @inline(__always) func value(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        load(values + slot(p) * rowBytes, 0, kvDim, scratch)
    }

    /// Values `offset ..< offset + count` of position `p`'s key (one KV head), as `key`; for q8_0 storage both must
    /// be multiples of 32 (see `sliceable`).
    @inline(__always) func key(_ p: Int, offset: Int, count: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        load(keys + slot(p) * rowBytes, offset, count, scratch)
    }

    /// Values `offset ..< offset + count` of position `p`'s value, as `key(_:offset:count:scratch:)`.
    @inline(__always) func value(_ p: Int, offset: Int, count: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        load(values + slot(p) * rowBytes, offset, count, scratch)
    }

    /// Asks the CPU to start loading values `offset ..< offset + count` of the key (or value) in `slot` (less than
    /// twice the slot count) into the
    /// caches: streams over the cache cross a page every few positions, where the hardware prefetchers stop.
    @inline(__always) func prefetch(values: Bool, slot: Int, offset: Int, count: Int) {
        let s = slot < slots ? slot : slot - slots  // a slot past the ring's end is its start again
        let row = (values ? self.values : keys) + s * rowBytes + storage.bytes(offset)
        var b = 0, n = storage.bytes(count)
        while b < n {
            cpu_prefetch(row + b)
            b &+= 64
        }
    }

    /// Whether slices of `count` values at multiples of `count` can be read alone (q8_0 blocks are 32 wide).
    func sliceable(_ count: Int) -> Bool { storage != .q8_0 || count % 32 == 0 }

    /// Values `offset ..< offset + n` of a stored row, converted to f32 into `scratch` (f32 storage: in place).
    @inline(__always) private func load(_ row: UnsafeMutableRawPointer, _ offset: Int, _ n: Int,
                                        _ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        switch storage {
        case .f32: return UnsafePointer(row.assumingMemoryBound(to: Float.self) + offset)
        case .f16:
            let s = row.assumingMemoryBound(to: Float16.self) + offset
            for i in 0..<n { scratch[i] = Float(s[i]) }
        case .bf16:
            let s = row.assumingMemoryBound(to: UInt16.self) + offset
            for i in 0..<n { scratch[i] = Float(bitPattern: UInt32(s[i]) << 16) }
        case .q8_0:
            // As TensorType.q8_0.dequantize: each block's f16 scale times its 32 signed bytes.
            var block = UnsafeRawPointer(row) + offset / 32 * 34
            for b in 0..<n / 32 {
                let d = Float(block.loadUnaligned(as: Float16.self))
                let qs = (block + 2).assumingMemoryBound(to: Int8.self), out = scratch + 32 * b
                for i in 0..<32 { out[i] = Float(qs[i]) * d }
                block += 34
            }
        }
        return UnsafePointer(scratch)
    }
}
