// The Gemma 3 text transformer, forward pass in f32 activations over memory-mapped quantized weights.
// Follows transformers' Gemma3DecoderLayer.forward (see docs/gemma3-semantics.md): embeddings scaled
// by sqrt(hidden); per layer input norm -> attention (QK-norm before RoPE, GQA, query scale
// query_pre_attn_scalar^-0.5, sliding window that includes the current token on local layers) -> post-attention norm
// -> residual -> pre-FFN norm -> GeGLU (tanh GELU) -> post-FFN norm -> residual; final norm; tied output head.
import Foundation
import GemmaFormats
import GemmaKernels

/// A loaded model: immutable, safe to share between tasks. Per-sequence state lives in `Gemma3State`.
public final class Gemma3Model: Sendable {
    public let config: Gemma3Config
    package let weights: Gemma3Weights
    /// What the model was loaded from: tensor source, naming, norm convention (and the GGUF file, if it is one).
    public let checkpoint: Checkpoint
    /// The weights' copies on huge pages, if any (the matrices point into them).
    let weightCopies: [HugePageCopy]
    /// The arena of Q5_0 matrices widened to Q8_0 at load (`ModelOptions.widenQ5_0`), if any (the lane orders of
    /// `laneOrder` are made in place in `weightCopies`).
    let repacked: HugePageCopy?
    /// Why `.auto` placement kept the weights in the file mapping (e.g. they exceed half the memory limit), else nil.
    public let placementNote: String?
    package let pool: WorkerPool
    /// How small-batch (decode) products treat activations: `.fast` (int16-quantized, default) or `.exact` (f32).
    public var precision: Precision { options.precision }
    /// The choices the model was loaded with (threads, precision, placement, KV storage, embedding scale).
    public let options: ModelOptions
    let attention: [LayerAttention]
    /// Each layer's attention shape (window on local layers).
    let layerAttention: [Attention]
    /// RoPE inverse frequencies per distinct (base, scale), f64, and each layer's index into them.
    let ropeInvFreq: [[Double]]
    let ropeKindOfLayer: [Int]

    /// Opens the checkpoint at `path` and loads it (see `init(checkpoint:options:)`).
    public convenience init(path: String, options: ModelOptions = ModelOptions()) throws(ModelError) {
        try self.init(checkpoint: Checkpoint.open(path: path), options: options)
    }

    /// Loads a GGUF file already parsed, with `config` (see `init(checkpoint:options:)`).
    public convenience init(file: GGUFFile, config: Gemma3Config, options: ModelOptions = ModelOptions()) throws(ModelError) {
        try self.init(checkpoint: Checkpoint(path: "", source: file, config: config, naming: .gguf, normOffset: 0, gguf: file),
                      options: options)
    }

