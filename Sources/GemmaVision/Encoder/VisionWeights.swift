// The SigLIP tower's and the projector's weights bound by name from any tensor source, with shape checks. One table
// (`VisionTensorNaming`) names each weight in every layout: Hugging Face safetensors under the published prefixes
// (vision_tower.vision_model.*, vision_tower.*, model.vision_tower[.vision_model].*; multi_modal_projector.*,
// model.multi_modal_projector.*) and llama.cpp's mmproj GGUF (v.*, mm.*), including old mmproj files whose
// ffn_up / ffn_down hold fc2 / fc1 (detected by shape, as clip.cpp does). Matrices stay in their stored encoding
// (f32, f16, bf16, q8_0, ...) where the file keeps them; vectors, the position table and the projection (transposed,
// see below) are converted to f32 once.
import GemmaFormats
import GemmaKernels

/// A weight of the vision tower or the projector.
public enum VisionWeight: Sendable, Equatable, CustomStringConvertible {
    case patchEmbedding, patchBias, positionEmbedding, postNormWeight, postNormBias
    /// The projector's RMSNorm weight (w in Hugging Face files, 1 + w in mmproj files).
    case softEmbNorm
    /// The projector's [vision hidden, text hidden] matrix, used as x·W.
    case inputProjection
    case layer(Int, Layer)

    public enum Layer: Sendable, CaseIterable {
        case norm1Weight, norm1Bias, q, qBias, k, kBias, v, vBias, o, oBias, norm2Weight, norm2Bias, fc1, fc1Bias, fc2, fc2Bias
    }

    public var description: String { VisionTensorNaming.huggingFace(tower: "vision_tower.vision_model.", projector: "multi_modal_projector.").name(of: self) }
}

/// How a checkpoint names the vision weights.
public enum VisionTensorNaming: Sendable, Equatable {
    /// transformers' SiglipVisionModel under `tower` and Gemma3MultiModalProjector under `projector`.
    case huggingFace(tower: String, projector: String)
    /// llama.cpp's mmproj names. `swappedFFN`: the old converter's files, whose ffn_down holds fc1 and ffn_up fc2.
    case mmproj(swappedFFN: Bool = false)

    /// The prefixes of the published Hugging Face layouts, tried in order.
    public static let towerPrefixes = ["vision_tower.vision_model.", "model.vision_tower.vision_model.", "vision_tower.", "model.vision_tower."]
    public static let projectorPrefixes = ["multi_modal_projector.", "model.multi_modal_projector."]

    public func name(of w: VisionWeight) -> String {
        switch self {
        case let .huggingFace(t, p):
            switch w {
            case .patchEmbedding: return t + "embeddings.patch_embedding.weight"
            case .patchBias: return t + "embeddings.patch_embedding.bias"
            case .positionEmbedding: return t + "embeddings.position_embedding.weight"
            case .postNormWeight: return t + "post_layernorm.weight"
            case .postNormBias: return t + "post_layernorm.bias"
            case .softEmbNorm: return p + "mm_soft_emb_norm.weight"
            case .inputProjection: return p + "mm_input_projection_weight"
            case let .layer(i, l):
                let n: String = switch l {
                case .norm1Weight: "layer_norm1.weight"
                case .norm1Bias: "layer_norm1.bias"
                case .q: "self_attn.q_proj.weight"
                case .qBias: "self_attn.q_proj.bias"
                case .k: "self_attn.k_proj.weight"
                case .kBias: "self_attn.k_proj.bias"
                case .v: "self_attn.v_proj.weight"
                case .vBias: "self_attn.v_proj.bias"
                case .o: "self_attn.out_proj.weight"
                case .oBias: "self_attn.out_proj.bias"
                case .norm2Weight: "layer_norm2.weight"
                case .norm2Bias: "layer_norm2.bias"
                case .fc1: "mlp.fc1.weight"
                case .fc1Bias: "mlp.fc1.bias"
                case .fc2: "mlp.fc2.weight"
                case .fc2Bias: "mlp.fc2.bias"
                }
                return "\(t)encoder.layers.\(i).\(n)"
            }
        case let .mmproj(swapped):
            switch w {
            case .patchEmbedding: return "v.patch_embd.weight"
            case .patchBias: return "v.patch_embd.bias"
            case .positionEmbedding: return "v.position_embd.weight"
            case .postNormWeight: return "v.post_ln.weight"
            case .postNormBias: return "v.post_ln.bias"
            case .softEmbNorm: return "mm.soft_emb_norm.weight"
            case .inputProjection: return "mm.input_projection.weight"
            case let .layer(i, l):
                let up = swapped ? "ffn_down" : "ffn_up", down = swapped ? "ffn_up" : "ffn_down"
                let n: String = switch l {
                case .norm1Weight: "ln1.weight"
                case .norm1Bias: "ln1.bias"
                case .q: "attn_q.weight"
                case .qBias: "attn_q.bias"
                case .k: "attn_k.weight"
                case .kBias: "attn_k.bias"
                case .v: "attn_v.weight"
                case .vBias: "attn_v.bias"
                case .o: "attn_out.weight"
                case .oBias: "attn_out.bias"
                case .norm2Weight: "ln2.weight"
                case .norm2Bias: "ln2.bias"
                case .fc1: up + ".weight"
                case .fc1Bias: up + ".bias"
                case .fc2: down + ".weight"
                case .fc2Bias: down + ".bias"
                }
                return "v.blk.\(i).\(n)"
            }
        }
    }

