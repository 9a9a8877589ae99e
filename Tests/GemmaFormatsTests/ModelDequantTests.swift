// Every tensor of the real model (Gemma 3 270M Q4_K_M: F32, Q5_0, Q8_0, Q4_K, Q6_K) dequantized and compared, bit
// for bit, with gguf-py's dequantization, which scripts/dequant_model_reference.py writes as an F32 GGUF at
// $GEMMA_DEQUANT_REF (default /tmp/swift-gemma-dequant-ref.gguf). Run in release: about 268M elements.
import Foundation
import GemmaFormats
import GemmaTestSupport
import Testing

enum ModelReference {
    static var path: String {
        ProcessInfo.processInfo.environment["GEMMA_DEQUANT_REF"] ?? "/tmp/swift-gemma-dequant-ref.gguf"
    }
    static var script: String { "python3 scripts/dequant_model_reference.py \(TestPaths.model) \(path)" }
}

@Suite("Real model dequantization", .serialized)
struct ModelDequantTests {
    @Test("every tensor of the model dequantizes bit-identically to gguf-py")
    func everyTensorMatchesGGUFPy() throws {
        guard let modelPath = TestPaths.require(TestPaths.model, makeWith: "scripts/fetch-model.sh"),
              let refPath = TestPaths.require(ModelReference.path, makeWith: ModelReference.script)
        else { return }
        let model = try GGUFFile(path: modelPath)
        let ref = try GGUFFile(path: refPath)
        if let size = ref.metadata["dequant_ref.model_size"]?.int, size != model.fileSize {
            Issue.record("\(refPath) was made from a model of \(size) bytes, not \(model.fileSize): run \(ModelReference.script)")
            return
        }
        #expect(model.tensors.count == 236)
        #expect(ref.tensors.map(\.name) == model.tensors.map(\.name), "reference tensors differ: run \(ModelReference.script)")

        // Whole rows at a time, up to ~4M elements, so memory stays small even for the 168M-element embedding.
        let chunkLimit = 4 << 20
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: chunkLimit + (model.tensors.map { $0.dimensions[0] }.max() ?? 0))
        defer { buffer.deallocate() }
        var stats: [TensorType: (tensors: Int, elements: Int, mismatches: Int)] = [:]
        let clock = ContinuousClock()
        var dequantTime = Duration.zero
        for tensor in model.tensors {
            guard let expected = ref.tensor(named: tensor.name) else {
                Issue.record("reference has no tensor \(tensor.name): run \(ModelReference.script)")
                continue
            }
            #expect(expected.type == .f32 && expected.dimensions == tensor.dimensions, "\(tensor.name): reference is \(expected.type) \(expected.dimensions)")
            guard expected.type == .f32, expected.elementCount == tensor.elementCount else { continue }
            let n = tensor.elementCount, rowLength = tensor.dimensions[0]
            let rowsPerChunk = max(1, chunkLimit / rowLength)
            let source = model.data(for: tensor), refBytes = ref.data(for: expected)
            var mismatches = 0, first = -1
            for firstRow in stride(from: 0, to: tensor.rowCount, by: rowsPerChunk) {
                let rows = min(rowsPerChunk, tensor.rowCount - firstRow)
                let start = clock.now
                try tensor.type.dequantize(source.baseAddress! + firstRow * tensor.rowBytes, count: rows * rowLength, into: buffer)
                dequantTime += clock.now - start
                let base = firstRow * rowLength
                if memcmp(buffer, refBytes.baseAddress! + 4 * base, 4 * rows * rowLength) != 0 {
                    for i in 0..<(rows * rowLength) where buffer[i].bitPattern != refBytes.loadUnaligned(fromByteOffset: 4 * (base + i), as: UInt32.self) {
                        if first < 0 { first = base + i }
                        mismatches += 1
                    }
                }
            }
            if mismatches > 0 {
                Issue.record("\(tensor.name) (\(tensor.type)): \(mismatches) of \(n) elements differ from gguf-py; first at element \(first)")
            }
            var s = stats[tensor.type, default: (0, 0, 0)]
            s.tensors += 1
            s.elements += n
            s.mismatches += mismatches
            stats[tensor.type] = s
        }
        #expect(Set(stats.keys) == [.f32, .q5_0, .q8_0, .q4_K, .q6_K])
        let total = stats.values.reduce(0) { $0 + $1.elements }
        for (type, s) in stats.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print("model dequantize \(type): \(s.tensors) tensors, \(s.elements) elements, \(s.mismatches) bit mismatches")
        }
        print("model dequantize: \(stats.values.reduce(0) { $0 + $1.tensors }) tensors, \(total) elements compared bit for bit in \(dequantTime) of dequantization")
    }

    @Test("requantizing the model's Q4_K and Q6_K weights reproduces them closely")
    func requantizeModelWeights() throws {
        guard let modelPath = TestPaths.require(TestPaths.model, makeWith: "scripts/fetch-model.sh") else { return }
        let model = try GGUFFile(path: modelPath)
        for type in [TensorType.q4_K, .q6_K] {
            // Up to ~4M elements per type keeps the test quick even in debug builds.
            var budget = 4 << 20, elements = 0, sameBlocks = 0, blocks = 0
            var errorSquares = 0.0, signalSquares = 0.0, worst = 0.0
            for tensor in model.tensors where tensor.type == type && budget > 0 {
                let n = min(tensor.elementCount, budget - budget % tensor.dimensions[0])
                guard n > 0 else { break }
                budget -= n
                let original = try dequantized(type, model.data(for: tensor), count: n)
                let again = try quantized(type, original)
                let y = try again.withUnsafeBytes { try dequantized(type, $0, count: n) }
                let e = rmsError(original, y), r = rms(original)
                errorSquares += e * e * Double(n)
                signalSquares += r * r * Double(n)
                worst = max(worst, e / r)
                elements += n
                let bytes = model.data(for: tensor)
                for b in 0..<(n / type.blockSize) {
                    let range = (b * type.blockBytes)..<((b + 1) * type.blockBytes)
                    if again[range].elementsEqual(bytes[range]) { sameBlocks += 1 }
                    blocks += 1
                }
            }
            let relative = (errorSquares / signalSquares).squareRoot()
            print(String(format: "model requantize %@: %d elements, relative RMSE vs the file's values %.5f (worst tensor %.5f), %d of %d blocks byte-identical",
                         type.description, elements, relative, worst, sameBlocks, blocks))
            #expect(elements > 0)
            // Values already on a Q4_K/Q6_K grid should come back nearly unchanged (Q4_K_M files use importance
            // weighting, which our reference quantizer does not, so a few blocks may pick other scales).
            #expect(relative < (type == .q4_K ? 0.05 : 0.01), "\(type): requantized model weights drift by \(relative)")
        }
    }
}
