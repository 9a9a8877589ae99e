// How far one checkpoint's weights are from another's, per kind of tensor: the relative RMSE
// sqrt(sum (a - b)^2 / sum b^2) over every tensor of a kind (q, k, v, o, gate, up, down, embedding, norms), in f64
// over dequantized rows (norms compared as the model uses them, 1 + w, whatever each file stores). `gemma quantize`
// prints it for its output against its input; the formats' quality table uses it against the Q4_K_M weights.
import GemmaFormats
import GemmaModel

public struct WeightComparison: Sendable {
    /// Kind name (GGUF style: attn_q, ffn_down, token_embd, norms) -> relative RMSE.
    public let relativeRMSE: [(kind: String, value: Double)]

    /// Compares `candidate` with `reference` (same config); throws when a weight is missing, differs in shape or
    /// cannot be dequantized.
    public init(candidate: Checkpoint, reference: Checkpoint) throws(ConvertError) {
        let c = reference.config
        var sums: [String: (diff: Double, ref: Double)] = [:]
        var order: [String] = []
        var a = [Float](), b = [Float]()
        for (w, shape) in ConversionPlan.expectedShapes(c) {
            let kind = Self.kind(w)
            if sums[kind] == nil { sums[kind] = (0, 0); order.append(kind) }
            let ta = try Self.tensor(candidate, w, shape), tb = try Self.tensor(reference, w, shape)
            let cols = shape.last ?? 1, rows = shape.dropLast().reduce(1, *)
            if a.count < cols { a = [Float](repeating: 0, count: cols); b = a }
            let ra = ta.encoding!.rowBytes(cols)!, rb = tb.encoding!.rowBytes(cols)!
            let offA: Float = shape.count == 1 ? candidate.normOffset : 0, offB: Float = shape.count == 1 ? reference.normOffset : 0
            var d = 0.0, r = 0.0
            for row in 0..<rows {
                ta.encoding!.dequantizeRow!(ta.bytes.baseAddress! + row * ra, cols, &a)
                tb.encoding!.dequantizeRow!(tb.bytes.baseAddress! + row * rb, cols, &b)
                for j in 0..<cols {
                    let x = Double(a[j] + offA), y = Double(b[j] + offB)
                    d += (x - y) * (x - y)
                    r += y * y
                }
            }
            sums[kind]!.diff += d
            sums[kind]!.ref += r
        }
        relativeRMSE = order.map { k in (k, (sums[k]!.diff / max(sums[k]!.ref, 1e-300)).squareRoot()) }
    }

    static func tensor(_ ck: Checkpoint, _ w: Gemma3Weight, _ shape: [Int]) throws(ConvertError) -> SourceTensor {
        let name = ck.naming.name(of: w)
        guard let t = ck.source.sourceTensor(named: name) else { throw .input(path: ck.path, reason: "weight \(name) is missing") }
        guard t.shape == shape else { throw .input(path: ck.path, reason: "weight \(name) has shape \(t.shape), expected \(shape)") }
        guard let e = t.encoding, e.canDequantize, e.rowBytes(shape.last ?? 1) != nil else {
            throw .unsupportedWeight(name: name, type: t.storedType)
        }
        return t
    }

    static func kind(_ w: Gemma3Weight) -> String {
        switch w {
        case .embedding: "token_embd"
        case .finalNorm: "norms"
        case let .layer(_, l):
            switch l {
            case .q: "attn_q"
            case .k: "attn_k"
            case .v: "attn_v"
            case .o: "attn_output"
            case .gate: "ffn_gate"
            case .up: "ffn_up"
            case .down: "ffn_down"
            default: "norms"
            }
        }
    }
}
