// Writes a Gemma 3 text model as a gemma.cpp .sbs file (SbsWriter: V2 layout with config, tokenizer and toc), from
// any tensor source in this engine's layout (q/k/v/o, gate/up/down, norms), converting to gemma.cpp's tensors in its
// visit order (gemma/weights.h `ForEachTensor`; shapes from gemma/tensor_info.cc):
//   c_embedding [vocab, d], c_final_norm [1, d], then per layer
//   att_ein [H d, hd]     row h d + m = o_proj row m, columns h hd ..< (h + 1) hd (the inverse of `InitAttWeights`)
//   qkv_ein [(H + 2 KV) hd, d]   q's rows, then for each KV head its k rows and its v rows
//   gating_ein [2 ff, d]  gate's rows, then up's;   linear_w [d, ff] = down
//   pre_att_ns, pre_ff_ns, post_att_ns, post_ff_ns [1, d], key_norm, query_norm [1, hd]
// Norm weights are stored as the raw JAX scale w (the model computes x (1 + w)): a source whose norms have 1 + w
// baked in (GGUF, `normOffset` 0) gets 1 subtracted. Matrices take the requested type; the embedding and the norms
// are never stored below bf16 (gemma.cpp's `TensorInfo.min_size`). SFP matrices get gemma.cpp's per-tensor scale:
// max|w| / 1.875 when larger, values multiplied by Float(1 / Double(scale)), clamped to +-1.875 and encoded
// (SFP8.swift). Each tensor is streamed: two passes over its rows for SFP (the scale, then the codes).
import GemmaFormats
import GemmaModel

public enum SbsExport {
    /// What a model's matrices are stored as.
    public enum MatrixType: String, Sendable, CaseIterable {
        case f32, bf16, sfp8

        var sbsType: SbsType {
            switch self {
            case .f32: .f32
            case .bf16: .bf16
            case .sfp8: .sfp
            }
        }
    }

    /// One tensor as gemma.cpp stores it, written by `write`.
    public struct Written: Sendable, Equatable {
        public let name: String
        public let type: SbsType
        public let rows: Int
        public let cols: Int
        public let scale: Float
    }