    /// Binds every weight of `checkpoint` with its config (embedding scale from `options`). With `options.placement`
    /// `.auto` the weights are copied onto transparent huge pages when the kernel offers them and they take at most
    /// half the memory (see `WeightPlacement`); the matrices then point into the copy.
    public init(checkpoint: Checkpoint, options: ModelOptions = ModelOptions()) throws(ModelError) {
        var config = checkpoint.config
        config.embeddingScale = options.embeddingScale
        guard config.headDim > 0, config.headDim % 2 == 0, config.numKeyValueHeads > 0,
              config.numAttentionHeads % config.numKeyValueHeads == 0 else {
            throw .config("\(config.numAttentionHeads) heads over \(config.numKeyValueHeads) KV heads of dimension \(config.headDim): heads must be a multiple of KV heads and the head dimension even")
        }
        self.checkpoint = checkpoint
        self.config = config
        self.options = options
        let regions = checkpoint.source.dataRegions
        let total = regions.reduce(0) { $0 + $1.bytes.count }
        let (copy, note) = HugePageCopy.decide(placement: options.placement, bytes: total)
        placementNote = note
        let copies = copy ? regions.map { HugePageCopy(of: $0.bytes, releasingSource: $0.releasable) } : []
        let held = copies.compactMap { $0 }
        weightCopies = held
        // A tensor's bytes: in its region's copy when there is one (reading the file's pages again would map them
        // back in, with the kernel's fault-around: ~7 MB for the 270M's norm vectors).
        let bound = try Gemma3Weights(source: checkpoint.source, naming: checkpoint.naming, normOffset: checkpoint.normOffset,
                                      config: config) { p in
            for (region, c) in zip(regions, copies) {
                guard let c, let base = region.bytes.baseAddress, p >= base, p < base + region.bytes.count else { continue }
                return c.base + (p - base)
            }
            return p
        }
        let lanes = options.laneOrder && options.precision == .fast
        if options.widenQ5_0 || lanes {
            // The bytes that the model no longer reads leave the resident set: in a copy (ours alone) or a file
            // mapping (read again from the file if anyone asks); never heap bytes of a source, which others may read.
            (weights, repacked) = Self.rewrite(bound, widenQ5_0: options.widenQ5_0, laneOrder: lanes, copies: held) { m in
                let bytes = UnsafeRawBufferPointer(start: m.base, count: m.rows * m.rowBytes)
                for c in held where m.base >= c.base && m.base < c.base + c.count {
                    return HugePageCopy.release(bytes)
                }
                for region in regions {
                    if region.releasable, let base = region.bytes.baseAddress, m.base >= base,
                       m.base < base + region.bytes.count { return HugePageCopy.release(bytes) }
                }
            }
        } else {
            (weights, repacked) = (bound, nil)
        }
        pool = WorkerPool.shared(threads: options.threads)
        attention = config.layers
        layerAttention = attention.map { a in
            let window: Int? = if case let .local(w) = a.kind { w } else { nil }
            return Attention(heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads, headDim: config.headDim,
                             scale: config.queryScale, window: window)
        }
        var kinds: [[Double]] = [], keys: [String] = [], ofLayer: [Int] = []
        for a in attention {
            let key = "\(a.ropeBase)/\(a.ropeScale)"
            if let i = keys.firstIndex(of: key) { ofLayer.append(i); continue }
            let half = config.headDim / 2
            kinds.append((0..<half).map { i in
                1 / pow(Double(a.ropeBase), Double(2 * i) / Double(config.headDim)) / Double(a.ropeScale)
            })
            keys.append(key)
            ofLayer.append(kinds.count - 1)
        }
        ropeInvFreq = kinds
        ropeKindOfLayer = ofLayer
    }

    /// Matrices rewritten at load into a faster encoding: Q5_0 as Q8_0 (`widenQ5_0`: lossless, the same scales and
    /// integers, 55% more bytes), and Q5_0 / Q8_0 rows that are whole 128-weight groups in the decode kernels' lane
    /// order (`laneOrder`: the same bytes), which is made in place and only in our `copies` (a matrix read from the
    /// file mapping keeps the file's order). The widened matrices go to one read-only arena on huge pages, and
    /// `release` is called with each original as soon as it is rewritten, so the resident set never holds both forms
    /// of every matrix.
    static func rewrite(_ w: Gemma3Weights, widenQ5_0: Bool, laneOrder: Bool, copies: [HugePageCopy],
                        release: (WeightMatrix) -> Void) -> (Gemma3Weights, HugePageCopy?) {
        guard let q8 = WeightEncoding.of(.q8_0) else { return (w, nil) }
        func target(_ m: WeightMatrix) -> WeightEncoding? {
            guard let t = m.type else { return nil }
            if t == .q5_0 && widenQ5_0 {
                return laneOrder ? WeightEncoding.laneOrder(of: .q8_0, cols: m.cols) ?? q8 : q8
            }
            return laneOrder ? WeightEncoding.laneOrder(of: t, cols: m.cols) : nil
        }
        func copy(holding m: WeightMatrix) -> HugePageCopy? {
            copies.first { m.base >= $0.base && m.base + m.rows * m.rowBytes <= $0.base + $0.count }
        }
        // Each distinct matrix once (the embedding may also be the head): rewritten in place, or its place in the arena.
        enum Place { case inPlace, arena(offset: Int) }
        var placed: [UnsafeRawPointer: (WeightEncoding, Place)] = [:], todo: [(WeightMatrix, WeightEncoding, Int)] = []
        var total = 0
        for m in w.matrices where placed[m.base] == nil {
            guard let e = target(m) else { continue }
            if m.type == e.integerLayout?.blockType {
                // The same bytes in another order: in our copy, where they are. Weights read from the file mapping
                // (`--mmap`, or too large for a copy) keep the file's order rather than move into memory that the
                // kernel cannot evict.
                guard let c = copy(holding: m) else { continue }
                c.rewrite(UnsafeRawBufferPointer(start: m.base, count: m.rows * m.rowBytes)) { p in
                    WeightEncoding.repackLanes(m.type!, m.base, groups: m.rows * m.rowBytes / e.bytesPerBlock, into: p)
                }
                placed[m.base] = (e, .inPlace)
                continue
            }
            placed[m.base] = (e, .arena(offset: total))
            todo.append((m, e, total))
            total += (e.rowBytes(m.cols)! * m.rows + 63) / 64 * 64
        }
        let arena = todo.isEmpty ? nil : HugePageCopy(count: total, fill: { dst in
            for (m, e, offset) in todo {
                let out = dst + offset, blocks = m.rows * m.cols / 32
                switch (m.type, e.integerLayout) {
                case (.q5_0?, .q8_0?): TensorType.repackQ5_0AsQ8_0(m.base, blocks: blocks, into: out)
                case (.q5_0?, .q8_0Lanes?):
                    // Widened, then regrouped in place: each group of 4 blocks (88 bytes) becomes 136.
                    TensorType.repackQ5_0AsQ8_0(m.base, blocks: blocks, into: out)
                    WeightEncoding.repackLanes(.q8_0, out, groups: blocks / 4, into: out)
                default: preconditionFailure("only widened Q5_0 goes to the arena (lane orders are made in place)")
                }
                release(m)
            }
        })
        return (w.mapMatrices { m in
            switch placed[m.base] {
            case let (e, .inPlace)?: return WeightMatrix(encoding: e, rows: m.rows, cols: m.cols, base: m.base)
            case let (e, .arena(offset))?:
                // Without an arena (its mapping failed) the matrix stays as it is: `fill` never ran, nothing was released.
                guard let arena else { return m }
                return WeightMatrix(encoding: e, rows: m.rows, cols: m.cols, base: arena.base + offset)
            case nil: return m  // not rewritten, or left in the file mapping in the file's order
            }
        }, arena)
    }

