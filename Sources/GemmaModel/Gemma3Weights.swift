// Gemma 3 weights bound by name from any tensor source (GGUF; Hugging Face safetensors next), with shape checks.
// One table names each weight in every checkpoint layout (`TensorNaming`), so that all formats bind through the same
// code. Matrices stay in their stored encoding where the source keeps them; only the small norm vectors are
// dequantized to f32.
import GemmaFormats
import GemmaKernels

/// A weight of the Gemma 3 text model.
public enum Gemma3Weight: Sendable, Equatable {
    case embedding, finalNorm
    case layer(Int, Layer)

    public enum Layer: Sendable, CaseIterable {
        case inputNorm, q, k, v, o, qNorm, kNorm, postAttentionNorm, preFeedforwardNorm, gate, up, down, postFeedforwardNorm
    }
}

/// How a checkpoint names its tensors.
public enum TensorNaming: Sendable, Equatable {
    /// llama.cpp's gemma3 tensor map (token_embd.weight, blk.N.attn_q.weight, ...).
    case gguf
    /// transformers' Gemma3 modules under `prefix` ("model." for Gemma3ForCausalLM: model.layers.N.self_attn.q_proj.weight).
    case huggingFace(prefix: String)

    public func name(of w: Gemma3Weight) -> String {
        switch (self, w) {
        case (.gguf, .embedding): return "token_embd.weight"
        case (.gguf, .finalNorm): return "output_norm.weight"
        case let (.huggingFace(p), .embedding): return p + "embed_tokens.weight"
        case let (.huggingFace(p), .finalNorm): return p + "norm.weight"
        case let (_, .layer(i, l)):
            let (g, h): (String, String) = switch l {
            case .inputNorm: ("attn_norm", "input_layernorm")
            case .q: ("attn_q", "self_attn.q_proj")
            case .k: ("attn_k", "self_attn.k_proj")
            case .v: ("attn_v", "self_attn.v_proj")
            case .o: ("attn_output", "self_attn.o_proj")
            case .qNorm: ("attn_q_norm", "self_attn.q_norm")
            case .kNorm: ("attn_k_norm", "self_attn.k_norm")
            case .postAttentionNorm: ("post_attention_norm", "post_attention_layernorm")
            case .preFeedforwardNorm: ("ffn_norm", "pre_feedforward_layernorm")
            case .gate: ("ffn_gate", "mlp.gate_proj")
            case .up: ("ffn_up", "mlp.up_proj")
            case .down: ("ffn_down", "mlp.down_proj")
            case .postFeedforwardNorm: ("post_ffw_norm", "post_feedforward_layernorm")
            }
            if case let .huggingFace(p) = self { return "\(p)layers.\(i).\(h).weight" }
            return "blk.\(i).\(g).weight"
        }
    }
}

/// One decoder layer's weights. Matrix shapes are (rows = output features) x (cols = input features).
package struct Gemma3LayerWeights: Sendable {
    package let inputNorm: [Float]            // (hidden)
    package let q: WeightMatrix               // (heads * headDim, hidden)
    package let k: WeightMatrix               // (kvHeads * headDim, hidden)
    package let v: WeightMatrix               // (kvHeads * headDim, hidden)
    package let o: WeightMatrix               // (hidden, heads * headDim)
    package let qNorm: [Float]                // (headDim)
    package let kNorm: [Float]                // (headDim)
    package let postAttentionNorm: [Float]    // (hidden)
    package let preFeedforwardNorm: [Float]   // (hidden)
    package let gate: WeightMatrix            // (intermediate, hidden)
    package let up: WeightMatrix              // (intermediate, hidden)
    package let down: WeightMatrix            // (hidden, intermediate)
    package let postFeedforwardNorm: [Float]  // (hidden)
}

