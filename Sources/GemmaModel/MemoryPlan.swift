// Memory planning: weight bytes and KV-cache bytes of a Gemma 3 model at a context length, for a weight format and
// a KV storage type; and the reproduction of Table 3 of the Gemma 3 Technical Report (arXiv:2503.19786).
// Pure arithmetic over Gemma3Config: nothing is allocated or read.
import GemmaFormats

/// How weight matrices are stored.
public enum WeightFormat: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// 32-bit floats.
    case f32
    /// IEEE half floats.
    case f16
    /// bfloat16: the "raw" checkpoints of the report.
    case bf16
    /// 4-bit integers with one bf16 scale per output channel (row): the report's "Int4".
    case int4
    /// 4-bit integers with one 16-bit scale per block of 32 weights: the report's "Int4 blocks=32".
    /// This is llama.cpp's Q4_0 layout (18 bytes per 32 weights, 4.5 bits per weight).
    case int4Blocks32
    /// Switched floating point, 8 bits per weight with no scales (gemma.cpp's SFP): the report's "SFP8".
    case sfp8
    /// A GGUF tensor type (q4_0, q8_0, q4_K, q6_K, ...), at its block size and bytes per block.
    case gguf(TensorType)

    /// Parses "f32", "f16", "bf16", "int4", "int4-b32", "sfp8", or a GGUF type name ("q4_0", "Q4_K", "q6_k", ...).
    public init?(name: String) {
        switch name.lowercased() {
        case "f32": self = .f32
        case "f16": self = .f16
        case "bf16": self = .bf16
        case "int4", "int4-channel": self = .int4
        case "int4-b32", "int4-blocks32", "int4b32": self = .int4Blocks32
        case "sfp8", "sfp": self = .sfp8
        case let other:
            guard let t = TensorType.allCases.first(where: { $0.description.lowercased() == other }),
                  t.blockSize > 1 || t == .f32 || t == .f16 || t == .bf16 else { return nil }
            self = .gguf(t)
        }
    }

    /// The names `init(name:)` accepts besides GGUF type names.
    public static let namedFormats = ["bf16", "f16", "f32", "int4", "int4-b32", "sfp8"]

    public var description: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .bf16: "bf16"
        case .int4: "int4"
        case .int4Blocks32: "int4-b32"
        case .sfp8: "sfp8"
        case .gguf(let t): t.description.lowercased()
        }
    }

    /// Bytes of a weight matrix of `rows` output channels by `columns` inputs (a row is one output channel).
    /// Block formats whose block does not divide a row are counted at their rate, rounded up per row.
    public func matrixBytes(rows: Int, columns: Int) -> Int {
        switch self {
        case .f32: return 4 * rows * columns
        case .f16, .bf16: return 2 * rows * columns
        case .int4: return rows * ((columns + 1) / 2 + 2)
        case .int4Blocks32: return rows * ((columns + 31) / 32 * 18)
        case .sfp8: return rows * columns
        case .gguf(let t): return rows * ((columns * t.blockBytes + t.blockSize - 1) / t.blockSize)
        }
    }

    /// Bytes per value of the small vectors (norm weights): f32 for f32 and GGUF types (as llama.cpp), else 2.
    public var vectorBytesPerValue: Int {
        switch self {
        case .f32, .gguf: 4
        default: 2
        }
    }
}

/// Parameter counts of a Gemma 3 model, split as the memory plan reports them.
public struct GemmaParameterCount: Sendable, Equatable {
    /// Token embedding, vocab x hidden (tied: it is also the output head, so it is counted once).
    public var embedding: Int
    /// Transformer layers (q, k, v, o; gate, up, down; four norms; q and k norms) and the final norm.
    public var layers: Int
    /// Vision tower and its projector into the text model (0 when not included).
    public var vision: Int
    public var total: Int { embedding + layers + vision }
}

/// The SigLIP vision encoder of Gemma 3 4B, 12B and 27B.
public enum GemmaVisionTower {
    /// Parameters of SigLIP So400m/14 at 896 x 896 as configured in the HF Gemma3 `vision_config` (width 1152,
    /// MLP 4304, 27 layers, patch 14, 4096 positions): patch embedding 3·14·14·1152 + 1152, position embedding
    /// 4096·1152, 27 layers of 15,239,504 (q, k, v, out with biases; two LayerNorms; fc1 and fc2 with biases),
    /// post-LayerNorm 2·1152. The report's Table 1 rounds it to "417M".
    public static let encoderParameters = 416_866_032

