// What a conversion will write, decided before any byte is: each Gemma 3 text weight of the input under its output
// name, with its output type and the shift its norm needs (GGUF norms store 1 + w, Hugging Face norms store w), plus
// notes for everything the user should know (fallback types, skipped tensors, what llama.cpp will read differently).
//
// GGUF types follow llama.cpp: norms stay f32; the tied embedding is quantized the way llama-quantize quantizes the
// output head it doubles as (q8_0 for a q8_0 file, else q6_K, or q8_0 when its rows are not whole 256-blocks: the
// `llama_tensor_get_type_impl` rule for OUTPUT / tied TOKEN_EMBD); every other matrix takes --type, and a row length
// that is not a whole number of the type's blocks falls back as `tensor_type_fallback` does (q4_K -> q5_0,
// q6_K -> q8_0), and to f16 when even that does not divide it (where llama.cpp has no fallback for the 32-element
// types, we take f16 as it does for the k-quants' second failure). Unlike llama-quantize's _M/_S mixtures, no other
// tensor is given more bits: --type is the type of every matrix but the embedding.
import GemmaFormats
import GemmaModel
import GemmaTokenizer

/// One tensor of the output.
public struct PlannedTensor: Sendable, Equatable {
    public let weight: Gemma3Weight
    /// The input tensor it is made from.
    public let sourceName: String
    /// Its name in the output.
    public let name: String
    /// PyTorch order, outermost first (GGUF lists it reversed).
    public let shape: [Int]
    /// The stored type in the output (f32, f16 or bf16 for a Hugging Face folder).
    public let type: TensorType
    /// Added to every value: +1 for a norm going to GGUF, -1 for one going to a Hugging Face folder, else 0.
    public let shift: Float

    /// Elements per row (the last dimension) and rows (all the others).
    public var columns: Int { shape.last ?? 1 }
    public var rows: Int { shape.dropLast().reduce(1, *) }
    /// Bytes in the output.
    public var byteCount: Int { type.rowBytes(columns)! * rows }
}

/// A per-tensor type: every weight matrix of the output whose name matches `pattern` (`*` matches any run of
/// characters, e.g. "blk.*.ffn_down.weight") is stored as `type` (norms stay f32 whatever matches them).
public struct TypeOverride: Sendable, Equatable {
    public let pattern: String
    public let type: TensorType

    public init(pattern: String, type: TensorType) {
        self.pattern = pattern
        self.type = type
    }

    /// Parses "NAME=TYPE" (TYPE a GGUF type name: f32, f16, bf16, q8_0, q4_0, q4_K, q6_K, ...).
    public init(parsing text: String) throws(ConvertError) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw .unsupported("--keep \(text): expected NAME=TYPE, e.g. token_embd.weight=q8_0 or 'blk.*.ffn_down.weight=q6_K'")
        }
        guard let t = TensorType.allCases.first(where: { $0.description.lowercased() == parts[1].lowercased() }), t.canQuantize else {
            let known = TensorType.allCases.filter(\.canQuantize).map { $0.description.lowercased() }.joined(separator: ", ")
            throw .unsupported("--keep \(text): \(parts[1]) is not a type we write (\(known))")
        }
        self.init(pattern: parts[0], type: t)
    }

    /// True when `name` matches the pattern as a whole.
    public func matches(_ name: String) -> Bool { Self.glob(Array(pattern.utf8)[...], Array(name.utf8)[...]) }

    private static func glob(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        guard let c = p.first else { return s.isEmpty }
        if c == UInt8(ascii: "*") {
            var rest = s
            while true {
                if glob(p.dropFirst(), rest) { return true }
                if rest.isEmpty { return false }
                rest = rest.dropFirst()
            }
        }
        return s.first == c && glob(p.dropFirst(), s.dropFirst())
    }
}

