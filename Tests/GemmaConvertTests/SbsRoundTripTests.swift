// .sbs written by SbsExport and read back through Checkpoint.open: the tiny transformers fixture (1 KV head: k and v
// are row ranges of qkv_ein) and a random model with 2 KV heads (k and v gathered from the (k, v) pairs), as f32,
// bf16 and SFP8. f32 and bf16 files must give back every weight bit for bit and the same logits exactly; SFP8 files
// every weight within SFP8's rounding of the source, and the logits of the same SFP8 weights held as f32.
import Foundation
import GemmaConvert
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import GemmaTokenizer
import Testing

/// Tensors held in memory (f32), for models made up in tests.
final class MemorySource: TensorSource, @unchecked Sendable {  // immutable after init
    private var tensors: [String: SourceTensor] = [:]
    private var buffers: [UnsafeMutableRawBufferPointer] = []
    private(set) var tensorNames: [String] = []

    init(_ values: [(name: String, shape: [Int], values: [Float])]) {
        for t in values {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * t.values.count, alignment: 64)
            t.values.withUnsafeBytes { b.copyMemory(from: $0) }
            buffers.append(b)
            tensors[t.name] = SourceTensor(name: t.name, encoding: .f32, storedType: "F32", shape: t.shape, bytes: UnsafeRawBufferPointer(b))
            tensorNames.append(t.name)
        }
    }

    deinit { for b in buffers { b.deallocate() } }
    func sourceTensor(named name: String) -> SourceTensor? { tensors[name] }
    var dataRegions: [TensorDataRegion] { buffers.map { TensorDataRegion(bytes: UnsafeRawBufferPointer($0), releasable: false) } }

    /// A random Gemma 3 under transformers' names; norms around 0 (applied as 1 + w), a few weights past 1.875 so
    /// that SFP8 needs a scale.
    static func random(_ c: Gemma3Config, seed: UInt64) -> MemorySource {
        var rng = SplitMix64(seed: seed)
        let naming = TensorNaming.huggingFace(prefix: "model.")
        var list: [(String, [Int], [Float])] = []
        func add(_ w: Gemma3Weight, _ shape: [Int], _ sd: Float) {
            var v = (0..<shape.reduce(1, *)).map { _ in rng.gaussian() * sd }
            if shape.count == 2 { v[0] = 2.5; v[v.count - 1] = -3 }
            list.append((naming.name(of: w), shape, v))
        }
        let d = c.hiddenSize, hd = c.headDim
        add(.embedding, [c.vocabSize, d], 0.5)
        add(.finalNorm, [d], 0.1)
        for l in 0..<c.numHiddenLayers {
            for (w, n) in [(Gemma3Weight.Layer.inputNorm, d), (.postAttentionNorm, d), (.preFeedforwardNorm, d),
                           (.postFeedforwardNorm, d), (.qNorm, hd), (.kNorm, hd)] { add(.layer(l, w), [n], 0.1) }
            add(.layer(l, .q), [c.numAttentionHeads * hd, d], 0.2)
            add(.layer(l, .k), [c.numKeyValueHeads * hd, d], 0.2)
            add(.layer(l, .v), [c.numKeyValueHeads * hd, d], 0.2)
            add(.layer(l, .o), [d, c.numAttentionHeads * hd], 0.2)
            add(.layer(l, .gate), [c.intermediateSize, d], 0.2)
            add(.layer(l, .up), [c.intermediateSize, d], 0.2)
            add(.layer(l, .down), [d, c.intermediateSize], 0.2)
        }
        return MemorySource(list)
    }
}

@Suite(.serialized) struct SbsRoundTripTests {
    static let tiny = TestPaths.fixtures + "/gemma3-tiny-text"

    /// The tiny fixture's config made expressible in gemma.cpp's config: query scale from head_dim, no RoPE factor.
    static func tinyCheckpoint(_ folder: String) throws -> Checkpoint {
        let hf = try Checkpoint.open(path: folder)
        var c = hf.config
        c.queryPreAttnScalar = Float(c.headDim)
        c.ropeScalingFactor = nil
        return Checkpoint(path: folder, source: hf.source, config: c, naming: hf.naming, normOffset: hf.normOffset)
    }

