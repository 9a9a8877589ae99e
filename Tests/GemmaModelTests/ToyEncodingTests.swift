// A weight encoding defined entirely in this file: f32 values with one f32 scale per row (row = [scale, v0, v1, ...],
// weight = v * scale). It is one `WeightEncoding` descriptor, no kernel, and the model runs through it: every layer
// matrix of the 270M re-encoded this way (scales are powers of two, so v * scale gives back the exact dequantized
// weight) must give the logits of the GGUF itself, bit for bit, on the f32 path (`.exact`, which dequantizes rows
// too). The embedding / output head stays the file's Q8_0, so the source mixes encodings and memory regions.
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import Testing

/// The toy encoding: 4 bytes of scale, then `cols` f32 values.
let scaledRowF32 = WeightEncoding(name: "toy-f32-row-scale", blockSize: 1, bytesPerBlock: 4, bytesPerRow: 4) { row, cols, out in
    let scale = row.loadUnaligned(as: Float.self)
    for i in 0..<cols { out[i] = row.loadUnaligned(fromByteOffset: 4 + 4 * i, as: Float.self) * scale }
}

/// The GGUF's tensors, with the layer matrices re-encoded in memory as `scaledRowF32`.
final class ReencodedSource: TensorSource, @unchecked Sendable {  // immutable after init
    let base: GGUFFile
    private var tensors: [String: SourceTensor] = [:]
    private var buffers: [UnsafeMutableRawBufferPointer] = []

    init(_ base: GGUFFile, layers: Int) throws {
        self.base = base
        let matrices = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        for l in 0..<layers {
            for m in matrices {
                let name = "blk.\(l).\(m).weight"
                let t = try #require(base.sourceTensor(named: name))
                let (rows, cols) = (t.shape[0], t.shape[1])
                let encoding = try #require(t.encoding)
                let rowBytes = try #require(scaledRowF32.rowBytes(cols))
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
                buffers.append(buffer)
                var w = [Float](repeating: 0, count: cols)
                let inRow = try #require(encoding.rowBytes(cols))
                for r in 0..<rows {
                    w.withUnsafeMutableBufferPointer { encoding.dequantizeRow!(t.bytes.baseAddress! + r * inRow, cols, $0.baseAddress!) }
                    let maxAbs = w.map(abs).max() ?? 0
                    let scale: Float = maxAbs > 0 ? Float(sign: .plus, exponent: maxAbs.exponent + 1, significand: 1) : 1
                    let dst = buffer.baseAddress! + r * rowBytes
                    dst.storeBytes(of: scale, as: Float.self)
                    for i in 0..<cols { dst.storeBytes(of: w[i] / scale, toByteOffset: 4 + 4 * i, as: Float.self) }
                }
                tensors[name] = SourceTensor(name: name, encoding: scaledRowF32, storedType: scaledRowF32.name, shape: [rows, cols],
                                             bytes: UnsafeRawBufferPointer(buffer))
            }
        }
    }

    deinit { for b in buffers { b.deallocate() } }

    var tensorNames: [String] { base.tensorNames }
    func sourceTensor(named name: String) -> SourceTensor? { tensors[name] ?? base.sourceTensor(named: name) }
    var dataRegions: [TensorDataRegion] {
        base.dataRegions + buffers.map { TensorDataRegion(bytes: UnsafeRawBufferPointer($0), releasable: false) }
    }
}

@Suite(.serialized) struct ToyEncodingTests {
    @Test func encodingDescriptorGeometry() {
        #expect(scaledRowF32.rowBytes(640) == 4 + 4 * 640)
        #expect(scaledRowF32.canDequantize && scaledRowF32.integerLayout == nil)
    }

    @Test func modelRunsThroughATestDefinedEncoding() throws {
        let path = try #require(TestPaths.requireModel())
        let file = try GGUFFile(path: path)
        let plain = Checkpoint(path: path, source: file, config: try Gemma3Config(gguf: file), naming: .gguf, normOffset: 0, gguf: file)
        let toySource = try ReencodedSource(file, layers: plain.config.numHiddenLayers)
        let toy = Checkpoint(path: path, source: toySource, config: plain.config, naming: .gguf, normOffset: 0)
        let options = ModelOptions(precision: .exact, placement: .auto, kvStorage: .f32)
        let reference = try Gemma3Model(checkpoint: plain, options: ModelOptions(precision: .exact, placement: .mapped, kvStorage: .f32))
        let model = try Gemma3Model(checkpoint: toy, options: options)
        #expect(model.weights.layers[3].down.encoding == scaledRowF32)
        #expect(model.weights.embedding.encoding == .gguf(.q8_0))

        // A 20-token prompt (the GEMM path) and 4 decoded tokens (the row path).
        let prompt = [2, 818, 5279, 529, 506, 15429, 3710, 563, 496, 3393, 236761, 108, 2094, 1214, 563, 1144, 3101, 529, 506, 1902]
        var logits: [[[Float]]] = [[], []]
        for (i, m) in [reference, model].enumerated() {
            let s = m.makeState(capacity: 64)
            var next = 0
            try m.forward(prompt, state: s, logits: .all) { _, l in logits[i].append(Array(l)); next = topK(l, 1)[0].id }
            for _ in 0..<4 { try m.forward([next], state: s) { _, l in logits[i].append(Array(l)); next = topK(l, 1)[0].id } }
        }
        #expect(logits[0].count == prompt.count + 4)
        #expect(logits[0] == logits[1], "the re-encoded model's logits differ from the GGUF's")
    }
}