/// Every decision of one conversion.
public struct ConversionPlan: Sendable {
    public let format: ConvertFormat
    public let type: ConvertType
    public let checkpoint: Checkpoint
    /// The vocabulary the output carries (padded to the embedding's rows as llama.cpp's converter pads it).
    public let vocabulary: Vocabulary
    public let tensors: [PlannedTensor]
    /// What the user should know about this conversion, one line each.
    public let notes: [String]

    /// Plans the conversion of `checkpoint` (with `vocabulary`) to `format` at `type` (nil: lossless, see
    /// `defaultType`).
    /// GGUF only: `embeddingType` replaces llama-quantize's rule for the tied embedding, and `overrides` (in order,
    /// last match wins) set any tensor's type by its output name; an override must match some tensor and give rows
    /// that are whole blocks of its type.
    public init(checkpoint: Checkpoint, vocabulary: Vocabulary, format: ConvertFormat, type: ConvertType?,
                embeddingType: TensorType? = nil, overrides: [TypeOverride] = []) throws(ConvertError) {
        let c = checkpoint.config
        let source = checkpoint.source
        let expected = Self.expectedShapes(c)
        var found: [(Gemma3Weight, SourceTensor)] = []
        for (w, shape) in expected {
            let name = checkpoint.naming.name(of: w)
            guard let t = source.sourceTensor(named: name) else {
                throw .input(path: checkpoint.path, reason: "weight \(name) is missing")
            }
            guard t.shape == shape else {
                throw .input(path: checkpoint.path, reason: "weight \(name) has shape \(t.shape) but the config needs \(shape)")
            }
            found.append((w, t))
        }
        let type = type ?? Self.defaultType(found.map(\.1), format: format)
        guard format.accepts(type) else { throw .typeNotForFormat(type: type, format: format) }

        var notes: [String] = []
        var vocabulary = try Self.scoringAddedPieces(vocabulary)
        if let note = try Self.padVocabulary(&vocabulary, to: c.vocabSize) { notes.append(note) }

        let (targetNaming, targetOffset): (TensorNaming, Float) = format == .gguf ? (.gguf, 0) : (.huggingFace(prefix: "model."), 1)
        var fallbacks: [String: Int] = [:]
        var tensors: [PlannedTensor] = []
        for (w, t) in found {
            guard let storedType = t.encoding?.tensorType else {
                throw .unsupportedWeight(name: t.name, type: t.storedType)
            }
            let isNorm = t.shape.count == 1
            let shift: Float = isNorm ? checkpoint.normOffset - targetOffset : 0
            var out: TensorType
            if format == .huggingFace {
                out = type.tensorType
            } else if w == .embedding, let e = embeddingType {
                out = e
            } else {
                let (chosen, note) = Self.ggufType(w, columns: t.shape.last ?? 1, isNorm: isNorm, target: type)
                out = chosen
                if let note { fallbacks[note, default: 0] += 1 }
            }
            // A tensor that must change needs its rows dequantized.
            if (shift != 0 || out != storedType) && !(t.encoding?.canDequantize ?? false) {
                throw .unsupportedWeight(name: t.name, type: t.storedType)
            }
            let name = targetNaming.name(of: w)
            if format == .gguf {
                for o in overrides where !isNorm && o.matches(name) { out = o.type }  // norms stay f32
                guard (t.shape.last ?? 1) % out.blockSize == 0 else {
                    throw .unsupported("\(name): rows of \(t.shape.last ?? 1) are not whole \(out) blocks of \(out.blockSize)")
                }
            }
            tensors.append(PlannedTensor(weight: w, sourceName: t.name, name: name, shape: t.shape, type: out, shift: shift))
        }
        notes += fallbacks.sorted { $0.key < $1.key }.map { "\($0.value) tensor\($0.value == 1 ? "" : "s"): \($0.key)" }
        if format == .huggingFace, !overrides.isEmpty || embeddingType != nil {
            throw .unsupported("per-tensor types are for GGUF output: a Hugging Face folder holds one float type")
        }
        for o in overrides where !tensors.contains(where: { $0.shape.count > 1 && o.matches($0.name) }) {
            throw .unsupported("--keep \(o.pattern)=\(o.type): no tensor of the output is named so (GGUF names: token_embd.weight, blk.N.attn_q.weight, blk.N.ffn_down.weight, ...)")
        }

        let used = Set(found.map(\.1.name))
        let skipped = source.tensorNames.filter { !used.contains($0) && !$0.hasSuffix("lm_head.weight") }
        if !skipped.isEmpty {
            notes.append("skipped \(skipped.count) tensor\(skipped.count == 1 ? "" : "s") that are not part of the Gemma 3 text model (\(skipped.prefix(3).joined(separator: ", "))\(skipped.count > 3 ? ", ..." : ""))")
        }
        let quantized = Set(found.compactMap { $0.1.encoding?.tensorType }).filter { ConvertType($0).map { !$0.isFloat } ?? true }
        if !quantized.isEmpty {
            let names = quantized.sorted { $0.rawValue < $1.rawValue }.map(\.description).joined(separator: ", ")
            notes.append("the input's \(names) weights are dequantized (bit-identically to gguf-py) before conversion to \(type.rawValue)")
        }
        if format == .gguf { notes += Self.llamaCppCaveats(c) }

        self.format = format
        self.type = type
        self.checkpoint = checkpoint
        self.vocabulary = vocabulary
        self.tensors = tensors
        self.notes = notes
    }

