// Activation buffers for forward steps, allocated once: the forward pass itself allocates nothing (a full-length
// cache layer may grow when a sequence outgrows it). Shapes are (rows, width) row-major, one row per token of the
// step, n <= maxRows rows used.
import GemmaKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffers for up to `maxRows` token rows (of one or several sequences) over contexts of up to `maxContext`.
package final class Workspace {
    package let maxRows: Int
    package let maxContext: Int
    /// Rows of the output head computed together. The head reads the whole embedding once per group (its panels
    /// dequantized or unpacked once for all the group's rows), so scoring many positions wants large groups:
    /// groups of 64 instead of 8 read it an eighth as often. Rows a step never uses stay out of memory (calloc).
    let logitGroup: Int
    /// Called with the embeddings (layer -1) and after each layer with its index, with the residual stream x (rows of
    /// the step, hidden wide): for tests that compare hidden states layer by layer. Nil (the default) costs one check
    /// per layer.
    package var layerObserver: ((_ layer: Int, _ x: UnsafeBufferPointer<Float>) -> Void)?

    let x: UnsafeMutablePointer<Float>         // (rows, hidden)   the residual stream
    let normed: UnsafeMutablePointer<Float>    // (rows, hidden)   RMSNorm(x): input of q/k/v, gate/up and the head
    let q: UnsafeMutablePointer<Float>         // (rows, heads * headDim)    queries (QK-normed, rotated)
    let k: UnsafeMutablePointer<Float>         // (rows, kvHeads * headDim)  the step's keys (QK-normed, rotated)
    let v: UnsafeMutablePointer<Float>         // (rows, kvHeads * headDim)  the step's values
    let attn: UnsafeMutablePointer<Float>      // (rows, heads * headDim)    attention output, heads side by side
    let branch: UnsafeMutablePointer<Float>    // (rows, hidden)   a block's output projection (o, down) before its post-norm
    let gate: UnsafeMutablePointer<Float>      // (rows, ffn)      gate(x), then gelu_tanh(gate(x)) * up(x)
    let up: UnsafeMutablePointer<Float>        // (rows, ffn)      up(x)
    let logits: UnsafeMutablePointer<Float>    // (logitGroup, vocab)
    let ropeCos, ropeSin: [UnsafeMutablePointer<Float>]  // per RoPE kind: (rows, headDim / 2)

    /// Per row: position, visible key end, segment; per segment: first row, first position, cache layer.
    let attention: AttentionWorkspace
    /// Runs of consecutive rows that share a kernel policy (GEMM for prompt-sized segments, row kernels otherwise).
    let runRows: UnsafeMutablePointer<Range<Int>>
    let runGemm: UnsafeMutablePointer<Bool>
    var runCount = 0
    let matmul: MatmulScratch
    private let allocations: Allocations

    init(config c: Gemma3Config, maxRows: Int, maxContext: Int, workers: Int, ropeKinds: Int) {
        self.maxRows = max(1, maxRows)
        self.maxContext = max(1, maxContext)
        // The head takes groups of two or three rows as four (Gemma3Model.emitLogits): its rows need room for four.
        let headRows = max(self.maxRows, 4)
        logitGroup = min(headRows, 64)
        let m = Allocations()
        let b = self.maxRows, h = c.hiddenSize, qd = c.numAttentionHeads * c.headDim
        let kvd = c.numKeyValueHeads * c.headDim, f = c.intermediateSize
        x = m.alloc(b * h); normed = m.alloc(headRows * h); q = m.alloc(b * qd); k = m.alloc(b * kvd); v = m.alloc(b * kvd)
        attn = m.alloc(b * qd); branch = m.alloc(b * h); gate = m.alloc(b * f); up = m.alloc(b * f)
        logits = m.alloc(logitGroup * c.vocabSize)
        ropeCos = (0..<ropeKinds).map { _ in m.alloc(b * c.headDim / 2) }
        ropeSin = (0..<ropeKinds).map { _ in m.alloc(b * c.headDim / 2) }
        attention = AttentionWorkspace(Attention(heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                                                 scale: c.queryScale, window: nil),
                                       maxRows: b, maxContext: self.maxContext, workers: workers)
        runRows = m.alloc(b, Range<Int>.self)
        runGemm = m.alloc(b, Bool.self)
        matmul = MatmulScratch(workers: workers, maxCols: max(h, f, qd), maxBatch: headRows)
        allocations = m
    }
}

/// Zeroed buffers freed together. Zeroed by calloc, which leaves fresh pages untouched: rows and logit rows a step
/// never uses (a 64-row prompt workspace decoding one token; 63 of the 64 logit rows) stay out of the resident set,
/// where `initialize(repeating: 0)` made all of it resident at load (~9 MB for `gemma generate`). Every element
/// type used (numbers, Bool, Range<Int>, optional references) has the all-zero bit pattern as its zero value.
final class Allocations {
    private var owned: [UnsafeMutableRawPointer] = []

    func alloc<T>(_ n: Int, _: T.Type = Float.self) -> UnsafeMutablePointer<T> {
        let p = calloc(max(n, 1), MemoryLayout<T>.stride)!
        owned.append(p)
        return p.bindMemory(to: T.self, capacity: max(n, 1))
    }

    deinit { for p in owned { free(p) } }
}
