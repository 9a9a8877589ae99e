// One forward step over rows from one or several sequences, as the report's decoder layer reads (transformers'
// Gemma3DecoderLayer.forward): embeddings x sqrt(hidden); per layer a sandwich-normed attention block and a
// sandwich-normed GeGLU block, each added to the residual stream; final norm and the tied output head.
// Each step below is a method of its own (Gemma3Model+Steps.swift); attention is Attention.swift.
import GemmaKernels

/// What one sequence appends in a step: token ids, or positions of a prompt (tokens and embedding rows).
enum StepInput {
    case tokens(ArraySlice<Int>)
    case prompt(Prompt, Range<Int>)
}

/// One sequence's share of a forward step: its cache and what it appends.
struct Segment {
    let cache: KVCache
    let input: StepInput

    var count: Int {
        switch input {
        case let .tokens(t): t.count
        case let .prompt(_, r): r.count
        }
    }
}

extension Gemma3Model {
    /// Runs every segment's rows through the model and appends them to its cache. Rows of a segment are
    /// contiguous; the caller has checked capacities, sizes and spans.
    func forwardRows<S: RandomAccessCollection<Segment>>(_ segments: S, workspace w: Workspace) where S.Index == Int {
        let n = plan(segments, w)                        // rows, positions, visible key ends, kernel runs
        embed(segments, w)                               // x = embed(tokens) * sqrt(hidden) | embedding rows
        rows(.ropeAngles, layer: 0, n, w)                // cos, sin of each row's position, per RoPE kind
        w.layerObserver?(-1, UnsafeBufferPointer(start: w.x, count: n * config.hiddenSize))  // tests: the embeddings
        for l in weights.layers.indices {
            // Attention block: x += post_norm(o(attention(rope(q_norm(q)), rope(k_norm(k)), v))), q/k/v of input_norm(x)
            rows(.inputNorm, layer: l, n, w)             // normed = rmsnorm(x) * (offset + input_norm)
            projectQKV(layer: l, w)                      // q, k, v = normed · Wq, Wk, Wv
            rows(.queryKeyNormRoPE, layer: l, n, w)      // q, k = rope(rmsnorm(q)), rope(rmsnorm(k)) per head
            attend(layer: l, rows: n, segments, w)       // attn = softmax(q·kᵀ·scale + mask)·v; keys stored after
            project(weights.layers[l].o, w.attn, into: w.branch, w)  // branch = attn · Wo
            rows(.postAttentionResidual, layer: l, n, w) // x += rmsnorm(branch) * (offset + post_attention_norm)
            // Feed-forward block: x += post_norm(down(gelu_tanh(gate(h)) * up(h))), h = pre_norm(x)
            rows(.preFeedforwardNorm, layer: l, n, w)    // normed = rmsnorm(x) * (offset + pre_feedforward_norm)
            projectGateUp(layer: l, w)                   // gate, up = normed · Wgate, Wup
            rows(.geglu, layer: l, n, w)                 // gate = gelu_tanh(gate) * up
            project(weights.layers[l].down, w.gate, into: w.branch, w)  // branch = gate · Wdown
            rows(.postFeedforwardResidual, layer: l, n, w)  // x += rmsnorm(branch) * (offset + post_feedforward_norm)
            w.layerObserver?(l, UnsafeBufferPointer(start: w.x, count: n * config.hiddenSize))
        }
        for seg in segments { appendContent(of: seg) }
    }

    /// Final norm and the tied output head for the given rows of the last step, in groups. With `allowGemm` false
    /// each row gets the row kernel whatever the group size (rows of decoded sequences stepped together).
    func emitLogits<R: RandomAccessCollection<Int>>(rows: R, workspace w: Workspace, allowGemm: Bool = true,
                                                    _ body: (Int, UnsafeBufferPointer<Float>) -> Void) where R.Index == Int {
        let h = config.hiddenSize, v = config.vocabSize
        // Small groups go in fours: the four-row kernels read the head once for four rows at little more than one
        // row's cost, where two, three, six or seven rows take slower general paths (a verification step of
        // speculative decoding). A group of two or three is padded with copies of its last row; each row's
        // arithmetic is the same whatever else is in its group, so the logits are unchanged.
        let byFours = precision == .fast && CPUFeatures.avx512 && w.logitGroup >= 4
        var i = 0
        while i < rows.count {
            var g = min(w.logitGroup, rows.count - i)
            if byFours && !(allowGemm && g >= WeightMatrix.gemmMinimumBatch) && g > 4 { g = 4 }
            for j in 0..<g {  // normed[j] = rmsnorm(x[row]) * (offset + final_norm)
                rmsNorm(w.x + rows[i + j] * h, weight: weights.finalNorm, offset: weights.normOffset, eps: config.rmsNormEps,
                        count: h, into: w.normed + j * h)
            }
            let run = byFours && (g == 2 || g == 3) ? 4 : g
            for j in g..<run { (w.normed + j * h).update(from: w.normed + (g - 1) * h, count: h) }
            // logits[j] = normed[j] · embeddingᵀ
            weights.embedding.multiply(w.normed, xStride: h, batch: run, into: w.logits, yStride: v, precision: precision,
                                       allowGemm: allowGemm, pool: pool, scratch: w.matmul)
            for j in 0..<g { body(rows[i + j], UnsafeBufferPointer(start: w.logits + j * v, count: v)) }
            i += g
        }
    }
}