/// All weights of a Gemma 3 text model.
package struct Gemma3Weights: Sendable {
    package let embedding: WeightMatrix       // (vocab, hidden); also the tied output head
    package let finalNorm: [Float]            // (hidden)
    package let layers: [Gemma3LayerWeights]
    /// Added to every norm weight: 0 for GGUF (converters bake Gemma's 1 + w in), 1 for HF checkpoints.
    package let normOffset: Float

    /// Binds every weight of `source` under `naming`, checking shapes (PyTorch order) against `config`.
    /// `normOffset` is added to every norm weight (0 for GGUF, whose converters bake Gemma's 1 + w in; 1 for HF).
    /// `rebase` maps a tensor's bytes in the source to where the model reads them (a weight copy), if elsewhere.
    package init(source: any TensorSource, naming: TensorNaming, normOffset: Float, config c: Gemma3Config,
                rebase: (UnsafeRawPointer) -> UnsafeRawPointer = { $0 }) throws(ModelError) {
        func tensor(_ w: Gemma3Weight, _ shape: [Int]) throws(ModelError) -> (SourceTensor, WeightEncoding) {
            let name = naming.name(of: w)
            guard let t = source.sourceTensor(named: name) else { throw .missingWeight(name) }
            guard t.shape == shape else { throw .weightShape(name: name, expected: shape, found: t.shape) }
            guard let e = t.encoding, e.canDequantize, e.rowBytes(shape.last ?? 1) != nil else {
                throw .unsupportedWeightType(name: name, type: t.storedType)
            }
            return (t, e)
        }
        func matrix(_ w: Gemma3Weight, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
            let (t, e) = try tensor(w, [rows, cols])
            return WeightMatrix(encoding: e, rows: rows, cols: cols, base: rebase(t.bytes.baseAddress!))
        }
        func vector(_ w: Gemma3Weight, count: Int) throws(ModelError) -> [Float] {
            let (t, e) = try tensor(w, [count])
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { p in e.dequantizeRow?(rebase(t.bytes.baseAddress!), count, p.baseAddress!) }
            return out
        }
        let h = c.hiddenSize, d = c.headDim, f = c.intermediateSize
        embedding = try matrix(.embedding, rows: c.vocabSize, cols: h)
        finalNorm = try vector(.finalNorm, count: h)
        var layers: [Gemma3LayerWeights] = []
        for i in 0..<c.numHiddenLayers {
            func m(_ l: Gemma3Weight.Layer, _ rows: Int, _ cols: Int) throws(ModelError) -> WeightMatrix {
                try matrix(.layer(i, l), rows: rows, cols: cols)
            }
            func v(_ l: Gemma3Weight.Layer, _ count: Int) throws(ModelError) -> [Float] { try vector(.layer(i, l), count: count) }
            layers.append(Gemma3LayerWeights(
                inputNorm: try v(.inputNorm, h),
                q: try m(.q, c.numAttentionHeads * d, h),
                k: try m(.k, c.numKeyValueHeads * d, h),
                v: try m(.v, c.numKeyValueHeads * d, h),
                o: try m(.o, h, c.numAttentionHeads * d),
                qNorm: try v(.qNorm, d),
                kNorm: try v(.kNorm, d),
                postAttentionNorm: try v(.postAttentionNorm, h),
                preFeedforwardNorm: try v(.preFeedforwardNorm, h),
                gate: try m(.gate, f, h),
                up: try m(.up, f, h),
                down: try m(.down, h, f),
                postFeedforwardNorm: try v(.postFeedforwardNorm, h)))
        }
        self.layers = layers
        self.normOffset = normOffset
    }

    private init(embedding: WeightMatrix, finalNorm: [Float], layers: [Gemma3LayerWeights], normOffset: Float) {
        self.embedding = embedding
        self.finalNorm = finalNorm
        self.layers = layers
        self.normOffset = normOffset
    }

    /// Every matrix, the embedding first, then each layer's q, k, v, o, gate, up, down.
    package var matrices: [WeightMatrix] {
        [embedding] + layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }
    }

    /// These weights with every matrix replaced by `f` of it (in the order of `matrices`).
    package func mapMatrices(_ f: (WeightMatrix) -> WeightMatrix) -> Gemma3Weights {
        Gemma3Weights(embedding: f(embedding), finalNorm: finalNorm, layers: layers.map { l in
            Gemma3LayerWeights(inputNorm: l.inputNorm, q: f(l.q), k: f(l.k), v: f(l.v), o: f(l.o), qNorm: l.qNorm, kNorm: l.kNorm,
                               postAttentionNorm: l.postAttentionNorm, preFeedforwardNorm: l.preFeedforwardNorm,
                               gate: f(l.gate), up: f(l.up), down: f(l.down), postFeedforwardNorm: l.postFeedforwardNorm)
        }, normOffset: normOffset)
    }
}