    /// The multimodal projector: `mm_soft_emb_norm` (1152) and `mm_input_projection` (1152 x hidden).
    public static func projectorParameters(hiddenSize: Int) -> Int { 1152 + 1152 * hiddenSize }

    /// Encoder and projector for a text model of width `hiddenSize`.
    public static func parameters(hiddenSize: Int) -> Int {
        encoderParameters + projectorParameters(hiddenSize: hiddenSize)
    }
}

/// Weight and KV-cache memory of a Gemma 3 model at a context length.
///
/// Weights: every matrix (the token embedding, shared with the output head, and q, k, v, o, gate, up, down of
/// each layer) in `weightFormat`; norm vectors at `WeightFormat.vectorBytesPerValue`; optionally the vision tower
/// (``GemmaVisionTower``) in `visionFormat`.
///
/// KV cache: K and V of `numKeyValueHeads x headDim` values per position and layer, in `kvStorage`. Local layers
/// keep a ring of min(window, context) positions, global layers keep `context` positions, as ``KVCache`` does.
/// ``allGlobalKV`` is the cache without the sliding-window saving (every layer keeps `context` positions).
public struct MemoryPlan: Sendable, Equatable {
    public struct Weights: Sendable, Equatable {
        public var embedding: Int
        public var layers: Int
        public var vision: Int
        public var total: Int { embedding + layers + vision }
    }

    public struct KV: Sendable, Equatable {
        /// Number of local (sliding-window) layers and positions each keeps.
        public var localLayers: Int
        public var localPositions: Int
        /// Number of global layers and positions each keeps.
        public var globalLayers: Int
        public var globalPositions: Int
        public var localBytes: Int
        public var globalBytes: Int
        public var total: Int { localBytes + globalBytes }
    }

    public let config: Gemma3Config
    public let context: Int
    /// The text weights' format; nil when the weights were taken from a file's tensors.
    public let weightFormat: WeightFormat?
    public let visionFormat: WeightFormat
    public let kvStorage: KVStorage
    public let parameters: GemmaParameterCount
    public let weights: Weights
    public let kv: KV
    /// KV bytes when every layer keeps `context` positions (no sliding-window ring).
    public let allGlobalKV: Int

    /// Weights plus the sliding-window-aware KV cache.
    public var total: Int { weights.total + kv.total }
    /// Weights plus the all-global KV cache.
    public var allGlobalTotal: Int { weights.total + allGlobalKV }
    /// True when `context` exceeds the model's trained context length.
    public var exceedsContextLength: Bool { context > config.maxPositionEmbeddings }

    /// A plan from the config: weights in `weights` (vision tower in `visionFormat` when `includeVision`).
    public init(config: Gemma3Config, context: Int, weights: WeightFormat = .bf16, kv: KVStorage = .bf16,
                includeVision: Bool = false, visionFormat: WeightFormat = .bf16) {
        let p = Self.parameterCount(config, includeVision: includeVision)
        self.init(config: config, context: context, weightFormat: weights, visionFormat: visionFormat, kv: kv,
                  parameters: p, weights: Self.weightBytes(config, weights, includeVision: includeVision,
                                                           visionFormat: visionFormat))
    }

    /// A plan for one of the report's sizes.
    public init(size: Gemma3Size, context: Int, weights: WeightFormat = .bf16, kv: KVStorage = .bf16,
                includeVision: Bool = false, visionFormat: WeightFormat = .bf16) {
        self.init(config: .known(size), context: context, weights: weights, kv: kv, includeVision: includeVision,
                  visionFormat: visionFormat)
    }

    /// A plan with the text weights of a GGUF file: `token_embd.weight` (and an untied `output.weight`) as the
    /// embedding, every other tensor as layers, at their stored bytes.
    public init(config: Gemma3Config, file: GGUFFile, context: Int, kv: KVStorage = .bf16,
                includeVision: Bool = false, visionFormat: WeightFormat = .bf16) {
        var embedding = 0, layers = 0, embeddingCount = 0, layerCount = 0
        for t in file.tensors {
            if t.name == "token_embd.weight" || t.name == "output.weight" {
                embedding += t.byteCount
                embeddingCount += t.elementCount
            } else {
                layers += t.byteCount
                layerCount += t.elementCount
            }
        }
        let visionParams = includeVision ? GemmaVisionTower.parameters(hiddenSize: config.hiddenSize) : 0
        let visionBytes = includeVision ? Self.visionBytes(config, visionFormat) : 0
        self.init(config: config, context: context, weightFormat: nil, visionFormat: visionFormat, kv: kv,
                  parameters: GemmaParameterCount(embedding: embeddingCount, layers: layerCount, vision: visionParams),
                  weights: Weights(embedding: embedding, layers: layers, vision: visionBytes))
    }