    /// Pads `vocabulary` to the embedding's `rows` with unused [PADn] pieces, as llama.cpp's converter pads it; returns
    /// the note to show when it did. A vocabulary larger than the embedding is an error.
    static func padVocabulary(_ vocabulary: inout Vocabulary, to rows: Int) throws(ConvertError) -> String? {
        if vocabulary.count > rows {
            throw .unsupported("the vocabulary has \(vocabulary.count) tokens but the embedding only \(rows) rows")
        }
        guard vocabulary.count < rows else { return nil }
        let note = "the vocabulary has \(vocabulary.count) tokens and the embedding \(rows) rows: padded with [PAD1]...[PAD\(rows - vocabulary.count)] (unused), as llama.cpp's converter pads it"
        do { vocabulary = try vocabulary.padded(to: rows) } catch { throw .unsupported("cannot pad the vocabulary: \(error)") }
        return note
    }

    /// The type when none is given: no loss. f16 or bf16 when every weight is stored so, else f32.
    public static func defaultType(_ tensors: [SourceTensor], format: ConvertFormat) -> ConvertType {
        let types = Set(tensors.filter { $0.shape.count > 1 }.map { $0.encoding?.tensorType })
        if types == [.bf16] { return .bf16 }
        if types == [.f16] { return .f16 }
        return .f32
    }

    /// The GGUF type of weight `w` (rows of `columns`) in a file of `target`, and a note when it is not `target`'s.
    static func ggufType(_ w: Gemma3Weight, columns: Int, isNorm: Bool, target: ConvertType) -> (TensorType, String?) {
        if isNorm { return (.f32, nil) }
        let t = target.tensorType
        if target.isFloat { return (t, nil) }
        if w == .embedding && target != .q8_0 {
            if columns % TensorType.q6_K.blockSize == 0 {
                return (.q6_K, "the tied embedding (also the output head) at q6_K, as llama-quantize quantizes the output")
            }
            if columns % TensorType.q8_0.blockSize == 0 {
                return (.q8_0, "the tied embedding (also the output head) at q8_0, as llama-quantize quantizes an output whose rows (\(columns)) are not whole 256-blocks")
            }
            return (.f16, "the tied embedding (also the output head) at f16: its rows (\(columns)) are not whole q8_0 blocks of 32")
        }
        if columns % t.blockSize == 0 { return (t, nil) }
        let fallback: TensorType? = switch t {
        case .q4_K: .q5_0
        case .q6_K: .q8_0
        default: nil
        }
        if let fallback, columns % fallback.blockSize == 0 {
            return (fallback, "rows of \(columns) are not whole \(t) blocks of \(t.blockSize): \(fallback), as llama.cpp falls back")
        }
        return (.f16, "rows of \(columns) are not whole \(fallback ?? t) blocks of \((fallback ?? t).blockSize): f16")
    }

