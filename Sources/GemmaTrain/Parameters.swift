// The Gemma 3 text model's weights as one flat f32 vector, for training: every tensor of the checkpoint dequantized,
// in a fixed order (embedding, each layer's thirteen tensors, final norm), so that gradients, optimizer moments and
// checkpoints are vectors of the same layout. Norm weights are kept as stored; the forward pass multiplies by
// (normOffset + w), 1 for Hugging Face checkpoints (transformers' `1 + weight`) and 0 for GGUF ones (1 + w baked in).
import GemmaFormats
import GemmaKernels
import GemmaModel

/// Where each tensor lies in the flat vector.
public struct ParameterLayout: Sendable {
    public struct Entry: Sendable {
        public let weight: Gemma3Weight
        /// PyTorch order: [rows, cols] for matrices (out, in), [n] for norms.
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [Entry]
    public let count: Int
    private let index: [String: Int]

    public init(config c: Gemma3Config) {
        let h = c.hiddenSize, d = c.headDim, f = c.intermediateSize
        let qDim = c.numAttentionHeads * d, kvDim = c.numKeyValueHeads * d
        var entries: [Entry] = [], offset = 0
        func add(_ w: Gemma3Weight, _ shape: [Int]) {
            entries.append(Entry(weight: w, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        add(.embedding, [c.vocabSize, h])
        for l in 0..<c.numHiddenLayers {
            add(.layer(l, .inputNorm), [h])
            add(.layer(l, .q), [qDim, h])
            add(.layer(l, .k), [kvDim, h])
            add(.layer(l, .v), [kvDim, h])
            add(.layer(l, .qNorm), [d])
            add(.layer(l, .kNorm), [d])
            add(.layer(l, .o), [h, qDim])
            add(.layer(l, .postAttentionNorm), [h])
            add(.layer(l, .preFeedforwardNorm), [h])
            add(.layer(l, .gate), [f, h])
            add(.layer(l, .up), [f, h])
            add(.layer(l, .down), [h, f])
            add(.layer(l, .postFeedforwardNorm), [h])
        }
        add(.finalNorm, [h])
        self.entries = entries
        count = offset
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[TensorNaming.huggingFace(prefix: "model.").name(of: e.weight)] = i }
        self.index = index
    }

    /// The entry of a weight.
    public func entry(_ w: Gemma3Weight) -> Entry {
        entries[index[TensorNaming.huggingFace(prefix: "model.").name(of: w)]!]
    }

    /// Offset of a weight in the flat vector.
    public func offset(_ w: Gemma3Weight) -> Int { entry(w).offset }
}

/// Errors of training.
public enum TrainError: Error, Equatable, CustomStringConvertible {
    case weight(String)
    case input(String)

    public var description: String {
        switch self {
        case let .weight(s): "weights: \(s)"
        case let .input(s): s
        }
    }
}

/// A frozen base kept in its stored format (QLoRA): each layer's projections as the checkpoint stores them, read
/// through the products' packing (`GemmB.Source.stored`), which dequantizes them as they are used
/// (the values of `trainableParameters`). The norms and the embedding (also the head) stay in the f32 parameters.
public struct StoredBase: @unchecked Sendable {  // the matrices point into the checkpoint's mapping, kept alive here
    let matrices: [Int: WeightMatrix]
    let checkpoint: Checkpoint
    static let modules: [Gemma3Weight.Layer] = [.q, .k, .v, .o, .gate, .up, .down]

    public init(_ checkpoint: Checkpoint) throws(TrainError) {
        self.checkpoint = checkpoint
        let layout = ParameterLayout(config: checkpoint.config)
        var matrices: [Int: WeightMatrix] = [:]
        for l in 0..<checkpoint.config.numHiddenLayers {
            for module in Self.modules {
                let e = layout.entry(.layer(l, module)), name = checkpoint.naming.name(of: e.weight)
                guard let t = checkpoint.source.sourceTensor(named: name) else { throw .weight("\(name) is missing") }
                guard t.shape.reduce(1, *) == e.count, let encoding = t.encoding, encoding.dequantizeRow != nil,
                      encoding.rowBytes(e.shape[1]) != nil else {
                    throw .weight("\(name) (\(t.storedType), shape \(t.shape)) cannot be read row by row as [\(e.shape[0]), \(e.shape[1])]")
                }
                matrices[LoRALayout.key(l, module)] = WeightMatrix(encoding: encoding, rows: e.shape[0], cols: e.shape[1],
                                                                   base: UnsafeRawPointer(t.bytes.baseAddress!))
            }
        }
        self.matrices = matrices
    }

    func matrix(_ l: Int, _ module: Gemma3Weight.Layer) -> WeightMatrix? { matrices[LoRALayout.key(l, module)] }

    /// Whether the parameter vector leaves this weight to the stored base.
    func holds(_ w: Gemma3Weight) -> Bool {
        if case let .layer(_, module) = w { return Self.modules.contains(module) }
        return false
    }

    /// Writes the stored matrices, dequantized, into their places of a parameter vector.
    func fill(_ parameters: inout [Float], layout: ParameterLayout) {
        parameters.withUnsafeMutableBufferPointer { p in
            for e in layout.entries where holds(e.weight) {
                guard case let .layer(l, module) = e.weight, let m = matrix(l, module) else { continue }
                for r in 0..<m.rows { m.dequantizeRow(r, into: p.baseAddress! + e.offset + r * m.cols) }
            }
        }
    }
}

extension Checkpoint {
    /// Every weight of the text model dequantized to f32, in `layout`'s order. With `leaving`, the weights that base
    /// holds are not written: their part of the vector is never touched, so the memory of those pages is never
    /// committed (the allocation is fresh from the system), and nothing reads it.
    public func trainableParameters(_ layout: ParameterLayout, leaving stored: StoredBase? = nil) throws(TrainError) -> [Float] {
        var out: [Float]
        if stored == nil {
            out = [Float](repeating: 0, count: layout.count)
        } else {
            out = [Float](unsafeUninitializedCapacity: layout.count) { _, n in n = layout.count }  // Float is trivial
        }
        for e in layout.entries where !(stored?.holds(e.weight) ?? false) {
            let name = naming.name(of: e.weight)
            guard let t = source.sourceTensor(named: name) else { throw .weight("\(name) is missing") }
            guard t.shape.reduce(1, *) == e.count else {
                throw .weight("\(name) has shape \(t.shape), expected \(e.shape)")
            }
            guard let encoding = t.encoding, let row = encoding.dequantizeRow else {
                throw .weight("\(name) is stored as \(t.storedType), which cannot be read as f32")
            }
            let cols = e.shape.last!, rows = e.count / cols
            guard let rowBytes = encoding.rowBytes(cols) else { throw .weight("\(name): rows of \(cols) do not fit \(encoding)") }
            out.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows { row(t.bytes.baseAddress! + r * rowBytes, cols, p.baseAddress! + e.offset + r * cols) }
            }
        }
        return out
    }
}
