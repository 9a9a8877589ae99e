// A gemma.cpp .sbs file's tensors under transformers' names and layout (so that they bind as a Hugging Face checkpoint
// does: `TensorNaming.huggingFace(prefix: "model.")`, norms stored as w and applied as 1 + w, the JAX convention
// that gemma.cpp keeps). How gemma.cpp's tensors map (gemma/tensor_info.cc, gemma/weights.cc, gemma/attention.cc):
//   c_embedding [vocab, d]                     -> embed_tokens            c_final_norm -> norm
//   qkv_ein [(H + 2 KV) hd, d]: rows 0..<H hd are q (head-major); then for each KV head h its k (hd rows) and its
//     v (hd rows): the key/value pairs gemma.cpp's attention writes per KV head into its cache   -> q, k, v_proj
//   (or qkv1_w [H hd, d] = q and qkv2_w [2 KV hd, d] = the (k, v) pairs)
//   att_ein [H d, hd] (JAX attn_vec_einsum [H, d, hd] after gemma.cpp's transpose): o_proj row m is the H rows
//     h d + m side by side, as gemma.cpp's `InitAttWeights` builds att_w [d, H hd]      -> o_proj (or att_w as is)
//   gating_ein [2 ff, d]: rows 0..<ff gate, ff..<2 ff up   (or gating1_w, gating2_w)  -> gate_proj, up_proj
//   linear_w [d, ff] -> down_proj;   pre_att_ns, post_att_ns, pre_ff_ns, post_ff_ns, query_norm, key_norm -> the norms
// q, gate and up are row ranges of the file's tensors (no copy); k and v with one KV head too. With several KV heads,
// k and v are gathered into owned memory, as is o_proj from att_ein (a transpose): those regions are not releasable.
// Encodings: f32 and bf16 as stored, SFP with its scale (`WeightEncoding.sfp8(scale:)`); any other type, or a scale
// other than 1 on f32/bf16, has no encoding, so binding names the tensor and its type.
import GemmaFormats

/// An .sbs file's Gemma 3 text tensors, named and laid out as transformers' Gemma3ForCausalLM.
public final class SbsGemmaSource: TensorSource, @unchecked Sendable {  // immutable after init; owns its buffers
    public static let prefix = "model."
    public let file: SbsFile
    public let tensorNames: [String]
    private let tensors: [String: SourceTensor]
    private let buffers: [UnsafeMutableRawBufferPointer]