    private init(config: Gemma3Config, context: Int, weightFormat: WeightFormat?, visionFormat: WeightFormat,
                 kv: KVStorage, parameters: GemmaParameterCount, weights: Weights) {
        precondition(context > 0, "context must be positive")
        self.config = config
        self.context = context
        self.weightFormat = weightFormat
        self.visionFormat = visionFormat
        self.kvStorage = kv
        self.parameters = parameters
        self.weights = weights
        let perPosition = 2 * kv.bytes(config.numKeyValueHeads * config.headDim)  // K and V
        var k = KV(localLayers: 0, localPositions: min(config.slidingWindow, context), globalLayers: 0,
                   globalPositions: context, localBytes: 0, globalBytes: 0)
        for layer in config.layers {
            let n = layer.keysNeeded(context: context)
            if layer.isGlobal {
                k.globalLayers += 1
                k.globalBytes += n * perPosition
            } else {
                k.localLayers += 1
                k.localPositions = n
                k.localBytes += n * perPosition
            }
        }
        self.kv = k
        self.allGlobalKV = config.numHiddenLayers * context * perPosition
    }

    /// Parameter counts from the config (the vision tower from ``GemmaVisionTower`` when `includeVision`).
    public static func parameterCount(_ c: Gemma3Config, includeVision: Bool) -> GemmaParameterCount {
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        let perLayer = c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize
            + 4 * c.hiddenSize + 2 * c.headDim
        return GemmaParameterCount(
            embedding: c.vocabSize * c.hiddenSize,
            layers: c.numHiddenLayers * perLayer + c.hiddenSize,
            vision: includeVision ? GemmaVisionTower.parameters(hiddenSize: c.hiddenSize) : 0)
    }

    static func weightBytes(_ c: Gemma3Config, _ f: WeightFormat, includeVision: Bool,
                            visionFormat: WeightFormat) -> Weights {
        let h = c.hiddenSize, q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        let v = f.vectorBytesPerValue
        let attention = f.matrixBytes(rows: q, columns: h) + 2 * f.matrixBytes(rows: kv, columns: h)
            + f.matrixBytes(rows: h, columns: q)
        let mlp = 2 * f.matrixBytes(rows: c.intermediateSize, columns: h) + f.matrixBytes(rows: h, columns: c.intermediateSize)
        let norms = v * (4 * h + 2 * c.headDim)
        return Weights(embedding: f.matrixBytes(rows: c.vocabSize, columns: h),
                       layers: c.numHiddenLayers * (attention + mlp + norms) + v * h,
                       vision: includeVision ? visionBytes(c, visionFormat) : 0)
    }

    /// The vision tower's bytes: every parameter at the format's rate (its matrices are 1152 or 4304 wide).
    static func visionBytes(_ c: Gemma3Config, _ f: WeightFormat) -> Int {
        let n = GemmaVisionTower.parameters(hiddenSize: c.hiddenSize)
        switch f {
        case .f32: return 4 * n
        case .f16, .bf16: return 2 * n
        case .sfp8: return n
        case .int4: return (n + 1) / 2
        case .int4Blocks32: return (n + 31) / 32 * 18
        case .gguf(let t): return (n * t.blockBytes + t.blockSize - 1) / t.blockSize
        }
    }
}

// MARK: - Table 3 of the Gemma 3 Technical Report

