// .sbs files built by hand by scripts/reference/make_sbs.py (numpy + struct, its own SFP8 encoder; no code shared with
// the engine): a V2 file, the same blobs as V1, and a pre-2025 file (type-prefixed keys, Fscales). Every tensor must
// read back as the script says it wrote it (type, shape, scale, each decoded value bit for bit), and every weight as
// the model binds it (transformers' q/k/v/o/gate/up/down/norms) must equal the script's numpy regrouping of them.
import Foundation
import GemmaFormats
import GemmaModel
import GemmaTestSupport
import Testing

@Suite struct SbsFixtureTests {
    static let folder = TestPaths.fixtures + "/sbs"

    /// expected.json (read for each use: a dictionary of Any is not Sendable).
    static var expected: [String: Any] {
        (try? TestPaths.json("sbs/expected.json")) as? [String: Any] ?? [:]
    }

    static func entry(_ kind: String) throws -> [String: Any] {
        try #require(expected[kind] as? [String: Any], "Tests/Fixtures/sbs/expected.json lacks \(kind): run scripts/reference/make_sbs.py")
    }

    static func floats(_ v: Any?) -> [Float] { (v as? [Double] ?? (v as? [NSNumber])?.map(\.doubleValue) ?? []).map { Float($0) } }

    /// A tensor's values as the engine decodes them.
    static func decode(_ t: SbsTensor) -> [Float] {
        switch t.type {
        case .f32: Array(t.bytes.bindMemory(to: Float.self))
        case .bf16: t.bytes.bindMemory(to: UInt16.self).map { Float(bf16Bits: UInt16(littleEndian: $0)) }
        default: t.bytes.map { SFP8.decode($0) * t.scale }
        }
    }

    @Test(arguments: ["v2", "v1", "legacy"]) func everyTensorReadsAsTheScriptWroteIt(_ kind: String) throws {
        let e = try Self.entry(kind)
        let path = Self.folder + "/" + (e["file"] as? String ?? "")
        let file = try SbsFile(path: path)
        #expect(file.storage.count == e["bytes"] as? Int)
        #expect(file.store.layout.rawValue == e["layout"] as? String)
        #expect(file.store.blobs.map(\.name) == e["blobs"] as? [String])
        #expect(file.isLegacy == (kind == "legacy"))
        #expect(file.tokenizerModel == (e["tokenizer"] as? [Int])?.map(UInt8.init))
        #expect(file.config?.displayName == e["display_name"] as? String)
        let tensors = try #require(try Self.entry(e["tensors_as"] as? String ?? kind)["tensors"] as? [[String: Any]])
        #expect(file.tensors.count == tensors.count)
        for want in tensors {
            let name = want["name"] as? String ?? ""
            let t = try #require(file.tensor(named: name), "\(name)")
            #expect("\(t.type)" == want["type"] as? String, "\(name)")
            #expect([t.rows, t.cols] == [want["rows"] as? Int, want["cols"] as? Int], "\(name)")
            #expect(t.scale == Float(want["scale"] as? Double ?? .nan), "\(name)")
            #expect(Self.decode(t).map(\.bitPattern) == Self.floats(want["values"]).map(\.bitPattern), "\(name)")
        }
    }

    @Test(arguments: ["v2", "v1", "legacy"]) func everyWeightBindsAsTheScriptRegroupedIt(_ kind: String) throws {
        let e = try Self.entry(kind)
        let model = try #require(Self.expected["model"] as? [String: Any])
        let v2 = try Checkpoint.open(path: Self.folder + "/tiny-v2.sbs")
        let path = Self.folder + "/" + (e["file"] as? String ?? "")
        let checkpoint: Checkpoint
        if kind == "legacy" {
            // No config blob, and no published size: the windows cannot be known without one.
            #expect { _ = try Checkpoint.open(path: path) } throws: { "\($0)".contains("without a config blob") }
            checkpoint = try Checkpoint.openSbs(path: path, config: v2.config)
        } else {
            checkpoint = try Checkpoint.open(path: path)
        }
        let c = checkpoint.config
        #expect([c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.headDim,
                 c.slidingWindow, c.maxPositionEmbeddings]
                == ["vocab", "hidden", "ffn", "layers", "heads", "kv_heads", "head_dim", "window", "max_seq_len"].map { model[$0] as? Int })
        #expect(c.layers.enumerated().filter(\.element.isGlobal).map(\.offset) == model["global_layers"] as? [Int])
        #expect(c.queryPreAttnScalar == Float(model["query_pre_attn_scalar"] as? Int ?? 0) && c.eosTokenIds == model["eos"] as? [Int])
        #expect(c.ropeTheta == 1_000_000 && c.ropeLocalBaseFreq == 10_000 && c.ropeScalingFactor == nil && c.rmsNormEps == 1e-6)

        let hf = try #require(try Self.entry(e["tensors_as"] as? String ?? kind)["hf"] as? [String: [String: Any]])
        #expect(hf.count == 2 + 13 * c.numHiddenLayers && Set(checkpoint.source.tensorNames) == Set(hf.keys))
        for (name, want) in hf {
            let t = try #require(checkpoint.source.sourceTensor(named: name), "\(name)")
            #expect(t.shape == want["shape"] as? [Int], "\(name)")
            let e = try #require(t.encoding, "\(name): \(t.storedType)")
            let cols = t.shape.last!, rows = t.shape.count == 2 ? t.shape[0] : 1
            let rowBytes = try #require(e.rowBytes(cols))
            #expect(t.bytes.count == rows * rowBytes, "\(name)")
            var got = [Float](repeating: 0, count: rows * cols)
            got.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows { e.dequantizeRow!(t.bytes.baseAddress! + r * rowBytes, cols, p.baseAddress! + r * cols) }
            }
            #expect(got.map(\.bitPattern) == Self.floats(want["values"]).map(\.bitPattern), "\(name)")
        }
    }

    @Test func v1AndV2FilesRunToTheSameLogits() throws {
        func logits(_ path: String) throws -> [Float] {
            let model = try Gemma3Model(path: path, options: ModelOptions(threads: 1, precision: .exact, placement: .auto, kvStorage: .f32))
            let state = model.makeState(capacity: 8)
            var out: [Float] = []
            try model.forward([2, 7, 30, 4, 4, 19, 1, 11], state: state, logits: .all) { _, l in out += l }
            return out
        }
        let a = try logits(Self.folder + "/tiny-v2.sbs"), b = try logits(Self.folder + "/tiny-v1.sbs")
        #expect(a.count == 8 * 32 && a.allSatisfy(\.isFinite) && a == b)
    }
}