    /// A random model with 2 KV heads, query scale hidden / heads, 3 layers of which the second is global.
    static func randomCheckpoint() -> Checkpoint {
        var c = Gemma3Config.known(.m270)
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers) = (96, 32, 48, 3)
        (c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.queryPreAttnScalar) = (4, 2, 16, 8)
        (c.maxPositionEmbeddings, c.slidingWindow, c.slidingWindowPattern) = (64, 5, 2)
        c.eosTokenIds = [1, 106]
        return Checkpoint(path: "", source: MemorySource.random(c, seed: 7), config: c, naming: .huggingFace(prefix: "model."), normOffset: 1)
    }

    static func logits(_ checkpoint: Checkpoint, _ ids: [Int]) throws -> [Float] {
        let model = try Gemma3Model(checkpoint: checkpoint, options: ModelOptions(threads: 2, precision: .exact, placement: .mapped, kvStorage: .f32))
        let state = model.makeState(capacity: ids.count)
        var out = [Float](repeating: .nan, count: ids.count * model.config.vocabSize)
        try model.forward(ids, state: state, logits: .all) { i, l in
            for (j, x) in l.enumerated() { out[i * l.count + j] = x }
        }
        return out
    }

    static func write(_ c: Checkpoint, _ type: SbsExport.MatrixType, tokenizer: [UInt8]? = nil) throws -> (path: String, written: [SbsExport.Written]) {
        let path = NSTemporaryDirectory() + "sbs-roundtrip-\(UUID().uuidString).sbs"
        let written = try SbsExport.write(source: c.source, naming: c.naming, normOffset: c.normOffset, config: c.config,
                                          tokenizer: tokenizer, matrices: type, to: path)
        return (path, written)
    }

    /// Every weight of both checkpoints as f32, by transformers' name.
    static func weights(_ c: Checkpoint) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        let naming = TensorNaming.huggingFace(prefix: "model.")
        var all: [Gemma3Weight] = [.embedding, .finalNorm]
        for l in 0..<c.config.numHiddenLayers { all += Gemma3Weight.Layer.allCases.map { .layer(l, $0) } }
        for w in all {
            let t = try #require(c.source.sourceTensor(named: c.naming.name(of: w)))
            let e = try #require(t.encoding)
            let cols = t.shape.last!, rows = t.shape.count == 2 ? t.shape[0] : 1
            var v = [Float](repeating: 0, count: rows * cols)
            let rowBytes = try #require(e.rowBytes(cols))
            v.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows { e.dequantizeRow!(t.bytes.baseAddress! + r * rowBytes, cols, p.baseAddress! + r * cols) }
            }
            out[naming.name(of: w)] = v
        }
        return out
    }

    static func checkConfig(_ a: Gemma3Config, _ b: Gemma3Config) {
        #expect(a.layers == b.layers)
        #expect((a.vocabSize, a.hiddenSize, a.intermediateSize, a.numHiddenLayers) == (b.vocabSize, b.hiddenSize, b.intermediateSize, b.numHiddenLayers))
        #expect((a.numAttentionHeads, a.numKeyValueHeads, a.headDim, a.slidingWindow) == (b.numAttentionHeads, b.numKeyValueHeads, b.headDim, b.slidingWindow))
        #expect((a.queryPreAttnScalar, a.rmsNormEps, a.maxPositionEmbeddings, a.eosTokenIds) == (b.queryPreAttnScalar, b.rmsNormEps, b.maxPositionEmbeddings, b.eosTokenIds))
    }

    @Test(arguments: ["f32", "bf16"]) func losslessFilesGiveBackEveryWeightAndTheLogits(_ variant: String) throws {
        let folder = variant == "f32" ? Self.tiny : Self.tiny + "/bf16"
        let source = try Self.tinyCheckpoint(folder)
        let vocabulary = try Vocabulary(directory: Self.tiny)
        let (path, written) = try Self.write(source, variant == "f32" ? .f32 : .bf16, tokenizer: vocabulary.sentencePieceModel())
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(written.count == 2 + 10 * 8 && written[2].name == "att_ein_0" && written[3].name == "qkv_ein_0")
        #expect(written.allSatisfy { $0.scale == 1 && $0.type == (variant == "f32" ? .f32 : .bf16) })

        let sbs = try Checkpoint.open(path: path)
        Self.checkConfig(sbs.config, source.config)
        #expect(sbs.sbs?.store.layout == .v2 && sbs.sbs?.config?.model == 0)
        #expect(try Vocabulary(sentencePieceModel: #require(sbs.sentencePieceModel)).pieces == vocabulary.pieces)
        let (a, b) = (try Self.weights(source), try Self.weights(sbs))
        #expect(a.count == 2 + 13 * 8)
        for (name, v) in a { #expect(b[name].map { $0.map(\.bitPattern) } == v.map(\.bitPattern), "\(name)") }

        let ids = [2, 17, 300, 5, 999, 42, 42, 7, 81, 640, 3, 12]
        #expect(try Self.logits(sbs, ids) == Self.logits(source, ids))
    }

    @Test(arguments: [SbsExport.MatrixType.f32, .bf16, .sfp8]) func twoKVHeadsGatherKeysAndValues(_ type: SbsExport.MatrixType) throws {
        let source = Self.randomCheckpoint()
        let (path, written) = try Self.write(source, type)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sbs = try Checkpoint.open(path: path)
        Self.checkConfig(sbs.config, source.config)
        #expect(sbs.sbs?.config?.queryScale == 1)  // hidden / heads
        #expect(sbs.sentencePieceModel == nil)       // written as gemma.cpp's "unavailable"
        let (a, b) = (try Self.weights(source), try Self.weights(sbs))
        let ids = [2, 5, 90, 11, 11, 60, 1, 33, 47, 8]
        switch type {
        case .f32:
            for (name, v) in a { #expect(b[name] == v, "\(name)") }
            #expect(try Self.logits(sbs, ids) == Self.logits(source, ids))
        case .bf16:
            for (name, v) in a { #expect(b[name] == v.map { Float(bf16Bits: $0.bf16Bits) }, "\(name)") }
        case .sfp8:
            // The weights that needed a scale (a 2.5 and a -3 in every matrix) got max|w| / 1.875.
            let scaled = written.filter { $0.type == .sfp }
            #expect(scaled.count == 4 * 3 && scaled.allSatisfy { $0.scale == 3 / 1.875 })
            #expect(written.filter { $0.type == .bf16 }.count == 2 + 6 * 3)  // embedding and norms stay bf16
            for (name, v) in a where !name.contains("norm") && !name.contains("embed") {
                let got = try #require(b[name])
                for (x, y) in zip(v, got) {
                    // bf16 truncation, then 3 (or 2, below 2^-7 scale) mantissa bits rounded: relative 2^-4 + 2^-8
                    // (2^-3 + 2^-8 small); values below 2^-23 scale flush to 0.
                    let s: Float = 3 / 1.875, small = abs(x) < s * 0x1p-7
                    #expect(abs(x - y) <= (small ? 0.14 : 0.075) * abs(x) + s * 0x1p-22, "\(name): \(x) -> \(y)")
                }
            }
            // The SFP8 model computes what the same decoded weights held as f32 compute.
            let decoded = MemorySource(b.map { (name: $0.key, shape: source.source.sourceTensor(named: $0.key)!.shape, values: $0.value) })
            let twin = Checkpoint(path: "", source: decoded, config: sbs.config, naming: .huggingFace(prefix: "model."), normOffset: 1)
            let (got, want) = (try Self.logits(sbs, ids), try Self.logits(twin, ids))
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .nan
            let range = want.map(abs).max() ?? 1
            #expect(worst <= 1e-5 * max(range, 1), "SFP8 model vs its decoded weights in f32: max |Δlogit| \(worst) of \(range)")
            // And it stays near the source model (SFP8's ~3% weight error): print the size of the change.
            let original = try Self.logits(source, ids)
            print("SFP8 .sbs vs source logits: max |Δ| \(zip(got, original).map { abs($0 - $1) }.max() ?? .nan) of \(range)")
        }
    }
}

/// The fetched 270M (Q4_K_M GGUF) written as an SFP8 .sbs (its tokenizer in the blob) and loaded back: the vocabulary
/// is the GGUF's, and the next-token choices agree with the GGUF's on a real sentence (SFP8 re-rounds the weights).
@Suite(.serialized) struct SbsRealModelTests {
    @Test func the270MAsSFP8() throws {
        let gguf = try #require(TestPaths.requireModel())
        let source = try Checkpoint.open(path: gguf)
        let vocabulary = try Vocabulary(gguf: #require(source.gguf).metadata)
        let path = NSTemporaryDirectory() + "sbs-270m-\(UUID().uuidString).sbs"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let written = try SbsExport.write(source: source.source, naming: source.naming, normOffset: source.normOffset,
                                          config: source.config, tokenizer: vocabulary.sentencePieceModel(), matrices: .sfp8, to: path)
        #expect(written.count == 2 + 10 * 18 && written.filter { $0.type == .sfp }.count == 4 * 18)
        let sbs = try Checkpoint.open(path: path)
        #expect(sbs.sbs?.config?.model == SbsModelConfig.Gemma3Model.m270.rawValue && sbs.sbs?.config?.displayName == "Gemma3_270M")
        #expect(sbs.config.layers == source.config.layers && sbs.config.queryPreAttnScalar == source.config.queryPreAttnScalar)
        #expect(try Vocabulary(sentencePieceModel: #require(sbs.sentencePieceModel)).pieces == vocabulary.pieces)

        let ids = [2, 818, 5279, 529, 506, 15429, 3710, 563, 496, 3393, 236761, 108, 2094, 1214, 563, 1144, 3101, 529, 506, 1902]
        let (a, b) = (try SbsRoundTripTests.logits(sbs, ids), try SbsRoundTripTests.logits(source, ids))
        let n = source.config.vocabSize
        func argmax(_ x: ArraySlice<Float>) -> Int { x.indices.max { x[$0] < x[$1] }! - x.startIndex }
        let agree = (0..<ids.count).filter { argmax(a[($0 * n)..<(($0 + 1) * n)]) == argmax(b[($0 * n)..<(($0 + 1) * n)]) }.count
        print("270M SFP8 .sbs vs Q4_K_M GGUF: top-1 agrees at \(agree) of \(ids.count) positions")
        #expect(agree >= ids.count - 3)
    }
}
