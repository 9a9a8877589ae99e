// Gemma 3 weights bound by stored name, with shape checks. One table holds each weight's GGUF name and its
// Hugging Face safetensors name, so that both formats bind through the same code. Matrices stay in their stored
// format in the memory mapping; only the small norm vectors are copied to f32.
import GemmaFormats
import GemmaKernels

/// A weight's names in each checkpoint format.
struct WeightName: Sendable {
    let gguf: String
    let hf: String
}

/// The naming table (GGUF names per llama.cpp's gemma3 tensor map; HF names per transformers' Gemma3 modules).
enum Gemma3Names {
    static let embedding = WeightName(gguf: "token_embd.weight", hf: "model.embed_tokens.weight")
    static let finalNorm = WeightName(gguf: "output_norm.weight", hf: "model.norm.weight")

    enum Layer: CaseIterable {
        case inputNorm, q, k, v, o, qNorm, kNorm, postAttentionNorm, preFeedforwardNorm, gate, up, down, postFeedforwardNorm

        func name(_ i: Int) -> WeightName {
            let (g, h): (String, String) = switch self {
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
            return WeightName(gguf: "blk.\(i).\(g).weight", hf: "model.layers.\(i).\(h).weight")
        }
    }
}

/// One decoder layer's weights. Matrix shapes are (rows = output features) x (cols = input features).
public struct Gemma3LayerWeights: Sendable {
    public let inputNorm: [Float]            // (hidden)
    public let q: WeightMatrix               // (heads * headDim, hidden)
    public let k: WeightMatrix               // (kvHeads * headDim, hidden)
    public let v: WeightMatrix               // (kvHeads * headDim, hidden)
    public let o: WeightMatrix               // (hidden, heads * headDim)
    public let qNorm: [Float]                // (headDim)
    public let kNorm: [Float]                // (headDim)
    public let postAttentionNorm: [Float]    // (hidden)
    public let preFeedforwardNorm: [Float]   // (hidden)
    public let gate: WeightMatrix            // (intermediate, hidden)
    public let up: WeightMatrix              // (intermediate, hidden)
    public let down: WeightMatrix            // (hidden, intermediate)
    public let postFeedforwardNorm: [Float]  // (hidden)
}

/// All weights of a Gemma 3 text model.
public struct Gemma3Weights: Sendable {
    public let embedding: WeightMatrix       // (vocab, hidden); also the tied output head
    public let finalNorm: [Float]            // (hidden)
    public let layers: [Gemma3LayerWeights]
    /// Added to every norm weight: 0 for GGUF (converters bake Gemma's 1 + w in), 1 for HF checkpoints.
    public let normOffset: Float

    /// Binds the weights of `file` (GGUF names), checking every shape against `config`.
    /// With `copy` (a copy of the file's tensor data section, see `HugePageCopy`), the matrices point into the copy.
    public init(gguf file: GGUFFile, config c: Gemma3Config, copy: HugePageCopy? = nil) throws(ModelError) {
        let dataStart = file.storage.base + file.dataOffset
        // A tensor's bytes: in the copy when there is one (reading the file's pages again would map them back in,
        // with the kernel's fault-around: ~7 MB for the 270M's norm vectors).
        func bytes(_ t: GGUFTensorInfo) -> UnsafeRawPointer {
            let inFile = file.data(for: t).baseAddress!
            return copy.map { $0.base + (inFile - dataStart) } ?? inFile
        }
        func info(_ n: WeightName) throws(ModelError) -> GGUFTensorInfo {
            guard let t = file.tensor(named: n.gguf) else { throw .missingWeight(n.gguf) }
            return t
        }
        func matrix(_ n: WeightName, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
            let t = try info(n)
            guard t.dimensions == [cols, rows] else { throw .weightShape(name: n.gguf, expected: [cols, rows], found: t.dimensions) }
            guard t.type.canDequantize else { throw .unsupportedWeightType(name: n.gguf, type: t.type) }
            return WeightMatrix(type: t.type, rows: rows, cols: cols, base: bytes(t))
        }
        func vector(_ n: WeightName, count: Int) throws(ModelError) -> [Float] {
            let t = try info(n)
            guard t.dimensions == [count] else { throw .weightShape(name: n.gguf, expected: [count], found: t.dimensions) }
            guard t.type.canDequantize else { throw .unsupportedWeightType(name: n.gguf, type: t.type) }
            var out = [Float](repeating: 0, count: count)
            do {
                try out.withUnsafeMutableBufferPointer { (p) throws(FormatError) in
                    try t.type.dequantize(bytes(t), count: count, into: p.baseAddress!)
                }
            } catch { throw .format(error) }
            return out
        }
        let h = c.hiddenSize, d = c.headDim, f = c.intermediateSize
        embedding = try matrix(Gemma3Names.embedding, rows: c.vocabSize, cols: h)
        finalNorm = try vector(Gemma3Names.finalNorm, count: h)
        var layers: [Gemma3LayerWeights] = []
        for i in 0..<c.numHiddenLayers {
            typealias L = Gemma3Names.Layer
            layers.append(Gemma3LayerWeights(
                inputNorm: try vector(L.inputNorm.name(i), count: h),
                q: try matrix(L.q.name(i), rows: c.numAttentionHeads * d, cols: h),
                k: try matrix(L.k.name(i), rows: c.numKeyValueHeads * d, cols: h),
                v: try matrix(L.v.name(i), rows: c.numKeyValueHeads * d, cols: h),
                o: try matrix(L.o.name(i), rows: h, cols: c.numAttentionHeads * d),
                qNorm: try vector(L.qNorm.name(i), count: d),
                kNorm: try vector(L.kNorm.name(i), count: d),
                postAttentionNorm: try vector(L.postAttentionNorm.name(i), count: h),
                preFeedforwardNorm: try vector(L.preFeedforwardNorm.name(i), count: h),
                gate: try matrix(L.gate.name(i), rows: f, cols: h),
                up: try matrix(L.up.name(i), rows: f, cols: h),
                down: try matrix(L.down.name(i), rows: h, cols: f),
                postFeedforwardNorm: try vector(L.postFeedforwardNorm.name(i), count: h)))
        }
        self.layers = layers
        normOffset = 0
    }
}
