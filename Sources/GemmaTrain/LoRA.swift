// LoRA (Hu et al. 2021) as PEFT defines it: for each target projection W [out, in] of each layer, A [rank, in] and
// B [out, rank] with y = x Wᵀ + (alpha / rank) (x Aᵀ) Bᵀ; A starts uniform in ±1/sqrt(in) (PEFT's Kaiming-uniform
// with a = sqrt(5)), B at zero, so training starts from the base model. Only A and B are trained; the base stays
// as loaded. The adapters live in one flat vector, like the model's parameters.
import Dispatch
import Foundation
import GemmaFormats
import GemmaGenerate
import GemmaModel

public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    /// The projections adapted (PEFT's target_modules): q, k, v, o, gate, up, down by default.
    public var targets: [Gemma3Weight.Layer]
    /// PEFT's lora_dropout: while training, each adapter's input is dropped element-wise with this probability (the
    /// kept ones scaled by 1 / (1 - dropout)) before its A; the base projection sees the whole input. 0: none.
    public var dropout: Float

    public init(rank: Int, alpha: Float? = nil, targets: [Gemma3Weight.Layer] = [.q, .k, .v, .o, .gate, .up, .down],
                dropout: Float = 0) {
        self.rank = max(1, rank)
        self.alpha = alpha ?? Float(2 * max(1, rank))
        self.targets = targets
        self.dropout = min(max(dropout, 0), 0.999)
    }

    /// The factor of the adapters' product.
    public var scale: Float { alpha / Float(rank) }
}

/// Where each adapter lies in the flat vector of adapters.
public struct LoRALayout: Sendable {
    public struct Entry: Sendable {
        public let layer: Int
        public let module: Gemma3Weight.Layer
        /// The adapted projection's input and output widths.
        public let inDim: Int, outDim: Int
        /// Offsets of A [rank, inDim] and B [outDim, rank].
        public let a: Int, b: Int
    }

    public let config: LoRAConfig
    public let entries: [Entry]
    public let count: Int
    private let index: [Int: Int]

    public init(model c: Gemma3Config, lora: LoRAConfig) {
        config = lora
        let h = c.hiddenSize, d = c.headDim, f = c.intermediateSize
        let qDim = c.numAttentionHeads * d, kvDim = c.numKeyValueHeads * d
        var entries: [Entry] = [], offset = 0, index: [Int: Int] = [:]
        for l in 0..<c.numHiddenLayers {
            for module in Gemma3Weight.Layer.allCases where lora.targets.contains(module) {
                let (inDim, outDim): (Int, Int) = switch module {
                case .q: (h, qDim)
                case .k, .v: (h, kvDim)
                case .o: (qDim, h)
                case .gate, .up: (h, f)
                case .down: (f, h)
                default: (0, 0)
                }
                guard inDim > 0 else { continue }  // norms are not adapted
                index[Self.key(l, module)] = entries.count
                entries.append(Entry(layer: l, module: module, inDim: inDim, outDim: outDim, a: offset, b: offset + lora.rank * inDim))
                offset += lora.rank * (inDim + outDim)
            }
        }
        self.entries = entries
        self.index = index
        count = offset
    }

    static func key(_ l: Int, _ m: Gemma3Weight.Layer) -> Int { l * 32 + Gemma3Weight.Layer.allCases.firstIndex(of: m)! }

    /// The adapter of a layer's projection, if it has one.
    public func entry(_ l: Int, _ m: Gemma3Weight.Layer) -> Entry? { index[Self.key(l, m)].map { entries[$0] } }