    /// Fresh per-sequence state with a KV cache for up to `capacity` positions (the model's context at most).
    /// Local layers keep a ring of their window unless `ringLocalLayers` is false. `maxBatch` bounds the rows of
    /// one forward step (longer prompts are processed in chunks of it).
    /// `kvStorage` defaults to the model's `options.kvStorage`.
    public func makeState(capacity: Int, maxBatch: Int = 64, kvStorage: KVStorage? = nil,
                          ringLocalLayers: Bool = true) -> Gemma3State {
        let cache = KVCache(config: config, capacity: capacity, storage: kvStorage ?? options.kvStorage,
                            ringLocalLayers: ringLocalLayers)
        return Gemma3State(cache: cache, workspace: makeWorkspace(maxRows: maxBatch, maxContext: cache.capacity))
    }

    /// Activation buffers for forward steps of up to `maxRows` token rows over contexts of up to `maxContext`.
    /// One workspace can serve many sequences (batched decoding), one step at a time.
    package func makeWorkspace(maxRows: Int, maxContext: Int? = nil) -> Workspace {
        Workspace(config: config, maxRows: maxRows, maxContext: min(maxContext ?? config.maxPositionEmbeddings, config.maxPositionEmbeddings),
                  workers: pool.threads, ropeKinds: ropeInvFreq.count)
    }

    /// Which positions of a forward call need logits.
    public enum Logits: Sendable {
        case none
        case last
        case all
        /// Indices into the tokens of this call.
        case at([Int])
    }

    /// Runs `tokens` through the model at the state's next positions, appending them to its cache, and calls
    /// `body(index, logits)` for each requested position (index into `tokens`; logits valid only during the call).
    public func forward(_ tokens: [Int], state s: Gemma3State, logits: Logits = .last,
                        _ body: (Int, UnsafeBufferPointer<Float>) -> Void = { _, _ in }) throws(ModelError) {
        guard !tokens.isEmpty else { return }
        try check(tokens, s.cache)
        let w = s.workspace
        var start = 0
        switch logits {
        case .none, .last:
            // The decode path: no arrays, so that a generated token allocates nothing.
            while start < tokens.count {
                let n = min(w.maxRows, tokens.count - start)
                forwardRows(CollectionOfOne(Segment(cache: s.cache, input: .tokens(tokens[start..<start + n]))), workspace: w)
                if case .last = logits, start + n == tokens.count {
                    emitLogits(rows: CollectionOfOne(n - 1), workspace: w) { r, logits in body(start + r, logits) }
                }
                start += n
            }
        case .all, .at:
            let wanted: [Int] = if case let .at(list) = logits { list.filter { tokens.indices.contains($0) }.sorted() } else { Array(tokens.indices) }
            var next = wanted.startIndex
            while start < tokens.count {
                let n = min(w.maxRows, tokens.count - start)
                forwardRows(CollectionOfOne(Segment(cache: s.cache, input: .tokens(tokens[start..<start + n]))), workspace: w)
                var rows: [Int] = []
                while next < wanted.endIndex, wanted[next] < start + n { rows.append(wanted[next] - start); next += 1 }
                emitLogits(rows: rows, workspace: w) { r, logits in body(start + r, logits) }
                start += n
            }
        }
    }