/// Table 3 of the Gemma 3 Technical Report (arXiv:2503.19786v1): "Memory footprints (in GB) comparison between raw
/// (bfloat16) and quantized checkpoints for weights and KV caching (+KV) at 32,768 context size, quantized in 8 bits."
///
/// What the table counts, found by arithmetic (see ``reproduction()``; 16 of the 32 cells within 3%):
/// - GB means 10^9 bytes (1B bf16 = 999,885,952 params x 2 bytes = 2.00 GB; in GiB it would be 1.86).
/// - Weights: all text parameters, the 262,144 x hidden embedding included (counted once: it is tied), in the
///   column's format; for 4B, 12B and 27B the SigLIP vision tower and projector (417M) in bf16. Int4 is 4 bits
///   per weight (its per-channel scales are negligible), SFP8 8 bits. Int4 blocks=32 is counted as Q4_0 (a 16-bit
///   scale per 32 weights, 0.0625 bytes per weight), 4-5% over the report's, whose scales come to ~0.044.
/// - "+KV" adds a bf16 cache of K and V (kv_heads x head_dim each) for all 32,768 positions in *every* layer: the
///   table does not take the sliding-window saving (at 32K the ring cache is 5.2x to 6x smaller). "Quantized in 8
///   bits" refers to SFP8, not to the cache: an 8-bit cache would be half the table's KV.
/// - The report's KV is the same in every column (27B: 72.7 - 54.0 = 32.8 - 14.1 = 46.1 - 27.4 = 18.7 GB).
///   For 1B and 4B it matches the all-global bf16 cache (0.87 and 4.56 GB); for 12B and 27B the report's KV
///   (14.9 and 18.7 GB) is about 2.0 GB more than the all-global cache from the published configs
///   (12.88 and 16.64 GB), which no count of K and V at 2 bytes reaches, so those "+KV" cells are low by 2-9%.
///   In particular 27B Int4 (14.1) and Int4+KV (32.8), or 12B bf16 (24.0) and bf16+KV (38.9), cannot both be
///   met within 3% by any count of the weights.
public enum GemmaReportTable3 {
    /// The table's columns.
    public enum Column: String, Sendable, CaseIterable {
        case bf16 = "bf16", int4 = "int4", int4Blocks32 = "int4-b32", sfp8 = "sfp8"

        /// The weight format of the column.
        public var format: WeightFormat {
            switch self {
            case .bf16: .bf16
            case .int4: .int4
            case .int4Blocks32: .int4Blocks32
            case .sfp8: .sfp8
            }
        }

        /// The report's header for the column.
        public var header: String {
            switch self {
            case .bf16: "Raw bf16"
            case .int4: "Int4"
            case .int4Blocks32: "Int4 blocks=32"
            case .sfp8: "SFP8"
            }
        }
    }

    /// The sizes the table lists.
    public static let sizes: [Gemma3Size] = [.b1, .b4, .b12, .b27]

    /// The context length of the table.
    public static let context = 32_768

    /// The report's values in GB: [size: [column: (weights, weights + KV)]].
    public static let reported: [Gemma3Size: [Column: (weights: Double, withKV: Double)]] = [
        .b1: [.bf16: (2.0, 2.9), .int4: (0.5, 1.4), .int4Blocks32: (0.7, 1.6), .sfp8: (1.0, 1.9)],
        .b4: [.bf16: (8.0, 12.7), .int4: (2.6, 7.3), .int4Blocks32: (2.9, 7.6), .sfp8: (4.4, 9.1)],
        .b12: [.bf16: (24.0, 38.9), .int4: (6.6, 21.5), .int4Blocks32: (7.1, 22.0), .sfp8: (12.4, 27.3)],
        .b27: [.bf16: (54.0, 72.7), .int4: (14.1, 32.8), .int4Blocks32: (15.3, 34.0), .sfp8: (27.4, 46.1)],
    ]

    /// One cell of the table beside our count.
    public struct Cell: Sendable, Equatable {
        public let size: Gemma3Size
        public let column: Column
        public let withKV: Bool
        /// The report's value in GB.
        public let reportedGB: Double
        /// Our count in bytes.
        public let bytes: Int
        /// Our count in GB (10^9 bytes).
        public var gb: Double { Double(bytes) / 1e9 }
        /// Relative difference of ours from the report's (0.01 = 1% more).
        public var relativeDifference: Double { gb / reportedGB - 1 }
    }

    /// The plan the table's cell uses: the size's config at 32,768 tokens, bf16 KV, the vision tower (bf16)
    /// for the sizes that have one.
    public static func plan(_ size: Gemma3Size, _ column: Column) -> MemoryPlan {
        MemoryPlan(size: size, context: context, weights: column.format, kv: .bf16,
                   includeVision: size != .b1 && size != .m270, visionFormat: .bf16)
    }

    /// Every cell of the table (sizes 1B to 27B, the four columns, without and with KV) with our count.
    /// "+KV" cells add the all-global KV cache (see the type's documentation).
    public static func reproduction() -> [Cell] {
        sizes.flatMap { size in
            Column.allCases.flatMap { column -> [Cell] in
                let p = plan(size, column)
                let r = reported[size]![column]!
                return [Cell(size: size, column: column, withKV: false, reportedGB: r.weights, bytes: p.weights.total),
                        Cell(size: size, column: column, withKV: true, reportedGB: r.withKV, bytes: p.allGlobalTotal)]
            }
        }
    }
}
