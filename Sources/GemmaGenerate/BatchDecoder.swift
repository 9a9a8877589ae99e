// The batched decode step of continuous batching, for a scheduler that steps several generations together (the
// server): it owns the step's workspace; the scheduler only decides which sequences take part.
import GemmaModel

/// Decode steps for several sequences at once (continuous batching): every sequence's next token goes through the
/// model in one forward step, each weight matrix read once for all of them, and each sequence gets bit for bit the
/// logits it would get alone (decode rows take the same kernels whatever they are batched with). Owns the step's
/// workspace; used by one thread at a time.
public final class BatchDecoder {
    public let model: Gemma3Model
    /// Sequences one step takes at most.
    public let maxSequences: Int
    private let workspace: Workspace

    /// Rows one step takes at most (sequences times the tokens each may run).
    public let maxRows: Int

    /// A decoder for up to `maxSequences` sequences whose caches hold up to `maxContext` positions, each running
    /// up to `rowsPerSequence` tokens a step (1 + the draft length with speculative decoding).
    public init(model: Gemma3Model, maxSequences: Int, maxContext: Int, rowsPerSequence: Int = 1) {
        self.model = model
        self.maxSequences = max(1, maxSequences)
        maxRows = self.maxSequences * max(1, rowsPerSequence)
        workspace = model.makeWorkspace(maxRows: maxRows, maxContext: maxContext)
    }

    /// Runs `batch[i].token` at the next position of `batch[i].state` for every i in one step, and hands
    /// `body(i, logits)` each sequence's logits (valid during the call).
    public func step(_ batch: [(state: Gemma3State, token: Int)],
                     _ body: (Int, UnsafeBufferPointer<Float>) -> Void) throws(ModelError) {
        try model.forward(batch: batch.map { ($0.state, [$0.token]) }, workspace: workspace, body)
    }

    /// Runs `batch[i].tokens` at the next positions of `batch[i].state` for every i in one step (at most
    /// `maxRows` tokens in all), and hands `body(i, row, logits)` the logits of every row of each sequence, in order
    /// (valid during the call): a verification step of speculative decoding, each row's logits those of running its
    /// token alone.
    public func step(rows batch: [(state: Gemma3State, tokens: [Int])],
                     _ body: (Int, Int, UnsafeBufferPointer<Float>) -> Void) throws(ModelError) {
        try model.forward(batch: batch, workspace: workspace, allRows: true, body)
    }
}