    /// Every weight of the text model with its PyTorch shape, in output order: embedding, layers, final norm.
    static func expectedShapes(_ c: Gemma3Config) -> [(Gemma3Weight, [Int])] {
        let h = c.hiddenSize, d = c.headDim, f = c.intermediateSize
        var out: [(Gemma3Weight, [Int])] = [(.embedding, [c.vocabSize, h])]
        for i in 0..<c.numHiddenLayers {
            for l in Gemma3Weight.Layer.allCases {
                let shape: [Int] = switch l {
                case .inputNorm, .postAttentionNorm, .preFeedforwardNorm, .postFeedforwardNorm: [h]
                case .qNorm, .kNorm: [d]
                case .q: [c.numAttentionHeads * d, h]
                case .k, .v: [c.numKeyValueHeads * d, h]
                case .o: [h, c.numAttentionHeads * d]
                case .gate, .up: [f, h]
                case .down: [h, f]
                }
                out.append((.layer(i, l), shape))
            }
        }
        out.append((.finalNorm, [h]))
        return out
    }

    /// `v` with every control and user-defined piece scored -1000, as llama.cpp's converter scores the added tokens
    /// of a folder (all of Gemma's control and user-defined pieces are listed in its tokenizer_config.json). Such
    /// pieces are matched whole, never merged, so their scores change no encoding; but a vocabulary read from
    /// tokenizer.json scores them otherwise, and this makes the exported files read back as what they were made of.
    static func scoringAddedPieces(_ v: Vocabulary) throws(ConvertError) -> Vocabulary {
        let scores = zip(v.scores, v.types).map { s, t in t == .control || t == .userDefined ? -1000 : s }
        guard scores != v.scores else { return v }
        do {
            return try Vocabulary(pieces: v.pieces, scores: scores, types: v.types, bosID: v.bosID, eosID: v.eosID,
                                  unknownID: v.unknownID, paddingID: v.paddingID, addBOS: v.addBOS, addEOS: v.addEOS,
                                  addSpacePrefix: v.addSpacePrefix)
        } catch {
            throw .unsupported("cannot rescore the vocabulary: \(error)")
        }
    }

    /// What llama.cpp, which hard-codes some Gemma 3 hyperparameters, will read differently from this model.
    static func llamaCppCaveats(_ c: Gemma3Config) -> [String] {
        var notes: [String] = []
        let derived = Gemma3Config.llamaCppQueryPreAttnScalar(c)
        if c.queryPreAttnScalar != derived {
            notes.append("query_pre_attn_scalar \(c.queryPreAttnScalar) is stored as gemma3.attention.query_pre_attn_scalar, which this engine reads but llama.cpp ignores (it will use \(derived))")
        }
        if c.ropeLocalBaseFreq != 10_000 {
            notes.append("the local RoPE base \(c.ropeLocalBaseFreq) is stored as gemma3.rope.freq_base_swa, which llama.cpp ignores (it uses 10000)")
        }
        if !followsPatternOfSix(c) {
            notes.append("the layer types are stored as gemma3.attention.sliding_window_pattern, which llama.cpp ignores for gemma3 (it makes every 6th layer global)")
        }
        return notes
    }

    /// True when layer i is global exactly when (i + 1) % 6 == 0, the rule llama.cpp hard-codes for gemma3.
    static func followsPatternOfSix(_ c: Gemma3Config) -> Bool {
        c.layers.enumerated().allSatisfy { i, l in l.isGlobal == ((i + 1) % 6 == 0) }
    }
}
