// Activation buffers for forward steps, allocated once: the forward pass itself allocates nothing (a full-length
// cache layer may grow when a sequence outgrows it).
import GemmaKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffers for up to `maxRows` token rows (of one or several sequences) over contexts of up to `maxContext`.
public final class Workspace {
    public let maxRows: Int
    public let maxContext: Int
    let logitGroup: Int
    let x, xb, q, k, v, attn, gate, up, logits: UnsafeMutablePointer<Float>
    /// Per row: its position, its segment, and the position of its segment's first row.
    let rowPosition, rowSegment, segmentStartRow, segmentFirstPosition, rowFirstJob: UnsafeMutablePointer<Int>
    /// Attention work items: first row, rows, key group, and for single-row items the chunk of query heads (a
    /// decode row's attention over one key group is split by heads across the workers: `headChunks` items).
    let itemRow, itemRows, itemGroup, itemHeadChunk: UnsafeMutablePointer<Int>
    let headChunks: Int
    /// Per segment: its cache's layer being attended (unretained: the step's segments hold the caches).
    let segmentCache: UnsafeMutablePointer<Unmanaged<LayerKV>>
    /// Runs of consecutive rows that share a kernel policy (GEMM for prompt-sized segments, row kernels otherwise).
    let runRows: UnsafeMutablePointer<Range<Int>>
    let runGemm: UnsafeMutablePointer<Bool>
    /// Per worker: 32 keys packed dimension-major for the block attention's micro-kernel.
    let keyPanels: UnsafeMutablePointer<Float>
    /// Per worker: a key group's values in 32-dimension panels, and a row block's attention output.
    let valuePanels, blockOut: UnsafeMutablePointer<Float>
    /// Attention scratch: per worker, scores of a block of rows x heads over a key group, and a converted K/V row;
    /// per (row, key group), softmax partials.
    let scores, kvScratch, partials: UnsafeMutablePointer<Float>
    let scoresHeadStride, scoresStride, partialStride: Int
    let ropeCos, ropeSin: [UnsafeMutablePointer<Float>]
    let matmul: MatmulScratch
    private var owned: [UnsafeMutableRawPointer] = []

    init(config c: Gemma3Config, maxRows: Int, maxContext: Int, workers: Int, ropeKinds: Int) {
        self.maxRows = max(1, maxRows)
        self.maxContext = max(1, maxContext)
        logitGroup = min(self.maxRows, 8)
        let b = self.maxRows, h = c.hiddenSize, heads = c.numAttentionHeads, qd = heads * c.headDim
        let kvd = c.numKeyValueHeads * c.headDim, f = c.intermediateSize
        var owned: [UnsafeMutableRawPointer] = []
        // Zeroed by calloc, which leaves fresh pages untouched: rows and logit rows a step never uses (a 64-row
        // prompt workspace decoding one token; 7 of the 8 logit rows) stay out of the resident set, where
        // `initialize(repeating: 0)` made all of it resident at load (~9 MB for `gemma generate`). Every element type
        // here (numbers, Bool, Range<Int>) has the all-zero bit pattern as its zero value.
        func alloc<T>(_ n: Int, _: T.Type = Float.self) -> UnsafeMutablePointer<T> {
            let p = calloc(max(n, 1), MemoryLayout<T>.stride)!
            owned.append(p)
            return p.bindMemory(to: T.self, capacity: max(n, 1))
        }
        x = alloc(b * h); xb = alloc(b * max(h, qd)); q = alloc(b * qd); k = alloc(b * kvd); v = alloc(b * kvd)
        attn = alloc(b * qd); gate = alloc(b * f); up = alloc(b * f)
        rowPosition = alloc(b, Int.self); rowSegment = alloc(b, Int.self)
        segmentStartRow = alloc(b, Int.self); segmentFirstPosition = alloc(b, Int.self); rowFirstJob = alloc(b + 1, Int.self)
        let group = Gemma3Model.attentionKeyGroup, groupsPerRow = self.maxContext / group + 2
        headChunks = max(1, min(heads, workers))
        let itemCount = b * groupsPerRow * headChunks
        itemRow = alloc(itemCount, Int.self); itemRows = alloc(itemCount, Int.self)
        itemGroup = alloc(itemCount, Int.self); itemHeadChunk = alloc(itemCount, Int.self)
        segmentCache = alloc(b, Unmanaged<LayerKV>.self)  // written before every read
        runRows = alloc(b, Range<Int>.self)
        runGemm = alloc(b, Bool.self)
        scoresHeadStride = group
        scoresStride = Gemma3Model.attentionRowBlock * heads * group
        scores = alloc(workers * scoresStride)
        kvScratch = alloc(workers * kvd)
        keyPanels = alloc(workers * 32 * c.headDim)
        valuePanels = alloc(workers * group * c.headDim)
        blockOut = alloc(workers * Gemma3Model.attentionRowBlock * qd)
        partialStride = 2 * heads + qd
        partials = alloc(b * groupsPerRow * partialStride)
        logits = alloc(logitGroup * c.vocabSize)
        ropeCos = (0..<ropeKinds).map { _ in alloc(b * c.headDim / 2) }
        ropeSin = (0..<ropeKinds).map { _ in alloc(b * c.headDim / 2) }
        matmul = MatmulScratch(workers: workers, maxCols: max(h, f, qd), maxBatch: b)
        self.owned = owned
    }

    deinit { for p in owned { free(p) } }
}