    /// Runs `tokens` through the model at the state's next positions, appending them to its cache, and calls
    /// `body(index, hidden)` with each position's final-normed hidden state (`hiddenSize` floats, what the tied head
    /// would multiply; valid only during the call). For embeddings.
    public func forwardHidden(_ tokens: [Int], state s: Gemma3State,
                              _ body: (Int, UnsafeBufferPointer<Float>) -> Void) throws(ModelError) {
        guard !tokens.isEmpty else { return }
        try check(tokens, s.cache)
        let w = s.workspace, h = config.hiddenSize
        var start = 0
        while start < tokens.count {
            let n = min(w.maxRows, tokens.count - start)
            forwardRows(CollectionOfOne(Segment(cache: s.cache, input: .tokens(tokens[start..<start + n]))), workspace: w)
            for r in 0..<n {
                rmsNorm(w.x + r * h, weight: weights.finalNorm, offset: weights.normOffset, eps: config.rmsNormEps,
                        count: h, into: w.normed)
                body(start + r, UnsafeBufferPointer(start: w.normed, count: h))
            }
            start += n
        }
    }

    /// Runs positions `positions` of `prompt` through the model (`positions.lowerBound` must be the cache's count),
    /// appending them to the state's cache, and calls `body(position, logits)` for each requested position (`.at`
    /// takes positions of the prompt). Bidirectional spans must lie wholly inside `positions` and inside one step
    /// of the state's workspace (see `PrefillSchedule`).
    public func forward(_ prompt: Prompt, positions: Range<Int>, state s: Gemma3State, logits: Logits = .last,
                        _ body: (Int, UnsafeBufferPointer<Float>) -> Void = { _, _ in }) throws(ModelError) {
        guard positions.lowerBound == s.cache.count, positions.upperBound <= prompt.count else {
            throw .input("positions \(positions) of a \(prompt.count)-position prompt do not continue a cache of \(s.cache.count)")
        }
        if prompt.isTokensOnly {
            // Token ids only: the token path (no per-step arrays when decoding).
            let ids = Array(prompt.tokenIDs[positions])
            let local: Logits = switch logits {
            case .none, .last, .all: logits
            case let .at(list): .at(list.map { $0 - positions.lowerBound })
            }
            try forward(ids, state: s, logits: local) { i, l in body(positions.lowerBound + i, l) }
            return
        }
        guard !positions.isEmpty else { return }
        // Token ids are checked against the vocabulary; an embedding row's placeholder id need not have a row (llama.cpp's
        // text GGUFs of the 4B-27B drop the image soft token's row, 262144), so its positions count as id 0 here.
        var ids: [Int] = []
        ids.reserveCapacity(positions.count)
        var p = 0
        for part in prompt.parts {
            let lo = max(p, positions.lowerBound), hi = min(p + part.count, positions.upperBound)
            if lo < hi {
                switch part {
                case let .tokens(t): ids += t[(lo - p)..<(hi - p)]
                case .embeddings: ids += repeatElement(0, count: hi - lo)
                }
            }
            p += part.count
        }
        try check(ids, s.cache)
        for part in prompt.parts {
            if case let .embeddings(e) = part, e.rows.count != e.count * config.hiddenSize {
                throw .input("an embedding span has \(e.rows.count) floats for \(e.count) rows, not \(e.count) x hidden \(config.hiddenSize)")
            }
        }
        let w = s.workspace
        for span in prompt.bidirectionalSpans where span.overlaps(positions) {
            guard positions.contains(span.lowerBound), positions.contains(span.upperBound - 1) else {
                throw .input("bidirectional span \(span) is split by the step \(positions)")
            }
            guard span.count <= w.maxRows else {
                throw .input("bidirectional span \(span) of \(span.count) rows exceeds the workspace's \(w.maxRows) rows per step")
            }
        }
        // Steps of at most the workspace's rows, never ending inside a bidirectional span.
        let spans = prompt.bidirectionalSpans
        let wanted: [Int] = switch logits {
        case .none: []
        case .last: [positions.upperBound - 1]
        case .all: Array(positions)
        case let .at(list): list.filter { positions.contains($0) }.sorted()
        }
        var start = positions.lowerBound, next = 0
        while start < positions.upperBound {
            var end = min(positions.upperBound, start + w.maxRows)
            if let cut = spans.first(where: { $0.contains(end - 1) && $0.upperBound > end && $0.lowerBound < end }) {
                end = cut.lowerBound  // > start: every span fits in a step (checked above)
            }
            forwardRows(CollectionOfOne(Segment(cache: s.cache, input: .prompt(prompt, start..<end))), workspace: w)
            var rows: [Int] = []
            while next < wanted.count, wanted[next] < end { rows.append(wanted[next] - start); next += 1 }
            emitLogits(rows: rows, workspace: w) { r, l in body(start + r, l) }
            start = end
        }
    }