    /// The Hugging Face layout of `source`: the first tower and projector prefixes that hold the patch embedding and
    /// the projector norm. Nil tower: the checkpoint has no vision tower.
    public static func detectHuggingFace(_ source: any TensorSource) -> (tower: String?, projector: String?) {
        let tower = towerPrefixes.first { source.sourceTensor(named: $0 + "embeddings.patch_embedding.weight") != nil }
        let projector = projectorPrefixes.first { source.sourceTensor(named: $0 + "mm_soft_emb_norm.weight") != nil }
        return (tower, projector)
    }

    /// Whether an mmproj file's layer `layer` stores fc1 as ffn_down (old converter): ffn_down is [intermediate,
    /// hidden] and ffn_up [hidden, intermediate] in PyTorch order (clip.cpp: `ff_down_w->ne[0] == n_embd`).
    /// Ambiguous (hidden == intermediate) or missing tensors: the current names.
    public static func mmprojSwapsFFN(_ source: any TensorSource, layer: Int, config c: SiglipConfig) -> Bool {
        guard c.hiddenSize != c.intermediateSize,
              let down = source.sourceTensor(named: "v.blk.\(layer).ffn_down.weight"),
              let up = source.sourceTensor(named: "v.blk.\(layer).ffn_up.weight") else { return false }
        return down.shape == [c.intermediateSize, c.hiddenSize] && up.shape == [c.hiddenSize, c.intermediateSize]
    }
}

/// One encoder layer's weights. Matrices are (rows = output features) x (cols = input features); vectors point into
/// the weights' f32 store.
package struct SiglipLayerWeights: @unchecked Sendable {  // pointers into storage that VisionWeights keeps alive
    package let norm1Weight, norm1Bias: UnsafePointer<Float>  // (hidden)
    package let q, k, v, o: WeightMatrix                      // (hidden, hidden)
    package let qBias, kBias, vBias, oBias: UnsafePointer<Float>  // (hidden)
    package let norm2Weight, norm2Bias: UnsafePointer<Float>  // (hidden)
    package let fc1: WeightMatrix                             // (intermediate, hidden)
    package let fc1Bias: UnsafePointer<Float>                 // (intermediate)
    package let fc2: WeightMatrix                             // (hidden, intermediate)
    package let fc2Bias: UnsafePointer<Float>                 // (hidden)
}