    /// A dropout mask: `count` values, 0 with the given probability, else 1 / (1 - probability); the stream of
    /// (seed, layer, module), so the backward pass draws the forward pass's mask again instead of keeping it.
    public static func dropoutMask(seed: UInt64, layer: Int, module: Gemma3Weight.Layer, count: Int, probability p: Float) -> [Float] {
        var rng = SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(key(layer, module)))
        let keep = 1 / (1 - p), threshold = UInt64(Double(p) * 0x1p32)
        return (0..<count).map { _ in rng.next() >> 32 < threshold ? 0 : keep }
    }

    /// Fresh adapters: A uniform in ±1/sqrt(in) from a seeded stream, B zero.
    public func initialAdapters(seed: UInt64) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        var rng = SeededGenerator(seed: seed)
        for e in entries {
            let bound = 1 / Float(e.inDim).squareRoot()
            for i in 0..<(config.rank * e.inDim) { out[e.a + i] = (2 * Float(rng.unit()) - 1) * bound }
        }
        return out
    }

    /// The base parameters with every adapter merged in: W += scale B A (the matrices spread over `threads`).
    public func merged(_ parameters: [Float], layout: ParameterLayout, adapters: [Float], threads: Int = 1) -> [Float] {
        var p = parameters
        merge(into: &p, layout: layout, adapters: adapters, threads: threads)
        return p
    }

    /// `merged` in place.
    public func merge(into p: inout [Float], layout: ParameterLayout, adapters: [Float], threads: Int = 1) {
        let workers = max(1, min(threads, entries.count))
        p.withUnsafeMutableBufferPointer { pp in
            adapters.withUnsafeBufferPointer { ap in
                let w = PointerBox(pp.baseAddress!), a = PointerBox(UnsafeMutablePointer(mutating: ap.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: workers) { t in
                    for (j, e) in entries.enumerated() where j % workers == t {
                        merge(e, into: w.pointer + layout.offset(.layer(e.layer, e.module)), adapters: a.pointer)
                    }
                }
            }
        }
    }

    /// One adapter merged into its matrix ([outDim, inDim] at `w`): W += scale B A, row by row, rank by rank.
    public func merge(_ e: Entry, into w: UnsafeMutablePointer<Float>, adapters: UnsafePointer<Float>) {
        let r = config.rank, s = config.scale
        for o in 0..<e.outDim {
            for k in 0..<r {
                let bv = s * adapters[e.b + o * r + k]
                if bv == 0 { continue }
                let row = w + o * e.inDim, av = adapters + e.a + k * e.inDim
                for i in 0..<e.inDim { row[i] += bv * av[i] }
            }
        }
    }
}

extension LoRALayout {
    /// Hugging Face's module name of a projection.
    static func moduleName(_ m: Gemma3Weight.Layer) -> String {
        switch m {
        case .q: "self_attn.q_proj"
        case .k: "self_attn.k_proj"
        case .v: "self_attn.v_proj"
        case .o: "self_attn.o_proj"
        case .gate: "mlp.gate_proj"
        case .up: "mlp.up_proj"
        default: "mlp.down_proj"
        }
    }

    /// Writes `adapters` as a PEFT adapter folder: adapter_model.safetensors (f32 tensors named
    /// base_model.model.model.layers.N.<module>.lora_A.weight / lora_B.weight) and adapter_config.json, which
    /// `PeftModel.from_pretrained(base, folder)` loads onto the base model.
    public func writePEFT(_ adapters: [Float], to folder: String, baseModel: String) throws(TrainError) {
        var writer = SafetensorsWriter()
        writer.setMetadata("pt", forKey: "format")
        let r = config.rank
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for e in entries {
                let name = "base_model.model.model.layers.\(e.layer).\(Self.moduleName(e.module))"
                let a = adapters[e.a..<(e.a + r * e.inDim)].withUnsafeBytes { [UInt8]($0) }
                let b = adapters[e.b..<(e.b + e.outDim * r)].withUnsafeBytes { [UInt8]($0) }
                try writer.addTensor(name: name + ".lora_A.weight", dtype: .F32, shape: [r, e.inDim], data: a)
                try writer.addTensor(name: name + ".lora_B.weight", dtype: .F32, shape: [e.outDim, r], data: b)
            }
            try writer.write(to: folder + "/adapter_model.safetensors")
            let targets = config.targets.map { "\"\(Self.moduleName($0).split(separator: ".").last!)\"" }.joined(separator: ", ")
            let json = """
            {
              "peft_type": "LORA",
              "task_type": "CAUSAL_LM",
              "base_model_name_or_path": "\(baseModel.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))",
              "r": \(r),
              "lora_alpha": \(config.alpha),
              "lora_dropout": \(config.dropout),
              "target_modules": [\(targets)],
              "bias": "none",
              "fan_in_fan_out": false,
              "inference_mode": true
            }

            """
            try Data(json.utf8).write(to: URL(fileURLWithPath: folder + "/adapter_config.json"), options: .atomic)
        } catch { throw .weight("\(folder): \(error)") }
    }
}