    /// Maps the tensors of `file` for a model of `config`. Throws when a tensor is missing or has the wrong shape.
    public init(file: SbsFile, config c: Gemma3Config) throws(ModelError) {
        self.file = file
        var tensors: [String: SourceTensor] = [:], names: [String] = [], buffers: [UnsafeMutableRawBufferPointer] = []
        let naming = TensorNaming.huggingFace(prefix: Self.prefix)
        func add(_ w: Gemma3Weight, _ t: SbsTensor, rows: Range<Int>? = nil, shape: [Int], bytes: UnsafeRawBufferPointer? = nil) {
            let name = naming.name(of: w)
            let rowBytes = t.cols * t.type.elementBytes
            let slice = bytes ?? rows.map { UnsafeRawBufferPointer(rebasing: t.bytes[($0.lowerBound * rowBytes)..<($0.upperBound * rowBytes)]) } ?? t.bytes
            tensors[name] = SourceTensor(name: name, encoding: Self.encoding(t), storedType: Self.storedType(t), shape: shape, bytes: slice)
            names.append(name)
        }
        func need(_ name: String, _ rows: Int, _ cols: Int) throws(ModelError) -> SbsTensor {
            guard let t = file.tensor(named: name) else { throw .missingWeight("\(name) (.sbs)") }
            guard t.rows == rows, t.cols == cols else { throw .weightShape(name: name, expected: [rows, cols], found: [t.rows, t.cols]) }
            return t
        }
        /// Gathers row ranges of `t` into an owned buffer (all of the same tensor, so one type and scale).
        func gather(_ t: SbsTensor, _ ranges: [Range<Int>], rowLength: Int? = nil) -> UnsafeRawBufferPointer {
            let rowBytes = t.cols * t.type.elementBytes
            let total = ranges.reduce(0) { $0 + $1.count } * rowBytes
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 64)
            buffers.append(buffer)
            var at = 0
            for r in ranges {
                let n = r.count * rowBytes
                buffer.baseAddress!.advanced(by: at).copyMemory(from: t.bytes.baseAddress! + r.lowerBound * rowBytes, byteCount: n)
                at += n
            }
            return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<total])
        }

        let d = c.hiddenSize, hd = c.headDim, h = c.numAttentionHeads, kv = c.numKeyValueHeads, ff = c.intermediateSize
        add(.embedding, try need("c_embedding", c.vocabSize, d), shape: [c.vocabSize, d])
        add(.finalNorm, try need("c_final_norm", 1, d), shape: [d])
        for l in 0..<c.numHiddenLayers {
            func has(_ base: String) -> Bool { file.tensor(named: "\(base)_\(l)") != nil }
            // q, k, v: one fused tensor, or q and the (k, v) pairs.
            let q: SbsTensor, kvPairs: SbsTensor, kvStart: Int
            if has("qkv1_w") {
                q = try need("qkv1_w_\(l)", h * hd, d)
                kvPairs = try need("qkv2_w_\(l)", 2 * kv * hd, d)
                kvStart = 0
            } else {
                q = try need("qkv_ein_\(l)", (h + 2 * kv) * hd, d)
                kvPairs = q
                kvStart = h * hd
            }
            add(.layer(l, .q), q, rows: 0..<(h * hd), shape: [h * hd, d])
            let kRows = (0..<kv).map { kvStart + 2 * $0 * hd ..< kvStart + (2 * $0 + 1) * hd }
            let vRows = kRows.map { $0.lowerBound + hd ..< $0.upperBound + hd }
            if kv == 1 {
                add(.layer(l, .k), kvPairs, rows: kRows[0], shape: [hd, d])
                add(.layer(l, .v), kvPairs, rows: vRows[0], shape: [hd, d])
            } else {
                add(.layer(l, .k), kvPairs, shape: [kv * hd, d], bytes: gather(kvPairs, kRows))
                add(.layer(l, .v), kvPairs, shape: [kv * hd, d], bytes: gather(kvPairs, vRows))
            }
            // o: att_w as stored, or att_ein transposed into it.
            if has("att_w") {
                add(.layer(l, .o), try need("att_w_\(l)", d, h * hd), shape: [d, h * hd])
            } else {
                let a = try need("att_ein_\(l)", h * d, hd)
                let e = a.type.elementBytes, rowBytes = hd * e
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: d * h * rowBytes, alignment: 64)
                buffers.append(buffer)
                for m in 0..<d {
                    for head in 0..<h {
                        (buffer.baseAddress! + (m * h + head) * rowBytes)
                            .copyMemory(from: a.bytes.baseAddress! + (head * d + m) * rowBytes, byteCount: rowBytes)
                    }
                }
                add(.layer(l, .o), a, shape: [d, h * hd], bytes: UnsafeRawBufferPointer(buffer))
            }
            if has("gating1_w") {
                add(.layer(l, .gate), try need("gating1_w_\(l)", ff, d), shape: [ff, d])
                add(.layer(l, .up), try need("gating2_w_\(l)", ff, d), shape: [ff, d])
            } else {
                let g = try need("gating_ein_\(l)", 2 * ff, d)
                add(.layer(l, .gate), g, rows: 0..<ff, shape: [ff, d])
                add(.layer(l, .up), g, rows: ff..<(2 * ff), shape: [ff, d])
            }
            add(.layer(l, .down), try need("linear_w_\(l)", d, ff), shape: [d, ff])
            for (w, base, n) in [(Gemma3Weight.Layer.inputNorm, "pre_att_ns", d), (.postAttentionNorm, "post_att_ns", d),
                                 (.preFeedforwardNorm, "pre_ff_ns", d), (.postFeedforwardNorm, "post_ff_ns", d),
                                 (.qNorm, "query_norm", hd), (.kNorm, "key_norm", hd)] {
                add(.layer(l, w), try need("\(base)_\(l)", 1, n), shape: [n])
            }
        }
        self.tensors = tensors
        self.tensorNames = names
        self.buffers = buffers
    }

    deinit { for b in buffers { b.deallocate() } }

    public func sourceTensor(named name: String) -> SourceTensor? { tensors[name] }

    public var dataRegions: [TensorDataRegion] {
        [TensorDataRegion(bytes: file.blobArea, releasable: file.storage.isFileMapping)]
            + buffers.map { TensorDataRegion(bytes: UnsafeRawBufferPointer($0), releasable: false) }
    }

    /// The engine's encoding of a stored tensor, or nil when it cannot compute with it.
    static func encoding(_ t: SbsTensor) -> WeightEncoding? {
        switch t.type {
        case .f32 where t.scale == 1: .f32
        case .bf16 where t.scale == 1: .bf16
        case .sfp: .sfp8(scale: t.scale)
        default: nil
        }
    }

    /// The stored type as messages name it.
    static func storedType(_ t: SbsTensor) -> String {
        switch t.type {
        case .sfp: "sfp8 (.sbs, scale \(t.scale))"
        case .nuq: "nuq (gemma.cpp's experimental 4.5-bit type, not supported)"
        case .f32, .bf16: t.scale == 1 ? "\(t.type)" : "\(t.type) with scale \(t.scale) (only SFP tensors take a scale here)"
        default: "\(t.type) (.sbs)"
        }
    }
}
