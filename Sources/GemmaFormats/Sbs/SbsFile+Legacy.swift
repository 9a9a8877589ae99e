// Pre-2025 .sbs files (gemma.cpp gemma/model_store.cc: `TypePrefix`, `CreateMatPtrs`, `ReadScales`): no `toc`, and
// usually no `config` or `tokenizer`; each tensor's key is its name behind a type character (`F` f32, `B` bf16, `$`
// SFP, `2` NUQ, `I` int8). gemma.cpp takes the shapes from the canonical config of the model it deduces from the
// highest layer suffix. Here the text model's dimensions are read off the element counts instead (width from
// c_final_norm, vocabulary from c_embedding, head dimension from query_norm_0, FFN from linear_w_0, heads from
// att_ein_0, KV heads from qkv_ein_0), every tensor is checked against the shape they give, and the config is
// gemma.cpp's canonical one for the Gemma 3 size with that layer count and width; for any other size there is no
// config (the caller must supply one: `Checkpoint.openSbs(path:config:)`).
// Scales: the optional `Fscales` blob holds f32 scales that gemma.cpp hands out in its tensor visit order (per layer:
// att_ein, qkv_ein, gating_ein, linear_w: those of `scale_base_names` that are present); all must be used.

extension SbsFile {
    /// The per-layer tensors gemma.cpp's `LayerWeightsPtrs::ForEachTensor` visits, in its order (text layers only).
    static let legacyLayerTensors = ["att_w", "att_ein", "qkv_ein", "qkv1_w", "qkv2_w", "gating_ein", "gating1_w",
                                     "gating2_w", "linear_w", "pre_att_ns", "pre_ff_ns", "post_att_ns", "post_ff_ns",
                                     "key_norm", "query_norm"]

