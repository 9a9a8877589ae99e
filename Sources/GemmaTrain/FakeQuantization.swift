// Quantization-aware training (the report's int4 and SFP8 releases after ~5,000 QAT steps): the forward pass sees
// each weight matrix as the release format would store it (quantized, then decoded), and the gradient with respect
// to those values is applied to the f32 master weights unchanged (the straight-through estimator). Norms stay f32, as
// the releases keep them; the embedding (also the head) is fake-quantized as the format's release keeps it.
import GemmaFormats
import GemmaModel

/// A release format the forward pass can simulate.
public enum QATFormat: String, Sendable, CaseIterable {
    /// int4 per block of 32 (= Q4_0, what Google's QAT GGUFs use; the embedding kept f16 there).
    case int4Block = "int4-block"
    /// int4 per channel (one scale per output row; the embedding kept bf16 in the report's release).
    case int4Channel = "int4-channel"
    /// gemma.cpp's switched fp8, one scale per tensor (the embedding kept bf16).
    case sfp8

    /// Every weight matrix of `parameters` decoded from this format (norms untouched; the embedding rounded to f16 or
    /// bf16 as the format's release stores it).
    public func fakeQuantized(_ parameters: [Float], layout: ParameterLayout) throws(TrainError) -> [Float] {
        var out = parameters
        for e in layout.entries where e.shape.count == 2 {
            let cols = e.shape[1], rows = e.shape[0]
            let isEmbedding = e.weight == .embedding
            var failure: FormatError? = nil
            out.withUnsafeMutableBufferPointer { p in
                let base = p.baseAddress! + e.offset
                if isEmbedding {
                    for i in 0..<e.count {
                        base[i] = self == .int4Block ? Float(f16Bits: base[i].f16Bits) : Float(bf16Bits: base[i].bf16Bits)
                    }
                    return
                }
                switch self {
                case .int4Block, .int4Channel:
                    let type: TensorType = self == .int4Block ? .q4_0 : .int4Channel
                    guard let rowBytes = type.rowBytes(cols) else {
                        failure = .notWholeBlocks(type: type, count: cols)
                        return
                    }
                    let bytes = UnsafeMutableRawPointer.allocate(byteCount: rowBytes, alignment: 16)
                    defer { bytes.deallocate() }
                    for r in 0..<rows where failure == nil {
                        let row = base + r * cols
                        do {
                            try type.quantize(row, count: cols, into: bytes)
                            try type.dequantize(UnsafeRawPointer(bytes), count: cols, into: row)
                        } catch { failure = (error as? FormatError) ?? .io(path: "", reason: "\(error)") }
                    }
                case .sfp8:
                    let scale = SFP8.tensorScale(UnsafeBufferPointer(start: base, count: e.count))
                    let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: e.count)
                    defer { codes.deallocate() }
                    SFP8.encode(base, count: e.count, scale: scale, into: codes)
                    SFP8.decode(codes, count: e.count, scale: scale, into: base)
                }
            }
            if let failure { throw .weight("fake quantization of \(e.weight) to \(rawValue): \(failure)") }
        }
        return out
    }
}
