// Quantization-aware training (the report's int4 and SFP8 releases after ~5,000 QAT steps): the forward pass sees
// each weight matrix as the release format would store it (quantized, then decoded), and the gradient with respect
// to those values is applied to the f32 master weights unchanged (the straight-through estimator). Norms stay f32, as
// the releases keep them; the embedding (also the head) is fake-quantized as the format's release keeps it.
import Dispatch
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
    /// bf16 as the format's release stores it), the matrices spread over `threads`.
    public func fakeQuantized(_ parameters: [Float], layout: ParameterLayout, threads: Int = 1) throws(TrainError) -> [Float] {
        var out = parameters
        let matrices = layout.entries.filter { $0.shape.count == 2 }.sorted { $0.count > $1.count }
        let failures = FailureList(matrices.count)
        out.withUnsafeMutableBufferPointer { p in
            let base = PointerBox(p.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: max(1, min(threads, matrices.count))) { w in
                for (j, e) in matrices.enumerated() where j % max(1, min(threads, matrices.count)) == w {
                    do throws(TrainError) { try fakeQuantize(base.pointer + e.offset, e) } catch { failures.items[j] = error }
                }
            }
        }
        if let failure = failures.items.compactMap({ $0 }).first { throw failure }
        return out
    }

    /// One weight matrix of the layout, decoded from this format in place.
    public func fakeQuantize(_ base: UnsafeMutablePointer<Float>, _ e: ParameterLayout.Entry) throws(TrainError) {
        let cols = e.shape[1], rows = e.shape[0]
        if e.weight == .embedding {
            for i in 0..<e.count {
                base[i] = self == .int4Block ? Float(f16Bits: base[i].f16Bits) : Float(bf16Bits: base[i].bf16Bits)
            }
            return
        }
        var failure: FormatError? = nil
        switch self {
        case .int4Block, .int4Channel:
            let type: TensorType = self == .int4Block ? .q4_0 : .int4Channel
            guard let rowBytes = type.rowBytes(cols) else {
                failure = .notWholeBlocks(type: type, count: cols)
                break
            }
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: rowBytes, alignment: 16)
            defer { bytes.deallocate() }
            for r in 0..<rows where failure == nil {
                let row = base + r * cols
                do {
                    try type.quantize(row, count: cols, into: bytes)
                    try type.dequantize(UnsafeRawPointer(bytes), count: cols, into: row)
                } catch { failure = error }
            }
        case .sfp8:
            let scale = SFP8.tensorScale(UnsafeBufferPointer(start: base, count: e.count))
            let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: e.count)
            defer { codes.deallocate() }
            SFP8.encode(base, count: e.count, scale: scale, into: codes)
            SFP8.decode(codes, count: e.count, scale: scale, into: base)
        }
        if let failure { throw .weight("fake quantization of \(e.weight) to \(rawValue): \(failure)") }
    }
}

/// One slot per task for errors raised on worker threads (each writes only its own).
final class FailureList: @unchecked Sendable {
    let items: UnsafeMutableBufferPointer<TrainError?>
    init(_ n: Int) { items = .allocate(capacity: max(1, n)); items.initialize(repeating: nil) }
    deinit { items.deinitialize().deallocate() }
}