/// All weights of the vision tower and the projector.
package final class VisionWeights: @unchecked Sendable {  // immutable after init; owns its f32 store
    package let patchEmbedding: WeightMatrix             // (hidden, channels * patch * patch): the conv as a matrix
    package let patchBias: UnsafePointer<Float>          // (hidden)
    package let positionEmbedding: UnsafePointer<Float>  // (patches, hidden)
    package let layers: [SiglipLayerWeights]
    package let postNormWeight, postNormBias: UnsafePointer<Float>  // (hidden)
    /// The projector's RMSNorm multiplier, 1 + w (HF's `1.0 + weight.float()`; mmproj files store it so).
    package let softEmbNorm: UnsafePointer<Float>        // (hidden)
    /// The projection transposed to (text hidden, vision hidden) in f32, so that x·W is the ordinary product W^T·x.
    package let inputProjection: WeightMatrix
    /// The tensors the matrices point into (a mapping), kept alive.
    package let source: any TensorSource
    private let store: UnsafeMutablePointer<Float>

    /// Binds every weight of `source` under `naming` (per-layer names from `naming(layer)` so that an mmproj file's
    /// swapped FFN is decided per layer), checking shapes against `config`. `softEmbNormOffset` is added to the
    /// projector norm weight: 1 for Hugging Face files (w), 0 for mmproj files (1 + w stored).
    package init(source: any TensorSource, naming: (Int?) -> VisionTensorNaming, softEmbNormOffset: Float,
                 config c: Gemma3VisionConfig) throws(VisionEncoderError) {
        let s = c.siglip, h = s.hiddenSize, f = s.intermediateSize, n = s.numPatches, e = c.textHiddenSize
        func named(_ w: VisionWeight) -> String {
            if case let .layer(i, _) = w { return naming(i).name(of: w) }
            return naming(nil).name(of: w)
        }
        func tensor(_ w: VisionWeight, _ shape: [Int]) throws(VisionEncoderError) -> (SourceTensor, WeightEncoding) {
            let name = named(w)
            guard let t = source.sourceTensor(named: name) else { throw .missingWeight(name) }
            guard t.shape == shape else { throw .weightShape(name: name, expected: shape, found: t.shape) }
            let cols = shape.count > 1 ? shape.dropFirst().reduce(1, *) : shape.first ?? 1
            guard let enc = t.encoding, enc.canDequantize, enc.rowBytes(cols) != nil else {
                throw .unsupportedWeightType(name: name, type: t.storedType)
            }
            return (t, enc)
        }
        func matrix(_ w: VisionWeight, _ shape: [Int]) throws(VisionEncoderError) -> WeightMatrix {
            let (t, enc) = try tensor(w, shape)
            return WeightMatrix(encoding: enc, rows: shape[0], cols: shape.dropFirst().reduce(1, *), base: t.bytes.baseAddress!)
        }
        // Every tensor present, of its shape and a usable type, before anything is allocated: the sizes below come
        // from the config, and only tensors that exist in the file may size an allocation.
        var expected: [(VisionWeight, [Int])] = [
            (.patchEmbedding, [h, s.numChannels, s.patchSize, s.patchSize]), (.patchBias, [h]), (.positionEmbedding, [n, h]),
            (.postNormWeight, [h]), (.postNormBias, [h]), (.softEmbNorm, [h]), (.inputProjection, [h, e]),
        ]
        for i in 0..<s.numHiddenLayers {
            for l in VisionWeight.Layer.allCases {
                let shape: [Int] = switch l {
                case .q, .k, .v, .o: [h, h]
                case .fc1: [f, h]
                case .fc2: [h, f]
                case .fc1Bias: [f]
                default: [h]
                }
                expected.append((.layer(i, l), shape))
            }
        }
        for (w, shape) in expected { _ = try tensor(w, shape) }

        // The f32 store: every vector, the position table, the transposed projection.
        let vectorsPerLayer = 9 * h + f
        let total = h + n * h + s.numHiddenLayers * vectorsPerLayer + 2 * h + h + e * h
        let store = UnsafeMutablePointer<Float>.allocate(capacity: total)
        var used = 0
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            defer { used += count }
            return store + used
        }
        /// The tensor of `shape` ([count] or [rows, cols]) in f32, into `out` (default: the store).
        func floats(_ w: VisionWeight, _ shape: [Int], into out: UnsafeMutablePointer<Float>? = nil) throws(VisionEncoderError) -> UnsafeMutablePointer<Float> {
            let (t, enc) = try tensor(w, shape)
            let r = shape.count > 1 ? shape[0] : 1, cols = shape.last ?? 1
            let out = out ?? take(r * cols), rowBytes = enc.rowBytes(cols)!
            for i in 0..<r { enc.dequantizeRow!(t.bytes.baseAddress! + i * rowBytes, cols, out + i * cols) }
            return out
        }
        do {
            patchEmbedding = try matrix(.patchEmbedding, [h, s.numChannels, s.patchSize, s.patchSize])
            patchBias = UnsafePointer(try floats(.patchBias, [h]))
            positionEmbedding = UnsafePointer(try floats(.positionEmbedding, [n, h]))
            var layers: [SiglipLayerWeights] = []
            for i in 0..<s.numHiddenLayers {
                func m(_ l: VisionWeight.Layer, _ r: Int, _ cols: Int) throws(VisionEncoderError) -> WeightMatrix {
                    try matrix(.layer(i, l), [r, cols])
                }
                func v(_ l: VisionWeight.Layer, _ count: Int) throws(VisionEncoderError) -> UnsafePointer<Float> {
                    UnsafePointer(try floats(.layer(i, l), [count]))
                }
                layers.append(SiglipLayerWeights(
                    norm1Weight: try v(.norm1Weight, h), norm1Bias: try v(.norm1Bias, h),
                    q: try m(.q, h, h), k: try m(.k, h, h), v: try m(.v, h, h), o: try m(.o, h, h),
                    qBias: try v(.qBias, h), kBias: try v(.kBias, h), vBias: try v(.vBias, h), oBias: try v(.oBias, h),
                    norm2Weight: try v(.norm2Weight, h), norm2Bias: try v(.norm2Bias, h),
                    fc1: try m(.fc1, f, h), fc1Bias: try v(.fc1Bias, f),
                    fc2: try m(.fc2, h, f), fc2Bias: try v(.fc2Bias, h)))
            }
            self.layers = layers
            postNormWeight = UnsafePointer(try floats(.postNormWeight, [h]))
            postNormBias = UnsafePointer(try floats(.postNormBias, [h]))
            let norm = try floats(.softEmbNorm, [h])
            for i in 0..<h { norm[i] = softEmbNormOffset + norm[i] }
            softEmbNorm = UnsafePointer(norm)
            // x·W with W (hidden, text) row-major: stored transposed as (text, hidden), the layout WeightMatrix
            // multiplies. Small (1152 x 5376 at most), so f32 whatever the file stores.
            let projected = UnsafeMutablePointer<Float>.allocate(capacity: h * e)
            defer { projected.deallocate() }
            _ = try floats(.inputProjection, [h, e], into: projected)
            let transposed = take(e * h)
            for d in 0..<h { for j in 0..<e { transposed[j * h + d] = projected[d * e + j] } }
            inputProjection = WeightMatrix(type: .f32, rows: e, cols: h, base: UnsafeRawPointer(transposed))
        } catch {
            store.deallocate()
            throw error
        }
        self.store = store
        self.source = source
    }

    deinit { store.deallocate() }
}
