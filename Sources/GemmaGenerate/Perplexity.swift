// Perplexity by llama-perplexity's method: the token stream is cut into floor(n / ctx) chunks of ctx tokens, the
// first token of each chunk is replaced by BOS, each chunk is evaluated from an empty cache, and only the
// predictions at positions ctx/2 ... ctx-2 are scored. PPL = exp(mean negative log-likelihood).
import Foundation
import GemmaModel

public struct PerplexityResult: Sendable {
    public var ppl: Double
    public var chunks: Int
    public var ctx: Int
    public var scored: Int
    /// Perplexity of each chunk alone.
    public var perChunk: [Double]
    /// llama.cpp's standard error of the PPL estimate.
    public var standardError: Double
}

public enum Perplexity {
    /// Evaluates `tokens` (BOS first, as tokenized). `progress(done, total)` is called after each chunk.
    public static func evaluate(model: Gemma3Model, tokens: [Int], ctx: Int,
                                progress: (Int, Int) -> Void = { _, _ in }) throws(ModelError) -> PerplexityResult {
        guard ctx >= 4, ctx <= model.config.maxPositionEmbeddings else {
            throw .input("ctx \(ctx) must be between 4 and the model's context \(model.config.maxPositionEmbeddings)")
        }
        let chunks = tokens.count / ctx
        guard chunks > 0 else { throw .input("the text has \(tokens.count) tokens, fewer than one chunk of \(ctx)") }
        let first = ctx / 2
        var nlls: [Double] = []
        var perChunk: [Double] = []
        let state = model.makeState(capacity: ctx, maxBatch: min(ctx, 128))
        for c in 0..<chunks {
            var chunk = Array(tokens[c * ctx..<(c + 1) * ctx])
            chunk[0] = model.config.bosTokenId
            state.cache.truncate(to: 0)
            var chunkNLL: [Double] = []
            try model.forward(chunk, state: state, logits: .at(Array(first...(ctx - 2)))) { j, logits in
                var m = -Float.infinity
                for x in logits { m = max(m, x) }
                var s = 0.0
                for x in logits { s += exp(Double(x - m)) }
                chunkNLL.append(Double(m) + log(s) - Double(logits[chunk[j + 1]]))
            }
            nlls += chunkNLL
            perChunk.append(exp(chunkNLL.reduce(0, +) / Double(chunkNLL.count)))
            progress(c + 1, chunks)
        }
        let n = Double(nlls.count)
        let mean = nlls.reduce(0, +) / n
        let meanSq = nlls.reduce(0) { $0 + $1 * $1 } / n
        // llama.cpp: uncertainty of mean NLL = sqrt((<x²> - <x>²) / (n - 1)), propagated to PPL.
        let se = exp(mean) * ((meanSq - mean * mean) / max(n - 1, 1)).squareRoot()
        return PerplexityResult(ppl: exp(mean), chunks: chunks, ctx: ctx, scored: nlls.count, perChunk: perChunk,
                                standardError: se)
    }
}