    /// Writes the text model of `source` (named by `naming`, norms plus `normOffset` applied as in binding) as an
    /// .sbs file at `path`, with `tokenizer` (a SentencePiece model proto) in its tokenizer blob.
    ///
    /// - Returns: The tensors written, in file order.
    @discardableResult
    public static func write(source: any TensorSource, naming: TensorNaming, normOffset: Float, config c: Gemma3Config,
                             tokenizer: [UInt8]?, matrices: MatrixType, to path: String,
                             progress: (_ index: Int, _ count: Int, _ name: String) -> Void = { _, _, _ in }) throws(ConvertError) -> [Written] {
        let smallType: SbsType = matrices == .f32 ? .f32 : .bf16
        let sbsConfig: SbsModelConfig
        do { sbsConfig = try SbsModelConfig(gemma3: c, weight: matrices.sbsType) } catch { throw .unsupported(error.description) }
        let writer: SbsWriter
        do { writer = try SbsWriter(path: path) } catch { throw .output(path: path, reason: "\(error)") }
        var written: [Written] = []
        let count = 2 + 10 * c.numHiddenLayers
        do {
            func emit(_ name: String, _ type: SbsType, _ m: Rows) throws {
                progress(written.count + 1, count, name)
                written.append(try emitTensor(writer, name, type, m))
            }
            let d = c.hiddenSize, hd = c.headDim, h = c.numAttentionHeads, kv = c.numKeyValueHeads, ff = c.intermediateSize
            try emit("c_embedding", smallType, try Rows(source, naming, .embedding, rows: c.vocabSize, cols: d))  // streamed
            try emit("c_final_norm", smallType, try Rows.norm(source, naming, .finalNorm, count: d, normOffset: normOffset))
            for l in 0..<c.numHiddenLayers {
                func matrix(_ w: Gemma3Weight.Layer, _ rows: Int, _ cols: Int) throws -> Rows {
                    try Rows(source, naming, .layer(l, w), rows: rows, cols: cols).loaded()
                }
                let o = try matrix(.o, d, h * hd)
                try emit("att_ein_\(l)", matrices.sbsType, Rows(rows: h * d, cols: hd) { r, out in
                    let (head, m) = r.quotientAndRemainder(dividingBy: d)
                    o.values!.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + m * h * hd + head * hd, count: hd) }
                })
                let q = try matrix(.q, h * hd, d), k = try matrix(.k, kv * hd, d), v = try matrix(.v, kv * hd, d)
                try emit("qkv_ein_\(l)", matrices.sbsType, Rows(rows: (h + 2 * kv) * hd, cols: d) { r, out in
                    if r < h * hd { return q.row(r, out) }
                    let (head, within) = (r - h * hd).quotientAndRemainder(dividingBy: 2 * hd)
                    if within < hd { k.row(head * hd + within, out) } else { v.row(head * hd + within - hd, out) }
                })
                let gate = try matrix(.gate, ff, d), up = try matrix(.up, ff, d)
                try emit("gating_ein_\(l)", matrices.sbsType, Rows(rows: 2 * ff, cols: d) { r, out in
                    r < ff ? gate.row(r, out) : up.row(r - ff, out)
                })
                try emit("linear_w_\(l)", matrices.sbsType, try matrix(.down, d, ff))
                for (name, w, n) in [("pre_att_ns", Gemma3Weight.Layer.inputNorm, d), ("pre_ff_ns", .preFeedforwardNorm, d),
                                     ("post_att_ns", .postAttentionNorm, d), ("post_ff_ns", .postFeedforwardNorm, d),
                                     ("key_norm", .kNorm, hd), ("query_norm", .qNorm, hd)] {
                    try emit("\(name)_\(l)", smallType, try Rows.norm(source, naming, .layer(l, w), count: n, normOffset: normOffset))
                }
            }
            try writer.finish(config: sbsConfig, tokenizer: tokenizer)
        } catch let e as ConvertError {
            writer.discard()
            throw e
        } catch let e as ModelError {
            writer.discard()
            throw .unsupported(e.description)
        } catch {
            writer.discard()
            throw .output(path: path, reason: "\(error)")
        }
        return written
    }

    /// A tensor's rows in f32, produced on demand.
    struct Rows {
        let rows: Int
        let cols: Int
        let row: (_ index: Int, _ out: UnsafeMutablePointer<Float>) -> Void
        /// All values, when loaded.
        var values: [Float]?

        init(rows: Int, cols: Int, values: [Float]? = nil, row: @escaping (Int, UnsafeMutablePointer<Float>) -> Void) {
            self.rows = rows
            self.cols = cols
            self.values = values
            self.row = row
        }

        /// The rows of a source matrix, dequantized one at a time.
        init(_ source: any TensorSource, _ naming: TensorNaming, _ w: Gemma3Weight, rows: Int, cols: Int) throws(ModelError) {
            let name = naming.name(of: w)
            guard let t = source.sourceTensor(named: name) else { throw .missingWeight(name) }
            let shape = rows == 1 ? [cols] : [rows, cols]
            guard t.shape == shape else { throw .weightShape(name: name, expected: shape, found: t.shape) }
            guard let e = t.encoding, let dequantize = e.dequantizeRow, let rowBytes = e.rowBytes(cols) else {
                throw .unsupportedWeightType(name: name, type: t.storedType)
            }
            let base = t.bytes.baseAddress!
            self.init(rows: rows, cols: cols) { r, out in dequantize(base + r * rowBytes, cols, out) }
        }

        /// A norm vector as the raw JAX scale (the stored value plus `normOffset`, less the 1 the model adds).
        static func norm(_ source: any TensorSource, _ naming: TensorNaming, _ w: Gemma3Weight, count: Int,
                         normOffset: Float) throws(ModelError) -> Rows {
            let stored = try Rows(source, naming, w, rows: 1, cols: count).loaded().values!
            let raw = normOffset == 1 ? stored : stored.map { $0 + normOffset - 1 }
            return Rows(rows: 1, cols: count, values: raw) { _, out in raw.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: count) } }
        }

        /// The same rows held in memory (so that a reordering can read them in any order).
        func loaded() -> Rows {
            if values != nil { return self }
            let (rows, cols, row) = (rows, cols, row)
            var all = [Float](repeating: 0, count: rows * cols)
            all.withUnsafeMutableBufferPointer { p in for r in 0..<rows { row(r, p.baseAddress! + r * cols) } }
            return Rows(rows: rows, cols: cols, values: all) { r, out in
                all.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + r * cols, count: cols) }
            }
        }
    }

    /// Encodes `m` as `type` into the writer, row by row (SFP: a first pass for the tensor's scale).
    static func emitTensor(_ writer: SbsWriter, _ name: String, _ type: SbsType, _ m: Rows) throws -> Written {
        var buffer = [Float](repeating: 0, count: m.cols)
        var scale: Float = 1
        if type == .sfp {
            var maxAbs: Float = 0
            for r in 0..<m.rows {
                buffer.withUnsafeMutableBufferPointer { m.row(r, $0.baseAddress!) }
                for x in buffer { maxAbs = max(maxAbs, abs(x)) }
            }
            // SFP8.tensorScale over the whole tensor, from its maximum magnitude.
            scale = [maxAbs].withUnsafeBufferPointer { SFP8.tensorScale($0) }
        }
        try writer.beginTensor(name: name, type: type, rows: m.rows, cols: m.cols, scale: scale)
        var out = [UInt8](repeating: 0, count: m.cols * type.elementBytes)
        for r in 0..<m.rows {
            buffer.withUnsafeMutableBufferPointer { m.row(r, $0.baseAddress!) }
            out.withUnsafeMutableBytes { dst in
                buffer.withUnsafeBufferPointer { src in
                    switch type {
                    case .f32: dst.copyMemory(from: UnsafeRawBufferPointer(src))
                    case .bf16: for i in 0..<m.cols { dst.storeBytes(of: src[i].bf16Bits.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                    default: SFP8.encode(src.baseAddress!, count: m.cols, scale: scale, into: dst.bindMemory(to: UInt8.self).baseAddress!)
                    }
                }
            }
            try out.withUnsafeBytes { try writer.write($0) }
        }
        try writer.endTensor()
        return Written(name: name, type: type, rows: m.rows, cols: m.cols, scale: scale)
    }
}