    /// One step for several sequences at once: every sequence's new tokens go through the model together (each
    /// weight matrix is read once for all of them), and `body(sequence, logits)` sees each sequence's last-token
    /// logits. The total number of tokens must fit the workspace's rows.
    package func forward(batch: [(state: Gemma3State, tokens: [Int])], workspace w: Workspace,
                        _ body: (Int, UnsafeBufferPointer<Float>) -> Void) throws(ModelError) {
        try forward(batch: batch, workspace: w, allRows: false) { i, _, logits in body(i, logits) }
    }

    /// `forward(batch:workspace:_:)` with `body(sequence, row, logits)`: with `allRows`, the logits of every row of
    /// each sequence (row: index into its tokens), in order; else each sequence's last row. Every row takes the row
    /// kernels (a decode step's), so a sequence of fewer than `WeightMatrix.gemmMinimumBatch` tokens gets, row for
    /// row, the logits of running them one at a time (speculative decoding's verification).
    package func forward(batch: [(state: Gemma3State, tokens: [Int])], workspace w: Workspace, allRows: Bool,
                         _ body: (Int, Int, UnsafeBufferPointer<Float>) -> Void) throws(ModelError) {
        let total = batch.reduce(0) { $0 + $1.tokens.count }
        guard total <= w.maxRows else { throw .input("\(total) tokens exceed the workspace's \(w.maxRows) rows") }
        for (i, item) in batch.enumerated() {
            guard !item.tokens.isEmpty else { throw .input("sequence \(i) has no tokens") }
            guard batch[..<i].allSatisfy({ $0.state !== item.state }) else { throw .input("sequence \(i) appears twice") }
            try check(item.tokens, item.state.cache)
            guard item.state.cache.capacity <= w.maxContext else {
                throw .input("sequence \(i)'s cache (\(item.state.cache.capacity)) exceeds the workspace's context \(w.maxContext)")
            }
        }
        guard total > 0 else { return }
        forwardRows(batch.map { Segment(cache: $0.state.cache, input: .tokens($0.tokens[...])) }, workspace: w)
        var rows: [Int] = []
        var sequenceOfRow = [(Int, Int)](repeating: (-1, 0), count: total)
        var row = 0
        for (i, item) in batch.enumerated() {
            for j in 0..<item.tokens.count {
                sequenceOfRow[row + j] = (i, j)
                if allRows || j == item.tokens.count - 1 { rows.append(row + j) }
            }
            row += item.tokens.count
        }
        emitLogits(rows: rows, workspace: w, allowGemm: false) { r, logits in body(sequenceOfRow[r].0, sequenceOfRow[r].1, logits) }
    }

    private func check(_ tokens: [Int], _ cache: KVCache) throws(ModelError) {
        if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw .input("token id \(bad) is outside the vocabulary of \(config.vocabSize)")
        }
        guard cache.count + tokens.count <= cache.capacity else {
            throw .input("context overflow: \(cache.count) cached + \(tokens.count) new tokens = \(cache.count + tokens.count) positions, but the cache holds \(cache.capacity) (model context \(config.maxPositionEmbeddings))")
        }
        cache.reserve(cache.count + tokens.count)
    }
}

/// The state of one sequence: its KV cache, and a workspace for stepping it alone.
public final class Gemma3State {
    public let cache: KVCache
    package let workspace: Workspace

    init(cache: KVCache, workspace: Workspace) {
        self.cache = cache
        self.workspace = workspace
    }

    /// Positions processed so far.
    public var position: Int { cache.count }
    /// Rows per forward step.
    public var maxBatch: Int { workspace.maxRows }
}