    /// The layer index of a per-layer name ("qkv_ein_12" -> ("qkv_ein", 12)), or nil for a per-model name.
    static func splitLayerSuffix(_ name: String) -> (base: String, layer: Int)? {
        guard let us = name.lastIndex(of: "_") else { return nil }
        let digits = name[name.index(after: us)...]
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits) else { return nil }
        return (String(name[..<us]), n)
    }

    /// A pre-2025 file's tensors (shapes from `storedConfig` when the file has one, else from the element counts)
    /// and its config (stored, or deduced when the dimensions are a Gemma 3 size's).
    static func legacyTensors(store: SbsBlobStore, file: UnsafeRawBufferPointer,
                              storedConfig: SbsModelConfig?) throws(FormatError) -> (tensors: [SbsTensor], config: SbsModelConfig?) {
        var entries: [(name: String, type: SbsType, blob: SbsBlob)] = []
        var scalesBlob: SbsBlob?
        for b in store.blobs {
            guard let type = b.name.first.flatMap(SbsType.ofLegacyPrefix) else { continue }  // not a tensor
            let name = String(b.name.dropFirst())
            if name == "scales" {
                guard type == .f32 else { throw .badBlob(blob: b.name, reason: "scales must be f32") }
                scalesBlob = b
                continue
            }
            guard type == .f32 || type == .bf16 || type == .sfp else {
                throw .badTensorData(tensor: name, reason: "a pre-2025 \(type) tensor: its shape cannot be read off its size, and the engine does not compute with \(type)")
            }
            guard b.size % type.elementBytes == 0 else {
                throw .badTensorData(tensor: name, reason: "\(b.size) bytes is not a whole number of \(type) elements")
            }
            entries.append((name, type, b))
        }
        guard !entries.isEmpty else {
            throw .badBlobStore(reason: "no toc blob and no type-prefixed tensor keys: not a gemma.cpp model file")
        }
        let elements = Dictionary(entries.map { ($0.name, $0.blob.size / $0.type.elementBytes) }, uniquingKeysWith: { a, _ in a })
        func need(_ name: String) throws(FormatError) -> Int {
            guard let n = elements[name] else { throw .missingTensor(name) }
            return n
        }
        /// a x b, or nil when it overflows (dimensions read off a hostile file can be as large as the file).
        func mul(_ a: Int, _ b: Int) -> Int? {
            let (p, o) = a.multipliedReportingOverflow(by: b)
            return o ? nil : p
        }
        func divide(_ a: Int, _ b: Int?, _ what: String) throws(FormatError) -> Int {
            guard let b else { throw .badBlob(blob: "(pre-2025 shapes)", reason: "\(what): the divisor overflows") }
            guard b > 0, a % b == 0, a / b > 0 else {
                throw .badBlob(blob: "(pre-2025 shapes)", reason: "\(what): \(a) elements is not a positive multiple of \(b)")
            }
            return a / b
        }

        // The dimensions: from the stored config, else read off the element counts.
        let layers = 1 + (entries.compactMap { splitLayerSuffix($0.name)?.layer }.max() ?? -1)
        let d: Int, vocab: Int, qkv: Int, ff: Int, heads: Int, kvHeads: Int
        if let c = storedConfig, let l = c.layerConfigs.first {
            (d, vocab, qkv, ff, heads, kvHeads) = (Int(c.modelDim), Int(c.vocabSize), Int(l.qkvDim), Int(l.ffHiddenDim), Int(l.heads), Int(l.kvHeads))
        } else {
            d = try need("c_final_norm")
            vocab = try divide(try need("c_embedding"), d, "c_embedding over the width \(d)")
            if let n = elements["query_norm_0"] { qkv = n } else { qkv = try need("key_norm_0") }
            ff = try divide(try need("linear_w_0"), d, "linear_w_0 over the width \(d)")
            let attention: Int
            if let n = elements["att_ein_0"] { attention = n } else { attention = try need("att_w_0") }
            heads = try divide(attention, mul(d, qkv), "att_ein_0 over width x head dimension")
            let qkvRows: Int
            if let n = elements["qkv_ein_0"] { qkvRows = try divide(n, d, "qkv_ein_0 over the width") }
            else { qkvRows = try divide(try need("qkv1_w_0") + need("qkv2_w_0"), d, "qkv1_w_0 + qkv2_w_0 over the width") }
            let kvRows = try divide(qkvRows, qkv, "qkv_ein_0 rows over the head dimension") - heads
            kvHeads = try divide(kvRows, 2, "key and value heads of qkv_ein_0")
        }

        var config = storedConfig
        if config == nil, let model = SbsModelConfig.gemma3Model(layers: layers, modelDim: d) {
            // gemma.cpp's `DeduceWeightType`: the type of fewest bits among those with at least 4 tensors.
            var counts: [SbsType: Int] = [:]
            for e in entries { counts[e.type, default: 0] += 1 }
            let weight = counts.filter { $0.value >= 4 }.keys.min { $0.bits < $1.bits } ?? .bf16
            let canonical = SbsModelConfig.gemma3(model, weight: weight)
            let l = canonical.layerConfigs[0]
            guard (Int(canonical.vocabSize), Int(l.qkvDim), Int(l.ffHiddenDim), Int(l.heads), Int(l.kvHeads)) == (vocab, qkv, ff, heads, kvHeads) else {
                throw .badBlob(blob: "(pre-2025 shapes)", reason: "\(layers) layers of width \(d) are \(canonical.displayName), but the tensors give vocabulary \(vocab), head dimension \(qkv), FFN \(ff), \(heads) heads, \(kvHeads) KV heads")
            }
            config = canonical
        }

        func shape(_ name: String) -> (rows: Int, cols: Int)? {
            switch name {
            case "c_embedding": return (vocab, d)
            case "c_final_norm": return (1, d)
            default: break
            }
            guard let (base, layer) = splitLayerSuffix(name), layer < layers else { return nil }
            func rows(_ r: Int?, _ c: Int) -> (rows: Int, cols: Int)? { r.map { ($0, c) } }
            switch base {
            case "qkv_ein": return rows(mul(heads + 2 * kvHeads, qkv), d)
            case "qkv1_w": return rows(mul(heads, qkv), d)
            case "qkv2_w": return rows(mul(2 * kvHeads, qkv), d)
            case "att_ein": return rows(mul(heads, d), qkv)
            case "att_w": return mul(heads, qkv).map { (d, $0) }
            case "gating_ein": return (2 * ff, d)
            case "gating1_w", "gating2_w": return (ff, d)
            case "linear_w": return (d, ff)
            case "pre_att_ns", "pre_ff_ns", "post_att_ns", "post_ff_ns": return (1, d)
            case "key_norm", "query_norm": return (1, qkv)
            default: return nil
            }
        }

        // Scales, in gemma.cpp's visit order.
        var scaleOf: [String: Float] = [:]
        if let b = scalesBlob {
            let words = try words(UnsafeRawBufferPointer(rebasing: file[b.offset..<b.offset + b.size]), blob: b.name)
            let scales = words.map { Float(bitPattern: $0) }
            let bases = Set(config?.scaleBaseNames ?? SbsModelConfig.gemma3(.b1, weight: .sfp).scaleBaseNames)
            var next = 0
            for layer in 0..<layers {
                for base in legacyLayerTensors where bases.contains(base) && elements["\(base)_\(layer)"] != nil {
                    guard next < scales.count else {
                        throw .badBlob(blob: b.name, reason: "holds \(scales.count) scales but the tensors take more")
                    }
                    let s = scales[next]
                    guard s.isFinite, s > 0 else { throw .badBlob(blob: b.name, reason: "scale #\(next) is \(s), not a positive number") }
                    scaleOf["\(base)_\(layer)"] = s
                    next += 1
                }
            }
            guard next == scales.count else {
                throw .badBlob(blob: b.name, reason: "holds \(scales.count) scales but the tensors take \(next)")
            }
        }

        var tensors: [SbsTensor] = []
        for e in entries {
            guard let (rows, cols) = shape(e.name) else {
                throw .badTensorData(tensor: e.name, reason: "not a tensor of a Gemma 3 text model of \(layers) layers (pre-2025 files carry no shapes)")
            }
            guard rows > 0, cols > 0, mul(rows, cols) == elements[e.name] else {
                throw .badTensorData(tensor: e.name, reason: "\(elements[e.name] ?? 0) elements, but the model's dimensions make it \(rows) x \(cols)")
            }
            tensors.append(SbsTensor(name: e.name, type: e.type, rows: rows, cols: cols, scale: scaleOf[e.name] ?? 1,
                                     bytes: UnsafeRawBufferPointer(rebasing: file[e.blob.offset..<e.blob.offset + e.blob.size])))
        }
        return (tensors, config)
    }
}
